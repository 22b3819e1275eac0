//! openraft's storage conformance suite against the RocksDB log store and state
//! machine: the contract openraft relies on (log state, vote, truncate, purge,
//! membership recovery, snapshot transfer).

use cairn_raft::log_store::LogStore;
use cairn_raft::state_machine::StateMachine;
use cairn_raft::TypeConfig;
use cairn_storage::Engine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb, StorageError, StorageIOError};

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let io = |e: &dyn std::error::Error| -> StorageError<u64> {
            StorageIOError::new(
                ErrorSubject::Store,
                ErrorVerb::Write,
                openraft::AnyError::error(e),
            )
            .into()
        };
        let dir = tempfile::tempdir().map_err(|e| io(&e))?;
        let engine = Engine::open(dir.path()).map_err(|e| io(&e))?;
        // A group id other than 0 so that key prefixes are exercised.
        let log = LogStore::new(engine.log(7));
        let sm = StateMachine::new(engine.state(7), std::sync::Arc::default(), false);
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_rocksdb() {
    if let Err(e) = Suite::test_all(RocksBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
