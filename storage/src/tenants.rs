//! The `meta` group's key records: tenants (id and name), each tenant's data keys
//! wrapped under the cluster master key, and which master key is current.
//!
//! Storage never sees a plaintext key: wrapping and unwrapping happen in the node,
//! which proposes these commands. What applying them guarantees, on every replica:
//! - a tenant name maps to one tenant id (`CreateTenant` is create-if-absent);
//! - a tenant's key versions are 1, 2, 3, … with no gap or duplicate;
//! - every stored key is wrapped under the current master key: a key wrapped under
//!   another one is refused, and a master rotation must re-wrap every stored key
//!   in the same entry, so no key is ever left behind under a retired master key.

use std::collections::BTreeSet;

use rocksdb::{IteratorMode, ReadOptions};
use serde::{Deserialize, Serialize};

use crate::directory::{api_key_key, ApiKeyRecord, SigningKeyRecord};
use crate::keys::{prefix_end, row_key, CF_SM, SM_MASTER, SM_TENANT, SM_TENANT_NAME};
use crate::kv::ApplyBatch;
use crate::state::GroupState;
use crate::{codec, Result};

/// A tenant data key (DEK), wrapped under the master key of `kek_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub version: u32,
    pub kek_version: u32,
    pub wrapped: Vec<u8>,
    /// Unix seconds, from the proposing node's clock (informational).
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    /// Home region: the region whose data group holds the tenant's data.
    pub region: String,
    pub created_at: u64,
    /// Every key version, ascending; the last is the current one.
    pub keys: Vec<WrappedKey>,
    /// How long the tenant's sessions live.
    pub sessions: SessionPolicy,
}

/// A tenant's session lifetimes, applied to each session when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// A session ends this long after its last sign-in or refresh…
    pub idle_timeout_secs: u64,
    /// …and this long after sign-in, however it is used.
    pub absolute_timeout_secs: u64,
}

impl SessionPolicy {
    /// The shortest lifetime a tenant may set.
    pub const MIN_SECS: u64 = 1;
    /// The longest lifetime a tenant may set (ten years).
    pub const MAX_SECS: u64 = 10 * 365 * 86_400;

    /// This policy with each given lifetime replacing its own.
    #[must_use]
    pub fn merged(
        self,
        idle_timeout_secs: Option<u64>,
        absolute_timeout_secs: Option<u64>,
    ) -> Self {
        Self {
            idle_timeout_secs: idle_timeout_secs.unwrap_or(self.idle_timeout_secs),
            absolute_timeout_secs: absolute_timeout_secs.unwrap_or(self.absolute_timeout_secs),
        }
    }

    /// Whether both lifetimes are in bounds and the idle timeout does not exceed
    /// the absolute one.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let bounds = Self::MIN_SECS..=Self::MAX_SECS;
        bounds.contains(&self.idle_timeout_secs)
            && bounds.contains(&self.absolute_timeout_secs)
            && self.idle_timeout_secs <= self.absolute_timeout_secs
    }
}

impl Default for SessionPolicy {
    /// 30 days idle, 90 days absolute.
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 86_400,
            absolute_timeout_secs: 90 * 86_400,
        }
    }
}

impl TenantRecord {
    #[must_use]
    pub fn current_key(&self) -> Option<&WrappedKey> {
        self.keys.last()
    }

    #[must_use]
    pub fn key(&self, version: u32) -> Option<&WrappedKey> {
        self.keys.iter().find(|k| k.version == version)
    }
}

/// One master key (KEK) the cluster has used, named by its public fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyRecord {
    pub version: u32,
    pub fingerprint: String,
    /// Unix seconds when it became current.
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyState {
    pub current: MasterKeyRecord,
    /// Earlier master keys, oldest first: the rotation history.
    pub retired: Vec<MasterKeyRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Creates `tenant` (with exactly one key, version 1) unless a tenant of that
    /// name exists. The key must be wrapped under the current master key, named by
    /// `master_fingerprint`; the first tenant ever created establishes it.
    ///
    /// With the tenant come its first API key and its first token signing key
    /// (optional only for tenants made by tests and tools).
    CreateTenant {
        tenant: TenantRecord,
        master_fingerprint: String,
        api_key: Option<Box<ApiKeyRecord>>,
        signing_key: Option<Box<SigningKeyRecord>>,
    },
    /// Adds the next key version of a tenant (a DEK rotation).
    AddTenantKey {
        tenant_id: String,
        key: WrappedKey,
        master_fingerprint: String,
    },
    /// Makes the master key `fingerprint` current (version `expected_version + 1`),
    /// replacing every stored tenant key by its re-wrapped copy in `rewrapped`.
    /// Before the first tenant (no master key recorded), `expected_version` 0 and
    /// nothing to re-wrap establish `fingerprint` as version 1.
    RotateMaster {
        expected_version: u32,
        fingerprint: String,
        at: u64,
        rewrapped: Vec<(String, WrappedKey)>,
    },
    /// Changes a tenant's session lifetimes (sessions created from then on get
    /// them): each given field replaces the stored one, merged here so that
    /// concurrent changes of different fields both stand. A result out of bounds
    /// is refused.
    SetSessionPolicy {
        tenant_id: String,
        idle_timeout_secs: Option<u64>,
        absolute_timeout_secs: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaOutcome {
    TenantCreated(TenantRecord),
    /// A tenant of that name already existed; it is returned unchanged.
    TenantExists(TenantRecord),
    TenantNotFound,
    KeyAdded(TenantRecord),
    /// The proposed key version is not the next one; nothing changed.
    KeyVersionConflict {
        current: u32,
    },
    /// The proposed keys are not wrapped under the current master key (or the
    /// rotation expected another version); nothing changed.
    MasterKeyConflict {
        current: Option<MasterKeyRecord>,
    },
    MasterRotated(MasterKeyState),
    /// The re-wrapped keys are not exactly the stored keys (a tenant or key was
    /// added meanwhile): nothing changed; read again and retry.
    RewrapStale,
    TenantUpdated(TenantRecord),
    /// The proposed setting is out of bounds; nothing changed.
    InvalidSetting,
}

fn tenant_key(group: u64, id: &str) -> Vec<u8> {
    row_key(group, SM_TENANT, id.as_bytes())
}

fn name_key(group: u64, name: &str) -> Vec<u8> {
    row_key(group, SM_TENANT_NAME, name.as_bytes())
}

fn master_key(group: u64) -> Vec<u8> {
    row_key(group, SM_MASTER, b"")
}

impl ApplyBatch<'_> {
    fn tenant(&self, id: &str) -> Result<Option<TenantRecord>> {
        self.get_raw(&tenant_key(self.group(), id))?
            .map(|b| codec::decode("tenant record", &b))
            .transpose()
    }

    fn master(&self) -> Result<Option<MasterKeyState>> {
        self.get_raw(&master_key(self.group()))?
            .map(|b| codec::decode("master key state", &b))
            .transpose()
    }

    fn put_tenant(&mut self, t: &TenantRecord) -> Result<()> {
        let bytes = codec::encode("tenant record", t)?;
        self.put_raw(tenant_key(self.group(), &t.id), bytes)
    }

    /// `Some(conflict)` unless `kek_version`/`fingerprint` name the current master key.
    fn check_master(
        master: Option<&MasterKeyState>,
        kek_version: u32,
        fingerprint: &str,
    ) -> Option<MetaOutcome> {
        match master {
            Some(m) if m.current.version == kek_version && m.current.fingerprint == fingerprint => {
                None
            }
            Some(m) => Some(MetaOutcome::MasterKeyConflict {
                current: Some(m.current.clone()),
            }),
            // Nothing established yet: only version 1 may establish it.
            None if kek_version == 1 => None,
            None => Some(MetaOutcome::MasterKeyConflict { current: None }),
        }
    }

    /// Applies one meta command.
    ///
    /// # Errors
    /// Reading current state failed or found a corrupt record.
    pub fn apply_meta(&mut self, cmd: &MetaCommand) -> Result<MetaOutcome> {
        match cmd {
            MetaCommand::CreateTenant {
                tenant,
                master_fingerprint,
                api_key,
                signing_key,
            } => {
                if let Some(id) = self.get_raw(&name_key(self.group(), &tenant.name))? {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    return Ok(match self.tenant(&id)? {
                        Some(existing) => MetaOutcome::TenantExists(existing),
                        None => MetaOutcome::TenantNotFound,
                    });
                }
                if !tenant.sessions.is_valid() {
                    return Ok(MetaOutcome::InvalidSetting);
                }
                let [key] = tenant.keys.as_slice() else {
                    return Ok(MetaOutcome::KeyVersionConflict { current: 0 });
                };
                if key.version != 1 {
                    return Ok(MetaOutcome::KeyVersionConflict { current: 0 });
                }
                let id_taken = match api_key {
                    Some(k) => {
                        k.tenant_id != tenant.id
                            || self.get_raw(&api_key_key(self.group(), &k.id))?.is_some()
                    }
                    None => false,
                };
                if id_taken || self.tenant(&tenant.id)?.is_some() {
                    // A random 128-bit id collided: refuse rather than overwrite.
                    return Ok(MetaOutcome::KeyVersionConflict { current: 1 });
                }
                let master = self.master()?;
                if let Some(conflict) =
                    Self::check_master(master.as_ref(), key.kek_version, master_fingerprint)
                {
                    return Ok(conflict);
                }
                if master.is_none() {
                    let state = MasterKeyState {
                        current: MasterKeyRecord {
                            version: key.kek_version,
                            fingerprint: master_fingerprint.clone(),
                            since: tenant.created_at,
                        },
                        retired: Vec::new(),
                    };
                    self.put_raw(
                        master_key(self.group()),
                        codec::encode("master key state", &state)?,
                    )?;
                }
                self.put_tenant(tenant)?;
                self.put_raw(
                    name_key(self.group(), &tenant.name),
                    tenant.id.as_bytes().to_vec(),
                )?;
                self.put_tenant_credentials(
                    &tenant.id,
                    api_key.as_deref(),
                    signing_key.as_deref(),
                )?;
                Ok(MetaOutcome::TenantCreated(tenant.clone()))
            }
            MetaCommand::AddTenantKey {
                tenant_id,
                key,
                master_fingerprint,
            } => {
                let Some(mut tenant) = self.tenant(tenant_id)? else {
                    return Ok(MetaOutcome::TenantNotFound);
                };
                let current = tenant.current_key().map_or(0, |k| k.version);
                if current.checked_add(1) != Some(key.version) {
                    return Ok(MetaOutcome::KeyVersionConflict { current });
                }
                let master = self.master()?;
                if master.is_none() {
                    return Ok(MetaOutcome::MasterKeyConflict { current: None });
                }
                if let Some(conflict) =
                    Self::check_master(master.as_ref(), key.kek_version, master_fingerprint)
                {
                    return Ok(conflict);
                }
                tenant.keys.push(key.clone());
                self.put_tenant(&tenant)?;
                Ok(MetaOutcome::KeyAdded(tenant))
            }
            MetaCommand::RotateMaster {
                expected_version,
                fingerprint,
                at,
                rewrapped,
            } => {
                let Some(mut master) = self.master()? else {
                    // No tenant yet, so nothing to re-wrap: the rotation establishes
                    // the master key as version 1.
                    if *expected_version == 0
                        && rewrapped.is_empty()
                        && self.tenant_ids()?.is_empty()
                    {
                        let state = MasterKeyState {
                            current: MasterKeyRecord {
                                version: 1,
                                fingerprint: fingerprint.clone(),
                                since: *at,
                            },
                            retired: Vec::new(),
                        };
                        self.put_raw(
                            master_key(self.group()),
                            codec::encode("master key state", &state)?,
                        )?;
                        return Ok(MetaOutcome::MasterRotated(state));
                    }
                    return Ok(MetaOutcome::MasterKeyConflict { current: None });
                };
                let Some(next) = expected_version.checked_add(1) else {
                    return Ok(MetaOutcome::MasterKeyConflict {
                        current: Some(master.current),
                    });
                };
                if master.current.version != *expected_version {
                    return Ok(MetaOutcome::MasterKeyConflict {
                        current: Some(master.current),
                    });
                }
                let mut tenants = Vec::new();
                let mut stored = BTreeSet::new();
                for id in self.tenant_ids()? {
                    if let Some(t) = self.tenant(&id)? {
                        for k in &t.keys {
                            stored.insert((t.id.clone(), k.version));
                        }
                        tenants.push(t);
                    }
                }
                let proposed: BTreeSet<_> = rewrapped
                    .iter()
                    .map(|(id, k)| (id.clone(), k.version))
                    .collect();
                if proposed != stored
                    || proposed.len() != rewrapped.len()
                    || rewrapped.iter().any(|(_, k)| k.kek_version != next)
                {
                    return Ok(MetaOutcome::RewrapStale);
                }
                let by_key: std::collections::HashMap<(&str, u32), &WrappedKey> = rewrapped
                    .iter()
                    .map(|(id, k)| ((id.as_str(), k.version), k))
                    .collect();
                for t in &mut tenants {
                    for k in &mut t.keys {
                        if let Some(new) = by_key.get(&(t.id.as_str(), k.version)) {
                            *k = (*new).clone();
                        }
                    }
                    self.put_tenant(t)?;
                }
                let old = std::mem::replace(
                    &mut master.current,
                    MasterKeyRecord {
                        version: next,
                        fingerprint: fingerprint.clone(),
                        since: *at,
                    },
                );
                master.retired.push(old);
                self.put_raw(
                    master_key(self.group()),
                    codec::encode("master key state", &master)?,
                )?;
                Ok(MetaOutcome::MasterRotated(master))
            }
            MetaCommand::SetSessionPolicy {
                tenant_id,
                idle_timeout_secs,
                absolute_timeout_secs,
            } => {
                let Some(mut tenant) = self.tenant(tenant_id)? else {
                    return Ok(MetaOutcome::TenantNotFound);
                };
                let policy = tenant
                    .sessions
                    .merged(*idle_timeout_secs, *absolute_timeout_secs);
                if !policy.is_valid() {
                    return Ok(MetaOutcome::InvalidSetting);
                }
                tenant.sessions = policy;
                self.put_tenant(&tenant)?;
                Ok(MetaOutcome::TenantUpdated(tenant))
            }
        }
    }

    /// Every tenant id, including tenants created earlier in this batch.
    fn tenant_ids(&self) -> Result<BTreeSet<String>> {
        let prefix = row_key(self.group(), SM_TENANT, b"");
        let mut ids: BTreeSet<String> = self
            .state()
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect();
        for k in self.pending_keys() {
            if let Some(id) = k.strip_prefix(prefix.as_slice()) {
                ids.insert(String::from_utf8_lossy(id).into_owned());
            }
        }
        Ok(ids)
    }
}

/// How a tenant is looked up.
#[derive(Debug, Clone, Copy)]
pub enum TenantLookup<'a> {
    Name(&'a str),
    Id(&'a str),
}

impl GroupState {
    /// A tenant (by name or id) and the master key state, read from one RocksDB
    /// snapshot so they describe the same applied index (a master rotation applied
    /// between two separate reads would pair keys with the wrong master key).
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn tenant_view(
        &self,
        by: TenantLookup<'_>,
    ) -> Result<(Option<TenantRecord>, Option<MasterKeyState>)> {
        let db = self.engine().db();
        let cf = self.engine().cf(CF_SM)?;
        let snap = db.snapshot();
        let group = self.group();
        let id = match by {
            TenantLookup::Id(id) => Some(id.to_owned()),
            TenantLookup::Name(name) => snap
                .get_cf(cf, name_key(group, name))?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        let tenant = match id {
            Some(id) => snap
                .get_cf(cf, tenant_key(group, &id))?
                .map(|b| codec::decode("tenant record", &b))
                .transpose()?,
            None => None,
        };
        let master = snap
            .get_cf(cf, master_key(group))?
            .map(|b| codec::decode("master key state", &b))
            .transpose()?;
        Ok((tenant, master))
    }

    /// Every tenant (ordered by id) and the master key state, from one snapshot.
    ///
    /// # Errors
    /// RocksDB read failure or a corrupt record.
    pub fn tenants_view(&self) -> Result<(Vec<TenantRecord>, Option<MasterKeyState>)> {
        let db = self.engine().db();
        let cf = self.engine().cf(CF_SM)?;
        let snap = db.snapshot();
        let prefix = row_key(self.group(), SM_TENANT, b"");
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.clone());
        if let Some(upper) = prefix_end(&prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let mut tenants = Vec::new();
        for item in snap.iterator_cf_opt(cf, opts, IteratorMode::Start) {
            let (_, v) = item?;
            tenants.push(codec::decode("tenant record", &v)?);
        }
        let master = snap
            .get_cf(cf, master_key(self.group()))?
            .map(|b| codec::decode("master key state", &b))
            .transpose()?;
        Ok((tenants, master))
    }

    /// Every `sm` row whose (full) key starts with `prefix`.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let db = self.engine().db();
        let cf = self.engine().cf(CF_SM)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.to_vec());
        if let Some(upper) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let mut rows = Vec::new();
        for item in db.iterator_cf_opt(cf, opts, IteratorMode::Start) {
            let (k, v) = item?;
            rows.push((k.into_vec(), v.into_vec()));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    fn key(version: u32, kek_version: u32, tag: u8) -> WrappedKey {
        WrappedKey {
            version,
            kek_version,
            wrapped: vec![tag; 8],
            created_at: 1,
        }
    }

    fn tenant(id: &str, name: &str) -> TenantRecord {
        TenantRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            region: "local".to_owned(),
            created_at: 1,
            keys: vec![key(1, 1, 0)],
            sessions: SessionPolicy::default(),
        }
    }

    fn create(id: &str, name: &str, fp: &str) -> MetaCommand {
        MetaCommand::CreateTenant {
            tenant: tenant(id, name),
            master_fingerprint: fp.to_owned(),
            api_key: None,
            signing_key: None,
        }
    }

    fn apply(sm: &GroupState, cmd: &MetaCommand) -> MetaOutcome {
        let mut b = sm.batch();
        let out = b.apply_meta(cmd).expect("apply");
        b.commit().expect("commit");
        out
    }

    #[test]
    fn create_is_create_if_absent_and_establishes_the_master_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        assert!(matches!(
            apply(&sm, &create("id1", "acme", "fp1")),
            MetaOutcome::TenantCreated(_)
        ));
        // Same name again, other id: the first one wins and is returned.
        match apply(&sm, &create("id2", "acme", "fp1")) {
            MetaOutcome::TenantExists(t) => assert_eq!(t.id, "id1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            sm.tenant_view(TenantLookup::Id("id2")).expect("read").0,
            None
        );
        // Another master key is refused once one is established.
        assert!(matches!(
            apply(&sm, &create("id3", "beta", "other")),
            MetaOutcome::MasterKeyConflict { current: Some(_) }
        ));
        let state = sm
            .tenant_view(TenantLookup::Name("acme"))
            .expect("read")
            .1
            .expect("set");
        assert_eq!(
            (state.current.version, state.current.fingerprint.as_str()),
            (1, "fp1")
        );
        assert_eq!(
            sm.tenant_view(TenantLookup::Name("acme"))
                .expect("read")
                .0
                .map(|t| t.id),
            Some("id1".to_owned())
        );
        assert_eq!(sm.tenants_view().expect("list").0.len(), 1);
    }

    #[test]
    fn key_versions_are_gapless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("id1", "acme", "fp1"));
        let add = |version| MetaCommand::AddTenantKey {
            tenant_id: "id1".to_owned(),
            key: key(version, 1, 2),
            master_fingerprint: "fp1".to_owned(),
        };
        assert_eq!(
            apply(&sm, &add(3)),
            MetaOutcome::KeyVersionConflict { current: 1 }
        );
        assert!(matches!(apply(&sm, &add(2)), MetaOutcome::KeyAdded(_)));
        assert_eq!(
            apply(&sm, &add(2)),
            MetaOutcome::KeyVersionConflict { current: 2 }
        );
        let t = sm
            .tenant_view(TenantLookup::Id("id1"))
            .expect("read")
            .0
            .expect("present");
        assert_eq!(t.current_key().map(|k| k.version), Some(2));
        assert!(t.key(1).is_some());
        let missing = MetaCommand::AddTenantKey {
            tenant_id: "nope".to_owned(),
            key: key(1, 1, 0),
            master_fingerprint: "fp1".to_owned(),
        };
        assert_eq!(apply(&sm, &missing), MetaOutcome::TenantNotFound);
    }

    #[test]
    fn master_rotation_must_rewrap_every_key_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("a", "acme", "fp1"));
        apply(&sm, &create("b", "beta", "fp1"));
        let rotate = |rewrapped: Vec<(String, WrappedKey)>| MetaCommand::RotateMaster {
            expected_version: 1,
            fingerprint: "fp2".to_owned(),
            at: 9,
            rewrapped,
        };
        // Missing tenant b: stale, nothing changes.
        assert_eq!(
            apply(&sm, &rotate(vec![("a".to_owned(), key(1, 2, 7))])),
            MetaOutcome::RewrapStale
        );
        // Wrapped under the wrong KEK version: stale.
        assert_eq!(
            apply(
                &sm,
                &rotate(vec![
                    ("a".to_owned(), key(1, 2, 7)),
                    ("b".to_owned(), key(1, 1, 7))
                ])
            ),
            MetaOutcome::RewrapStale
        );
        let all = vec![
            ("a".to_owned(), key(1, 2, 7)),
            ("b".to_owned(), key(1, 2, 8)),
        ];
        match apply(&sm, &rotate(all.clone())) {
            MetaOutcome::MasterRotated(m) => {
                assert_eq!((m.current.version, m.retired.len()), (2, 1));
            }
            other => panic!("{other:?}"),
        }
        let a = sm
            .tenant_view(TenantLookup::Id("a"))
            .expect("read")
            .0
            .expect("present");
        assert_eq!(a.keys, vec![key(1, 2, 7)]);
        // Replaying the same rotation: the version moved on.
        assert!(matches!(
            apply(&sm, &rotate(all)),
            MetaOutcome::MasterKeyConflict { .. }
        ));
        // Keys under the retired master key are refused from now on.
        assert!(matches!(
            apply(&sm, &create("c", "gamma", "fp1")),
            MetaOutcome::MasterKeyConflict { .. }
        ));
        let ok = MetaCommand::CreateTenant {
            tenant: TenantRecord {
                keys: vec![key(1, 2, 0)],
                ..tenant("c", "gamma")
            },
            master_fingerprint: "fp2".to_owned(),
            api_key: None,
            signing_key: None,
        };
        assert!(matches!(apply(&sm, &ok), MetaOutcome::TenantCreated(_)));
    }

    #[test]
    fn a_rotation_sees_tenants_created_earlier_in_the_same_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("a", "acme", "fp1"));
        let mut b = sm.batch();
        b.apply_meta(&create("b", "beta", "fp1")).expect("apply");
        let out = b
            .apply_meta(&MetaCommand::RotateMaster {
                expected_version: 1,
                fingerprint: "fp2".to_owned(),
                at: 9,
                rewrapped: vec![("a".to_owned(), key(1, 2, 7))],
            })
            .expect("apply");
        assert_eq!(out, MetaOutcome::RewrapStale, "b was missed");
        b.commit().expect("commit");
    }

    #[test]
    fn session_policies_out_of_bounds_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        let bad = [(0, 10), (10, 0), (11, 10), (1, SessionPolicy::MAX_SECS + 1)].map(
            |(idle, absolute)| SessionPolicy {
                idle_timeout_secs: idle,
                absolute_timeout_secs: absolute,
            },
        );
        for policy in bad {
            let cmd = MetaCommand::CreateTenant {
                tenant: TenantRecord {
                    sessions: policy,
                    ..tenant("a", "acme")
                },
                master_fingerprint: "fp1".to_owned(),
                api_key: None,
                signing_key: None,
            };
            assert_eq!(apply(&sm, &cmd), MetaOutcome::InvalidSetting, "{policy:?}");
        }
        assert!(sm
            .tenant_view(TenantLookup::Name("acme"))
            .expect("read")
            .0
            .is_none());
        apply(&sm, &create("a", "acme", "fp1"));
        for policy in bad {
            let cmd = MetaCommand::SetSessionPolicy {
                tenant_id: "a".to_owned(),
                idle_timeout_secs: Some(policy.idle_timeout_secs),
                absolute_timeout_secs: Some(policy.absolute_timeout_secs),
            };
            assert_eq!(apply(&sm, &cmd), MetaOutcome::InvalidSetting, "{policy:?}");
        }
        // Valid alone, but not merged with the stored 30-day idle timeout.
        let too_short = MetaCommand::SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: None,
            absolute_timeout_secs: Some(60),
        };
        assert_eq!(apply(&sm, &too_short), MetaOutcome::InvalidSetting);
        let short = SessionPolicy {
            idle_timeout_secs: 60,
            absolute_timeout_secs: 3_600,
        };
        // Two changes of different fields, each proposed from the same earlier
        // read: both stand.
        let idle = MetaCommand::SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: Some(60),
            absolute_timeout_secs: None,
        };
        let absolute = MetaCommand::SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: None,
            absolute_timeout_secs: Some(3_600),
        };
        assert!(matches!(apply(&sm, &idle), MetaOutcome::TenantUpdated(_)));
        match apply(&sm, &absolute) {
            MetaOutcome::TenantUpdated(t) => assert_eq!(t.sessions, short),
            other => panic!("{other:?}"),
        }
        let set = |tenant_id: &str| MetaCommand::SetSessionPolicy {
            tenant_id: tenant_id.to_owned(),
            idle_timeout_secs: Some(60),
            absolute_timeout_secs: None,
        };
        let a = sm
            .tenant_view(TenantLookup::Id("a"))
            .expect("read")
            .0
            .expect("present");
        assert_eq!((a.sessions, a.keys.len()), (short, 1));
        assert_eq!(apply(&sm, &set("nope")), MetaOutcome::TenantNotFound);
    }
}
