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
use super::problem::Problem;
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

/// The tenant the operator names (`X-Tenant`; ignored for an API key). The
/// route's `admit` has read it before the caller (an invalid header refuses
/// the request whoever makes it) and checked the tenant for the operator.
pub struct XTenant(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for XTenant {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        super::extract::x_tenant(&parts.headers).map(Self)
    }
}

fn key(path: Result<Path<String>, PathRejection>) -> Result<String, ServiceError> {
    path.map(|Path(k)| k)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid key in path: {e}")))
}

#[utoipa::path(
    put,
    path = "/v1/kv/{key}",
    tag = "kv",
    security(("api_key" = []), ("operator" = [])),
    params(("key" = String, Path, description = "The key name (URL-encoded; may contain `/`)"), ("X-Tenant" = Option<String>, Header, description = "The tenant, for the operator (ignored for an API key)")),
    request_body = PutBody,
    responses(
        (status = 200, description = "The entry written (scope write)", body = Entry),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "revision_mismatch", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
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
        .put(
            &call,
            tenant.as_deref(),
            &key,
            body.value,
            body.expected_revision,
        )
        .await?;
    Ok(Json(entry.into()))
}

#[utoipa::path(
    get,
    path = "/v1/kv/{key}",
    tag = "kv",
    security(("api_key" = []), ("operator" = [])),
    params(("key" = String, Path, description = "The key name (URL-encoded; may contain `/`)"), ("X-Tenant" = Option<String>, Header, description = "The tenant, for the operator (ignored for an API key)")),
    responses(
        (status = 200, description = "The entry (scope read)", body = Entry),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "key_not_found, tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "decryption_failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/kv/{key}` → the entry.
pub async fn get(
    State(state): State<AppState>,
    XTenant(tenant): XTenant,
    call: Call,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Entry>, ServiceError> {
    let key = key(path)?;
    let entry = state
        .services
        .kv
        .get(&call, tenant.as_deref(), &key)
        .await?;
    Ok(Json(entry.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/kv/{key}",
    tag = "kv",
    security(("api_key" = []), ("operator" = [])),
    params(("key" = String, Path, description = "The key name (URL-encoded; may contain `/`)"), ("X-Tenant" = Option<String>, Header, description = "The tenant, for the operator (ignored for an API key)"), DeleteParams),
    responses(
        (status = 204, description = "Deleted, or absent (scope delete)"),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope: the API key lacks the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "revision_mismatch", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
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
