//! Sessions and tokens over HTTP (a tenant API key): sign-in, refresh,
//! revocation, a user's sessions, introspection (RFC 7662).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::extract::{path, ClientBody, StrictJson};
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::sessions::{Introspection, IssuedSession, RefreshedSession, SessionView};
use crate::service::Call;

/// A session as listed (never a token).
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: u64,
    pub last_refreshed_at: u64,
    /// The earlier of the absolute and the idle expiry.
    pub expires_at: u64,
    /// Where the sign-in came from (the peer address, the `User-Agent`).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<SessionView> for Session {
    fn from(s: SessionView) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    pub email: String,
    #[schema(value_type = String)]
    pub password: Zeroizing<String>,
    /// The end user signing in (scope `client_info`): the session records it.
    #[serde(default)]
    pub client: Option<ClientBody>,
}

/// A new session and its tokens (shown once).
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    pub session_id: String,
    pub user_id: String,
    /// A JWT (EdDSA, the tenant's signing key).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
}

impl From<IssuedSession> for SignedIn {
    fn from(s: IssuedSession) -> Self {
        Self {
            session_id: s.session_id,
            user_id: s.user_id,
            access_token: s.access_token,
            token_type: s.token_type,
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[schema(value_type = String)]
    pub refresh_token: Zeroizing<String>,
    /// The end user refreshing (scope `client_info`).
    #[serde(default)]
    pub client: Option<ClientBody>,
}

/// The rotated pair: the presented refresh token is spent.
#[derive(Serialize, ToSchema)]
pub struct Refreshed {
    pub session_id: String,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

impl From<RefreshedSession> for Refreshed {
    fn from(s: RefreshedSession) -> Self {
        Self {
            session_id: s.session_id,
            access_token: s.access_token,
            token_type: s.token_type,
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectBody {
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    /// RFC 7662's optional hint; accepted and not needed (the token's form tells).
    #[serde(default)]
    #[allow(dead_code)]
    pub token_type_hint: Option<String>,
}

/// RFC 7662 introspection: only `active` for an inactive token.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspected {
    pub active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aal: Option<String>,
}

impl From<Introspection> for Introspected {
    fn from(i: Introspection) -> Self {
        Self {
            active: i.active,
            token_type: i.token_type,
            iss: i.iss,
            sub: i.sub,
            sid: i.sid,
            tid: i.tid,
            iat: i.iat,
            exp: i.exp,
            amr: i.amr,
            aal: i.aal,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    security(("api_key" = [])),
    request_body = SignInBody,
    responses(
        (status = 201, description = "A session and its tokens (scope write)", body = SignedIn),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_credentials (every failure alike), unauthorized", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_ambiguous", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: a bucket of the email, the address or the pair is empty; Retry-After says when to retry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable; overloaded (Retry-After: 1)", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/sessions` `{"email", "password"}` → 201 a session and its tokens.
pub async fn sign_in(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<SignInBody>, ServiceError>,
) -> Result<(StatusCode, Json<SignedIn>), ServiceError> {
    let StrictJson(body) = body?;
    let call = call.on_behalf_of(body.client.map(Into::into))?;
    let session = state
        .services
        .sessions
        .sign_in(&call, &body.email, body.password)
        .await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/refresh",
    tag = "sessions",
    security(("api_key" = [])),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The rotated pair (scope write)", body = Refreshed),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_refresh_token, refresh_token_reused, session_revoked, session_expired, unauthorized", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/sessions/refresh` `{"refresh_token"}` → 200 the rotated pair.
pub async fn refresh(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<RefreshBody>, ServiceError>,
) -> Result<Json<Refreshed>, ServiceError> {
    let StrictJson(body) = body?;
    let call = call.on_behalf_of(body.client.map(Into::into))?;
    let pair = state
        .services
        .sessions
        .refresh(&call, &body.refresh_token)
        .await?;
    Ok(Json(pair.into()))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/revoke",
    tag = "sessions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Revoked (scope manage)"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "session_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/sessions/{id}/revoke` → 204.
pub async fn revoke(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let id = path(id)?;
    state.services.sessions.revoke(&call, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/v1/users/{id}/sessions/revoke",
    tag = "sessions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 204, description = "Every session of the user revoked: signed out everywhere (scope manage)"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/users/{id}/sessions/revoke` → 204.
pub async fn revoke_all(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let id = path(id)?;
    state.services.sessions.revoke_all(&call, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/users/{id}/sessions",
    tag = "sessions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user's active sessions (scope read)", body = SessionList),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/users/{id}/sessions` → `{"sessions": [...]}` (never tokens).
pub async fn list(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionList>, ServiceError> {
    let id = path(id)?;
    let sessions = state.services.sessions.list(&call, &id).await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(Session::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/tokens/introspect",
    tag = "sessions",
    security(("api_key" = [])),
    request_body = IntrospectBody,
    responses(
        (status = 200, description = "RFC 7662: active, or only `active: false` (scope read)", body = Introspected),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/tokens/introspect` `{"token"}` → 200 RFC 7662.
pub async fn introspect(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<IntrospectBody>, ServiceError>,
) -> Result<Json<Introspected>, ServiceError> {
    let StrictJson(body) = body?;
    let answer = state
        .services
        .sessions
        .introspect(&call, &body.token)
        .await?;
    Ok(Json(answer.into()))
}
