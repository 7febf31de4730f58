//! One `relay serve` process: its data directory, its two addresses, its output, and the signals
//! a test sends it (kill -9, SIGTERM, SIGSTOP/SIGCONT), restarted on the same directory and
//! addresses.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::output::Output;
use crate::KitError;

/// How long a node may take to say it is listening: it opens RocksDB, joins, and waits until it
/// knows a leader and has caught up first.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may take to exit after SIGTERM (its own shutdown is bounded well below this).
pub const TERM_TIMEOUT: Duration = Duration::from_secs(15);
/// Where each node's log goes, inside its data directory: stderr, and stdout's lines too.
pub const LOG_FILE: &str = "relay.log";
const LISTENING: &str = "relay: listening on ";
const RAFT_ON: &str = "relay: raft transport on ";
const KEY_FLAG: &str = "--bootstrap-api-key";
/// How much of a log an error quotes.
const LOG_TAIL_BYTES: usize = 16 << 10;

/// The `relay` binary next to the running executable (cargo builds every binary of the workspace
/// into one directory; test binaries sit one level down, in `deps/`).
pub fn default_relay_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("relay"), dir.parent()?.join("relay")]
        .into_iter()
        .find(|p| p.is_file())
}

/// What to start: flags and environment on top of the addresses and data directory the kit
/// chooses.
#[derive(Clone)]
pub struct NodeBuilder {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    http_bind: String,
    raft_bind: String,
    rust_log: String,
}

impl NodeBuilder {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs(mut self, env: &[(String, String)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// The data directory (created; kept after the node is gone). Default: a temp dir removed
    /// when the node is dropped.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Fixed loopback ports, for peers that must know the address before the node starts.
    /// Default: port 0 for both, the chosen ones read from the node's output and kept for
    /// restarts.
    pub fn ports(mut self, http: u16, raft: u16) -> Self {
        self.http_bind = format!("127.0.0.1:{http}");
        self.raft_bind = format!("127.0.0.1:{raft}");
        self
    }

    /// The node's `RUST_LOG` (default `info,openraft=warn`).
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = filter.into();
        self
    }

    /// Spawns the process without waiting for it.
    pub fn launch(self) -> Result<Node, KitError> {
        let (data_dir, temp) = match self.dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(KitError::io(format!("{}", dir.display())))?;
                (dir, None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("relay-node-")
                    .tempdir()
                    .map_err(KitError::io("temp dir"))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let key = flag_value(&self.args, KEY_FLAG).unwrap_or_default();
        let mut node = Node {
            bin: self.bin,
            args: self.args,
            env: self.env,
            rust_log: self.rust_log,
            base: format!("http://{}", self.http_bind),
            http_bind: self.http_bind,
            raft_bind: self.raft_bind,
            key,
            child: None,
            paused: false,
            output: Arc::default(),
            data_dir,
            _temp: temp,
        };
        node.relaunch()?;
        Ok(node)
    }

    /// Spawns the process and waits until it serves HTTP.
    pub fn start(self) -> Result<Node, KitError> {
        let mut node = self.launch()?;
        node.wait_ready(READY_TIMEOUT)?;
        Ok(node)
    }
}

/// A `relay serve` process on loopback. Dropping it kills the process (and removes its temp dir,
/// if the kit made one).
pub struct Node {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    rust_log: String,
    http_bind: String,
    raft_bind: String,
    base: String,
    key: String,
    child: Option<Child>,
    paused: bool,
    output: Arc<Output>,
    data_dir: PathBuf,
    // Declared last so the process is gone before its directory is removed.
    _temp: Option<tempfile::TempDir>,
}

impl Node {
    /// `relay serve` from `bin`, on free loopback ports, in a fresh temp dir.
    pub fn builder(bin: impl Into<PathBuf>) -> NodeBuilder {
        NodeBuilder {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            http_bind: "127.0.0.1:0".into(),
            raft_bind: "127.0.0.1:0".into(),
            rust_log: "info,openraft=warn".into(),
        }
    }

    /// Spawns the process again on the same directory and addresses, without waiting: a node
    /// that must reach a leader first would hold its caller for as long as a fault lasts.
    pub fn relaunch(&mut self) -> Result<(), KitError> {
        if self.child.is_some() {
            return Err(KitError::Process(format!("{} is still running", self.base)));
        }
        let log_path = self.log_path();
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(KitError::io(format!("{}", log_path.display())))
        };
        let (stderr_log, stdout_log) = (open_log()?, open_log()?);
        let mut command = Command::new(&self.bin);
        command
            .arg("serve")
            .args(["--http", &self.http_bind, "--raft", &self.raft_bind])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("RUST_LOG", &self.rust_log)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_log));
        // A binary written just now (a test's stand-in) can be busy for a moment: another thread's
        // fork may still hold it open for writing until that child execs. Bounded retries.
        let mut attempts = 0;
        let mut child = loop {
            match command.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    break other.map_err(|source| KitError::Spawn {
                        bin: self.bin.clone(),
                        source,
                    })?
                }
            }
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        self.output = Output::capture(stdout, stdout_log);
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Waits until the process says it serves HTTP (and notes the addresses it bound).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), KitError> {
        let found = self.output.wait_for_line(LISTENING, Instant::now() + timeout);
        match found {
            Some(Ok(addr)) => {
                if let Some(raft) = self.output.line_after(RAFT_ON) {
                    self.raft_bind = raft;
                }
                self.base = addr;
                self.http_bind = self
                    .base
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .to_string();
                Ok(())
            }
            Some(Err(())) => Err(KitError::ExitedEarly {
                log: self.log_path(),
                tail: self.log_tail(),
            }),
            None => Err(KitError::NotReady {
                timeout_s: timeout.as_secs(),
                log: self.log_path(),
                tail: self.log_tail(),
            }),
        }
    }

    /// Starts it again (it must be stopped) on the same directory and addresses, waiting until it
    /// serves.
    pub fn restart(&mut self) -> Result<(), KitError> {
        self.relaunch()?;
        self.wait_ready(READY_TIMEOUT)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGTERM, then the exit status (SIGKILL and an error after [`TERM_TIMEOUT`]).
    pub fn terminate(&mut self) -> Result<ExitStatus, KitError> {
        if let Some(pid) = self.pid() {
            self.resume();
            // SAFETY: signalling a child this node spawned and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let exit = self.wait_exit(TERM_TIMEOUT);
        if exit.is_err() {
            self.kill9();
        }
        exit
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, KitError> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            return Err(KitError::Process(format!("{} is not running", self.base)));
        };
        loop {
            if let Some(status) = child.try_wait().map_err(KitError::io("wait"))? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(KitError::NotExited {
                    timeout_s: timeout.as_secs(),
                    log: self.log_path(),
                    tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP: the process holds its sockets but answers nothing.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: as in `terminate`.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: as in `terminate`.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        self.paused = false;
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// `http://IP:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The HTTP address (`IP:port`).
    pub fn http_addr(&self) -> &str {
        &self.http_bind
    }

    /// The inter-node (Raft) address.
    pub fn raft_addr(&self) -> &str {
        &self.raft_bind
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let logs = self.logs();
        let mut from = logs.len().saturating_sub(LOG_TAIL_BYTES);
        while !logs.is_char_boundary(from) {
            from += 1;
        }
        logs[from..].to_string()
    }

    /// The lines the process printed on stdout since it was last started.
    pub fn stdout(&self) -> Vec<String> {
        self.output.lines()
    }

    /// The agents' key: the one passed with `--bootstrap-api-key`, else the one a founding node
    /// made and saved (`<data-dir>/bootstrap-api-key`), else empty.
    pub fn key(&self) -> String {
        if !self.key.is_empty() {
            return self.key.clone();
        }
        std::fs::read_to_string(self.data_dir.join("bootstrap-api-key"))
            .map(|k| k.trim().to_string())
            .unwrap_or_default()
    }

    pub fn set_key(&mut self, key: impl Into<String>) {
        self.key = key.into();
    }

    /// `Authorization` with the agents' key.
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.key())
    }

    /// The admin key a founding node made (`<data-dir>/admin-api-key`).
    pub fn admin_key(&self) -> Result<String, KitError> {
        let path = self.data_dir.join("admin-api-key");
        std::fs::read_to_string(&path)
            .map(|k| k.trim().to_string())
            .map_err(KitError::io(format!("{}", path.display())))
    }

    /// A typed client of this node with the agents' key.
    pub fn client(&self, http: reqwest::Client) -> Client {
        Client::new(http, &self.base).bearer(&self.key())
    }

    /// Drops `flag` and its value from the command line of later starts (a member restarts
    /// without `--join`, as the README says).
    pub fn remove_flag(&mut self, flag: &str) {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args.drain(i..(i + 2).min(self.args.len()));
        }
        let prefix = format!("{flag}=");
        self.args.retain(|a| !a.starts_with(&prefix));
    }

    /// Adds `flag value` to the command line of later starts.
    pub fn add_flag(&mut self, flag: &str, value: &str) {
        self.args.extend([flag.to_string(), value.to_string()]);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A stopped process still dies of SIGKILL; SIGCONT first anyway so nothing lingers.
        self.resume();
        self.kill9();
    }
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&prefix).map(String::from)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_flag_is_read_in_both_spellings() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            flag_value(&args(&["--x", "1", KEY_FLAG, "rs_live_a"]), KEY_FLAG).as_deref(),
            Some("rs_live_a")
        );
        assert_eq!(
            flag_value(&args(&["--bootstrap-api-key=rs_live_b"]), KEY_FLAG).as_deref(),
            Some("rs_live_b")
        );
        assert_eq!(flag_value(&args(&["--x"]), KEY_FLAG), None);
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let err = Node::builder("/nonexistent/relay")
            .launch()
            .err()
            .expect("no such binary");
        assert!(matches!(err, KitError::Spawn { .. }), "{err}");
    }

    #[test]
    fn remove_flag_drops_the_flag_and_its_value() {
        let mut node = Node::builder("/bin/true").launch().expect("spawn /bin/true");
        node.kill9();
        node.args = ["--a", "1", "--join", "http://x", "--b=2", "--join=y"]
            .map(String::from)
            .to_vec();
        node.remove_flag("--join");
        assert_eq!(node.args, ["--a", "1", "--b=2"]);
    }
}
