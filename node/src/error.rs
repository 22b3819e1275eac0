//! The service layer's errors and their one mapping each to HTTP problem codes.

use cairn_raft::RaftNodeError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing X-Tenant header")]
    MissingTenant,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("key not found")]
    KeyNotFound,
    #[error("expected revision {expected}, current revision is {current}")]
    RevisionMismatch { expected: u64, current: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("tenant not found")]
    TenantNotFound,
    #[error("a tenant named {0:?} already exists")]
    TenantExists(String),
    #[error("{0}")]
    RegionUnavailable(String),
    #[error("the stored value failed to decrypt: it is corrupt, tampered with, or not where it was written")]
    DecryptionFailed,
    #[error("{0}")]
    MasterKeyUnavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this API key lacks the {0:?} scope")]
    InsufficientScope(&'static str),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("more than one user has this email; use the user's id")]
    EmailAmbiguous,
    #[error("user not found")]
    UserNotFound,
    #[error("session not found")]
    SessionNotFound,
    #[error("API key not found")]
    ApiKeyNotFound,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("the refresh token is invalid")]
    InvalidRefreshToken,
    #[error("the refresh token was already used: the session is revoked")]
    RefreshTokenReused,
    #[error("the session is revoked")]
    SessionRevoked,
    #[error("the session has expired")]
    SessionExpired,
    #[error("{0}")]
    AlreadyInitialized(String),
    #[error("{0}")]
    NodeUnreachable(String),
    #[error("{0}")]
    InitFailed(String),
    /// An operation that does not exist here (as if its route did not).
    #[error("no such route")]
    NoSuchRoute,
    /// The operation needs a group hard-pinned to a region this node is outside
    /// of, and nothing was changed: the request is to be served by the region's
    /// nodes (see `crate::relay`).
    #[error("this request is served only by the nodes of region {region}")]
    Relay { group: u64, region: String },
    #[error("this password appears in a known data breach; choose another")]
    PasswordBreached,
    /// A rate limit's bucket is empty: try again in `retry_after_secs`.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Too much work queued for this tenant here: try again in a second.
    #[error("{0}")]
    Overloaded(String),
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// (HTTP status, stable problem code).
    #[must_use]
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Self::Unauthorized => (401, "unauthorized"),
            Self::InvalidRequest(_) => (400, "invalid_request"),
            Self::MissingTenant => (400, "missing_tenant"),
            Self::PayloadTooLarge(_) => (413, "payload_too_large"),
            Self::KeyNotFound => (404, "key_not_found"),
            Self::RevisionMismatch { .. } => (412, "revision_mismatch"),
            Self::Unavailable(_) => (503, "unavailable"),
            Self::TenantNotFound => (404, "tenant_not_found"),
            Self::TenantExists(_) => (409, "tenant_exists"),
            Self::RegionUnavailable(_) => (503, "region_unavailable"),
            Self::DecryptionFailed => (500, "decryption_failed"),
            Self::MasterKeyUnavailable(_) => (503, "master_key_unavailable"),
            Self::Conflict(_) => (409, "conflict"),
            Self::InsufficientScope(_) => (403, "insufficient_scope"),
            Self::EmailTaken => (409, "email_taken"),
            Self::EmailAmbiguous => (409, "email_ambiguous"),
            Self::UserNotFound => (404, "user_not_found"),
            Self::SessionNotFound => (404, "session_not_found"),
            Self::ApiKeyNotFound => (404, "api_key_not_found"),
            Self::InvalidCredentials => (401, "invalid_credentials"),
            Self::InvalidRefreshToken => (401, "invalid_refresh_token"),
            Self::RefreshTokenReused => (401, "refresh_token_reused"),
            Self::SessionRevoked => (401, "session_revoked"),
            Self::SessionExpired => (401, "session_expired"),
            Self::AlreadyInitialized(_) => (409, "already_initialized"),
            Self::NodeUnreachable(_) => (503, "node_unreachable"),
            Self::InitFailed(_) => (500, "init_failed"),
            Self::NoSuchRoute => (404, "not_found"),
            Self::Relay { .. } => (503, "region_unavailable"),
            Self::PasswordBreached => (400, "password_breached"),
            Self::RateLimited { .. } => (429, "rate_limited"),
            Self::Overloaded(_) => (503, "overloaded"),
            Self::Internal => (500, "internal"),
        }
    }

    /// The whole seconds a client should wait before retrying, if the error
    /// says (`Retry-After` over HTTP, the `retry-after` trailer over gRPC).
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Overloaded(_) => Some(1),
            _ => None,
        }
    }
}

impl From<RaftNodeError> for ServiceError {
    fn from(e: RaftNodeError) -> Self {
        match e {
            RaftNodeError::NoLeader { .. }
            | RaftNodeError::OutcomeUnknown { .. }
            | RaftNodeError::ShuttingDown => Self::Unavailable(e.to_string()),
            RaftNodeError::PinnedAway { group, region } => Self::Relay { group, region },
            RaftNodeError::UnknownGroup(_) | RaftNodeError::Internal(_) => {
                tracing::error!(error = %e, "raft request failed");
                Self::Internal
            }
        }
    }
}
