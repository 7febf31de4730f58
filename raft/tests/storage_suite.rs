//! Relay's RocksDB log and state machine stores pass openraft's own storage conformance suite.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use relay_raft::store::{open_db, LogStore, StateMachineStore};
use relay_raft::{NodeId, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_db(&dir.path().join("db")).map_err(StorageError::from)?;
        let sm = StateMachineStore::new(db.clone(), &dir.path().join("snapshots")).map_err(StorageError::from)?;
        // The suite asks for purges with no state machine behind them; the guard that makes a
        // purge wait for the snapshot to cover it has its own test (store::log_store).
        Ok((dir, LogStore::unguarded(db), sm))
    }
}

/// The whole suite: log append/truncate/purge, vote, applied state, snapshots.
#[test]
fn passes_openraft_storage_suite() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(Builder)
}
