//! `RaftStateMachine` for one group, over the node's shared RocksDB.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_storage::{codec, sm, ApplyBatch, GroupState};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use crate::log_store::io_err;
use crate::types::{
    Command, Entry, LogId, Outcome, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

/// What the state machine has applied, stored atomically with the applied writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// A snapshot as stored in the `snapshot` column family.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// A group's state machine. Clones share the same state (and snapshot counter).
#[derive(Clone)]
pub struct StateMachine {
    state: GroupState,
    snapshot_seq: Arc<AtomicU64>,
    /// Bumped after every entry applied to the `meta` group and every installed
    /// snapshot, so caches of `meta` records know when to read them again.
    meta_epoch: Arc<AtomicU64>,
    /// Whether this is the `meta` group's state machine (its applies move the epoch).
    is_meta: bool,
    /// The last applied index, set once the applied writes are stored and before
    /// openraft answers their proposers (0 until the first apply or install after
    /// start: a leader lease then relies on its round's read index).
    applied_index: Arc<AtomicU64>,
    /// The last log id of the stored snapshot (`None` inside: not read yet). Held
    /// while storing one: openraft builds snapshots in a task that can race with
    /// installing a newer one, and an older build must never replace a newer
    /// stored snapshot (the log behind the newer one may already be purged).
    stored: Arc<Mutex<Option<Option<LogId>>>>,
}

fn sm_err(verb: ErrorVerb, e: &(impl std::error::Error + 'static)) -> StorageError {
    io_err(ErrorSubject::StateMachine, verb, e)
}

fn snap_err(verb: ErrorVerb, e: &(impl std::error::Error + 'static)) -> StorageError {
    io_err(ErrorSubject::Snapshot(None), verb, e)
}

impl StateMachine {
    /// `is_meta`: whether `state` is the `meta` group's, whose every applied
    /// command moves `meta_epoch` (installed snapshots of any group do too).
    #[must_use]
    pub fn new(state: GroupState, meta_epoch: Arc<AtomicU64>, is_meta: bool) -> Self {
        Self {
            state,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            meta_epoch,
            is_meta,
            applied_index: Arc::new(AtomicU64::new(0)),
            stored: Arc::new(Mutex::new(None)),
        }
    }

    /// The index this state machine last applied (see `applied_index`).
    #[must_use]
    pub fn applied_gauge(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.applied_index)
    }

    fn set_applied_index(&self, last: Option<LogId>) {
        if let Some(last) = last {
            self.applied_index.fetch_max(last.index, Ordering::AcqRel);
        }
    }

    /// The stored snapshot's last log id, read from disk once per process.
    fn stored_last(
        &self,
        cached: &mut Option<Option<LogId>>,
    ) -> Result<Option<LogId>, StorageError> {
        if let Some(last) = *cached {
            return Ok(last);
        }
        let last = match self
            .state
            .load_snapshot()
            .map_err(|e| snap_err(ErrorVerb::Read, &e))?
        {
            Some(blob) => {
                let s: StoredSnapshot =
                    codec::decode("snapshot", &blob).map_err(|e| snap_err(ErrorVerb::Read, &e))?;
                s.meta.last_log_id
            }
            None => None,
        };
        *cached = Some(last);
        Ok(last)
    }

    fn applied(&self) -> Result<Applied, StorageError> {
        match self
            .state
            .applied()
            .map_err(|e| sm_err(ErrorVerb::Read, &e))?
        {
            Some(bytes) => {
                codec::decode("applied state", &bytes).map_err(|e| sm_err(ErrorVerb::Read, &e))
            }
            None => Ok(Applied::default()),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// Reads, encodes and stores the group's whole state: on the blocking pool, so
    /// the runtime's workers (requests, replication, heartbeats) never wait on it.
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let sm = self.clone();
        tokio::task::spawn_blocking(move || sm.build_snapshot_blocking())
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, &std::io::Error::other(e.to_string())))?
    }
}

impl StateMachine {
    fn build_snapshot_blocking(&self) -> Result<Snapshot, StorageError> {
        let started = std::time::Instant::now();
        let (applied, data) = self
            .state
            .export()
            .map_err(|e| snap_err(ErrorVerb::Read, &e))?;
        let applied: Applied = match applied {
            Some(bytes) => {
                codec::decode("applied state", &bytes).map_err(|e| snap_err(ErrorVerb::Read, &e))?
            }
            None => Applied::default(),
        };
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match applied.last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        let blob =
            codec::encode("snapshot", &stored).map_err(|e| snap_err(ErrorVerb::Write, &e))?;
        {
            let mut guard = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            let current = self.stored_last(&mut guard)?;
            if current <= stored.meta.last_log_id {
                self.state
                    .save_snapshot(&blob)
                    .map_err(|e| snap_err(ErrorVerb::Write, &e))?;
                *guard = Some(stored.meta.last_log_id);
            }
            // Else a newer snapshot was installed meanwhile: keep it. openraft
            // ignores a built snapshot older than the one it has.
        }
        tracing::info!(
            snapshot = %stored.meta.snapshot_id,
            bytes = blob.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "snapshot built"
        );
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.applied()?;
        Ok((a.last_applied, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.applied()?;
        let mut batch = self.state.batch();
        let mut results = Vec::new();
        let mut commands_applied = false;
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => Outcome::None,
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    Outcome::None
                }
                EntryPayload::Normal(Command::Batch(cmds)) => {
                    commands_applied = true;
                    let mut out = Vec::with_capacity(cmds.len());
                    for (i, cmd) in cmds.iter().enumerate() {
                        let seq = sequence(entry.log_id.index, i)?;
                        out.push(apply_one(&mut batch, seq, cmd)?);
                    }
                    Outcome::Batch(out)
                }
                EntryPayload::Normal(cmd) => {
                    commands_applied = true;
                    apply_one(&mut batch, sequence(entry.log_id.index, 0)?, &cmd)?
                }
            };
            results.push(result);
        }
        let bytes =
            codec::encode("applied state", &applied).map_err(|e| sm_err(ErrorVerb::Write, &e))?;
        batch
            .set_applied(&bytes)
            .map_err(|e| sm_err(ErrorVerb::Write, &e))?;
        batch.commit().map_err(|e| sm_err(ErrorVerb::Write, &e))?;
        // The epoch moves before the applied index: a reader that sees this
        // index applied sees the new epoch too, so nothing cached under the old
        // one serves it (see `RaftNode::meta_epoch`).
        if self.is_meta && commands_applied {
            self.meta_epoch.fetch_add(1, Ordering::Release);
        }
        self.set_applied_index(applied.last_applied);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let applied = Applied {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let applied_bytes =
            codec::encode("applied state", &applied).map_err(|e| snap_err(ErrorVerb::Write, &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let blob =
            codec::encode("snapshot", &stored).map_err(|e| snap_err(ErrorVerb::Write, &e))?;
        // Rows, applied state and the stored snapshot change in one atomic write.
        {
            let mut guard = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            self.state
                .import(&stored.data, &applied_bytes, &blob)
                .map_err(|e| snap_err(ErrorVerb::Write, &e))?;
            *guard = Some(meta.last_log_id);
        }
        // As in `apply`: the epoch first.
        self.meta_epoch.fetch_add(1, Ordering::Release);
        self.set_applied_index(meta.last_log_id);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let Some(blob) = self
            .state
            .load_snapshot()
            .map_err(|e| snap_err(ErrorVerb::Read, &e))?
        else {
            return Ok(None);
        };
        let stored: StoredSnapshot =
            codec::decode("snapshot", &blob).map_err(|e| snap_err(ErrorVerb::Read, &e))?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// Most commands in one entry: each gets its own sequence number.
pub(crate) const COMMANDS_PER_ENTRY: usize = 256;
const SEQ_PER_ENTRY: u64 = COMMANDS_PER_ENTRY as u64;

/// The sequence number of the `position`-th command of entry `index`
/// (`index × 256 + position`): what a command uses as its KV revision and audit
/// row key. Strictly increasing in log order, unique per command, the same on
/// every replica; below 2^53 (exact in JSON numbers) until index 2^45.
fn sequence(index: u64, position: usize) -> Result<u64, StorageError> {
    u64::try_from(position)
        .ok()
        .filter(|p| *p < SEQ_PER_ENTRY)
        .and_then(|p| index.checked_mul(SEQ_PER_ENTRY)?.checked_add(p))
        .ok_or_else(|| {
            sm_err(
                ErrorVerb::Write,
                &std::io::Error::other(format!(
                    "entry {index}: command {position} is beyond the sequence space"
                )),
            )
        })
}

/// Applies one command of an entry at sequence `seq` (the state machine's
/// dispatch decides what it means).
fn apply_one(batch: &mut ApplyBatch<'_>, seq: u64, cmd: &Command) -> Result<Outcome, StorageError> {
    sm::apply(batch, seq, cmd).map_err(|e| sm_err(ErrorVerb::Write, &e))
}
