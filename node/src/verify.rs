//! `relay verify` (offline: no network): a file against a witness tlog-proof, or two checkpoints
//! against a consistency proof. `relay witness keygen` makes an operator's signing key. Exit 0:
//! valid; 1: invalid, with the reason; 2: a usage error (an unreadable or malformed argument).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use relay_raft::tlog::merkle::parse_hash;
use relay_raft::tlog::verify::Trusted;
use relay_raft::tlog::{verify, Signer, TlogError, Verifier};
use sha2::{Digest, Sha256};

/// The largest proof, checkpoint or key file read.
const TEXT_MAX_BYTES: u64 = 1 << 20;

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The content to check (a baton's content, or one entry's), with --proof.
    pub file: Option<PathBuf>,
    /// A C2SP tlog-proof (from `GET /v1/baton/{id}/witness`).
    #[arg(long, conflicts_with = "consistency")]
    pub proof: Option<PathBuf>,
    /// The witness record's bytes, when the proof carries none (its `extra` line).
    #[arg(long, requires = "proof")]
    pub record: Option<PathBuf>,
    /// A verifier key (`name+id+key`), or a file of them: one per line, or the JSON of
    /// `/.well-known/relay-witness`. Repeatable.
    #[arg(long, required = true)]
    pub key: Vec<String>,
    /// A consistency proof (the JSON of `GET /v1/witness/consistency`), with --old and --new.
    #[arg(long, requires_all = ["old", "new"])]
    pub consistency: Option<PathBuf>,
    /// The older checkpoint (a signed note, as `GET /v1/witness/checkpoint` serves it).
    #[arg(long)]
    pub old: Option<PathBuf>,
    /// The newer checkpoint.
    #[arg(long)]
    pub new: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct WitnessArgs {
    #[command(subcommand)]
    pub action: WitnessAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum WitnessAction {
    /// Print a new signing key (for --witness-key-file) and its verifier key.
    Keygen {
        /// The log's origin: the checkpoints' first line and the key's name.
        #[arg(long)]
        origin: String,
    },
}

/// A usage error (exit 2) or an invalid proof (exit 1).
enum Failure {
    Usage(String),
    Invalid(TlogError),
}

impl From<TlogError> for Failure {
    fn from(e: TlogError) -> Failure {
        Failure::Invalid(e)
    }
}

fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    let usage = |why: String| Failure::Usage(format!("{what} {}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| usage(e.to_string()))?;
    let mut text = String::new();
    file.take(TEXT_MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| usage(e.to_string()))?;
    if text.len() as u64 > TEXT_MAX_BYTES {
        return Err(usage(format!("larger than {TEXT_MAX_BYTES} bytes")));
    }
    Ok(text)
}

/// Every key the arguments name: strings, files of lines, or the well-known JSON (whose
/// `key_history` also says up to which size each retired key may have signed).
fn keys(args: &[String]) -> Result<Vec<Trusted>, Failure> {
    let bad_key = |e: TlogError| Failure::Usage(format!("--key: {e}"));
    let mut out = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if !path.is_file() {
            out.push(Trusted::from(Verifier::parse(arg).map_err(bad_key)?));
            continue;
        }
        let text = read_text(path, "--key")?;
        if !text.trim_start().starts_with('{') {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                out.push(Trusted::from(Verifier::parse(line).map_err(bad_key)?));
            }
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("--key {arg}: not JSON: {e}")))?;
        if let Some(history) = v["key_history"].as_array() {
            for k in history {
                let key = k["key"]
                    .as_str()
                    .ok_or_else(|| Failure::Usage(format!("--key {arg}: a key_history entry without a key")))?;
                let until_size = match &k["until_size"] {
                    serde_json::Value::Null => None,
                    n => Some(
                        n.as_u64()
                            .ok_or_else(|| Failure::Usage(format!("--key {arg}: until_size is not a tree size")))?,
                    ),
                };
                let until_root = match &k["until_root"] {
                    serde_json::Value::Null => None,
                    r => Some(
                        r.as_str()
                            .and_then(|r| parse_hash(r).ok())
                            .ok_or_else(|| Failure::Usage(format!("--key {arg}: until_root is not a hash")))?,
                    ),
                };
                out.push(Trusted {
                    key: Verifier::parse(key).map_err(bad_key)?,
                    until_size,
                    until_root,
                });
            }
            continue;
        }
        let listed = v["keys"]
            .as_array()
            .ok_or_else(|| Failure::Usage(format!("--key {arg}: no \"keys\" array")))?;
        for k in listed {
            let k = k
                .as_str()
                .ok_or_else(|| Failure::Usage(format!("--key {arg}: a key is not a string")))?;
            out.push(Trusted::from(Verifier::parse(k).map_err(bad_key)?));
        }
    }
    if out.is_empty() {
        return Err(Failure::Usage("--key named no verifier key".into()));
    }
    Ok(out)
}

fn sha256_file(path: &Path) -> Result<[u8; 32], Failure> {
    let mut file = std::fs::File::open(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

fn check(args: &VerifyArgs) -> Result<String, Failure> {
    let keys = keys(&args.key)?;
    if let Some(path) = &args.consistency {
        let proof: serde_json::Value = serde_json::from_str(&read_text(path, "--consistency")?)
            .map_err(|e| Failure::Usage(format!("--consistency: not JSON: {e}")))?;
        let hashes = proof["hashes"]
            .as_array()
            .ok_or_else(|| Failure::Usage("--consistency: no \"hashes\" array".into()))?
            .iter()
            .map(|h| {
                h.as_str()
                    .ok_or_else(|| Failure::Usage("--consistency: a hash is not a string".into()))
                    .and_then(|h| parse_hash(h).map_err(|e| Failure::Usage(format!("--consistency: {e}"))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The sizes the proof names, if any, are checked against the checkpoints' once opened.
        let mut named = [None, None];
        for (i, field) in ["from", "to"].into_iter().enumerate() {
            named[i] = match &proof[field] {
                serde_json::Value::Null => None,
                n => Some(
                    n.as_u64()
                        .ok_or_else(|| Failure::Usage(format!("--consistency: {field} is not a tree size")))?,
                ),
            };
        }
        let old = read_text(args.old.as_deref().expect("clap requires it"), "--old")?;
        let new = read_text(args.new.as_deref().expect("clap requires it"), "--new")?;
        let (a, b) = verify::consistency(&old, &new, &hashes, &keys)?;
        for (field, (size, said)) in ["from", "to"].into_iter().zip([(a.size, named[0]), (b.size, named[1])]) {
            if said.is_some_and(|s| s != size) {
                return Err(Failure::Invalid(TlogError::Mismatch(format!(
                    "the proof's {field} is not the checkpoint's size {size}"
                ))));
            }
        }
        return Ok(format!(
            "valid: {} at size {} is a prefix of the log at size {}",
            a.origin, a.size, b.size
        ));
    }
    let (Some(file), Some(proof)) = (&args.file, &args.proof) else {
        return Err(Failure::Usage(
            "give FILE --proof P.tlog-proof, or --consistency with --old and --new".into(),
        ));
    };
    let record = match &args.record {
        Some(p) => Some(read_text(p, "--record")?.into_bytes()),
        None => None,
    };
    let sha = sha256_file(file)?;
    let ok = verify::inclusion(&sha, &read_text(proof, "--proof")?, record.as_deref(), &keys)?;
    Ok(format!(
        "valid: {} (sha256 {}) is record {} of {} (tree size {}): baton {} {} {}, witnessed at {} ms; signed by {}",
        file.display(),
        hex::encode(sha),
        ok.index,
        ok.checkpoint.origin,
        ok.checkpoint.size,
        ok.record.baton_id,
        ok.record.event.name(),
        ok.record.seq,
        ok.record.at_ms,
        ok.signed_by.join(", ")
    ))
}

pub fn run(args: &VerifyArgs) -> ExitCode {
    match check(args) {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(Failure::Invalid(e)) => {
            eprintln!("invalid: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("relay verify: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn witness(args: &WitnessArgs) -> ExitCode {
    match &args.action {
        WitnessAction::Keygen { origin } => {
            let mut seed = [0u8; 32];
            if let Err(e) = getrandom::fill(&mut seed) {
                eprintln!("relay witness keygen: random key: {e}");
                return ExitCode::FAILURE;
            }
            match Signer::from_seed(origin, &seed) {
                Ok(key) => {
                    println!("{}", key.private_string());
                    eprintln!("verifier key: {}", key.verifier());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("relay witness keygen: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
