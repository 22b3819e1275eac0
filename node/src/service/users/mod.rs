//! Users: created, read, updated and deleted in their region's data group, with
//! the email → user index in `meta`.
//!
//! - The user record (email, Argon2id password hash) is sealed before it is
//!   proposed, bound to the tenant, group and `user/<id>`.
//! - The email index holds a blind index of the normalised email (HMAC under the
//!   tenant's blind-index key), never the email. Reserving it is one `meta` entry,
//!   so an email is unique per tenant across every region; the user's region write
//!   follows. A reservation whose user write never happened (the node died in
//!   between) is taken over once it is older than [`STALE_RESERVATION_SECS`] and
//!   its user provably does not exist.
//! - Passwords are hashed on the blocking pool, a bounded number at a time, before
//!   anything is proposed; plaintext passwords live in `Zeroizing` buffers only.
//! - User ids carry their data group (`usr_<group>_<128-bit hex>`), so any node
//!   routes a user request without a lookup; an id naming no data group, or one
//!   of another tenant, is simply not found.

use std::sync::Arc;

use cairn_cluster_config::{GroupId, META_GROUP};
use cairn_raft::RaftNodeError;
use cairn_storage::sm::email_index::{ReleaseEmail, ReserveEmail, ReserveEmailOutcome};
use cairn_storage::sm::users::{
    ChangeUser, CreateUser, CreateUserOutcome, DeleteUser, DeleteUserOutcome, GetFailedSignIns,
    ListUsers, UpdateUser, UpdateUserOutcome, UserField,
};
use cairn_storage::sm::ChangePassword;
use cairn_storage::{codec, EmailEntry, UserRecord};
use zeroize::Zeroizing;

use super::core::{
    email_index, failed_path, new_id, region_error, stored_indexes, unix_now, user_path, Call,
    Core, Email, LoadedUser, Scope, TenantKeys, UserPlain,
};
use crate::error::ServiceError;

/// A reservation older than this whose user does not exist may be taken over.
pub const STALE_RESERVATION_SECS: u64 = 60;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;
const ATTEMPTS: usize = 5;

/// A user as the API shows it (never the password hash).
#[derive(Clone)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub region: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub has_password: bool,
    pub failed_sign_ins: FailedSignInsView,
}

/// A user's failed sign-ins since its last successful one.
#[derive(Clone, Default)]
pub struct FailedSignInsView {
    pub count: u64,
    pub last_at: Option<u64>,
    pub last_ip: Option<String>,
}

impl std::fmt::Debug for UserView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserView")
            .field("id", &self.id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The fields a PATCH may change.
#[derive(Default)]
pub struct UserPatch {
    pub email: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// With a new password: the session that survives it (every other
    /// session of the user is revoked in the same entry).
    pub keep_session_id: Option<String>,
}

/// Checks a new password's length (in characters).
///
/// # Errors
/// [`ServiceError::InvalidRequest`].
pub fn validate_password(password: &str) -> Result<(), ServiceError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(ServiceError::InvalidRequest(format!(
            "password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters"
        )))
    }
}

/// Users of the calling tenant (API key scopes).
#[derive(Clone)]
pub struct UserService {
    core: Core,
}

impl UserService {
    #[must_use]
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    fn seal_user(
        keys: &TenantKeys,
        group: GroupId,
        user_id: &str,
        plain: &UserPlain,
    ) -> Result<Vec<u8>, ServiceError> {
        let bytes = Zeroizing::new(codec::encode("user", plain).map_err(|e| {
            tracing::error!(error = %e, "encoding a user");
            ServiceError::Internal
        })?);
        keys.seal(group.0, &user_path(user_id), &bytes)
            .map_err(|e| {
                tracing::error!(error = %e, tenant_id = keys.id(), "sealing a user");
                ServiceError::Internal
            })
    }

    /// Reserves `index` for `user_id` in `meta` (see the module doc on takeover).
    async fn reserve_email(
        &self,
        call: &Call,
        keys: &TenantKeys,
        index: &[u8],
        user_id: &str,
        region: &str,
    ) -> Result<(), ServiceError> {
        let mut replace = None;
        for _ in 0..ATTEMPTS {
            let cmd = ReserveEmail {
                tenant_id: keys.id().to_owned(),
                email_index: index.to_vec(),
                entry: EmailEntry {
                    user_id: user_id.to_owned(),
                    region: region.to_owned(),
                    reserved_at: unix_now(),
                },
                replace: replace.take(),
            };
            match self.core.write(call, META_GROUP, cmd).await? {
                ReserveEmailOutcome::EmailReserved => return Ok(()),
                ReserveEmailOutcome::TenantNotFound => return Err(ServiceError::TenantNotFound),
                ReserveEmailOutcome::EmailTaken(holder) => {
                    let stale =
                        unix_now().saturating_sub(holder.reserved_at) >= STALE_RESERVATION_SECS;
                    if !stale || self.core.load_user(keys, &holder.user_id).await?.is_some() {
                        return Err(ServiceError::EmailTaken);
                    }
                    tracing::warn!(
                        tenant_id = keys.id(),
                        holder = %holder.user_id,
                        "taking over an email reservation whose user was never created"
                    );
                    replace = Some(holder.user_id);
                }
            }
        }
        Err(ServiceError::EmailTaken)
    }

    /// Releases `index` if `user_id` holds it; failures are logged (a leftover
    /// reservation only blocks that email until it is taken over as stale).
    async fn release_email(&self, call: &Call, keys: &TenantKeys, index: &[u8], user_id: &str) {
        let cmd = ReleaseEmail {
            tenant_id: keys.id().to_owned(),
            email_index: index.to_vec(),
            user_id: user_id.to_owned(),
        };
        if let Err(e) = self.core.write(call, META_GROUP, cmd).await {
            tracing::warn!(tenant_id = keys.id(), user_id, error = %e, "email reservation not released");
        }
    }

    /// `POST /v1/users`.
    ///
    /// # Errors
    /// Scope, validation, `email_taken`, an unknown region, an unavailable group.
    pub async fn create(
        &self,
        call: &Call,
        email: &str,
        password: Option<Zeroizing<String>>,
        region: Option<&str>,
    ) -> Result<UserView, ServiceError> {
        let principal = call.api_key(Scope::Write)?;
        let keys = Arc::clone(principal.keys());
        let email = Email::parse(email)?;
        if let Some(p) = &password {
            validate_password(p)?;
            self.core.check_breached(keys.id(), p).await?;
        }
        let region = match region {
            Some(r) if self.core.config().region(r).is_some() => r.to_owned(),
            Some(r) => {
                return Err(ServiceError::InvalidRequest(format!(
                    "unknown region {r:?}"
                )))
            }
            None => keys.record().region.clone(),
        };
        let group = self.core.region_group(&region)?;
        // Before the email is reserved: a relayed request starts afresh.
        self.core.serve_here(group)?;
        let password_hash = match password {
            Some(p) => Some(self.core.hash_password(keys.id(), p).await?),
            None => None,
        };
        let user_id = new_id("usr", group);
        let index = email_index(&keys, email.key());
        self.reserve_email(call, &keys, &index, &user_id, &region)
            .await?;
        let now = unix_now();
        let plain = UserPlain {
            email: email.display().to_owned(),
            password_hash,
        };
        let record = UserRecord {
            id: user_id.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
            sealed: Self::seal_user(&keys, group, &user_id, &plain)?,
        };
        let cmd = CreateUser {
            tenant: keys.id().to_owned(),
            user: record,
        };
        match self.core.write(call, group, cmd).await {
            Ok(CreateUserOutcome::UserCreated) => {
                tracing::info!(tenant_id = keys.id(), user_id, region, "user created");
                Ok(UserView {
                    id: user_id,
                    email: plain.email.clone(),
                    region,
                    created_at: now,
                    updated_at: now,
                    has_password: plain.password_hash.is_some(),
                    failed_sign_ins: FailedSignInsView::default(),
                })
            }
            // The user id is fresh randomness: a collision is a bug. Nothing was
            // written, so the reservation goes.
            Ok(CreateUserOutcome::IdCollision) => {
                tracing::error!(tenant_id = keys.id(), user_id, "user id collided");
                self.release_email(call, &keys, &index, &user_id).await;
                Err(ServiceError::Internal)
            }
            Err(e @ RaftNodeError::NoLeader { .. }) => {
                // Nothing applied: the reservation goes too.
                self.release_email(call, &keys, &index, &user_id).await;
                Err(region_error(&region, e))
            }
            // The user may exist: keep the reservation (it is taken over as stale
            // if the user write did not happen).
            Err(e) => Err(region_error(&region, e)),
        }
    }

    /// `GET /v1/users/{id}`.
    ///
    /// # Errors
    /// Scope, `user_not_found` (also for another tenant's user), unavailable.
    pub async fn get(&self, call: &Call, user_id: &str) -> Result<UserView, ServiceError> {
        let principal = call.api_key(Scope::Read)?;
        let user = self
            .core
            .load_user(principal.keys(), user_id)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        let failed = self.failed_sign_ins(principal.keys(), &user).await?;
        Ok(view(&user, failed))
    }

    /// The user's failed sign-ins (none before wire version 3).
    async fn failed_sign_ins(
        &self,
        keys: &TenantKeys,
        user: &LoadedUser,
    ) -> Result<FailedSignInsView, ServiceError> {
        let Some((group, _)) = self.core.id_group(&user.record.id, "usr") else {
            return Ok(FailedSignInsView::default());
        };
        if !self.core.speaks(3) {
            return Ok(FailedSignInsView::default());
        }
        let q = GetFailedSignIns {
            tenant: keys.id().to_owned(),
            user_id: user.record.id.clone(),
        };
        let read = self.core.raft().read(group, q).await;
        let Some(f) = read.map_err(|e| region_error(&user.region, e))? else {
            return Ok(FailedSignInsView::default());
        };
        let last_ip = match &f.sealed_last_ip {
            Some(sealed) => {
                let ip = keys
                    .open(group.0, &failed_path(&user.record.id), sealed)
                    .map_err(|_| ServiceError::DecryptionFailed)?;
                Some(String::from_utf8_lossy(&ip).into_owned())
            }
            None => None,
        };
        Ok(FailedSignInsView {
            count: f.count,
            last_at: Some(f.last_at),
            last_ip,
        })
    }

    /// `GET /v1/users?cursor&limit`: a page of the tenant's users, ordered
    /// by id across its regions, and the cursor of the next page (`None`: the
    /// last page). The cursor is the last id shown.
    ///
    /// # Errors
    /// Scope, `invalid_request` (limit outside 1-100, a cursor that is not
    /// one), a region unavailable.
    pub async fn list(
        &self,
        call: &Call,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<UserView>, Option<String>), ServiceError> {
        let principal = call.api_key(Scope::Read)?;
        let keys = principal.keys();
        let limit = limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(ServiceError::InvalidRequest(
                "limit must be 1-100".to_owned(),
            ));
        }
        if let Some(c) = cursor {
            if self.core.id_group(c, "usr").is_none() {
                return Err(ServiceError::InvalidRequest(
                    "cursor is not one this API returned".to_owned(),
                ));
            }
        }
        if !self.core.speaks(3) {
            return Err(ServiceError::InvalidRequest(
                "listing users needs the cluster at wire version 3".to_owned(),
            ));
        }
        let mut page: Vec<(GroupId, String, UserRecord)> = Vec::new();
        let mut more = false;
        for g in self.core.config().groups() {
            let (Some(region), true) = (g.region.clone(), g.id != META_GROUP) else {
                continue;
            };
            let q = ListUsers {
                tenant: keys.id().to_owned(),
                after: cursor.map(str::to_owned),
                limit,
            };
            let read = self.core.raft().read(g.id, q).await;
            let records = read.map_err(|e| region_error(&region, e))?;
            more |= records.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
            page.extend(records.into_iter().map(|r| (g.id, region.clone(), r)));
        }
        page.sort_by(|a, b| a.2.id.cmp(&b.2.id));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        more |= page.len() > limit;
        page.truncate(limit);
        let mut users = Vec::with_capacity(page.len());
        for (group, region, record) in page {
            let user = Core::open_user(keys, group, region, record)?;
            let failed = self.failed_sign_ins(keys, &user).await?;
            users.push(view(&user, failed));
        }
        let next = if more {
            users.last().map(|u| u.id.clone())
        } else {
            None
        };
        Ok((users, next))
    }

    /// `POST /v1/users/lookup {"email"}`: the user holding `email` (a POST, so
    /// the address never lands in a URL or an access log; `meta` holds only
    /// its blind index).
    ///
    /// # Errors
    /// Scope, `invalid_request` (not an email), `user_not_found`, unavailable.
    pub async fn lookup(&self, call: &Call, email: &str) -> Result<UserView, ServiceError> {
        let principal = call.api_key(Scope::Read)?;
        let email = Email::parse(email)?;
        let user = self
            .core
            .user_by_email(principal.keys(), &email)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        let failed = self.failed_sign_ins(principal.keys(), &user).await?;
        Ok(view(&user, failed))
    }

    /// `PATCH /v1/users/{id}`: a new email (unique per tenant) and/or password.
    ///
    /// # Errors
    /// Scope, validation, `email_taken`, `user_not_found`, unavailable, races.
    pub async fn update(
        &self,
        call: &Call,
        user_id: &str,
        patch: UserPatch,
    ) -> Result<UserView, ServiceError> {
        let principal = call.api_key(Scope::Write)?;
        if patch.email.is_none() && patch.password.is_none() {
            return Err(ServiceError::InvalidRequest(
                "nothing to update: give email and/or password".to_owned(),
            ));
        }
        let keys = Arc::clone(principal.keys());
        let new_email = patch.email.as_deref().map(Email::parse).transpose()?;
        if let Some(p) = &patch.password {
            validate_password(p)?;
            self.core.check_breached(keys.id(), p).await?;
        }
        let new_hash = match patch.password {
            Some(p) => Some(self.core.hash_password(keys.id(), p).await?),
            None => None,
        };
        for _ in 0..ATTEMPTS {
            let user = self
                .core
                .load_user(&keys, user_id)
                .await?
                .ok_or(ServiceError::UserNotFound)?;
            let (group, _) = self
                .core
                .id_group(user_id, "usr")
                .ok_or(ServiceError::UserNotFound)?;
            // A new address (a new spelling of the same one included) is
            // reserved under its key; what the old one was held under goes.
            let changed_email = new_email
                .as_ref()
                .filter(|e| e.display() != user.plain.email);
            let new_index = changed_email.map(|e| email_index(&keys, e.key()));
            if let Some(index) = &new_index {
                self.reserve_email(call, &keys, index, user_id, &user.region)
                    .await?;
            }
            let plain = UserPlain {
                email: changed_email
                    .map_or_else(|| user.plain.email.clone(), |e| e.display().to_owned()),
                password_hash: new_hash
                    .clone()
                    .or_else(|| user.plain.password_hash.clone()),
            };
            let cmd = UpdateUser {
                tenant: keys.id().to_owned(),
                user_id: user_id.to_owned(),
                expected_version: user.record.version,
                sealed: Self::seal_user(&keys, group, user_id, &plain)?,
                at: unix_now(),
            };
            // Which sealed fields change is known here only: the log records it
            // (wire version 2) so the events say `password.changed`.
            let result = if self.core.traced_writes() {
                let changed = [
                    changed_email.as_ref().map(|_| UserField::Email),
                    new_hash.as_ref().map(|_| UserField::Password),
                ]
                .into_iter()
                .flatten()
                .collect();
                let cmd = ChangeUser {
                    update: cmd,
                    changed,
                };
                // A new password ends every other session, in the same entry
                // (wire version 3).
                if new_hash.is_some() && self.core.speaks(3) {
                    let cmd = ChangePassword {
                        change: cmd,
                        keep_session: patch.keep_session_id.clone(),
                    };
                    self.core.write(call, group, cmd).await
                } else {
                    self.core.write(call, group, cmd).await
                }
            } else {
                self.core.write(call, group, cmd).await
            };
            match result.map_err(|e| region_error(&user.region, e))? {
                UpdateUserOutcome::UserUpdated(record) => {
                    if let Some(new) = &new_index {
                        for old in stored_indexes(&keys, &user.plain.email) {
                            if old != *new {
                                self.release_email(call, &keys, &old, user_id).await;
                            }
                        }
                    }
                    tracing::info!(tenant_id = keys.id(), user_id, "user updated");
                    let updated = LoadedUser {
                        record,
                        plain,
                        region: user.region,
                    };
                    let failed = self.failed_sign_ins(&keys, &updated).await?;
                    return Ok(view(&updated, failed));
                }
                UpdateUserOutcome::UserVersionConflict { .. } => {}
                UpdateUserOutcome::UserNotFound => {
                    if let Some(index) = &new_index {
                        self.release_email(call, &keys, index, user_id).await;
                    }
                    return Err(ServiceError::UserNotFound);
                }
            }
        }
        Err(ServiceError::Conflict(
            "the user kept changing while being updated; retry".to_owned(),
        ))
    }

    /// `DELETE /v1/users/{id}`: the user and every session of it, in one entry;
    /// then its email is released.
    ///
    /// # Errors
    /// Scope, `user_not_found`, unavailable.
    pub async fn delete(&self, call: &Call, user_id: &str) -> Result<(), ServiceError> {
        let principal = call.api_key(Scope::Delete)?;
        let keys = Arc::clone(principal.keys());
        let user = self
            .core
            .load_user(&keys, user_id)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        let (group, _) = self
            .core
            .id_group(user_id, "usr")
            .ok_or(ServiceError::UserNotFound)?;
        let cmd = DeleteUser {
            tenant: keys.id().to_owned(),
            user_id: user_id.to_owned(),
            at: unix_now(),
        };
        let result = self.core.write(call, group, cmd).await;
        match result.map_err(|e| region_error(&user.region, e))? {
            DeleteUserOutcome::UserDeleted { sessions } => {
                for index in stored_indexes(&keys, &user.plain.email) {
                    self.release_email(call, &keys, &index, user_id).await;
                }
                tracing::info!(tenant_id = keys.id(), user_id, sessions, "user deleted");
                Ok(())
            }
            DeleteUserOutcome::UserNotFound => Err(ServiceError::UserNotFound),
        }
    }
}

fn view(u: &LoadedUser, failed_sign_ins: FailedSignInsView) -> UserView {
    UserView {
        id: u.record.id.clone(),
        email: u.plain.email.clone(),
        region: u.region.clone(),
        created_at: u.record.created_at,
        updated_at: u.record.updated_at,
        has_password: u.plain.password_hash.is_some(),
        failed_sign_ins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"é".repeat(256)).is_ok());
        assert!(validate_password(&"é".repeat(257)).is_err());
    }
}
