//! The auth API over HTTP: tenant administration (operator token), users,
//! sessions, tokens (tenant API keys), and the public JWKS.

use std::net::SocketAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{bearer, AppState};
use crate::error::ServiceError;
use crate::http::body::StrictJson;
use crate::service::{
    Introspection, IssuedApiKey, IssuedSession, Principal, RefreshedSession, SignInContext,
    TenantSettings, TenantView, UserPatch, UserView,
};

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ServiceError> {
    p.map(|Path(v)| v)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid path: {e}")))
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ServiceError> {
    state.services.authenticate(bearer(headers)).await
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

// ---- tenant administration (operator token) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyBody {
    scopes: Vec<String>,
}

/// `GET /v1/admin/tenants/{id}` → the tenant and its settings.
pub async fn get_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TenantView>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    Ok(Json(state.services.get_tenant(&path(id)?).await?))
}

/// `PATCH /v1/admin/tenants/{id}` `{"session_idle_timeout_secs"?,
/// "session_absolute_timeout_secs"?}` → the tenant as changed. New lifetimes
/// apply to sessions signed in from then on.
pub async fn update_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<TenantSettings>, ServiceError>,
) -> Result<Json<TenantView>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let id = path(id)?;
    let StrictJson(settings) = body?;
    Ok(Json(state.services.update_tenant(&id, settings).await?))
}

/// `DELETE /v1/admin/tenants/{id}` → 204.
pub async fn delete_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    state.services.delete_tenant(&path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/tenants/{id}/api-keys` `{"scopes"}` → 201 the key (shown once).
pub async fn create_api_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<ApiKeyBody>, ServiceError>,
) -> Result<(StatusCode, Json<IssuedApiKey>), ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let id = path(id)?;
    let StrictJson(body) = body?;
    let key = state.services.create_api_key(&id, &body.scopes).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `DELETE /v1/admin/tenants/{id}/api-keys/{key_id}` → 204.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let (id, key_id) = path(ids)?;
    state.services.revoke_api_key(&id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/tenants/{id}/signing-keys/rotate` → 200 the new JWKS.
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let jwks = state.services.rotate_signing_key(&path(id)?).await?;
    Ok(Json(jwks).into_response())
}

/// `GET /v1/tenants/{tenant_id}/jwks.json`: public, cacheable.
pub async fn jwks(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ServiceError> {
    let jwks = state.services.jwks(&path(id)?).await?;
    let mut resp = Json(jwks).into_response();
    // Short enough that a rotation is picked up well within a token lifetime;
    // verifiers refetch on an unknown `kid` anyway.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    email: String,
    #[serde(default)]
    password: Option<Zeroizing<String>>,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUserBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    password: Option<Zeroizing<String>>,
}

/// `POST /v1/users` → 201 the user.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<CreateUserBody>, ServiceError>,
) -> Result<(StatusCode, Json<UserView>), ServiceError> {
    let p = principal(&state, &headers).await?;
    let StrictJson(body) = body?;
    let user = state
        .services
        .create_user(&p, &body.email, body.password, body.region.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `GET /v1/users/{id}`.
pub async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<UserView>, ServiceError> {
    let p = principal(&state, &headers).await?;
    Ok(Json(state.services.get_user(&p, &path(id)?).await?))
}

/// `PATCH /v1/users/{id}` `{"email"?, "password"?}`.
pub async fn patch_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<PatchUserBody>, ServiceError>,
) -> Result<Json<UserView>, ServiceError> {
    let p = principal(&state, &headers).await?;
    let id = path(id)?;
    let StrictJson(body) = body?;
    let patch = UserPatch {
        email: body.email,
        password: body.password,
    };
    Ok(Json(state.services.update_user(&p, &id, patch).await?))
}

/// `DELETE /v1/users/{id}` → 204.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let p = principal(&state, &headers).await?;
    state.services.delete_user(&p, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/users/{id}/sessions` → `{"sessions": [...]}` (never tokens).
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ServiceError> {
    let p = principal(&state, &headers).await?;
    let sessions = state.services.list_sessions(&p, &path(id)?).await?;
    Ok(Json(serde_json::json!({ "sessions": sessions })))
}

// ---- sessions and tokens ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    email: String,
    password: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectBody {
    token: Zeroizing<String>,
    /// RFC 7662's optional hint; accepted and not needed (the token's form tells).
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// `POST /v1/sessions` `{"email", "password"}` → 201 a session and its tokens.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<StrictJson<SignInBody>, ServiceError>,
) -> Result<(StatusCode, Json<IssuedSession>), ServiceError> {
    let p = principal(&state, &headers).await?;
    let StrictJson(body) = body?;
    let ctx = SignInContext {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    };
    let session = state
        .services
        .sign_in(&p, &body.email, body.password, ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// `POST /v1/sessions/refresh` `{"refresh_token"}` → 200 the rotated pair.
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<RefreshBody>, ServiceError>,
) -> Result<Json<RefreshedSession>, ServiceError> {
    let p = principal(&state, &headers).await?;
    let StrictJson(body) = body?;
    let pair = state
        .services
        .refresh(&p, &body.refresh_token, request_id(&headers))
        .await?;
    Ok(Json(pair))
}

/// `POST /v1/sessions/{id}/revoke` → 204.
pub async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let p = principal(&state, &headers).await?;
    state.services.revoke_session(&p, &path(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tokens/introspect` `{"token"}` → 200 RFC 7662.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<IntrospectBody>, ServiceError>,
) -> Result<Json<Introspection>, ServiceError> {
    let p = principal(&state, &headers).await?;
    let StrictJson(body) = body?;
    Ok(Json(state.services.introspect(&p, &body.token).await?))
}
