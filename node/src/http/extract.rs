//! What HTTP handlers take from a request: the [`Call`] (built here and nowhere
//! else, by the per-route middleware [`admit`], which also checks the route's
//! access before the path and body are read), strict JSON bodies, and path
//! parameters, every failure a problem document.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::{AppState, REQUEST_ID};
use crate::error::ServiceError;
use crate::service::core::{ClientInfo, DeferredPad};
use crate::service::{Access, Call, RequestContext, MAX_BODY_BYTES};

/// Builds the [`Call`] of a request to a route that needs `access` (the one
/// place it is built over HTTP), checks `access` before any handler extractor
/// reads the path or body, and leaves the `Call` in the request's extensions
/// for the [`Call`] extractor.
///
/// The order of the answers is the one each route had before the restructure:
/// an invalid `X-Tenant` (KV) first, whoever calls; then the credentials (the
/// operator; an API key, or `meta` unavailable while reading one; for KV the
/// key's scope, or the operator's `X-Tenant` and its tenant); then the path
/// and body; then the operation. A route's own checks stay the authority.
pub async fn admit(
    State(state): State<AppState>,
    access: Access,
    mut req: Request,
    next: Next,
) -> Response {
    match call(&state, access, &mut req).await {
        Ok(call) => {
            req.extensions_mut().insert(call);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn call(state: &AppState, access: Access, req: &mut Request) -> Result<Call, ServiceError> {
    let arrival = Instant::now();
    let headers = req.headers();
    let x_tenant = match access {
        Access::Kv(_) => x_tenant(headers)?,
        _ => None,
    };
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let caller = state
        .services
        .caller(text(&header::AUTHORIZATION), arrival, access)
        .await?;
    let context = RequestContext {
        end_user_ip: None,
        request_id: text(&REQUEST_ID).map(str::to_owned),
        client_ip: RequestContext::client_address(
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
            state.services.trusted_proxy_hops(),
        ),
        user_agent: text(&header::USER_AGENT).map(RequestContext::user_agent_of),
        arrival,
        deferred_pad: req.extensions().get::<DeferredPad>().cloned(),
    };
    let call = Call::new(caller, context);
    match access {
        Access::Public => {}
        Access::Operator => call.operator()?,
        Access::ApiKey => {
            call.any_api_key()?;
        }
        Access::Kv(scope) => {
            state
                .services
                .kv
                .admit(&call, x_tenant.as_deref(), scope)
                .await?;
        }
    }
    Ok(call)
}

/// The `X-Tenant` header: the tenant the operator names for KV (ignored for an
/// API key).
///
/// # Errors
/// `invalid_request` for a value that is not text, whoever calls.
pub fn x_tenant(headers: &HeaderMap) -> Result<Option<String>, ServiceError> {
    headers
        .get("x-tenant")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ServiceError::InvalidRequest("X-Tenant is not valid text".to_owned()))
        })
        .transpose()
}

/// The [`Call`] [`admit`] built for this request, before the handler ran.
impl FromRequestParts<AppState> for Call {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<Call>().ok_or_else(|| {
            tracing::error!(uri = %parts.uri, "a handler takes a Call on a route without `admit`");
            ServiceError::Internal
        })
    }
}

/// The end user an app makes a call for (`client` in a request body; scope
/// `client_info`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    /// The end user's IP address.
    #[serde(default)]
    pub ip: Option<String>,
    /// The end user's `user-agent` (kept to 512 characters).
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl From<ClientBody> for ClientInfo {
    fn from(c: ClientBody) -> Self {
        Self {
            ip: c.ip,
            user_agent: c.user_agent,
        }
    }
}

/// A path parameter, or `invalid_request`.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ServiceError> {
    p.map(|Path(v)| v)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid path: {e}")))
}

/// A strict request body: size-capped, one JSON object, unknown fields refused
/// (the types use `deny_unknown_fields`).
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ServiceError::PayloadTooLarge(format!(
                    "request body exceeds {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ServiceError::InvalidRequest(format!("cannot read request body: {e}"))
            }
        })?;
        object(&bytes).map(StrictJson)
    }
}

/// `bytes` as `T`, from a JSON object only: serde's derived `Deserialize` also
/// takes a struct's fields from a JSON array, by position, which no route
/// documents (found by the fuzz target `request_body`).
fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    // The first byte that is not JSON whitespace (what serde_json skips).
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
    if first == Some(&b'[') {
        return Err(ServiceError::InvalidRequest(
            "invalid JSON body: an array, expected a JSON object".to_owned(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// A route's request body type, for [`decode_request_body`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    CreateTenant,
    UpdateTenant,
    RotateTenantKey,
    CreateApiKey,
    CreateUser,
    UpdateUser,
    SignIn,
    Refresh,
    Introspect,
    KvPut,
    StageMasterKey,
    RotateMasterKey,
    Partition,
}

impl RequestBody {
    /// Every route body type.
    pub const ALL: [Self; 13] = [
        Self::CreateTenant,
        Self::UpdateTenant,
        Self::RotateTenantKey,
        Self::CreateApiKey,
        Self::CreateUser,
        Self::UpdateUser,
        Self::SignIn,
        Self::Refresh,
        Self::Introspect,
        Self::KvPut,
        Self::StageMasterKey,
        Self::RotateMasterKey,
        Self::Partition,
    ];
}

/// Decodes `body` as the request body `kind` exactly as a route does: the
/// router's body limit, then [`StrictJson`] (a handler that takes it, called
/// directly). `Err` is the refusal's HTTP status and problem `code`.
///
/// For the fuzz target `request_body` (`cairn-fuzz`); not an API.
///
/// # Errors
/// The status and code of the problem document the route would answer with.
#[doc(hidden)]
pub fn decode_request_body(kind: RequestBody, body: Vec<u8>) -> Result<(), (u16, String)> {
    use super::{api_keys, cluster, kv, master_key, sessions, tenants, users};
    let req = Request::new(axum::body::Body::from(body));
    let response = futures::executor::block_on(match kind {
        RequestBody::CreateTenant => decode::<tenants::CreateTenantBody>(req),
        RequestBody::UpdateTenant => decode::<tenants::UpdateTenantBody>(req),
        RequestBody::RotateTenantKey => decode::<tenants::RotateKeyBody>(req),
        RequestBody::CreateApiKey => decode::<api_keys::CreateApiKeyBody>(req),
        RequestBody::CreateUser => decode::<users::CreateUserBody>(req),
        RequestBody::UpdateUser => decode::<users::UpdateUserBody>(req),
        RequestBody::SignIn => decode::<sessions::SignInBody>(req),
        RequestBody::Refresh => decode::<sessions::RefreshBody>(req),
        RequestBody::Introspect => decode::<sessions::IntrospectBody>(req),
        RequestBody::KvPut => decode::<kv::PutBody>(req),
        RequestBody::StageMasterKey => decode::<master_key::StageBody>(req),
        RequestBody::RotateMasterKey => decode::<master_key::RotateMasterBody>(req),
        RequestBody::Partition => decode::<cluster::PartitionBody>(req),
    });
    let status = response.status().as_u16();
    if status == 204 {
        return Ok(());
    }
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|problem| problem.get("code")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    Err((status, code))
}

/// One request through a handler that takes `StrictJson<T>` as the routes do
/// (as `Result`, answering the refusal), under the router's body limit: 204
/// when the body decodes.
fn decode<T: DeserializeOwned + Send + 'static>(
    req: Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
    use axum::handler::Handler as _;
    let handler = |body: Result<StrictJson<T>, ServiceError>| async move {
        body.map(|_| axum::http::StatusCode::NO_CONTENT)
    };
    Box::pin(
        handler
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .call(req, ()),
    )
}
