//! `cairn.v1.Users` (`proto/cairn/v1/users.proto`): users of the calling
//! tenant (API key scopes). Its `ListSessions` rpc is in `sessions`.

use tonic::Request;
use zeroize::Zeroizing;

use super::proto::users_server::{Users, UsersServer};
use super::{answer, call, client_info, proto, sessions, status, Rpc};
use crate::service::users::{UserPatch, UserView};
use crate::service::{Access, Services, MAX_BODY_BYTES};

pub struct UsersRpc {
    services: Services,
}

impl UsersRpc {
    #[must_use]
    pub fn server(services: Services) -> UsersServer<Self> {
        UsersServer::new(Self { services }).max_decoding_message_size(MAX_BODY_BYTES)
    }
}

impl From<UserView> for proto::User {
    fn from(u: UserView) -> Self {
        Self {
            id: u.id,
            email: u.email,
            region: u.region,
            created_at: u.created_at,
            updated_at: u.updated_at,
            has_password: u.has_password,
            failed_sign_ins: Some(proto::FailedSignIns {
                count: u.failed_sign_ins.count,
                last_at: u.failed_sign_ins.last_at,
                last_ip: u.failed_sign_ins.last_ip,
            }),
        }
    }
}

#[tonic::async_trait]
impl Users for UsersRpc {
    async fn create_user(&self, req: Request<proto::CreateUserRequest>) -> Rpc<proto::User> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let mut r = req.into_inner();
        let call = call
            .on_behalf_of(client_info(r.client.take()))
            .map_err(|e| status(&e))?;
        let created = self
            .services
            .users
            .create(
                &call,
                &r.email,
                r.password.map(Zeroizing::new),
                r.region.as_deref(),
            )
            .await;
        answer(created, Into::into)
    }

    async fn get_user(&self, req: Request<proto::GetUserRequest>) -> Rpc<proto::User> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        answer(self.services.users.get(&call, &r.id).await, Into::into)
    }

    async fn list_users(
        &self,
        req: Request<proto::ListUsersRequest>,
    ) -> Rpc<proto::ListUsersResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        let page = self
            .services
            .users
            .list(&call, r.cursor.as_deref(), r.limit)
            .await;
        answer(page, |(users, next_cursor)| proto::ListUsersResponse {
            users: users.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }

    async fn lookup_user(&self, req: Request<proto::LookupUserRequest>) -> Rpc<proto::User> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        answer(
            self.services.users.lookup(&call, &r.email).await,
            Into::into,
        )
    }

    async fn update_user(&self, req: Request<proto::UpdateUserRequest>) -> Rpc<proto::User> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        let patch = UserPatch {
            email: r.email,
            password: r.password.map(Zeroizing::new),
            keep_session_id: r.keep_session_id,
        };
        answer(
            self.services.users.update(&call, &r.id, patch).await,
            Into::into,
        )
    }

    async fn delete_user(
        &self,
        req: Request<proto::DeleteUserRequest>,
    ) -> Rpc<proto::DeleteUserResponse> {
        let call = call(&self.services, &req, Access::ApiKey).await?;
        let r = req.into_inner();
        answer(self.services.users.delete(&call, &r.id).await, |()| {
            proto::DeleteUserResponse {}
        })
    }

    async fn list_sessions(
        &self,
        req: Request<proto::ListSessionsRequest>,
    ) -> Rpc<proto::ListSessionsResponse> {
        sessions::list(&self.services, req).await
    }

    async fn revoke_user_sessions(
        &self,
        req: Request<proto::RevokeUserSessionsRequest>,
    ) -> Rpc<proto::RevokeUserSessionsResponse> {
        sessions::revoke_all(&self.services, req).await
    }
}

redacted_debug! {
    CreateUserRequest { region },
    UpdateUserRequest { id },
    User { id, region, created_at, updated_at, has_password },
}
