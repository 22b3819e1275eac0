//! Users as more than one feature reads them: by id (from the data group the id
//! names, opened under the tenant's keys) and by email (through the email index
//! in `meta`, which holds a blind index of the normalised email, never the email).

use cairn_cluster_config::META_GROUP;
use cairn_storage::sm::email_index::GetEmail;
use cairn_storage::sm::users::GetUser;
use cairn_storage::{codec, UserRecord};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::keyring::TenantKeys;
use super::routing::region_error;
use super::Core;
use crate::error::ServiceError;

const MAX_EMAIL_BYTES: usize = 254;

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

/// Normalises an email: trimmed, domain lowercased (the local part is kept as
/// given: it may be case-sensitive). Refuses what cannot be an address.
///
/// # Errors
/// [`ServiceError::InvalidRequest`] naming the rule broken (never echoing it).
pub fn normalize_email(raw: &str) -> Result<String, ServiceError> {
    let bad = |why: &str| ServiceError::InvalidRequest(format!("invalid email: {why}"));
    let e = raw.trim();
    if e.is_empty() {
        return Err(bad("empty"));
    }
    if e.len() > MAX_EMAIL_BYTES {
        return Err(bad("longer than 254 bytes"));
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return Err(bad("missing '@'"));
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(bad(
            "the part before '@' must be 1-64 characters without '@'",
        ));
    }
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    if domain.is_empty() || !labels_ok || domain.starts_with('[') {
        return Err(bad("the domain is not a host name"));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// The blind index of a normalised email (domain-separated from KV key names).
#[must_use]
pub fn email_index(keys: &TenantKeys, email: &str) -> Vec<u8> {
    let mut name = Zeroizing::new(Vec::with_capacity(6 + email.len()));
    name.extend_from_slice(b"email\0");
    name.extend_from_slice(email.as_bytes());
    keys.blind_index(&name)
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

    /// The user holding the normalised `email` in this tenant, opened (`None` if
    /// there is none).
    ///
    /// # Errors
    /// `meta` or the user's region unavailable.
    pub async fn user_by_email(
        &self,
        keys: &TenantKeys,
        email: &str,
    ) -> Result<Option<LoadedUser>, ServiceError> {
        let query = GetEmail {
            tenant_id: keys.id().to_owned(),
            index: email_index(keys, email),
        };
        let Some(entry) = self.inner.raft.read(META_GROUP, query).await? else {
            return Ok(None);
        };
        // A reservation whose user write has not landed (or a stale one) has no
        // user yet; an email changed since the index was read does not match.
        Ok(self
            .load_user(keys, &entry.user_id)
            .await?
            .filter(|u| u.plain.email == email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Alice.B@Example.COM ").expect("ok"),
            "Alice.B@example.com"
        );
        for bad in [
            "",
            "   ",
            "no-at",
            "@example.com",
            "a@",
            "a@b@c",
            "a b@example.com",
            "a@exa mple.com",
            "a@.example.com",
            "a@example..com",
            "a@-x.com",
            "a\u{0}@x.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(normalize_email(&long).is_err());
    }
}
