//! Tenant keys on this node: the master keys (KEKs) it holds, and a bounded cache of
//! unwrapped tenant data keys, each entry valid for one `meta` epoch.
//!
//! Which key does what (see `docs/envelope.md`):
//! - values are sealed under the value-sealing subkey of the tenant's *current* data
//!   key version and opened with the version named in their header;
//! - blind indexes (stored key names, email lookups) use the blind-index subkey of
//!   the tenant's *first* data key, so that a rotation does not move stored keys:
//!   a blind index that changed with every rotation would need a re-index.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

#[cfg(not(feature = "insecure-no-sealing"))]
use cairn_crypto::envelope::Binding;
use cairn_crypto::envelope::{sealed_key_version, CryptoError, DataKey, Purpose, SubKey};
use cairn_crypto::keywrap::WrapBinding;
use cairn_crypto::MasterKey;
use cairn_storage::{TenantRecord, WrappedKey};
use zeroize::Zeroizing;

/// Tenants whose unwrapped keys are kept in memory at once.
const CACHE_CAPACITY: usize = 4096;

/// The master keys this node holds, by public fingerprint: the one named in the
/// config, and one staged by a master key rotation.
pub struct MasterKeys {
    keys: RwLock<HashMap<String, Arc<MasterKey>>>,
    configured: String,
}

impl MasterKeys {
    #[must_use]
    pub fn new(configured: MasterKey) -> Self {
        let fp = configured.fingerprint();
        let mut keys = HashMap::new();
        keys.insert(fp.clone(), Arc::new(configured));
        Self {
            keys: RwLock::new(keys),
            configured: fp,
        }
    }

    /// Adds a key; returns its fingerprint.
    pub fn add(&self, key: MasterKey) -> String {
        let fp = key.fingerprint();
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fp.clone(), Arc::new(key));
        fp
    }

    #[must_use]
    pub fn get(&self, fingerprint: &str) -> Option<Arc<MasterKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(fingerprint)
            .cloned()
    }

    /// The fingerprint of the key named in the config.
    #[must_use]
    pub fn configured(&self) -> &str {
        &self.configured
    }

    #[must_use]
    pub fn fingerprints(&self) -> Vec<String> {
        let mut fps: Vec<String> = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        fps.sort();
        fps
    }
}

/// Why a tenant's keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this node does not hold master key {0}; every node needs the cluster's \
         current master key (stage it with `cairn keys rotate-master`)"
    )]
    MasterKeyMissing(String),
    #[error("tenant data key version {version} failed to unwrap: {error}")]
    Unwrap { version: u32, error: CryptoError },
    #[error("tenant record has no data key")]
    NoKeys,
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Sealed under a key version this entry does not have (a newer one, perhaps).
    #[error("sealed under unknown key version {0}")]
    #[cfg_attr(feature = "insecure-no-sealing", allow(dead_code))]
    UnknownVersion(u32),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Unwraps one stored data key of tenant `tenant_id` (bound to its versions).
///
/// # Errors
/// Another master key, another tenant or version, or tampering.
pub fn unwrap_tenant_key(
    kek: &MasterKey,
    tenant_id: &str,
    key: &WrappedKey,
) -> Result<DataKey, CryptoError> {
    kek.unwrap_key(
        &key.wrapped,
        &WrapBinding {
            tenant_id,
            dek_version: key.version,
            kek_version: key.kek_version,
        },
    )
}

/// One tenant's unwrapped keys. Subkeys zeroize themselves when dropped.
pub struct TenantKeys {
    record: TenantRecord,
    sealing: BTreeMap<u32, SubKey>,
    index: SubKey,
    token: SubKey,
}

impl TenantKeys {
    /// Unwraps every key version of `record` with the master key `fingerprint`
    /// (the cluster keeps every stored key wrapped under its current master key).
    ///
    /// # Errors
    /// The master key is not on this node, or a wrapped key fails to open.
    pub fn unwrap(
        record: TenantRecord,
        fingerprint: &str,
        masters: &MasterKeys,
    ) -> Result<Self, KeyError> {
        let kek = masters
            .get(fingerprint)
            .ok_or_else(|| KeyError::MasterKeyMissing(fingerprint.to_owned()))?;
        let mut sealing = BTreeMap::new();
        let mut index = None;
        let mut token = None;
        for k in &record.keys {
            let dek = unwrap_tenant_key(&kek, &record.id, k).map_err(|error| KeyError::Unwrap {
                version: k.version,
                error,
            })?;
            if index.is_none() {
                index = Some(dek.subkey(Purpose::BlindIndex));
                token = Some(dek.subkey(Purpose::TokenMac));
            }
            sealing.insert(k.version, dek.subkey(Purpose::ValueSealing));
        }
        let (Some(index), Some(token)) = (index, token) else {
            return Err(KeyError::NoKeys);
        };
        Ok(Self {
            record,
            sealing,
            index,
            token,
        })
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.record.id
    }

    #[must_use]
    pub fn record(&self) -> &TenantRecord {
        &self.record
    }

    /// The token-MAC subkey (of the first data key, so that a rotation does not
    /// invalidate refresh tokens): keys refresh token hashes and the token chain.
    #[must_use]
    pub fn token_key(&self) -> &SubKey {
        &self.token
    }

    #[cfg(test)]
    fn current_version(&self) -> u32 {
        self.sealing.keys().next_back().copied().unwrap_or(0)
    }

    /// The keyed blind index of a name (a KV key, an email): what is stored in
    /// place of the name.
    #[must_use]
    pub fn blind_index(&self, name: &[u8]) -> Vec<u8> {
        #[cfg(feature = "insecure-no-sealing")]
        {
            let _ = &self.index;
            name.to_vec()
        }
        #[cfg(not(feature = "insecure-no-sealing"))]
        {
            self.index.mac(name).to_vec()
        }
    }

    /// Seals `plaintext` under the current key version, bound to this tenant,
    /// `group` and `key_path`.
    ///
    /// # Errors
    /// The AEAD refused the input (never for inputs within the API's limits).
    pub fn seal(
        &self,
        group: u64,
        key_path: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (_, key) = self
            .sealing
            .iter()
            .next_back()
            .ok_or(CryptoError::EncryptionFailed)?;
        #[cfg(feature = "insecure-no-sealing")]
        {
            let _ = (key, group, key_path);
            Ok(plaintext.to_vec())
        }
        #[cfg(not(feature = "insecure-no-sealing"))]
        {
            key.seal(&self.binding(group, key_path), plaintext)
        }
    }

    /// Opens a value sealed by [`TenantKeys::seal`] for the same group and key path.
    ///
    /// # Errors
    /// An unknown key version (the caller refreshes and retries), or a value that
    /// is malformed, tampered with or bound elsewhere.
    pub fn open(
        &self,
        group: u64,
        key_path: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        #[cfg(feature = "insecure-no-sealing")]
        {
            let _ = (group, key_path, sealed_key_version);
            Ok(Zeroizing::new(sealed.to_vec()))
        }
        #[cfg(not(feature = "insecure-no-sealing"))]
        {
            let version = sealed_key_version(sealed)?;
            let key = self
                .sealing
                .get(&version)
                .ok_or(OpenError::UnknownVersion(version))?;
            Ok(key.open(&self.binding(group, key_path), sealed)?)
        }
    }

    #[cfg(not(feature = "insecure-no-sealing"))]
    fn binding<'a>(&'a self, group: u64, key_path: &'a [u8]) -> Binding<'a> {
        Binding {
            tenant: &self.record.id,
            group,
            key_path,
        }
    }
}

/// Unwrapped tenant keys by tenant name, each valid while the `meta` epoch it was
/// read at is current.
#[derive(Default)]
pub struct TenantCache {
    entries: Mutex<HashMap<String, (u64, Arc<TenantKeys>)>>,
}

impl TenantCache {
    /// The entry for `name` if it was read at `epoch`.
    #[must_use]
    pub fn get(&self, name: &str, epoch: u64) -> Option<Arc<TenantKeys>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(name)
            .filter(|(e, _)| *e == epoch)
            .map(|(_, k)| Arc::clone(k))
    }

    /// The entry for `name` whatever its epoch: reused when a fresh read finds the
    /// same record, so an epoch change does not mean unwrapping again.
    #[must_use]
    pub fn any(&self, name: &str) -> Option<Arc<TenantKeys>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(name).map(|(_, k)| Arc::clone(k))
    }

    pub fn insert(&self, name: &str, epoch: u64, keys: Arc<TenantKeys>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(name) {
            // Evict the entry read longest ago (its keys zeroize when the last
            // request using them finishes).
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (e, _))| *e)
                .map(|(n, _)| n.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(name.to_owned(), (epoch, keys));
    }

    pub fn remove(&self, name: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

#[cfg(all(test, not(feature = "insecure-no-sealing")))]
mod tests {
    use super::*;

    fn record(id: &str, kek: &MasterKey, versions: u32) -> TenantRecord {
        let keys = (1..=versions)
            .map(|v| WrappedKey {
                version: v,
                kek_version: 1,
                wrapped: kek
                    .wrap(
                        &DataKey::generate(v),
                        &WrapBinding {
                            tenant_id: id,
                            dek_version: v,
                            kek_version: 1,
                        },
                    )
                    .expect("wrap"),
                created_at: 0,
            })
            .collect();
        TenantRecord {
            id: id.to_owned(),
            name: format!("name-{id}"),
            region: "local".to_owned(),
            created_at: 0,
            keys,
            sessions: cairn_storage::SessionPolicy::default(),
        }
    }

    fn keys(id: &str, versions: u32) -> (MasterKeys, TenantKeys) {
        let kek = MasterKey::generate();
        let rec = record(id, &kek, versions);
        let masters = MasterKeys::new(kek);
        let fp = masters.configured().to_owned();
        let keys = TenantKeys::unwrap(rec, &fp, &masters).expect("unwrap");
        (masters, keys)
    }

    #[test]
    fn values_open_only_where_they_were_sealed() {
        let (_, a) = keys("a", 1);
        let (_, b) = keys("b", 1);
        let idx = a.blind_index(b"greeting");
        let sealed = a.seal(1, &idx, b"hello").expect("seal");
        assert_eq!(a.open(1, &idx, &sealed).expect("open").as_slice(), b"hello");
        assert!(a.open(2, &idx, &sealed).is_err(), "other group");
        assert!(
            a.open(1, &a.blind_index(b"other"), &sealed).is_err(),
            "other key"
        );
        assert!(b.open(1, &idx, &sealed).is_err(), "other tenant");
        let mut flipped = sealed.clone();
        flipped[10] ^= 4;
        assert!(a.open(1, &idx, &flipped).is_err(), "bit flip");
        assert!(
            a.open(1, &idx, &sealed[..sealed.len() - 1]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn new_values_use_the_newest_version_and_the_index_key_stays() {
        let kek = MasterKey::generate();
        let masters = MasterKeys::new(kek);
        let kek = masters.get(masters.configured()).expect("kek");
        let mut rec = record("t", &kek, 1);
        let fp = masters.configured().to_owned();
        let v1 = TenantKeys::unwrap(rec.clone(), &fp, &masters).expect("unwrap");
        let old = v1.seal(1, b"k", b"old").expect("seal");
        rec.keys
            .extend(record("t", &kek, 2).keys.into_iter().skip(1));
        let v2 = TenantKeys::unwrap(rec, &fp, &masters).expect("unwrap");
        assert_eq!(v2.current_version(), 2);
        let new = v2.seal(1, b"k", b"new").expect("seal");
        assert_eq!(sealed_key_version(&new), Ok(2));
        assert_eq!(v2.open(1, b"k", &old).expect("open").as_slice(), b"old");
        assert!(matches!(
            v1.open(1, b"k", &new),
            Err(OpenError::UnknownVersion(2))
        ));
        assert_eq!(v1.blind_index(b"x"), v2.blind_index(b"x"));
    }

    #[test]
    fn a_missing_master_key_is_named() {
        let kek = MasterKey::generate();
        let rec = record("t", &kek, 1);
        let masters = MasterKeys::new(MasterKey::generate());
        let err = TenantKeys::unwrap(rec.clone(), &kek.fingerprint(), &masters)
            .err()
            .expect("missing");
        assert!(err.to_string().contains(&kek.fingerprint()));
        // The right fingerprint but another key's bytes: an unwrap error.
        let fp = masters.configured().to_owned();
        assert!(matches!(
            TenantKeys::unwrap(rec, &fp, &masters),
            Err(KeyError::Unwrap { version: 1, .. })
        ));
    }
}
