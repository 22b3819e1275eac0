//! The `api_keys` rpcs of `cairn.v1.TenantAdmin` (`CreateApiKey`,
//! `RevokeApiKey`; the service is served by `tenants`).

use tonic::Request;

use super::{answer, call, proto, Rpc};
use crate::service::api_keys::IssuedApiKey;
use crate::service::{Access, Services};

impl From<IssuedApiKey> for proto::CreateApiKeyResponse {
    fn from(k: IssuedApiKey) -> Self {
        Self {
            id: k.id,
            api_key: k.api_key,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: k.created_at,
        }
    }
}

pub(super) async fn create(
    services: &Services,
    req: Request<proto::CreateApiKeyRequest>,
) -> Rpc<proto::CreateApiKeyResponse> {
    let call = call(services, &req, Access::Operator).await?;
    let r = req.into_inner();
    let issued = services
        .api_keys
        .create(&call, &r.tenant_id, &r.scopes)
        .await;
    answer(issued, Into::into)
}

pub(super) async fn revoke(
    services: &Services,
    req: Request<proto::RevokeApiKeyRequest>,
) -> Rpc<proto::RevokeApiKeyResponse> {
    let call = call(services, &req, Access::Operator).await?;
    let r = req.into_inner();
    let revoked = services
        .api_keys
        .revoke(&call, &r.tenant_id, &r.key_id)
        .await;
    answer(revoked, |()| proto::RevokeApiKeyResponse {})
}

redacted_debug! {
    CreateApiKeyResponse { id, scopes, created_at },
}
