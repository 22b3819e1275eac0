//! The client gRPC API (tonic): a thin adapter over [`Services`], with the same
//! error codes as HTTP (in the `cairn-code` trailer).

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::ServiceError;
use std::sync::Arc;

use crate::keyring::TenantKeys;
use crate::service::{KvEntry, Scope, Services};

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("cairn.v1");
}

use proto::kv_server::{Kv, KvServer};

pub struct KvService {
    services: Services,
}

impl KvService {
    #[must_use]
    pub fn server(services: Services) -> KvServer<Self> {
        KvServer::new(Self { services }).max_decoding_message_size(crate::service::MAX_BODY_BYTES)
    }

    async fn tenant(
        &self,
        md: &MetadataMap,
        scope: Scope,
    ) -> Result<Arc<TenantKeys>, ServiceError> {
        let auth = md.get("authorization").and_then(|v| v.to_str().ok());
        let x_tenant = match md.get("x-tenant") {
            Some(v) => Some(v.to_str().map_err(|_| {
                ServiceError::InvalidRequest("x-tenant is not valid text".to_owned())
            })?),
            None => None,
        };
        self.services.kv_tenant(auth, x_tenant, scope).await
    }
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

fn entry(e: KvEntry) -> proto::KvEntry {
    proto::KvEntry {
        key: e.key,
        value: e.value,
        revision: e.revision,
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn put(
        &self,
        req: Request<proto::PutRequest>,
    ) -> Result<Response<proto::KvEntry>, Status> {
        let tenant = self
            .tenant(req.metadata(), Scope::Write)
            .await
            .map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_put(&tenant, &r.key, r.value, r.expected_revision)
            .await
            .map(|e| Response::new(entry(e)))
            .map_err(|e| status(&e))
    }

    async fn get(
        &self,
        req: Request<proto::GetRequest>,
    ) -> Result<Response<proto::KvEntry>, Status> {
        let tenant = self
            .tenant(req.metadata(), Scope::Read)
            .await
            .map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_get(tenant, &r.key)
            .await
            .map(|e| Response::new(entry(e)))
            .map_err(|e| status(&e))
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let tenant = self
            .tenant(req.metadata(), Scope::Delete)
            .await
            .map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_delete(&tenant, &r.key, r.expected_revision)
            .await
            .map(|()| Response::new(proto::DeleteResponse {}))
            .map_err(|e| status(&e))
    }
}
