//! The HTTP JSON API (axum): a thin adapter over [`crate::service::Services`].
//!
//! [`routes`] is the one route table (method, path, handler); the handlers and
//! their DTOs live in one file per feature, named as the service features are;
//! `extract` builds the [`crate::service::Call`]; `openapi` documents every
//! route from the DTOs (`docs/openapi.json`).

mod api_keys;
mod cluster;
mod extract;
mod kv;
mod master_key;
pub mod openapi;
pub mod problem;
mod sessions;
mod signing_keys;
mod tenants;
mod users;

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tracing::Instrument;

use crate::service::{Services, MAX_BODY_BYTES};
use problem::Problem;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One operation of the API: a method on a path template (axum's syntax:
/// `{id}`, `{*key}`) and the handler that serves it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: Box<dyn FnOnce(MethodFilter) -> MethodRouter<AppState>>,
}

impl Route {
    fn new<H, T>(method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self {
            method,
            path,
            handler: Box::new(move |filter| on(filter, handler)),
        }
    }

    /// The route as axum serves it.
    fn method_router(self) -> MethodRouter<AppState> {
        let filter = match self.method {
            Method::GET => MethodFilter::GET,
            Method::PUT => MethodFilter::PUT,
            Method::PATCH => MethodFilter::PATCH,
            Method::DELETE => MethodFilter::DELETE,
            _ => MethodFilter::POST,
        };
        (self.handler)(filter)
    }
}

/// Every route of the API. A new operation is one line here, its handler and
/// DTOs in its feature's file, and its `#[utoipa::path]` in `openapi`.
#[must_use]
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        // cluster
        Route::new(M::GET, "/healthz", cluster::healthz),
        Route::new(M::GET, "/readyz", cluster::readyz),
        Route::new(M::GET, "/v1/cluster/status", cluster::status),
        Route::new(M::POST, "/v1/cluster/init", cluster::init),
        Route::new(M::POST, "/v1/cluster/compact", cluster::compact),
        Route::new(M::POST, "/v1/debug/partition", cluster::partition),
        // tenants
        Route::new(M::GET, "/v1/admin/tenants", tenants::list),
        Route::new(M::POST, "/v1/admin/tenants", tenants::create),
        Route::new(M::GET, "/v1/admin/tenants/{id}", tenants::get),
        Route::new(M::PATCH, "/v1/admin/tenants/{id}", tenants::update),
        Route::new(M::DELETE, "/v1/admin/tenants/{id}", tenants::delete),
        Route::new(M::POST, "/v1/admin/keys/rotate", tenants::rotate_key),
        // api_keys
        Route::new(M::POST, "/v1/admin/tenants/{id}/api-keys", api_keys::create),
        Route::new(
            M::DELETE,
            "/v1/admin/tenants/{id}/api-keys/{key_id}",
            api_keys::revoke,
        ),
        // signing_keys
        Route::new(
            M::POST,
            "/v1/admin/tenants/{id}/signing-keys/rotate",
            signing_keys::rotate,
        ),
        Route::new(M::GET, "/v1/tenants/{id}/jwks.json", signing_keys::jwks),
        // master_key
        Route::new(M::GET, "/v1/admin/keys", master_key::view),
        Route::new(M::POST, "/v1/admin/keys/master/stage", master_key::stage),
        Route::new(M::POST, "/v1/admin/keys/master/rotate", master_key::rotate),
        // users
        Route::new(M::POST, "/v1/users", users::create),
        Route::new(M::GET, "/v1/users/{id}", users::get),
        Route::new(M::PATCH, "/v1/users/{id}", users::update),
        Route::new(M::DELETE, "/v1/users/{id}", users::delete),
        // sessions
        Route::new(M::GET, "/v1/users/{id}/sessions", sessions::list),
        Route::new(M::POST, "/v1/sessions", sessions::sign_in),
        Route::new(M::POST, "/v1/sessions/refresh", sessions::refresh),
        Route::new(M::POST, "/v1/sessions/{id}/revoke", sessions::revoke),
        Route::new(M::POST, "/v1/tokens/introspect", sessions::introspect),
        // kv
        Route::new(M::GET, "/v1/kv/{*key}", kv::get),
        Route::new(M::PUT, "/v1/kv/{*key}", kv::put),
        Route::new(M::DELETE, "/v1/kv/{*key}", kv::delete),
    ]
}

/// The API's router: [`routes`], problem documents for unknown routes and
/// methods, the body limit and the common headers.
pub fn router(services: Services) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, r| {
            router.route(r.path, r.method_router())
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(common_headers))
        .with_state(AppState { services })
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
