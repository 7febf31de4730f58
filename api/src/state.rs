//! Shared state of every handler.

use std::sync::Arc;

use object_store::ObjectStore;
use relay_raft::Ledger;

use crate::config::ApiConfig;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::InFlightKeys;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::x402::facilitator::Facilitator;

#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub objects: Arc<dyn ObjectStore>,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    pub idempotency: Arc<InFlightKeys>,
    /// The x402 facilitator's client, when x402 is on.
    pub facilitator: Option<Facilitator>,
    /// The S3 client behind `objects` when the store is S3: it presigns uploads.
    pub s3: Option<crate::uploads::S3Direct>,
    /// Accesses served, waiting to be written to the ledger in batches.
    pub accesses: Arc<crate::accesses::AccessLog>,
    /// Small objects already read and verified (bounded; see `object_cache`).
    pub object_cache: Arc<crate::object_cache::ObjectCache>,
}

impl AppState {
    pub fn new(
        ledger: Arc<Ledger>,
        objects: Arc<dyn ObjectStore>,
        config: ApiConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let facilitator = match &config.x402 {
            Some(x) => Some(Facilitator::new(&x.facilitator_url, x.facilitator_timeout)?),
            None => None,
        };
        Ok(AppState {
            ledger,
            objects,
            limits: Arc::new(Limits::new(config.limits.clone())),
            config: Arc::new(config),
            metrics,
            idempotency: Arc::default(),
            facilitator,
            s3: None,
            accesses: Arc::default(),
            object_cache: Arc::default(),
        })
    }

    /// Presigned uploads go straight to this S3 bucket (the one `objects` names).
    pub fn with_s3(mut self, s3: Option<crate::uploads::S3Direct>) -> Self {
        self.s3 = s3;
        self
    }

    /// The facilitator's client; only asked for on the x402 path, which exists only with it.
    pub fn facilitator(&self) -> ApiResult<&Facilitator> {
        self.facilitator
            .as_ref()
            .ok_or_else(|| ApiError::Internal("x402 payment without a facilitator".into()))
    }
}
