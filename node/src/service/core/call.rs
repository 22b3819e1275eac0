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
use super::min_time::DeferredPad;
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
    /// The end user's address, as an app with the `client_info` scope named
    /// it (`client.ip`): what the per-address rate limits count. Never the
    /// connection's peer, which for an API key is the app's server.
    pub end_user_ip: Option<IpAddr>,
    /// When the request arrived (before anything was read or written for it):
    /// reads may take a read index from any moment after it.
    pub arrival: Instant,
    /// Set only on a request relayed here by the node the client called, which
    /// pads the answer itself (`crate::relay`): minimum response times are
    /// recorded here rather than waited out.
    pub deferred_pad: Option<DeferredPad>,
}

/// The end user an app makes a call for (the request body's `client`).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// The longest `user-agent` kept.
    pub const MAX_USER_AGENT_CHARS: usize = 512;

    /// The client's address: the connection's `peer`, or with `trusted_hops`
    /// proxies in front of the node, the address that many hops before it in
    /// `X-Forwarded-For` (each proxy appends the address it was called from;
    /// `forwarded` are the header's values, in order). A chain shorter than
    /// the proxies gives its first address. `None`: the address there is not
    /// one.
    #[must_use]
    pub fn client_address<'a>(
        peer: Option<IpAddr>,
        forwarded: impl Iterator<Item = &'a str>,
        trusted_hops: u32,
    ) -> Option<IpAddr> {
        if trusted_hops == 0 {
            return peer;
        }
        let chain: Vec<&str> = forwarded
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let hops = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
        // `chain` then the peer: the client is `hops` back from the peer, the
        // chain's last entry one back.
        let entry = chain
            .len()
            .checked_sub(hops)
            .map_or(chain.first(), |i| chain.get(i));
        match entry {
            Some(entry) => parse_forwarded(entry),
            None => peer,
        }
    }

    /// A `user-agent` value as kept: at most [`Self::MAX_USER_AGENT_CHARS`].
    #[must_use]
    pub fn user_agent_of(value: &str) -> String {
        value.chars().take(Self::MAX_USER_AGENT_CHARS).collect()
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
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

    /// The call as made for the end user `client` names (an app's user, whose
    /// address the app passes on), or unchanged without one.
    ///
    /// # Errors
    /// [`ServiceError::InsufficientScope`] unless a key with `client_info`
    /// makes the call; [`ServiceError::InvalidRequest`] for an `ip` that is
    /// not an IP address.
    pub fn on_behalf_of(mut self, client: Option<ClientInfo>) -> Result<Self, ServiceError> {
        let Some(client) = client else {
            return Ok(self);
        };
        match &self.caller {
            Caller::ApiKey(p) => p.require(Scope::ClientInfo)?,
            Caller::Operator | Caller::Public => return Err(ServiceError::Unauthorized),
        }
        if let Some(ip) = client.ip {
            let ip: IpAddr = ip.trim().parse().map_err(|_| {
                ServiceError::InvalidRequest("client.ip is not an IP address".to_owned())
            })?;
            self.context.client_ip = Some(ip);
            self.context.end_user_ip = Some(ip);
        }
        if let Some(ua) = client.user_agent {
            self.context.user_agent = Some(RequestContext::user_agent_of(&ua));
        }
        Ok(self)
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
    /// Naming the end user a call is made for (`client`: IP and user agent),
    /// which sessions, audit events and rate limits then use. Never given to
    /// a tenant's first key: an app that forwards its users' addresses asks
    /// for a key that may.
    ClientInfo,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Write,
        Scope::Manage,
        Scope::Delete,
        Scope::ClientInfo,
    ];
    /// The scopes of a tenant's first key.
    pub const FIRST_KEY: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Manage, Scope::Delete];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Manage => "manage",
            Scope::Delete => "delete",
            Scope::ClientInfo => "client_info",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_client_address_is_the_peer_unless_proxies_are_trusted() {
        let peer = Some(ip("10.0.0.5"));
        let xff = ["198.51.100.9, 192.0.2.1"];
        let at = |hops| RequestContext::client_address(peer, xff.iter().copied(), hops);
        // No trusted proxy: the header is anyone's to send.
        assert_eq!(at(0), peer);
        // One proxy (the peer): the address it appended.
        assert_eq!(at(1), Some(ip("192.0.2.1")));
        assert_eq!(at(2), Some(ip("198.51.100.9")));
        // A chain shorter than the proxies: its first address.
        assert_eq!(at(5), Some(ip("198.51.100.9")));
        // Several header lines are one list; ports are dropped.
        let lines = ["203.0.113.7:4433", "[2001:db8::1]:443"];
        let got = RequestContext::client_address(peer, lines.iter().copied(), 2);
        assert_eq!(got, Some(ip("203.0.113.7")));
        let got = RequestContext::client_address(peer, lines.iter().copied(), 1);
        assert_eq!(got, Some(ip("2001:db8::1")));
        // No header: the peer; garbage where the client should be: none.
        assert_eq!(
            RequestContext::client_address(peer, std::iter::empty(), 1),
            peer
        );
        let got = RequestContext::client_address(peer, ["nonsense"].into_iter(), 1);
        assert_eq!(got, None);
    }
}
