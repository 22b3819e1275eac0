//! Applying email reservations. The index is routing, not an identity change of
//! its own: the user's creation or deletion is the event.

use super::read::others;
use super::rules::{reindex, release, reserve, Reindex, Release, Reservation};
use super::{
    EmailEntry, EmailReindexed, EmailReleased, EmailsReindexed, MarkEmailsReindexed, ReindexEmail,
    ReleaseEmail, ReserveEmail, ReserveEmailOutcome,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{email_key, email_other_key, emails_reindexed_key, tenant_key};
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
    let group = batch.group();
    let row = email_key(group, &cmd.tenant_id, &cmd.email_index);
    let current: Option<EmailEntry> = batch.decode("email entry", &row)?;
    let others = others(batch, &cmd.tenant_id, &cmd.email_index)?;
    let existed = match release(current.as_ref(), &others, &cmd.user_id) {
        Release::Nothing => false,
        Release::Entry { successor: None } => {
            batch.delete(row)?;
            true
        }
        Release::Entry {
            successor: Some(next),
        } => {
            batch.delete(email_other_key(
                group,
                &cmd.tenant_id,
                &cmd.email_index,
                &next.user_id,
            ))?;
            batch.put_record("email entry", row, &next)?;
            true
        }
        Release::Other => {
            batch.delete(email_other_key(
                group,
                &cmd.tenant_id,
                &cmd.email_index,
                &cmd.user_id,
            ))?;
            true
        }
    };
    Ok(Applied::quiet(EmailReleased { existed }))
}

/// Applies a [`ReindexEmail`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn reindex_email(
    batch: &mut ApplyBatch<'_>,
    cmd: &ReindexEmail,
) -> Result<Applied<EmailReindexed>> {
    let group = batch.group();
    let from_row = email_key(group, &cmd.tenant_id, &cmd.from);
    let to_row = email_key(group, &cmd.tenant_id, &cmd.to);
    let from: Option<EmailEntry> = batch.decode("email entry", &from_row)?;
    let to: Option<EmailEntry> = batch.decode("email entry", &to_row)?;
    let user_id = &cmd.entry.user_id;
    let plan = reindex(from.as_ref(), to.as_ref(), cmd.from == cmd.to, user_id);
    if plan != Reindex::Nothing {
        batch.delete(from_row)?;
    }
    match plan {
        Reindex::Nothing | Reindex::Held => {}
        Reindex::Take => batch.put_record("email entry", to_row, &cmd.entry)?,
        Reindex::Share => batch.put_record(
            "email entry",
            email_other_key(group, &cmd.tenant_id, &cmd.to, user_id),
            &cmd.entry,
        )?,
    }
    Ok(Applied::quiet(EmailReindexed {
        moved: plan != Reindex::Nothing,
        ambiguous: plan == Reindex::Share,
    }))
}

/// Applies a [`MarkEmailsReindexed`].
///
/// # Errors
/// Reading current state failed.
pub fn mark_reindexed(
    batch: &mut ApplyBatch<'_>,
    cmd: &MarkEmailsReindexed,
) -> Result<Applied<EmailsReindexed>> {
    let group = batch.group();
    if !batch.contains(&tenant_key(group, &cmd.tenant_id))? {
        return Ok(Applied::quiet(EmailsReindexed { marked: false }));
    }
    batch.put_record(
        "emails reindexed",
        emails_reindexed_key(group, &cmd.tenant_id, cmd.group),
        &(),
    )?;
    Ok(Applied::quiet(EmailsReindexed { marked: true }))
}
