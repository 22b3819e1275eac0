//! The client gRPC API (tonic): thin adapters over [`crate::service::Services`],
//! with the same error codes as HTTP (in the `cairn-code` metadata).
//!
//! - [`kv`]: `cairn.v1.Kv`, the tenant key-value store.
//! - [`auth`]: `cairn.v1.TenantAdmin`, `Users`, `Sessions`, `Tokens`, the auth API.

mod auth;
mod kv;

use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::error::ServiceError;

pub use auth::{SessionsService, TenantAdminService, TokensService, UsersService};
pub use kv::KvService;

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("cairn.v1");
}

/// The `authorization` metadata value, if it is text.
fn authorization(md: &MetadataMap) -> Option<&str> {
    md.get("authorization").and_then(|v| v.to_str().ok())
}

/// The gRPC status for a service error: the code follows the HTTP status (one
/// mapping to keep true), the stable problem code rides in `cairn-code`.
pub(crate) fn status(e: &ServiceError) -> Status {
    let (http, code) = e.status_and_code();
    let grpc = match (http, e) {
        (_, ServiceError::DecryptionFailed) => tonic::Code::DataLoss,
        (400, _) => tonic::Code::InvalidArgument,
        (401, _) => tonic::Code::Unauthenticated,
        (403, _) => tonic::Code::PermissionDenied,
        (404, _) => tonic::Code::NotFound,
        (409, ServiceError::Conflict(_)) => tonic::Code::Aborted,
        (409, _) => tonic::Code::AlreadyExists,
        (412, _) => tonic::Code::FailedPrecondition,
        (413 | 429, _) => tonic::Code::ResourceExhausted,
        (503, _) => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    };
    let mut md = MetadataMap::new();
    if let Ok(v) = code.parse() {
        md.insert("cairn-code", v);
    }
    Status::with_metadata(grpc, e.to_string(), md)
}
