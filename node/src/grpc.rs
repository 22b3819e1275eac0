//! The client gRPC API (tonic): a thin adapter over [`Services`], with the same
//! error codes as HTTP (in the `cairn-code` trailer).

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::ServiceError;
use crate::service::{KvEntry, Services};

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

    fn tenant(&self, md: &MetadataMap) -> Result<String, ServiceError> {
        let auth = md.get("authorization").and_then(|v| v.to_str().ok());
        self.services.authorize_admin(auth)?;
        md.get("x-tenant")
            .ok_or(ServiceError::MissingTenant)?
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ServiceError::InvalidRequest("x-tenant is not valid text".to_owned()))
    }
}

fn status(e: &ServiceError) -> Status {
    let (_, code) = e.status_and_code();
    let grpc = match e {
        ServiceError::Unauthorized => tonic::Code::Unauthenticated,
        ServiceError::InvalidRequest(_) | ServiceError::MissingTenant => {
            tonic::Code::InvalidArgument
        }
        ServiceError::PayloadTooLarge(_) => tonic::Code::ResourceExhausted,
        ServiceError::KeyNotFound | ServiceError::TenantNotFound => tonic::Code::NotFound,
        ServiceError::DecryptionFailed => tonic::Code::DataLoss,
        ServiceError::MasterKeyUnavailable(_) | ServiceError::RegionUnavailable(_) => {
            tonic::Code::Unavailable
        }
        ServiceError::TenantExists(_) => tonic::Code::AlreadyExists,
        ServiceError::Conflict(_) => tonic::Code::Aborted,
        ServiceError::RevisionMismatch { .. } => tonic::Code::FailedPrecondition,
        ServiceError::Unavailable(_) => tonic::Code::Unavailable,
        ServiceError::Internal => tonic::Code::Internal,
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
        let tenant = self.tenant(req.metadata()).map_err(|e| status(&e))?;
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
        let tenant = self.tenant(req.metadata()).map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_get(&tenant, &r.key)
            .await
            .map(|e| Response::new(entry(e)))
            .map_err(|e| status(&e))
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let tenant = self.tenant(req.metadata()).map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_delete(&tenant, &r.key, r.expected_revision)
            .await
            .map(|()| Response::new(proto::DeleteResponse {}))
            .map_err(|e| status(&e))
    }
}
