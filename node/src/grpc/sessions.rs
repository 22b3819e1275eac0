//! `cairn.v1.Sessions` and `cairn.v1.Tokens` (`proto/cairn/v1/sessions.proto`),
//! and `Users.ListSessions`: sessions and tokens of the calling tenant.

use tonic::Request;
use zeroize::Zeroizing;

use super::proto::sessions_server::{Sessions, SessionsServer};
use super::proto::tokens_server::{Tokens, TokensServer};
use super::{answer, call, client_info, proto, status, Rpc};
use crate::service::sessions::{Introspection, IssuedSession, RefreshedSession, SessionView};
use crate::service::{Access, Services, MAX_BODY_BYTES};

impl From<SessionView> for proto::Session {
    fn from(s: SessionView) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

impl From<IssuedSession> for proto::SignInResponse {
    fn from(s: IssuedSession) -> Self {
        Self {
            session_id: s.session_id,
            user_id: s.user_id,
            access_token: s.access_token,
            token_type: s.token_type.to_owned(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        }
    }
}

impl From<RefreshedSession> for proto::RefreshResponse {
    fn from(s: RefreshedSession) -> Self {
        Self {
            session_id: s.session_id,
            access_token: s.access_token,
            token_type: s.token_type.to_owned(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
        }
    }
}

impl From<Introspection> for proto::IntrospectResponse {
    fn from(i: Introspection) -> Self {
        Self {
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
    }
}

/// `Users.ListSessions`: the user's active sessions.
pub(super) async fn list(
    services: &Services,
    req: Request<proto::ListSessionsRequest>,
) -> Rpc<proto::ListSessionsResponse> {
    let call = call(services, &req, Access::ApiKey).await?;
    let r = req.into_inner();
    let sessions = services.sessions.list(&call, &r.user_id).await;
    answer(sessions, |sessions| proto::ListSessionsResponse {
        sessions: sessions.into_iter().map(Into::into).collect(),
    })
}

/// `Users.RevokeUserSessions`: signs the user out everywhere.
pub(super) async fn revoke_all(
    services: &Services,
    req: Request<proto::RevokeUserSessionsRequest>,
) -> Rpc<proto::RevokeUserSessionsResponse> {
    let call = call(services, &req, Access::ApiKey).await?;
    let r = req.into_inner();
    let done = services.sessions.revoke_all(&call, &r.user_id).await;
    answer(done, |()| proto::RevokeUserSessionsResponse {})
}

pub struct SessionsRpc {
    services: Services,
}

impl SessionsRpc {
    #[must_use]
    pub fn server(services: Services) -> SessionsServer<Self> {
        SessionsServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl Sessions for SessionsRpc {
    async fn sign_in(&self, req: Request<proto::SignInRequest>) -> Rpc<proto::SignInResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let mut r = req.into_inner();
        let call = call
            .on_behalf_of(client_info(r.client.take()))
            .map_err(|e| status(&e))?;
        let password = Zeroizing::new(r.password);
        let session = self
            .services
            .sessions
            .sign_in(&call, &r.email, password)
            .await;
        answer(session, Into::into)
    }

    async fn refresh(&self, req: Request<proto::RefreshRequest>) -> Rpc<proto::RefreshResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        let call = call
            .on_behalf_of(client_info(r.client))
            .map_err(|e| status(&e))?;
        let token = Zeroizing::new(r.refresh_token);
        answer(
            self.services.sessions.refresh(&call, &token).await,
            Into::into,
        )
    }

    async fn revoke(
        &self,
        req: Request<proto::RevokeSessionRequest>,
    ) -> Rpc<proto::RevokeSessionResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        answer(
            self.services.sessions.revoke(&call, &r.session_id).await,
            |()| proto::RevokeSessionResponse {},
        )
    }
}

pub struct TokensRpc {
    services: Services,
}

impl TokensRpc {
    #[must_use]
    pub fn server(services: Services) -> TokensServer<Self> {
        TokensServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

#[tonic::async_trait]
impl Tokens for TokensRpc {
    async fn introspect(
        &self,
        req: Request<proto::IntrospectRequest>,
    ) -> Rpc<proto::IntrospectResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let token = Zeroizing::new(req.into_inner().token);
        answer(
            self.services.sessions.introspect(&call, &token).await,
            Into::into,
        )
    }
}

redacted_debug! {
    SignInRequest {},
    SignInResponse { session_id, user_id, token_type, expires_in },
    RefreshRequest {},
    RefreshResponse { session_id, token_type, expires_in },
    IntrospectRequest { token_type_hint },
}
