//! Users as more than one feature reads them: by id (from the data group the id
//! names, opened under the tenant's keys) and by email (through the email index
//! in `meta`, which holds a blind index of the normalised email, never the email).

use cairn_cluster_config::META_GROUP;
use cairn_storage::sm::email_index::FindEmail;
use cairn_storage::sm::users::GetUser;
use cairn_storage::{codec, UserRecord};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::email::{email_index, Email};
use super::keyring::TenantKeys;
use super::routing::region_error;
use super::Core;
use crate::error::ServiceError;

/// The sealed part of a user record.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct UserPlain {
    pub email: String,
    pub password_hash: Option<String>,
}

/// A user read from its group and opened.
pub struct LoadedUser {
    pub record: UserRecord,
    pub plain: UserPlain,
    pub region: String,
}

/// The key path a user record is sealed under.
#[must_use]
pub fn user_path(user_id: &str) -> Vec<u8> {
    format!("user/{user_id}").into_bytes()
}

/// The key path a user's last failed sign-in address is sealed under.
#[must_use]
pub fn failed_path(user_id: &str) -> Vec<u8> {
    format!("failed/{user_id}").into_bytes()
}

impl Core {
    /// Reads a user of `keys`' tenant linearizably and opens it. `None`: no such
    /// user for this tenant (or an id that routes nowhere).
    ///
    /// # Errors
    /// The user's region unavailable; a record that fails to open.
    pub async fn load_user(
        &self,
        keys: &TenantKeys,
        user_id: &str,
    ) -> Result<Option<LoadedUser>, ServiceError> {
        let Some((group, region)) = self.id_group(user_id, "usr") else {
            return Ok(None);
        };
        let query = GetUser {
            tenant: keys.id().to_owned(),
            user_id: user_id.to_owned(),
        };
        let answer = self.inner.raft.read(group, query).await;
        let Some(record) = answer.map_err(|e| region_error(&region, e))? else {
            return Ok(None);
        };
        Self::open_user(keys, group, region, record).map(Some)
    }

    /// Opens a user record read from `group` (of `region`).
    ///
    /// # Errors
    /// `decryption_failed`.
    pub fn open_user(
        keys: &TenantKeys,
        group: cairn_cluster_config::GroupId,
        region: String,
        record: UserRecord,
    ) -> Result<LoadedUser, ServiceError> {
        let user_id = record.id.as_str();
        let opened = keys
            .open(group.0, &user_path(user_id), &record.sealed)
            .map_err(|e| {
                tracing::error!(error = %e, tenant_id = keys.id(), group = group.0, "stored user failed to decrypt");
                ServiceError::DecryptionFailed
            })?;
        let plain: UserPlain =
            codec::decode("user", &opened).map_err(|_| ServiceError::DecryptionFailed)?;
        Ok(LoadedUser {
            record,
            plain,
            region,
        })
    }

    /// The user known by `email` in this tenant, opened (`None` if there is
    /// none): a holder of its key or, until the email index is re-indexed, of its
    /// earlier key, whose stored address has the same key.
    ///
    /// # Errors
    /// `email_ambiguous` if two users have that key (users the earlier rule kept
    /// apart); `meta` or the user's region unavailable.
    pub async fn user_by_email(
        &self,
        keys: &TenantKeys,
        email: &Email,
    ) -> Result<Option<LoadedUser>, ServiceError> {
        let earlier = email.earlier_key();
        let query = FindEmail {
            tenant_id: keys.id().to_owned(),
            index: email_index(keys, email.key()),
            fallback: (earlier != email.key()).then(|| email_index(keys, &earlier)),
        };
        let holders = self.inner.raft.read(META_GROUP, query).await?;
        let mut found: Option<LoadedUser> = None;
        for holder in holders {
            // A reservation whose user write has not landed (or a stale one) has
            // no user yet; an email changed since the index was read does not
            // match.
            let Some(user) = self.load_user(keys, &holder.user_id).await? else {
                continue;
            };
            if !email.is(&user.plain.email) {
                continue;
            }
            if found.is_some() {
                return Err(ServiceError::EmailAmbiguous);
            }
            found = Some(user);
        }
        Ok(found)
    }
}
