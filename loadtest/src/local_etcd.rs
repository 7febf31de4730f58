//! A throwaway local etcd cluster with the same member count as Relay's, on loopback, durable
//! (etcd's default fsync), data on the same disk. Installs Debian's `etcd-server` when no `etcd`
//! binary is found (the benchmark runs as root on a fresh machine).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::pb::kv_client::KvClient;
use crate::etcd::pb::RangeRequest;
use crate::LoadError;

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct LocalEtcd {
    children: Vec<Child>,
    pub endpoints: Vec<String>,
    _dir: tempfile::TempDir,
}

impl LocalEtcd {
    pub async fn start(etcd_bin: &Path, nodes: u64) -> Result<LocalEtcd, LoadError> {
        let err = |e: std::io::Error| LoadError::Local(format!("etcd: {e}"));
        let dir = tempfile::tempdir().map_err(err)?;
        let ports: Vec<(u16, u16)> = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_, std::io::Error>>()
            .map_err(err)?;
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = LocalEtcd {
            children: Vec::new(),
            endpoints: Vec::new(),
            _dir: dir,
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("e{}", i + 1);
            let data = etcd._dir.path().join(&name);
            let log = std::fs::File::create(etcd._dir.path().join(format!("{name}.log"))).map_err(err)?;
            let child = Command::new(etcd_bin)
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(&data)
                .args(["--listen-client-urls", &format!("http://127.0.0.1:{client}")])
                .args(["--advertise-client-urls", &format!("http://127.0.0.1:{client}")])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args(["--initial-cluster", &initial_cluster])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "relay-loadtest",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| LoadError::Local(format!("cannot start {}: {e}", etcd_bin.display())))?;
            etcd.children.push(child);
            etcd.endpoints.push(format!("http://127.0.0.1:{client}"));
        }
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    /// Every member answers a linearizable read.
    async fn wait_ready(&self) -> Result<(), LoadError> {
        let deadline = Instant::now() + START_TIMEOUT;
        for endpoint in &self.endpoints {
            loop {
                if Instant::now() > deadline {
                    return Err(LoadError::Local(format!("etcd member {endpoint} did not become ready")));
                }
                let ready = async {
                    let mut kv = KvClient::connect(endpoint.clone()).await.ok()?;
                    kv.range(RangeRequest {
                        key: b"health".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .ok()
                };
                if tokio::time::timeout(Duration::from_secs(2), ready)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `etcd` from `--etcd-bin`, the PATH or /usr/bin; installed with apt-get when missing.
pub fn find_or_install(given: Option<PathBuf>) -> Result<PathBuf, LoadError> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(LoadError::Args(format!("{} is not a file", p.display())))
        };
    }
    let found = || {
        std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("etcd"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/etcd")])
            .find(|p| p.is_file())
    };
    if let Some(p) = found() {
        return Ok(p);
    }
    eprintln!("etcd not found: installing Debian's etcd-server with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "etcd-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let ok = install().map(|s| s.success()).unwrap_or(false)
        || (Command::new("apt-get")
            .arg("update")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && install().map(|s| s.success()).unwrap_or(false));
    match (ok, found()) {
        (true, Some(p)) => Ok(p),
        _ => Err(LoadError::Local(
            "etcd is not installed and apt-get could not install etcd-server; pass --etcd-bin".into(),
        )),
    }
}
