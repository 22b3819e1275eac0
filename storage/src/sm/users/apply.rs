//! Applying user commands.

use super::{
    ChangeUser, CreateUser, CreateUserOutcome, DeleteUser, DeleteUserOutcome, FailedSignIns,
    UpdateUser, UpdateUserOutcome, UserField, UserRecord,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{failed_sign_in_key, session_key, user_key, user_sessions_prefix};
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
    // proposer's to say, in a `ChangeUser`.
    let event = Event::new(Action::UserUpdated, &cmd.tenant)
        .at(cmd.at)
        .user(&cmd.user_id);
    Ok(Applied::with(UpdateUserOutcome::UserUpdated(user), event))
}

/// Applies a [`ChangeUser`]: the update, then one event per changed field
/// (`user.updated` for the email, `password.changed` for the password; naming
/// none is an update of unnamed fields, `user.updated`).
///
/// # Errors
/// As [`update`].
pub fn change(batch: &mut ApplyBatch<'_>, cmd: &ChangeUser) -> Result<Applied<UpdateUserOutcome>> {
    let mut applied = update(batch, &cmd.update)?;
    if applied.events.is_empty() || cmd.changed.is_empty() {
        return Ok(applied);
    }
    let u = &cmd.update;
    applied.events = cmd
        .changed
        .iter()
        .map(|field| {
            let action = match field {
                UserField::Email => Action::UserUpdated,
                UserField::Password => Action::PasswordChanged,
            };
            Event::new(action, &u.tenant).at(u.at).user(&u.user_id)
        })
        .collect();
    Ok(applied)
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
    batch.delete(failed_sign_in_key(group, &cmd.tenant, &cmd.user_id))?;
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

/// Counts a failed sign-in of user `user_id` at `at` from the sealed IP
/// `sealed_ip`: the event `user.sign_in_failed`, or nothing if the user is
/// gone.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn record_failure(
    batch: &mut ApplyBatch<'_>,
    tenant: &str,
    user_id: &str,
    at: u64,
    sealed_ip: Option<&[u8]>,
) -> Result<Option<Event>> {
    let group = batch.group();
    if !batch.contains(&user_key(group, tenant, user_id))? {
        return Ok(None);
    }
    let key = failed_sign_in_key(group, tenant, user_id);
    let mut failed: FailedSignIns = batch.decode("failed sign-ins", &key)?.unwrap_or_default();
    failed.count = failed.count.saturating_add(1);
    failed.last_at = failed.last_at.max(at);
    failed.sealed_last_ip = sealed_ip.map(<[u8]>::to_vec);
    batch.put_record("failed sign-ins", key, &failed)?;
    Ok(Some(
        Event::new(Action::UserSignInFailed, tenant)
            .at(at)
            .user(user_id),
    ))
}

/// Clears a user's failed sign-ins (it signed in).
///
/// # Errors
/// RocksDB failure.
pub fn clear_failures(batch: &mut ApplyBatch<'_>, tenant: &str, user_id: &str) -> Result<()> {
    batch.delete(failed_sign_in_key(batch.group(), tenant, user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn a_change_names_its_events_by_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        let user = UserRecord {
            id: "u".to_owned(),
            version: 1,
            created_at: 1,
            updated_at: 1,
            sealed: vec![1],
        };
        let created = create(
            &mut b,
            &CreateUser {
                tenant: "t".to_owned(),
                user,
            },
        )
        .expect("create");
        assert_eq!(created.events[0].action, Action::UserCreated);
        let change_to = |b: &mut ApplyBatch<'_>, version, changed: &[UserField]| {
            let cmd = ChangeUser {
                update: UpdateUser {
                    tenant: "t".to_owned(),
                    user_id: "u".to_owned(),
                    expected_version: version,
                    sealed: vec![2],
                    at: 5,
                },
                changed: changed.to_vec(),
            };
            let applied = change(b, &cmd).expect("change");
            applied.events.iter().map(|e| e.action).collect::<Vec<_>>()
        };
        assert_eq!(
            change_to(&mut b, 1, &[UserField::Password]),
            [Action::PasswordChanged]
        );
        assert_eq!(
            change_to(&mut b, 2, &[UserField::Email, UserField::Password]),
            [Action::UserUpdated, Action::PasswordChanged]
        );
        assert_eq!(change_to(&mut b, 3, &[]), [Action::UserUpdated]);
        assert!(
            change_to(&mut b, 1, &[UserField::Password]).is_empty(),
            "a refused change (stale version) emits nothing"
        );
    }
}
