//! Listing a tenant's audit events.

use serde::de::DeserializeOwned;

use super::{AuditEvent, EventRecord};
use crate::engine::Rows;
use crate::keyspace::{audit_prefix, event_prefix};
use crate::{codec, Result};

/// A tenant's audit events in this group with the sequence number that wrote each,
/// oldest first, at most `limit`.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn events(rows: &impl Rows, tenant: &str, limit: usize) -> Result<Vec<(u64, AuditEvent)>> {
    by_sequence(
        rows,
        &audit_prefix(rows.group(), tenant),
        "audit event",
        limit,
    )
}

/// A tenant's event records in this group (traced commands) with the sequence
/// number that wrote each, oldest first, at most `limit`.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn records(rows: &impl Rows, tenant: &str, limit: usize) -> Result<Vec<(u64, EventRecord)>> {
    by_sequence(
        rows,
        &event_prefix(rows.group(), tenant),
        "event record",
        limit,
    )
}

fn by_sequence<T: DeserializeOwned>(
    rows: &impl Rows,
    prefix: &[u8],
    what: &'static str,
    limit: usize,
) -> Result<Vec<(u64, T)>> {
    let mut out = Vec::new();
    for (k, v) in rows.scan(prefix)?.into_iter().take(limit) {
        let seq = k
            .get(prefix.len()..prefix.len() + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        out.push((seq, codec::decode(what, &v)?));
    }
    Ok(out)
}
