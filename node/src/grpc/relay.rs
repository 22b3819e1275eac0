//! The gRPC relay layer (see `crate::relay`): on a node outside some hard
//! region, each call's request body is buffered (it is capped anyway) so that
//! a call the service answers with [`ServiceError::Relay`] can be sent whole
//! to the region's nodes, whose answer (trailers included) the client gets.
//! The status mapping ([`super::status`]) records the relay in a task-local
//! slot this layer scopes around the call.

use std::cell::RefCell;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::http;
use cairn_raft::listener::ConnInfo;
use cairn_raft::RaftNode;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;
use tonic::Status;
use tower::{Layer, Service};

use crate::error::ServiceError;
use crate::relay::{self, Port, RelayTo, Relayed, Trailers};

tokio::task_local! {
    static RELAY: RefCell<Option<RelayTo>>;
}

/// Records that the call in progress must be relayed, if `e` says so (a call
/// outside the relay layer is answered `e` itself).
pub fn note(e: &ServiceError) {
    if let Some(to) = RelayTo::of(e) {
        let _ = RELAY.try_with(|slot| *slot.borrow_mut() = Some(to));
    }
}

/// Relays the calls that need a group this node is outside of.
#[derive(Clone)]
pub struct RelayLayer {
    raft: Arc<RaftNode>,
    max_body: usize,
}

impl RelayLayer {
    /// A layer relaying through `raft`, if it is outside some hard region
    /// (else no call can need relaying, and there is no layer); request bodies
    /// over `max_body` bytes are refused on such a node.
    #[must_use]
    pub fn new(raft: &Arc<RaftNode>, max_body: usize) -> Option<Self> {
        raft.relays_any().then(|| Self {
            raft: Arc::clone(raft),
            max_body,
        })
    }
}

impl<S> Layer<S> for RelayLayer {
    type Service = Relaying<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Relaying {
            inner,
            raft: Arc::clone(&self.raft),
            max_body: self.max_body,
        }
    }
}

#[derive(Clone)]
pub struct Relaying<S> {
    inner: S,
    raft: Arc<RaftNode>,
    max_body: usize,
}

impl<S> Service<http::Request<Body>> for Relaying<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let raft = Arc::clone(&self.raft);
        // The clone that was made ready serves this call (tower's rule).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let max_body = self.max_body;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body: Bytes = match Limited::new(body, max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    return Ok(Status::resource_exhausted(format!(
                        "cannot read the request (at most {max_body} bytes): {e}"
                    ))
                    .into_http())
                }
            };
            // The minimum response time counts from here, as the service's
            // own padding does: a body sent slowly must not use it up.
            let arrival = tokio::time::Instant::now();
            let client = parts.extensions.get::<ConnInfo>().map(|i| i.remote);
            let head = relay::head_of(&parts);
            let req = http::Request::from_parts(parts, Body::new(Full::new(body.clone())));
            let (resp, to) = RELAY
                .scope(RefCell::new(None), async move {
                    let resp = inner.call(req).await;
                    (resp, RELAY.with(|slot| slot.borrow_mut().take()))
                })
                .await;
            let Some(to) = to else {
                return resp;
            };
            let relayed = Relayed::of(Port::Grpc, &head, &body, client);
            let answer = relay::send(&raft, &to, relayed, arrival).await;
            Ok(match answer {
                Ok(mut answer) => {
                    let trailers = answer.extensions_mut().remove::<Trailers>();
                    answer.map(|b| match trailers {
                        Some(Trailers(t)) => Body::new(b.with_trailers(async move { Some(Ok(t)) })),
                        None => Body::new(b),
                    })
                }
                Err(e) => super::status(&e).into_http(),
            })
        })
    }
}
