//! Shared state of every handler.

use std::sync::Arc;

use object_store::ObjectStore;
use relay_raft::Ledger;

use crate::config::ApiConfig;
use crate::idempotency::InFlightKeys;
use crate::limits::Limits;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub objects: Arc<dyn ObjectStore>,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    pub idempotency: Arc<InFlightKeys>,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>, objects: Arc<dyn ObjectStore>, config: ApiConfig, metrics: Arc<Metrics>) -> Self {
        AppState {
            ledger,
            objects,
            limits: Arc::new(Limits::new(config.limits.clone())),
            config: Arc::new(config),
            metrics,
            idempotency: Arc::default(),
        }
    }
}
