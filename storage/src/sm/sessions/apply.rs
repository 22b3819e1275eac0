//! Applying session commands.

use super::rules::refresh_decision;
use super::{
    CreateSession, CreateSessionOutcome, Refresh, RefreshOutcome, RefreshWithin, Revocation,
    RevokeSession, RevokeSessionOutcome, RevokeUserSessions, SessionRecord, UserSessionsRevoked,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{session_key, user_key, user_session_key, user_sessions_prefix};
use crate::sm::events::{Action, Applied, Event};
use crate::Result;

fn put_session(batch: &mut ApplyBatch<'_>, tenant: &str, s: &SessionRecord) -> Result<()> {
    let key = session_key(batch.group(), tenant, s.id.as_bytes());
    batch.put_record("session", key, s)
}

fn session(
    batch: &ApplyBatch<'_>,
    tenant: &str,
    session_id: &str,
) -> Result<Option<SessionRecord>> {
    batch.decode(
        "session",
        &session_key(batch.group(), tenant, session_id.as_bytes()),
    )
}

/// Applies a [`CreateSession`]: its user must exist (its row, found through the
/// keyspace).
///
/// # Errors
/// Reading current state failed.
pub fn create(
    batch: &mut ApplyBatch<'_>,
    cmd: &CreateSession,
) -> Result<Applied<CreateSessionOutcome>> {
    let group = batch.group();
    let s = &cmd.session;
    if !batch.contains(&user_key(group, &cmd.tenant, &s.user_id))? {
        return Ok(Applied::quiet(CreateSessionOutcome::UserNotFound));
    }
    if batch.contains(&session_key(group, &cmd.tenant, s.id.as_bytes()))? {
        return Ok(Applied::quiet(CreateSessionOutcome::IdCollision));
    }
    put_session(batch, &cmd.tenant, s)?;
    batch.put(
        user_session_key(group, &cmd.tenant, &s.user_id, &s.id),
        Vec::new(),
    )?;
    let event = Event::new(Action::SessionCreated, &cmd.tenant)
        .at(s.created_at)
        .user(&s.user_id)
        .session(&s.id);
    Ok(Applied::with(CreateSessionOutcome::SessionCreated, event))
}

/// Applies a [`Refresh`] (see the module doc).
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn refresh(batch: &mut ApplyBatch<'_>, cmd: &Refresh) -> Result<Applied<RefreshOutcome>> {
    refresh_bounded(batch, cmd, None)
}

/// Applies a [`RefreshWithin`].
///
/// # Errors
/// As [`refresh`].
pub fn refresh_within(
    batch: &mut ApplyBatch<'_>,
    cmd: &RefreshWithin,
) -> Result<Applied<RefreshOutcome>> {
    refresh_bounded(batch, &cmd.refresh, Some(cmd.retry_grace_secs))
}

fn refresh_bounded(
    batch: &mut ApplyBatch<'_>,
    cmd: &Refresh,
    retry_grace: Option<u64>,
) -> Result<Applied<RefreshOutcome>> {
    let Some(mut s) = session(batch, &cmd.tenant, &cmd.session_id)? else {
        return Ok(Applied::quiet(RefreshOutcome::Invalid));
    };
    let outcome = refresh_decision(
        &s,
        cmd.generation,
        &cmd.presented_hash,
        &cmd.successor_hash,
        cmd.proof.as_ref(),
        cmd.at,
        retry_grace,
    );
    let event = |action| {
        Event::new(action, &cmd.tenant)
            .at(cmd.at)
            .user(&s.user_id)
            .session(&s.id)
            .request(cmd.request_id.as_deref())
    };
    match outcome {
        RefreshOutcome::Rotated(_) => {
            let event = event(Action::SessionRefreshed);
            s.previous_hash = Some(std::mem::replace(
                &mut s.current_hash,
                cmd.successor_hash.clone(),
            ));
            s.generation = s.generation.saturating_add(1);
            s.last_refreshed_at = cmd.at.max(s.last_refreshed_at);
            s.kid.clone_from(&cmd.kid);
            put_session(batch, &cmd.tenant, &s)?;
            Ok(Applied::with(RefreshOutcome::Rotated(s), event))
        }
        RefreshOutcome::Retried(_) => Ok(Applied::quiet(RefreshOutcome::Retried(s))),
        RefreshOutcome::Reused => {
            let event = event(Action::SessionCompromised);
            s.revoked = Some(Revocation {
                at: cmd.at,
                reason: "refresh_token_reused".to_owned(),
            });
            put_session(batch, &cmd.tenant, &s)?;
            Ok(Applied::with(RefreshOutcome::Reused, event))
        }
        other => Ok(Applied::quiet(other)),
    }
}

/// Applies a [`RevokeSession`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn revoke(
    batch: &mut ApplyBatch<'_>,
    cmd: &RevokeSession,
) -> Result<Applied<RevokeSessionOutcome>> {
    let Some(mut s) = session(batch, &cmd.tenant, &cmd.session_id)? else {
        return Ok(Applied::quiet(RevokeSessionOutcome::SessionNotFound));
    };
    if s.revoked.is_some() {
        return Ok(Applied::quiet(RevokeSessionOutcome::SessionRevoked {
            already: true,
        }));
    }
    s.revoked = Some(Revocation {
        at: cmd.at,
        reason: cmd.reason.clone(),
    });
    put_session(batch, &cmd.tenant, &s)?;
    let event = Event::new(Action::SessionRevoked, &cmd.tenant)
        .at(cmd.at)
        .user(&s.user_id)
        .session(&s.id);
    Ok(Applied::with(
        RevokeSessionOutcome::SessionRevoked { already: false },
        event,
    ))
}

/// Applies a [`RevokeUserSessions`]: one `session.revoked` per session it
/// revoked.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn revoke_user_sessions(
    batch: &mut ApplyBatch<'_>,
    cmd: &RevokeUserSessions,
) -> Result<Applied<UserSessionsRevoked>> {
    let prefix = user_sessions_prefix(batch.group(), &cmd.tenant, &cmd.user_id);
    let ids: Vec<String> = batch
        .scan(&prefix)?
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
        .filter(|id| cmd.except.as_deref() != Some(id.as_str()))
        .collect();
    let mut events = Vec::new();
    for id in ids {
        let Some(mut s) = session(batch, &cmd.tenant, &id)? else {
            continue;
        };
        if !s.is_active(cmd.at) {
            continue;
        }
        s.revoked = Some(Revocation {
            at: cmd.at,
            reason: cmd.reason.clone(),
        });
        put_session(batch, &cmd.tenant, &s)?;
        events.push(
            Event::new(Action::SessionRevoked, &cmd.tenant)
                .at(cmd.at)
                .user(&s.user_id)
                .session(&s.id),
        );
    }
    Ok(Applied {
        outcome: UserSessionsRevoked {
            revoked: events.len(),
        },
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::GroupState;
    use crate::sm::audit;
    use crate::sm::sessions::{GetSession, ListUserSessions};
    use crate::sm::tenants::PurgeTenant;
    use crate::sm::users::{CreateUser, DeleteUser, GetUser, UpdateUser, UserRecord};
    use crate::sm::{AuthCommand, AuthOutcome, Command, Outcome};
    use crate::Engine;

    fn session_of(sm: &GroupState, tenant: &str, id: &str) -> Option<SessionRecord> {
        let q = GetSession {
            tenant: tenant.to_owned(),
            session_id: id.to_owned(),
        };
        crate::sm::sessions::read::get(sm, &q).expect("read")
    }

    fn user_of(sm: &GroupState, tenant: &str, id: &str) -> Option<UserRecord> {
        let q = GetUser {
            tenant: tenant.to_owned(),
            user_id: id.to_owned(),
        };
        crate::sm::users::read::get(sm, &q).expect("read")
    }

    fn sessions_of(sm: &GroupState, tenant: &str, user: &str) -> Vec<SessionRecord> {
        let q = ListUserSessions {
            tenant: tenant.to_owned(),
            user_id: user.to_owned(),
        };
        crate::sm::sessions::read::list_for_user(sm, &q).expect("list")
    }

    const T: &str = "tenant-a";

    fn user(id: &str) -> UserRecord {
        UserRecord {
            id: id.to_owned(),
            version: 1,
            created_at: 10,
            updated_at: 10,
            sealed: vec![1, 2, 3],
        }
    }

    fn session(id: &str, user_id: &str) -> SessionRecord {
        SessionRecord {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            created_at: 100,
            last_refreshed_at: 100,
            expires_at: 100 + 90 * 86_400,
            idle_timeout_secs: 30 * 86_400,
            amr: vec!["pwd".to_owned()],
            kid: "k1".to_owned(),
            generation: 0,
            current_hash: h(0),
            previous_hash: None,
            revoked: None,
            sealed_details: vec![9],
        }
    }

    /// The stand-in for the keyed hash of generation `g`'s token.
    fn h(g: u64) -> Vec<u8> {
        let mut v = vec![0xAA; 24];
        v.extend_from_slice(&g.to_be_bytes());
        v
    }

    fn refresh(generation: u64, proof: Option<u64>, at: u64) -> AuthCommand {
        AuthCommand::Refresh(Refresh {
            tenant: T.to_owned(),
            session_id: "s1".to_owned(),
            generation,
            presented_hash: h(generation),
            successor_hash: h(generation + 1),
            proof: proof.map(|g| (g, h(g))),
            kid: "k1".to_owned(),
            at,
            request_id: None,
        })
    }

    fn apply(sm: &GroupState, index: u64, cmd: &AuthCommand) -> AuthOutcome {
        let mut b = sm.batch();
        let out = match crate::sm::apply(&mut b, index, &Command::Auth(cmd.clone())).expect("apply")
        {
            Outcome::Auth(o) => o,
            other => panic!("{other:?}"),
        };
        b.commit().expect("commit");
        out
    }

    fn setup() -> (tempfile::TempDir, GroupState) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let create = AuthCommand::CreateUser(CreateUser {
            tenant: T.to_owned(),
            user: user("u1"),
        });
        assert_eq!(apply(&sm, 1, &create), AuthOutcome::UserCreated);
        assert_eq!(apply(&sm, 2, &create), AuthOutcome::IdCollision);
        let cs = AuthCommand::CreateSession(CreateSession {
            tenant: T.to_owned(),
            session: session("s1", "u1"),
        });
        assert_eq!(apply(&sm, 3, &cs), AuthOutcome::SessionCreated);
        (dir, sm)
    }

    fn outcome(o: AuthOutcome) -> RefreshOutcome {
        match o {
            AuthOutcome::Refresh(r) => r,
            other => panic!("not a refresh outcome: {other:?}"),
        }
    }

    #[test]
    fn rotation_chain_retry_and_reuse() {
        let (_dir, sm) = setup();
        for g in 0..20 {
            let out = outcome(apply(&sm, 10 + g, &refresh(g, None, 200 + g)));
            let RefreshOutcome::Rotated(s) = out else {
                panic!("generation {g}: {out:?}");
            };
            assert_eq!((s.generation, s.last_refreshed_at), (g + 1, 200 + g));
        }
        // The previous token (19) again: its successor (20) is unused → same answer.
        for _ in 0..3 {
            let out = outcome(apply(&sm, 40, &refresh(19, None, 300)));
            let RefreshOutcome::Retried(s) = out else {
                panic!("{out:?}");
            };
            assert_eq!((s.generation, s.last_refreshed_at), (20, 219));
        }
        // An older token without proof changes nothing.
        assert_eq!(
            outcome(apply(&sm, 41, &refresh(5, None, 300))),
            RefreshOutcome::NeedProof { current: 20 }
        );
        // A wrong proof is invalid, and changes nothing.
        let mut forged = refresh(5, None, 300);
        if let AuthCommand::Refresh(Refresh { proof, .. }) = &mut forged {
            *proof = Some((20, vec![0; 32]));
        }
        assert_eq!(outcome(apply(&sm, 42, &forged)), RefreshOutcome::Invalid);
        assert!(session_of(&sm, T, "s1").expect("s").revoked.is_none());
        // A genuine older token: the family is revoked, with an audit event.
        assert_eq!(
            outcome(apply(&sm, 43, &refresh(5, Some(20), 300))),
            RefreshOutcome::Reused
        );
        let s = session_of(&sm, T, "s1").expect("s");
        assert_eq!(
            s.revoked.as_ref().map(|r| r.reason.as_str()),
            Some("refresh_token_reused")
        );
        let events = audit::read::events(&sm, T, 10).expect("audit");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, 43);
        assert_eq!(events[0].1.action, "session.compromised");
        // Afterwards even the newest token is dead.
        assert_eq!(
            outcome(apply(&sm, 44, &refresh(20, None, 301))),
            RefreshOutcome::Revoked
        );
        assert_eq!(
            outcome(apply(&sm, 45, &refresh(19, None, 301))),
            RefreshOutcome::Revoked
        );
    }

    #[test]
    fn a_retry_after_the_successor_was_used_is_reuse() {
        let (_dir, sm) = setup();
        assert!(matches!(
            outcome(apply(&sm, 10, &refresh(0, None, 200))),
            RefreshOutcome::Rotated(_)
        ));
        assert!(matches!(
            outcome(apply(&sm, 11, &refresh(1, None, 201))),
            RefreshOutcome::Rotated(_)
        ));
        // Token 0's successor (1) was used: presenting 0 is reuse, not a retry.
        assert_eq!(
            outcome(apply(&sm, 12, &refresh(0, None, 202))),
            RefreshOutcome::NeedProof { current: 2 }
        );
        assert_eq!(
            outcome(apply(&sm, 13, &refresh(0, Some(2), 202))),
            RefreshOutcome::Reused
        );
    }

    #[test]
    fn wrong_hashes_future_generations_and_expiry() {
        let (_dir, sm) = setup();
        let mut wrong = refresh(0, None, 200);
        if let AuthCommand::Refresh(Refresh { presented_hash, .. }) = &mut wrong {
            *presented_hash = vec![1; 32];
        }
        assert_eq!(outcome(apply(&sm, 10, &wrong)), RefreshOutcome::Invalid);
        assert_eq!(
            outcome(apply(&sm, 11, &refresh(7, None, 200))),
            RefreshOutcome::Invalid
        );
        let mut other_session = refresh(0, None, 200);
        if let AuthCommand::Refresh(Refresh { session_id, .. }) = &mut other_session {
            "nope".clone_into(session_id);
        }
        assert_eq!(
            outcome(apply(&sm, 12, &other_session)),
            RefreshOutcome::Invalid
        );
        let mut other_tenant = refresh(0, None, 200);
        if let AuthCommand::Refresh(Refresh { tenant, .. }) = &mut other_tenant {
            "tenant-b".clone_into(tenant);
        }
        assert_eq!(
            outcome(apply(&sm, 13, &other_tenant)),
            RefreshOutcome::Invalid
        );
        // Idle timeout: 30 days after the last refresh.
        let idle = 100 + 30 * 86_400;
        assert_eq!(
            outcome(apply(&sm, 14, &refresh(0, None, idle))),
            RefreshOutcome::Expired
        );
        assert!(matches!(
            outcome(apply(&sm, 15, &refresh(0, None, idle - 1))),
            RefreshOutcome::Rotated(_)
        ));
    }

    #[test]
    fn deleting_a_user_deletes_its_sessions_and_a_session_needs_its_user() {
        let (_dir, sm) = setup();
        let cs = |id: &str, user: &str| {
            AuthCommand::CreateSession(CreateSession {
                tenant: T.to_owned(),
                session: session(id, user),
            })
        };
        assert_eq!(apply(&sm, 4, &cs("s2", "u1")), AuthOutcome::SessionCreated);
        assert_eq!(apply(&sm, 5, &cs("s9", "ghost")), AuthOutcome::UserNotFound);
        assert_eq!(sessions_of(&sm, T, "u1").len(), 2);
        assert_eq!(sessions_of(&sm, "tenant-b", "u1").len(), 0);
        let del = AuthCommand::DeleteUser(DeleteUser {
            tenant: T.to_owned(),
            user_id: "u1".to_owned(),
            at: 500,
        });
        assert_eq!(
            apply(&sm, 6, &del),
            AuthOutcome::UserDeleted { sessions: 2 }
        );
        assert_eq!(apply(&sm, 7, &del), AuthOutcome::UserNotFound);
        assert_eq!(session_of(&sm, T, "s1"), None);
        assert_eq!(user_of(&sm, T, "u1"), None);
        assert_eq!(
            outcome(apply(&sm, 8, &refresh(0, None, 600))),
            RefreshOutcome::Invalid
        );
    }

    #[test]
    fn revocation_update_and_purge() {
        let (_dir, sm) = setup();
        let revoke = AuthCommand::RevokeSession(RevokeSession {
            tenant: T.to_owned(),
            session_id: "s1".to_owned(),
            at: 150,
            reason: "revoked".to_owned(),
        });
        assert_eq!(
            apply(&sm, 4, &revoke),
            AuthOutcome::SessionRevoked { already: false }
        );
        assert_eq!(
            apply(&sm, 5, &revoke),
            AuthOutcome::SessionRevoked { already: true }
        );
        assert!(!session_of(&sm, T, "s1").expect("s").is_active(151));
        let upd = |v: u64| {
            AuthCommand::UpdateUser(UpdateUser {
                tenant: T.to_owned(),
                user_id: "u1".to_owned(),
                expected_version: v,
                sealed: vec![4],
                at: 160,
            })
        };
        assert!(matches!(apply(&sm, 6, &upd(1)), AuthOutcome::UserUpdated(u) if u.version == 2));
        assert_eq!(
            apply(&sm, 7, &upd(1)),
            AuthOutcome::UserVersionConflict { current: 2 }
        );
        let purge = AuthCommand::PurgeTenant(PurgeTenant {
            tenant: T.to_owned(),
        });
        assert!(matches!(apply(&sm, 8, &purge), AuthOutcome::Purged { rows } if rows >= 4));
        assert_eq!(user_of(&sm, T, "u1"), None);
        assert!(audit::read::events(&sm, T, 10).expect("audit").is_empty());
    }
}
