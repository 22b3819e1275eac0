//! Client requests that need a hard-pinned group, served by its region's nodes.
//!
//! A node outside a hard region holds nothing of it and may read nothing of it
//! (its members refuse the node's `Query`, `ReadIndex` and snapshot requests),
//! yet any node accepts any client request (SPEC §2). When an operation needs
//! such a group, the service layer answers [`ServiceError::Relay`] before it
//! has changed anything; the adapter's relay layer (`http::relay`,
//! `grpc::relay`) then sends the client's request whole, as it arrived, over
//! the authenticated peer channel to a member of the group
//! ([`cairn_raft::RaftNode::relay`]). The member serves it through its own
//! router, as its own client's request (the client's address travels with it),
//! with no relay layer, so a relay ends at its first hop; its answer goes back
//! to the client unchanged. The relaying node never opens the region's data:
//! it sees only what the client sent and what the client is answered.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use cairn_cluster_config::GroupId;
use cairn_raft::relay::RelayHandler;
use cairn_raft::RaftNode;
use cairn_storage::codec;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::error::ServiceError;
use crate::service::core::region_error;

/// Which client port a relayed request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Port {
    Http,
    Grpc,
}

/// A client request as it travels to the node that serves it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Relayed {
    pub port: Port,
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The client's address as the relaying node's transport saw it.
    pub client: Option<SocketAddr>,
}

/// The answer to a relayed request, as the serving node's router gave it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answered {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
}

/// Headers that describe one connection, never carried across a relay.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

fn carried(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| !hop_by_hop(name))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

fn header_map(headers: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::try_from(name).map_err(|e| format!("header name: {e}"))?;
        if hop_by_hop(&name) {
            continue;
        }
        let value = HeaderValue::from_bytes(&value).map_err(|e| format!("header {name}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Where a request that needs relaying goes: the group the service named, and
/// the region it is pinned to. Left by the adapter's error mapping for its relay
/// layer.
#[derive(Debug, Clone)]
pub struct RelayTo {
    pub group: GroupId,
    pub region: String,
}

impl RelayTo {
    /// The relay a service error asks for, if it is one.
    #[must_use]
    pub fn of(e: &ServiceError) -> Option<Self> {
        match e {
            ServiceError::Relay { group, region } => Some(Self {
                group: GroupId(*group),
                region: region.clone(),
            }),
            _ => None,
        }
    }
}

impl Relayed {
    /// The client request `method uri`, with `headers` and `body`, which
    /// arrived from `client` on `port`, as it travels.
    #[must_use]
    pub fn of(
        port: Port,
        (method, uri, headers): &(Method, Uri, HeaderMap),
        body: &Bytes,
        client: Option<SocketAddr>,
    ) -> Self {
        Self {
            port,
            method: method.as_str().to_owned(),
            uri: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: carried(headers),
            body: body.to_vec(),
            client,
        }
    }
}

/// What a relay layer keeps of a request's head while the request is served,
/// in case it must be relayed: a request's body is kept as the `Bytes` it was
/// read into.
#[must_use]
pub fn head_of(parts: &axum::http::request::Parts) -> (Method, Uri, HeaderMap) {
    (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    )
}

/// `request`, served by a member of `to.group`: its answer, or the error the
/// client gets when no member could serve it.
///
/// # Errors
/// The region unreachable ([`ServiceError::RegionUnavailable`]), or an answer
/// that cannot be decoded.
pub async fn send(
    raft: &RaftNode,
    to: &RelayTo,
    request: Relayed,
) -> Result<Response<Full<Bytes>>, ServiceError> {
    let payload = codec::encode("relayed request", &request).map_err(|e| {
        tracing::error!(error = %e, "encoding a relayed request");
        ServiceError::Internal
    })?;
    let answer = raft
        .relay(to.group, payload)
        .await
        .map_err(|e| region_error(&to.region, e))?;
    let answer: Answered = codec::decode("relayed answer", &answer).map_err(|e| {
        tracing::error!(error = %e, group = to.group.0, "undecodable answer to a relayed request");
        ServiceError::Internal
    })?;
    response(answer).map_err(|e| {
        tracing::error!(error = %e, group = to.group.0, "malformed answer to a relayed request");
        ServiceError::Internal
    })
}

fn response(a: Answered) -> Result<Response<Full<Bytes>>, String> {
    let status = StatusCode::from_u16(a.status).map_err(|e| e.to_string())?;
    let headers = header_map(a.headers)?;
    let trailers = header_map(a.trailers)?;
    let mut resp = Response::new(Full::new(Bytes::from(a.body)));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    if !trailers.is_empty() {
        resp.extensions_mut().insert(Trailers(trailers));
    }
    Ok(resp)
}

/// A relayed answer's trailers (gRPC's status), for the adapter that sends them.
#[derive(Debug, Clone)]
pub struct Trailers(pub HeaderMap);

/// Serves relayed requests through this node's own routers (without their
/// relay layers, so a relay ends here).
pub struct RelayServer {
    pub http: axum::Router,
    pub grpc: tonic::service::Routes,
}

impl RelayServer {
    async fn serve_one(
        http: axum::Router,
        grpc: tonic::service::Routes,
        from: u64,
        group: GroupId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let r: Relayed = codec::decode("relayed request", &payload).map_err(|e| e.to_string())?;
        let method = Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
        let uri: Uri = r.uri.parse().map_err(|e| format!("uri: {e}"))?;
        tracing::debug!(from, group = group.0, %method, path = uri.path(), "serving a relayed request");
        let mut req = Request::new(Full::new(Bytes::from(r.body)));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = header_map(r.headers)?;
        let resp = match r.port {
            Port::Http => {
                if let Some(client) = r.client {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(client));
                }
                let Ok(resp) = http.oneshot(req.map(axum::body::Body::new)).await;
                resp.map(tonic::body::Body::new)
            }
            Port::Grpc => {
                if let Some(client) = r.client {
                    req.extensions_mut().insert(cairn_raft::listener::ConnInfo {
                        remote: client,
                        peer: None,
                    });
                }
                let Ok(resp) = grpc.oneshot(req).await;
                resp
            }
        };
        let (parts, body) = resp.into_parts();
        let (status, headers) = (parts.status, parts.headers);
        let body = body.collect().await.map_err(|e| e.to_string())?;
        let trailers = body.trailers().map(carried).unwrap_or_default();
        let answer = Answered {
            status: status.as_u16(),
            headers: carried(&headers),
            body: body.to_bytes().to_vec(),
            trailers,
        };
        codec::encode("relayed answer", &answer).map_err(|e| e.to_string())
    }
}

impl RelayHandler for RelayServer {
    fn serve(
        &self,
        from: u64,
        group: GroupId,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(Self::serve_one(
            self.http.clone(),
            self.grpc.clone(),
            from,
            group,
            payload,
        ))
    }
}
