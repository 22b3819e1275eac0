//! `[rate_limits.<action>.<scope>]`: the cluster's default token buckets, which
//! a tenant's `rate_limits` setting overrides bucket by bucket.
//!
//! ```toml
//! [rate_limits.sign_in.email]
//! burst = 10
//! per_minute = 2
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The actions that take rate limits, in their order in [`RateLimits`].
pub const ACTIONS: [&str; 5] = [
    "sign_in",
    "code_send",
    "code_verify",
    "factor_verify",
    "password_reset",
];
/// The scopes of each action: the normalised email, the client IP (IPv6 by
/// /64), the (IP, email) pair.
pub const SCOPES: [&str; 3] = ["email", "ip", "pair"];

/// The largest burst and refill a bucket may have.
pub const MAX_BUCKET: u32 = 1_000_000;

/// One token bucket: `burst` tokens, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub burst: u32,
    pub per_minute: u32,
}

const fn b(burst: u32, per_minute: u32) -> Bucket {
    Bucket { burst, per_minute }
}

/// Every action's buckets, `[action][scope]` in the order of [`ACTIONS`] and
/// [`SCOPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    table: [[Bucket; 3]; 5],
}

impl Default for RateLimits {
    /// `email` and `pair` count failures, `ip` every request.
    fn default() -> Self {
        Self {
            table: [
                // sign_in
                [b(10, 2), b(30, 30), b(5, 1)],
                // code_send
                [b(5, 1), b(20, 10), b(5, 1)],
                // code_verify
                [b(10, 5), b(30, 30), b(5, 2)],
                // factor_verify
                [b(10, 5), b(30, 30), b(5, 2)],
                // password_reset
                [b(5, 1), b(20, 10), b(5, 1)],
            ],
        }
    }
}

impl RateLimits {
    /// The bucket of `action` and `scope` (`None`: names no bucket).
    #[must_use]
    pub fn get(&self, action: &str, scope: &str) -> Option<Bucket> {
        let a = ACTIONS.iter().position(|x| *x == action)?;
        let s = SCOPES.iter().position(|x| *x == scope)?;
        Some(self.table[a][s])
    }

    /// Replaces the bucket of `action` and `scope`; `false` if they name none.
    pub fn set(&mut self, action: &str, scope: &str, bucket: Bucket) -> bool {
        let a = ACTIONS.iter().position(|x| *x == action);
        let s = SCOPES.iter().position(|x| *x == scope);
        match (a, s) {
            (Some(a), Some(s)) => {
                self.table[a][s] = bucket;
                true
            }
            _ => false,
        }
    }

    /// Every (action, scope, bucket), in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str, Bucket)> + '_ {
        ACTIONS.iter().enumerate().flat_map(move |(a, action)| {
            SCOPES
                .iter()
                .enumerate()
                .map(move |(s, scope)| (*action, *scope, self.table[a][s]))
        })
    }
}

/// `[rate_limits]` as written: overrides of the defaults.
pub type RawRateLimits = BTreeMap<String, BTreeMap<String, Bucket>>;

/// The defaults with `raw`'s buckets in place of theirs; every unknown name or
/// bucket out of bounds is an error naming its field.
pub(crate) fn validate(raw: &RawRateLimits, errs: &mut Vec<ConfigError>) -> RateLimits {
    let mut out = RateLimits::default();
    for (action, scopes) in raw {
        let Some(a) = ACTIONS.iter().position(|x| x == action) else {
            errs.push(ConfigError::new(
                format!("rate_limits.{action}"),
                format!("unknown action; one of {}", ACTIONS.join(", ")),
            ));
            continue;
        };
        for (scope, bucket) in scopes {
            let field = format!("rate_limits.{action}.{scope}");
            let Some(s) = SCOPES.iter().position(|x| x == scope) else {
                errs.push(ConfigError::new(
                    field,
                    format!("unknown scope; one of {}", SCOPES.join(", ")),
                ));
                continue;
            };
            let bounds = 1..=MAX_BUCKET;
            if !bounds.contains(&bucket.burst) || !bounds.contains(&bucket.per_minute) {
                errs.push(ConfigError::new(
                    field,
                    format!("burst and per_minute must be 1-{MAX_BUCKET}"),
                ));
                continue;
            }
            out.table[a][s] = *bucket;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_single_buckets_and_bad_names_are_named() {
        let raw: RawRateLimits = toml::from_str(
            "[sign_in.email]\nburst = 3\nper_minute = 1\n\
             [sign_up.ip]\nburst = 1\nper_minute = 1\n\
             [sign_in.user]\nburst = 1\nper_minute = 1\n\
             [code_send.ip]\nburst = 0\nper_minute = 1\n",
        )
        .expect("toml");
        let mut errs = Vec::new();
        let limits = validate(&raw, &mut errs);
        assert_eq!(limits.get("sign_in", "email"), Some(b(3, 1)));
        assert_eq!(
            limits.get("sign_in", "ip"),
            RateLimits::default().get("sign_in", "ip"),
            "the rest keep their defaults"
        );
        let fields: Vec<String> = errs.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            [
                "rate_limits.code_send.ip",
                "rate_limits.sign_in.user",
                "rate_limits.sign_up"
            ]
        );
        assert_eq!(RateLimits::default().iter().count(), 15);
        assert_eq!(limits.get("sign_in", "nope"), None);
    }
}
