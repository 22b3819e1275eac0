//! `cairn.v1.Kv`: the tenant key-value store.

use std::sync::Arc;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::proto::kv_server::{Kv, KvServer};
use super::{authorization, proto, status};
use crate::error::ServiceError;
use crate::keyring::TenantKeys;
use crate::service::{KvEntry, Scope, Services};

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
        since: Instant,
    ) -> Result<Arc<TenantKeys>, ServiceError> {
        let auth = authorization(md);
        let x_tenant = match md.get("x-tenant") {
            Some(v) => Some(v.to_str().map_err(|_| {
                ServiceError::InvalidRequest("x-tenant is not valid text".to_owned())
            })?),
            None => None,
        };
        self.services.kv_tenant(auth, x_tenant, scope, since).await
    }
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
            .tenant(req.metadata(), Scope::Write, Instant::now())
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
        // As over HTTP: both reads may use read indexes from after the request
        // arrived.
        let since = Instant::now();
        let tenant = self
            .tenant(req.metadata(), Scope::Read, since)
            .await
            .map_err(|e| status(&e))?;
        let r = req.into_inner();
        self.services
            .kv_get(tenant, &r.key, since)
            .await
            .map(|e| Response::new(entry(e)))
            .map_err(|e| status(&e))
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let tenant = self
            .tenant(req.metadata(), Scope::Delete, Instant::now())
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
