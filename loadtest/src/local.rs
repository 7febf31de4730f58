//! A throwaway local Relay cluster for `bench`: the test kit's launcher with the flags a
//! benchmark needs; its processes and data dir go when it is dropped.

use std::path::Path;

use relay_testkit::Cluster;

use crate::LoadError;

pub use relay_testkit::default_relay_bin;

/// The `relay` binary to start: the one given, else the one next to this executable.
pub fn relay_bin(given: Option<&Path>) -> Result<std::path::PathBuf, LoadError> {
    match given.map(Path::to_path_buf).or_else(default_relay_bin) {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(LoadError::Args(format!("{} is not a file", p.display()))),
        None => Err(LoadError::Args("no relay binary found; pass --relay-bin".into())),
    }
}

/// One client per node of `cluster`, sharing `http` and the founder's API key.
pub fn clients(cluster: &Cluster, http: &reqwest::Client) -> Vec<relay_testkit::Client> {
    let key = cluster.nodes[0].key();
    cluster
        .urls()
        .iter()
        .map(|u| relay_testkit::Client::new(http.clone(), u).bearer(&key))
        .collect()
}

/// The cluster secret of every cluster `bench`, `scale` and `expiry` start.
pub const SECRET: &str = "loadtest-cluster-secret-0123456789";

/// Starts `nodes` members sharing one object directory, each with `extra` flags; node 1 founds
/// the cluster.
pub async fn start(relay_bin: &Path, nodes: u64, extra: &[String]) -> Result<Cluster, LoadError> {
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
                .args(["--max-uploads-per-client", "256", "--max-concurrent-uploads", "256"])
                .args(extra)
        })
        .start()
        .await
        .map_err(|e| LoadError::Local(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A local x402 facilitator (`relay dev-facilitator`) whose wallets are all funded; it goes when
/// dropped.
pub struct LocalFacilitator {
    child: std::process::Child,
    pub url: String,
}

impl LocalFacilitator {
    pub fn start(relay_bin: &Path) -> Result<LocalFacilitator, LoadError> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(relay_bin)
            .args([
                "dev-facilitator",
                "--listen",
                "127.0.0.1:0",
                "--balance",
                "1000000000000000",
            ])
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| LoadError::Local(format!("dev-facilitator: {e}")))?;
        let mut line = String::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LoadError::Local("dev-facilitator: no stdout".into()))?;
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| LoadError::Local(format!("dev-facilitator: {e}")))?;
        if !line.starts_with("http://") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LoadError::Local(format!("dev-facilitator said {line:?}")));
        }
        Ok(LocalFacilitator {
            child,
            url: line.trim().to_string(),
        })
    }

    /// The flags that make a node take x402 payments through it.
    pub fn relay_args(&self) -> Vec<String> {
        vec![
            "--x402-facilitator-url".into(),
            self.url.clone(),
            "--x402-pay-to".into(),
            "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
        ]
    }
}

impl Drop for LocalFacilitator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
