//! Applying email reservations. The index is routing, not an identity change of
//! its own: the user's creation or deletion is the event.

use super::rules::{reserve, Reservation};
use super::{EmailEntry, EmailReleased, ReleaseEmail, ReserveEmail, ReserveEmailOutcome};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{email_key, tenant_key};
use crate::sm::events::Applied;
use crate::Result;

/// Applies a [`ReserveEmail`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn reserve_email(
    batch: &mut ApplyBatch<'_>,
    cmd: &ReserveEmail,
) -> Result<Applied<ReserveEmailOutcome>> {
    let group = batch.group();
    if !batch.contains(&tenant_key(group, &cmd.tenant_id))? {
        return Ok(Applied::quiet(ReserveEmailOutcome::TenantNotFound));
    }
    let row = email_key(group, &cmd.tenant_id, &cmd.email_index);
    let current: Option<EmailEntry> = batch.decode("email entry", &row)?;
    match reserve(current.as_ref(), &cmd.entry.user_id, cmd.replace.as_deref()) {
        Reservation::Held => {}
        Reservation::Taken(holder) => {
            return Ok(Applied::quiet(ReserveEmailOutcome::EmailTaken(holder)))
        }
        Reservation::Take => batch.put_record("email entry", row, &cmd.entry)?,
    }
    Ok(Applied::quiet(ReserveEmailOutcome::EmailReserved))
}

/// Applies a [`ReleaseEmail`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn release_email(
    batch: &mut ApplyBatch<'_>,
    cmd: &ReleaseEmail,
) -> Result<Applied<EmailReleased>> {
    let row = email_key(batch.group(), &cmd.tenant_id, &cmd.email_index);
    let current: Option<EmailEntry> = batch.decode("email entry", &row)?;
    let existed = match current {
        Some(c) if c.user_id == cmd.user_id => {
            batch.delete(row)?;
            true
        }
        _ => false,
    };
    Ok(Applied::quiet(EmailReleased { existed }))
}
