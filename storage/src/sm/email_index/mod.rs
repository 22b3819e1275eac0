//! The `meta` group's email routing index: (tenant, blind index of an email) ->
//! the user holding it and its region. An email belongs to at most one user of a
//! tenant: reserving it is decided by the log, so two nodes creating the same user
//! cannot both win. Emails are stored only as a blind index (an HMAC under the
//! tenant's blind-index subkey), never in the clear.

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;
pub mod rules;

/// Where a user with a given email lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailEntry {
    pub user_id: String,
    pub region: String,
    /// Unix seconds when the email was reserved for `user_id`.
    pub reserved_at: u64,
}

/// Reserves `email_index` for `entry.user_id` unless another user holds it. With
/// `replace`, takes it over only from that user (a reservation whose user was
/// never created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveEmail {
    pub tenant_id: String,
    pub email_index: Vec<u8>,
    pub entry: EmailEntry,
    pub replace: Option<String>,
}

/// Releases `email_index` if `user_id` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseEmail {
    pub tenant_id: String,
    pub email_index: Vec<u8>,
    pub user_id: String,
}

/// Reads where the user holding an email (blind index) lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetEmail {
    pub tenant_id: String,
    pub index: Vec<u8>,
}

/// What [`ReserveEmail`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveEmailOutcome {
    EmailReserved,
    /// Another user holds the email; nothing changed.
    EmailTaken(EmailEntry),
    TenantNotFound,
}

/// What [`ReleaseEmail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailReleased {
    pub existed: bool,
}
