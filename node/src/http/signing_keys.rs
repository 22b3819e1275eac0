//! Token signing keys over HTTP: the public JWKS (cacheable, no credentials)
//! and the operator's rotation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::path;
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::signing_keys::Jwks;
use crate::service::Call;

/// A JSON Web Key Set (RFC 7517), newest key first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksBody {
    /// Public Ed25519 JWKs (RFC 8037): `kty` "OKP", `crv` "Ed25519", `alg`
    /// "EdDSA", `use` "sig", `kid`, and `x` (the base64url public key).
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

impl From<Jwks> for JwksBody {
    fn from(j: Jwks) -> Self {
        Self { keys: j.keys }
    }
}

#[utoipa::path(
    post,
    path = "/v1/admin/tenants/{id}/signing-keys/rotate",
    tag = "signing_keys",
    security(("operator" = [])),
    params(("id" = String, Path, description = "The tenant id")),
    responses(
        (status = 200, description = "The new JWKS (the retired key stays published until its tokens expire)", body = JwksBody),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/tenants/{id}/signing-keys/rotate` → 200 the new JWKS.
pub async fn rotate(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<JwksBody>, ServiceError> {
    let id = path(id)?;
    let jwks = state.services.signing_keys.rotate(&call, &id).await?;
    Ok(Json(jwks.into()))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{id}/jwks.json",
    tag = "signing_keys",
    params(("id" = String, Path, description = "The tenant id")),
    responses(
        (status = 200, description = "The tenant's public keys (cacheable for 300 s)", body = JwksBody),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/tenants/{id}/jwks.json`: public, cacheable.
pub async fn jwks(
    State(state): State<AppState>,
    call: Call,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ServiceError> {
    let id = path(id)?;
    let jwks = state.services.signing_keys.jwks(&call, &id).await?;
    let mut resp = Json(JwksBody::from(jwks)).into_response();
    // Short enough that a rotation is picked up well within a token lifetime;
    // verifiers refetch on an unknown `kid` anyway.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
