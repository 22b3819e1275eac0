//! The `meta` group's directory for the auth API: tenant API keys, token signing
//! keys, the email routing index, and tenant deletion.
//!
//! Nothing here is personal data or a usable secret: API keys are stored as
//! hashes, signing keys' private halves sealed under the tenant's data key (by the
//! node, before proposing), and emails only as a blind index (an HMAC under the
//! tenant's blind-index subkey). What applying these commands guarantees on every
//! replica:
//! - an email (blind index) belongs to at most one user of a tenant: reserving it
//!   is decided by the log, so two nodes creating the same user cannot both win;
//! - an API key or signing key exists only for an existing tenant, and deleting a
//!   tenant deletes its keys and its email index in the same entry;
//! - a signing key rotation keeps the retired public key (for verifiers) until
//!   every token it signed has expired.

use serde::{Deserialize, Serialize};

use crate::keys::{
    row_key, tenant_row, CF_SM, SM_API_KEY, SM_EMAIL, SM_MASTER, SM_SIGNING, SM_TENANT,
    SM_TENANT_API_KEY, SM_TENANT_NAME,
};
use crate::kv::ApplyBatch;
use crate::state::GroupState;
use crate::tenants::{MasterKeyState, TenantRecord};
use crate::{codec, Result};

/// A tenant API key: only its hash is stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant_id: String,
    /// The key's hash (SHA-256 over the domain-separated id and secret).
    pub hash: Vec<u8>,
    /// Sorted, no duplicates: a subset of `read`, `write`, `manage`, `delete`.
    pub scopes: Vec<String>,
    pub created_at: u64,
}

/// Hashes are not secrets, but they stay out of logs all the same.
impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One token signing key of a tenant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// The JWK thumbprint of the public key (the JWT header's `kid`).
    pub kid: String,
    /// Ed25519 public key, 32 bytes.
    pub public: Vec<u8>,
    /// The private key, sealed under the tenant's data key by the proposing node.
    pub sealed_private: Vec<u8>,
    pub created_at: u64,
    /// When a newer key replaced it (it then only verifies, never signs).
    pub retired_at: Option<u64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A tenant's signing keys, oldest first; the last one signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub keys: Vec<SigningKeyRecord>,
}

impl SigningKeys {
    #[must_use]
    pub fn current(&self) -> Option<&SigningKeyRecord> {
        self.keys.last()
    }
}

/// Where a user with a given email lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailEntry {
    pub user_id: String,
    pub region: String,
    /// Unix seconds when the email was reserved for `user_id`.
    pub reserved_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryCommand {
    AddApiKey(ApiKeyRecord),
    RevokeApiKey {
        tenant_id: String,
        key_id: String,
    },
    /// Makes `key` the signing key; the previous one is retired at `at`, and keys
    /// retired before `at - keep_retired_secs` are dropped.
    RotateSigningKey {
        tenant_id: String,
        key: SigningKeyRecord,
        at: u64,
        keep_retired_secs: u64,
    },
    /// Reserves `email_index` for `user_id` unless another user holds it. With
    /// `replace`, takes it over only from that user (a reservation whose user was
    /// never created).
    ReserveEmail {
        tenant_id: String,
        email_index: Vec<u8>,
        entry: EmailEntry,
        replace: Option<String>,
    },
    /// Releases `email_index` if `user_id` holds it.
    ReleaseEmail {
        tenant_id: String,
        email_index: Vec<u8>,
        user_id: String,
    },
    /// Deletes a tenant: its record, name, API keys, signing keys and email index.
    /// (Its data in the region groups is unreadable from then on — the data keys
    /// are gone — and purged group by group.)
    DeleteTenant {
        tenant_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryOutcome {
    ApiKeyAdded,
    ApiKeyRevoked,
    ApiKeyNotFound,
    SigningKeyRotated(SigningKeys),
    EmailReserved,
    /// Another user holds the email; nothing changed.
    EmailTaken(EmailEntry),
    EmailReleased {
        existed: bool,
    },
    TenantDeleted(TenantRecord),
    TenantNotFound,
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
}

pub(crate) fn api_key_key(group: u64, key_id: &str) -> Vec<u8> {
    row_key(group, SM_API_KEY, key_id.as_bytes())
}

fn tenant_api_key_key(group: u64, tenant_id: &str, key_id: &str) -> Vec<u8> {
    tenant_row(group, SM_TENANT_API_KEY, tenant_id, &[key_id.as_bytes()])
}

fn email_key(group: u64, tenant_id: &str, index: &[u8]) -> Vec<u8> {
    tenant_row(group, SM_EMAIL, tenant_id, &[index])
}

pub(crate) fn signing_key(group: u64, tenant_id: &str) -> Vec<u8> {
    tenant_row(group, SM_SIGNING, tenant_id, &[])
}

fn tenant_key(group: u64, id: &str) -> Vec<u8> {
    row_key(group, SM_TENANT, id.as_bytes())
}

impl ApplyBatch<'_> {
    fn decode_row<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.get_raw(key)?
            .map(|b| codec::decode(what, &b))
            .transpose()
    }

    fn tenant_exists(&self, id: &str) -> Result<bool> {
        Ok(self.get_raw(&tenant_key(self.group(), id))?.is_some())
    }

    /// Stores the first API key and signing key of a tenant created in this batch
    /// (the caller checked the key's tenant and id).
    pub(crate) fn put_tenant_credentials(
        &mut self,
        tenant_id: &str,
        api_key: Option<&ApiKeyRecord>,
        signing: Option<&SigningKeyRecord>,
    ) -> Result<()> {
        let group = self.group();
        if let Some(k) = api_key {
            self.put_raw(api_key_key(group, &k.id), codec::encode("api key", k)?)?;
            self.put_raw(tenant_api_key_key(group, tenant_id, &k.id), Vec::new())?;
        }
        if let Some(s) = signing {
            let keys = SigningKeys {
                keys: vec![s.clone()],
            };
            self.put_raw(
                signing_key(group, tenant_id),
                codec::encode("signing keys", &keys)?,
            )?;
        }
        Ok(())
    }

    /// Applies one directory command (`meta` group).
    ///
    /// # Errors
    /// Reading current state failed or found a corrupt record.
    pub fn apply_directory(&mut self, cmd: &DirectoryCommand) -> Result<DirectoryOutcome> {
        let group = self.group();
        match cmd {
            DirectoryCommand::AddApiKey(record) => {
                if !self.tenant_exists(&record.tenant_id)? {
                    return Ok(DirectoryOutcome::TenantNotFound);
                }
                if self.get_raw(&api_key_key(group, &record.id))?.is_some() {
                    return Ok(DirectoryOutcome::IdCollision);
                }
                self.put_raw(
                    api_key_key(group, &record.id),
                    codec::encode("api key", record)?,
                )?;
                self.put_raw(
                    tenant_api_key_key(group, &record.tenant_id, &record.id),
                    Vec::new(),
                )?;
                Ok(DirectoryOutcome::ApiKeyAdded)
            }
            DirectoryCommand::RevokeApiKey { tenant_id, key_id } => {
                let existing: Option<ApiKeyRecord> =
                    self.decode_row("api key", &api_key_key(group, key_id))?;
                match existing {
                    Some(k) if k.tenant_id == *tenant_id => {
                        self.delete_raw(api_key_key(group, key_id))?;
                        self.delete_raw(tenant_api_key_key(group, tenant_id, key_id))?;
                        Ok(DirectoryOutcome::ApiKeyRevoked)
                    }
                    // Another tenant's key is "not found" for this tenant.
                    _ => Ok(DirectoryOutcome::ApiKeyNotFound),
                }
            }
            DirectoryCommand::RotateSigningKey {
                tenant_id,
                key,
                at,
                keep_retired_secs,
            } => {
                if !self.tenant_exists(tenant_id)? {
                    return Ok(DirectoryOutcome::TenantNotFound);
                }
                let row = signing_key(group, tenant_id);
                let mut keys: SigningKeys =
                    self.decode_row("signing keys", &row)?.unwrap_or_default();
                if keys.keys.iter().any(|k| k.kid == key.kid) {
                    return Ok(DirectoryOutcome::IdCollision);
                }
                let horizon = at.saturating_sub(*keep_retired_secs);
                keys.keys
                    .retain(|k| k.retired_at.is_none_or(|r| r >= horizon));
                for k in &mut keys.keys {
                    k.retired_at.get_or_insert(*at);
                }
                let mut new = key.clone();
                new.retired_at = None;
                keys.keys.push(new);
                self.put_raw(row, codec::encode("signing keys", &keys)?)?;
                Ok(DirectoryOutcome::SigningKeyRotated(keys))
            }
            DirectoryCommand::ReserveEmail {
                tenant_id,
                email_index,
                entry,
                replace,
            } => {
                if !self.tenant_exists(tenant_id)? {
                    return Ok(DirectoryOutcome::TenantNotFound);
                }
                let row = email_key(group, tenant_id, email_index);
                let current: Option<EmailEntry> = self.decode_row("email entry", &row)?;
                match (&current, replace) {
                    (None, _) => {}
                    (Some(c), _) if c.user_id == entry.user_id => {
                        return Ok(DirectoryOutcome::EmailReserved)
                    }
                    (Some(c), Some(old)) if c.user_id == *old => {}
                    (Some(c), _) => return Ok(DirectoryOutcome::EmailTaken(c.clone())),
                }
                self.put_raw(row, codec::encode("email entry", entry)?)?;
                Ok(DirectoryOutcome::EmailReserved)
            }
            DirectoryCommand::ReleaseEmail {
                tenant_id,
                email_index,
                user_id,
            } => {
                let row = email_key(group, tenant_id, email_index);
                let current: Option<EmailEntry> = self.decode_row("email entry", &row)?;
                match current {
                    Some(c) if c.user_id == *user_id => {
                        self.delete_raw(row)?;
                        Ok(DirectoryOutcome::EmailReleased { existed: true })
                    }
                    _ => Ok(DirectoryOutcome::EmailReleased { existed: false }),
                }
            }
            DirectoryCommand::DeleteTenant { tenant_id } => {
                let Some(tenant): Option<TenantRecord> =
                    self.decode_row("tenant record", &tenant_key(group, tenant_id))?
                else {
                    return Ok(DirectoryOutcome::TenantNotFound);
                };
                let keys_prefix = tenant_row(group, SM_TENANT_API_KEY, tenant_id, &[]);
                let key_ids: Vec<Vec<u8>> = self
                    .scan_prefix(&keys_prefix)?
                    .into_keys()
                    .map(|k| k[keys_prefix.len()..].to_vec())
                    .collect();
                for id in key_ids {
                    self.delete_raw(row_key(group, SM_API_KEY, &id))?;
                }
                self.delete_prefix(&keys_prefix)?;
                self.delete_prefix(&tenant_row(group, SM_EMAIL, tenant_id, &[]))?;
                self.delete_raw(signing_key(group, tenant_id))?;
                self.delete_raw(row_key(group, SM_TENANT_NAME, tenant.name.as_bytes()))?;
                self.delete_raw(tenant_key(group, tenant_id))?;
                Ok(DirectoryOutcome::TenantDeleted(tenant))
            }
        }
    }
}

/// What authenticating an API key needs, read at one applied index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub key: ApiKeyRecord,
    pub tenant: TenantRecord,
}

impl GroupState {
    fn decode_local<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.get_raw(key)?
            .map(|b| codec::decode(what, &b))
            .transpose()
    }

    /// An API key with its tenant (`None` if either is gone) and the master key
    /// state, read from one RocksDB snapshot (so the tenant's wrapped keys and the
    /// master key they are wrapped under describe the same applied index).
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn api_key_view(
        &self,
        key_id: &str,
    ) -> Result<(Option<ApiKeyView>, Option<MasterKeyState>)> {
        let db = self.engine().db();
        let cf = self.engine().cf(CF_SM)?;
        let snap = db.snapshot();
        let group = self.group();
        let read = |key: &[u8]| -> Result<Option<Vec<u8>>> { Ok(snap.get_cf(cf, key)?) };
        let master: Option<MasterKeyState> = read(&row_key(group, SM_MASTER, b""))?
            .map(|b| codec::decode("master key state", &b))
            .transpose()?;
        let Some(key): Option<ApiKeyRecord> = read(&api_key_key(group, key_id))?
            .map(|b| codec::decode("api key", &b))
            .transpose()?
        else {
            return Ok((None, master));
        };
        let tenant: Option<TenantRecord> = read(&tenant_key(group, &key.tenant_id))?
            .map(|b| codec::decode("tenant record", &b))
            .transpose()?;
        Ok((tenant.map(|tenant| ApiKeyView { key, tenant }), master))
    }

    /// A tenant's signing keys (empty if none or no such tenant).
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn signing_keys(&self, tenant_id: &str) -> Result<SigningKeys> {
        Ok(self
            .decode_local("signing keys", &signing_key(self.group(), tenant_id))?
            .unwrap_or_default())
    }

    /// Where the user holding `email_index` lives.
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn email_entry(&self, tenant_id: &str, email_index: &[u8]) -> Result<Option<EmailEntry>> {
        self.decode_local(
            "email entry",
            &email_key(self.group(), tenant_id, email_index),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::{MetaCommand, MetaOutcome, WrappedKey};
    use crate::Engine;

    fn tenant(id: &str, name: &str) -> TenantRecord {
        TenantRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            region: "eu".to_owned(),
            created_at: 1,
            keys: vec![WrappedKey {
                version: 1,
                kek_version: 1,
                wrapped: vec![1],
                created_at: 1,
            }],
            sessions: crate::SessionPolicy::default(),
        }
    }

    fn api_key(id: &str, tenant_id: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            hash: vec![7; 32],
            scopes: vec!["read".to_owned()],
            created_at: 1,
        }
    }

    fn signing(kid: &str) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            public: vec![1; 32],
            sealed_private: vec![2; 40],
            created_at: 1,
            retired_at: None,
        }
    }

    fn entry(user: &str) -> EmailEntry {
        EmailEntry {
            user_id: user.to_owned(),
            region: "eu".to_owned(),
            reserved_at: 5,
        }
    }

    fn setup(engine: &Engine) -> GroupState {
        let meta = engine.state(0);
        let mut b = meta.batch();
        for (id, name) in [("ta", "a"), ("tb", "b")] {
            let out = b
                .apply_meta(&MetaCommand::CreateTenant {
                    tenant: tenant(id, name),
                    master_fingerprint: "fp".to_owned(),
                    api_key: Some(Box::new(api_key(&format!("k{id}"), id))),
                    signing_key: Some(Box::new(signing(&format!("s{id}")))),
                })
                .expect("apply");
            assert!(matches!(out, MetaOutcome::TenantCreated(_)), "{out:?}");
        }
        b.commit().expect("commit");
        meta
    }

    #[test]
    fn email_reservation_is_unique_per_tenant_and_released_only_by_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        let mut b = meta.batch();
        let reserve =
            |tenant: &str, user: &str, replace: Option<&str>| DirectoryCommand::ReserveEmail {
                tenant_id: tenant.to_owned(),
                email_index: b"idx".to_vec(),
                entry: entry(user),
                replace: replace.map(str::to_owned),
            };
        assert_eq!(
            b.apply_directory(&reserve("ta", "u1", None))
                .expect("apply"),
            DirectoryOutcome::EmailReserved
        );
        assert_eq!(
            b.apply_directory(&reserve("ta", "u1", None))
                .expect("apply"),
            DirectoryOutcome::EmailReserved,
            "idempotent for its holder"
        );
        assert_eq!(
            b.apply_directory(&reserve("ta", "u2", None))
                .expect("apply"),
            DirectoryOutcome::EmailTaken(entry("u1"))
        );
        assert_eq!(
            b.apply_directory(&reserve("ta", "u3", Some("u9")))
                .expect("apply"),
            DirectoryOutcome::EmailTaken(entry("u1")),
            "takeover only from the named holder"
        );
        assert_eq!(
            b.apply_directory(&reserve("tb", "u2", None))
                .expect("apply"),
            DirectoryOutcome::EmailReserved,
            "same email, other tenant"
        );
        assert_eq!(
            b.apply_directory(&reserve("nope", "u2", None))
                .expect("apply"),
            DirectoryOutcome::TenantNotFound
        );
        let release = |user: &str| DirectoryCommand::ReleaseEmail {
            tenant_id: "ta".to_owned(),
            email_index: b"idx".to_vec(),
            user_id: user.to_owned(),
        };
        assert_eq!(
            b.apply_directory(&release("u2")).expect("apply"),
            DirectoryOutcome::EmailReleased { existed: false }
        );
        assert_eq!(
            b.apply_directory(&reserve("ta", "u3", Some("u1")))
                .expect("apply"),
            DirectoryOutcome::EmailReserved
        );
        b.commit().expect("commit");
        assert_eq!(
            meta.email_entry("ta", b"idx").expect("read"),
            Some(entry("u3"))
        );
        assert_eq!(
            meta.email_entry("tb", b"idx").expect("read"),
            Some(entry("u2"))
        );
    }

    #[test]
    fn api_keys_belong_to_one_tenant_and_go_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        assert_eq!(
            meta.api_key_view("kta")
                .expect("read")
                .0
                .map(|v| v.tenant.id),
            Some("ta".to_owned())
        );
        let mut b = meta.batch();
        assert_eq!(
            b.apply_directory(&DirectoryCommand::AddApiKey(api_key("k2", "ta")))
                .expect("apply"),
            DirectoryOutcome::ApiKeyAdded
        );
        assert_eq!(
            b.apply_directory(&DirectoryCommand::AddApiKey(api_key("k3", "zz")))
                .expect("apply"),
            DirectoryOutcome::TenantNotFound
        );
        assert_eq!(
            b.apply_directory(&DirectoryCommand::RevokeApiKey {
                tenant_id: "tb".to_owned(),
                key_id: "k2".to_owned(),
            })
            .expect("apply"),
            DirectoryOutcome::ApiKeyNotFound,
            "tenant b cannot revoke tenant a's key"
        );
        b.commit().expect("commit");
        assert!(meta.api_key_view("k2").expect("read").0.is_some());

        let mut b = meta.batch();
        let out = b
            .apply_directory(&DirectoryCommand::DeleteTenant {
                tenant_id: "ta".to_owned(),
            })
            .expect("apply");
        assert!(matches!(out, DirectoryOutcome::TenantDeleted(_)));
        b.commit().expect("commit");
        for k in ["kta", "k2"] {
            assert_eq!(meta.api_key_view(k).expect("read").0, None, "{k}");
        }
        assert!(meta.api_key_view("ktb").expect("read").0.is_some());
        assert!(meta.signing_keys("ta").expect("read").keys.is_empty());
        assert_eq!(meta.signing_keys("tb").expect("read").keys.len(), 1);
    }

    #[test]
    fn signing_key_rotation_keeps_retired_keys_for_the_token_lifetime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        let rotate = |kid: &str, at: u64| DirectoryCommand::RotateSigningKey {
            tenant_id: "ta".to_owned(),
            key: signing(kid),
            at,
            keep_retired_secs: 900,
        };
        let mut b = meta.batch();
        b.apply_directory(&rotate("s2", 1000)).expect("apply");
        b.apply_directory(&rotate("s3", 1500)).expect("apply");
        let out = b.apply_directory(&rotate("s4", 2000)).expect("apply");
        let DirectoryOutcome::SigningKeyRotated(keys) = out else {
            panic!("unexpected {out:?}");
        };
        let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
        // sta retired at 1000 < 2000 - 900: dropped; s2 retired at 1500: kept.
        assert_eq!(kids, ["s2", "s3", "s4"]);
        assert_eq!(keys.current().map(|k| k.kid.as_str()), Some("s4"));
        assert_eq!(keys.keys[0].retired_at, Some(1500));
        assert_eq!(
            b.apply_directory(&rotate("s4", 2100)).expect("apply"),
            DirectoryOutcome::IdCollision
        );
    }
}
