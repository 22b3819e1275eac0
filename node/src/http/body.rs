//! Strict request bodies: size-capped, JSON, unknown fields refused (the types use
//! `deny_unknown_fields`), every failure a problem document.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ServiceError;
use crate::service::MAX_BODY_BYTES;

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
