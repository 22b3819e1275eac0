//! Writing audit rows (called by the events sink only).

use super::{AuditEvent, EventRecord};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{audit_key, event_key};
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

/// Writes `record`, event `n` of the traced command with sequence number `seq`.
/// Sequence numbers are unique per command and a command's events are numbered
/// by the sink, so no row is read to find a free key (an apply and its applied
/// index commit in one batch: a command is never applied twice).
///
/// # Errors
/// Encoding the record failed.
pub fn record(
    batch: &mut ApplyBatch<'_>,
    seq: u64,
    n: u32,
    tenant: &str,
    record: &EventRecord,
) -> Result<()> {
    let key = event_key(batch.group(), tenant, seq, n);
    batch.put_record("event record", key, record)
}
