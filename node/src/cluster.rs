//! Cluster membership from the node's side: the shared secret, joining through any member's
//! HTTP API.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use relay_raft::{NodeId, RelayNode};
use tracing::{info, warn};

use crate::config::ServeArgs;
use crate::server::NodeError;

const SECRET_FILE: &str = "cluster-secret";
/// How long a new node keeps asking to be let in before giving up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(90);

/// The given secret (saved for restarts), else the saved one, else a new one (saved, mode 0600).
pub fn secret(args: &ServeArgs) -> Result<String, NodeError> {
    let path = args.data_dir.join(SECRET_FILE);
    let secret = match (&args.cluster_secret, std::fs::read_to_string(&path)) {
        (Some(given), _) => given.clone(),
        (None, Ok(saved)) if !saved.trim().is_empty() => return Ok(saved.trim().to_string()),
        (None, _) => relay_api::ids::secret_hex().map_err(|e| NodeError::Bootstrap(e.to_string()))?,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| NodeError::Bootstrap(format!("{}: {e}", path.display())))?;
    writeln!(f, "{secret}").map_err(|e| NodeError::Bootstrap(format!("{}: {e}", path.display())))?;
    Ok(secret)
}

/// Asks the member at `url` to add this node; retries while the cluster is busy or electing,
/// stops at once on a refusal (wrong secret, bad request).
pub async fn join(
    url: &str,
    node_id: NodeId,
    node: &RelayNode,
    secret: &str,
    ca_pem: Option<&[u8]>,
    plaintext_ok: bool,
) -> Result<(), NodeError> {
    crate::net_args::check_secret_url(url, plaintext_ok, "--raft-insecure-plaintext").map_err(NodeError::Join)?;
    let client = crate::net_args::https_client(ca_pem)
        .map_err(NodeError::Join)?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(70))
        .build()
        .map_err(|e| NodeError::Join(e.to_string()))?;
    let endpoint = format!("{}/cluster/join", url.trim_end_matches('/'));
    let body = serde_json::json!({
        "node_id": node_id, "raft_addr": node.raft_addr, "http_addr": node.http_addr, "region": node.region,
    });
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        let attempt = client
            .post(&endpoint)
            .header("x-cluster-secret", secret)
            .json(&body)
            .send()
            .await;
        let retry_reason = match attempt {
            Ok(r) if r.status().is_success() => {
                info!(%endpoint, "joined the cluster");
                return Ok(());
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(NodeError::Join(format!("{endpoint} refused: {status} {text}")));
            }
            Ok(r) => format!("{}", r.status()),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::Join(format!(
                "{endpoint}: gave up after {JOIN_TIMEOUT:?}: {retry_reason}"
            )));
        }
        warn!(%endpoint, reason = %retry_reason, "join: retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
