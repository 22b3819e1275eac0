//! `cairn.v1.Kv`: the tenant key-value store.

use tonic::{Request, Response, Status};

use super::proto::kv_server::{Kv, KvServer};
use super::{answer, call, proto, status, Rpc};
use crate::error::ServiceError;
use crate::service::core::Scope;
use crate::service::kv::KvEntry;
use crate::service::{Access, Services, MAX_BODY_BYTES};

pub struct KvRpc {
    services: Services,
}

impl KvRpc {
    #[must_use]
    pub fn server(services: Services) -> KvServer<Self> {
        KvServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

impl From<KvEntry> for proto::KvEntry {
    fn from(e: KvEntry) -> Self {
        Self {
            key: e.key,
            value: e.value,
            revision: e.revision,
        }
    }
}

/// The tenant the operator names (`x-tenant` metadata; ignored for an API
/// key). Read before the caller, as an invalid value refuses the call whoever
/// makes it.
fn x_tenant<T>(req: &Request<T>) -> Result<Option<String>, Status> {
    match req.metadata().get("x-tenant") {
        Some(v) => v.to_str().map(|t| Some(t.to_owned())).map_err(|_| {
            status(&ServiceError::InvalidRequest(
                "x-tenant is not valid text".to_owned(),
            ))
        }),
        None => Ok(None),
    }
}

#[tonic::async_trait]
impl Kv for KvRpc {
    async fn put(&self, req: Request<proto::PutRequest>) -> Rpc<proto::KvEntry> {
        let tenant = x_tenant(&req)?;
        let call = call(&self.services, &req, Access::Kv(Scope::Write)).await?;
        let r = req.into_inner();
        let written = self
            .services
            .kv
            .put(
                &call,
                tenant.as_deref(),
                &r.key,
                r.value,
                r.expected_revision,
            )
            .await;
        answer(written, Into::into)
    }

    async fn get(&self, req: Request<proto::GetRequest>) -> Rpc<proto::KvEntry> {
        let tenant = x_tenant(&req)?;
        let call = call(&self.services, &req, Access::Kv(Scope::Read)).await?;
        let r = req.into_inner();
        answer(
            self.services.kv.get(&call, tenant.as_deref(), &r.key).await,
            Into::into,
        )
    }

    async fn delete(
        &self,
        req: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        let tenant = x_tenant(&req)?;
        let call = call(&self.services, &req, Access::Kv(Scope::Delete)).await?;
        let r = req.into_inner();
        let deleted = self
            .services
            .kv
            .delete(&call, tenant.as_deref(), &r.key, r.expected_revision)
            .await;
        answer(deleted, |()| proto::DeleteResponse {})
    }
}
