//! The client subcommands and the flags every one of them takes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Subcommand};

/// Where the API is and who is calling. Flags win over `RELAY_*` variables, which win over the
/// profile file.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientConn {
    /// The node's URL [profile `url`; default http://127.0.0.1:8080].
    #[arg(long, env = "RELAY_URL", global = true)]
    pub url: Option<String>,
    /// An API key (`rs_live_…`) or session token [profile `key`].
    #[arg(long, env = "RELAY_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// A TOML file with `url`, `key` and `ca` [default: ~/.config/relay/profile.toml when it
    /// exists].
    #[arg(long, env = "RELAY_PROFILE", global = true)]
    pub profile: Option<PathBuf>,
    /// A PEM CA to trust for an https:// URL, besides the system's [profile `ca`].
    #[arg(long, env = "RELAY_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Send the key to a plain http:// URL beyond loopback (a network you trust).
    #[arg(long, env = "RELAY_INSECURE_HTTP", global = true)]
    pub insecure_http: bool,
    /// Print the API's JSON answer as it is, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars and no notes on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ClientCommand {
    /// Storage leases: `relay store put FILE --ttl 1h`, `relay store get ID [-o FILE]`.
    Store(StoreArgs),
    /// List your leases (newest first), as a table or with --json.
    Ls(LsArgs),
    /// Delete a lease now (any kind; a baton by its disposal).
    Rm(RmArgs),
    /// Issue a claim link for a lease: `relay handoff ID --claims 1 --delete-on-claim`.
    Handoff(HandoffArgs),
    /// Redeem a claim link (its URL or token); the content goes to stdout or -o FILE.
    Claim(ClaimArgs),
    /// Checkpoints: `relay checkpoint put WORKFLOW FILE [--ttl 1h]`, `get`, `rm`.
    Checkpoint(CheckpointArgs),
    /// Mailboxes: `relay mailbox create|drop|poll|pickup`.
    Mailbox(MailboxArgs),
    /// Batons: `relay baton create|get|put|append|entries|meta|tokens|share|revoke|extend|rm`.
    Baton(BatonArgs),
    /// What a storage lease of this size and duration costs: `relay quote --size 1GiB --ttl 1d`.
    Quote(QuoteArgs),
    /// The cluster's prices and how to pay.
    Pricing(PricingArgs),
    /// Shell completions: `relay completions bash > /etc/bash_completion.d/relay`.
    Completions(CompletionsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Subcommand, Debug, Clone)]
pub enum StoreAction {
    /// Upload FILE (or - for stdin) as a new storage lease.
    Put {
        file: PathBuf,
        /// How long it lives: 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The name downloads carry [default: the file's name].
        #[arg(long)]
        name: Option<String>,
        /// The media type served back [default: application/octet-stream].
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Download a lease's bytes to stdout or -o FILE.
    Get {
        lease_id: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// At most this many (following pages as needed).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct RmArgs {
    /// A lease id (`lse_…`) or a baton id (`btn_…`).
    pub id: String,
    /// A baton only: no tombstone, no restore.
    #[arg(long)]
    pub hard: bool,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct HandoffArgs {
    pub lease_id: String,
    /// How many times the link can be claimed.
    #[arg(long, default_value_t = 1)]
    pub claims: u64,
    /// Delete the lease once the last claim is served.
    #[arg(long)]
    pub delete_on_claim: bool,
    /// How long the link lives [default: 1h, clamped to the lease].
    #[arg(long)]
    pub ttl: Option<String>,
    /// Only POST claims count (link previews cannot spend it).
    #[arg(long)]
    pub require_post: bool,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct ClaimArgs {
    /// The claim URL, or its token (`hof_…`).
    pub link: String,
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    pub action: CheckpointAction,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Subcommand, Debug, Clone)]
pub enum CheckpointAction {
    /// Write FILE (one JSON value; - for stdin) as the workflow's state. With --ttl, a
    /// checkpoint that does not exist is bought first.
    Put {
        workflow_id: String,
        file: PathBuf,
        #[arg(long)]
        ttl: Option<String>,
        /// The largest state the new checkpoint holds (with --ttl).
        #[arg(long)]
        max_body: Option<String>,
        /// Write only over this version (compare-and-set).
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Print the workflow's state.
    Get {
        workflow_id: String,
        /// Read and delete in one step.
        #[arg(long)]
        consume: bool,
    },
    /// Delete the checkpoint now.
    Rm { workflow_id: String },
}

#[derive(Args, Debug, Clone)]
pub struct MailboxArgs {
    #[command(subcommand)]
    pub action: MailboxAction,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Subcommand, Debug, Clone)]
pub enum MailboxAction {
    /// Buy a mailbox; prints its drop URL (shown once).
    Create {
        /// Bytes held at once: 1MiB, 64KiB.
        #[arg(long, default_value = "1MiB")]
        capacity: String,
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Keep messages after pickup.
        #[arg(long)]
        keep_on_read: bool,
    },
    /// Drop FILE (or - for stdin) into a mailbox by its drop URL or token; no key needed.
    Drop {
        link: String,
        file: PathBuf,
        #[arg(long)]
        content_type: Option<String>,
    },
    /// List the queued messages.
    Poll { lease_id: String },
    /// Take one message (removed unless the mailbox keeps messages on read).
    Pickup {
        lease_id: String,
        message_id: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct BatonArgs {
    #[command(subcommand)]
    pub action: BatonAction,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Subcommand, Debug, Clone)]
pub enum BatonAction {
    /// Buy a baton; prints its id and tokens (shown once).
    Create {
        /// single, append, append_chained or overwrite.
        #[arg(long)]
        write: Option<String>,
        /// Its capacity: 1MiB.
        #[arg(long)]
        size: Option<String>,
        #[arg(long)]
        ttl: Option<String>,
        /// The first content (up to 3 MiB).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Sharing tokens to issue: read, write or read_write (repeat the flag).
        #[arg(long = "token")]
        tokens: Vec<String>,
    },
    /// Read the content to stdout or -o FILE.
    Get {
        id: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Replace the content with FILE (- for stdin).
    Put { id: String, file: PathBuf },
    /// Append one entry (TEXT, or - for stdin).
    Append { id: String, text: String },
    /// List entries.
    Entries {
        id: String,
        #[arg(long)]
        after: Option<u64>,
    },
    /// Shape, usage, state and price.
    Meta { id: String },
    /// List its sharing tokens.
    Tokens { id: String },
    /// Issue one sharing token: `relay baton share btn_… --scope read --read-cap 3 --ttl 1h`.
    Share {
        id: String,
        /// read, write or read_write.
        #[arg(long, default_value = "read")]
        scope: String,
        /// How many reads the token may make.
        #[arg(long)]
        read_cap: Option<u32>,
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Revoke a sharing token by its id.
    Revoke { id: String, token_id: String },
    /// Buy more time (--ttl) or room (--size), charged the difference.
    Extend {
        id: String,
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        size: Option<String>,
    },
    /// Delete it (soft by its disposal, or --hard).
    Rm {
        id: String,
        #[arg(long)]
        hard: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct QuoteArgs {
    /// 1GiB, 500MB, 1024.
    #[arg(long)]
    pub size: String,
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct PricingArgs {
    #[command(flatten)]
    pub conn: ClientConn,
}

#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = crate::config::Cli::command();
    clap_complete::generate(shell, &mut command, "relay", &mut std::io::stdout());
    ExitCode::SUCCESS
}
