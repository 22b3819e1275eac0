//! The client gRPC API (tonic): thin adapters over [`crate::service::Services`],
//! one file per feature as the `.proto` files are, with the same error codes as
//! HTTP (in the `cairn-code` metadata). [`call`] builds the
//! [`crate::service::Call`] of every rpc.
//!
//! - [`kv`]: `cairn.v1.Kv`, the tenant key-value store.
//! - [`tenants`]: `cairn.v1.TenantAdmin`, which also serves the `api_keys` and
//!   `signing_keys` rpcs (in [`api_keys`], [`signing_keys`]).
//! - [`users`]: `cairn.v1.Users` (its `ListSessions` is in [`sessions`]).
//! - [`sessions`]: `cairn.v1.Sessions` and `cairn.v1.Tokens`.

/// `Debug` for messages that carry a secret or an email (they skip the derived
/// one, see `build.rs`): only the named fields are printed.
macro_rules! redacted_debug {
    ($($ty:ident { $($field:ident),* }),* $(,)?) => {$(
        impl std::fmt::Debug for $crate::grpc::proto::$ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    )*};
}

mod api_keys;
mod kv;
pub(crate) mod relay;
mod sessions;
mod signing_keys;
mod tenants;
mod users;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::ServiceError;
use crate::service::core::DeferredPad;
use crate::service::{Access, Call, RequestContext, Services};

pub use kv::KvRpc;
pub use sessions::{SessionsRpc, TokensRpc};
pub use tenants::TenantAdminRpc;
pub use users::UsersRpc;

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("cairn.v1");
}

type Rpc<T> = Result<Response<T>, Status>;

/// The answer to a call: the message, or the service error as a status.
fn answer<T, M>(r: Result<T, ServiceError>, to_message: impl FnOnce(T) -> M) -> Rpc<M> {
    r.map(|v| Response::new(to_message(v)))
        .map_err(|e| status(&e))
}

/// The caller and context of an rpc that needs `access`, from its metadata
/// (`authorization`, `x-request-id`, `user-agent`) and peer address: built
/// here and nowhere else. An API key is authenticated only for an rpc that
/// `access` says can use one; the service method checks the caller.
async fn call<T>(services: &Services, req: &Request<T>, access: Access) -> Result<Call, Status> {
    let arrival = Instant::now();
    let md = req.metadata();
    let context = RequestContext {
        end_user_ip: None,
        request_id: request_id(md),
        // The gRPC port's own accept loop records the peer address.
        client_ip: RequestContext::client_address(
            req.extensions()
                .get::<cairn_raft::listener::ConnInfo>()
                .map(|info| info.remote.ip()),
            md.get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
            services.trusted_proxy_hops(),
        ),
        user_agent: md
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(RequestContext::user_agent_of),
        arrival,
        deferred_pad: req.extensions().get::<DeferredPad>().cloned(),
    };
    let authorization = md.get("authorization").and_then(|v| v.to_str().ok());
    let caller = services
        .caller(authorization, arrival, access)
        .await
        .map_err(|e| status(&e))?;
    Ok(Call::new(caller, context))
}

/// The end user `client` names, as the service takes it.
fn client_info(client: Option<proto::ClientInfo>) -> Option<crate::service::core::ClientInfo> {
    client.map(|c| crate::service::core::ClientInfo {
        ip: c.ip,
        user_agent: c.user_agent,
    })
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

/// The gRPC status for a service error: the code follows the HTTP status (one
/// mapping to keep true), the stable problem code rides in `cairn-code`.
pub(crate) fn status(e: &ServiceError) -> Status {
    relay::note(e);
    let (http, code) = e.status_and_code();
    let grpc = match (http, e) {
        (_, ServiceError::DecryptionFailed) => tonic::Code::DataLoss,
        (400, _) => tonic::Code::InvalidArgument,
        (401, _) => tonic::Code::Unauthenticated,
        (403, _) => tonic::Code::PermissionDenied,
        (404, _) => tonic::Code::NotFound,
        (409, ServiceError::Conflict(_)) => tonic::Code::Aborted,
        (409, ServiceError::EmailAmbiguous) => tonic::Code::FailedPrecondition,
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
    if let Some(secs) = e.retry_after_secs() {
        md.insert("retry-after", secs.into());
    }
    Status::with_metadata(grpc, e.to_string(), md)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn debug_never_prints_secrets_or_emails() {
        let printed = [
            format!(
                "{:?}",
                proto::SignInRequest {
                    email: "alice@example.com".into(),
                    password: "hunter2-secret".into(),
                    client: Some(proto::ClientInfo {
                        ip: Some("203.0.113.7".into()),
                        user_agent: Some("secret-agent".into()),
                    }),
                }
            ),
            format!(
                "{:?}",
                proto::CreateUserRequest {
                    email: "alice@example.com".into(),
                    password: Some("hunter2-secret".into()),
                    region: None,
                    client: None,
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
                !p.contains("secret") && !p.contains("alice") && !p.contains("203.0.113"),
                "{p} leaks a secret"
            );
        }
    }
}
