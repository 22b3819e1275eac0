//! Health, readiness, cluster status, init, compaction and (with fault
//! injection) partitions over HTTP.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::StrictJson;
use super::problem::Problem;
use super::AppState;
use crate::error::ServiceError;
use crate::service::cluster::NodeStatus;
use crate::service::Call;

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// This node and its view of every group.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeStatusBody {
    pub id: u64,
    pub region: String,
    pub cluster: String,
    pub ready: bool,
    /// Admitted by `cairn init`: only admitted nodes vote (a data dir created
    /// after init, e.g. a wiped disk, is not).
    pub admitted: bool,
    /// One row per group (`cairn status` prints them): name, role, leader,
    /// term, indexes, members, replication progress.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<cairn_raft::GroupStatus>,
    pub wire_version: WireVersionBody,
    /// Refresh proof walks since the node started.
    pub refresh_proof_walks: ProofWalksBody,
    /// Reads of `meta` for credentials since the node started.
    pub key_lookups: KeyLookupsBody,
}

/// What authenticating costs this node: API keys read from `meta` (cache
/// misses), unknown key ids answered from the negative cache without a read,
/// and tenants' signing keys read from `meta` (an unknown `kid` at
/// introspection reads them at most once per `meta` change).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyLookupsBody {
    pub api_key_reads: u64,
    pub unknown_api_key_hits: u64,
    pub signing_key_reads: u64,
}

/// What garbage refresh tokens cost this node: walks run (on the blocking
/// pool), the HMACs they computed, and walks refused over the bound.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProofWalksBody {
    pub walks: u64,
    pub hmacs: u64,
    pub refused: u64,
}

/// The log entry formats (wire versions): the highest this node's binary
/// decodes, and the one the cluster writes, as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WireVersionBody {
    pub node: u32,
    pub cluster: u32,
}

/// `POST /v1/cluster/wire-version`: the version to raise the cluster to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWireVersionBody {
    pub version: u32,
}

/// The cluster's wire version after the change.
#[derive(Debug, Serialize, ToSchema)]
pub struct WireVersionSetBody {
    pub cluster: u32,
}

impl From<NodeStatus> for NodeStatusBody {
    fn from(s: NodeStatus) -> Self {
        Self {
            id: s.id,
            region: s.region,
            cluster: s.cluster,
            ready: s.ready,
            admitted: s.admitted,
            groups: s.groups,
            wire_version: WireVersionBody {
                node: s.wire_version.node,
                cluster: s.wire_version.cluster,
            },
            refresh_proof_walks: ProofWalksBody {
                walks: s.work.proof_walks,
                hmacs: s.work.proof_walk_hmacs,
                refused: s.work.proof_walks_refused,
            },
            key_lookups: KeyLookupsBody {
                api_key_reads: s.work.api_key_reads,
                unknown_api_key_hits: s.work.unknown_api_key_hits,
                signing_key_reads: s.work.signing_key_reads,
            },
        }
    }
}

/// What `cairn init` did to each group.
#[derive(Debug, Serialize, ToSchema)]
pub struct InitReport {
    pub groups: Vec<InitGroup>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InitGroup {
    pub group: String,
    /// `Initialized` or `AlreadyInitialized`.
    pub outcome: String,
}

/// Each group's snapshot after a compaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompactReport {
    pub groups: Vec<CompactedGroup>,
    pub node: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompactedGroup {
    pub group: String,
    pub snapshot_index: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionBody {
    /// The node ids whose peer traffic is dropped (empty heals).
    pub blocked: Vec<u64>,
}

/// The partition now in force on this node.
#[derive(Debug, Serialize, ToSchema)]
pub struct Partition {
    pub blocked: Vec<u64>,
    pub node: u64,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "cluster",
    responses(
        (status = 200, description = "The process is up", body = Health),
    )
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "cluster",
    responses(
        (status = 200, description = "This node knows a leader for every group", body = Health),
        (status = 503, description = "not_ready", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>, call: Call) -> Response {
    if state.services.cluster.ready(&call) {
        Json(Health { status: "ready" }).into_response()
    } else {
        Problem::new(
            503,
            "not_ready",
            "this node does not know a leader for every group it belongs to",
        )
        .into_response()
    }
}

#[utoipa::path(
    get,
    path = "/v1/cluster/status",
    tag = "cluster",
    security(("operator" = [])),
    responses(
        (status = 200, description = "This node and its view of every group", body = NodeStatusBody),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<NodeStatusBody>, ServiceError> {
    Ok(Json(state.services.cluster.status(&call)?.into()))
}

#[utoipa::path(
    post,
    path = "/v1/cluster/init",
    tag = "cluster",
    security(("operator" = [])),
    responses(
        (status = 200, description = "What was done to each group", body = InitReport),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already_initialized", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "node_unreachable", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "init_failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn init(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<InitReport>, ServiceError> {
    let report = state.services.cluster.init(&call).await?;
    Ok(Json(InitReport {
        groups: report
            .into_iter()
            .map(|(group, outcome)| InitGroup { group, outcome })
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/cluster/wire-version",
    tag = "cluster",
    security(("operator" = [])),
    request_body = SetWireVersionBody,
    responses(
        (status = 200, description = "The cluster's wire version now", body = WireVersionSetBody),
        (status = 400, description = "invalid_request: a version this node does not speak", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/cluster/wire-version`: raise the log entry format the cluster
/// writes, once every node runs a binary that decodes it (`cairn
/// finalize-upgrade` checks that first). Never lowers it.
pub async fn set_wire_version(
    State(state): State<AppState>,
    call: Call,
    StrictJson(body): StrictJson<SetWireVersionBody>,
) -> Result<Json<WireVersionSetBody>, ServiceError> {
    let cluster = state
        .services
        .cluster
        .set_wire_version(&call, body.version)
        .await?;
    Ok(Json(WireVersionSetBody { cluster }))
}

#[utoipa::path(
    post,
    path = "/v1/cluster/compact",
    tag = "cluster",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Each group's new snapshot index", body = CompactReport),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: no leader, or the region or master key is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/cluster/compact`: snapshot every group on this node and purge the log
/// behind the snapshot.
pub async fn compact(
    State(state): State<AppState>,
    call: Call,
) -> Result<Json<CompactReport>, ServiceError> {
    let groups = state.services.cluster.compact(&call).await?;
    Ok(Json(CompactReport {
        groups: groups
            .into_iter()
            .map(|(group, snapshot_index)| CompactedGroup {
                group,
                snapshot_index,
            })
            .collect(),
        node: state.services.cluster.node_id(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/debug/partition",
    tag = "cluster",
    security(("operator" = [])),
    request_body = PartitionBody,
    responses(
        (status = 200, description = "The partition now in force", body = Partition),
        (status = 400, description = "invalid_request: a malformed body or an invalid value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: fault injection is off", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/debug/partition` `{"blocked": [ids]}`: drop all peer traffic with
/// these nodes (empty heals). Only with `[debug] fault_injection = true`; 404
/// otherwise, as if the route did not exist (before the caller or the body is
/// looked at).
pub async fn partition(
    State(state): State<AppState>,
    call: Result<Call, ServiceError>,
    body: Result<StrictJson<PartitionBody>, ServiceError>,
) -> Result<Json<Partition>, ServiceError> {
    let cluster = &state.services.cluster;
    if !cluster.fault_injection() {
        return Err(ServiceError::NoSuchRoute);
    }
    let call = call?;
    // The operator before the body, as before (the route's access is `Public`
    // so that the 404 above comes first).
    call.operator()?;
    let StrictJson(body) = body?;
    cluster.partition(&call, &body.blocked)?;
    Ok(Json(Partition {
        blocked: body.blocked,
        node: cluster.node_id(),
    }))
}
