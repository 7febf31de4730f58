//! Opening the object store named by `--objects`.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::server::NodeError;

/// `file:///abs/path` or `file://relative/path`: a directory on local disk, fsynced on write so an
/// acknowledged lease's bytes survive a power cut like its ledger entry does.
pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>, NodeError> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(NodeError::Objects(format!("{url}: empty path")));
        }
        std::fs::create_dir_all(path).map_err(|e| NodeError::Objects(format!("{url}: {e}")))?;
        let fs = LocalFileSystem::new_with_prefix(path)
            .map_err(|e| NodeError::Objects(format!("{url}: {e}")))?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        return Ok(Arc::new(fs));
    }
    Err(NodeError::Objects(format!(
        "{url}: unsupported object store URL (expected file://PATH)"
    )))
}
