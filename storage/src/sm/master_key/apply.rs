//! Recording the master key state.

use super::rules::{check, first};
use super::{read, MasterKeyConflict, MasterKeyState};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::master_key;
use crate::Result;

/// Stores the master key state.
///
/// # Errors
/// The state cannot be encoded (a missing column family).
pub fn put(batch: &mut ApplyBatch<'_>, state: &MasterKeyState) -> Result<()> {
    let key = master_key(batch.group());
    batch.put_record("master key state", key, state)
}

/// Admits a new tenant's first key, wrapped under master key `kek_version`
/// (`fingerprint`): refused unless that is the current master key; before any is
/// recorded, version 1 establishes it, current since `since`.
///
/// # Errors
/// Reading or writing the state failed.
pub fn admit(
    batch: &mut ApplyBatch<'_>,
    kek_version: u32,
    fingerprint: &str,
    since: u64,
) -> Result<Option<MasterKeyConflict>> {
    let master = read::state(batch)?;
    if let Some(conflict) = check(master.as_ref(), kek_version, fingerprint) {
        return Ok(Some(conflict));
    }
    if master.is_none() {
        put(batch, &first(fingerprint, kek_version, since))?;
    }
    Ok(None)
}

/// Checks a further key of an existing tenant: refused unless wrapped under the
/// current master key (a recorded one: no key establishes it here).
///
/// # Errors
/// Reading the state failed.
pub fn check_current(
    rows: &impl Rows,
    kek_version: u32,
    fingerprint: &str,
) -> Result<Option<MasterKeyConflict>> {
    Ok(match read::state(rows)? {
        None => Some(MasterKeyConflict { current: None }),
        Some(m) => check(Some(&m), kek_version, fingerprint),
    })
}
