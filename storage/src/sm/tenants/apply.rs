//! Applying tenant commands.

use std::collections::{BTreeSet, HashMap};

use super::rules::{first_key, next_key_version, rewrap_covers};
use super::{
    read, AddKeyOutcome, AddTenantKey, CreateOutcome, DeleteTenant, DeleteTenantOutcome,
    PurgeTenant, Purged, SetSessionPolicy, SetSessionPolicyOutcome, SetTenantSettings,
    SetTenantSettingsOutcome, TenantRecord, WrappedKey,
};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{
    api_key_key, signing_key, tenant_api_keys_prefix, tenant_data_prefixes, tenant_email_prefixes,
    tenant_key, tenant_name_key, tenant_settings_key,
};
use crate::sm::events::{Action, Applied, Event};
use crate::Result;

fn put_tenant(batch: &mut ApplyBatch<'_>, t: &TenantRecord) -> Result<()> {
    let key = tenant_key(batch.group(), &t.id);
    batch.put_record("tenant record", key, t)
}

/// Creates `tenant` unless a tenant of that name exists. `credentials_taken`: the
/// first API key given with it belongs to another tenant or its id is taken.
/// `admit_key` decides whether the tenant's key is wrapped under the current
/// master key (and records the master key if none is yet): `Some(refusal)` if not.
/// The caller stores the tenant's first credentials once it is created.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn create<R>(
    batch: &mut ApplyBatch<'_>,
    tenant: &TenantRecord,
    credentials_taken: bool,
    admit_key: impl FnOnce(&mut ApplyBatch<'_>, &WrappedKey) -> Result<Option<R>>,
) -> Result<Applied<CreateOutcome<R>>> {
    let group = batch.group();
    if let Some(id) = batch.get(&tenant_name_key(group, &tenant.name))? {
        let id = String::from_utf8_lossy(&id).into_owned();
        return Ok(Applied::quiet(match read::get(batch, &id)? {
            Some(existing) => CreateOutcome::Exists(existing),
            None => CreateOutcome::NotFound,
        }));
    }
    if !tenant.sessions.is_valid() {
        return Ok(Applied::quiet(CreateOutcome::InvalidSetting));
    }
    let Some(key) = first_key(&tenant.keys) else {
        return Ok(Applied::quiet(CreateOutcome::KeyVersionConflict {
            current: 0,
        }));
    };
    if credentials_taken || batch.contains(&tenant_key(group, &tenant.id))? {
        // A random 128-bit id collided: refuse rather than overwrite.
        return Ok(Applied::quiet(CreateOutcome::KeyVersionConflict {
            current: 1,
        }));
    }
    if let Some(refused) = admit_key(batch, key)? {
        return Ok(Applied::quiet(CreateOutcome::MasterKeyConflict(refused)));
    }
    put_tenant(batch, tenant)?;
    batch.put(
        tenant_name_key(group, &tenant.name),
        tenant.id.as_bytes().to_vec(),
    )?;
    Ok(Applied::with(
        CreateOutcome::Created(tenant.clone()),
        Event::new(Action::TenantCreated, &tenant.id).at(tenant.created_at),
    ))
}

/// Applies an [`AddTenantKey`]; `check` refuses a key not wrapped under the
/// current master key.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn add_key<R>(
    batch: &mut ApplyBatch<'_>,
    cmd: &AddTenantKey,
    check: impl FnOnce(&ApplyBatch<'_>, &WrappedKey) -> Result<Option<R>>,
) -> Result<Applied<AddKeyOutcome<R>>> {
    let Some(mut tenant) = read::get(batch, &cmd.tenant_id)? else {
        return Ok(Applied::quiet(AddKeyOutcome::TenantNotFound));
    };
    let current = tenant.current_key().map_or(0, |k| k.version);
    if let Err(current) = next_key_version(current, cmd.key.version) {
        return Ok(Applied::quiet(AddKeyOutcome::KeyVersionConflict {
            current,
        }));
    }
    if let Some(refused) = check(batch, &cmd.key)? {
        return Ok(Applied::quiet(AddKeyOutcome::MasterKeyConflict(refused)));
    }
    tenant.keys.push(cmd.key.clone());
    put_tenant(batch, &tenant)?;
    let event = Event::new(Action::TenantUpdated, &tenant.id).at(cmd.key.created_at);
    Ok(Applied::with(AddKeyOutcome::KeyAdded(tenant), event))
}

/// Applies a [`SetSessionPolicy`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn set_session_policy(
    batch: &mut ApplyBatch<'_>,
    cmd: &SetSessionPolicy,
) -> Result<Applied<SetSessionPolicyOutcome>> {
    let Some(mut tenant) = read::get(batch, &cmd.tenant_id)? else {
        return Ok(Applied::quiet(SetSessionPolicyOutcome::TenantNotFound));
    };
    let policy = tenant
        .sessions
        .merged(cmd.idle_timeout_secs, cmd.absolute_timeout_secs);
    if !policy.is_valid() {
        return Ok(Applied::quiet(SetSessionPolicyOutcome::InvalidSetting));
    }
    tenant.sessions = policy;
    put_tenant(batch, &tenant)?;
    let event = Event::new(Action::TenantUpdated, &tenant.id);
    Ok(Applied::with(
        SetSessionPolicyOutcome::TenantUpdated(tenant),
        event,
    ))
}

/// Applies a [`SetTenantSettings`].
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn set_settings(
    batch: &mut ApplyBatch<'_>,
    cmd: &SetTenantSettings,
) -> Result<Applied<SetTenantSettingsOutcome>> {
    if read::get(batch, &cmd.tenant_id)?.is_none() {
        return Ok(Applied::quiet(SetTenantSettingsOutcome::TenantNotFound));
    }
    let merged = read::settings(batch, &cmd.tenant_id)?.merged(&cmd.set);
    if !merged.is_valid() {
        return Ok(Applied::quiet(SetTenantSettingsOutcome::InvalidSetting));
    }
    let key = tenant_settings_key(batch.group(), &cmd.tenant_id);
    batch.put_record("tenant settings", key, &merged)?;
    Ok(Applied::with(
        SetTenantSettingsOutcome::SettingsSet(merged),
        Event::new(Action::TenantUpdated, &cmd.tenant_id),
    ))
}

/// Replaces every stored tenant key by its copy in `rewrapped` (wrapped under
/// master key version `next`), if `rewrapped` holds exactly the stored keys;
/// returns whether it did (`false`: nothing changed).
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn rewrap(
    batch: &mut ApplyBatch<'_>,
    rewrapped: &[(String, WrappedKey)],
    next: u32,
) -> Result<bool> {
    let mut tenants = read::list(batch)?;
    let stored: BTreeSet<(String, u32)> = tenants
        .iter()
        .flat_map(|t| t.keys.iter().map(|k| (t.id.clone(), k.version)))
        .collect();
    if !rewrap_covers(&stored, rewrapped, next) {
        return Ok(false);
    }
    let by_key: HashMap<(&str, u32), &WrappedKey> = rewrapped
        .iter()
        .map(|(id, k)| ((id.as_str(), k.version), k))
        .collect();
    for t in &mut tenants {
        for k in &mut t.keys {
            if let Some(new) = by_key.get(&(t.id.as_str(), k.version)) {
                *k = (*new).clone();
            }
        }
        put_tenant(batch, t)?;
    }
    Ok(true)
}

/// Applies a [`DeleteTenant`]: the tenant's rows of every `meta` feature go with
/// it, found through the keyspace.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn delete(
    batch: &mut ApplyBatch<'_>,
    cmd: &DeleteTenant,
) -> Result<Applied<DeleteTenantOutcome>> {
    let group = batch.group();
    let id = &cmd.tenant_id;
    let Some(tenant) = read::get(batch, id)? else {
        return Ok(Applied::quiet(DeleteTenantOutcome::TenantNotFound));
    };
    let keys_prefix = tenant_api_keys_prefix(group, id);
    let key_ids: Vec<Vec<u8>> = batch
        .scan(&keys_prefix)?
        .into_iter()
        .map(|(k, _)| k[keys_prefix.len()..].to_vec())
        .collect();
    for key_id in key_ids {
        batch.delete(api_key_key(group, &key_id))?;
    }
    batch.delete_prefix(&keys_prefix)?;
    for prefix in tenant_email_prefixes(group, id) {
        batch.delete_prefix(&prefix)?;
    }
    batch.delete(signing_key(group, id))?;
    batch.delete(tenant_settings_key(group, id))?;
    batch.delete(tenant_name_key(group, &tenant.name))?;
    batch.delete(tenant_key(group, id))?;
    Ok(Applied::with(
        DeleteTenantOutcome::TenantDeleted(tenant),
        Event::new(Action::TenantDeleted, id),
    ))
}

/// Applies a [`PurgeTenant`] in a data group. Background cleanup after
/// `tenant.deleted`: no event of its own.
///
/// # Errors
/// Reading current state failed.
pub fn purge(batch: &mut ApplyBatch<'_>, cmd: &PurgeTenant) -> Result<Applied<Purged>> {
    let mut rows = 0;
    for prefix in tenant_data_prefixes(batch.group(), &cmd.tenant) {
        rows += batch.delete_prefix(&prefix)?;
    }
    Ok(Applied::quiet(Purged { rows }))
}

#[cfg(test)]
mod tests {
    use super::super::{SessionPolicy, TenantRecord, TenantRef, WrappedKey};
    use crate::engine::GroupState;
    use crate::sm::master_key::MasterKeyState;
    use crate::sm::tenants::{AddTenantKey, SetSessionPolicy};
    use crate::sm::{
        self, Answer, Command, CreateTenant, MetaCommand, MetaOutcome, Outcome, Query, RotateMaster,
    };
    use crate::Engine;

    /// A tenant by name or id and the master key state, as the query reads them.
    fn tenant_view(
        sm: &GroupState,
        by: TenantRef,
    ) -> (Option<TenantRecord>, Option<MasterKeyState>) {
        match sm::read(sm, &Query::Tenant(by)).expect("read") {
            Answer::Tenant { tenant, master } => (tenant, master),
            other => panic!("{other:?}"),
        }
    }

    fn tenants_view(sm: &GroupState) -> Vec<TenantRecord> {
        match sm::read(sm, &Query::Tenants).expect("read") {
            Answer::Tenants { tenants, .. } => tenants,
            other => panic!("{other:?}"),
        }
    }

    fn meta(out: Outcome) -> MetaOutcome {
        match out {
            Outcome::Meta(o) => o,
            other => panic!("{other:?}"),
        }
    }

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
        MetaCommand::CreateTenant(CreateTenant {
            tenant: tenant(id, name),
            master_fingerprint: fp.to_owned(),
            api_key: None,
            signing_key: None,
        })
    }

    fn apply(sm: &GroupState, cmd: &MetaCommand) -> MetaOutcome {
        let mut b = sm.batch();
        let out = meta(sm::apply(&mut b, 1, &Command::Meta(cmd.clone())).expect("apply"));
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
        assert_eq!(tenant_view(&sm, TenantRef::Id("id2".to_owned())).0, None);
        // Another master key is refused once one is established.
        assert!(matches!(
            apply(&sm, &create("id3", "beta", "other")),
            MetaOutcome::MasterKeyConflict { current: Some(_) }
        ));
        let state = tenant_view(&sm, TenantRef::Name("acme".to_owned()))
            .1
            .expect("set");
        assert_eq!(
            (state.current.version, state.current.fingerprint.as_str()),
            (1, "fp1")
        );
        assert_eq!(
            tenant_view(&sm, TenantRef::Name("acme".to_owned()))
                .0
                .map(|t| t.id),
            Some("id1".to_owned())
        );
        assert_eq!(tenants_view(&sm).len(), 1);
    }

    #[test]
    fn key_versions_are_gapless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("id1", "acme", "fp1"));
        let add = |version| {
            MetaCommand::AddTenantKey(AddTenantKey {
                tenant_id: "id1".to_owned(),
                key: key(version, 1, 2),
                master_fingerprint: "fp1".to_owned(),
            })
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
        let t = tenant_view(&sm, TenantRef::Id("id1".to_owned()))
            .0
            .expect("present");
        assert_eq!(t.current_key().map(|k| k.version), Some(2));
        assert!(t.key(1).is_some());
        let missing = MetaCommand::AddTenantKey(AddTenantKey {
            tenant_id: "nope".to_owned(),
            key: key(1, 1, 0),
            master_fingerprint: "fp1".to_owned(),
        });
        assert_eq!(apply(&sm, &missing), MetaOutcome::TenantNotFound);
    }

    #[test]
    fn master_rotation_must_rewrap_every_key_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("a", "acme", "fp1"));
        apply(&sm, &create("b", "beta", "fp1"));
        let rotate = |rewrapped: Vec<(String, WrappedKey)>| {
            MetaCommand::RotateMaster(RotateMaster {
                expected_version: 1,
                fingerprint: "fp2".to_owned(),
                at: 9,
                rewrapped,
            })
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
        let a = tenant_view(&sm, TenantRef::Id("a".to_owned()))
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
        let ok = MetaCommand::CreateTenant(CreateTenant {
            tenant: TenantRecord {
                keys: vec![key(1, 2, 0)],
                ..tenant("c", "gamma")
            },
            master_fingerprint: "fp2".to_owned(),
            api_key: None,
            signing_key: None,
        });
        assert!(matches!(apply(&sm, &ok), MetaOutcome::TenantCreated(_)));
    }

    #[test]
    fn a_rotation_sees_tenants_created_earlier_in_the_same_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sm = Engine::open(dir.path()).expect("open").state(0);
        apply(&sm, &create("a", "acme", "fp1"));
        let mut b = sm.batch();
        sm::apply(&mut b, 1, &Command::Meta(create("b", "beta", "fp1"))).expect("apply");
        let rotate = Command::Meta(MetaCommand::RotateMaster(RotateMaster {
            expected_version: 1,
            fingerprint: "fp2".to_owned(),
            at: 9,
            rewrapped: vec![("a".to_owned(), key(1, 2, 7))],
        }));
        let out = meta(sm::apply(&mut b, 2, &rotate).expect("apply"));
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
            let cmd = MetaCommand::CreateTenant(CreateTenant {
                tenant: TenantRecord {
                    sessions: policy,
                    ..tenant("a", "acme")
                },
                master_fingerprint: "fp1".to_owned(),
                api_key: None,
                signing_key: None,
            });
            assert_eq!(apply(&sm, &cmd), MetaOutcome::InvalidSetting, "{policy:?}");
        }
        assert!(tenant_view(&sm, TenantRef::Name("acme".to_owned()))
            .0
            .is_none());
        apply(&sm, &create("a", "acme", "fp1"));
        for policy in bad {
            let cmd = MetaCommand::SetSessionPolicy(SetSessionPolicy {
                tenant_id: "a".to_owned(),
                idle_timeout_secs: Some(policy.idle_timeout_secs),
                absolute_timeout_secs: Some(policy.absolute_timeout_secs),
            });
            assert_eq!(apply(&sm, &cmd), MetaOutcome::InvalidSetting, "{policy:?}");
        }
        // Valid alone, but not merged with the stored 30-day idle timeout.
        let too_short = MetaCommand::SetSessionPolicy(SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: None,
            absolute_timeout_secs: Some(60),
        });
        assert_eq!(apply(&sm, &too_short), MetaOutcome::InvalidSetting);
        let short = SessionPolicy {
            idle_timeout_secs: 60,
            absolute_timeout_secs: 3_600,
        };
        // Two changes of different fields, each proposed from the same earlier
        // read: both stand.
        let idle = MetaCommand::SetSessionPolicy(SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: Some(60),
            absolute_timeout_secs: None,
        });
        let absolute = MetaCommand::SetSessionPolicy(SetSessionPolicy {
            tenant_id: "a".to_owned(),
            idle_timeout_secs: None,
            absolute_timeout_secs: Some(3_600),
        });
        assert!(matches!(apply(&sm, &idle), MetaOutcome::TenantUpdated(_)));
        match apply(&sm, &absolute) {
            MetaOutcome::TenantUpdated(t) => assert_eq!(t.sessions, short),
            other => panic!("{other:?}"),
        }
        let set = |tenant_id: &str| {
            MetaCommand::SetSessionPolicy(SetSessionPolicy {
                tenant_id: tenant_id.to_owned(),
                idle_timeout_secs: Some(60),
                absolute_timeout_secs: None,
            })
        };
        let a = tenant_view(&sm, TenantRef::Id("a".to_owned()))
            .0
            .expect("present");
        assert_eq!((a.sessions, a.keys.len()), (short, 1));
        assert_eq!(apply(&sm, &set("nope")), MetaOutcome::TenantNotFound);
    }
}
