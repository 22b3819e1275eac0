//! The HTTP JSON API (axum): a thin adapter over [`crate::service::Services`].
//!
//! [`routes`] is the one route table (method, path, handler); the handlers and
//! their DTOs live in one file per feature, named as the service features are;
//! `extract` builds the [`crate::service::Call`]; `openapi` documents every
//! route from the DTOs (`docs/openapi.json`).

mod api_keys;
mod cluster;
pub(crate) mod extract;
mod kv;
mod master_key;
pub mod openapi;
pub mod problem;
mod relay;
pub(crate) mod serve;
mod sessions;
mod signing_keys;
mod tenants;
mod users;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tracing::Instrument;

use crate::service::core::Scope;
use crate::service::{Access, Services, MAX_BODY_BYTES};
use problem::Problem;

/// What every handler shares: one `Arc`, so the per-request state clones
/// (each route layer and extractor takes one) cost one reference count.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One operation of the API: a method on a path template (axum's syntax:
/// `{id}`, `{*key}`), what it needs of its caller, and the handler that serves
/// it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: Box<dyn FnOnce(MethodFilter) -> MethodRouter<AppState>>,
}

impl Route {
    fn new<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self {
            method,
            path,
            access,
            handler: Box::new(move |filter| on(filter, handler)),
        }
    }

    /// The route as axum serves it: its handler behind [`extract::admit`],
    /// which builds the `Call` and checks the route's access before the
    /// handler's extractors read the path or body.
    ///
    /// # Panics
    /// A method axum cannot route (a route table error, found when the router
    /// is built).
    fn method_router(self, state: &AppState) -> MethodRouter<AppState> {
        let filter = MethodFilter::try_from(self.method.clone()).unwrap_or_else(|e| {
            panic!("route {} {}: {e}", self.method, self.path);
        });
        let access = self.access;
        (self.handler)(filter).route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |s, req, next| extract::admit(s, access, req, next),
        ))
    }
}

/// Every route of the API. A new operation is one line here, its handler and
/// DTOs in its feature's file, and its `#[utoipa::path]` in `openapi`.
///
/// The access is what the route answered for before its path and body (see
/// [`extract::admit`]); the operation checks its caller again.
#[must_use]
pub fn routes() -> Vec<Route> {
    use Access::{ApiKey, Kv, Operator, Public};
    use Method as M;
    vec![
        // cluster
        Route::new(M::GET, "/healthz", Public, cluster::healthz),
        Route::new(M::GET, "/readyz", Public, cluster::readyz),
        Route::new(M::GET, "/v1/cluster/status", Operator, cluster::status),
        Route::new(M::POST, "/v1/cluster/init", Operator, cluster::init),
        Route::new(M::POST, "/v1/cluster/compact", Operator, cluster::compact),
        Route::new(
            M::POST,
            "/v1/cluster/wire-version",
            Operator,
            cluster::set_wire_version,
        ),
        // Public: without fault injection the route answers 404 whoever calls;
        // the handler checks the operator after that.
        Route::new(M::POST, "/v1/debug/partition", Public, cluster::partition),
        // tenants
        Route::new(M::GET, "/v1/admin/tenants", Operator, tenants::list),
        Route::new(M::POST, "/v1/admin/tenants", Operator, tenants::create),
        Route::new(M::GET, "/v1/admin/tenants/{id}", Operator, tenants::get),
        Route::new(
            M::PATCH,
            "/v1/admin/tenants/{id}",
            Operator,
            tenants::update,
        ),
        Route::new(
            M::DELETE,
            "/v1/admin/tenants/{id}",
            Operator,
            tenants::delete,
        ),
        Route::new(
            M::POST,
            "/v1/admin/keys/rotate",
            Operator,
            tenants::rotate_key,
        ),
        // api_keys
        Route::new(
            M::POST,
            "/v1/admin/tenants/{id}/api-keys",
            Operator,
            api_keys::create,
        ),
        Route::new(
            M::DELETE,
            "/v1/admin/tenants/{id}/api-keys/{key_id}",
            Operator,
            api_keys::revoke,
        ),
        // signing_keys
        Route::new(
            M::POST,
            "/v1/admin/tenants/{id}/signing-keys/rotate",
            Operator,
            signing_keys::rotate,
        ),
        Route::new(
            M::GET,
            "/v1/tenants/{id}/jwks.json",
            Public,
            signing_keys::jwks,
        ),
        // master_key
        Route::new(M::GET, "/v1/admin/keys", Operator, master_key::view),
        Route::new(
            M::POST,
            "/v1/admin/keys/master/stage",
            Operator,
            master_key::stage,
        ),
        Route::new(
            M::POST,
            "/v1/admin/keys/master/rotate",
            Operator,
            master_key::rotate,
        ),
        // users
        Route::new(M::POST, "/v1/users", ApiKey, users::create),
        Route::new(M::POST, "/v1/users/lookup", ApiKey, users::lookup),
        Route::new(M::GET, "/v1/users", ApiKey, users::list),
        Route::new(M::GET, "/v1/users/{id}", ApiKey, users::get),
        Route::new(M::PATCH, "/v1/users/{id}", ApiKey, users::update),
        Route::new(M::DELETE, "/v1/users/{id}", ApiKey, users::delete),
        // sessions
        Route::new(M::GET, "/v1/users/{id}/sessions", ApiKey, sessions::list),
        Route::new(
            M::POST,
            "/v1/users/{id}/sessions/revoke",
            ApiKey,
            sessions::revoke_all,
        ),
        Route::new(M::POST, "/v1/sessions", ApiKey, sessions::sign_in),
        Route::new(M::POST, "/v1/sessions/refresh", ApiKey, sessions::refresh),
        Route::new(
            M::POST,
            "/v1/sessions/{id}/revoke",
            ApiKey,
            sessions::revoke,
        ),
        Route::new(
            M::POST,
            "/v1/tokens/introspect",
            ApiKey,
            sessions::introspect,
        ),
        // kv
        Route::new(M::GET, "/v1/kv/{*key}", Kv(Scope::Read), kv::get),
        Route::new(M::PUT, "/v1/kv/{*key}", Kv(Scope::Write), kv::put),
        Route::new(M::DELETE, "/v1/kv/{*key}", Kv(Scope::Delete), kv::delete),
    ]
}

/// The API's router: [`routes`], problem documents for unknown routes and
/// methods, the body limit and the common headers; on a node outside some hard
/// region, the relay layer (see `crate::relay`) too.
pub fn router(services: Services) -> Router {
    let raft = services
        .raft()
        .relays_any()
        .then(|| Arc::clone(services.raft()));
    build(services, raft)
}

/// [`router`] as it serves requests relayed to this node: without the relay
/// layer, so a relay ends at its first hop.
pub fn relayed_router(services: Services) -> Router {
    build(services, None)
}

fn build(services: Services, relay: Option<Arc<cairn_raft::RaftNode>>) -> Router {
    let state = AppState {
        services: Arc::new(services),
    };
    let router = routes()
        .into_iter()
        .fold(Router::new(), |router, r| {
            router.route(r.path, r.method_router(&state))
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let router = match relay {
        Some(raft) => router.layer(axum::middleware::from_fn_with_state(
            raft,
            relay::relay_pinned,
        )),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(common_headers))
        .with_state(state)
}

async fn not_found() -> Problem {
    Problem::new(404, "not_found", "no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        405,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// A fresh request id: 16 hex digits from the thread's CSPRNG (ChaCha, seeded
/// from the OS), without a system call per request. Ids are unique in practice
/// and not guessable, but they are not secrets.
fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Echoes (or assigns) a request id, logs the request, and adds security headers to
/// every response.
async fn common_headers(mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(new_request_id, str::to_owned);
    // Handlers (audit events) see the same, validated id the response echoes.
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let span = tracing::info_span!("http", %request_id, method = %req.method());
    let mut resp = next.run(req).instrument(span).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(REQUEST_ID.clone(), v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Everything is `no-store` unless a handler says otherwise (the public JWKS).
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    resp
}
