//! `relay serve`'s upload settings (`--upload-*`, `--scratch-*`, `--tus-*`): how long upload
//! URLs live, when S3 uploads go multipart, and the free scratch tier's bounds.

use clap::Args;
use relay_api::uploads::UploadLimits;

use crate::config::ConfigError;

#[derive(Args, Clone, Debug)]
pub struct UploadArgs {
    /// How long a presigned or node-signed upload URL (and its pending upload) lives.
    #[arg(long, env = "RELAY_UPLOAD_URL_TTL_SECONDS", default_value_t = 3600)]
    pub upload_url_ttl_seconds: u64,
    /// Above this size an S3 upload is presigned as multipart parts.
    #[arg(long, env = "RELAY_UPLOAD_SINGLE_PUT_MAX_BYTES", default_value_t = 32 << 20)]
    pub upload_single_put_max_bytes: u64,
    /// Presigned multipart part size (at least 5 MiB; grown so no upload needs over 10 000 parts).
    #[arg(long, env = "RELAY_UPLOAD_PART_BYTES", default_value_t = 16 << 20)]
    pub upload_part_bytes: u64,
    /// The largest scratch object.
    #[arg(long, env = "RELAY_SCRATCH_MAX_BYTES", default_value_t = 50 << 20)]
    pub scratch_max_bytes: u64,
    /// A scratch object's life.
    #[arg(long, env = "RELAY_SCRATCH_TTL_SECONDS", default_value_t = 24 * 3600)]
    pub scratch_ttl_seconds: u64,
    /// Scratch objects one owner may hold at once.
    #[arg(long, env = "RELAY_SCRATCH_MAX_PER_OWNER", default_value_t = 100)]
    pub scratch_max_per_owner: u64,
    /// Bytes of scratch objects one owner may hold at once.
    #[arg(long, env = "RELAY_SCRATCH_MAX_BYTES_PER_OWNER", default_value_t = 1 << 30)]
    pub scratch_max_bytes_per_owner: u64,
    /// How long a tus upload may take from creation to its last byte.
    #[arg(long, env = "RELAY_TUS_TTL_SECONDS", default_value_t = 24 * 3600)]
    pub tus_ttl_seconds: u64,
    /// A tus PATCH is stored (and its offset recorded) in pieces of at most this size; each is
    /// held in memory while it is written.
    #[arg(long, env = "RELAY_TUS_CHUNK_BYTES", default_value_t = 8 << 20)]
    pub tus_chunk_bytes: u64,
    /// tus uploads one owner may have in progress at once.
    #[arg(long, env = "RELAY_TUS_MAX_PENDING_PER_OWNER", default_value_t = 16)]
    pub tus_max_pending_per_owner: u64,
    /// Bytes the tus uploads one owner has in progress may declare, together.
    #[arg(long, env = "RELAY_TUS_MAX_PENDING_BYTES_PER_OWNER", default_value_t = 32 << 30)]
    pub tus_max_pending_bytes_per_owner: u64,
}

impl UploadArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let day7 = 7 * 24 * 3600;
        let ok = (1..=day7).contains(&self.upload_url_ttl_seconds)
            && (1..=5 << 30).contains(&self.upload_single_put_max_bytes)
            && (5 << 20..=5 << 30).contains(&self.upload_part_bytes)
            && self.scratch_max_bytes >= 1
            && (1..=day7).contains(&self.scratch_ttl_seconds)
            && self.scratch_max_per_owner >= 1
            && self.scratch_max_bytes_per_owner >= self.scratch_max_bytes
            && (1..=day7).contains(&self.tus_ttl_seconds)
            && (64 << 10..=64 << 20).contains(&self.tus_chunk_bytes)
            && self.tus_max_pending_per_owner >= 1
            && self.tus_max_pending_bytes_per_owner >= 1;
        match ok {
            true => Ok(()),
            false => Err(ConfigError(
                "upload settings: TTLs 1 s to 7 days; single PUT up to 5 GiB; parts 5 MiB to 5 GiB; \
                 scratch bytes per owner at least one object's; tus chunks 64 KiB to 64 MiB"
                    .into(),
            )),
        }
    }

    pub fn limits(&self) -> UploadLimits {
        UploadLimits {
            url_ttl_seconds: self.upload_url_ttl_seconds,
            single_put_max_bytes: self.upload_single_put_max_bytes,
            part_bytes: self.upload_part_bytes,
            scratch_max_bytes: self.scratch_max_bytes,
            scratch_ttl_seconds: self.scratch_ttl_seconds,
            scratch_max_count: self.scratch_max_per_owner,
            scratch_max_total_bytes: self.scratch_max_bytes_per_owner,
            tus_ttl_seconds: self.tus_ttl_seconds,
            tus_chunk_bytes: self.tus_chunk_bytes,
            tus_max_pending: self.tus_max_pending_per_owner,
            tus_max_pending_bytes: self.tus_max_pending_bytes_per_owner,
        }
    }
}
