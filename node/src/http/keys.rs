//! `/v1/admin/tenants` and `/v1/admin/keys…` (operator token): tenants, their
//! home regions, data key and master key rotation.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::{bearer, AppState};
use crate::error::ServiceError;
use crate::http::body::StrictJson;
use axum::http::StatusCode;

use crate::service::{CreatedTenant, KeysView, RotatedTenantKey, StagedMasterKey, TenantSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    tenant: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateMasterBody {
    fingerprint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    name: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    session_idle_timeout_secs: Option<u64>,
    #[serde(default)]
    session_absolute_timeout_secs: Option<u64>,
}

/// `POST /v1/admin/tenants` `{"name", "region"?, "session_idle_timeout_secs"?,
/// "session_absolute_timeout_secs"?}` → 201 the tenant and its first API key
/// (all scopes; shown once).
pub async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<CreateTenantBody>, ServiceError>,
) -> Result<(StatusCode, Json<CreatedTenant>), ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let StrictJson(body) = body?;
    let tenant = state
        .services
        .create_tenant(
            &body.name,
            body.region.as_deref(),
            TenantSettings {
                session_idle_timeout_secs: body.session_idle_timeout_secs,
                session_absolute_timeout_secs: body.session_absolute_timeout_secs,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// `GET /v1/admin/tenants` → `{"tenants": [...]}`.
pub async fn list_tenants(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let tenants = state.services.list_tenants().await?;
    Ok(Json(serde_json::json!({ "tenants": tenants })))
}

/// `GET /v1/admin/keys`: key versions (never key material).
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<KeysView>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    Ok(Json(state.services.keys_view().await?))
}

/// `POST /v1/admin/keys/rotate` `{"tenant"}`: a new data key version.
pub async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<RotateBody>, ServiceError>,
) -> Result<Json<RotatedTenantKey>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let StrictJson(body) = body?;
    Ok(Json(state.services.rotate_tenant_key(&body.tenant).await?))
}

/// `POST /v1/admin/keys/master/stage` `{"key_file"}`: load a new master key on
/// this node (every node, before `master/rotate`).
pub async fn stage_master(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<StageBody>, ServiceError>,
) -> Result<Json<StagedMasterKey>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let StrictJson(body) = body?;
    Ok(Json(state.services.stage_master_key(&body.key_file).await?))
}

/// `POST /v1/admin/keys/master/rotate` `{"fingerprint"}`: re-wrap every data key
/// under the staged master key.
pub async fn rotate_master(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<StrictJson<RotateMasterBody>, ServiceError>,
) -> Result<Json<KeysView>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let StrictJson(body) = body?;
    Ok(Json(
        state.services.rotate_master_key(&body.fingerprint).await?,
    ))
}
