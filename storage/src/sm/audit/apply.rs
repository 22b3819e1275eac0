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
    let key = free_key(batch, |group, n| audit_key(group, tenant, seq, n))?;
    batch.put_record("audit event", key, event)
}

/// Appends the event record `record` of a traced command (as [`append`]).
///
/// # Errors
/// Reading or encoding a row failed.
pub fn record(
    batch: &mut ApplyBatch<'_>,
    seq: u64,
    tenant: &str,
    record: &EventRecord,
) -> Result<()> {
    let key = free_key(batch, |group, n| event_key(group, tenant, seq, n))?;
    batch.put_record("event record", key, record)
}

/// The first key `key(group, n)`, n = 0, 1, …, that holds no row yet.
fn free_key(batch: &ApplyBatch<'_>, key: impl Fn(u64, u32) -> Vec<u8>) -> Result<Vec<u8>> {
    let group = batch.group();
    let mut n: u32 = 0;
    loop {
        let k = key(group, n);
        if !batch.contains(&k)? {
            return Ok(k);
        }
        n = n.saturating_add(1);
    }
}
