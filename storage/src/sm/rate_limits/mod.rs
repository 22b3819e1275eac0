//! Rate limits in a region's data group: token buckets for the email and
//! (IP, email) pair scopes, and the pairs that signed in recently.
//!
//! A bucket is one row of 8 bytes, the GCRA "theoretical arrival time" in
//! milliseconds ([`rules::Gcra`]): a bucket whose time has passed is the same
//! as no row, so every row has an expiry and an entry in the expiry index
//! (`keyspace::SM_RATE_EXPIRY`). Each command that charges buckets also sweeps
//! a few expired rows ([`apply::SWEEP`]), more than it can create, so the table
//! never grows past the buckets that are still counting, however many distinct
//! emails a spray names.
//!
//! Ids are keyed hashes chosen by the node (an email's blind index; the pair's
//! blind index and an HMAC of the IP): no email or IP is stored here. Limits and
//! times are the proposer's, so every replica decides alike.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// A row kind for a pair that signed in: its row holds when the trust ends.
pub const TRUSTED_PAIR: u8 = 0xF0;

/// One bucket to charge (or, for a check, to find not empty).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Which action and scope: the node's numbering, stored as the row kind.
    pub kind: u8,
    /// The bucket's id (keyed hashes only).
    pub id: Vec<u8>,
    pub burst: u32,
    pub per_minute: u32,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("kind", &self.kind)
            .field("burst", &self.burst)
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

/// Buckets to read (a query): the state of each row named, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRates {
    pub tenant: String,
    /// (kind, id) of each row.
    pub rows: Vec<(u8, Vec<u8>)>,
}

/// Why a charge or check was refused: the bucket is empty for this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limited {
    pub retry_after_ms: u64,
}
