//! The HTTP JSON API (axum): a thin adapter over [`crate::service::Services`].

mod auth;
mod body;
mod cluster;
mod keys;
mod kv;
pub mod problem;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use tracing::Instrument;

use crate::service::{Services, MAX_BODY_BYTES};
use problem::Problem;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/healthz", get(cluster::healthz))
        .route("/readyz", get(cluster::readyz))
        .route("/v1/cluster/status", get(cluster::status))
        .route("/v1/cluster/init", post(cluster::init))
        .route("/v1/cluster/compact", post(cluster::compact))
        .route("/v1/debug/partition", post(cluster::partition))
        .route(
            "/v1/admin/tenants",
            get(keys::list_tenants).post(keys::create_tenant),
        )
        .route(
            "/v1/admin/tenants/{id}",
            get(auth::get_tenant)
                .patch(auth::update_tenant)
                .delete(auth::delete_tenant),
        )
        .route(
            "/v1/admin/tenants/{id}/api-keys",
            post(auth::create_api_key),
        )
        .route(
            "/v1/admin/tenants/{id}/api-keys/{key_id}",
            delete(auth::revoke_api_key),
        )
        .route(
            "/v1/admin/tenants/{id}/signing-keys/rotate",
            post(auth::rotate_signing_key),
        )
        .route("/v1/tenants/{id}/jwks.json", get(auth::jwks))
        .route("/v1/users", post(auth::create_user))
        .route(
            "/v1/users/{id}",
            get(auth::get_user)
                .patch(auth::patch_user)
                .delete(auth::delete_user),
        )
        .route("/v1/users/{id}/sessions", get(auth::list_sessions))
        .route("/v1/sessions", post(auth::sign_in))
        .route("/v1/sessions/refresh", post(auth::refresh))
        .route("/v1/sessions/{id}/revoke", post(auth::revoke_session))
        .route("/v1/tokens/introspect", post(auth::introspect))
        .route("/v1/admin/keys", get(keys::list))
        .route("/v1/admin/keys/rotate", post(keys::rotate))
        .route("/v1/admin/keys/master/stage", post(keys::stage_master))
        .route("/v1/admin/keys/master/rotate", post(keys::rotate_master))
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
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
