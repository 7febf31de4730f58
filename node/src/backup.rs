//! `relay backup` and `relay restore`.
//!
//! A backup directory holds:
//! - `ledger.snap`: the state as `GET /cluster/backup` gave it (a linearizable copy);
//! - `manifest.json`: its format, log index and term, size and blake3, and every object the state
//!   references (key, lease, size, blake3, whether copied);
//! - `objects/<key>`: the objects themselves, with `--with-objects`.
//!
//! `relay restore` checks every hash, writes the copied objects into the new cluster's object
//! store, then the state into a new data directory; `relay serve` on it founds a new cluster whose
//! leases expire at their original times.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::AdminConn;
use crate::server::NodeError;

/// The backup directory's layout version.
const FORMAT: &str = "relay-backup/v1";
const LEDGER_FILE: &str = "ledger.snap";
const MANIFEST_FILE: &str = "manifest.json";
const OBJECTS_DIR: &str = "objects";
/// The largest state copy `relay backup` accepts, bytes.
const LEDGER_MAX_BYTES: u64 = 8 << 30;

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// A new (or empty) directory to write the backup into.
    #[arg(long)]
    pub out: PathBuf,
    /// Copy every referenced object too (hashed as it is written); without it the manifest lists
    /// them, with their blake3, and the objects stay in the cluster's object store.
    #[arg(long)]
    pub with_objects: bool,
    #[command(flatten)]
    pub conn: AdminConn,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The backup directory (`relay backup --out`).
    #[arg(long)]
    pub from: PathBuf,
    /// The new node's data directory; it must hold no ledger yet.
    #[arg(long, env = "RELAY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The new cluster's object store (as `relay serve --objects`; default
    /// `file://<data-dir>/objects`). Copied objects are written there; without copies, every
    /// object the state references must already be there.
    #[arg(long, env = "RELAY_OBJECTS")]
    pub objects: Option<String>,
    /// Restore even if objects the state references are missing (their leases answer 502
    /// integrity_error until they end).
    #[arg(long)]
    pub allow_missing_objects: bool,
}

#[derive(Serialize, Deserialize, Debug)]
struct Manifest {
    format: String,
    state_format: u32,
    created_at_ms: u64,
    source: String,
    index: u64,
    term: u64,
    ledger: FileEntry,
    objects_copied: bool,
    objects: Vec<ObjectEntry>,
}

#[derive(Serialize, Deserialize, Debug)]
struct FileEntry {
    file: String,
    bytes: u64,
    blake3: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct ObjectEntry {
    key: String,
    lease_id: String,
    /// `None`: the object was gone by the time it was read (its lease ended after the copy).
    bytes: Option<u64>,
    blake3: Option<String>,
}

fn fail(message: impl Into<String>) -> NodeError {
    NodeError::Backup(message.into())
}

/// An object key as a relative path with no way out of the objects directory: plain components
/// only (no `..`, no root, no empty or `.` parts that would let two keys share a file).
fn object_path(root: &Path, key: &str) -> Result<PathBuf, NodeError> {
    let plain = !key.is_empty()
        && key.len() <= 1024
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !plain || !Path::new(key).components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(fail(format!("object key {key:?} cannot be a file name")));
    }
    Ok(root.join(key))
}

/// Whether any part of `path` below `root` is a symbolic link (a backup directory written by
/// someone else could point a key at any file).
fn through_symlink(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return true;
    };
    let mut at = root.to_path_buf();
    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
        return true;
    }
    rel.components().any(|c| {
        at.push(c);
        std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
    })
}

/// Creates a directory (and its parents) only the owner may enter.
fn private_dir(path: &Path) -> Result<(), NodeError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))
}

/// Creates a file that must not exist yet, readable by the owner only: a backup holds every
/// secret the cluster keeps.
fn private_file(path: &Path) -> Result<std::fs::File, NodeError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))
}

pub async fn backup(args: BackupArgs) -> Result<(), NodeError> {
    let created = !args.out.exists();
    let result = backup_into(&args).await;
    // A backup that failed leaves nothing that could pass for one.
    if result.is_err() && created && args.out.is_dir() {
        let _ = std::fs::remove_dir_all(&args.out);
    }
    result
}

async fn backup_into(args: &BackupArgs) -> Result<(), NodeError> {
    if std::fs::symlink_metadata(&args.out).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(fail(format!("{} is a symbolic link", args.out.display())));
    }
    if args.out.exists() && std::fs::read_dir(&args.out).map_or(true, |mut d| d.next().is_some()) {
        return Err(fail(format!(
            "{} exists and is not an empty directory",
            args.out.display()
        )));
    }
    // The copy holds the session signing keys and webhook secrets: only the cluster secret may
    // take it, and only its owner may read it.
    if args.conn.cluster_secret.is_none() {
        return Err(fail(
            "needs the cluster secret (--cluster-secret or RELAY_CLUSTER_SECRET): the copy holds every secret the cluster keeps",
        ));
    }
    let conn = AdminConn {
        admin_key: None,
        ..args.conn.clone()
    };
    let client = crate::admin::Admin::connect(&conn, Duration::from_secs(600))?;
    private_dir(&args.out)?;
    std::fs::set_permissions(&args.out, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| fail(format!("{}: {e}", args.out.display())))?;
    let response = client.get("/cluster/backup").await?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| fail(format!("the answer lacks {name}")))
    };
    let state_format: u32 = header("relay-state-format")?
        .parse()
        .map_err(|_| fail("bad relay-state-format"))?;
    if state_format != relay_raft::backup::STATE_FORMAT {
        return Err(fail(format!(
            "the cluster writes state format {state_format}; this relay reads {}",
            relay_raft::backup::STATE_FORMAT
        )));
    }
    let index: u64 = header("relay-backup-index")?
        .parse()
        .map_err(|_| fail("bad relay-backup-index"))?;
    let term: u64 = header("relay-backup-term")?
        .parse()
        .map_err(|_| fail("bad relay-backup-term"))?;
    let claimed = header("relay-backup-blake3")?;
    // Streamed to disk and counted, whatever the answer claims its length to be.
    let ledger_path = args.out.join(LEDGER_FILE);
    let (size, blake3) = stream_object(response, Some(&ledger_path), LEDGER_MAX_BYTES).await?;
    if blake3 != claimed {
        return Err(fail("the state copy arrived damaged (blake3 differs from the node's)"));
    }
    let data = std::fs::read(&ledger_path).map_err(|e| fail(format!("{}: {e}", ledger_path.display())))?;
    if data.len() as u64 != size {
        return Err(fail("the state copy changed on disk while being written"));
    }
    let refs = relay_raft::backup::referenced_objects(&data).map_err(|e| fail(format!("reading the state: {e}")))?;
    let objects_root = args.out.join(OBJECTS_DIR);
    let mut objects = Vec::with_capacity(refs.len());
    let mut missing = 0usize;
    for (key, lease_id) in refs {
        let target = match args.with_objects {
            true => Some(object_path(&objects_root, &key)?),
            false => None,
        };
        let query = format!("/cluster/backup/object?key={}", percent_encode(&key));
        let entry = match client.get_object(&query).await? {
            None => {
                missing += 1;
                tracing::warn!(%key, %lease_id, "object gone since the copy (its lease ended)");
                ObjectEntry {
                    key,
                    lease_id,
                    bytes: None,
                    blake3: None,
                }
            }
            Some(response) => {
                let (bytes, hash) = stream_object(response, target.as_deref(), u64::MAX).await?;
                ObjectEntry {
                    key,
                    lease_id,
                    bytes: Some(bytes),
                    blake3: Some(hash),
                }
            }
        };
        objects.push(entry);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        state_format,
        created_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        source: args.conn.url.clone(),
        index,
        term,
        ledger: FileEntry {
            file: LEDGER_FILE.into(),
            bytes: data.len() as u64,
            blake3,
        },
        objects_copied: args.with_objects,
        objects,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| fail(e.to_string()))?;
    let mut f = private_file(&args.out.join(MANIFEST_FILE))?;
    f.write_all(&json)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    println!(
        "relay backup: state at index {index} (term {term}), {} bytes; {} objects {}{} -> {}",
        data.len(),
        manifest.objects.len(),
        if args.with_objects { "copied" } else { "listed" },
        if missing > 0 {
            format!(" ({missing} missing: a restore refuses them without --allow-missing-objects)")
        } else {
            String::new()
        },
        args.out.display()
    );
    Ok(())
}

/// Streams one answer, hashing it, into `target` if given (a new private file); its size and
/// blake3. More than `limit` bytes is refused.
async fn stream_object(
    response: reqwest::Response,
    target: Option<&Path>,
    limit: u64,
) -> Result<(u64, String), NodeError> {
    let mut file = match target {
        Some(path) => {
            if let Some(parent) = path.parent() {
                private_dir(parent)?;
            }
            Some(private_file(path)?)
        }
        None => None,
    };
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| fail(format!("reading an object: {e}")))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if size > limit {
            return Err(fail(format!("the answer is longer than {limit} bytes")));
        }
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).map_err(|e| fail(e.to_string()))?;
        }
    }
    if let Some(f) = file {
        f.sync_all().map_err(|e| fail(e.to_string()))?;
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

pub async fn restore(args: RestoreArgs) -> Result<(), NodeError> {
    let manifest_bytes = std::fs::read(args.from.join(MANIFEST_FILE))
        .map_err(|e| fail(format!("{}: {e}", args.from.join(MANIFEST_FILE).display())))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| fail(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format != FORMAT || manifest.state_format != relay_raft::backup::STATE_FORMAT {
        return Err(fail(format!(
            "backup format {} (state format {}); this relay reads {FORMAT} (state format {})",
            manifest.format,
            manifest.state_format,
            relay_raft::backup::STATE_FORMAT
        )));
    }
    // A backup directory may come from anyone: only its own two names are read at its top.
    if manifest.ledger.file != LEDGER_FILE {
        return Err(fail(format!(
            "the manifest names {:?}, not {LEDGER_FILE}",
            manifest.ledger.file
        )));
    }
    let ledger_path = args.from.join(LEDGER_FILE);
    if through_symlink(&args.from, &ledger_path) {
        return Err(fail(format!("{} is a symbolic link", ledger_path.display())));
    }
    let data = std::fs::read(&ledger_path).map_err(|e| fail(format!("{LEDGER_FILE}: {e}")))?;
    if data.len() as u64 != manifest.ledger.bytes || blake3::hash(&data).to_hex().as_str() != manifest.ledger.blake3 {
        return Err(fail(format!(
            "{LEDGER_FILE} does not match its manifest (size or blake3)"
        )));
    }
    let ledger_dir = args.data_dir.join("ledger");
    if ledger_dir.exists() {
        return Err(fail(format!("{} already holds a ledger", args.data_dir.display())));
    }
    // Every object must be one the state references, and match its hash, before anything is
    // written: a restore that stops half way leaves no ledger pointing at nothing.
    let referenced: std::collections::BTreeSet<String> = relay_raft::backup::referenced_objects(&data)
        .map_err(|e| fail(format!("reading the state: {e}")))?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    // Every key the state names must be a plain object key, copied or not.
    for key in &referenced {
        object_path(Path::new("/"), key)?;
    }
    let root = args.from.join(OBJECTS_DIR);
    let mut to_write = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    if manifest.objects_copied {
        for object in &manifest.objects {
            let (Some(size), Some(hash)) = (object.bytes, &object.blake3) else {
                continue;
            };
            if !referenced.contains(&object.key) {
                return Err(fail(format!(
                    "the manifest lists {:?}, which the state does not reference",
                    object.key
                )));
            }
            let path = object_path(&root, &object.key)?;
            if through_symlink(&root, &path) {
                return Err(fail(format!("{} goes through a symbolic link", path.display())));
            }
            let bytes = std::fs::read(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            if bytes.len() as u64 != size || blake3::hash(&bytes).to_hex().as_str() != hash {
                return Err(fail(format!(
                    "{} does not match its manifest (size or blake3)",
                    path.display()
                )));
            }
            to_write.push((object.key.clone(), path, hash.clone()));
        }
        let copied: std::collections::BTreeSet<&String> = to_write.iter().map(|(key, _, _)| key).collect();
        missing.extend(referenced.iter().filter(|k| !copied.contains(k)).cloned());
    }
    let objects_url = args
        .objects
        .clone()
        .unwrap_or_else(|| format!("file://{}", args.data_dir.join("objects").display()));
    if let Some(path) = objects_url.strip_prefix("file://") {
        std::fs::create_dir_all(path).map_err(|e| fail(format!("{path}: {e}")))?;
    }
    let store = relay_api::blobs::store::open(&objects_url).map_err(|e| fail(format!("--objects: {e}")))?;
    if !manifest.objects_copied {
        // The objects stay where they are: all of them must be in the store the new cluster uses.
        for key in &referenced {
            if object_store::ObjectStoreExt::head(&store, &object_store::path::Path::from(key.as_str()))
                .await
                .is_err()
            {
                missing.push(key.clone());
            }
        }
    }
    if !missing.is_empty() && !args.allow_missing_objects {
        return Err(fail(format!(
            "{} objects the state references are in neither the backup nor --objects: {}{} \
             (--allow-missing-objects restores anyway; their leases answer 502)",
            missing.len(),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if missing.len() > 5 { ", …" } else { "" }
        )));
    }
    for (key, path, hash) in &to_write {
        put_new(&store, key, path, hash).await?;
    }
    let rows = relay_raft::backup::restore_into(&ledger_dir, &data).map_err(|e| fail(e.to_string()))?;
    println!(
        "relay restore: {rows} state rows (index {} of the old cluster) into {}; {}",
        manifest.index,
        ledger_dir.display(),
        if manifest.objects_copied {
            format!("{} objects written to {objects_url}", to_write.len())
        } else {
            "objects not in the backup: start the new cluster on the old --objects".to_string()
        }
    );
    println!(
        "relay restore: now start `relay serve --data-dir {}` (without --join) to found the new cluster; give it the \
         old cluster's --cluster-secret (or --witness-secret-file) if its witness log should go on",
        args.data_dir.display()
    );
    Ok(())
}

/// Writes one object only where none is: an object already at that key must be the same bytes
/// (a restore onto the bucket it came from), never replaced.
async fn put_new(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    key: &str,
    path: &Path,
    hash: &str,
) -> Result<(), NodeError> {
    use object_store::{ObjectStoreExt, PutMode, PutOptions};
    let location = object_store::path::Path::from(key);
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let put = store
        .put_opts(&location, bytes.into(), PutOptions::from(PutMode::Create))
        .await;
    match put {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let there = store
                .get(&location)
                .await
                .map_err(|e| fail(format!("reading {key}: {e}")))?
                .bytes()
                .await
                .map_err(|e| fail(format!("reading {key}: {e}")))?;
            match blake3::hash(&there).to_hex().as_str() == hash {
                true => Ok(()),
                false => Err(fail(format!(
                    "{key} already holds other bytes in the target store: not replaced"
                ))),
            }
        }
        Err(e) => Err(fail(format!("writing {key}: {e}"))),
    }
}

fn percent_encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_stay_inside_the_objects_directory() {
        let root = Path::new("/b/objects");
        assert_eq!(object_path(root, "blobs/01abc").unwrap(), root.join("blobs/01abc"));
        for bad in ["", "../x", "blobs/../../x", "/etc/passwd", "a//b", "a/./b", "a/"] {
            assert!(object_path(root, bad).is_err(), "{bad}");
        }
    }
}
