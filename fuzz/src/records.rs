//! Fuzz target `records`: `cairn_storage::codec::decode` of every type Cairn
//! reads back from disk or from a peer: the stored records, the raft log and
//! hard state, the replicated wire enums, and the peer requests and replies.
//! The first input byte picks the type (modulo their count), the rest is decoded.
//!
//! Properties, for whatever decodes:
//! - decoding never panics, aborts or overflows the stack (`scripts/fuzz.sh`
//!   runs targets on a 2 MiB stack, a tokio worker's);
//! - the value encodes again, to no more bytes than the input, and that encoding
//!   decodes to an equal value;
//! - for types without maps the encoding is canonical except for the width of
//!   varints (bincode accepts a wider one than it writes), so a re-encoding as
//!   long as the input is the input, byte for byte;
//! - for types with maps (openraft's memberships; keys may arrive unsorted or
//!   twice) or without `PartialEq`, the re-encoding is a fixed point.
//!
//! Type paths are named only in the `use` lists below: when a type moves, change
//! its path here.

use std::collections::BTreeMap;

use cairn_raft::error::RaftNodeError;
use cairn_raft::node::InitOutcome;
use cairn_raft::types::{Entry, LogId, Node, NodeId, Vote};
use cairn_raft::TypeConfig;
use cairn_storage::sm::{Answer as QueryResult, Command, Outcome as CommandResult, Query};
use cairn_storage::{
    codec, ApiKeyRecord, AuditEvent, EmailEntry, EventRecord, KvRecord, MasterKeyRecord,
    MasterKeyState, NodeIdentity, Revocation, SessionPolicy, SessionRecord, SigningKeyRecord,
    SigningKeys, TenantRecord, UserRecord, WrappedKey,
};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::samples::*;
use crate::values::*;

type Check = fn(&[u8]);

/// The snapshot data `GroupState::export` writes (a private alias there).
type SnapshotRows = Vec<(Vec<u8>, Vec<u8>)>;

/// A peer's answer to an RPC that can fail with a node error.
type Answer<T> = Result<T, RaftNodeError>;

/// Every decoded type, by the name its seeds use. The first input byte indexes
/// this list: append new types at the end, so saved inputs keep their meaning.
const TYPES: &[(&str, Check)] = &[
    // Stored records (`storage/src/keys.rs` names the row of each).
    ("kv_record", exact::<KvRecord>),
    ("tenant_record", exact::<TenantRecord>),
    ("wrapped_key", exact::<WrappedKey>),
    ("session_policy", exact::<SessionPolicy>),
    ("master_key_state", exact::<MasterKeyState>),
    ("master_key_record", exact::<MasterKeyRecord>),
    ("api_key_record", exact::<ApiKeyRecord>),
    ("signing_keys", exact::<SigningKeys>),
    ("signing_key_record", exact::<SigningKeyRecord>),
    ("email_entry", exact::<EmailEntry>),
    ("user_record", exact::<UserRecord>),
    ("session_record", exact::<SessionRecord>),
    ("revocation", exact::<Revocation>),
    ("audit_event", exact::<AuditEvent>),
    ("node_identity", exact::<NodeIdentity>),
    // The `node` rows holding plain values (admission id, staged key paths), and
    // the snapshot data (`GroupState::export`'s rows).
    ("string", exact::<String>),
    ("strings", exact::<Vec<String>>),
    ("snapshot_rows", exact::<SnapshotRows>),
    // The raft log and hard state.
    ("log_entry", stable::<Entry>),
    ("vote", exact::<Vote>),
    ("committed", exact::<Option<LogId>>),
    ("purged", exact::<LogId>),
    // The replicated wire enums.
    ("command", exact::<Command>),
    ("command_result", exact::<CommandResult>),
    ("query", exact::<Query>),
    ("query_result", exact::<QueryResult>),
    // Peer requests (`raft/src/server.rs`) ...
    ("append_entries", stable::<AppendEntriesRequest<TypeConfig>>),
    ("vote_request", exact::<VoteRequest<NodeId>>),
    (
        "install_snapshot",
        stable::<InstallSnapshotRequest<TypeConfig>>,
    ),
    ("forward_batch", exact::<Vec<Command>>),
    ("read_index", exact::<Vec<u64>>),
    ("init_group", stable::<BTreeMap<NodeId, Node>>),
    // ... and replies (`raft/src/network.rs` decodes them).
    (
        "append_entries_reply",
        exact::<RaftReply<AppendEntriesResponse<NodeId>>>,
    ),
    ("vote_reply", exact::<RaftReply<VoteResponse<NodeId>>>),
    ("install_snapshot_reply", exact::<SnapshotReply>),
    ("forward_batch_reply", exact::<Vec<Answer<CommandResult>>>),
    ("query_reply", exact::<Answer<QueryResult>>),
    ("read_index_reply", exact::<Vec<Answer<u64>>>),
    ("init_group_reply", exact::<Result<InitOutcome, String>>),
    ("group_state_reply", exact::<Result<bool, String>>),
    ("admit_reply", exact::<Result<(), String>>),
    // Wire version 2's stored records.
    ("event_record", exact::<EventRecord>),
    ("wire_version", exact::<u32>),
];

/// Decodes `bytes` as a `T`; if that works, re-encodes it and checks the size.
fn decode_encode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<(T, Vec<u8>)> {
    let value: T = codec::decode("fuzz input", bytes).ok()?;
    let encoded = codec::encode("fuzz input", &value).expect("a decoded value encodes");
    assert!(
        encoded.len() <= bytes.len(),
        "re-encoding is longer than the input ({} > {})",
        encoded.len(),
        bytes.len()
    );
    Some((value, encoded))
}

/// A type whose encoding is canonical up to varint widths.
fn exact<T: Serialize + DeserializeOwned + PartialEq>(bytes: &[u8]) {
    let Some((value, encoded)) = decode_encode::<T>(bytes) else {
        return;
    };
    let again: T = codec::decode("re-encoding", &encoded).expect("a re-encoding decodes");
    assert!(again == value, "decode(encode(value)) is another value");
    if encoded.len() == bytes.len() {
        assert_eq!(
            encoded, bytes,
            "a re-encoding as long as the input differs from it"
        );
    }
}

/// A type with maps, or without `PartialEq`: re-encoding is a fixed point.
fn stable<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    let Some((_, encoded)) = decode_encode::<T>(bytes) else {
        return;
    };
    let again: T = codec::decode("re-encoding", &encoded).expect("a re-encoding decodes");
    let twice = codec::encode("re-encoding", &again).expect("encodes");
    assert_eq!(twice, encoded, "re-encoding is not a fixed point");
}

/// Checks every property for one input; panics on the first that fails.
///
/// # Panics
/// When a property fails (that is the finding).
pub fn run(data: &[u8]) {
    if let Some((&which, bytes)) = data.split_first() {
        (TYPES[usize::from(which) % TYPES.len()].1)(bytes);
    }
}

/// The golden samples (`storage/tests/golden/samples.rs`,
/// `raft/tests/golden/values.rs`): one value of every record and of every wire
/// variant, each encoded as its type.
///
/// # Panics
/// If a sample names a type missing from the list, or does not encode.
#[must_use]
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |ty: &str, name: &str, bytes: Vec<u8>| {
        let index = TYPES
            .iter()
            .position(|(n, _)| *n == ty)
            .unwrap_or_else(|| panic!("no type {ty}"));
        let which = u8::try_from(index).expect("fewer than 256 types");
        out.push((format!("{ty}.{name}"), [&[which][..], &bytes].concat()));
    };
    add("kv_record", "sample", enc(&kv_record()));
    add("tenant_record", "sample", enc(&tenant_record()));
    add("wrapped_key", "sample", enc(&wrapped_key()));
    add("session_policy", "sample", enc(&session_policy()));
    add("master_key_state", "sample", enc(&master_key_state()));
    add("master_key_record", "sample", enc(&master_key_record()));
    add("api_key_record", "sample", enc(&api_key_record()));
    add("signing_keys", "sample", enc(&signing_keys()));
    add("signing_key_record", "sample", enc(&signing_key_record()));
    add("email_entry", "sample", enc(&email_entry()));
    add("user_record", "sample", enc(&user_record()));
    add("session_record", "sample", enc(&session_record()));
    add("session_record", "fresh", enc(&fresh_session_record()));
    add("revocation", "sample", enc(&revocation()));
    add("audit_event", "sample", enc(&audit_event()));
    add("event_record", "sample", enc(&event_record()));
    add("wire_version", "sample", enc(&2u32));
    add("node_identity", "sample", enc(&node_identity()));
    add("string", "admission", enc(&"18c0ffee-2".to_owned()));
    add(
        "strings",
        "staged",
        enc(&vec!["/etc/cairn/master-1.key".to_owned()]),
    );
    let rows: SnapshotRows = vec![
        (b"key".to_vec(), enc(&kv_record())),
        (email_index(), enc(&email_entry())),
    ];
    add("snapshot_rows", "sample", enc(&rows));
    for (name, entry) in entries() {
        add("log_entry", &name, enc(&entry));
    }
    add("vote", "sample", enc(&vote()));
    add("committed", "some", enc(&Some(log_id(3, 12))));
    add("committed", "none", enc(&None::<LogId>));
    add("purged", "sample", enc(&log_id(3, 9)));
    for (name, c) in commands() {
        add("command", &name, enc(&c));
    }
    for (name, r) in command_results() {
        add("command_result", &name, enc(&r));
    }
    for (name, q) in queries() {
        add("query", &name, enc(&q));
    }
    for (name, r) in query_results() {
        add("query_result", &name, enc(&r));
    }
    add("append_entries", "sample", enc(&append_entries_request()));
    add("vote_request", "sample", enc(&vote_request()));
    add(
        "install_snapshot",
        "sample",
        enc(&install_snapshot_request()),
    );
    let forwarded: Vec<Command> = commands().into_iter().map(|(_, c)| c).collect();
    add("forward_batch", "every_command", enc(&forwarded));
    add("read_index", "sample", enc(&vec![0u64, 1]));
    add("init_group", "sample", enc(&members()));
    for (name, r) in append_entries_replies() {
        add("append_entries_reply", &name, enc(&r));
    }
    for (name, r) in vote_replies() {
        add("vote_reply", &name, enc(&r));
    }
    for (name, r) in install_snapshot_replies() {
        add("install_snapshot_reply", &name, enc(&r));
    }
    let mut answers: Vec<Answer<CommandResult>> =
        command_results().into_iter().map(|(_, r)| Ok(r)).collect();
    answers.extend(node_errors().into_iter().map(|(_, e)| Err(e)));
    add("forward_batch_reply", "sample", enc(&answers));
    for (name, r) in query_results() {
        add("query_reply", &name, enc(&Answer::Ok(r)));
    }
    for (name, e) in node_errors() {
        add("query_reply", &name, enc(&Answer::<QueryResult>::Err(e)));
    }
    add(
        "read_index_reply",
        "sample",
        enc(&vec![Ok(42u64), Err(RaftNodeError::NoLeader { group: 1 })]),
    );
    for (name, o) in init_outcomes() {
        add("init_group_reply", &name, enc(&Ok::<_, String>(o)));
    }
    add(
        "init_group_reply",
        "err",
        enc(&Err::<InitOutcome, _>("not a voter".to_owned())),
    );
    add("group_state_reply", "ok", enc(&Ok::<_, String>(true)));
    add("admit_reply", "ok", enc(&Ok::<(), String>(())));
    add(
        "admit_reply",
        "err",
        enc(&Err::<(), _>(
            "admitted by another initialisation".to_owned(),
        )),
    );
    out
}

fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode("seed", value).expect("a sample encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_seed_that_decodes() {
        let seeds = seeds();
        for (index, (ty, check)) in TYPES.iter().enumerate() {
            let mine: Vec<_> = seeds
                .iter()
                .filter(|(_, d)| usize::from(d[0]) == index)
                .collect();
            assert!(!mine.is_empty(), "no seed for {ty}");
            for (name, data) in mine {
                assert!(name.starts_with(&format!("{ty}.")), "{name} is not a {ty}");
                check(&data[1..]);
            }
        }
        // The first byte picks the type modulo the count: every byte is an input.
        assert!(TYPES.len() < 256);
    }

    /// A peer's `AppendEntries` reply carrying a storage error whose `AnyError`
    /// source chain is `levels` deep (three bytes a level).
    fn nested_any_error_reply(levels: usize) -> Vec<u8> {
        // Err, RaftError::Fatal, Fatal::StorageError, StorageError::IO,
        // ErrorSubject::Store, ErrorVerb::Read.
        let mut bytes = vec![1, 1, 0, 1, 0, 0];
        // Each level: no type, an empty message, Some(source) ...
        bytes.extend([0, 0, 1].repeat(levels));
        // ... the innermost: no type, no message, no source, context, backtrace ...
        bytes.extend([0, 0, 0, 0, 0]);
        // ... then each outer level's context and backtrace, and the IO error's.
        bytes.extend([0, 0].repeat(levels));
        bytes.push(0);
        bytes
    }

    #[test]
    fn a_deeply_nested_peer_error_is_refused_not_a_stack_overflow() {
        type Reply = RaftReply<AppendEntriesResponse<NodeId>>;
        let shallow = nested_any_error_reply(3);
        let reply: Reply = codec::decode("t", &shallow).expect("a short chain decodes");
        assert!(reply.is_err());
        exact::<Reply>(&shallow);
        // 200 000 levels overflow a 2 MiB stack without the depth bound.
        let deep = nested_any_error_reply(200_000);
        let err = codec::decode::<Reply>("t", &deep).expect_err("refused");
        assert!(err.to_string().contains("nests too deeply"), "{err}");
    }

    #[test]
    fn a_wider_varint_decodes_and_re_encodes_shorter() {
        // `committed` = Some(LogId { leader_id: { term: 3, node_id: 1 }, index: 12 }),
        // with the index written as a 3-byte varint (0xfb = u16 follows).
        let minimal = codec::encode("t", &Some(log_id(3, 12))).expect("encode");
        assert_eq!(minimal.last(), Some(&12));
        let mut wide = minimal[..minimal.len() - 1].to_vec();
        wide.extend_from_slice(&[0xfb, 12, 0]);
        let value: Option<LogId> =
            codec::decode("t", &wide).expect("bincode accepts a wider varint");
        assert_eq!(value, Some(log_id(3, 12)));
        exact::<Option<LogId>>(&wide);
        exact::<Option<LogId>>(&minimal);
    }
}
