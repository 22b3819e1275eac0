//! `RaftLogStorage` for one group, over the node's shared RocksDB.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_storage::{codec, GroupLog, HardState};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogId, RaftLogReader, StorageIOError,
};

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// A group's log store. Clones share the same log (and the same gauges).
#[derive(Clone)]
pub struct LogStore {
    log: GroupLog,
    /// Last committed index seen by `save_committed` (0: none), for status reporting.
    committed: Arc<AtomicU64>,
    /// Votes persisted by `save_vote` since start: any change ends a leader lease.
    votes: Arc<AtomicU64>,
    /// The index of the last entry in this log (set as an append begins, lowered
    /// by a truncation): on a leader, no node can have applied a later entry.
    last: Arc<AtomicU64>,
}

pub(crate) fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: &(impl std::error::Error + 'static),
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(e)).into()
}

fn read_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    #[must_use]
    pub fn new(log: GroupLog) -> Self {
        Self {
            log,
            committed: Arc::new(AtomicU64::new(0)),
            votes: Arc::new(AtomicU64::new(0)),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The index of the last entry in this log (see `last`; 0 until openraft
    /// reads the log state at start).
    #[must_use]
    pub fn last_index_gauge(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.last)
    }

    /// Counts the votes persisted since start (each counted as its write begins).
    #[must_use]
    pub fn vote_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.votes)
    }

    /// The commit index last reported by openraft (0 before any).
    #[must_use]
    pub fn committed_gauge(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.committed)
    }

    fn hard<T: serde::de::DeserializeOwned>(
        &self,
        which: HardState,
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        match self.log.hard_state(which).map_err(|e| read_err(&e))? {
            Some(bytes) => Ok(Some(codec::decode(what, &bytes).map_err(|e| read_err(&e))?)),
            None => Ok(None),
        }
    }

    fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
        codec::decode("log entry", bytes).map_err(|e| read_err(&e))
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        let rows = self.log.range(start, end).map_err(|e| read_err(&e))?;
        rows.iter()
            .map(|(_, bytes)| Self::decode_entry(bytes))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.hard(HardState::Purged, "purged log id")?;
        let last_log_id = match self.log.last().map_err(|e| read_err(&e))? {
            Some((_, bytes)) => Some(*Self::decode_entry(&bytes)?.get_log_id()),
            None => last_purged_log_id,
        };
        self.last
            .store(last_log_id.map_or(0, |l| l.index), Ordering::Release);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = codec::encode("vote", vote)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        // Counted before the write: openraft answers a candidate only after this
        // returns, so a lease ends before the vote it granted can elect anyone.
        self.votes.fetch_add(1, Ordering::AcqRel);
        self.log
            .set_hard_state(HardState::Vote, &bytes, true)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.hard(HardState::Vote, "vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let bytes = codec::encode("committed log id", &committed).map_err(|e| write_err(&e))?;
        self.log
            .set_hard_state(HardState::Committed, &bytes, false)
            .map_err(|e| write_err(&e))?;
        self.committed
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self.hard(HardState::Committed, "committed")?;
        let committed = committed.flatten();
        self.committed
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let rows = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, codec::encode("log entry", &e)?)))
            .collect::<Result<Vec<_>, cairn_storage::StorageError>>()
            .map_err(|e| write_err(&e))?;
        if let Some((last, _)) = rows.last() {
            // Before anything can be replicated from it.
            self.last.store(*last, Ordering::Release);
        }
        // The synced write blocks on fsync: keep it off the async workers.
        let log = self.log.clone();
        let result = tokio::task::spawn_blocking(move || log.append(rows))
            .await
            .map_err(|e| write_err(&e))?;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(&e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.last
            .store(log_id.index.saturating_sub(1), Ordering::Release);
        self.log
            .truncate_from(log_id.index)
            .map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let marker = codec::encode("purged log id", &log_id).map_err(|e| write_err(&e))?;
        self.log
            .purge_upto(log_id.index, &marker)
            .map_err(|e| write_err(&e))
    }
}
