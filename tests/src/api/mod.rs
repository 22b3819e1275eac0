//! One client interface to Cairn's API over both transports, so that a behaviour
//! scenario is written once and run over each: the [`Api`] trait, [`HttpApi`]
//! (JSON over HTTP) and [`GrpcApi`] (`cairn.v1` over gRPC).
//!
//! Requests and answers are the `cairn.v1` messages on both transports: the
//! HTTP implementation turns them into JSON and back, and checks on every call
//! what HTTP promises beyond them (the exact JSON fields, `nosniff`, the echoed
//! request id, problem documents, `no-store` on token answers). Errors are an
//! [`ApiError`] holding the transport's status and the stable problem code;
//! [`fails`] checks both, mapping the HTTP status to the gRPC code the node
//! documents for it.

mod grpc;
mod http;

use std::fmt::Debug;
use std::future::Future;

pub use grpc::GrpcApi;
pub use http::{HttpApi, Resp};

pub use crate::proto::{
    ClientInfo, CreateApiKeyResponse, CreateTenantRequest, CreateTenantResponse, CreateUserRequest,
    FailedSignIns, IntrospectResponse, Jwk, Jwks, KvEntry, RateLimit, RefreshResponse, Session,
    SignInResponse, Tenant, UpdateTenantRequest, UpdateUserRequest, User,
};
use crate::TOKEN;

/// The `user-agent` every sign-in sends (gRPC appends its own after it).
pub const USER_AGENT: &str = "cairn-api-test/1.0";

/// A user-creation request for `email` (with `password`), in the tenant's home
/// region, for no named end user.
#[must_use]
pub fn user_request(email: &str, password: Option<&str>) -> CreateUserRequest {
    CreateUserRequest {
        email: email.to_owned(),
        password: password.map(str::to_owned),
        region: None,
        client: None,
    }
}

/// Which transport an [`Api`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

/// The credentials of a call: `authorization: Bearer …` and `x-tenant`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Auth<'a> {
    pub bearer: Option<&'a str>,
    pub tenant: Option<&'a str>,
}

impl Auth<'static> {
    /// No credentials at all.
    pub const NONE: Self = Self {
        bearer: None,
        tenant: None,
    };
    /// The operator's admin token.
    pub const OPERATOR: Self = Self {
        bearer: Some(TOKEN),
        tenant: None,
    };
}

impl<'a> Auth<'a> {
    /// The operator acting on tenant `tenant` (by name, in `x-tenant`).
    #[must_use]
    pub fn operator_for(tenant: &'a str) -> Self {
        Self {
            bearer: Some(TOKEN),
            tenant: Some(tenant),
        }
    }

    /// These credentials, also naming `tenant` in `x-tenant`.
    #[must_use]
    pub fn with_tenant(self, tenant: &'a str) -> Self {
        Self {
            tenant: Some(tenant),
            ..self
        }
    }
}

/// `authorization: Bearer <token>`: an API key, the admin token, or anything a
/// test wants to present as one.
#[must_use]
pub fn bearer(token: &str) -> Auth<'_> {
    Auth {
        bearer: Some(token),
        tenant: None,
    }
}

/// A transport's error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    Http(u16),
    Grpc(tonic::Code),
}

/// A refused call.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The call (method and path, or rpc, and the node).
    pub what: String,
    pub status: ErrorStatus,
    /// The stable problem code (HTTP `code`, gRPC `cairn-code`).
    pub code: String,
    /// The human-readable detail (HTTP `detail`, gRPC message).
    pub detail: Option<String>,
    /// Everything the refusal carried as text (the HTTP body; the gRPC message),
    /// to check what it must not leak.
    pub text: String,
    /// Whole seconds to wait (HTTP `Retry-After`, gRPC `retry-after`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Whether the error has HTTP status `status` (over gRPC: the code the node
    /// maps that status and this error's problem code to).
    #[must_use]
    pub fn is_status(&self, status: u16) -> bool {
        match self.status {
            ErrorStatus::Http(s) => s == status,
            ErrorStatus::Grpc(c) => c == grpc_code(status, &self.code),
        }
    }

    /// Asserts the error is `code` with the HTTP status `status` (over gRPC: the
    /// code the node maps that status to).
    #[track_caller]
    pub fn assert_is(&self, status: u16, code: &str) {
        let expected = match self.status {
            ErrorStatus::Http(_) => ErrorStatus::Http(status),
            ErrorStatus::Grpc(_) => ErrorStatus::Grpc(grpc_code(status, code)),
        };
        assert_eq!(
            (self.status, self.code.as_str()),
            (expected, code),
            "{}: {:?}",
            self.what,
            self.detail
        );
    }
}

/// The gRPC code of an error with HTTP status `status` and problem `code`, as
/// the node maps them (`node/src/grpc/mod.rs`, documented in the headers of
/// `proto/cairn/v1/{tenants,users,sessions}.proto`).
#[must_use]
pub fn grpc_code(status: u16, code: &str) -> tonic::Code {
    use tonic::Code;
    match (status, code) {
        (_, "decryption_failed") => Code::DataLoss,
        (400, _) => Code::InvalidArgument,
        (401, _) => Code::Unauthenticated,
        (403, _) => Code::PermissionDenied,
        (404, _) => Code::NotFound,
        (409, "conflict") => Code::Aborted,
        (409, _) => Code::AlreadyExists,
        (412, _) => Code::FailedPrecondition,
        (413 | 429, _) => Code::ResourceExhausted,
        (503, _) => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// Asserts `r` failed with `code` and HTTP status `status` (see
/// [`ApiError::assert_is`]); returns the error.
#[track_caller]
pub fn fails<T: Debug>(r: Result<T, ApiError>, status: u16, code: &str) -> ApiError {
    match r {
        Ok(v) => panic!("expected {status} {code}, got {v:?}"),
        Err(e) => {
            e.assert_is(status, code);
            e
        }
    }
}

/// Asserts `r` failed as unauthenticated (401 `unauthorized`).
#[track_caller]
pub fn unauthorized<T: Debug>(r: Result<T, ApiError>) {
    fails(r, 401, "unauthorized");
}

/// Asserts `r` failed for a missing scope (403 `insufficient_scope`, with a
/// detail).
#[track_caller]
pub fn insufficient_scope<T: Debug>(r: Result<T, ApiError>) {
    let e = fails(r, 403, "insufficient_scope");
    assert!(e.detail.is_some(), "{}: no detail", e.what);
}

/// What the calls answer: the message, or why not.
pub type Reply<T> = Result<T, ApiError>;

/// Cairn's client API, through node `via` of a cluster. Every scenario that is
/// not about one transport's wire form is written against this.
pub trait Api: Clone + Send + Sync + 'static {
    fn transport(&self) -> Transport;

    // ---- tenants (operator) ----
    fn create_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: CreateTenantRequest,
    ) -> impl Future<Output = Reply<CreateTenantResponse>> + Send;
    fn list_tenants(
        &self,
        via: u64,
        auth: Auth<'_>,
    ) -> impl Future<Output = Reply<Vec<Tenant>>> + Send;
    fn get_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        id: &str,
    ) -> impl Future<Output = Reply<Tenant>> + Send;
    fn update_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: UpdateTenantRequest,
    ) -> impl Future<Output = Reply<Tenant>> + Send;
    fn delete_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        id: &str,
    ) -> impl Future<Output = Reply<()>> + Send;

    // ---- api_keys (operator) ----
    fn create_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        scopes: &[&str],
    ) -> impl Future<Output = Reply<CreateApiKeyResponse>> + Send;
    fn revoke_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        key_id: &str,
    ) -> impl Future<Output = Reply<()>> + Send;

    // ---- signing_keys ----
    fn rotate_signing_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
    ) -> impl Future<Output = Reply<Jwks>> + Send;
    /// The public JWKS (no credentials).
    fn get_jwks(&self, via: u64, tenant_id: &str) -> impl Future<Output = Reply<Jwks>> + Send;

    // ---- users (API key) ----
    fn create_user(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: CreateUserRequest,
    ) -> impl Future<Output = Reply<User>> + Send;
    fn get_user(
        &self,
        via: u64,
        auth: Auth<'_>,
        id: &str,
    ) -> impl Future<Output = Reply<User>> + Send;
    fn update_user(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: UpdateUserRequest,
    ) -> impl Future<Output = Reply<User>> + Send;
    /// `GET /v1/users?cursor&limit`: a page and the next cursor.
    fn list_users(
        &self,
        via: u64,
        auth: Auth<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> impl Future<Output = Reply<(Vec<User>, Option<String>)>> + Send;
    /// `POST /v1/users/lookup`.
    fn lookup_user(
        &self,
        via: u64,
        auth: Auth<'_>,
        email: &str,
    ) -> impl Future<Output = Reply<User>> + Send;
    fn delete_user(
        &self,
        via: u64,
        auth: Auth<'_>,
        id: &str,
    ) -> impl Future<Output = Reply<()>> + Send;
    fn list_sessions(
        &self,
        via: u64,
        auth: Auth<'_>,
        user_id: &str,
    ) -> impl Future<Output = Reply<Vec<Session>>> + Send;

    // ---- sessions (API key) ----
    /// Signs in, sending [`USER_AGENT`].
    fn sign_in(
        &self,
        via: u64,
        auth: Auth<'_>,
        email: &str,
        password: &str,
    ) -> impl Future<Output = Reply<SignInResponse>> + Send {
        self.sign_in_for(via, auth, email, password, None)
    }
    fn refresh(
        &self,
        via: u64,
        auth: Auth<'_>,
        refresh_token: &str,
    ) -> impl Future<Output = Reply<RefreshResponse>> + Send {
        self.refresh_for(via, auth, refresh_token, None)
    }
    /// [`Api::sign_in`], for the end user `client` if given (the body's
    /// `client`).
    fn sign_in_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        email: &str,
        password: &str,
        client: Option<ClientInfo>,
    ) -> impl Future<Output = Reply<SignInResponse>> + Send;
    /// [`Api::refresh`], for the end user `client` if given.
    fn refresh_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        refresh_token: &str,
        client: Option<ClientInfo>,
    ) -> impl Future<Output = Reply<RefreshResponse>> + Send;
    fn revoke_session(
        &self,
        via: u64,
        auth: Auth<'_>,
        session_id: &str,
    ) -> impl Future<Output = Reply<()>> + Send;
    /// Signs a user out everywhere.
    fn revoke_user_sessions(
        &self,
        via: u64,
        auth: Auth<'_>,
        user_id: &str,
    ) -> impl Future<Output = Reply<()>> + Send;
    fn introspect(
        &self,
        via: u64,
        auth: Auth<'_>,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> impl Future<Output = Reply<IntrospectResponse>> + Send;

    // ---- kv (API key, or the operator with x-tenant) ----
    fn kv_put(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        value: &str,
        expected_revision: Option<u64>,
    ) -> impl Future<Output = Reply<KvEntry>> + Send;
    fn kv_get(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
    ) -> impl Future<Output = Reply<KvEntry>> + Send;
    fn kv_delete(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        expected_revision: Option<u64>,
    ) -> impl Future<Output = Reply<()>> + Send;
}
