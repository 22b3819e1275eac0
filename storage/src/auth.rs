//! Users, sessions and audit events in a region's data group, and the
//! deterministic decisions the auth API rests on.
//!
//! What is sealed and what is not: personal data (email, password hash, IP, user
//! agent) arrives sealed by the node and is opaque here. The fields the state
//! machine must decide on — ids, timestamps, the refresh token generation and the
//! keyed hashes of the current and previous refresh token, revocation — are stored
//! in the clear; none of them is personal data or a usable secret.
//!
//! Refresh tokens form a forward chain per session (see `cairn_crypto::token`):
//! token `g + 1` is derived from token `g` under the tenant's token-MAC key, and
//! only keyed hashes are stored. Applying a [`AuthCommand::Refresh`] decides, on
//! every replica alike and at one log position:
//! - the current token (generation `g`) rotates: `g + 1` becomes current, `g`
//!   previous;
//! - the previous token (`g - 1`), whose successor `g` has by definition not been
//!   used yet, is a lost-answer retry: the same successor is answered again and
//!   nothing changes;
//! - an older genuine token (`< g - 1`) is reuse: the session (the whole token
//!   family) is revoked and a `session.compromised` audit event written, in the
//!   same entry. "Genuine" is proven by the proposer walking the presented token
//!   forward to generation `g` and presenting that token's hash, which only a
//!   holder of a real token of this session and of the tenant's key can produce;
//!   without a matching proof the answer is [`RefreshOutcome::NeedProof`], so a
//!   forged old token can never revoke anyone's session.

use serde::{Deserialize, Serialize};

use crate::keys::{tenant_row, SM_AUDIT, SM_SESSION, SM_USER, SM_USER_SESSION};
use crate::kv::ApplyBatch;
use crate::state::GroupState;
use crate::{codec, Result};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// Bumped by every update (a compare-and-set guard for concurrent PATCHes).
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Email and password hash, sealed by the node.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: u64,
    /// `revoked` (by the API), `refresh_token_reused`.
    pub reason: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: u64,
    /// When the current refresh token was issued (sign-in or last rotation).
    pub last_refreshed_at: u64,
    /// Absolute end of the session, whatever its use.
    pub expires_at: u64,
    /// The session ends after this long without a refresh.
    pub idle_timeout_secs: u64,
    /// Authentication methods (`pwd`, …), as the access token's `amr` claim.
    pub amr: Vec<String>,
    /// The signing key (`kid`) of the access token issued with the current
    /// refresh token: a retried refresh re-signs the same token with it.
    pub kid: String,
    /// Generation of the current refresh token.
    pub generation: u64,
    /// Keyed hash of the current refresh token.
    pub current_hash: Vec<u8>,
    /// Keyed hash of the previous one (`None` before the first rotation).
    pub previous_hash: Option<Vec<u8>>,
    pub revoked: Option<Revocation>,
    /// IP and user agent at sign-in, sealed by the node.
    pub sealed_details: Vec<u8>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("generation", &self.generation)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// Whether the session may still be used at `now` (not revoked, not expired).
    #[must_use]
    pub fn is_active(&self, now: u64) -> bool {
        self.revoked.is_none() && !self.is_expired(now)
    }

    #[must_use]
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.ends_at()
    }

    /// When the session ends unless refreshed first: its idle end or its absolute
    /// end, whichever comes sooner.
    #[must_use]
    pub fn ends_at(&self) -> u64 {
        self.expires_at.min(
            self.last_refreshed_at
                .saturating_add(self.idle_timeout_secs),
        )
    }
}

/// One audit event: ids and an action only (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: u64,
    /// `user.created`, `session.compromised`, …
    pub action: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    CreateUser {
        tenant: String,
        user: UserRecord,
    },
    /// Replaces the sealed fields if the user is at `expected_version`.
    UpdateUser {
        tenant: String,
        user_id: String,
        expected_version: u64,
        sealed: Vec<u8>,
        at: u64,
    },
    /// Deletes the user and every session of it.
    DeleteUser {
        tenant: String,
        user_id: String,
        at: u64,
    },
    /// Starts a session for an existing user.
    CreateSession {
        tenant: String,
        session: SessionRecord,
    },
    /// Presents refresh token `generation` of `session_id` (see the module doc).
    Refresh {
        tenant: String,
        session_id: String,
        generation: u64,
        /// Keyed hash of the presented token.
        presented_hash: Vec<u8>,
        /// Keyed hash of its successor (generation + 1).
        successor_hash: Vec<u8>,
        /// For an older token: (generation, keyed hash) of the token the presented
        /// one walks forward to.
        proof: Option<(u64, Vec<u8>)>,
        /// The signing key the proposer will sign the new access token with.
        kid: String,
        at: u64,
        request_id: Option<String>,
    },
    RevokeSession {
        tenant: String,
        session_id: String,
        at: u64,
        reason: String,
    },
    /// Deletes every row of a deleted tenant in this group (users, sessions,
    /// audit events, KV).
    PurgeTenant {
        tenant: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshOutcome {
    /// The presented token was current; the session now holds its successor.
    Rotated(SessionRecord),
    /// The presented token was the previous one and its successor is unused: the
    /// same successor is the answer again. Nothing changed.
    Retried(SessionRecord),
    /// A retired token was presented: the session is revoked (in this entry).
    Reused,
    /// No such session, or the token does not match it.
    Invalid,
    Revoked,
    Expired,
    /// An older token needs a proof for generation `current`; nothing changed.
    NeedProof {
        current: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    UserCreated,
    UserUpdated(UserRecord),
    UserDeleted {
        sessions: usize,
    },
    UserNotFound,
    /// The user changed since it was read; nothing changed.
    UserVersionConflict {
        current: u64,
    },
    SessionCreated,
    Refresh(RefreshOutcome),
    SessionRevoked {
        already: bool,
    },
    SessionNotFound,
    Purged {
        rows: usize,
    },
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
}

fn user_key(group: u64, tenant: &str, user_id: &str) -> Vec<u8> {
    tenant_row(group, SM_USER, tenant, &[user_id.as_bytes()])
}

fn session_key(group: u64, tenant: &str, session_id: &str) -> Vec<u8> {
    tenant_row(group, SM_SESSION, tenant, &[session_id.as_bytes()])
}

fn user_session_key(group: u64, tenant: &str, user_id: &str, session_id: &str) -> Vec<u8> {
    tenant_row(
        group,
        SM_USER_SESSION,
        tenant,
        &[user_id.as_bytes(), session_id.as_bytes()],
    )
}

/// Prefix of all of a user's session index rows.
fn user_sessions_prefix(group: u64, tenant: &str, user_id: &str) -> Vec<u8> {
    tenant_row(group, SM_USER_SESSION, tenant, &[user_id.as_bytes(), b""])
}

impl ApplyBatch<'_> {
    fn auth_row<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.get_raw(key)?
            .map(|b| codec::decode(what, &b))
            .transpose()
    }

    fn put_session(&mut self, tenant: &str, s: &SessionRecord) -> Result<()> {
        self.put_raw(
            session_key(self.group(), tenant, &s.id),
            codec::encode("session", s)?,
        )
    }

    /// Audit events are keyed by the sequence number of the command that wrote
    /// them (entry index × 256 + position), so they sort in log order; `n` orders
    /// several events of one command.
    fn audit(&mut self, index: u64, tenant: &str, event: &AuditEvent) -> Result<()> {
        let prefix = tenant_row(self.group(), SM_AUDIT, tenant, &[]);
        let mut n: u32 = 0;
        loop {
            let mut key = prefix.clone();
            key.extend_from_slice(&index.to_be_bytes());
            key.extend_from_slice(&n.to_be_bytes());
            if self.get_raw(&key)?.is_none() {
                return self.put_raw(key, codec::encode("audit event", event)?);
            }
            n = n.saturating_add(1);
        }
    }

    /// Applies one auth command carried by the entry at `index`.
    ///
    /// # Errors
    /// Reading current state failed or found a corrupt record.
    pub fn apply_auth(&mut self, index: u64, cmd: &AuthCommand) -> Result<AuthOutcome> {
        let group = self.group();
        match cmd {
            AuthCommand::CreateUser { tenant, user } => {
                let key = user_key(group, tenant, &user.id);
                if self.get_raw(&key)?.is_some() {
                    return Ok(AuthOutcome::IdCollision);
                }
                self.put_raw(key, codec::encode("user", user)?)?;
                Ok(AuthOutcome::UserCreated)
            }
            AuthCommand::UpdateUser {
                tenant,
                user_id,
                expected_version,
                sealed,
                at,
            } => {
                let key = user_key(group, tenant, user_id);
                let Some(mut user): Option<UserRecord> = self.auth_row("user", &key)? else {
                    return Ok(AuthOutcome::UserNotFound);
                };
                if user.version != *expected_version {
                    return Ok(AuthOutcome::UserVersionConflict {
                        current: user.version,
                    });
                }
                user.version = user.version.saturating_add(1);
                user.updated_at = *at;
                user.sealed.clone_from(sealed);
                self.put_raw(key, codec::encode("user", &user)?)?;
                Ok(AuthOutcome::UserUpdated(user))
            }
            AuthCommand::DeleteUser {
                tenant,
                user_id,
                at,
            } => {
                let key = user_key(group, tenant, user_id);
                if self.get_raw(&key)?.is_none() {
                    return Ok(AuthOutcome::UserNotFound);
                }
                self.delete_raw(key)?;
                let prefix = user_sessions_prefix(group, tenant, user_id);
                let sessions: Vec<Vec<u8>> = self
                    .scan_prefix(&prefix)?
                    .into_keys()
                    .map(|k| k[prefix.len()..].to_vec())
                    .collect();
                for sid in &sessions {
                    self.delete_raw(tenant_row(group, SM_SESSION, tenant, &[sid]))?;
                }
                self.delete_prefix(&prefix)?;
                self.audit(
                    index,
                    tenant,
                    &AuditEvent {
                        at: *at,
                        action: "user.deleted".to_owned(),
                        user_id: Some(user_id.clone()),
                        session_id: None,
                        request_id: None,
                    },
                )?;
                Ok(AuthOutcome::UserDeleted {
                    sessions: sessions.len(),
                })
            }
            AuthCommand::CreateSession { tenant, session } => {
                if self
                    .get_raw(&user_key(group, tenant, &session.user_id))?
                    .is_none()
                {
                    return Ok(AuthOutcome::UserNotFound);
                }
                let key = session_key(group, tenant, &session.id);
                if self.get_raw(&key)?.is_some() {
                    return Ok(AuthOutcome::IdCollision);
                }
                self.put_session(tenant, session)?;
                self.put_raw(
                    user_session_key(group, tenant, &session.user_id, &session.id),
                    Vec::new(),
                )?;
                Ok(AuthOutcome::SessionCreated)
            }
            AuthCommand::Refresh {
                tenant,
                session_id,
                generation,
                presented_hash,
                successor_hash,
                proof,
                kid,
                at,
                request_id,
            } => {
                let key = session_key(group, tenant, session_id);
                let Some(mut s): Option<SessionRecord> = self.auth_row("session", &key)? else {
                    return Ok(AuthOutcome::Refresh(RefreshOutcome::Invalid));
                };
                let outcome = refresh_decision(
                    &s,
                    *generation,
                    presented_hash,
                    successor_hash,
                    proof.as_ref(),
                    *at,
                );
                match &outcome {
                    RefreshOutcome::Rotated(_) => {
                        s.previous_hash = Some(std::mem::replace(
                            &mut s.current_hash,
                            successor_hash.clone(),
                        ));
                        s.generation = s.generation.saturating_add(1);
                        s.last_refreshed_at = (*at).max(s.last_refreshed_at);
                        s.kid.clone_from(kid);
                        self.put_session(tenant, &s)?;
                        return Ok(AuthOutcome::Refresh(RefreshOutcome::Rotated(s)));
                    }
                    RefreshOutcome::Retried(_) => {
                        return Ok(AuthOutcome::Refresh(RefreshOutcome::Retried(s)))
                    }
                    RefreshOutcome::Reused => {
                        s.revoked = Some(Revocation {
                            at: *at,
                            reason: "refresh_token_reused".to_owned(),
                        });
                        self.put_session(tenant, &s)?;
                        self.audit(
                            index,
                            tenant,
                            &AuditEvent {
                                at: *at,
                                action: "session.compromised".to_owned(),
                                user_id: Some(s.user_id.clone()),
                                session_id: Some(s.id.clone()),
                                request_id: request_id.clone(),
                            },
                        )?;
                    }
                    _ => {}
                }
                Ok(AuthOutcome::Refresh(outcome))
            }
            AuthCommand::RevokeSession {
                tenant,
                session_id,
                at,
                reason,
            } => {
                let key = session_key(group, tenant, session_id);
                let Some(mut s): Option<SessionRecord> = self.auth_row("session", &key)? else {
                    return Ok(AuthOutcome::SessionNotFound);
                };
                if s.revoked.is_some() {
                    return Ok(AuthOutcome::SessionRevoked { already: true });
                }
                s.revoked = Some(Revocation {
                    at: *at,
                    reason: reason.clone(),
                });
                self.put_session(tenant, &s)?;
                self.audit(
                    index,
                    tenant,
                    &AuditEvent {
                        at: *at,
                        action: "session.revoked".to_owned(),
                        user_id: Some(s.user_id.clone()),
                        session_id: Some(s.id.clone()),
                        request_id: None,
                    },
                )?;
                Ok(AuthOutcome::SessionRevoked { already: false })
            }
            AuthCommand::PurgeTenant { tenant } => {
                let mut rows = 0;
                for tag in [SM_USER, SM_SESSION, SM_USER_SESSION, SM_AUDIT] {
                    rows += self.delete_prefix(&tenant_row(group, tag, tenant, &[]))?;
                }
                rows += self.delete_prefix(&crate::keys::kv_key(group, tenant, b""))?;
                Ok(AuthOutcome::Purged { rows })
            }
        }
    }
}

/// The refresh decision for session `s` (see the module doc). `Rotated` and
/// `Retried` carry `s` unchanged; the caller applies the rotation.
fn refresh_decision(
    s: &SessionRecord,
    generation: u64,
    presented_hash: &[u8],
    successor_hash: &[u8],
    proof: Option<&(u64, Vec<u8>)>,
    at: u64,
) -> RefreshOutcome {
    if s.revoked.is_some() {
        return RefreshOutcome::Revoked;
    }
    if s.is_expired(at) {
        return RefreshOutcome::Expired;
    }
    let g = s.generation;
    if generation == g {
        if presented_hash == s.current_hash.as_slice() {
            return RefreshOutcome::Rotated(s.clone());
        }
        return RefreshOutcome::Invalid;
    }
    if generation.checked_add(1) == Some(g) {
        let matches_previous = s.previous_hash.as_deref() == Some(presented_hash);
        if matches_previous && successor_hash == s.current_hash.as_slice() {
            return RefreshOutcome::Retried(s.clone());
        }
        return RefreshOutcome::Invalid;
    }
    if generation < g {
        return match proof {
            Some((pg, ph)) if *pg == g && ph.as_slice() == s.current_hash.as_slice() => {
                RefreshOutcome::Reused
            }
            Some((pg, _)) if *pg == g => RefreshOutcome::Invalid,
            _ => RefreshOutcome::NeedProof { current: g },
        };
    }
    RefreshOutcome::Invalid
}

impl GroupState {
    fn auth_local<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.get_raw(key)?
            .map(|b| codec::decode(what, &b))
            .transpose()
    }

    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn user(&self, tenant: &str, user_id: &str) -> Result<Option<UserRecord>> {
        self.auth_local("user", &user_key(self.group(), tenant, user_id))
    }

    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn session(&self, tenant: &str, session_id: &str) -> Result<Option<SessionRecord>> {
        self.auth_local("session", &session_key(self.group(), tenant, session_id))
    }

    /// Every session of a user, by session id.
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn user_sessions(&self, tenant: &str, user_id: &str) -> Result<Vec<SessionRecord>> {
        let prefix = user_sessions_prefix(self.group(), tenant, user_id);
        let mut out = Vec::new();
        for (k, _) in self.scan_prefix(&prefix)? {
            let sid = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(s) = self.session(tenant, &sid)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// A tenant's audit events in this group with the sequence number that wrote each,
    /// oldest first, at most `limit`.
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn audit_events(&self, tenant: &str, limit: usize) -> Result<Vec<(u64, AuditEvent)>> {
        let prefix = tenant_row(self.group(), SM_AUDIT, tenant, &[]);
        let mut out = Vec::new();
        for (k, v) in self.scan_prefix(&prefix)?.into_iter().take(limit) {
            let index = k
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            out.push((index, codec::decode("audit event", &v)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

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
        AuthCommand::Refresh {
            tenant: T.to_owned(),
            session_id: "s1".to_owned(),
            generation,
            presented_hash: h(generation),
            successor_hash: h(generation + 1),
            proof: proof.map(|g| (g, h(g))),
            kid: "k1".to_owned(),
            at,
            request_id: None,
        }
    }

    fn apply(sm: &GroupState, index: u64, cmd: &AuthCommand) -> AuthOutcome {
        let mut b = sm.batch();
        let out = b.apply_auth(index, cmd).expect("apply");
        b.commit().expect("commit");
        out
    }

    fn setup() -> (tempfile::TempDir, GroupState) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let create = AuthCommand::CreateUser {
            tenant: T.to_owned(),
            user: user("u1"),
        };
        assert_eq!(apply(&sm, 1, &create), AuthOutcome::UserCreated);
        assert_eq!(apply(&sm, 2, &create), AuthOutcome::IdCollision);
        let cs = AuthCommand::CreateSession {
            tenant: T.to_owned(),
            session: session("s1", "u1"),
        };
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
        if let AuthCommand::Refresh { proof, .. } = &mut forged {
            *proof = Some((20, vec![0; 32]));
        }
        assert_eq!(outcome(apply(&sm, 42, &forged)), RefreshOutcome::Invalid);
        assert!(sm
            .session(T, "s1")
            .expect("read")
            .expect("s")
            .revoked
            .is_none());
        // A genuine older token: the family is revoked, with an audit event.
        assert_eq!(
            outcome(apply(&sm, 43, &refresh(5, Some(20), 300))),
            RefreshOutcome::Reused
        );
        let s = sm.session(T, "s1").expect("read").expect("s");
        assert_eq!(
            s.revoked.as_ref().map(|r| r.reason.as_str()),
            Some("refresh_token_reused")
        );
        let events = sm.audit_events(T, 10).expect("audit");
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
        if let AuthCommand::Refresh { presented_hash, .. } = &mut wrong {
            *presented_hash = vec![1; 32];
        }
        assert_eq!(outcome(apply(&sm, 10, &wrong)), RefreshOutcome::Invalid);
        assert_eq!(
            outcome(apply(&sm, 11, &refresh(7, None, 200))),
            RefreshOutcome::Invalid
        );
        let mut other_session = refresh(0, None, 200);
        if let AuthCommand::Refresh { session_id, .. } = &mut other_session {
            "nope".clone_into(session_id);
        }
        assert_eq!(
            outcome(apply(&sm, 12, &other_session)),
            RefreshOutcome::Invalid
        );
        let mut other_tenant = refresh(0, None, 200);
        if let AuthCommand::Refresh { tenant, .. } = &mut other_tenant {
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
        let cs = |id: &str, user: &str| AuthCommand::CreateSession {
            tenant: T.to_owned(),
            session: session(id, user),
        };
        assert_eq!(apply(&sm, 4, &cs("s2", "u1")), AuthOutcome::SessionCreated);
        assert_eq!(apply(&sm, 5, &cs("s9", "ghost")), AuthOutcome::UserNotFound);
        assert_eq!(sm.user_sessions(T, "u1").expect("list").len(), 2);
        assert_eq!(sm.user_sessions("tenant-b", "u1").expect("list").len(), 0);
        let del = AuthCommand::DeleteUser {
            tenant: T.to_owned(),
            user_id: "u1".to_owned(),
            at: 500,
        };
        assert_eq!(
            apply(&sm, 6, &del),
            AuthOutcome::UserDeleted { sessions: 2 }
        );
        assert_eq!(apply(&sm, 7, &del), AuthOutcome::UserNotFound);
        assert_eq!(sm.session(T, "s1").expect("read"), None);
        assert_eq!(sm.user(T, "u1").expect("read"), None);
        assert_eq!(
            outcome(apply(&sm, 8, &refresh(0, None, 600))),
            RefreshOutcome::Invalid
        );
    }

    #[test]
    fn revocation_update_and_purge() {
        let (_dir, sm) = setup();
        let revoke = AuthCommand::RevokeSession {
            tenant: T.to_owned(),
            session_id: "s1".to_owned(),
            at: 150,
            reason: "revoked".to_owned(),
        };
        assert_eq!(
            apply(&sm, 4, &revoke),
            AuthOutcome::SessionRevoked { already: false }
        );
        assert_eq!(
            apply(&sm, 5, &revoke),
            AuthOutcome::SessionRevoked { already: true }
        );
        assert!(!sm.session(T, "s1").expect("r").expect("s").is_active(151));
        let upd = |v: u64| AuthCommand::UpdateUser {
            tenant: T.to_owned(),
            user_id: "u1".to_owned(),
            expected_version: v,
            sealed: vec![4],
            at: 160,
        };
        assert!(matches!(apply(&sm, 6, &upd(1)), AuthOutcome::UserUpdated(u) if u.version == 2));
        assert_eq!(
            apply(&sm, 7, &upd(1)),
            AuthOutcome::UserVersionConflict { current: 2 }
        );
        let purge = AuthCommand::PurgeTenant {
            tenant: T.to_owned(),
        };
        assert!(matches!(apply(&sm, 8, &purge), AuthOutcome::Purged { rows } if rows >= 4));
        assert_eq!(sm.user(T, "u1").expect("read"), None);
        assert!(sm.audit_events(T, 10).expect("audit").is_empty());
    }
}
