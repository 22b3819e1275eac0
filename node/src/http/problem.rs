//! RFC 9457 problem documents: the one place service errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ServiceError;

/// An error: `application/problem+json` (RFC 9457) with a stable `code`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `https://cairn.dev/problems/<code>`.
    #[serde(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: &'static str,
    status: u16,
    /// What went wrong, for a person.
    detail: String,
    /// The stable error code (`unauthorized`, `tenant_not_found`, …).
    code: &'static str,
}

impl Problem {
    #[must_use]
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        let title = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Self {
            kind: format!("https://cairn.dev/problems/{code}"),
            title,
            status,
            detail: detail.into(),
            code,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cairn\""),
            );
        }
        resp
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        let (status, code) = e.status_and_code();
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let relay = crate::relay::RelayTo::of(&self);
        let retry_after = self.retry_after_secs();
        let mut resp = Problem::from(self).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(to) = relay {
            // For the relay layer, where there is one (see `crate::relay`);
            // elsewhere the client gets the problem.
            resp.extensions_mut().insert(to);
        }
        resp
    }
}
