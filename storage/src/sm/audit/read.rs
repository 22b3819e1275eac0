//! Listing a tenant's audit events.

use super::AuditEvent;
use crate::engine::Rows;
use crate::keyspace::audit_prefix;
use crate::{codec, Result};

/// A tenant's audit events in this group with the sequence number that wrote each,
/// oldest first, at most `limit`.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn events(rows: &impl Rows, tenant: &str, limit: usize) -> Result<Vec<(u64, AuditEvent)>> {
    let prefix = audit_prefix(rows.group(), tenant);
    let mut out = Vec::new();
    for (k, v) in rows.scan(&prefix)?.into_iter().take(limit) {
        let seq = k
            .get(prefix.len()..prefix.len() + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        out.push((seq, codec::decode("audit event", &v)?));
    }
    Ok(out)
}
