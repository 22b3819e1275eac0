//! `/v1/admin/tenants/{id}/api-keys…` (the operator): issuing and revoking a
//! tenant's API keys.

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
use crate::service::api_keys::IssuedApiKey;
use crate::service::Call;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyBody {
    /// Some of `read`, `write`, `manage`, `delete`.
    pub scopes: Vec<String>,
}

/// A new API key, shown once.
#[derive(Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub api_key: String,
    /// Sorted, without duplicates.
    pub scopes: Vec<String>,
    pub created_at: u64,
}

impl From<IssuedApiKey> for ApiKey {
    fn from(k: IssuedApiKey) -> Self {
        Self {
            id: k.id,
            api_key: k.api_key,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: k.created_at,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/admin/tenants/{id}/api-keys",
    tag = "api_keys",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id")),
    request_body = CreateApiKeyBody,
    responses(
        (status = 201, description = "The key (shown once)", body = ApiKey),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/tenants/{id}/api-keys` `{"scopes"}` → 201 the key (shown once).
pub async fn create(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<CreateApiKeyBody>, ServiceError>,
) -> Result<(StatusCode, Json<ApiKey>), ServiceError> {
    let id = path(id)?;
    let StrictJson(body) = body?;
    let key = state
        .services
        .api_keys
        .create(&call, &id, &body.scopes)
        .await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}/api-keys/{key_id}",
    tag = "api_keys",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id"), ("key_id" = String, Path, description = "The API key id")),
    responses(
        (status = 204, description = "Revoked on every node"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "api_key_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `DELETE /v1/admin/tenants/{id}/api-keys/{key_id}` → 204.
pub async fn revoke(
    State(state): State<AppState>,
    call: Call,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ServiceError> {
    let (id, key_id) = path(ids)?;
    state.services.api_keys.revoke(&call, &id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
