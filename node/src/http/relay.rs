//! The HTTP relay layer (see `crate::relay`): on a node outside some hard
//! region, every request's body is buffered (it is capped anyway) so that a
//! request the service answers with [`crate::error::ServiceError::Relay`] can
//! be sent whole to the region's nodes, whose answer the client then gets.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_raft::RaftNode;
use http_body_util::{BodyExt, Limited};

use crate::error::ServiceError;
use crate::relay::{self, Port, RelayTo, Relayed};
use crate::service::MAX_BODY_BYTES;

/// Serves `req`, and relays it if the service says it needs a group this node
/// is outside of.
pub async fn relay_pinned(State(raft): State<Arc<RaftNode>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return ServiceError::PayloadTooLarge(format!(
                "request body exceeds {MAX_BODY_BYTES} bytes"
            ))
            .into_response()
        }
        Err(e) => {
            return ServiceError::InvalidRequest(format!("cannot read request body: {e}"))
                .into_response()
        }
    };
    // The minimum response time counts from here, as the service's own
    // padding does: a body sent slowly must not use it up.
    let arrival = tokio::time::Instant::now();
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    let head = relay::head_of(&parts);
    let resp = next
        .run(Request::from_parts(parts, Body::from(body.clone())))
        .await;
    let Some(to) = resp.extensions().get::<RelayTo>().cloned() else {
        return resp;
    };
    match relay::send(
        &raft,
        &to,
        Relayed::of(Port::Http, &head, &body, client),
        arrival,
    )
    .await
    {
        Ok(answer) => answer.map(Body::new).into_response(),
        Err(e) => e.into_response(),
    }
}
