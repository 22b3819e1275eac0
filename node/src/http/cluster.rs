//! Health, readiness, cluster status and init.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_raft::{GroupStatus, InitError};
use serde::Serialize;
use serde_json::json;

use super::{bearer, AppState};
use crate::error::ServiceError;
use crate::http::problem::Problem;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.services.raft().is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        Problem::new(
            503,
            "not_ready",
            "this node does not know a leader for every group it belongs to",
        )
        .into_response()
    }
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub id: u64,
    pub region: String,
    pub cluster: String,
    pub ready: bool,
    /// Admitted by `cairn init`: only admitted nodes vote (a data dir created
    /// after init, e.g. a wiped disk, is not).
    pub admitted: bool,
    pub groups: Vec<GroupStatus>,
}

pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<NodeStatus>, ServiceError> {
    let s = &state.services;
    s.authorize_admin(bearer(&headers))?;
    let region = s
        .config()
        .node(s.node_id())
        .map(|n| n.region.clone())
        .unwrap_or_default();
    Ok(Json(NodeStatus {
        id: s.node_id(),
        region,
        cluster: s.config().cluster_name.clone(),
        ready: s.raft().is_ready(),
        admitted: s.raft().is_admitted(),
        groups: s.raft().status(),
    }))
}

pub async fn init(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = state.services.authorize_admin(bearer(&headers)) {
        return e.into_response();
    }
    match state.services.raft().init_cluster().await {
        Ok(report) => {
            let groups: Vec<_> = report
                .into_iter()
                .map(|(group, outcome)| json!({"group": group, "outcome": format!("{outcome:?}")}))
                .collect();
            (StatusCode::OK, Json(json!({"groups": groups}))).into_response()
        }
        Err(e @ InitError::AlreadyInitialized) => {
            Problem::new(409, "already_initialized", e.to_string()).into_response()
        }
        Err(e @ InitError::Unreachable { .. }) => {
            Problem::new(503, "node_unreachable", e.to_string()).into_response()
        }
        Err(e @ InitError::Failed { .. }) => {
            tracing::error!(error = %e, "cluster init failed");
            Problem::new(500, "init_failed", e.to_string()).into_response()
        }
    }
}

/// `POST /v1/cluster/compact`: snapshot every group on this node and purge the log
/// behind the snapshot.
pub async fn compact(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ServiceError> {
    state.services.authorize_admin(bearer(&headers))?;
    let groups = state.services.raft().compact().await?;
    Ok(Json(json!({
        "node": state.services.node_id(),
        "groups": groups
            .into_iter()
            .map(|(group, snapshot_index)| json!({"group": group, "snapshot_index": snapshot_index}))
            .collect::<Vec<_>>(),
    })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionBody {
    blocked: Vec<u64>,
}

/// `POST /v1/debug/partition` `{"blocked": [ids]}`: drop all peer traffic with
/// these nodes (empty heals). Only with `[debug] fault_injection = true`; 404
/// otherwise, as if the route did not exist.
pub async fn partition(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<crate::http::body::StrictJson<PartitionBody>, ServiceError>,
) -> Response {
    if !state.services.config().debug.fault_injection {
        return Problem::new(404, "not_found", "no such route").into_response();
    }
    if let Err(e) = state.services.authorize_admin(bearer(&headers)) {
        return e.into_response();
    }
    let body = match body {
        Ok(crate::http::body::StrictJson(b)) => b,
        Err(e) => return e.into_response(),
    };
    state
        .services
        .raft()
        .set_partition(body.blocked.iter().copied().collect());
    Json(json!({"node": state.services.node_id(), "blocked": body.blocked})).into_response()
}
