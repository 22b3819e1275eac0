//! Writing audit rows (called by the events sink only).

use super::AuditEvent;
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::audit_key;
use crate::Result;

/// Appends `event` for the command with sequence number `seq` (its entry's index
/// × 256 plus its position), so events sort in log order; `n` orders several
/// events of one command.
///
/// # Errors
/// Reading or encoding a row failed.
pub fn append(
    batch: &mut ApplyBatch<'_>,
    seq: u64,
    tenant: &str,
    event: &AuditEvent,
) -> Result<()> {
    let group = batch.group();
    let mut n: u32 = 0;
    loop {
        let key = audit_key(group, tenant, seq, n);
        if !batch.contains(&key)? {
            return batch.put_record("audit event", key, event);
        }
        n = n.saturating_add(1);
    }
}
