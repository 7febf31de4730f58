//! Limits and prices the API enforces; filled from the node's flags.

use relay_raft::pricing::Pricing;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub pricing: Pricing,
    /// Shortest lease a client may buy.
    pub min_duration_seconds: u64,
    /// Longest lease a client may buy.
    pub max_duration_seconds: u64,
    /// Largest object a Storage lease may hold.
    pub max_object_bytes: u64,
    /// Uploads streaming at once; more wait their turn (bounds memory: each holds up to
    /// `single_put_max_bytes` or two multipart parts).
    pub max_concurrent_uploads: usize,
    /// Requests handled at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Bodies up to this size are written with one PUT; larger ones with a multipart upload.
    pub single_put_max_bytes: usize,
    /// Part size of multipart uploads.
    pub multipart_part_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            pricing: Pricing::default(),
            min_duration_seconds: 60,
            max_duration_seconds: 365 * 86_400,
            max_object_bytes: 5 << 30,
            max_concurrent_uploads: 16,
            max_concurrent_requests: 1024,
            single_put_max_bytes: 8 << 20,
            multipart_part_bytes: 8 << 20,
        }
    }
}
