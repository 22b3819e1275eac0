//! The auth API over gRPC (`proto/cairn/v1/auth.proto`): `TenantAdmin` (operator
//! token), `Users`, `Sessions`, `Tokens` (tenant API keys). One rpc per HTTP
//! handler (`http::auth`, and `http::keys` for creating and listing tenants),
//! calling the same service methods with the same authentication.

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::proto::sessions_server::{Sessions, SessionsServer};
use super::proto::tenant_admin_server::{TenantAdmin, TenantAdminServer};
use super::proto::tokens_server::{Tokens, TokensServer};
use super::proto::users_server::{Users, UsersServer};
use super::{authorization, proto, status};
use crate::error::ServiceError;
use crate::service::{
    Principal, Services, SignInContext, TenantSettings, TenantView, UserPatch, UserView,
    MAX_BODY_BYTES,
};

type Rpc<T> = Result<Response<T>, Status>;

/// The answer to a call: the message, or the service error as a status.
fn answer<T, M>(r: Result<T, ServiceError>, to_message: impl FnOnce(T) -> M) -> Rpc<M> {
    r.map(|v| Response::new(to_message(v)))
        .map_err(|e| status(&e))
}

fn authorize_admin(services: &Services, md: &MetadataMap) -> Result<(), Status> {
    services
        .authorize_admin(authorization(md))
        .map_err(|e| status(&e))
}

async fn principal(services: &Services, md: &MetadataMap) -> Result<Principal, Status> {
    services
        .authenticate(authorization(md))
        .await
        .map_err(|e| status(&e))
}

/// The `x-request-id` metadata, recorded with a refresh token reuse; only a
/// well-formed one (what HTTP echoes: 1-64 of `A-Z a-z 0-9 - _`).
fn request_id(md: &MetadataMap) -> Option<String> {
    md.get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

fn user(u: UserView) -> proto::User {
    proto::User {
        id: u.id,
        email: u.email,
        region: u.region,
        created_at: u.created_at,
        updated_at: u.updated_at,
        has_password: u.has_password,
    }
}

/// A JWKS from its JSON keys (`cairn_crypto::jwt::jwk`).
fn jwks(keys: &[serde_json::Value]) -> proto::Jwks {
    let field = |k: &serde_json::Value, name: &str| k[name].as_str().unwrap_or_default().to_owned();
    proto::Jwks {
        keys: keys
            .iter()
            .map(|k| proto::Jwk {
                kty: field(k, "kty"),
                crv: field(k, "crv"),
                x: field(k, "x"),
                kid: field(k, "kid"),
                alg: field(k, "alg"),
                r#use: field(k, "use"),
            })
            .collect(),
    }
}

fn tenant(t: TenantView) -> proto::Tenant {
    proto::Tenant {
        id: t.id,
        name: t.name,
        region: t.region,
        created_at: t.created_at,
        session_idle_timeout_secs: t.session_idle_timeout_secs,
        session_absolute_timeout_secs: t.session_absolute_timeout_secs,
    }
}

// ---- TenantAdmin ----

pub struct TenantAdminService {
    services: Services,
}

impl TenantAdminService {
    #[must_use]
    pub fn server(services: Services) -> TenantAdminServer<Self> {
        TenantAdminServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl TenantAdmin for TenantAdminService {
    async fn create_tenant(
        &self,
        req: Request<proto::CreateTenantRequest>,
    ) -> Rpc<proto::CreateTenantResponse> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        let settings = TenantSettings {
            session_idle_timeout_secs: r.session_idle_timeout_secs,
            session_absolute_timeout_secs: r.session_absolute_timeout_secs,
        };
        let created = self
            .services
            .create_tenant(&r.name, r.region.as_deref(), settings)
            .await;
        answer(created, |t| proto::CreateTenantResponse {
            id: t.tenant.id,
            name: t.tenant.name,
            region: t.tenant.region,
            created_at: t.tenant.created_at,
            api_key: t.api_key,
            api_key_id: t.api_key_id,
            session_idle_timeout_secs: t.tenant.session_idle_timeout_secs,
            session_absolute_timeout_secs: t.tenant.session_absolute_timeout_secs,
        })
    }

    async fn get_tenant(&self, req: Request<proto::GetTenantRequest>) -> Rpc<proto::Tenant> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        answer(self.services.get_tenant(&r.id).await, tenant)
    }

    async fn update_tenant(&self, req: Request<proto::UpdateTenantRequest>) -> Rpc<proto::Tenant> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        let settings = TenantSettings {
            session_idle_timeout_secs: r.session_idle_timeout_secs,
            session_absolute_timeout_secs: r.session_absolute_timeout_secs,
        };
        answer(self.services.update_tenant(&r.id, settings).await, tenant)
    }

    async fn list_tenants(
        &self,
        req: Request<proto::ListTenantsRequest>,
    ) -> Rpc<proto::ListTenantsResponse> {
        authorize_admin(&self.services, req.metadata())?;
        answer(self.services.list_tenants().await, |tenants| {
            proto::ListTenantsResponse {
                tenants: tenants.into_iter().map(tenant).collect(),
            }
        })
    }

    async fn delete_tenant(
        &self,
        req: Request<proto::DeleteTenantRequest>,
    ) -> Rpc<proto::DeleteTenantResponse> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        answer(self.services.delete_tenant(&r.id).await, |()| {
            proto::DeleteTenantResponse {}
        })
    }

    async fn create_api_key(
        &self,
        req: Request<proto::CreateApiKeyRequest>,
    ) -> Rpc<proto::CreateApiKeyResponse> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        let issued = self.services.create_api_key(&r.tenant_id, &r.scopes).await;
        answer(issued, |k| proto::CreateApiKeyResponse {
            id: k.id,
            api_key: k.api_key,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: k.created_at,
        })
    }

    async fn revoke_api_key(
        &self,
        req: Request<proto::RevokeApiKeyRequest>,
    ) -> Rpc<proto::RevokeApiKeyResponse> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        let revoked = self.services.revoke_api_key(&r.tenant_id, &r.key_id).await;
        answer(revoked, |()| proto::RevokeApiKeyResponse {})
    }

    async fn rotate_signing_key(
        &self,
        req: Request<proto::RotateSigningKeyRequest>,
    ) -> Rpc<proto::Jwks> {
        authorize_admin(&self.services, req.metadata())?;
        let r = req.into_inner();
        let rotated = self.services.rotate_signing_key(&r.tenant_id).await;
        answer(rotated, |j| jwks(&j.keys))
    }

    async fn get_jwks(&self, req: Request<proto::GetJwksRequest>) -> Rpc<proto::Jwks> {
        let r = req.into_inner();
        answer(self.services.jwks(&r.tenant_id).await, |j| jwks(&j.keys))
    }
}

// ---- Users ----

pub struct UsersService {
    services: Services,
}

impl UsersService {
    #[must_use]
    pub fn server(services: Services) -> UsersServer<Self> {
        UsersServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl Users for UsersService {
    async fn create_user(&self, req: Request<proto::CreateUserRequest>) -> Rpc<proto::User> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        let created = self
            .services
            .create_user(
                &p,
                &r.email,
                r.password.map(Zeroizing::new),
                r.region.as_deref(),
            )
            .await;
        answer(created, user)
    }

    async fn get_user(&self, req: Request<proto::GetUserRequest>) -> Rpc<proto::User> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        answer(self.services.get_user(&p, &r.id).await, user)
    }

    async fn update_user(&self, req: Request<proto::UpdateUserRequest>) -> Rpc<proto::User> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        let patch = UserPatch {
            email: r.email,
            password: r.password.map(Zeroizing::new),
        };
        answer(self.services.update_user(&p, &r.id, patch).await, user)
    }

    async fn delete_user(
        &self,
        req: Request<proto::DeleteUserRequest>,
    ) -> Rpc<proto::DeleteUserResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        answer(self.services.delete_user(&p, &r.id).await, |()| {
            proto::DeleteUserResponse {}
        })
    }

    async fn list_sessions(
        &self,
        req: Request<proto::ListSessionsRequest>,
    ) -> Rpc<proto::ListSessionsResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        let sessions = self.services.list_sessions(&p, &r.user_id).await;
        answer(sessions, |sessions| proto::ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|s| proto::Session {
                    id: s.id,
                    user_id: s.user_id,
                    created_at: s.created_at,
                    last_refreshed_at: s.last_refreshed_at,
                    expires_at: s.expires_at,
                    ip: s.ip,
                    user_agent: s.user_agent,
                })
                .collect(),
        })
    }
}

// ---- Sessions ----

pub struct SessionsService {
    services: Services,
}

impl SessionsService {
    #[must_use]
    pub fn server(services: Services) -> SessionsServer<Self> {
        SessionsServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl Sessions for SessionsService {
    async fn sign_in(&self, req: Request<proto::SignInRequest>) -> Rpc<proto::SignInResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let ctx = SignInContext {
            ip: req.remote_addr().map(|a| a.ip().to_string()),
            user_agent: req
                .metadata()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(512).collect()),
        };
        let r = req.into_inner();
        let password = Zeroizing::new(r.password);
        let session = self.services.sign_in(&p, &r.email, password, ctx).await;
        answer(session, |s| proto::SignInResponse {
            session_id: s.session_id,
            user_id: s.user_id,
            access_token: s.access_token,
            token_type: s.token_type.to_owned(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        })
    }

    async fn refresh(&self, req: Request<proto::RefreshRequest>) -> Rpc<proto::RefreshResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let request_id = request_id(req.metadata());
        let token = Zeroizing::new(req.into_inner().refresh_token);
        let pair = self.services.refresh(&p, &token, request_id).await;
        answer(pair, |s| proto::RefreshResponse {
            session_id: s.session_id,
            access_token: s.access_token,
            token_type: s.token_type.to_owned(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        })
    }

    async fn revoke(
        &self,
        req: Request<proto::RevokeSessionRequest>,
    ) -> Rpc<proto::RevokeSessionResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let r = req.into_inner();
        answer(
            self.services.revoke_session(&p, &r.session_id).await,
            |()| proto::RevokeSessionResponse {},
        )
    }
}

// ---- Tokens ----

pub struct TokensService {
    services: Services,
}

impl TokensService {
    #[must_use]
    pub fn server(services: Services) -> TokensServer<Self> {
        TokensServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl Tokens for TokensService {
    async fn introspect(
        &self,
        req: Request<proto::IntrospectRequest>,
    ) -> Rpc<proto::IntrospectResponse> {
        let p = principal(&self.services, req.metadata()).await?;
        let token = Zeroizing::new(req.into_inner().token);
        answer(self.services.introspect(&p, &token).await, |i| {
            proto::IntrospectResponse {
                active: i.active,
                token_type: i.token_type.map(str::to_owned),
                iss: i.iss,
                sub: i.sub,
                sid: i.sid,
                tid: i.tid,
                iat: i.iat,
                exp: i.exp,
                amr: i.amr.unwrap_or_default(),
                aal: i.aal,
            }
        })
    }
}

// ---- Debug without secrets or emails (these messages skip the derived one) ----

macro_rules! redacted_debug {
    ($($ty:ident { $($field:ident),* }),* $(,)?) => {$(
        impl std::fmt::Debug for proto::$ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    )*};
}

redacted_debug! {
    CreateTenantResponse { id, name, region, created_at, api_key_id },
    CreateApiKeyResponse { id, scopes, created_at },
    CreateUserRequest { region },
    UpdateUserRequest { id },
    User { id, region, created_at, updated_at, has_password },
    SignInRequest {},
    SignInResponse { session_id, user_id, token_type, expires_in },
    RefreshRequest {},
    RefreshResponse { session_id, token_type, expires_in },
    IntrospectRequest { token_type_hint },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets_or_emails() {
        let printed = [
            format!(
                "{:?}",
                proto::SignInRequest {
                    email: "alice@example.com".into(),
                    password: "hunter2-secret".into(),
                }
            ),
            format!(
                "{:?}",
                proto::CreateUserRequest {
                    email: "alice@example.com".into(),
                    password: Some("hunter2-secret".into()),
                    region: None,
                }
            ),
            format!(
                "{:?}",
                proto::RefreshResponse {
                    session_id: "ses_1".into(),
                    access_token: "eyJ-secret".into(),
                    token_type: "Bearer".into(),
                    expires_in: 900,
                    refresh_token: "rt1.secret".into(),
                }
            ),
            format!(
                "{:?}",
                proto::CreateApiKeyResponse {
                    id: "k1".into(),
                    api_key: "ck_secret".into(),
                    scopes: vec!["read".into()],
                    created_at: 1,
                }
            ),
        ];
        for p in printed {
            assert!(
                !p.contains("secret") && !p.contains("alice"),
                "{p} leaks a secret"
            );
        }
    }

    #[test]
    fn request_ids_are_taken_only_when_well_formed() {
        let mut md = MetadataMap::new();
        assert_eq!(request_id(&md), None);
        md.insert("x-request-id", "req-1_A".parse().expect("ascii"));
        assert_eq!(request_id(&md).as_deref(), Some("req-1_A"));
        md.insert("x-request-id", "a b".parse().expect("ascii"));
        assert_eq!(request_id(&md), None);
        md.insert("x-request-id", "x".repeat(65).parse().expect("ascii"));
        assert_eq!(request_id(&md), None);
    }
}
