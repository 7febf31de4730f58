//! `relay cluster status|promote|remove`: calls a member's `/cluster/…` API and
//! prints its JSON answer.

use std::time::Duration;

use crate::config::{ClusterAction, ClusterArgs};
use crate::server::NodeError;

pub async fn run(args: ClusterArgs) -> Result<(), NodeError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(70))
        .build()
        .map_err(|e| NodeError::Admin(e.to_string()))?;
    let base = args.url.trim_end_matches('/');
    let request = match &args.action {
        ClusterAction::Status => client.get(format!("{base}/cluster/status")),
        ClusterAction::Promote { node_id } => client
            .post(format!("{base}/cluster/promote"))
            .json(&serde_json::json!({"node_id": node_id})),
        ClusterAction::Remove { node_id } => client
            .post(format!("{base}/cluster/remove"))
            .json(&serde_json::json!({"node_id": node_id})),
    };
    let request = match (&args.cluster_secret, &args.admin_key) {
        (Some(secret), _) => request.header("x-cluster-secret", secret),
        (None, Some(key)) => request.bearer_auth(key),
        (None, None) => return Err(NodeError::Admin("give --cluster-secret or --admin-key".into())),
    };
    let response = request
        .send()
        .await
        .map_err(|e| NodeError::Admin(format!("{base}: {e}")))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| NodeError::Admin(e.to_string()))?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    if status.is_success() {
        Ok(())
    } else {
        Err(NodeError::Admin(format!("{base} answered {status}")))
    }
}
