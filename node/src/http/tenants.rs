//! `/v1/admin/tenants…` and `/v1/admin/keys/rotate` (the operator): tenants,
//! their settings and home regions, and their data key rotation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{path, StrictJson};
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::tenants::{
    CreatedTenant, RateLimitTable, RotatedTenantKey, TenantSettings, TenantView,
};
use crate::service::Call;

/// A tenant (never its keys).
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// Its home region: where its data lives.
    pub region: String,
    pub created_at: u64,
    /// A session ends this long after its last sign-in or refresh (seconds).
    pub session_idle_timeout_secs: u64,
    /// A session ends this long after its sign-in, whatever its use (seconds).
    pub session_absolute_timeout_secs: u64,
    /// How long after a rotation the previous refresh token is a lost-answer
    /// retry (seconds); after that, presenting it is reuse.
    pub refresh_retry_grace_secs: u64,
    /// Every bucket in effect, by action and scope.
    #[schema(value_type = Object)]
    pub rate_limits: RateLimitTable,
    /// Whether new passwords are checked against the breached-password service.
    pub breached_password_check: bool,
}

impl From<TenantView> for Tenant {
    fn from(t: TenantView) -> Self {
        Self {
            id: t.id,
            name: t.name,
            region: t.region,
            created_at: t.created_at,
            session_idle_timeout_secs: t.session_idle_timeout_secs,
            session_absolute_timeout_secs: t.session_absolute_timeout_secs,
            refresh_retry_grace_secs: t.refresh_retry_grace_secs,
            rate_limits: t.rate_limits,
            breached_password_check: t.breached_password_check,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// 1-128 characters of A-Z, a-z, 0-9, `-`, `_`, `.`.
    pub name: String,
    /// Default: the cluster's default region.
    #[serde(default)]
    pub region: Option<String>,
    /// Default: 30 days.
    #[serde(default)]
    pub session_idle_timeout_secs: Option<u64>,
    /// Default: 90 days.
    #[serde(default)]
    pub session_absolute_timeout_secs: Option<u64>,
    /// 0-60; default 10.
    #[serde(default)]
    pub refresh_retry_grace_secs: Option<u64>,
    /// `{"sign_in": {"email": {"burst": 10, "per_minute": 2}}}`: buckets that
    /// replace the cluster's defaults; a bucket not named keeps its value.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rate_limits: Option<RateLimitTable>,
    /// Default: false.
    #[serde(default)]
    pub breached_password_check: Option<bool>,
}

/// A new tenant and its first API key (every scope but `client_info`), shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenantBody {
    pub id: String,
    pub name: String,
    pub region: String,
    pub created_at: u64,
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
    pub refresh_retry_grace_secs: u64,
    #[schema(value_type = Object)]
    pub rate_limits: RateLimitTable,
    pub breached_password_check: bool,
    pub api_key: String,
    pub api_key_id: String,
}

impl From<CreatedTenant> for CreatedTenantBody {
    fn from(c: CreatedTenant) -> Self {
        let t = c.tenant;
        Self {
            id: t.id,
            name: t.name,
            region: t.region,
            created_at: t.created_at,
            session_idle_timeout_secs: t.session_idle_timeout_secs,
            session_absolute_timeout_secs: t.session_absolute_timeout_secs,
            refresh_retry_grace_secs: t.refresh_retry_grace_secs,
            rate_limits: t.rate_limits,
            breached_password_check: t.breached_password_check,
            api_key: c.api_key,
            api_key_id: c.api_key_id,
        }
    }
}

/// The settings to change; a field left out keeps its value. New lifetimes
/// apply to sessions signed in from then on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantBody {
    #[serde(default)]
    pub session_idle_timeout_secs: Option<u64>,
    #[serde(default)]
    pub session_absolute_timeout_secs: Option<u64>,
    #[serde(default)]
    pub refresh_retry_grace_secs: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rate_limits: Option<RateLimitTable>,
    #[serde(default)]
    pub breached_password_check: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// The tenant's name.
    pub tenant: String,
}

/// The tenant's new data key version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub tenant: String,
    pub tenant_id: String,
    pub key_version: u32,
}

impl From<RotatedTenantKey> for RotatedKey {
    fn from(r: RotatedTenantKey) -> Self {
        Self {
            tenant: r.tenant,
            tenant_id: r.tenant_id,
            key_version: r.key_version,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/admin/tenants",
    tag = "tenants",
    security(("operator" = [])),
    request_body = CreateTenantBody,
    responses(
        (status = 201, description = "The tenant and its first API key (shown once)", body = CreatedTenantBody),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "tenant_exists", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/tenants` → 201 the tenant and its first API key.
pub async fn create(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<CreateTenantBody>, ServiceError>,
) -> Result<(StatusCode, Json<CreatedTenantBody>), ServiceError> {
    let StrictJson(body) = body?;
    let settings = TenantSettings {
        session_idle_timeout_secs: body.session_idle_timeout_secs,
        session_absolute_timeout_secs: body.session_absolute_timeout_secs,
        refresh_retry_grace_secs: body.refresh_retry_grace_secs,
        rate_limits: body.rate_limits,
        breached_password_check: body.breached_password_check,
    };
    let tenant = state
        .services
        .tenants
        .create(&call, &body.name, body.region.as_deref(), settings)
        .await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    tag = "tenants",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Every tenant", body = TenantList),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/admin/tenants` → `{"tenants": [...]}`.
pub async fn list(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<TenantList>, ServiceError> {
    let tenants = state.services.tenants.list(&call).await?;
    Ok(Json(TenantList {
        tenants: tenants.into_iter().map(Tenant::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}",
    tag = "tenants",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/admin/tenants/{id}`.
pub async fn get(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Tenant>, ServiceError> {
    let id = path(id)?;
    Ok(Json(state.services.tenants.get(&call, &id).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/v1/admin/tenants/{id}",
    tag = "tenants",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id")),
    request_body = UpdateTenantBody,
    responses(
        (status = 200, description = "The tenant as changed", body = Tenant),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `PATCH /v1/admin/tenants/{id}` → the tenant as changed.
pub async fn update(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<UpdateTenantBody>, ServiceError>,
) -> Result<Json<Tenant>, ServiceError> {
    let id = path(id)?;
    let StrictJson(body) = body?;
    let settings = TenantSettings {
        session_idle_timeout_secs: body.session_idle_timeout_secs,
        session_absolute_timeout_secs: body.session_absolute_timeout_secs,
        refresh_retry_grace_secs: body.refresh_retry_grace_secs,
        rate_limits: body.rate_limits,
        breached_password_check: body.breached_password_check,
    };
    let tenant = state.services.tenants.update(&call, &id, settings).await?;
    Ok(Json(tenant.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}",
    tag = "tenants",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id")),
    responses(
        (status = 204, description = "Deleted: its data in every region is unreadable"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `DELETE /v1/admin/tenants/{id}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let id = path(id)?;
    state.services.tenants.delete(&call, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/v1/admin/keys/rotate",
    tag = "tenants",
    security(("operator" = [])),
    request_body = RotateKeyBody,
    responses(
        (status = 200, description = "The new data key version", body = RotatedKey),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/keys/rotate` `{"tenant"}`: a new data key version.
pub async fn rotate_key(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<RotateKeyBody>, ServiceError>,
) -> Result<Json<RotatedKey>, ServiceError> {
    let StrictJson(body) = body?;
    let rotated = state
        .services
        .tenants
        .rotate_key(&call, &body.tenant)
        .await?;
    Ok(Json(rotated.into()))
}
