//! What HTTP handlers take from a request: the [`Call`] (built here and nowhere
//! else), strict JSON bodies, and path parameters, every failure a problem
//! document.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::{AppState, REQUEST_ID};
use crate::error::ServiceError;
use crate::service::{Call, RequestContext, MAX_BODY_BYTES};

/// The caller and context of an HTTP request: the `Authorization` header, the
/// request id the response echoes, the peer address and the `User-Agent`.
///
/// Credentials that do not authenticate make a public caller (the operation
/// refuses it if it needs more); only a failure to read an API key (`meta`
/// unavailable) refuses the request here.
impl FromRequestParts<AppState> for Call {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let arrival = Instant::now();
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = state.services.caller(authorization, arrival).await?;
        let text = |name: &HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let context = RequestContext {
            request_id: text(&REQUEST_ID).map(str::to_owned),
            client_ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
            user_agent: text(&header::USER_AGENT).map(RequestContext::user_agent_of),
            arrival,
        };
        Ok(Call { caller, context })
    }
}

/// A path parameter, or `invalid_request`.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ServiceError> {
    p.map(|Path(v)| v)
        .map_err(|e| ServiceError::InvalidRequest(format!("invalid path: {e}")))
}

/// A strict request body: size-capped, JSON, unknown fields refused (the types
/// use `deny_unknown_fields`).
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ServiceError::PayloadTooLarge(format!(
                    "request body exceeds {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ServiceError::InvalidRequest(format!("cannot read request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(StrictJson)
            .map_err(|e| ServiceError::InvalidRequest(format!("invalid JSON body: {e}")))
    }
}
