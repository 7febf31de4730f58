//! `relay serve` configuration: every flag also reads `RELAY_<FLAG>` from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "relay",
    version,
    about = "Relay: a replicated lease store for software agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run a node. With no flags: one node, RocksDB and objects under ./relay-data.
    Serve(ServeArgs),
    /// Inspect or change cluster membership through any member's admin API.
    Cluster(ClusterArgs),
    /// Create accounts, top them up, issue and revoke their API keys.
    Account(AccountArgs),
    /// A local x402 facilitator for development and tests: really checks signatures, amounts,
    /// times and nonces, keeps balances in memory, never touches a chain.
    DevFacilitator(crate::dev_facilitator::DevFacilitatorArgs),
    /// Check a witness proof offline: `relay verify FILE --proof P.tlog-proof --key VKEY`, or two
    /// checkpoints with `--consistency PROOF.json --old A --new B --key VKEY`. Exit 0 valid,
    /// 1 invalid (with the reason), 2 usage.
    Verify(crate::verify::VerifyArgs),
    /// The witness log's tools: `relay witness keygen --origin NAME`.
    Witness(crate::verify::WitnessArgs),
    /// A private CA and node certificates for TLS: `relay cert init`, then
    /// `relay cert issue --name node1 --host node1.example --host 10.0.0.1`.
    Cert(crate::cert::CertArgs),
    /// This binary's version and the formats it writes and reads (data directory, inter-node
    /// calls, snapshots and backups).
    Version,
    /// Copy a cluster's state (consistent, linearizable) and list, or with --with-objects copy,
    /// every object it references: `relay backup --url URL --out DIR`.
    Backup(crate::backup::BackupArgs),
    /// Found a new cluster's data directory from a backup: `relay restore --from DIR --data-dir D`,
    /// then `relay serve --data-dir D`.
    Restore(crate::backup::RestoreArgs),
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub action: ClusterAction,
    #[command(flatten)]
    pub conn: AdminConn,
}

/// `relay account …`: accounts and their API keys, through any member's admin API.
#[derive(Args, Debug, Clone)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub action: AccountAction,
    #[command(flatten)]
    pub conn: AdminConn,
    /// An agent's API key or session token, for `balance` without an id and `billing`.
    #[arg(long, env = "RELAY_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Print the API's JSON answer as it is (`balance` without an id, `billing`).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AccountAction {
    /// Create an account (its id generated unless given) with an opening balance.
    Create {
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value_t = 0)]
        balance_micros: u64,
    },
    /// Print an account's balance: with an id through the admin API; without one, the balance
    /// of the account whose key is given (--key, RELAY_API_KEY).
    Balance { account_id: Option<String> },
    /// The charges to the account whose key is given (--key, RELAY_API_KEY), newest first.
    Billing,
    /// Add to an account's balance (micro-USDC).
    Topup {
        account_id: String,
        #[arg(long)]
        micros: u64,
    },
    /// Issue a new API key for the account (printed once).
    IssueKey { account_id: String },
    /// List the account's keys (ids and first characters).
    Keys { account_id: String },
    /// Revoke a key by its id.
    RevokeKey { account_id: String, key_id: String },
}

/// Where an admin command goes and what proves the caller is an admin.
#[derive(Args, Debug, Clone)]
pub struct AdminConn {
    /// HTTP URL of a member (for changes: the leader; `status` names it).
    #[arg(long, env = "RELAY_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// The cluster secret (or use --admin-key).
    #[arg(long, env = "RELAY_CLUSTER_SECRET", hide_env_values = true, global = true)]
    pub cluster_secret: Option<String>,
    /// An admin key (`rs_admin_…`, printed by the founding node and kept in
    /// `<data-dir>/admin-api-key`), instead of the cluster secret. Agents' keys are refused.
    #[arg(long, env = "RELAY_ADMIN_KEY", hide_env_values = true, global = true)]
    pub admin_key: Option<String>,
    /// A PEM CA to trust for an https:// --url (the cluster's private CA), besides the system's.
    #[arg(long, env = "RELAY_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Send the credential to a plain http:// --url beyond loopback (a network you trust).
    #[arg(long, env = "RELAY_INSECURE_HTTP", global = true)]
    pub insecure_http: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ClusterAction {
    /// Print the member's view: leader, term, voters, learners, addresses, log indexes.
    Status,
    /// Make a learner a voter.
    Promote { node_id: u64 },
    /// Remove a node from the cluster.
    Remove { node_id: u64 },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// A TOML file of settings, keys named like these flags without dashes
    /// (`rate_micros_per_gb_day = 2000`); flags and `RELAY_*` variables override it. See
    /// `relay.example.toml`.
    #[arg(long, env = "RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id in the cluster (1 or more).
    #[arg(long, env = "RELAY_NODE_ID", default_value_t = 1)]
    pub node_id: u64,
    /// Public HTTP API address (port 0 picks a free port; the chosen one is printed).
    #[arg(long, env = "RELAY_HTTP", default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Inter-node Raft address, recorded in the membership.
    #[arg(long, env = "RELAY_RAFT", default_value = "127.0.0.1:9080")]
    pub raft: String,
    /// Where the ledger (RocksDB), snapshots and, by default, object bytes live.
    #[arg(long, env = "RELAY_DATA_DIR", default_value = "./relay-data")]
    pub data_dir: PathBuf,
    /// Join the cluster of this member (its HTTP URL) on first start; ignored once this node's
    /// data dir holds cluster state.
    #[arg(long, env = "RELAY_JOIN")]
    pub join: Option<String>,
    /// Joining nodes become voters while the cluster has fewer; later ones stay learners.
    #[arg(long, env = "RELAY_VOTERS", default_value_t = 3)]
    pub voters: usize,
    /// Secret shared by all members (inter-node calls and `/cluster/…`). Default: the one in
    /// `<data-dir>/cluster-secret`, generated on first start.
    #[arg(long, env = "RELAY_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Object store URL; default `file://<data-dir>/objects`.
    #[arg(long, env = "RELAY_OBJECTS")]
    pub objects: Option<String>,
    /// API key of the bootstrap account (`rs_live_…`), for agents; generated on first start when
    /// absent.
    #[arg(long, env = "RELAY_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<String>,
    /// Admin key (`rs_admin_…`) for `/cluster/…`; generated on first start when absent. Never the
    /// agents' key.
    #[arg(long, env = "RELAY_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,
    /// Opening balance of the bootstrap account, in USDC (up to 6 decimals).
    #[arg(long, env = "RELAY_BOOTSTRAP_BALANCE_USDC", default_value = "100")]
    pub bootstrap_balance_usdc: String,
    /// Shortest lease a client may buy, seconds (tests use 1).
    #[arg(long, env = "RELAY_MIN_DURATION_SECONDS", default_value_t = 60)]
    pub min_duration_seconds: u64,
    /// Longest lease a client may buy, seconds.
    #[arg(long, env = "RELAY_MAX_DURATION_SECONDS", default_value_t = 365 * 86_400)]
    pub max_duration_seconds: u64,
    /// Largest object a Storage lease may hold, bytes.
    #[arg(long, env = "RELAY_MAX_OBJECT_BYTES", default_value_t = 5 << 30)]
    pub max_object_bytes: u64,
    /// Bodies (checkpoint states, messages) up to this many bytes ride inside the Raft entry;
    /// larger ones go to the object store. At most 1 MiB.
    #[arg(long, env = "RELAY_INLINE_MAX_BYTES", default_value_t = 64 << 10)]
    pub inline_max_bytes: u64,
    /// A checkpoint's reserved body size when X-Max-Body-Bytes is not given.
    #[arg(long, env = "RELAY_CHECKPOINT_DEFAULT_BODY_BYTES", default_value_t = 256 << 10)]
    pub checkpoint_default_body_bytes: u64,
    /// The largest X-Max-Body-Bytes a checkpoint may reserve.
    #[arg(long, env = "RELAY_CHECKPOINT_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    pub checkpoint_max_body_bytes: u64,
    /// The largest X-Capacity-Bytes a mailbox may reserve.
    #[arg(long, env = "RELAY_MAILBOX_MAX_CAPACITY_BYTES", default_value_t = 1 << 30)]
    pub mailbox_max_capacity_bytes: u64,
    /// The largest message a mailbox accepts (and the default X-Max-Message-Bytes).
    #[arg(long, env = "RELAY_MAILBOX_MAX_MESSAGE_BYTES", default_value_t = 8 << 20)]
    pub mailbox_max_message_bytes: u64,
    /// The largest X-Max-Messages (the default is 1000 or this, whichever is smaller).
    #[arg(long, env = "RELAY_MAILBOX_MAX_MESSAGES", default_value_t = 10_000)]
    pub mailbox_max_messages: u64,
    /// An internal network webhooks may reach anyway (repeatable; comma-separated in the
    /// environment). By default loopback, private, link-local and unique-local are refused.
    #[arg(long = "webhook-allow-cidr", env = "RELAY_WEBHOOK_ALLOW_CIDR", value_delimiter = ',')]
    pub webhook_allow_cidr: Vec<String>,
    /// The largest max_claims a handoff may allow.
    #[arg(long, env = "RELAY_HANDOFF_MAX_CLAIMS", default_value_t = 1000)]
    pub handoff_max_claims: u32,
    /// The public base URL of this node, for the drop, poll and claim URLs it hands out (default:
    /// the request's Host header over http), and the one origin Sign-In with Ethereum messages may
    /// name (sign-in is off without it).
    #[arg(long, env = "RELAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Price in micro-USDC per GiB-day. The node that founds a cluster writes its prices into
    /// the ledger; after that the ledger's apply on every node (change them with
    /// `POST /cluster/pricing`).
    #[arg(long, env = "RELAY_RATE_MICROS_PER_GB_DAY", default_value_t = 1_000)]
    pub rate_micros_per_gb_day: u64,
    /// Minimum charge per lease, micro-USDC (seeded into the ledger like the rate).
    #[arg(long, env = "RELAY_MIN_CHARGE_MICROS", default_value_t = 29)]
    pub min_charge_micros: u64,
    /// Snapshot the ledger (and purge the log behind it) every this many entries.
    #[arg(long, env = "RELAY_SNAPSHOT_EVERY_ENTRIES", default_value_t = 100_000)]
    pub snapshot_every_entries: u64,
    /// How often the leader sends heartbeats, ms; also how long one replication call may take,
    /// so it must exceed the longest round trip to any member (a far learner included): raise it
    /// across regions (deploy/multi-region.md).
    #[arg(long, env = "RELAY_RAFT_HEARTBEAT_MS", default_value_t = 50)]
    pub raft_heartbeat_ms: u64,
    /// A follower that hears no leader for this long (up to twice it, at random) stands for
    /// election, ms: at least 3 heartbeats; failover takes about this long.
    #[arg(long, env = "RELAY_RAFT_ELECTION_TIMEOUT_MS", default_value_t = 300)]
    pub raft_election_timeout_ms: u64,
    /// How often the leader looks for due expiries and bytes to delete, milliseconds.
    #[arg(long, env = "RELAY_SWEEP_INTERVAL_MS", default_value_t = 200)]
    pub sweep_interval_ms: u64,
    /// How often the leader looks for unreferenced objects, seconds.
    #[arg(long, env = "RELAY_ORPHAN_SWEEP_INTERVAL_SECONDS", default_value_t = 600)]
    pub orphan_sweep_interval_seconds: u64,
    /// Unreferenced objects younger than this are left alone (an upload may still be on its way
    /// to the ledger), seconds. Must exceed the longest upload.
    #[arg(long, env = "RELAY_ORPHAN_MIN_AGE_SECONDS", default_value_t = 3600)]
    pub orphan_min_age_seconds: u64,
    /// Open HTTP connections at most; more wait to be accepted.
    #[arg(long, env = "RELAY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Open HTTP connections from one client address (IPv6: one /64); more are answered 429 and
    /// closed.
    #[arg(long, env = "RELAY_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, env = "RELAY_MAX_REQUESTS_IN_FLIGHT", default_value_t = 1024)]
    pub max_requests_in_flight: usize,
    /// Requests in flight from one client address (IPv6: one /64); more are answered 429.
    #[arg(long, env = "RELAY_MAX_REQUESTS_PER_IP", default_value_t = 256)]
    pub max_requests_per_ip: usize,
    /// Requests in flight for one account; more are answered 429.
    #[arg(long, env = "RELAY_MAX_REQUESTS_PER_ACCOUNT", default_value_t = 256)]
    pub max_requests_per_account: usize,
    /// Uploads streaming to the object store at once; a request waits up to 5 s for a slot.
    #[arg(long, env = "RELAY_MAX_CONCURRENT_UPLOADS", default_value_t = 16)]
    pub max_concurrent_uploads: usize,
    /// Uploads streaming at once from one account, and from one client address; more are
    /// answered 429.
    #[arg(long, env = "RELAY_MAX_UPLOADS_PER_CLIENT", default_value_t = 4)]
    pub max_uploads_per_client: usize,
    /// Bytes of small request bodies (checkpoint states, messages) held in memory at once.
    #[arg(long, env = "RELAY_BODY_BUFFER_BYTES", default_value_t = 256 << 20)]
    pub body_buffer_bytes: u64,
    /// A request's headers must arrive within this; also how long an idle keep-alive connection
    /// stays open, seconds.
    #[arg(long, env = "RELAY_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// A connection that moves no byte either way for this long is closed, seconds.
    #[arg(long, env = "RELAY_IDLE_TIMEOUT_SECONDS", default_value_t = 60)]
    pub idle_timeout_seconds: u64,
    /// An answer the client takes no byte of for this long is cut off (its connection closed),
    /// seconds.
    #[arg(long, env = "RELAY_SEND_TIMEOUT_SECONDS", default_value_t = 20)]
    pub send_timeout_seconds: u64,
    /// A request body that sends nothing for this long is cut off with 408, seconds.
    #[arg(long, env = "RELAY_BODY_IDLE_TIMEOUT_SECONDS", default_value_t = 10)]
    pub body_idle_timeout_seconds: u64,
    /// After a 10 s grace, a request body must average at least this rate or is cut off with 408
    /// (0: no minimum).
    #[arg(long, env = "RELAY_MIN_BODY_BYTES_PER_SECOND", default_value_t = 8 << 10)]
    pub min_body_bytes_per_second: u64,
    /// The largest request head (request line and headers), bytes; larger ones get 431.
    #[arg(long, env = "RELAY_MAX_HEADER_BYTES", default_value_t = 32 << 10)]
    pub max_header_bytes: usize,
    /// How long SIGTERM waits for in-flight requests, seconds.
    #[arg(long, env = "RELAY_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 10)]
    pub shutdown_timeout_seconds: u64,
    /// TEST ONLY (relay-chaos): a file holding a signed millisecond offset added to this node's
    /// clock, re-read while the node runs.
    #[arg(long, hide = true)]
    pub chaos_clock_offset_file: Option<PathBuf>,
    /// TEST ONLY (relay-chaos): `PEER_RAFT_ADDR=VIA_ADDR`: reach that peer through VIA (a fault
    /// injecting proxy). Repeatable.
    #[arg(long, hide = true)]
    pub chaos_dial: Vec<String>,
    #[command(flatten)]
    pub x402: crate::x402_args::X402Args,
    #[command(flatten)]
    pub baton: crate::baton_args::BatonArgs,
    #[command(flatten)]
    pub uploads: crate::upload_args::UploadArgs,
    #[command(flatten)]
    pub witness: crate::witness_args::WitnessArgs,
    #[command(flatten)]
    pub net: crate::net_args::NetArgs,
    /// `text` for people, `json` (one object a line) for log shippers.
    #[arg(long, env = "RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How the node writes its log (stderr).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parses the command line; for `serve --config FILE`, the file's settings are added behind the
/// flags given (which win). On a bad flag or file, prints why and returns exit code 2.
pub fn parse(argv: Vec<std::ffi::OsString>) -> Result<Cli, std::process::ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command();
    let matches = command.clone().try_get_matches_from(&argv).unwrap_or_else(|e| e.exit());
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()));
    };
    let Some(path) = serve.get_one::<PathBuf>("config") else {
        return Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()));
    };
    let serve_command = command.find_subcommand("serve").expect("the serve subcommand");
    let extra = match crate::config_file::flags_from(path, serve_command, serve) {
        Ok(extra) => extra,
        Err(e) => {
            eprintln!("relay: {e}");
            return Err(std::process::ExitCode::from(2));
        }
    };
    let mut full = argv;
    full.extend(extra);
    let matches = command.try_get_matches_from(&full).unwrap_or_else(|e| e.exit());
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ServeArgs {
    /// The SSRF policy for webhooks (CIDRs already validated).
    pub fn webhook_policy(&self) -> relay_api::ssrf::Policy {
        relay_api::ssrf::Policy {
            allow: self.webhook_allow_cidr.iter().filter_map(|c| c.parse().ok()).collect(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.node_id == 0 {
            return bad("--node-id must be at least 1".into());
        }
        if self.http.parse::<SocketAddr>().is_err() {
            return bad(format!("--http {:?} is not an IP:port address", self.http));
        }
        if self.raft.parse::<SocketAddr>().is_err() {
            return bad(format!("--raft {:?} is not an IP:port address", self.raft));
        }
        let price_max = relay_raft::sm::pricing::PRICE_MAX_MICROS;
        if self.rate_micros_per_gb_day > price_max || !(1..=price_max).contains(&self.min_charge_micros) {
            return bad(format!(
                "--rate-micros-per-gb-day must be at most {price_max}, and --min-charge-micros from 1 to {price_max}"
            ));
        }
        if self.inline_max_bytes > relay_raft::sm::INLINE_BODY_MAX as u64 {
            return bad(format!(
                "--inline-max-bytes must be at most {}",
                relay_raft::sm::INLINE_BODY_MAX
            ));
        }
        if self.checkpoint_max_body_bytes == 0
            || self.checkpoint_max_body_bytes > 64 << 20
            || self.checkpoint_default_body_bytes == 0
            || self.checkpoint_default_body_bytes > self.checkpoint_max_body_bytes
        {
            return bad("checkpoint body sizes: 0 < default <= max <= 64 MiB".into());
        }
        if self.mailbox_max_message_bytes == 0
            || self.mailbox_max_message_bytes > 64 << 20
            || self.mailbox_max_capacity_bytes == 0
            || !(1..=relay_raft::sm::mailbox::MESSAGES_MAX).contains(&self.mailbox_max_messages)
        {
            return bad(format!(
                "mailbox limits: message bytes 1..=64 MiB, capacity >= 1, messages 1..={}",
                relay_raft::sm::mailbox::MESSAGES_MAX
            ));
        }
        for cidr in &self.webhook_allow_cidr {
            cidr.parse::<relay_api::ssrf::Cidr>()
                .map_err(|e| ConfigError(format!("--webhook-allow-cidr {e}")))?;
        }
        if !(1..=relay_raft::sm::handoffs::MAX_CLAIMS_MAX).contains(&self.handoff_max_claims) {
            return bad(format!(
                "--handoff-max-claims must be 1 to {}",
                relay_raft::sm::handoffs::MAX_CLAIMS_MAX
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("--public-url {url:?} must start with http:// or https://"));
            }
        }
        if !(1..=9).contains(&self.voters) {
            return bad("--voters must be within 1..=9".into());
        }
        if let Some(url) = &self.join {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("--join {url:?} must be an http:// or https:// URL of a member"));
            }
        }
        if let Some(secret) = &self.cluster_secret {
            if secret.len() < 16 || secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return bad("--cluster-secret must be 16 to 256 visible ASCII characters".into());
            }
        }
        self.x402.config()?;
        self.net.validate(&self.raft)?;
        self.baton.validate()?;
        self.uploads.validate()?;
        if self.min_duration_seconds == 0 || self.min_duration_seconds > self.max_duration_seconds {
            return bad("need 1 <= --min-duration-seconds <= --max-duration-seconds".into());
        }
        if self.orphan_sweep_interval_seconds == 0 || self.orphan_min_age_seconds == 0 {
            return bad("--orphan-sweep-interval-seconds and --orphan-min-age-seconds must be at least 1".into());
        }
        if !(50..=60_000).contains(&self.sweep_interval_ms) {
            return bad("--sweep-interval-ms must be within 50..=60000".into());
        }
        if !(10..=10_000).contains(&self.raft_heartbeat_ms)
            || self.raft_election_timeout_ms < 3 * self.raft_heartbeat_ms
            || self.raft_election_timeout_ms > 120_000
        {
            return bad(
                "need 10 <= --raft-heartbeat-ms <= 10000 and 3 x heartbeat <= --raft-election-timeout-ms <= 120000"
                    .into(),
            );
        }
        if self.snapshot_every_entries < 100 {
            return bad("--snapshot-every-entries must be at least 100".into());
        }
        if let Some(key) = &self.admin_api_key {
            if !relay_api::auth::is_well_formed_admin_key(key) {
                return bad(
                    "--admin-api-key must look like rs_admin_ followed by 16 to 119 letters, digits, _ or -".into(),
                );
            }
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.max_uploads_per_client == 0
            || self.max_requests_in_flight == 0
            || self.max_requests_per_ip == 0
            || self.max_requests_per_account == 0
            || self.max_concurrent_uploads == 0
        {
            return bad("--max-connections*, --max-requests-*, --max-concurrent-uploads and --max-uploads-per-client must be at least 1".into());
        }
        if self.body_buffer_bytes < self.checkpoint_max_body_bytes.max(self.mailbox_max_message_bytes) {
            return bad(
                "--body-buffer-bytes must hold at least one body of --checkpoint-max-body-bytes and --mailbox-max-message-bytes"
                    .into(),
            );
        }
        if !(1..=3600).contains(&self.header_read_timeout_seconds)
            || !(1..=3600).contains(&self.idle_timeout_seconds)
            || !(1..=3600).contains(&self.send_timeout_seconds)
            || !(1..=3600).contains(&self.body_idle_timeout_seconds)
        {
            return bad("the --*-timeout-seconds values must be within 1..=3600".into());
        }
        if !(1024..=1 << 20).contains(&self.max_header_bytes) {
            return bad("--max-header-bytes must be within 1024..=1048576".into());
        }
        if let Some(key) = &self.bootstrap_api_key {
            if !relay_api::auth::is_well_formed_key(key) {
                return bad(
                    "--bootstrap-api-key must look like rs_live_ followed by 16 to 120 letters, digits, _ or -".into(),
                );
            }
        }
        relay_raft::chaos::parse_dial(&self.chaos_dial).map_err(ConfigError)?;
        self.bootstrap_balance_micros()?;
        Ok(())
    }

    /// `"12.5"` USDC → 12_500_000 micro-USDC, exactly (no floating point).
    pub fn bootstrap_balance_micros(&self) -> Result<u64, ConfigError> {
        parse_usdc_micros(&self.bootstrap_balance_usdc).ok_or_else(|| {
            ConfigError(format!(
                "--bootstrap-balance-usdc {:?} is not an amount like 100 or 0.25",
                self.bootstrap_balance_usdc
            ))
        })
    }

    /// The caps the API enforces.
    /// What the API enforces, from these flags.
    pub fn api_config(
        &self,
        webhook_policy: std::sync::Arc<relay_api::ssrf::Policy>,
        cluster_secret: String,
        witness: relay_api::witness::WitnessSettings,
    ) -> relay_api::ApiConfig {
        relay_api::ApiConfig {
            min_duration_seconds: self.min_duration_seconds,
            max_duration_seconds: self.max_duration_seconds,
            max_object_bytes: self.max_object_bytes,
            inline_max_bytes: self.inline_max_bytes,
            checkpoint_default_body_bytes: self.checkpoint_default_body_bytes,
            checkpoint_max_body_bytes: self.checkpoint_max_body_bytes,
            mailbox_max_capacity_bytes: self.mailbox_max_capacity_bytes,
            mailbox_max_message_bytes: self.mailbox_max_message_bytes,
            mailbox_default_messages: self.mailbox_max_messages.min(1000),
            mailbox_max_messages: self.mailbox_max_messages,
            webhook_policy,
            public_url: self.public_url.clone().map(|u| u.trim_end_matches('/').to_string()),
            handoff_max_claims: self.handoff_max_claims,
            cluster_secret,
            limits: self.limits(),
            // Validated at startup.
            x402: self.x402.config().ok().flatten(),
            baton: self.baton.limits(),
            uploads: self.uploads.limits(),
            witness,
        }
    }

    pub fn limits(&self) -> relay_api::limits::LimitsConfig {
        relay_api::limits::LimitsConfig {
            max_in_flight: self.max_requests_in_flight,
            max_in_flight_per_ip: self.max_requests_per_ip,
            max_in_flight_per_account: self.max_requests_per_account,
            max_concurrent_uploads: self.max_concurrent_uploads,
            max_uploads_per_client: self.max_uploads_per_client,
            body_buffer_bytes: self.body_buffer_bytes,
            wait: relay_api::limits::WAIT,
        }
    }

    /// The listener's bounds.
    pub fn listener(&self) -> relay_api::listener::ListenerConfig {
        use std::time::Duration;
        relay_api::listener::ListenerConfig {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            send_timeout: Duration::from_secs(self.send_timeout_seconds),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_header_bytes: self.max_header_bytes,
            body_idle: Duration::from_secs(self.body_idle_timeout_seconds),
            min_body_bytes_per_second: self.min_body_bytes_per_second,
            max_headers: relay_api::listener::MAX_HEADERS,
            body_grace: relay_api::listener::BODY_GRACE,
        }
    }

    pub fn objects_url(&self) -> String {
        self.objects
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("objects").display()))
    }
}

fn parse_usdc_micros(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Balances convert exactly, and anything that is not a plain amount is refused.
    #[test]
    fn usdc_amounts_parse_exactly() {
        assert_eq!(parse_usdc_micros("100"), Some(100_000_000));
        assert_eq!(parse_usdc_micros("0.25"), Some(250_000));
        assert_eq!(parse_usdc_micros("1.000001"), Some(1_000_001));
        for bad in ["", "-1", "1.2345678", "abc", "1e3", ".5", "99999999999999999999"] {
            assert_eq!(parse_usdc_micros(bad), None, "{bad}");
        }
    }

    /// The defaults are valid and describe the embedded single node.
    #[test]
    fn defaults_validate() {
        let cli = Cli::parse_from(["relay", "serve"]);
        let Commands::Serve(args) = cli.command else {
            panic!("serve")
        };
        args.validate().unwrap();
        assert_eq!(args.http, "127.0.0.1:8080");
        assert_eq!(args.objects_url(), "file://./relay-data/objects");
    }
}
