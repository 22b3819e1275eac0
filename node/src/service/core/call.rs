//! Who calls, and about which request: every service method takes a [`Call`]
//! and checks its [`Caller`] itself (`call.operator()?`,
//! `call.api_key(Scope::Write)?`), so that no transport can reach an operation
//! without its check. Each adapter builds the `Call` in exactly one place (the
//! HTTP extractor in `http/extract.rs`, one function over gRPC metadata).

use std::net::IpAddr;
use std::sync::Arc;

use cairn_storage::SessionPolicy;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::keyring::TenantKeys;
use crate::error::ServiceError;

/// One request to the service layer: who makes it, and its context. Built only
/// by [`Call::new`] in the two adapter places; read through its getters.
#[derive(Debug, Clone)]
pub struct Call {
    caller: Caller,
    context: RequestContext,
}

/// Who calls. Credentials that are missing, malformed, unknown or revoked all
/// make a [`Caller::Public`]: such a caller may do what needs no credentials.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator (the cluster's admin token).
    Operator,
    /// A tenant's API key, with its scopes.
    ApiKey(Principal),
    /// No valid credentials.
    Public,
}

/// Where and when a request came in.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (HTTP: the one echoed in `x-request-id`; gRPC: a
    /// well-formed `x-request-id` metadata value, if given).
    pub request_id: Option<String>,
    /// The peer's address, as the transport saw it.
    pub client_ip: Option<IpAddr>,
    /// The `user-agent`, cut to 512 characters.
    pub user_agent: Option<String>,
    /// When the request arrived (before anything was read or written for it):
    /// reads may take a read index from any moment after it.
    pub arrival: Instant,
}

impl RequestContext {
    /// The longest `user-agent` kept.
    pub const MAX_USER_AGENT_CHARS: usize = 512;

    /// A `user-agent` value as kept: at most [`Self::MAX_USER_AGENT_CHARS`].
    #[must_use]
    pub fn user_agent_of(value: &str) -> String {
        value.chars().take(Self::MAX_USER_AGENT_CHARS).collect()
    }
}

/// What an operation needs of its caller: which credentials are worth
/// authenticating for it (an API key is read from `meta` only where one can
/// serve), and what HTTP checks before it reads the path and body (the order
/// the answers had before the restructure, see `http::extract::admit`). The
/// service method checks its caller again, as the authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials; or the handler checks the operator itself, after an
    /// answer that must come first (`/v1/debug/partition`: 404 without fault
    /// injection). Only the admin token is recognised.
    Public,
    /// The operator's admin token (never an API key, so never a `meta` read).
    Operator,
    /// A tenant API key; its scope is checked by the operation, after the path
    /// and body.
    ApiKey,
    /// Tenant data (KV): an API key carrying the scope, or the operator naming
    /// an existing tenant in `X-Tenant`, both before the path and body.
    Kv(Scope),
}

impl Access {
    /// Whether a `ck_…` token is authenticated as an API key (a `meta` read).
    #[must_use]
    pub fn reads_api_key(self) -> bool {
        matches!(self, Access::ApiKey | Access::Kv(_))
    }
}

impl Call {
    /// A call by `caller` (from [`crate::service::Services::caller`]) in
    /// `context`: what each adapter builds in its one place.
    #[must_use]
    pub fn new(caller: Caller, context: RequestContext) -> Self {
        Self { caller, context }
    }

    /// Who makes the call.
    #[must_use]
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Where and when the call came in.
    #[must_use]
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    /// Refuses the call unless a tenant API key makes it, whatever its scopes.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`]; [`ServiceError::Relay`] for a tenant
    /// homed in a hard region this node is outside of.
    pub fn any_api_key(&self) -> Result<&Principal, ServiceError> {
        match &self.caller {
            Caller::ApiKey(p) => {
                p.served_here()?;
                Ok(p)
            }
            Caller::Operator | Caller::Public => Err(ServiceError::Unauthorized),
        }
    }

    /// Refuses the call unless the operator makes it.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`].
    pub fn operator(&self) -> Result<(), ServiceError> {
        match self.caller {
            Caller::Operator => Ok(()),
            Caller::ApiKey(_) | Caller::Public => Err(ServiceError::Unauthorized),
        }
    }

    /// The tenant API key making the call, if it carries `scope`.
    ///
    /// # Errors
    /// [`ServiceError::Unauthorized`] for anyone but a tenant API key;
    /// [`ServiceError::InsufficientScope`] for a key without `scope`;
    /// [`ServiceError::Relay`] as [`Self::any_api_key`].
    pub fn api_key(&self, scope: Scope) -> Result<&Principal, ServiceError> {
        match &self.caller {
            Caller::ApiKey(p) => {
                p.require(scope)?;
                p.served_here()?;
                Ok(p)
            }
            Caller::Operator | Caller::Public => Err(ServiceError::Unauthorized),
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GETs: users, sessions, KV, introspection.
    Read,
    /// Creates and updates: users, sign-in, refresh, KV writes.
    Write,
    /// Session revocation and keys.
    Manage,
    /// Deletes: users, KV keys.
    Delete,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Manage, Scope::Delete];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Manage => "manage",
            Scope::Delete => "delete",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An authenticated tenant caller: its tenant's keys and its key's scopes.
#[derive(Clone)]
pub struct Principal {
    pub(super) keys: Arc<TenantKeys>,
    pub(super) scopes: Vec<Scope>,
    pub(super) key_id: String,
    /// The tenant's session lifetimes as read with the key (the cached keys may
    /// hold an older copy of the tenant record).
    pub(super) sessions: SessionPolicy,
    /// The (group, region) of the tenant's home, if it is hard-pinned to a
    /// region this node is outside of: then the key's calls are relayed there.
    pub(super) relay: Option<(u64, String)>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("tenant_id", &self.keys.id())
            .field("key_id", &self.key_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Principal {
    /// Refuses the call unless the key carries `scope`.
    ///
    /// # Errors
    /// [`ServiceError::InsufficientScope`].
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ServiceError::InsufficientScope(scope.as_str()))
        }
    }

    /// Refuses a call to be served by the tenant's home region's nodes.
    ///
    /// # Errors
    /// [`ServiceError::Relay`].
    fn served_here(&self) -> Result<(), ServiceError> {
        match &self.relay {
            Some((group, region)) => Err(ServiceError::Relay {
                group: *group,
                region: region.clone(),
            }),
            None => Ok(()),
        }
    }

    #[must_use]
    pub fn session_policy(&self) -> SessionPolicy {
        self.sessions
    }

    #[must_use]
    pub fn keys(&self) -> &Arc<TenantKeys> {
        &self.keys
    }

    /// The id of the API key making the call.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}
