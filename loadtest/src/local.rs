//! A throwaway local Relay cluster for `bench`: the test kit's launcher with the flags a
//! benchmark needs; its processes and data dir go when it is dropped.

use std::path::Path;

use relay_testkit::Cluster;

use crate::LoadError;

pub use relay_testkit::default_relay_bin;

const SECRET: &str = "loadtest-cluster-secret-0123456789";

/// Starts `nodes` members sharing one object directory; node 1 founds the cluster.
pub async fn start(relay_bin: &Path, nodes: u64) -> Result<Cluster, LoadError> {
    let mut key_bytes = [0u8; 16];
    for (i, b) in key_bytes.iter_mut().enumerate() {
        *b = (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8 * 17);
    }
    let api_key = format!("rs_live_loadtest{}", hex(&key_bytes));
    Cluster::builder(relay_bin)
        .nodes(nodes as usize)
        .secret(SECRET)
        .every_node(|n| {
            n.rust_log("warn")
                .args(["--bootstrap-api-key", &api_key])
                .args(["--bootstrap-balance-usdc", "1000000000"])
                // The benchmark's webhook receiver listens on loopback.
                .args(["--webhook-allow-cidr", "127.0.0.0/8"])
                .args(["--handoff-max-claims", "1000000"])
                // Every client of a benchmark comes from one address and one account: lift the
                // per-client caps to the node's own, so the run measures the node, not the caps.
                .args(["--max-requests-per-ip", "4096", "--max-requests-per-account", "4096"])
                .args(["--max-requests-in-flight", "4096"])
        })
        .start()
        .await
        .map_err(|e| LoadError::Local(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
