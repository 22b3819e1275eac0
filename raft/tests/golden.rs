//! Golden encodings of what `raft` replicates, stores and sends: every command
//! and outcome, every query and answer, the log entries, hard state, applied
//! state and stored snapshot, and every peer message (the gRPC method path, the
//! framed `GroupMessage` and its bincode payload, and each kind of reply),
//! compared byte for byte with `raft/tests/golden/*.hex`.
//!
//! A rolling restart mixes old and new binaries, and a data dir outlives the
//! binary that wrote it, so these bytes only change on purpose. A failure names
//! each value whose bytes changed. If the change is intended, note it in
//! `docs/on-disk-layout.md` ("Golden encodings") and regenerate the files (never
//! the default; review the diff):
//!
//! ```text
//! CAIRN_GOLDEN_BLESS=1 cargo test --workspace --test golden
//! ```
//!
//! Values are built in `golden/values.rs` (and storage's `golden/samples.rs`);
//! this file only encodes them the way production does.

#[path = "../../storage/tests/golden/harness.rs"]
mod harness;
// Storage's golden test uses every sample; this one only those in commands.
#[allow(dead_code)]
#[path = "../../storage/tests/golden/samples.rs"]
mod samples;
#[path = "golden/values.rs"]
mod values;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use cairn_raft::error::RaftNodeError;
use cairn_raft::log_store::LogStore;
use cairn_raft::network::Rpc;
use cairn_raft::proto::peer_client::PeerClient;
use cairn_raft::proto::{GroupMessage, Reply};
use cairn_raft::state_machine::StateMachine;
use cairn_raft::types::Entry;
use cairn_storage::sm::tenants::PurgeTenant;
use cairn_storage::sm::{
    Answer as QueryResult, AuthCommand, Command, KvOutcome, Outcome as CommandResult,
};
use cairn_storage::{codec, Engine, HardState};
use harness::Golden;
use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use prost::Message;
use serde::Serialize;
use tonic::codegen::{http, Body as _, Service};
use values::*;

fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode("golden value", value).expect("encode")
}

#[test]
fn golden_commands_and_outcomes() {
    let mut g = Golden::default();
    for (name, cmd) in commands() {
        g.add(name, enc(&cmd));
    }
    for (name, result) in command_results() {
        g.add(name, enc(&result));
    }
    g.check("commands", "replicated commands and their outcomes");
}

#[test]
fn golden_queries_and_answers() {
    let mut g = Golden::default();
    for (name, query) in queries() {
        g.add(name, enc(&query));
    }
    for (name, answer) in query_results() {
        g.add(name, enc(&answer));
    }
    g.check("queries", "linearizable queries and their answers");
}

/// The `raft_log`, `raft_state`, applied state and `snapshot` values, written
/// through the production `LogStore` and `StateMachine` where they allow it.
#[tokio::test]
async fn golden_raft_storage() {
    let mut g = Golden::default();
    // `LogStore::append` encodes each entry with `codec` (its callback cannot be
    // built outside openraft, so the entries are encoded here the same way).
    for (name, entry) in entries() {
        g.add(name, enc(&entry));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path()).expect("open");
    let mut log = LogStore::new(engine.log(1));
    log.save_vote(&vote()).await.expect("vote");
    log.save_committed(Some(log_id(3, 12)))
        .await
        .expect("committed");
    log.purge(log_id(3, 9)).await.expect("purge");
    for (name, which) in [
        ("raft_state.vote", HardState::Vote),
        ("raft_state.committed", HardState::Committed),
        ("raft_state.purged", HardState::Purged),
    ] {
        let bytes = engine.log(1).hard_state(which).expect("read");
        g.add(name, bytes.expect("written"));
    }

    let mut sm = StateMachine::new(engine.state(1), Arc::default(), false);
    let entry = |index, payload| Entry {
        log_id: log_id(1, index),
        payload,
    };
    let results = sm
        .apply([
            entry(1, EntryPayload::Blank),
            entry(2, EntryPayload::Membership(membership())),
            entry(3, EntryPayload::Normal(Command::Kv(kv_put()))),
            entry(
                4,
                EntryPayload::Normal(Command::Batch(vec![
                    Command::Kv(kv_delete()),
                    Command::Kv(kv_put()),
                ])),
            ),
        ])
        .await
        .expect("apply");
    assert_eq!(
        results.last(),
        Some(&CommandResult::Batch(vec![
            CommandResult::Kv(KvOutcome::Deleted { existed: true }),
            CommandResult::Kv(KvOutcome::Written { revision: 1025 }),
        ]))
    );
    let applied = engine.state(1).applied().expect("read").expect("applied");
    g.add("applied_state", applied);

    let mut builder = sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    g.add("snapshot.data", snapshot.snapshot.into_inner());
    let stored = engine
        .state(1)
        .load_snapshot()
        .expect("read")
        .expect("stored");
    g.add("stored_snapshot", stored);
    g.check(
        "raft_storage",
        "log entries, hard state, applied state and stored snapshot",
    );
}

/// A stand-in for the peer's HTTP/2 channel: records each call's path and
/// request body (the gRPC frames) and answers `Unimplemented`.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

/// A recorded call: its path and request body.
type Call = (String, Vec<u8>);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<tonic::body::Body>> for Recorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let calls = Arc::clone(&self.calls);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let mut body = req.into_body();
            let mut bytes = Vec::new();
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                if let Ok(data) = frame.expect("request body").into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((path, bytes));
            Ok(tonic::Status::unimplemented("recorded").into_http())
        })
    }
}

/// Sends `msg` as `rpc` the way `Peers::call` does, and returns the path and
/// body the channel saw.
async fn sent(rpc: Rpc, msg: GroupMessage) -> Call {
    let recorder = Recorder::default();
    let mut client = PeerClient::new(recorder.clone());
    let refused = match rpc {
        Rpc::AppendEntries => client.append_entries(msg).await.err(),
        Rpc::Vote => client.vote(msg).await.err(),
        Rpc::InstallSnapshot => client.install_snapshot(msg).await.err(),
        Rpc::ForwardBatch => client.forward_batch(msg).await.err(),
        Rpc::Query => client.query(msg).await.err(),
        Rpc::InitGroup => client.init_group(msg).await.err(),
        Rpc::GroupState => client.group_state(msg).await.err(),
        Rpc::Admit => client.admit(msg).await.err(),
        Rpc::Relay => client.relay(msg).await.err(),
    };
    assert!(refused.is_some(), "{rpc:?}: the recorder answers an error");
    only_call(&recorder)
}

fn only_call(recorder: &Recorder) -> Call {
    let mut calls = recorder
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    assert_eq!(calls.len(), 1, "one call recorded");
    calls.remove(0)
}

/// One peer request: its payload, and the call as it goes on the wire.
struct Request {
    rpc: Rpc,
    group: u64,
    hops: u32,
    payload: Vec<u8>,
}

fn request<T: Serialize>(rpc: Rpc, group: u64, hops: u32, value: &T) -> Request {
    Request {
        rpc,
        group,
        hops,
        payload: codec::encode("peer request", value).expect("encode"),
    }
}

fn rpc_name(rpc: Rpc) -> &'static str {
    match rpc {
        Rpc::AppendEntries => "append_entries",
        Rpc::Vote => "vote",
        Rpc::InstallSnapshot => "install_snapshot",
        Rpc::ForwardBatch => "forward_batch",
        Rpc::Query => "query",
        Rpc::InitGroup => "init_group",
        Rpc::GroupState => "group_state",
        Rpc::Admit => "admit",
        Rpc::Relay => "relay",
    }
}

/// A reply payload, and the `Reply` frame that carries it.
fn reply(g: &mut Golden, name: String, payload: Vec<u8>) {
    let frame = Reply {
        payload: payload.clone(),
    };
    g.add(format!("{name}.frame"), frame.encode_to_vec());
    g.add(name, payload);
}

/// How many of `node_errors()` the `forward_batch.reply` sample carries.
const FORWARD_BATCH_REPLY_ERRORS: usize = 5;

/// The sender's node id in every message.
const FROM: u64 = 2;

#[tokio::test]
async fn golden_peer_messages() {
    let mut g = Golden::default();
    let forwarded = vec![
        Command::Kv(kv_put()),
        Command::Auth(AuthCommand::PurgeTenant(PurgeTenant {
            tenant: samples::TENANT_ID.to_owned(),
        })),
    ];
    let requests = [
        // openraft's own RPCs go out with hops 0 (`PeerConnection::raft_call`).
        request(Rpc::AppendEntries, 1, 0, &append_entries_request()),
        request(Rpc::Vote, 1, 0, &vote_request()),
        request(Rpc::InstallSnapshot, 1, 0, &install_snapshot_request()),
        // A forwarded write or read carries the hops so far (at least one).
        request(Rpc::ForwardBatch, 1, 1, &forwarded),
        request(Rpc::Query, 1, 1, &queries()[0].1),
        request(Rpc::InitGroup, 1, 0, &members()),
        request(Rpc::GroupState, 1, 0, &()),
        request(Rpc::Admit, 0, 0, &"18c0ffee-2".to_owned()),
        // A relayed client request: opaque bytes here (the node crate's).
        request(Rpc::Relay, 1, 0, &b"relayed client request".to_vec()),
    ];
    for r in requests {
        let name = rpc_name(r.rpc);
        let msg = GroupMessage {
            group: r.group,
            from: FROM,
            hops: r.hops,
            payload: r.payload.clone(),
        };
        g.add(format!("{name}.request"), r.payload);
        let (path, body) = sent(r.rpc, msg).await;
        g.add(format!("{name}.path"), path.into_bytes());
        g.add(format!("{name}.call"), body);
    }

    // `ReadIndex` is a stream; `Peers::read_indexes` sends one message per round
    // naming the groups (a `&[u64]`), `group` the first of them, hops 1.
    let groups: &[u64] = &[0, 1];
    let payload = codec::encode("peer request", &groups).expect("encode");
    g.add("read_index.request", payload.clone());
    let recorder = Recorder::default();
    let mut client = PeerClient::new(recorder.clone());
    let msg = GroupMessage {
        group: 0,
        from: FROM,
        hops: 1,
        payload,
    };
    let refused = client.read_index(futures::stream::iter([msg])).await;
    assert!(refused.is_err(), "the recorder answers an error");
    let (path, body) = only_call(&recorder);
    g.add("read_index.path", path.into_bytes());
    g.add("read_index.call", body);

    // The replies, as `PeerService` encodes them.
    for (name, r) in append_entries_replies() {
        reply(&mut g, format!("append_entries.reply.{name}"), enc(&r));
    }
    for (name, r) in vote_replies() {
        reply(&mut g, format!("vote.reply.{name}"), enc(&r));
    }
    for (name, r) in install_snapshot_replies() {
        reply(&mut g, format!("install_snapshot.reply.{name}"), enc(&r));
    }
    type Answer = Result<CommandResult, RaftNodeError>;
    let written: Answer = Ok(CommandResult::Kv(KvOutcome::Written { revision: 1025 }));
    let mut answers = vec![written];
    for (i, (name, e)) in node_errors().into_iter().enumerate() {
        g.add(format!("node_error.{name}"), enc(&e));
        // The reply sample holds the errors it was recorded with (each later
        // variant has its own line above).
        if i < FORWARD_BATCH_REPLY_ERRORS {
            answers.push(Err(e));
        }
    }
    reply(&mut g, "forward_batch.reply".to_owned(), enc(&answers));
    let found: Result<QueryResult, RaftNodeError> = Ok(query_results()[0].1.clone());
    reply(&mut g, "query.reply.ok".to_owned(), enc(&found));
    let no_leader: Result<QueryResult, RaftNodeError> = Err(RaftNodeError::NoLeader { group: 1 });
    reply(&mut g, "query.reply.no_leader".to_owned(), enc(&no_leader));
    let indexes: Vec<Result<u64, RaftNodeError>> =
        vec![Ok(42), Err(RaftNodeError::NoLeader { group: 1 })];
    reply(&mut g, "read_index.reply".to_owned(), enc(&indexes));
    for (name, outcome) in init_outcomes() {
        let r: Result<_, String> = Ok(outcome);
        reply(&mut g, format!("init_group.reply.{name}"), enc(&r));
    }
    let failed = |detail: &str| -> Result<(), String> { Err(detail.to_owned()) };
    reply(
        &mut g,
        "init_group.reply.err".to_owned(),
        enc(&failed("not a voter")),
    );
    let initialized: Result<bool, String> = Ok(true);
    reply(&mut g, "group_state.reply.ok".to_owned(), enc(&initialized));
    reply(
        &mut g,
        "group_state.reply.err".to_owned(),
        enc(&failed("not a voter")),
    );
    let admitted: Result<(), String> = Ok(());
    reply(&mut g, "admit.reply.ok".to_owned(), enc(&admitted));
    reply(
        &mut g,
        "admit.reply.err".to_owned(),
        enc(&failed("admitted by another initialisation")),
    );
    g.check(
        "peer",
        "peer messages: gRPC paths, framed GroupMessages, payloads and replies",
    );
}
