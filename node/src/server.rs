//! `relay serve`: startup in logged steps, then serve until SIGTERM/SIGINT, then shut down in order:
//! stop accepting, finish in-flight requests (bounded), stop workers, stop Raft, exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use relay_api::{AppState, Metrics};
use relay_raft::pricing::Pricing;
use relay_raft::{Ledger, LedgerConfig, LedgerError, RelayNode, StoreError};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{ConfigError, ServeArgs};
use crate::{bootstrap, cluster, orphans, webhooks, workers};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("object store: {0}")]
    Objects(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    #[error("http listener {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cluster admin: {0}")]
    Admin(String),
    #[error("joining the cluster: {0}")]
    Join(String),
    #[error("backup: {0}")]
    Backup(String),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    /// An API client's failure, with the exit code it means.
    #[error("{1}")]
    Client(u8, String),
}

/// Reloads the HTTPS certificate and key on each SIGHUP; a file that cannot be used is logged and
/// the certificate in use stays. Without TLS, SIGHUP is logged and ignored (never the default
/// action, which would end the process under a supervisor's `reload`).
fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    tls: Option<relay_api::tls::HttpTls>,
) -> Result<tokio::task::JoinHandle<()>, NodeError> {
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.as_ref().map(|t| t.reload()) {
                Some(Ok(())) => info!("SIGHUP: TLS certificate reloaded"),
                Some(Err(e)) => warn!(error = %e, "SIGHUP: TLS certificate not reloaded; the current one stays"),
                None => info!("SIGHUP: nothing to reload (no --tls-cert)"),
            }
        }
    }))
}

/// Binds `addr` (port 0 picks one) and returns the listener with the address it got.
async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), NodeError> {
    let listen_err = |source| NodeError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    Ok((listener, local))
}

pub async fn serve(args: ServeArgs) -> Result<(), NodeError> {
    // First of all: SIGHUP's default action would end the process (a supervisor's `reload`
    // during a long start); from here on it only ever reloads certificates.
    let hup = signal(SignalKind::hangup()).map_err(NodeError::Signal)?;
    args.validate()?;
    info!(node_id = args.node_id, http = %args.http, raft = %args.raft, data_dir = %args.data_dir.display(), "step 1/8: configuration valid");

    if let Some(path) = &args.chaos_clock_offset_file {
        warn!(path = %path.display(), "TEST ONLY: this node's clock follows a chaos offset file");
        relay_raft::chaos::follow_clock_file(path.clone())
            .map_err(|e| ConfigError(format!("--chaos-clock-offset-file: {e}")))?;
    }
    if !args.chaos_dial.is_empty() {
        warn!(pairs = ?args.chaos_dial, "TEST ONLY: peers are reached through chaos proxies");
        relay_raft::chaos::set_dial(relay_raft::chaos::parse_dial(&args.chaos_dial).map_err(ConfigError)?);
    }
    let open_files_limit = crate::fds::raise_limit();
    let max_connections = crate::fds::connection_cap(args.max_connections, open_files_limit)?;
    if max_connections < args.max_connections {
        warn!(
            open_files_limit,
            configured = args.max_connections,
            max_connections,
            "fewer client connections than configured: the open-file limit leaves room for no more"
        );
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|source| NodeError::DataDir {
        path: args.data_dir.display().to_string(),
        source,
    })?;
    let objects_url = args.objects_url();
    let store = relay_api::blobs::store::open(&objects_url).map_err(|e| NodeError::Objects(e.to_string()))?;
    let s3 = relay_api::blobs::store::s3(&objects_url)
        .map_err(|e| NodeError::Objects(e.to_string()))?
        .map(|client| relay_api::uploads::S3Direct::new(client, &objects_url));
    info!(objects = %objects_url, "step 2/8: object store open");

    let http_tls = args.net.http_tls()?;
    let raft_tls = args.net.raft_tls()?;
    let client_ca = args.net.client_ca()?;
    let (listener, http_addr) = bind(&args.http).await?;
    let (raft_listener, raft_addr) = bind(&args.raft).await?;
    args.net.check_bound(raft_addr)?;
    let cluster_secret = cluster::secret(&args)?;
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    let node = RelayNode {
        raft_addr: args.net.advertise_raft.clone().unwrap_or_else(|| raft_addr.to_string()),
        http_addr: args
            .net
            .advertise_http
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{http_addr}")),
        region: args.net.region.clone().unwrap_or_default(),
    };
    if let Some(tls) = &raft_tls {
        crate::net_args::verify_raft_cert(tls, &node.raft_addr)?;
    }
    info!(
        https = http_tls.is_some(),
        raft_mtls = raft_tls.is_some(),
        advertised_raft = %node.raft_addr,
        advertised_http = %node.http_addr,
        region = %node.region,
        "network: how this node is reached"
    );

    let ledger = Arc::new(
        Ledger::start(LedgerConfig {
            node_id: args.node_id,
            dir: args.data_dir.join("ledger"),
            node: node.clone(),
            snapshot_every_entries: args.snapshot_every_entries,
            request_timeout: Duration::from_secs(10),
            cluster_secret: cluster_secret.clone(),
            max_voters: args.voters,
            raft_tls: raft_tls.clone(),
            heartbeat_ms: args.raft_heartbeat_ms,
            election_timeout_ms: args.raft_election_timeout_ms,
        })
        .await?,
    );
    let (raft_stop_tx, mut raft_stop_rx) = watch::channel(false);
    let raft_server = tokio::spawn(relay_raft::grpc::server::serve(
        raft_listener,
        ledger.clone(),
        cluster_secret.clone(),
        Some(relay_api::objects::probe_reader(store.clone())),
        raft_tls,
        async move {
            let _ = raft_stop_rx.changed().await;
        },
    ));
    info!(%raft_addr, "step 3/8: raft transport listening");
    println!("relay: raft transport on {raft_addr}");

    let initialized = ledger.is_initialized().await?;
    let founded = match (&args.join, initialized) {
        (_, true) => false,
        (Some(url), false) => {
            cluster::join(
                url,
                args.node_id,
                &node,
                &cluster_secret,
                client_ca.as_deref(),
                args.net.raft_insecure_plaintext,
            )
            .await?;
            false
        }
        (None, false) => ledger.bootstrap_single().await?,
    };
    info!(initialized_before = initialized, founded, "step 4/8: ledger open");

    // HTTP opens before the node can serve: `/healthz` answers at once and `/readyz` says what the
    // node waits for, however long that takes (the nodes of a stopped cluster come back in any
    // order, and an orchestrator must not see a crash loop meanwhile).
    let metrics = Metrics::new();
    let webhook_policy = Arc::new(args.webhook_policy());
    let witness = args.witness.settings(&cluster_secret)?;
    if args.witness.from_cluster_secret() && args.cluster_secret.is_none() {
        tracing::warn!(
            "the witness signing key is sealed under a secret derived from <data-dir>/cluster-secret, \
             which sits beside the ledger: whoever reads the data directory can open it. In production \
             give --witness-secret-file (kept outside the data directory) or --witness-key-file"
        );
    }
    let api_config = args.api_config(webhook_policy.clone(), cluster_secret.clone(), witness);
    let x402_on = api_config.x402.is_some();
    let s3_client = s3.as_ref().map(|s| s.client.clone());
    let state = AppState::new(ledger.clone(), store.clone(), api_config, metrics.clone())
        .map_err(|e| NodeError::Config(ConfigError(format!("x402 facilitator client: {e}"))))?
        .with_s3(s3);
    let app = relay_api::router(state.clone());
    let mut term = signal(SignalKind::terminate()).map_err(NodeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(NodeError::Signal)?;
    let (drain_tx, mut drain_rx) = watch::channel(false);
    let listener_config = relay_api::listener::ListenerConfig {
        max_connections,
        ..args.listener()
    };
    info!(?listener_config, limits = ?args.limits(), "http bounds");
    let reloader = reload_on_sighup(hup, http_tls.clone())?;
    let server = tokio::spawn(relay_api::listener::serve(
        listener,
        app,
        listener_config,
        http_tls,
        async move {
            let _ = drain_rx.changed().await;
        },
    ));
    info!(%http_addr, "step 5/8: HTTP open: /healthz answers, /readyz answers 503 until this node can serve");

    // A leader and a caught-up state, for as long as it takes; said every few seconds.
    let mut waited_s = 0u64;
    let early = loop {
        tokio::select! {
            ready = ledger.wait_ready(Duration::from_secs(5)) => match ready {
                Ok(()) => break None,
                Err(_) => {
                    waited_s += 5;
                    let s = ledger.status();
                    info!(
                        waited_s,
                        leader = ?s.leader_id,
                        state = ?s.state,
                        "waiting for a leader and a quorum of voters (start the cluster's other nodes with their same commands); /readyz answers 503 until then"
                    );
                }
            },
            _ = term.recv() => break Some(("SIGTERM", None)),
            _ = int.recv() => break Some(("SIGINT", None)),
            reason = ledger.stopped() => break Some(("ledger stopped", Some(reason))),
        }
    };
    if let Some((which, fatal)) = early {
        info!(signal = which, "shutdown before this node was ready");
        let _ = drain_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(args.shutdown_timeout_seconds), server).await;
        let _ = raft_stop_tx.send(true);
        let _ = raft_server.await;
        ledger.shutdown().await;
        return match fatal {
            Some(reason) => Err(NodeError::Ledger(LedgerError::Fatal(reason))),
            None => Ok(()),
        };
    }
    info!(status = ?ledger.status(), "step 6/8: leader known, state caught up");

    // Only the founding node mints keys and seeds prices (also when it stopped before it finished,
    // the first time); a member registers only keys it was given or keeps.
    let unfinished = {
        let reader = ledger.reader();
        !reader.has_admin_key()?
            || reader.account(relay_api::auth::BOOTSTRAP_ACCOUNT_ID)?.is_none()
            || reader.pricing_set()?.is_none()
    };
    let mint = founded || (args.join.is_none() && unfinished);
    bootstrap::ensure(
        &ledger,
        bootstrap::Bootstrap {
            data_dir: &args.data_dir,
            agent_key: args.bootstrap_api_key.as_deref(),
            admin_key: args.admin_api_key.as_deref(),
            balance_micros: args.bootstrap_balance_micros()?,
            pricing: Pricing {
                rate_micros_per_gb_day: args.rate_micros_per_gb_day,
                min_charge_micros: args.min_charge_micros,
            },
            mint,
        },
    )
    .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_webhooks = stop_rx.clone();
    let stop_rx_orphans = stop_rx.clone();
    let sweeper = tokio::spawn(workers::run_sweeper(
        ledger.clone(),
        store.clone(),
        s3_client,
        metrics.clone(),
        Duration::from_millis(args.sweep_interval_ms),
        stop_rx,
    ));
    let orphans = tokio::spawn(orphans::run(
        ledger.clone(),
        store.clone(),
        metrics.clone(),
        Duration::from_secs(args.orphan_sweep_interval_seconds),
        Duration::from_secs(args.orphan_min_age_seconds),
        stop_rx_orphans,
    ));
    let webhooks = tokio::spawn(webhooks::run(
        ledger.clone(),
        webhook_policy,
        metrics.clone(),
        Duration::from_millis(args.sweep_interval_ms.min(20)),
        stop_rx_webhooks,
    ));
    info!(
        interval_ms = args.sweep_interval_ms,
        webhook_allow = ?args.webhook_allow_cidr,
        orphan_min_age_s = args.orphan_min_age_seconds,
        "step 7/8: sweeper, gc, orphan and webhook workers started"
    );
    info!(
        x402 = x402_on,
        "payments: API keys{}",
        if x402_on { " and x402" } else { "" }
    );
    let reconciler = x402_on.then(|| {
        tokio::spawn(relay_api::x402::settle::run(
            state.clone(),
            Duration::from_secs(1),
            stop_tx.subscribe(),
        ))
    });
    // The founding leader installs the witness key and signs the first checkpoint before it says
    // it is ready, so the log's routes answer from the first request; then once a second at most.
    if ledger.is_leader() {
        match relay_api::witness::signer::tick(&state, &mut None).await {
            Ok(()) => info!("witness log ready"),
            Err(e) => tracing::warn!(error = %e, "witness log not ready yet; the signer retries"),
        }
    }
    let access_log = tokio::spawn(relay_api::accesses::run(
        ledger.clone(),
        state.accesses.clone(),
        metrics.clone(),
        stop_tx.subscribe(),
    ));
    let witness_signer = tokio::spawn(relay_api::witness::signer::run(state, stop_tx.subscribe()));
    let leader_watch = tokio::spawn(relay_api::cluster_metrics::watch_leader(
        ledger.clone(),
        metrics.clone(),
        stop_tx.subscribe(),
    ));
    info!(%http_addr, "step 8/8: ready");
    println!("relay: listening on {scheme}://{http_addr}");

    // A storage failure (a full disk, no file handles) stops Raft for good: exit, so a supervisor
    // restarts the node, rather than answer every request with an error.
    let mut fatal = None;
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        reason = ledger.stopped() => {
            tracing::error!(%reason, "the ledger stopped; shutting down");
            fatal = Some(reason);
            "ledger stopped"
        }
    };
    info!(signal = which, "shutdown: draining in-flight requests");
    let _ = drain_tx.send(true);
    let grace = Duration::from_secs(args.shutdown_timeout_seconds);
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(Ok(()))) => info!("shutdown: http drained"),
        Ok(Ok(Err(e))) => warn!(error = %e, "shutdown: http server error"),
        Ok(Err(e)) => warn!(error = %e, "shutdown: http task failed"),
        Err(_) => warn!(
            seconds = args.shutdown_timeout_seconds,
            "shutdown: in-flight requests cut off after the grace period"
        ),
    }
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    let _ = witness_signer.await;
    let _ = access_log.await;
    let _ = leader_watch.await;
    let _ = webhooks.await;
    let _ = orphans.await;
    if let Some(reconciler) = reconciler {
        let _ = reconciler.await;
    }
    let _ = raft_stop_tx.send(true);
    let _ = raft_server.await;
    reloader.abort();
    ledger.shutdown().await;
    info!("shutdown: complete");
    match fatal {
        Some(reason) => Err(NodeError::Ledger(LedgerError::Fatal(reason))),
        None => Ok(()),
    }
}
