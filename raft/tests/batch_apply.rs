//! A batch entry (several writes proposed as one Raft entry) applies its commands
//! in order, each with its own revision, each seeing the ones before it, and
//! answers one result per command — the same as if they had been separate
//! entries.

use std::sync::Arc;

use cairn_raft::state_machine::StateMachine;
use cairn_raft::types::Entry;
use cairn_storage::sm::kv::{Get, Put};
use cairn_storage::sm::{self, Answer, Command, KvCommand, KvOutcome, Outcome, Query};
use cairn_storage::Engine;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId};

fn entry(index: u64, cmd: Command) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(cmd),
    }
}

fn put(key: &str, value: &str, expected_revision: Option<u64>) -> Command {
    Command::Kv(KvCommand::Put(Put {
        tenant: "t".to_owned(),
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        expected_revision,
    }))
}

fn revision(r: &Outcome) -> u64 {
    match r {
        Outcome::Kv(KvOutcome::Written { revision }) => *revision,
        other => panic!("not a write: {other:?}"),
    }
}

#[tokio::test]
async fn batch_entries_apply_in_order_with_a_revision_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path()).expect("open");
    let mut sm = StateMachine::new(engine.state(1), Arc::default(), false);

    let single = sm
        .apply([entry(1, put("a", "1", None))])
        .await
        .expect("apply");
    let first = revision(&single[0]);

    let results = sm
        .apply([entry(
            2,
            Command::Batch(vec![
                put("a", "2", Some(first)),
                // Sees the write just before it in the same entry.
                put("a", "3", Some(first)),
                put("b", "1", Some(0)),
                put("b", "2", Some(0)),
            ]),
        )])
        .await
        .expect("apply");
    let [Outcome::Batch(out)] = results.as_slice() else {
        panic!("one batch result: {results:?}");
    };
    assert_eq!(out.len(), 4, "one result per command");
    let second = revision(&out[0]);
    assert!(second > first, "revisions grow in log order");
    assert_eq!(
        out[1],
        Outcome::Kv(KvOutcome::RevisionMismatch { current: second }),
        "the guard sees the earlier write of the same entry"
    );
    let b = revision(&out[2]);
    assert!(b > second, "each command of an entry has its own revision");
    assert_eq!(
        out[3],
        Outcome::Kv(KvOutcome::RevisionMismatch { current: b })
    );

    // A later entry's revisions are above every revision of the batch.
    let later = sm
        .apply([entry(3, put("c", "1", None))])
        .await
        .expect("apply");
    assert!(revision(&later[0]) > b);
    let state = engine.state(1);
    let get = Query::KvGet(Get {
        tenant: "t".to_owned(),
        key: b"a".to_vec(),
    });
    let Answer::Kv(Some(a)) = sm::read(&state, &get).expect("read") else {
        panic!("a is written");
    };
    assert_eq!((a.revision, a.value.as_slice()), (second, &b"2"[..]));
}
