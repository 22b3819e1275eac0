//! The `meta` group's email routing index: (tenant, blind index of an email) ->
//! the user holding it and its region. An email belongs to at most one user of a
//! tenant: reserving it is decided by the log, so two nodes creating the same user
//! cannot both win. Emails are stored only as a blind index (an HMAC under the
//! tenant's blind-index subkey), never in the clear.
//!
//! The index is keyed by the email's identity (node `service::core::email`).
//! Binaries before wire version 4 keyed it by another rule (only the domain
//! lowercased), so a background job re-indexes existing users ([`ReindexEmail`]),
//! one data group of a tenant at a time ([`MarkEmailsReindexed`]). Two users that
//! the earlier rule kept apart may now share a key: the first keeps the entry and
//! the others are recorded beside it, so the email is ambiguous (a lookup names
//! them all) until all but one have changed it.

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

/// Releases `email_index` if `user_id` holds it (or is one of its further
/// holders); the first further holder, if any, then holds it.
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

/// Moves `entry.user_id` from the index `from` (the earlier rule's key of its
/// email) to `to` (the current one), if it still holds `from` (wire version 4).
/// If another user holds `to`, the user is recorded as a further holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReindexEmail {
    pub tenant_id: String,
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    pub entry: EmailEntry,
}

/// What [`ReindexEmail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailReindexed {
    /// The user held `from` and now holds (or shares) `to`.
    pub moved: bool,
    /// Another user holds `to`: the email is ambiguous.
    pub ambiguous: bool,
}

/// Records that every user of `tenant_id` in data group `group` is indexed
/// under the current email rule (wire version 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkEmailsReindexed {
    pub tenant_id: String,
    pub group: u64,
}

/// What [`MarkEmailsReindexed`] did (`false`: no such tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailsReindexed {
    pub marked: bool,
}

/// Reads every holder of an email: of `index`, and of `fallback` (its key
/// under the earlier rule) if given, once each (wire version 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindEmail {
    pub tenant_id: String,
    pub index: Vec<u8>,
    pub fallback: Option<Vec<u8>>,
}

/// Reads which data groups' users of a tenant are re-indexed (wire version 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetEmailsReindexed {
    pub tenant_id: String,
}
