//! Reading the email index.

use super::{EmailEntry, FindEmail, GetEmail, GetEmailsReindexed};
use crate::engine::Rows;
use crate::keyspace::{email_key, email_others_prefix, emails_reindexed_prefix};
use crate::{codec, Result};

/// Where the user holding an email lives.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetEmail) -> Result<Option<EmailEntry>> {
    rows.decode(
        "email entry",
        &email_key(rows.group(), &q.tenant_id, &q.index),
    )
}

/// The further holders of an email's blind index, in user id order.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn others(rows: &impl Rows, tenant_id: &str, index: &[u8]) -> Result<Vec<EmailEntry>> {
    rows.scan(&email_others_prefix(rows.group(), tenant_id, index))?
        .iter()
        .map(|(_, v)| codec::decode("email entry", v))
        .collect()
}

/// Every holder of an email, under its key and its earlier key, once each: the
/// holder of each first, then the further holders.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn find(rows: &impl Rows, q: &FindEmail) -> Result<Vec<EmailEntry>> {
    let mut holders: Vec<EmailEntry> = Vec::new();
    for index in std::iter::once(&q.index).chain(q.fallback.as_ref()) {
        let first: Option<EmailEntry> =
            rows.decode("email entry", &email_key(rows.group(), &q.tenant_id, index))?;
        for holder in first.into_iter().chain(others(rows, &q.tenant_id, index)?) {
            if !holders.iter().any(|h| h.user_id == holder.user_id) {
                holders.push(holder);
            }
        }
    }
    Ok(holders)
}

/// The data groups whose users of a tenant are re-indexed, in order.
///
/// # Errors
/// RocksDB read failure.
pub fn reindexed(rows: &impl Rows, q: &GetEmailsReindexed) -> Result<Vec<u64>> {
    let prefix = emails_reindexed_prefix(rows.group(), &q.tenant_id);
    Ok(rows
        .scan(&prefix)?
        .iter()
        .filter_map(|(k, _)| {
            let tail: [u8; 8] = k.get(prefix.len()..)?.try_into().ok()?;
            Some(u64::from_be_bytes(tail))
        })
        .collect())
}
