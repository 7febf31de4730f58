//! Shared state of every handler.

use std::sync::Arc;

use object_store::ObjectStore;
use relay_raft::Ledger;
use tokio::sync::Semaphore;

use crate::config::ApiConfig;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub objects: Arc<dyn ObjectStore>,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    pub upload_slots: Arc<Semaphore>,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>, objects: Arc<dyn ObjectStore>, config: ApiConfig, metrics: Arc<Metrics>) -> Self {
        let upload_slots = Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1)));
        AppState {
            ledger,
            objects,
            config: Arc::new(config),
            metrics,
            upload_slots,
        }
    }
}
