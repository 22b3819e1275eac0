//! `/v1/admin/keys` and `/v1/admin/keys/master/…` (the operator): key versions,
//! staging a new master key on a node, rotating the cluster to it.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::StrictJson;
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::master_key::{KeysView, MasterKeyView, StagedMasterKey};
use crate::service::Call;

/// Key versions of the master key and of every tenant (never key material).
#[derive(Debug, Serialize, ToSchema)]
pub struct Keys {
    /// The cluster's current master key (`null` before the first tenant).
    pub master_key: Option<MasterKeyVersion>,
    pub retired_master_keys: Vec<MasterKeyVersion>,
    /// Fingerprints of the master keys this node holds.
    pub node_master_keys: Vec<String>,
    pub tenants: Vec<TenantKeyVersions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MasterKeyVersion {
    pub version: u32,
    pub fingerprint: String,
    pub since: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantKeyVersions {
    pub name: String,
    pub id: String,
    /// The version new writes are sealed under.
    pub key_version: u32,
    pub key_versions: Vec<KeyVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersion {
    pub version: u32,
    pub master_key_version: u32,
    pub created_at: u64,
}

impl From<MasterKeyView> for MasterKeyVersion {
    fn from(m: MasterKeyView) -> Self {
        Self {
            version: m.version,
            fingerprint: m.fingerprint,
            since: m.since,
        }
    }
}

impl From<KeysView> for Keys {
    fn from(k: KeysView) -> Self {
        Self {
            master_key: k.master_key.map(Into::into),
            retired_master_keys: k.retired_master_keys.into_iter().map(Into::into).collect(),
            node_master_keys: k.node_master_keys,
            tenants: k
                .tenants
                .into_iter()
                .map(|t| TenantKeyVersions {
                    name: t.name,
                    id: t.id,
                    key_version: t.key_version,
                    key_versions: t
                        .key_versions
                        .into_iter()
                        .map(|v| KeyVersion {
                            version: v.version,
                            master_key_version: v.master_key_version,
                            created_at: v.created_at,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    /// An absolute path on the node's host; the file mode 0600 or stricter.
    pub key_file: String,
}

/// The master key now loaded on this node.
#[derive(Debug, Serialize, ToSchema)]
pub struct Staged {
    pub node: u64,
    pub fingerprint: String,
}

impl From<StagedMasterKey> for Staged {
    fn from(s: StagedMasterKey) -> Self {
        Self {
            node: s.node,
            fingerprint: s.fingerprint,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateMasterBody {
    /// The staged key's fingerprint.
    pub fingerprint: String,
}

#[utoipa::path(
    get,
    path = "/v1/admin/keys",
    tag = "master_key",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Key versions (never key material)", body = Keys),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `GET /v1/admin/keys`: key versions (never key material).
pub async fn view(State(state): State<AppState>, call: Call) -> Result<Json<Keys>, ServiceError> {
    Ok(Json(state.services.master_key.view(&call).await?.into()))
}

#[utoipa::path(
    post,
    path = "/v1/admin/keys/master/stage",
    tag = "master_key",
    security(("operator" = [])),
    request_body = StageBody,
    responses(
        (status = 200, description = "The master key loaded on this node", body = Staged),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/keys/master/stage` `{"key_file"}`: load a new master key on
/// this node (every node, before `master/rotate`).
pub async fn stage(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<StageBody>, ServiceError>,
) -> Result<Json<Staged>, ServiceError> {
    let StrictJson(body) = body?;
    let staged = state
        .services
        .master_key
        .stage(&call, &body.key_file)
        .await?;
    Ok(Json(staged.into()))
}

#[utoipa::path(
    post,
    path = "/v1/admin/keys/master/rotate",
    tag = "master_key",
    security(("operator" = [])),
    request_body = RotateMasterBody,
    responses(
        (status = 200, description = "Key versions after the rotation", body = Keys),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "conflict", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "master_key_unavailable, unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/admin/keys/master/rotate` `{"fingerprint"}`: re-wrap every data key
/// under the staged master key.
pub async fn rotate(
    State(state): State<AppState>,
    call: Call,
    body: Result<StrictJson<RotateMasterBody>, ServiceError>,
) -> Result<Json<Keys>, ServiceError> {
    let StrictJson(body) = body?;
    let keys = state
        .services
        .master_key
        .rotate(&call, &body.fingerprint)
        .await?;
    Ok(Json(keys.into()))
}
