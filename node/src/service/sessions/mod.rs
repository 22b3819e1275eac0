//! Sessions: sign-in with a password, access tokens (JWT, EdDSA, signed with the
//! tenant's own key), refresh token rotation with reuse detection and lost-answer
//! retry, revocation, listing and introspection.
//!
//! Every decision about a refresh token is the log's (storage's `auth` module):
//! this node only computes keyed hashes and proposes. The refresh token chain is
//! deterministic (`cairn_crypto::token`), so the answer to a retried rotation —
//! the successor refresh token and an access token over the same claims — is
//! recomputed, not stored: only keyed hashes of refresh tokens ever reach the log.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_crypto::jwt;
use cairn_crypto::token::RefreshToken;
use cairn_storage::sm::sessions::rules::refresh_decision;
use cairn_storage::sm::sessions::{
    CreateSession, CreateSessionOutcome, GetSession, ListUserSessions, Refresh, RefreshWithin,
    RevokeSession, RevokeSessionOutcome, RevokeUserSessions,
};
use cairn_storage::{codec, RefreshOutcome, SessionRecord};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use cairn_storage::sm::rate_limits::Limited;
use cairn_storage::sm::{SignInFailed, SignInFailedOutcome, StartSession, StartSessionOutcome};

use super::core::{
    at_least, email_index, failed_path, new_id, region_error, unix_now, unix_now_ms, Buckets, Call,
    Core, Email, LimitAction, LoadedUser, Principal, Scope, Settings, TenantKeys,
    ACCESS_TOKEN_TTL_SECS, REFRESH_FAILURE_MIN_TIME, SIGN_IN_MIN_TIME, TRUSTED_PAIR_SECS,
};
use crate::error::ServiceError;
/// Tolerated clock skew for `iat` in the future.
const CLOCK_SKEW_SECS: u64 = 60;
const REFRESH_ATTEMPTS: usize = 3;

/// The sealed part of a session.
#[derive(Serialize, Deserialize)]
struct SessionDetails {
    ip: Option<String>,
    user_agent: Option<String>,
}

/// Access token claims.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    iss: String,
    sub: String,
    sid: String,
    tid: String,
    iat: u64,
    exp: u64,
    amr: Vec<String>,
    aal: String,
}

/// A new session (shown once: it holds the refresh token).
pub struct IssuedSession {
    pub session_id: String,
    pub user_id: String,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The answer to a refresh.
pub struct RefreshedSession {
    pub session_id: String,
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedSession")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A session as listed (never a token).
#[derive(Debug)]
pub struct SessionView {
    pub id: String,
    pub user_id: String,
    pub created_at: u64,
    pub last_refreshed_at: u64,
    pub expires_at: u64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// RFC 7662 introspection response.
#[derive(Debug, Default)]
pub struct Introspection {
    pub active: bool,
    pub token_type: Option<&'static str>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub tid: Option<String>,
    pub iat: Option<u64>,
    pub exp: Option<u64>,
    pub amr: Option<Vec<String>>,
    pub aal: Option<String>,
}

fn issuer(tenant_id: &str) -> String {
    format!("urn:cairn:tenant:{tenant_id}")
}

fn session_path(session_id: &str) -> Vec<u8> {
    format!("session/{session_id}").into_bytes()
}

/// Sessions and tokens of the calling tenant (API key scopes).
#[derive(Clone)]
pub struct SessionService {
    core: Core,
}

impl SessionService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    /// Signs an access token for session `s`, issued at `iat`. Deterministic: the
    /// same session and `iat` give the same token (Ed25519 signatures are).
    async fn access_token(
        &self,
        keys: &TenantKeys,
        s: &SessionRecord,
        iat: u64,
    ) -> Result<(String, u64), ServiceError> {
        let mut signing = self.core.signing(keys).await?;
        if !signing.has_private(&s.kid) {
            // Rotated through another node a moment ago: catch up with `meta`.
            signing = self
                .core
                .signing_since(keys, tokio::time::Instant::now())
                .await?;
        }
        // Never outlives its session: the session's idle and absolute ends, as
        // they stand at `iat` (its sign-in or latest refresh).
        let exp = iat.saturating_add(ACCESS_TOKEN_TTL_SECS).min(s.ends_at());
        let claims = Claims {
            iss: issuer(keys.id()),
            sub: s.user_id.clone(),
            sid: s.id.clone(),
            tid: keys.id().to_owned(),
            iat,
            exp,
            amr: s.amr.clone(),
            aal: "aal1".to_owned(),
        };
        let token = signing.sign(Some(&s.kid), &claims)?;
        Ok((token, exp.saturating_sub(unix_now())))
    }

    /// The `kid` new access tokens are signed with.
    async fn current_kid(&self, keys: &TenantKeys) -> Result<String, ServiceError> {
        self.core
            .signing(keys)
            .await?
            .current_kid()
            .map(str::to_owned)
            .ok_or_else(|| {
                tracing::error!(tenant_id = keys.id(), "tenant has no signing key");
                ServiceError::Internal
            })
    }

    /// `POST /v1/sessions`: email and password → a session. Every failure is the
    /// same `invalid_credentials`, after the same work and at least
    /// [`SIGN_IN_MIN_TIME`].
    ///
    /// # Errors
    /// Scope, `invalid_credentials`, unavailable.
    pub async fn sign_in(
        &self,
        call: &Call,
        email: &str,
        password: Zeroizing<String>,
    ) -> Result<IssuedSession, ServiceError> {
        let principal = call.api_key(Scope::Write)?;
        at_least(
            call.context().deferred_pad.as_ref(),
            SIGN_IN_MIN_TIME,
            |r| {
                matches!(
                    r,
                    Err(ServiceError::InvalidCredentials
                        | ServiceError::RateLimited { .. }
                        | ServiceError::EmailAmbiguous)
                        | Ok(_)
                )
            },
            self.sign_in_inner(call, principal, email, password),
        )
        .await
    }

    async fn sign_in_inner(
        &self,
        call: &Call,
        principal: &Principal,
        email: &str,
        password: Zeroizing<String>,
    ) -> Result<IssuedSession, ServiceError> {
        let keys = principal.keys();
        // Rate limits (wire version 3): the address's bucket counts every
        // request; the email's and pair's are checked here, from this node's
        // replica, and charged (failures) or checked again (a success) by the
        // log.
        let limits = self.core.speaks(3);
        let now_ms = unix_now_ms();
        let settings = self.core.settings(keys.id()).await?;
        if limits {
            let ip = call.context().end_user_ip;
            self.core
                .charge_ip(keys, &settings, LimitAction::SignIn, ip, now_ms)?;
        }
        let email = Email::parse(email).ok();
        let user = match &email {
            Some(email) => self.core.user_by_email(keys, email).await?,
            None => None,
        };
        let buckets = match &email {
            Some(email) if limits => {
                Some(self.buckets(call, keys, &settings, email, user.as_ref())?)
            }
            _ => None,
        };
        let standing = match &buckets {
            Some(b) => Some(self.core.standing(b, now_ms).await?),
            None => None,
        };
        // An empty email bucket refuses before any hashing, unless the pair
        // signed in recently: then only a correct password gets through.
        if let Some(wait) = standing
            .filter(|s| !s.trusted_pair)
            .and_then(|s| s.email_limited)
        {
            return Err(super::core::limited(wait));
        }
        let phc = user.as_ref().and_then(|u| u.plain.password_hash.clone());
        let user_id = user.as_ref().map(|u| u.record.id.clone());
        let ok = self.core.verify_password(keys.id(), password, phc).await?;
        let Some(user) = user.filter(|_| ok) else {
            if let Some(b) = &buckets {
                self.record_failure(call, keys, b, user_id, now_ms).await?;
            }
            return Err(ServiceError::InvalidCredentials);
        };
        let (group, region) = self
            .core
            .id_group(&user.record.id, "usr")
            .ok_or(ServiceError::InvalidCredentials)?;
        let kid = self.current_kid(keys).await?;
        let session_id = new_id("ses", group);
        let token = RefreshToken::first(&session_id).map_err(|_| ServiceError::Internal)?;
        let now = unix_now();
        let policy = principal.session_policy();
        let details = SessionDetails {
            ip: call.context().client_ip.map(|ip| ip.to_string()),
            user_agent: call.context().user_agent.clone(),
        };
        let details = Zeroizing::new(codec::encode("session details", &details).map_err(|e| {
            tracing::error!(error = %e, "encoding session details");
            ServiceError::Internal
        })?);
        let session = SessionRecord {
            id: session_id.clone(),
            user_id: user.record.id.clone(),
            created_at: now,
            last_refreshed_at: now,
            expires_at: now.saturating_add(policy.absolute_timeout_secs),
            idle_timeout_secs: policy.idle_timeout_secs,
            amr: vec!["pwd".to_owned()],
            kid,
            generation: token.generation(),
            current_hash: token.hash(keys.token_key()).to_vec(),
            previous_hash: None,
            revoked: None,
            sealed_details: keys
                .seal(group.0, &session_path(&session_id), &details)
                .map_err(|_| ServiceError::Internal)?,
        };
        let create = CreateSession {
            tenant: keys.id().to_owned(),
            session: session.clone(),
        };
        let created = match (&buckets, &standing) {
            (Some(b), Some(standing)) => {
                let cmd = StartSession {
                    create,
                    require: standing.requires(b),
                    trust: b.pair_id().map(|id| {
                        let until = now_ms.saturating_add(TRUSTED_PAIR_SECS * 1000);
                        (id.to_vec(), until)
                    }),
                    at_ms: now_ms,
                };
                let result = self.core.write(call, group, cmd).await;
                result.map_err(|e| region_error(&region, e))?
            }
            _ => {
                let result = self.core.write(call, group, create).await;
                match result.map_err(|e| region_error(&region, e))? {
                    CreateSessionOutcome::SessionCreated => StartSessionOutcome::SessionCreated,
                    CreateSessionOutcome::UserNotFound => StartSessionOutcome::UserNotFound,
                    CreateSessionOutcome::IdCollision => StartSessionOutcome::IdCollision,
                }
            }
        };
        match created {
            StartSessionOutcome::SessionCreated => {}
            StartSessionOutcome::Limited(l) => return Err(l.into()),
            // Deleted between the read and the proposal.
            StartSessionOutcome::UserNotFound => return Err(ServiceError::InvalidCredentials),
            // The session id is fresh randomness: a collision is a bug.
            StartSessionOutcome::IdCollision => {
                tracing::error!(tenant_id = keys.id(), session_id, "session id collided");
                return Err(ServiceError::Internal);
            }
        }
        let (access_token, expires_in) = self.access_token(keys, &session, now).await?;
        tracing::info!(tenant_id = keys.id(), session_id, user_id = %session.user_id, "signed in");
        Ok(IssuedSession {
            session_id,
            user_id: session.user_id,
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: token.encode().to_string(),
        })
    }

    /// The email and pair buckets of a sign-in by `email`: in the user's group,
    /// or for an email no user holds, in the tenant's home group.
    fn buckets(
        &self,
        call: &Call,
        keys: &TenantKeys,
        settings: &Settings,
        email: &Email,
        user: Option<&LoadedUser>,
    ) -> Result<Buckets, ServiceError> {
        let group = match user.and_then(|u| self.core.id_group(&u.record.id, "usr")) {
            Some((group, _)) => group,
            None => self.core.region_group(&keys.record().region)?,
        };
        Ok(self.core.buckets(
            keys,
            settings,
            LimitAction::SignIn,
            group,
            &email_index(keys, email.key()),
            call.context().end_user_ip,
        ))
    }

    /// Charges a failed sign-in to its buckets and, if the email is a user's,
    /// counts it on the user (`failed_sign_ins`, `user.sign_in_failed`).
    ///
    /// # Errors
    /// `rate_limited` if the log found a bucket already empty; the group
    /// unavailable.
    async fn record_failure(
        &self,
        call: &Call,
        keys: &TenantKeys,
        b: &Buckets,
        user_id: Option<String>,
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        let sealed_ip = match (&user_id, call.context().client_ip) {
            (Some(uid), Some(ip)) => Some(
                keys.seal(b.group.0, &failed_path(uid), ip.to_string().as_bytes())
                    .map_err(|_| ServiceError::Internal)?,
            ),
            _ => None,
        };
        let cmd = SignInFailed {
            tenant: keys.id().to_owned(),
            user_id,
            charges: b.charges(),
            sealed_ip,
            at_ms: now_ms,
        };
        match self.core.write(call, b.group, cmd).await? {
            SignInFailedOutcome::SignInFailureRecorded => Ok(()),
            SignInFailedOutcome::Limited(Limited { retry_after_ms }) => {
                Err(super::core::limited(retry_after_ms))
            }
        }
    }

    /// `POST /v1/sessions/refresh`: rotates a refresh token (see the module doc).
    ///
    /// # Errors
    /// Scope; `invalid_refresh_token`, `refresh_token_reused`, `session_revoked`,
    /// `session_expired` (all 401); unavailable.
    pub async fn refresh(
        &self,
        call: &Call,
        refresh_token: &str,
    ) -> Result<RefreshedSession, ServiceError> {
        let principal = call.api_key(Scope::Write)?;
        at_least(
            call.context().deferred_pad.as_ref(),
            REFRESH_FAILURE_MIN_TIME,
            |r| {
                matches!(
                    r,
                    Err(ServiceError::InvalidRefreshToken
                        | ServiceError::RefreshTokenReused
                        | ServiceError::SessionRevoked
                        | ServiceError::SessionExpired)
                )
            },
            self.refresh_inner(call, principal, refresh_token),
        )
        .await
    }

    async fn refresh_inner(
        &self,
        call: &Call,
        principal: &Principal,
        refresh_token: &str,
    ) -> Result<RefreshedSession, ServiceError> {
        let keys = principal.keys();
        let token =
            RefreshToken::parse(refresh_token).map_err(|_| ServiceError::InvalidRefreshToken)?;
        let (group, region) = self
            .core
            .id_group(token.session_id(), "ses")
            .ok_or(ServiceError::InvalidRefreshToken)?;
        self.core.serve_here(group)?;
        // Wire version 3: the previous token retries only within the grace.
        let grace = if self.core.speaks(3) {
            Some(
                self.core
                    .settings(keys.id())
                    .await?
                    .refresh_retry_grace_secs,
            )
        } else {
            None
        };
        let key = keys.token_key();
        let successor = token.next(key);
        // What can be refused without a write is refused from a read: a token
        // that matches nothing of its session, a revoked or expired session, an
        // old token too far behind or whose walk does not reach the stored
        // hash. Only a token that would change something is proposed.
        let query = GetSession {
            tenant: keys.id().to_owned(),
            session_id: token.session_id().to_owned(),
        };
        let read = self.core.raft().read(group, query).await;
        let stored = read.map_err(|e| region_error(&region, e))?;
        let stored = stored.ok_or(ServiceError::InvalidRefreshToken)?;
        let presented = token.hash(key);
        let mut proof = None;
        let decision = refresh_decision(
            &stored,
            token.generation(),
            &presented,
            &successor.hash(key),
            None,
            unix_now(),
            grace,
        );
        match decision {
            RefreshOutcome::Invalid => return Err(ServiceError::InvalidRefreshToken),
            RefreshOutcome::Revoked => return Err(ServiceError::SessionRevoked),
            RefreshOutcome::Expired => return Err(ServiceError::SessionExpired),
            RefreshOutcome::NeedProof { current } => {
                let walked = self.prove(keys, &token, current).await?;
                if walked.1 != stored.current_hash {
                    return Err(ServiceError::InvalidRefreshToken);
                }
                proof = Some(walked);
            }
            RefreshOutcome::Rotated(_) | RefreshOutcome::Retried(_) | RefreshOutcome::Reused => {}
        }
        let kid = self.current_kid(keys).await?;
        for _ in 0..REFRESH_ATTEMPTS {
            let cmd = Refresh {
                tenant: keys.id().to_owned(),
                session_id: token.session_id().to_owned(),
                generation: token.generation(),
                presented_hash: presented.to_vec(),
                successor_hash: successor.hash(key).to_vec(),
                proof: proof.take(),
                kid: kid.clone(),
                at: unix_now(),
                request_id: call.context().request_id.clone(),
            };
            let result = match grace {
                Some(retry_grace_secs) => {
                    let cmd = RefreshWithin {
                        refresh: cmd,
                        retry_grace_secs,
                    };
                    self.core.write(call, group, cmd).await
                }
                None => self.core.write(call, group, cmd).await,
            };
            let session = match result.map_err(|e| region_error(&region, e))? {
                RefreshOutcome::Rotated(s) | RefreshOutcome::Retried(s) => s,
                RefreshOutcome::Reused => {
                    tracing::warn!(
                        tenant_id = keys.id(),
                        session_id = token.session_id(),
                        "refresh token reuse: session revoked"
                    );
                    return Err(ServiceError::RefreshTokenReused);
                }
                RefreshOutcome::Invalid => return Err(ServiceError::InvalidRefreshToken),
                RefreshOutcome::Revoked => return Err(ServiceError::SessionRevoked),
                RefreshOutcome::Expired => return Err(ServiceError::SessionExpired),
                RefreshOutcome::NeedProof { current } => {
                    proof = Some(self.prove(keys, &token, current).await?);
                    continue;
                }
            };
            let (access_token, expires_in) = self
                .access_token(keys, &session, session.last_refreshed_at)
                .await?;
            return Ok(RefreshedSession {
                session_id: session.id,
                access_token,
                token_type: "Bearer",
                expires_in,
                refresh_token: successor.encode().to_string(),
            });
        }
        // The session rotated under us between proof and proposal, repeatedly.
        Err(ServiceError::Conflict(
            "the session kept changing during the refresh; retry".to_owned(),
        ))
    }

    /// The proof that `token` is genuine: its walk forward to generation
    /// `current` and that token's keyed hash. The walk is bounded by `[limits]
    /// refresh_proof_walk_max` (a token further behind is refused unwalked)
    /// and runs on the blocking pool, never on an async worker.
    ///
    /// # Errors
    /// `invalid_refresh_token`: not behind `current`, or too far behind.
    async fn prove(
        &self,
        keys: &Arc<TenantKeys>,
        token: &RefreshToken,
        current: u64,
    ) -> Result<(u64, Vec<u8>), ServiceError> {
        let distance = current
            .checked_sub(token.generation())
            .ok_or(ServiceError::InvalidRefreshToken)?;
        let work = self.core.work();
        if distance > self.core.config().limits.refresh_proof_walk_max {
            work.proof_walks_refused.fetch_add(1, Ordering::Relaxed);
            return Err(ServiceError::InvalidRefreshToken);
        }
        let (keys, token) = (Arc::clone(keys), token.clone());
        let walks = Arc::clone(work);
        let walked = tokio::task::spawn_blocking(move || {
            walks.proof_walks.fetch_add(1, Ordering::Relaxed);
            walks
                .proof_walk_hmacs
                .fetch_add(distance, Ordering::Relaxed);
            token
                .walk_to(keys.token_key(), current)
                .map(|t| t.hash(keys.token_key()).to_vec())
        })
        .await
        .map_err(|_| ServiceError::Internal)?;
        let hash = walked.ok_or(ServiceError::InvalidRefreshToken)?;
        Ok((current, hash))
    }

    /// `POST /v1/sessions/{id}/revoke`.
    ///
    /// # Errors
    /// Scope, `session_not_found` (also for another tenant's session), unavailable.
    pub async fn revoke(&self, call: &Call, session_id: &str) -> Result<(), ServiceError> {
        let principal = call.api_key(Scope::Manage)?;
        let keys = principal.keys();
        let (group, region) = self
            .core
            .id_group(session_id, "ses")
            .ok_or(ServiceError::SessionNotFound)?;
        self.core.serve_here(group)?;
        let cmd = RevokeSession {
            tenant: keys.id().to_owned(),
            session_id: session_id.to_owned(),
            at: unix_now(),
            reason: "revoked".to_owned(),
        };
        let result = self.core.write(call, group, cmd).await;
        match result.map_err(|e| region_error(&region, e))? {
            RevokeSessionOutcome::SessionRevoked { .. } => {
                tracing::info!(tenant_id = keys.id(), session_id, "session revoked");
                Ok(())
            }
            RevokeSessionOutcome::SessionNotFound => Err(ServiceError::SessionNotFound),
        }
    }

    /// `POST /v1/users/{id}/sessions/revoke`: signs the user out everywhere,
    /// every session revoked in one entry (`session.revoked` each); before
    /// wire version 3, one entry per session.
    ///
    /// # Errors
    /// Scope (manage), `user_not_found`, unavailable.
    pub async fn revoke_all(&self, call: &Call, user_id: &str) -> Result<(), ServiceError> {
        let principal = call.api_key(Scope::Manage)?;
        let keys = principal.keys();
        if self.core.load_user(keys, user_id).await?.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        let (group, region) = self
            .core
            .id_group(user_id, "usr")
            .ok_or(ServiceError::UserNotFound)?;
        let now = unix_now();
        if self.core.speaks(3) {
            let cmd = RevokeUserSessions {
                tenant: keys.id().to_owned(),
                user_id: user_id.to_owned(),
                except: None,
                at: now,
                reason: "revoked".to_owned(),
            };
            let result = self.core.write(call, group, cmd).await;
            let revoked = result.map_err(|e| region_error(&region, e))?.revoked;
            tracing::info!(
                tenant_id = keys.id(),
                user_id,
                revoked,
                "signed out everywhere"
            );
            return Ok(());
        }
        let query = ListUserSessions {
            tenant: keys.id().to_owned(),
            user_id: user_id.to_owned(),
        };
        let answer = self.core.raft().read(group, query).await;
        let sessions = answer.map_err(|e| region_error(&region, e))?;
        for s in sessions.into_iter().filter(|s| s.is_active(now)) {
            let cmd = RevokeSession {
                tenant: keys.id().to_owned(),
                session_id: s.id,
                at: now,
                reason: "revoked".to_owned(),
            };
            let result = self.core.write(call, group, cmd).await;
            result.map_err(|e| region_error(&region, e))?;
        }
        Ok(())
    }

    /// `GET /v1/users/{id}/sessions`: the user's active sessions.
    ///
    /// # Errors
    /// Scope, `user_not_found`, unavailable.
    pub async fn list(&self, call: &Call, user_id: &str) -> Result<Vec<SessionView>, ServiceError> {
        let principal = call.api_key(Scope::Read)?;
        let keys = principal.keys();
        if self.core.load_user(keys, user_id).await?.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        let (group, region) = self
            .core
            .id_group(user_id, "usr")
            .ok_or(ServiceError::UserNotFound)?;
        let query = ListUserSessions {
            tenant: keys.id().to_owned(),
            user_id: user_id.to_owned(),
        };
        let answer = self.core.raft().read(group, query).await;
        let sessions = answer.map_err(|e| region_error(&region, e))?;
        let now = unix_now();
        let mut out = Vec::new();
        for s in sessions.into_iter().filter(|s| s.is_active(now)) {
            let details: Option<SessionDetails> = keys
                .open(group.0, &session_path(&s.id), &s.sealed_details)
                .ok()
                .and_then(|plain| codec::decode("session details", &plain).ok());
            let Some(details) = details else {
                tracing::error!(tenant_id = keys.id(), session_id = %s.id, "session details failed to decrypt");
                return Err(ServiceError::DecryptionFailed);
            };
            out.push(SessionView {
                expires_at: s.ends_at(),
                id: s.id,
                user_id: s.user_id,
                created_at: s.created_at,
                last_refreshed_at: s.last_refreshed_at,
                ip: details.ip,
                user_agent: details.user_agent,
            });
        }
        Ok(out)
    }

    /// `POST /v1/tokens/introspect` (RFC 7662): an access or refresh token of the
    /// caller's tenant is active while its signature (or hash), expiry and session
    /// hold — the session read linearizably, so an acknowledged revocation is
    /// always reflected. Anything else is `active: false`, never an error.
    ///
    /// # Errors
    /// Scope; unavailable.
    pub async fn introspect(
        &self,
        call: &Call,
        token: &str,
    ) -> Result<Introspection, ServiceError> {
        let principal = call.api_key(Scope::Read)?;
        let keys = principal.keys();
        if token.starts_with("rt1.") {
            return self.introspect_refresh(keys, token).await;
        }
        let Ok(kid) = jwt::header_kid(token) else {
            return Ok(Introspection::default());
        };
        let mut signing = self.core.signing(keys).await?;
        if signing.public(&kid).is_none() {
            // A rotation this replica has not applied yet, or a forged `kid`:
            // the keys as of the request's arrival decide.
            signing = self
                .core
                .signing_since(keys, call.context().arrival)
                .await?;
        }
        let Some(public) = signing.public(&kid) else {
            return Ok(Introspection::default());
        };
        let Ok(claims) = jwt::verify::<Claims>(token, public) else {
            return Ok(Introspection::default());
        };
        let now = unix_now();
        if claims.tid != keys.id()
            || claims.iss != issuer(keys.id())
            || now >= claims.exp
            || claims.iat > now.saturating_add(CLOCK_SKEW_SECS)
        {
            return Ok(Introspection::default());
        }
        match self.active_session(keys, &claims.sid, now).await? {
            Some(s) if s.user_id == claims.sub => Ok(Introspection {
                active: true,
                token_type: Some("access_token"),
                iss: Some(claims.iss),
                sub: Some(claims.sub),
                sid: Some(claims.sid),
                tid: Some(claims.tid),
                iat: Some(claims.iat),
                exp: Some(claims.exp),
                amr: Some(claims.amr),
                aal: Some(claims.aal),
            }),
            _ => Ok(Introspection::default()),
        }
    }

    async fn introspect_refresh(
        &self,
        keys: &TenantKeys,
        token: &str,
    ) -> Result<Introspection, ServiceError> {
        let Ok(token) = RefreshToken::parse(token) else {
            return Ok(Introspection::default());
        };
        let now = unix_now();
        let Some(s) = self.active_session(keys, token.session_id(), now).await? else {
            return Ok(Introspection::default());
        };
        let hash = token.hash(keys.token_key());
        if s.generation != token.generation()
            || !cairn_crypto::constant_time_eq(&hash, &s.current_hash)
        {
            return Ok(Introspection::default());
        }
        Ok(Introspection {
            active: true,
            token_type: Some("refresh_token"),
            iss: Some(issuer(keys.id())),
            sub: Some(s.user_id.clone()),
            sid: Some(s.id.clone()),
            tid: Some(keys.id().to_owned()),
            iat: Some(s.last_refreshed_at),
            exp: Some(s.ends_at()),
            amr: Some(s.amr),
            aal: Some("aal1".to_owned()),
        })
    }

    /// The session, read linearizably, if it exists and is active at `now`.
    async fn active_session(
        &self,
        keys: &TenantKeys,
        session_id: &str,
        now: u64,
    ) -> Result<Option<SessionRecord>, ServiceError> {
        let Some((group, region)) = self.core.id_group(session_id, "ses") else {
            return Ok(None);
        };
        let query = GetSession {
            tenant: keys.id().to_owned(),
            session_id: session_id.to_owned(),
        };
        let answer = self.core.raft().read(group, query).await;
        let session = answer.map_err(|e| region_error(&region, e))?;
        Ok(session.filter(|s| s.is_active(now)))
    }
}
