//! `cairn.v1.TenantAdmin` (`proto/cairn/v1/tenants.proto`): the operator's
//! tenant administration, one rpc per HTTP handler, calling the same service
//! methods. Its `api_keys` and `signing_keys` rpcs are in those files.

use tonic::Request;

use super::proto::tenant_admin_server::{TenantAdmin, TenantAdminServer};
use super::{answer, api_keys, call, proto, signing_keys, Rpc};
use crate::service::tenants::{CreatedTenant, RateLimitTable, TenantSettings, TenantView};
use crate::service::{Access, Services, MAX_BODY_BYTES};

pub struct TenantAdminRpc {
    services: Services,
}

impl TenantAdminRpc {
    #[must_use]
    pub fn server(services: Services) -> TenantAdminServer<Self> {
        TenantAdminServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

fn rate_limits_out(table: &RateLimitTable) -> Vec<proto::RateLimit> {
    table
        .iter()
        .flat_map(|(action, scopes)| {
            scopes.iter().map(move |(scope, b)| proto::RateLimit {
                action: action.clone(),
                scope: scope.clone(),
                burst: b.burst,
                per_minute: b.per_minute,
            })
        })
        .collect()
}

/// The buckets of a request (`None`: it names none).
fn rate_limits_in(list: Vec<proto::RateLimit>) -> Option<RateLimitTable> {
    if list.is_empty() {
        return None;
    }
    let mut table = RateLimitTable::new();
    for l in list {
        table.entry(l.action).or_default().insert(
            l.scope,
            cairn_cluster_config::Bucket {
                burst: l.burst,
                per_minute: l.per_minute,
            },
        );
    }
    Some(table)
}

impl From<TenantView> for proto::Tenant {
    fn from(t: TenantView) -> Self {
        Self {
            rate_limits: rate_limits_out(&t.rate_limits),
            id: t.id,
            name: t.name,
            region: t.region,
            created_at: t.created_at,
            session_idle_timeout_secs: t.session_idle_timeout_secs,
            session_absolute_timeout_secs: t.session_absolute_timeout_secs,
            refresh_retry_grace_secs: t.refresh_retry_grace_secs,
            breached_password_check: t.breached_password_check,
        }
    }
}

impl From<CreatedTenant> for proto::CreateTenantResponse {
    fn from(t: CreatedTenant) -> Self {
        Self {
            id: t.tenant.id,
            name: t.tenant.name,
            region: t.tenant.region,
            created_at: t.tenant.created_at,
            api_key: t.api_key,
            api_key_id: t.api_key_id,
            session_idle_timeout_secs: t.tenant.session_idle_timeout_secs,
            session_absolute_timeout_secs: t.tenant.session_absolute_timeout_secs,
            refresh_retry_grace_secs: t.tenant.refresh_retry_grace_secs,
            rate_limits: rate_limits_out(&t.tenant.rate_limits),
            breached_password_check: t.tenant.breached_password_check,
        }
    }
}

#[tonic::async_trait]
impl TenantAdmin for TenantAdminRpc {
    async fn create_tenant(
        &self,
        req: Request<proto::CreateTenantRequest>,
    ) -> Rpc<proto::CreateTenantResponse> {
        let call = call(&self.services, &req, Access::Operator).await?;
        let r = req.into_inner();
        let settings = TenantSettings {
            session_idle_timeout_secs: r.session_idle_timeout_secs,
            session_absolute_timeout_secs: r.session_absolute_timeout_secs,
            refresh_retry_grace_secs: r.refresh_retry_grace_secs,
            rate_limits: rate_limits_in(r.rate_limits),
            breached_password_check: r.breached_password_check,
        };
        let created = self
            .services
            .tenants
            .create(&call, &r.name, r.region.as_deref(), settings)
            .await;
        answer(created, Into::into)
    }

    async fn get_tenant(&self, req: Request<proto::GetTenantRequest>) -> Rpc<proto::Tenant> {
        let call = call(&self.services, &req, Access::Operator).await?;
        let r = req.into_inner();
        answer(self.services.tenants.get(&call, &r.id).await, Into::into)
    }

    async fn update_tenant(&self, req: Request<proto::UpdateTenantRequest>) -> Rpc<proto::Tenant> {
        let call = call(&self.services, &req, Access::Operator).await?;
        let r = req.into_inner();
        let settings = TenantSettings {
            session_idle_timeout_secs: r.session_idle_timeout_secs,
            session_absolute_timeout_secs: r.session_absolute_timeout_secs,
            refresh_retry_grace_secs: r.refresh_retry_grace_secs,
            rate_limits: rate_limits_in(r.rate_limits),
            breached_password_check: r.breached_password_check,
        };
        answer(
            self.services.tenants.update(&call, &r.id, settings).await,
            Into::into,
        )
    }

    async fn list_tenants(
        &self,
        req: Request<proto::ListTenantsRequest>,
    ) -> Rpc<proto::ListTenantsResponse> {
        let call = call(&self.services, &req, Access::Operator).await?;
        answer(self.services.tenants.list(&call).await, |tenants| {
            proto::ListTenantsResponse {
                tenants: tenants.into_iter().map(Into::into).collect(),
            }
        })
    }

    async fn delete_tenant(
        &self,
        req: Request<proto::DeleteTenantRequest>,
    ) -> Rpc<proto::DeleteTenantResponse> {
        let call = call(&self.services, &req, Access::Operator).await?;
        let r = req.into_inner();
        answer(self.services.tenants.delete(&call, &r.id).await, |()| {
            proto::DeleteTenantResponse {}
        })
    }

    async fn create_api_key(
        &self,
        req: Request<proto::CreateApiKeyRequest>,
    ) -> Rpc<proto::CreateApiKeyResponse> {
        api_keys::create(&self.services, req).await
    }

    async fn revoke_api_key(
        &self,
        req: Request<proto::RevokeApiKeyRequest>,
    ) -> Rpc<proto::RevokeApiKeyResponse> {
        api_keys::revoke(&self.services, req).await
    }

    async fn rotate_signing_key(
        &self,
        req: Request<proto::RotateSigningKeyRequest>,
    ) -> Rpc<proto::Jwks> {
        signing_keys::rotate(&self.services, req).await
    }

    async fn get_jwks(&self, req: Request<proto::GetJwksRequest>) -> Rpc<proto::Jwks> {
        signing_keys::jwks(&self.services, req).await
    }
}

redacted_debug! {
    CreateTenantResponse { id, name, region, created_at, api_key_id },
}
