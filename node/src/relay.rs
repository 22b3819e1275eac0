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
//!
//! Minimum response times count from the client's arrival at the relaying
//! node: it marks the request ([`PADS_HEADER`]), the member records the
//! minimum its answer owes instead of waiting it out (a
//! [`DeferredPad`], answered as [`PAD_HEADER`]), and the relaying node waits
//! until its own arrival plus that minimum. A client's copies of either header
//! are dropped on the way in and on the way out.

use std::net::SocketAddr;
use std::time::Duration;

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
use crate::service::core::{region_error, DeferredPad};

/// On a relayed request: the relaying node pads the answer to its minimum
/// response time. Only a relay sets it (a client's copy is dropped).
pub const PADS_HEADER: &str = "cairn-relay-pads";

/// On a relayed answer: the minimum response time it owes, in milliseconds,
/// for the relaying node to wait out. Never reaches a client.
pub const PAD_HEADER: &str = "cairn-relay-pad-ms";

/// The longest minimum a relaying node waits out, whatever an answer says.
const MAX_PAD: Duration = Duration::from_secs(5);

/// Whether a header is one of the relay's own, never taken from a client.
fn relay_own(name: &str) -> bool {
    name.eq_ignore_ascii_case(PADS_HEADER) || name.eq_ignore_ascii_case(PAD_HEADER)
}

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

/// The headers that cross a relay, either way: not the connection's, and not
/// the relay's own (only the relay itself adds those, after this).
fn carried(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| !hop_by_hop(name) && !relay_own(name.as_str()))
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
            headers: carried(headers)
                .into_iter()
                .chain([(PADS_HEADER.to_owned(), b"1".to_vec())])
                .collect(),
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

/// `request`, which arrived from the client at `arrival`, served by a member
/// of `to.group`: its answer, no sooner than the minimum response time it
/// owes from `arrival`; or the error the client gets when no member could
/// serve it.
///
/// # Errors
/// The region unreachable ([`ServiceError::RegionUnavailable`]), or an answer
/// that cannot be decoded.
pub async fn send(
    raft: &RaftNode,
    to: &RelayTo,
    request: Relayed,
    arrival: tokio::time::Instant,
) -> Result<Response<Full<Bytes>>, ServiceError> {
    let payload = codec::encode("relayed request", &request).map_err(|e| {
        tracing::error!(error = %e, "encoding a relayed request");
        ServiceError::Internal
    })?;
    let answer = raft
        .relay(to.group, payload)
        .await
        .map_err(|e| region_error(&to.region, e))?;
    let mut answer: Answered = codec::decode("relayed answer", &answer).map_err(|e| {
        tracing::error!(error = %e, group = to.group.0, "undecodable answer to a relayed request");
        ServiceError::Internal
    })?;
    if let Some(min) = take_pad(&mut answer.headers) {
        tokio::time::sleep_until(arrival + min).await;
    }
    response(answer).map_err(|e| {
        tracing::error!(error = %e, group = to.group.0, "malformed answer to a relayed request");
        ServiceError::Internal
    })
}

/// Removes the relay's own headers from an answer's: the minimum response
/// time the answer owes, if it names one (at most [`MAX_PAD`]).
fn take_pad(headers: &mut Vec<(String, Vec<u8>)>) -> Option<Duration> {
    let mut pad = None;
    headers.retain(|(name, value)| {
        if !relay_own(name) {
            return true;
        }
        if name.eq_ignore_ascii_case(PAD_HEADER) {
            let ms = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            pad = pad.max(ms.map(Duration::from_millis));
        }
        false
    });
    pad.map(|p| p.min(MAX_PAD))
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
        // The relaying node pads the answer: the minimum is left to it.
        let deferred = req
            .headers_mut()
            .remove(PADS_HEADER)
            .map(|_| DeferredPad::default());
        if let Some(d) = &deferred {
            req.extensions_mut().insert(d.clone());
        }
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
        let mut headers = carried(&headers);
        if let Some(min) = deferred.and_then(|d| d.get()) {
            headers.push((
                PAD_HEADER.to_owned(),
                min.as_millis().to_string().into_bytes(),
            ));
        }
        let answer = Answered {
            status: status.as_u16(),
            headers,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_request_carries_the_relays_mark_and_never_a_clients() {
        let mut headers = HeaderMap::new();
        headers.insert("cairn-relay-pads", HeaderValue::from_static("0"));
        headers.insert("Cairn-Relay-Pad-Ms", HeaderValue::from_static("1"));
        headers.insert("user-agent", HeaderValue::from_static("ua"));
        let head = (Method::POST, Uri::from_static("/v1/sessions"), headers);
        let r = Relayed::of(Port::Http, &head, &Bytes::new(), None);
        let names: Vec<(&str, &[u8])> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            names,
            [("user-agent", &b"ua"[..]), (PADS_HEADER, &b"1"[..])]
        );
    }

    #[test]
    fn an_answers_pad_is_taken_out_bounded_and_garbage_is_no_pad() {
        let h = |v: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            v.iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect()
        };
        let mut headers = h(&[("content-type", "x"), (PAD_HEADER, "150")]);
        assert_eq!(take_pad(&mut headers), Some(Duration::from_millis(150)));
        assert_eq!(headers, h(&[("content-type", "x")]));
        let mut headers = h(&[(PAD_HEADER, "99999999")]);
        assert_eq!(take_pad(&mut headers), Some(MAX_PAD));
        let mut headers = h(&[(PAD_HEADER, "soon"), (PADS_HEADER, "1")]);
        assert_eq!(take_pad(&mut headers), None);
        assert!(headers.is_empty(), "{headers:?}");
    }
}
