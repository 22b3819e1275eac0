//! Applying signing key rotations.

use super::rules::rotate;
use super::{
    read, GetSigningKeys, RotateSigningKey, RotateSigningKeyOutcome, SigningKeyRecord, SigningKeys,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{signing_key, tenant_key};
use crate::sm::events::{Action, Applied, Event};
use crate::Result;

/// Stores a new tenant's first signing key (the caller created the tenant).
///
/// # Errors
/// The record cannot be encoded (a missing column family).
pub fn put_first(
    batch: &mut ApplyBatch<'_>,
    tenant_id: &str,
    key: &SigningKeyRecord,
) -> Result<()> {
    let keys = SigningKeys {
        keys: vec![key.clone()],
    };
    let row = signing_key(batch.group(), tenant_id);
    batch.put_record("signing keys", row, &keys)
}

/// Applies a [`RotateSigningKey`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn rotate_key(
    batch: &mut ApplyBatch<'_>,
    cmd: &RotateSigningKey,
) -> Result<Applied<RotateSigningKeyOutcome>> {
    let group = batch.group();
    if !batch.contains(&tenant_key(group, &cmd.tenant_id))? {
        return Ok(Applied::quiet(RotateSigningKeyOutcome::TenantNotFound));
    }
    let current = read::get(
        batch,
        &GetSigningKeys {
            tenant_id: cmd.tenant_id.clone(),
        },
    )?;
    let Some(keys) = rotate(current, &cmd.key, cmd.at, cmd.keep_retired_secs) else {
        return Ok(Applied::quiet(RotateSigningKeyOutcome::IdCollision));
    };
    batch.put_record("signing keys", signing_key(group, &cmd.tenant_id), &keys)?;
    let event = Event::new(Action::SigningKeyRotated, &cmd.tenant_id)
        .at(cmd.at)
        .key(&cmd.key.kid);
    Ok(Applied::with(
        RotateSigningKeyOutcome::SigningKeyRotated(keys),
        event,
    ))
}
