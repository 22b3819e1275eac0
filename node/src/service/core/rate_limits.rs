//! Rate limits as the services apply them (SPEC §4): token buckets per action
//! in three scopes.
//!
//! - `email` and `pair` count failures and live in the user's data group
//!   (`storage::sm::rate_limits`), so a botnet spraying every node meets one
//!   limit. A request is refused from this node's replica of the buckets, with
//!   no Raft write; the log decides again when a failure is charged or a
//!   session starts, so racing requests cannot overdraw a bucket.
//! - `ip` counts every request and lives in this node's memory
//!   ([`IpBuckets`]). That is enough: an address gets at most one budget per
//!   node (a small, fixed multiple), while the buckets that protect accounts
//!   are the replicated ones; a replicated per-request bucket would turn every
//!   refused request back into a consensus write.
//!
//! Without an end-user address (an app that does not pass `client`, and no
//! trusted proxy), the `ip` and `pair` buckets are skipped: they are never
//! keyed on an app server's address, which would let one tenant's users lock
//! each other out.
//!
//! Ids are keyed hashes under the tenant's blind-index key: an email's blind
//! index, and for a pair the email's blind index followed by an HMAC of the
//! address (IPv6 by its /64), so no address is stored and an erasure finds a
//! user's rows by email.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use cairn_cluster_config::{Bucket, GroupId};
use cairn_storage::sm::rate_limits::rules::{retry_after_secs, Gcra};
use cairn_storage::sm::rate_limits::{Charge, GetRates, Limited, TRUSTED_PAIR};
use cairn_storage::sm::Read;

use super::keyring::TenantKeys;
use super::settings::Settings;
use super::Core;
use crate::error::ServiceError;

/// How long a pair that signed in bypasses the email bucket.
pub const TRUSTED_PAIR_SECS: u64 = 30 * 86_400;

/// Addresses whose buckets this node keeps at once (about 100 bytes each).
const IP_BUCKETS_CAPACITY: usize = 100_000;

/// An action that takes rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitAction {
    SignIn,
}

impl LimitAction {
    fn name(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
        }
    }

    /// The stored row kind of this action's bucket in `scope` (0 email, 2 pair).
    fn kind(self, scope: u8) -> u8 {
        let action = match self {
            Self::SignIn => 0u8,
        };
        action << 2 | scope
    }

    fn bucket(self, settings: &Settings, scope: &str) -> Bucket {
        settings
            .rate_limits
            .get(self.name(), scope)
            .unwrap_or(Bucket {
                burst: 1,
                per_minute: 1,
            })
    }
}

/// The bytes an address is bucketed by: IPv4 whole, IPv6 by its /64.
#[must_use]
pub fn ip_prefix(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

/// The replicated buckets of one request: its email's and, with an end-user
/// address, its pair's.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub group: GroupId,
    tenant: String,
    email: Charge,
    pair: Option<Charge>,
}

impl Buckets {
    /// The charges of a failure: every bucket.
    #[must_use]
    pub fn charges(&self) -> Vec<Charge> {
        std::iter::once(self.email.clone())
            .chain(self.pair.clone())
            .collect()
    }

    /// The pair's id, to trust after a sign-in.
    #[must_use]
    pub fn pair_id(&self) -> Option<&[u8]> {
        self.pair.as_ref().map(|p| p.id.as_slice())
    }
}

/// What this node's replica says of a request's buckets.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// The pair signed in recently: the email bucket does not apply to a
    /// correct password.
    pub trusted_pair: bool,
    /// The email bucket is empty (for this long, in ms).
    pub email_limited: Option<u64>,
}

impl Standing {
    /// The checks a successful sign-in must pass in the log.
    #[must_use]
    pub fn requires(&self, b: &Buckets) -> Vec<Charge> {
        if self.trusted_pair {
            Vec::new()
        } else {
            vec![b.email.clone()]
        }
    }
}

/// A node-local bucket's key: tenant, action, address prefix.
type IpKey = (String, LimitAction, Vec<u8>);

/// Node-local buckets per [`IpKey`], bounded.
#[derive(Default)]
pub struct IpBuckets {
    tats: Mutex<HashMap<IpKey, u64>>,
}

impl IpBuckets {
    /// Takes a token at `now_ms`.
    ///
    /// # Errors
    /// The bucket is empty: the wait in ms.
    fn take(&self, key: IpKey, g: Gcra, now_ms: u64) -> Result<(), u64> {
        let mut tats = self.tats.lock().unwrap_or_else(PoisonError::into_inner);
        if tats.len() >= IP_BUCKETS_CAPACITY && !tats.contains_key(&key) {
            // Full buckets are the same as none: drop them first; if every
            // bucket is still counting, drop them all rather than grow (an
            // attacker with that many addresses gains one fresh budget each).
            tats.retain(|_, tat| *tat > now_ms);
            if tats.len() >= IP_BUCKETS_CAPACITY {
                tats.clear();
            }
        }
        let tat = tats.get(&key).copied();
        let next = g.take(tat, now_ms)?;
        tats.insert(key, next);
        Ok(())
    }
}

/// The answer to a request over a limit.
#[must_use]
pub fn limited(wait_ms: u64) -> ServiceError {
    ServiceError::RateLimited {
        retry_after_secs: retry_after_secs(wait_ms),
    }
}

impl From<Limited> for ServiceError {
    fn from(l: Limited) -> Self {
        limited(l.retry_after_ms)
    }
}

impl Core {
    /// Takes a token from `ip`'s node-local bucket for `action` (every request
    /// counts); no address, no bucket.
    ///
    /// # Errors
    /// `rate_limited`.
    pub fn charge_ip(
        &self,
        keys: &TenantKeys,
        settings: &Settings,
        action: LimitAction,
        ip: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let Some(ip) = ip else {
            return Ok(());
        };
        let b = action.bucket(settings, "ip");
        let key = (keys.id().to_owned(), action, ip_prefix(ip));
        self.inner
            .ip_buckets
            .take(key, Gcra::new(b.burst, b.per_minute), now_ms)
            .map_err(limited)
    }

    /// The replicated buckets of a request for `action` by the email whose
    /// blind index is `email_index`, from `ip`, kept in `group`.
    #[must_use]
    pub fn buckets(
        &self,
        keys: &TenantKeys,
        settings: &Settings,
        action: LimitAction,
        group: GroupId,
        email_index: &[u8],
        ip: Option<IpAddr>,
    ) -> Buckets {
        let charge = |scope: u8, name: &str, id: Vec<u8>| {
            let b = action.bucket(settings, name);
            Charge {
                kind: action.kind(scope),
                id,
                burst: b.burst,
                per_minute: b.per_minute,
            }
        };
        let pair = ip.map(|ip| {
            let mut name = b"ip\0".to_vec();
            name.extend_from_slice(&ip_prefix(ip));
            let mut id = email_index.to_vec();
            id.extend_from_slice(&keys.blind_index(&name));
            charge(2, "pair", id)
        });
        Buckets {
            group,
            tenant: keys.id().to_owned(),
            email: charge(0, "email", email_index.to_vec()),
            pair,
        }
    }

    /// Where a request's buckets stand at `now_ms`, read from this node's
    /// replica of their group (no Raft round; the log decides again on the
    /// write), or from the group's members if this node holds none.
    ///
    /// # Errors
    /// `rate_limited` if the pair's bucket is empty; the group unavailable.
    pub async fn standing(&self, b: &Buckets, now_ms: u64) -> Result<Standing, ServiceError> {
        let mut rows = vec![(b.email.kind, b.email.id.clone())];
        if let Some(p) = &b.pair {
            rows.push((p.kind, p.id.clone()));
            rows.push((TRUSTED_PAIR, p.id.clone()));
        }
        let q = GetRates {
            tenant: b.tenant.clone(),
            rows,
        };
        let times = if self.inner.raft.holds_replica(b.group) {
            let state = self.inner.engine.state(b.group.0);
            let answer = cairn_storage::sm::read(&state, &q.clone().into()).map_err(|e| {
                tracing::error!(error = %e, "reading rate limits");
                ServiceError::Internal
            })?;
            GetRates::answer(answer).ok_or(ServiceError::Internal)?
        } else {
            self.inner.raft.read(b.group, q).await?
        };
        let time = |i: usize| times.get(i).copied().flatten();
        let email = Gcra::new(b.email.burst, b.email.per_minute);
        let email_limited = email.check(time(0), now_ms).err();
        let mut trusted_pair = false;
        if let Some(p) = &b.pair {
            Gcra::new(p.burst, p.per_minute)
                .check(time(1), now_ms)
                .map_err(limited)?;
            trusted_pair = time(2).is_some_and(|until| until > now_ms);
        }
        Ok(Standing {
            trusted_pair,
            email_limited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_prefix(a), ip_prefix(b));
        assert_ne!(ip_prefix(a), ip_prefix(c));
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_prefix(v4), ip_prefix(mapped));
    }

    #[test]
    fn node_local_buckets_stay_bounded() {
        let buckets = IpBuckets::default();
        let g = Gcra::new(1, 1);
        for i in 0..(IP_BUCKETS_CAPACITY + 10) as u32 {
            let key = (
                "t".to_owned(),
                LimitAction::SignIn,
                i.to_be_bytes().to_vec(),
            );
            assert!(buckets.take(key, g, 1_000).is_ok());
        }
        let len = buckets.tats.lock().expect("lock").len();
        assert!(len <= IP_BUCKETS_CAPACITY, "{len} buckets");
        let key = ("t".to_owned(), LimitAction::SignIn, vec![1]);
        assert!(buckets.take(key.clone(), g, 1_000).is_ok());
        assert_eq!(buckets.take(key, g, 1_000), Err(60_000));
    }
}
