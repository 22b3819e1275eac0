//! Applying user commands.

use super::{
    CreateUser, CreateUserOutcome, DeleteUser, DeleteUserOutcome, UpdateUser, UpdateUserOutcome,
    UserRecord,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{session_key, user_key, user_sessions_prefix};
use crate::sm::events::{Action, Applied, Event};
use crate::Result;

/// Applies a [`CreateUser`].
///
/// # Errors
/// Reading current state failed.
pub fn create(batch: &mut ApplyBatch<'_>, cmd: &CreateUser) -> Result<Applied<CreateUserOutcome>> {
    let key = user_key(batch.group(), &cmd.tenant, &cmd.user.id);
    if batch.contains(&key)? {
        return Ok(Applied::quiet(CreateUserOutcome::IdCollision));
    }
    batch.put_record("user", key, &cmd.user)?;
    let event = Event::new(Action::UserCreated, &cmd.tenant)
        .at(cmd.user.created_at)
        .user(&cmd.user.id);
    Ok(Applied::with(CreateUserOutcome::UserCreated, event))
}

/// Applies an [`UpdateUser`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn update(batch: &mut ApplyBatch<'_>, cmd: &UpdateUser) -> Result<Applied<UpdateUserOutcome>> {
    let key = user_key(batch.group(), &cmd.tenant, &cmd.user_id);
    let Some(mut user): Option<UserRecord> = batch.decode("user", &key)? else {
        return Ok(Applied::quiet(UpdateUserOutcome::UserNotFound));
    };
    if user.version != cmd.expected_version {
        return Ok(Applied::quiet(UpdateUserOutcome::UserVersionConflict {
            current: user.version,
        }));
    }
    user.version = user.version.saturating_add(1);
    user.updated_at = cmd.at;
    user.sealed.clone_from(&cmd.sealed);
    batch.put_record("user", key, &user)?;
    // The sealed fields are opaque here: whether the password changed is the
    // proposing service's to say (issue 19 adds `password.changed` from there).
    let event = Event::new(Action::UserUpdated, &cmd.tenant)
        .at(cmd.at)
        .user(&cmd.user_id);
    Ok(Applied::with(UpdateUserOutcome::UserUpdated(user), event))
}

/// Applies a [`DeleteUser`]: the user's sessions go with it.
///
/// # Errors
/// Reading current state failed.
pub fn delete(batch: &mut ApplyBatch<'_>, cmd: &DeleteUser) -> Result<Applied<DeleteUserOutcome>> {
    let group = batch.group();
    let key = user_key(group, &cmd.tenant, &cmd.user_id);
    if !batch.contains(&key)? {
        return Ok(Applied::quiet(DeleteUserOutcome::UserNotFound));
    }
    batch.delete(key)?;
    let prefix = user_sessions_prefix(group, &cmd.tenant, &cmd.user_id);
    let sessions: Vec<Vec<u8>> = batch
        .scan(&prefix)?
        .into_iter()
        .map(|(k, _)| k[prefix.len()..].to_vec())
        .collect();
    for sid in &sessions {
        batch.delete(session_key(group, &cmd.tenant, sid))?;
    }
    batch.delete_prefix(&prefix)?;
    let event = Event::new(Action::UserDeleted, &cmd.tenant)
        .at(cmd.at)
        .user(&cmd.user_id);
    Ok(Applied::with(
        DeleteUserOutcome::UserDeleted {
            sessions: sessions.len(),
        },
        event,
    ))
}
