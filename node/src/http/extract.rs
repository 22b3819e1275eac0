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
use tokio::time::Instant;

use super::{AppState, REQUEST_ID};
use crate::error::ServiceError;
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
        request_id: text(&REQUEST_ID).map(str::to_owned),
        client_ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip()),
        user_agent: text(&header::USER_AGENT).map(RequestContext::user_agent_of),
        arrival,
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

/// A path parameter, or `invalid_request`.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ServiceError> {
    p.map(|Path(v)| v)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid path: {e}")))
}

/// A strict request body: size-capped, JSON, unknown fields refused (the types
/// use `deny_unknown_fields`).
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
        serde_json::from_slice(&bytes)
            .map(StrictJson)
            .map_err(|e| ServiceError::InvalidRequest(format!("invalid JSON body: {e}")))
    }
}
