//! `/v1/users…` (a tenant API key): users of the calling tenant.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::extract::{path, ClientBody, StrictJson};
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::users::{UserPatch, UserView};
use crate::service::Call;

/// A user (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub region: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub has_password: bool,
    /// Failed sign-ins since the last successful one.
    pub failed_sign_ins: FailedSignIns,
}

/// A user's failed sign-ins since its last successful one (`last_at`, unix
/// seconds, and `last_ip` of the latest; null if none).
#[derive(Serialize, ToSchema)]
pub struct FailedSignIns {
    pub count: u64,
    pub last_at: Option<u64>,
    pub last_ip: Option<String>,
}

impl From<UserView> for User {
    fn from(u: UserView) -> Self {
        Self {
            id: u.id,
            email: u.email,
            region: u.region,
            created_at: u.created_at,
            updated_at: u.updated_at,
            has_password: u.has_password,
            failed_sign_ins: FailedSignIns {
                count: u.failed_sign_ins.count,
                last_at: u.failed_sign_ins.last_at,
                last_ip: u.failed_sign_ins.last_ip,
            },
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    /// 8-256 characters; without one, the user cannot sign in with a password.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub password: Option<Zeroizing<String>>,
    /// Default: the tenant's home region.
    #[serde(default)]
    pub region: Option<String>,
    /// The end user signing up (scope `client_info`).
    #[serde(default)]
    pub client: Option<ClientBody>,
}

/// The email and/or the password to change (at least one).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub password: Option<Zeroizing<String>>,
    /// With a new password: the session kept; every other session of the
    /// user is revoked with the change.
    #[serde(default)]
    pub keep_session_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    security(("api_key" = [])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The user (scope write)", body = User),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_taken", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/users` → 201 the user.
pub async fn create(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<CreateUserBody>, ServiceError>,
) -> Result<(StatusCode, Json<User>), ServiceError> {
    let StrictJson(body) = body?;
    let call = call.on_behalf_of(body.client.map(Into::into))?;
    let user = state
        .services
        .users
        .create(&call, &body.email, body.password, body.region.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user (scope read)", body = User),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/users/{id}`.
pub async fn get(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ServiceError> {
    let id = path(id)?;
    Ok(Json(state.services.users.get(&call, &id).await?.into()))
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    /// The next page's `cursor`; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/users` paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// 1-100, default 50.
    #[serde(default)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of the tenant's users, ordered by id across regions (scope read)", body = UserList),
        (status = 400, description = "invalid_request: a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or a region or the master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/users?cursor&limit` → `{"users", "next_cursor"}`.
pub async fn list(
    State(state): State<AppState>,
    call: Call,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<UserList>, ServiceError> {
    let params = params
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid query: {e}")))?
        .0;
    let (users, next_cursor) = state
        .services
        .users
        .list(&call, params.cursor.as_deref(), params.limit)
        .await?;
    Ok(Json(UserList {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// `POST /v1/users/lookup`: the email to find the user of.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupUserBody {
    pub email: String,
}

#[utoipa::path(
    post,
    path = "/v1/users/lookup",
    tag = "users",
    security(("api_key" = [])),
    request_body = LookupUserBody,
    responses(
        (status = 200, description = "The user holding the email (scope read)", body = User),
        (status = 400, description = "invalid_request: a malformed body or not an email", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_ambiguous", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/users/lookup {"email"}` → the user (a POST: the address never
/// goes in a URL).
pub async fn lookup(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<LookupUserBody>, ServiceError>,
) -> Result<Json<User>, ServiceError> {
    let StrictJson(body) = body?;
    Ok(Json(
        state
            .services
            .users
            .lookup(&call, &body.email)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "users",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    request_body = UpdateUserBody,
    responses(
        (status = 200, description = "The user as changed (scope write)", body = User),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_taken, conflict", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `PATCH /v1/users/{id}` `{"email"?, "password"?}`.
pub async fn update(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<UpdateUserBody>, ServiceError>,
) -> Result<Json<User>, ServiceError> {
    let id = path(id)?;
    let StrictJson(body) = body?;
    let patch = UserPatch {
        email: body.email,
        password: body.password,
        keep_session_id: body.keep_session_id,
    };
    Ok(Json(
        state.services.users.update(&call, &id, patch).await?.into(),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses(
        (status = 204, description = "The user and all its sessions are gone (scope delete)"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "user_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `DELETE /v1/users/{id}` → 204 (the user and all its sessions).
pub async fn delete(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let id = path(id)?;
    state.services.users.delete(&call, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
