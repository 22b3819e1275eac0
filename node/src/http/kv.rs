//! `/v1/kv/{key}`: tenant key-value over HTTP (a tenant API key, or the
//! operator naming the tenant in `X-Tenant`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::StrictJson;
use super::AppState;
use crate::error::ServiceError;
use crate::service::kv::KvEntry;
use crate::service::Call;

/// A key's value and the revision (the write's sequence number in the log)
/// that wrote it.
#[derive(Serialize, ToSchema)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub revision: u64,
}

impl From<KvEntry> for Entry {
    fn from(e: KvEntry) -> Self {
        Self {
            key: e.key,
            value: e.value,
            revision: e.revision,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// At most 64 KiB.
    value: String,
    /// Compare-and-set: write only if the key's revision is this (0: the key
    /// must not exist).
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete only if the key's revision is this.
    #[serde(default)]
    expected_revision: Option<u64>,
}

/// The tenant the operator names (`X-Tenant`; ignored for an API key). Read
/// before the caller, as an invalid header refuses the request whoever makes it.
pub struct XTenant(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for XTenant {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("x-tenant") {
            Some(v) => v.to_str().map(|t| Self(Some(t.to_owned()))).map_err(|_| {
                ServiceError::InvalidRequest("X-Tenant is not valid text".to_owned())
            }),
            None => Ok(Self(None)),
        }
    }
}

fn key(path: Result<Path<String>, PathRejection>) -> Result<String, ServiceError> {
    path.map(|Path(k)| k)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid key in path: {e}")))
}

/// `PUT /v1/kv/{key}` `{"value", "expected_revision"?}` → the entry written.
pub async fn put(
    State(state): State<AppState>,
    XTenant(tenant): XTenant,
    call: Call,
    path: Result<Path<String>, PathRejection>,
    body: Result<StrictJson<PutBody>, ServiceError>,
) -> Result<Json<Entry>, ServiceError> {
    let key = key(path)?;
    let StrictJson(body) = body?;
    let entry = state
        .services
        .kv
        .put(&call, tenant.as_deref(), &key, body.value, body.expected_revision)
        .await?;
    Ok(Json(entry.into()))
}

/// `GET /v1/kv/{key}` → the entry.
pub async fn get(
    State(state): State<AppState>,
    XTenant(tenant): XTenant,
    call: Call,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Entry>, ServiceError> {
    let key = key(path)?;
    let entry = state.services.kv.get(&call, tenant.as_deref(), &key).await?;
    Ok(Json(entry.into()))
}

/// `DELETE /v1/kv/{key}` `?expected_revision` → 204 (an absent key too).
pub async fn delete(
    State(state): State<AppState>,
    XTenant(tenant): XTenant,
    call: Call,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<StatusCode, ServiceError> {
    let key = key(path)?;
    let params = params
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid query: {e}")))?
        .0;
    state
        .services
        .kv
        .delete(&call, tenant.as_deref(), &key, params.expected_revision)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
