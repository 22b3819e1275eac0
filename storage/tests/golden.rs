//! Golden encodings of what `storage` writes to disk: every stored record, the
//! row keys, the snapshot data format (`GroupState::export`) and the `node`
//! column family, compared byte for byte with `storage/tests/golden/*.hex`.
//!
//! Data dirs written by older binaries must keep opening, so these bytes only
//! change on purpose. A failure names each value whose bytes changed. If the
//! change is intended, note it in `docs/on-disk-layout.md` ("Golden encodings")
//! and regenerate the files (never the default; review the diff):
//!
//! ```text
//! CAIRN_GOLDEN_BLESS=1 cargo test --workspace --test golden
//! ```
//!
//! The values are built in `golden/samples.rs` (shared with raft's golden test);
//! type paths are named only in the `use` lists, so moving a type means changing
//! a path there, never a golden file.

// A test crate's root resolves modules beside it, hence the paths.
#[path = "golden/harness.rs"]
mod harness;
#[path = "golden/samples.rs"]
mod samples;

use std::path::Path;

use cairn_storage::keyspace::{event_key, wire_version_key};
use cairn_storage::keyspace::{
    group_prefix, kv_key, log_end, log_key, row_key, state_key, tenant_row, ALL_CFS, CF_NODE,
    SM_API_KEY, SM_APPLIED, SM_AUDIT, SM_EMAIL, SM_MASTER, SM_SESSION, SM_SIGNING, SM_TENANT,
    SM_TENANT_API_KEY, SM_TENANT_NAME, SM_USER, SM_USER_SESSION,
};
use cairn_storage::sm::cluster::SetWireVersion;
use cairn_storage::sm::email_index::ReserveEmail;
use cairn_storage::sm::kv::Put;
use cairn_storage::sm::sessions::{CreateSession, RevokeSession};
use cairn_storage::sm::users::{CreateUser, DeleteUser};
use cairn_storage::sm::{
    self, AuthCommand, AuthOutcome, Command, CreateTenant, DirectoryCommand, DirectoryOutcome,
    KvCommand, KvOutcome, MetaCommand, MetaOutcome, Outcome, Traced,
};
use cairn_storage::{codec, Actor, Engine, HardState, Trace};
use harness::Golden;
use samples::*;

fn enc<T: serde::Serialize>(value: &T) -> Vec<u8> {
    codec::encode("golden value", value).expect("encode")
}

/// Each record as `codec` encodes it for its row (`storage/src/keyspace.rs` names the
/// row of each), and the records nested in them on their own.
#[test]
fn golden_stored_records() {
    let mut g = Golden::default();
    g.add("kv_record", enc(&kv_record()));
    g.add("tenant_record", enc(&tenant_record()));
    g.add("wrapped_key", enc(&wrapped_key()));
    g.add("session_policy", enc(&session_policy()));
    g.add("master_key_state", enc(&master_key_state()));
    g.add("master_key_record", enc(&master_key_record()));
    g.add("api_key_record", enc(&api_key_record()));
    g.add("signing_keys", enc(&signing_keys()));
    g.add("signing_key_record", enc(&signing_key_record()));
    g.add("email_entry", enc(&email_entry()));
    g.add("user_record", enc(&user_record()));
    g.add("session_record", enc(&session_record()));
    g.add("session_record.fresh", enc(&fresh_session_record()));
    g.add("revocation", enc(&revocation()));
    g.add("audit_event", enc(&audit_event()));
    g.add("event_record", enc(&event_record()));
    g.add("wire_version", enc(&2u32));
    g.add("node_identity", enc(&node_identity()));
    // The `node` rows that hold plain values: `Engine::set_admission` encodes a
    // `&str`, `add_staged_master_key_file` a `Vec<String>`.
    g.add("admission", enc(&"18c0ffee-2"));
    g.add(
        "staged_master_key_files",
        enc(&vec!["/etc/cairn/master-1.key".to_owned()]),
    );
    g.check("records", "stored records (bincode 2, standard config)");
}

/// Row keys, built by the key builders production uses.
#[test]
fn golden_keyspace() {
    const META: u64 = 0;
    const DATA: u64 = 7;
    let mut g = Golden::default();
    for cf in ALL_CFS {
        g.add(format!("cf.{cf}"), cf.as_bytes().to_vec());
    }
    g.add("raft_log.entry", log_key(DATA, 42).to_vec());
    g.add("raft_log.end", log_end(DATA));
    g.add(
        "raft_state.vote",
        state_key(DATA, HardState::Vote as u8).to_vec(),
    );
    g.add(
        "raft_state.committed",
        state_key(DATA, HardState::Committed as u8).to_vec(),
    );
    g.add(
        "raft_state.purged",
        state_key(DATA, HardState::Purged as u8).to_vec(),
    );
    g.add("sm.applied", state_key(DATA, SM_APPLIED).to_vec());
    g.add("sm.kv", kv_key(DATA, TENANT_ID, b"blind-index"));
    g.add("sm.tenant", row_key(META, SM_TENANT, TENANT_ID.as_bytes()));
    g.add(
        "sm.tenant_name",
        row_key(META, SM_TENANT_NAME, TENANT_NAME.as_bytes()),
    );
    g.add("sm.master", row_key(META, SM_MASTER, b""));
    g.add(
        "sm.api_key",
        row_key(META, SM_API_KEY, API_KEY_ID.as_bytes()),
    );
    g.add(
        "sm.tenant_api_key",
        tenant_row(META, SM_TENANT_API_KEY, TENANT_ID, &[API_KEY_ID.as_bytes()]),
    );
    g.add(
        "sm.email",
        tenant_row(META, SM_EMAIL, TENANT_ID, &[&email_index()]),
    );
    g.add("sm.signing", tenant_row(META, SM_SIGNING, TENANT_ID, &[]));
    g.add(
        "sm.user",
        tenant_row(DATA, SM_USER, TENANT_ID, &[USER_ID.as_bytes()]),
    );
    g.add(
        "sm.session",
        tenant_row(DATA, SM_SESSION, TENANT_ID, &[SESSION_ID.as_bytes()]),
    );
    g.add(
        "sm.user_session",
        tenant_row(
            DATA,
            SM_USER_SESSION,
            TENANT_ID,
            &[USER_ID.as_bytes(), SESSION_ID.as_bytes()],
        ),
    );
    g.add(
        "sm.audit.prefix",
        tenant_row(DATA, SM_AUDIT, TENANT_ID, &[]),
    );
    g.add("sm.event", event_key(DATA, TENANT_ID, 1792, 1));
    g.add("sm.wire_version", wire_version_key(META));
    g.add("snapshot.key", group_prefix(DATA).to_vec());
    g.check("keyspace", "row keys of every column family");
}

/// The snapshot data format: `GroupState::export` after applying one command of
/// each row-writing kind, so every row the state machines write today is in
/// it, keyed and encoded as apply wrote it. Then the `node` column family, as
/// `Engine` writes it.
#[test]
fn golden_snapshot_rows_and_node_rows() {
    const META: u64 = 0;
    const DATA: u64 = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Golden::default();
    {
        let engine = Engine::open(dir.path()).expect("open");
        let meta = engine.state(META);
        let mut b = meta.batch();
        let create = Command::Meta(MetaCommand::CreateTenant(CreateTenant {
            tenant: tenant_record(),
            master_fingerprint: FINGERPRINT.to_owned(),
            api_key: Some(Box::new(api_key_record())),
            signing_key: Some(Box::new(signing_key_record())),
        }));
        let created = sm::apply(&mut b, 256, &create).expect("create tenant");
        assert_eq!(
            created,
            Outcome::Meta(MetaOutcome::TenantCreated(tenant_record()))
        );
        let reserve = Command::Directory(DirectoryCommand::ReserveEmail(ReserveEmail {
            tenant_id: TENANT_ID.to_owned(),
            email_index: email_index(),
            entry: email_entry(),
            replace: None,
        }));
        let reserved = sm::apply(&mut b, 512, &reserve).expect("reserve email");
        assert_eq!(
            reserved,
            Outcome::Directory(DirectoryOutcome::EmailReserved)
        );
        b.set_applied(b"meta-applied").expect("applied");
        b.commit().expect("commit");

        let data = engine.state(DATA);
        let mut b = data.batch();
        let put = Command::Kv(KvCommand::Put(Put {
            tenant: TENANT_ID.to_owned(),
            key: b"blind-index".to_vec(),
            value: b"sealed-kv".to_vec(),
            expected_revision: Some(0),
        }));
        assert_eq!(
            sm::apply(&mut b, 1024, &put).expect("put"),
            Outcome::Kv(KvOutcome::Written { revision: 1024 })
        );
        let user = Command::Auth(AuthCommand::CreateUser(CreateUser {
            tenant: TENANT_ID.to_owned(),
            user: user_record(),
        }));
        assert_eq!(
            sm::apply(&mut b, 1280, &user).expect("user"),
            Outcome::Auth(AuthOutcome::UserCreated)
        );
        let session = Command::Auth(AuthCommand::CreateSession(CreateSession {
            tenant: TENANT_ID.to_owned(),
            session: fresh_session_record(),
        }));
        assert_eq!(
            sm::apply(&mut b, 1536, &session).expect("session"),
            Outcome::Auth(AuthOutcome::SessionCreated)
        );
        let revoke = Command::Auth(AuthCommand::RevokeSession(RevokeSession {
            tenant: TENANT_ID.to_owned(),
            session_id: SESSION_ID.to_owned(),
            at: T0 + 9,
            reason: "revoked".to_owned(),
        }));
        assert_eq!(
            sm::apply(&mut b, 1792, &revoke).expect("revoke"),
            Outcome::Auth(AuthOutcome::SessionRevoked { already: false })
        );
        b.set_applied(b"data-applied").expect("applied");
        b.commit().expect("commit");

        for (name, state) in [("snapshot_rows.meta", &meta), ("snapshot_rows.data", &data)] {
            let (applied, rows) = state.export().expect("export");
            assert!(
                applied.is_some(),
                "{name}: the applied state is exported beside"
            );
            g.add(name, rows);
        }

        // Wire version 2: the version row, and a traced command's event record.
        let mut b = meta.batch();
        let set = Command::Meta(MetaCommand::SetWireVersion(SetWireVersion { version: 2 }));
        assert_eq!(
            sm::apply(&mut b, 2048, &set).expect("set wire version"),
            Outcome::Meta(MetaOutcome::WireVersion { current: 2 })
        );
        b.commit().expect("commit");
        let mut b = data.batch();
        let delete = Command::Auth(AuthCommand::DeleteUser(DeleteUser {
            tenant: TENANT_ID.to_owned(),
            user_id: USER_ID.to_owned(),
            at: T0 + 12,
        }));
        let delete_traced = Command::Traced(Traced {
            trace: Trace {
                actor: Actor::ApiKey(API_KEY_ID.to_owned()),
                request_id: Some("req-0002".to_owned()),
                ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
                at: T0 + 12,
            },
            command: Box::new(delete),
        });
        assert_eq!(
            sm::apply(&mut b, 2304, &delete_traced).expect("traced delete"),
            Outcome::Auth(AuthOutcome::UserDeleted { sessions: 1 })
        );
        b.commit().expect("commit");
        for (name, state) in [
            ("snapshot_rows.meta.v2", &meta),
            ("snapshot_rows.data.v2", &data),
        ] {
            g.add(name, state.export().expect("export").1);
        }

        assert!(engine.claim(&node_identity()).expect("claim"));
        engine.set_admission("18c0ffee-2").expect("admission");
        engine
            .add_staged_master_key_file(Path::new("/etc/cairn/master-1.key"))
            .expect("stage");
    }
    // The `node` column family's rows are private to `Engine`: read them raw.
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        dir.path().join("db"),
        ALL_CFS,
        false,
    )
    .expect("open read-only");
    let cf = db.cf_handle(CF_NODE).expect("node cf");
    for row in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, value) = row.expect("node row");
        let key = String::from_utf8(key.to_vec()).expect("node keys are text");
        g.add(format!("node.{key}"), value.to_vec());
    }
    g.check(
        "snapshot",
        "snapshot data rows (GroupState::export) and the node column family",
    );
}
