//! [`GrpcApi`]: the API as `cairn.v1` over gRPC. Credentials travel in the
//! `authorization` and `x-tenant` metadata; every call sends an `x-request-id`;
//! a refusal's stable code is read from the `cairn-code` metadata.

use std::sync::atomic::{AtomicU64, Ordering};

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::{
    Api, ApiError, Auth, ClientInfo, CreateApiKeyResponse, CreateTenantRequest,
    CreateTenantResponse, CreateUserRequest, ErrorStatus, IntrospectResponse, Jwks, KvEntry,
    RefreshResponse, Reply, Session, SignInResponse, Tenant, Transport, UpdateTenantRequest,
    UpdateUserRequest, User, USER_AGENT,
};
use crate::cluster::{grpc_endpoint, NodeAddrs};
use crate::proto;
use crate::proto::kv_client::KvClient;
use crate::proto::sessions_client::SessionsClient;
use crate::proto::tenant_admin_client::TenantAdminClient;
use crate::proto::tokens_client::TokensClient;
use crate::proto::users_client::UsersClient;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// The API over gRPC: one lazily connected channel per node (of one runtime).
#[derive(Clone)]
pub struct GrpcApi {
    channels: Vec<(u64, Channel)>,
}

/// `msg` with `auth`'s metadata and a fresh request id.
fn req<T>(msg: T, auth: Auth<'_>) -> Request<T> {
    let mut r = Request::new(msg);
    let md = r.metadata_mut();
    if let Some(b) = auth.bearer {
        md.insert(
            "authorization",
            format!("Bearer {b}").parse().expect("ascii credentials"),
        );
    }
    if let Some(t) = auth.tenant {
        md.insert("x-tenant", t.parse().expect("ascii tenant"));
    }
    let rid = format!("grpc-test-{}", REQUEST_SEQ.fetch_add(1, Ordering::Relaxed));
    md.insert("x-request-id", MetadataValue::try_from(rid).expect("ascii"));
    r
}

/// A refusal as an [`ApiError`].
fn error(what: String, s: &Status) -> ApiError {
    ApiError {
        what,
        status: ErrorStatus::Grpc(s.code()),
        code: s
            .metadata()
            .get("cairn-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        detail: (!s.message().is_empty()).then(|| s.message().to_owned()),
        text: s.message().to_owned(),
        retry_after: s
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    }
}

impl GrpcApi {
    /// Channels to every node, connected on first use (this needs a runtime: a
    /// channel's worker is a task of it).
    #[must_use]
    pub fn new(nodes: &[NodeAddrs], ca: Option<&[u8]>) -> Self {
        Self {
            channels: nodes
                .iter()
                .map(|n| {
                    let ch = grpc_endpoint(&n.grpc, ca).connect_lazy();
                    (n.id, ch)
                })
                .collect(),
        }
    }

    /// The channel to node `via`.
    #[must_use]
    pub fn channel(&self, via: u64) -> Channel {
        self.channels
            .iter()
            .find(|(id, _)| *id == via)
            .map(|(_, ch)| ch.clone())
            .unwrap_or_else(|| panic!("no node {via}"))
    }

    #[must_use]
    pub fn admin(&self, via: u64) -> TenantAdminClient<Channel> {
        TenantAdminClient::new(self.channel(via))
    }

    #[must_use]
    pub fn users(&self, via: u64) -> UsersClient<Channel> {
        UsersClient::new(self.channel(via))
    }

    #[must_use]
    pub fn sessions(&self, via: u64) -> SessionsClient<Channel> {
        SessionsClient::new(self.channel(via))
    }

    #[must_use]
    pub fn tokens(&self, via: u64) -> TokensClient<Channel> {
        TokensClient::new(self.channel(via))
    }

    #[must_use]
    pub fn kv(&self, via: u64) -> KvClient<Channel> {
        KvClient::new(self.channel(via))
    }
}

/// The answer's message, or the refusal as an [`ApiError`] naming `rpc` and the
/// node.
fn reply<T>(rpc: &str, via: u64, r: Result<tonic::Response<T>, Status>) -> Reply<T> {
    r.map(tonic::Response::into_inner)
        .map_err(|s| error(format!("{rpc} via node {via}"), &s))
}

impl Api for GrpcApi {
    fn transport(&self) -> Transport {
        Transport::Grpc
    }

    async fn create_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        r: CreateTenantRequest,
    ) -> Reply<CreateTenantResponse> {
        let answer = self.admin(via).create_tenant(req(r, auth)).await;
        reply("TenantAdmin.CreateTenant", via, answer)
    }

    async fn list_tenants(&self, via: u64, auth: Auth<'_>) -> Reply<Vec<Tenant>> {
        let answer = self
            .admin(via)
            .list_tenants(req(proto::ListTenantsRequest {}, auth))
            .await;
        reply("TenantAdmin.ListTenants", via, answer).map(|l| l.tenants)
    }

    async fn get_tenant(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<Tenant> {
        let answer = self
            .admin(via)
            .get_tenant(req(proto::GetTenantRequest { id: id.to_owned() }, auth))
            .await;
        reply("TenantAdmin.GetTenant", via, answer)
    }

    async fn update_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        r: UpdateTenantRequest,
    ) -> Reply<Tenant> {
        let answer = self.admin(via).update_tenant(req(r, auth)).await;
        reply("TenantAdmin.UpdateTenant", via, answer)
    }

    async fn delete_tenant(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<()> {
        let answer = self
            .admin(via)
            .delete_tenant(req(proto::DeleteTenantRequest { id: id.to_owned() }, auth))
            .await;
        reply("TenantAdmin.DeleteTenant", via, answer).map(|_| ())
    }

    async fn create_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        scopes: &[&str],
    ) -> Reply<CreateApiKeyResponse> {
        let msg = proto::CreateApiKeyRequest {
            tenant_id: tenant_id.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        let answer = self.admin(via).create_api_key(req(msg, auth)).await;
        reply("TenantAdmin.CreateApiKey", via, answer)
    }

    async fn revoke_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        key_id: &str,
    ) -> Reply<()> {
        let msg = proto::RevokeApiKeyRequest {
            tenant_id: tenant_id.to_owned(),
            key_id: key_id.to_owned(),
        };
        let answer = self.admin(via).revoke_api_key(req(msg, auth)).await;
        reply("TenantAdmin.RevokeApiKey", via, answer).map(|_| ())
    }

    async fn rotate_signing_key(&self, via: u64, auth: Auth<'_>, tenant_id: &str) -> Reply<Jwks> {
        let msg = proto::RotateSigningKeyRequest {
            tenant_id: tenant_id.to_owned(),
        };
        let answer = self.admin(via).rotate_signing_key(req(msg, auth)).await;
        reply("TenantAdmin.RotateSigningKey", via, answer)
    }

    async fn get_jwks(&self, via: u64, tenant_id: &str) -> Reply<Jwks> {
        let msg = proto::GetJwksRequest {
            tenant_id: tenant_id.to_owned(),
        };
        let answer = self.admin(via).get_jwks(req(msg, Auth::NONE)).await;
        reply("TenantAdmin.GetJwks", via, answer)
    }

    async fn create_user(&self, via: u64, auth: Auth<'_>, r: CreateUserRequest) -> Reply<User> {
        let answer = self.users(via).create_user(req(r, auth)).await;
        reply("Users.CreateUser", via, answer)
    }

    async fn get_user(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<User> {
        let answer = self
            .users(via)
            .get_user(req(proto::GetUserRequest { id: id.to_owned() }, auth))
            .await;
        reply("Users.GetUser", via, answer)
    }

    async fn update_user(&self, via: u64, auth: Auth<'_>, r: UpdateUserRequest) -> Reply<User> {
        let answer = self.users(via).update_user(req(r, auth)).await;
        reply("Users.UpdateUser", via, answer)
    }

    async fn list_users(
        &self,
        via: u64,
        auth: Auth<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Reply<(Vec<User>, Option<String>)> {
        let msg = proto::ListUsersRequest {
            cursor: cursor.map(str::to_owned),
            limit,
        };
        let answer = self.users(via).list_users(req(msg, auth)).await;
        reply("Users.ListUsers", via, answer).map(|r| (r.users, r.next_cursor))
    }

    async fn lookup_user(&self, via: u64, auth: Auth<'_>, email: &str) -> Reply<User> {
        let msg = proto::LookupUserRequest {
            email: email.to_owned(),
        };
        let answer = self.users(via).lookup_user(req(msg, auth)).await;
        reply("Users.LookupUser", via, answer)
    }

    async fn delete_user(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<()> {
        let answer = self
            .users(via)
            .delete_user(req(proto::DeleteUserRequest { id: id.to_owned() }, auth))
            .await;
        reply("Users.DeleteUser", via, answer).map(|_| ())
    }

    async fn list_sessions(&self, via: u64, auth: Auth<'_>, user_id: &str) -> Reply<Vec<Session>> {
        let msg = proto::ListSessionsRequest {
            user_id: user_id.to_owned(),
        };
        let answer = self.users(via).list_sessions(req(msg, auth)).await;
        reply("Users.ListSessions", via, answer).map(|l| l.sessions)
    }

    async fn sign_in_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        email: &str,
        password: &str,
        client: Option<ClientInfo>,
    ) -> Reply<SignInResponse> {
        let mut r = req(
            proto::SignInRequest {
                email: email.to_owned(),
                password: password.to_owned(),
                client,
            },
            auth,
        );
        r.metadata_mut()
            .insert("user-agent", MetadataValue::from_static(USER_AGENT));
        let answer = self.sessions(via).sign_in(r).await;
        reply("Sessions.SignIn", via, answer)
    }

    async fn refresh_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        refresh_token: &str,
        client: Option<ClientInfo>,
    ) -> Reply<RefreshResponse> {
        let msg = proto::RefreshRequest {
            refresh_token: refresh_token.to_owned(),
            client,
        };
        let answer = self.sessions(via).refresh(req(msg, auth)).await;
        reply("Sessions.Refresh", via, answer)
    }

    async fn revoke_session(&self, via: u64, auth: Auth<'_>, session_id: &str) -> Reply<()> {
        let msg = proto::RevokeSessionRequest {
            session_id: session_id.to_owned(),
        };
        let answer = self.sessions(via).revoke(req(msg, auth)).await;
        reply("Sessions.Revoke", via, answer).map(|_| ())
    }

    async fn revoke_user_sessions(&self, via: u64, auth: Auth<'_>, user_id: &str) -> Reply<()> {
        let msg = proto::RevokeUserSessionsRequest {
            user_id: user_id.to_owned(),
        };
        let answer = self.users(via).revoke_user_sessions(req(msg, auth)).await;
        reply("Users.RevokeUserSessions", via, answer).map(|_| ())
    }

    async fn introspect(
        &self,
        via: u64,
        auth: Auth<'_>,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Reply<IntrospectResponse> {
        let msg = proto::IntrospectRequest {
            token: token.to_owned(),
            token_type_hint: token_type_hint.map(str::to_owned),
        };
        let answer = self.tokens(via).introspect(req(msg, auth)).await;
        reply("Tokens.Introspect", via, answer)
    }

    async fn kv_put(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        value: &str,
        expected_revision: Option<u64>,
    ) -> Reply<KvEntry> {
        let msg = proto::PutRequest {
            key: key.to_owned(),
            value: value.to_owned(),
            expected_revision,
        };
        let answer = self.kv(via).put(req(msg, auth)).await;
        reply("Kv.Put", via, answer)
    }

    async fn kv_get(&self, via: u64, auth: Auth<'_>, key: &str) -> Reply<KvEntry> {
        let msg = proto::GetRequest {
            key: key.to_owned(),
        };
        let answer = self.kv(via).get(req(msg, auth)).await;
        reply("Kv.Get", via, answer)
    }

    async fn kv_delete(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Reply<()> {
        let msg = proto::DeleteRequest {
            key: key.to_owned(),
            expected_revision,
        };
        let answer = self.kv(via).delete(req(msg, auth)).await;
        reply("Kv.Delete", via, answer).map(|_| ())
    }
}
