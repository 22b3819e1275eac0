//! `/v1/kv/{key}`: tenant key-value over HTTP.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{bearer, AppState};
use crate::error::ServiceError;
use crate::http::body::StrictJson;
use crate::keyring::TenantKeys;
use crate::service::{KvEntry, Scope};
use std::sync::Arc;
use tokio::time::Instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    value: String,
    #[serde(default)]
    expected_revision: Option<u64>,
}

/// Never prints the value: tenant data stays out of logs and panic messages.
impl std::fmt::Debug for PutBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutBody")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("expected_revision", &self.expected_revision)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    #[serde(default)]
    expected_revision: Option<u64>,
}

/// The tenant a call acts for: a tenant API key's (with `scope`), or the one the
/// operator names in `X-Tenant`.
async fn tenant(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
    since: Instant,
) -> Result<Arc<TenantKeys>, ServiceError> {
    let x_tenant =
        match headers.get("x-tenant") {
            Some(v) => Some(v.to_str().map_err(|_| {
                ServiceError::InvalidRequest("X-Tenant is not valid text".to_owned())
            })?),
            None => None,
        };
    state
        .services
        .kv_tenant(bearer(headers), x_tenant, scope, since)
        .await
}

fn key(path: Result<Path<String>, PathRejection>) -> Result<String, ServiceError> {
    path.map(|Path(k)| k)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid key in path: {e}")))
}

pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<PutBody>, ServiceError>,
) -> Result<Json<KvEntry>, ServiceError> {
    let tenant = tenant(&state, &headers, Scope::Write, Instant::now()).await?;
    let key = key(path)?;
    let StrictJson(body) = body?;
    let entry = state
        .services
        .kv_put(&tenant, &key, body.value, body.expected_revision)
        .await?;
    Ok(Json(entry))
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<KvEntry>, ServiceError> {
    // Both reads (the API key, the value) may take read indexes from any moment
    // after the request arrived: a round another request started since may
    // serve them.
    let since = Instant::now();
    let tenant = tenant(&state, &headers, Scope::Read, since).await?;
    let key = key(path)?;
    Ok(Json(state.services.kv_get(tenant, &key, since).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<axum::extract::Query<DeleteParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ServiceError> {
    let tenant = tenant(&state, &headers, Scope::Delete, Instant::now()).await?;
    let key = key(path)?;
    let params = params
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid query: {e}")))?
        .0;
    state
        .services
        .kv_delete(&tenant, &key, params.expected_revision)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
