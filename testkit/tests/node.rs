//! The launcher against a stand-in `relay` (a shell script that prints what Relay prints and
//! traps SIGTERM): readiness, the addresses it reports, kept across a restart, stdout captured
//! and logged, signals, and a process that dies before it is ready. The real binary is driven
//! by the node tests, chaos and loadtest, which all start through this kit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_testkit::{KitError, Node};

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

// The trap is set before the stand-in says it is ready, as Relay installs its signal handlers
// before it prints `listening on`: a SIGTERM right after readiness must find it.
const STAND_IN: &str = r#"
trap 'echo "shutdown: complete" >&2; exit 0' TERM
echo "args: $*" >&2
echo "relay: raft transport on 127.0.0.1:4001"
echo "relay: listening on http://127.0.0.1:4000"
while true; do sleep 0.05; done
"#;

#[test]
fn readiness_addresses_output_signals_and_restart() {
    let bins = tempfile::tempdir().unwrap();
    let bin = script(bins.path(), "relay", STAND_IN);
    let mut node = Node::builder(&bin)
        .args(["--bootstrap-api-key", "rs_live_standin0123456789"])
        .start()
        .unwrap();
    assert_eq!(node.base(), "http://127.0.0.1:4000");
    assert_eq!(node.url("/healthz"), "http://127.0.0.1:4000/healthz");
    assert_eq!(
        (node.http_addr(), node.raft_addr()),
        ("127.0.0.1:4000", "127.0.0.1:4001")
    );
    assert_eq!(node.key(), "rs_live_standin0123456789");
    assert_eq!(node.auth(), "Bearer rs_live_standin0123456789");
    assert_eq!(node.stdout().len(), 2, "{:?}", node.stdout());
    let logs = node.logs();
    assert!(
        logs.contains("args: serve --http 127.0.0.1:0 --raft 127.0.0.1:0 --data-dir"),
        "{logs}"
    );
    assert!(logs.contains("relay: listening on"), "stdout is logged too: {logs}");

    node.pause();
    assert!(node.is_paused());
    node.resume();
    assert!(!node.is_paused());
    let exit = node.terminate().unwrap();
    assert!(exit.success(), "{exit:?}: {}", node.logs());
    assert!(!node.is_running());
    assert!(node.logs().contains("shutdown: complete"));

    // A restart binds the addresses the first start was given.
    node.restart().unwrap();
    assert!(node.is_running());
    assert!(
        node.logs().contains("--http 127.0.0.1:4000 --raft 127.0.0.1:4001"),
        "{}",
        node.logs()
    );
    assert!(
        matches!(node.restart(), Err(KitError::Process(_))),
        "a running node is not restarted"
    );
    let pid = node.pid().unwrap();
    node.kill9();
    assert!(node.pid().is_none());
    // SAFETY: signal 0 only asks whether the pid is still in use.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "killed and reaped");
}

#[test]
fn the_founders_saved_key_is_read_when_none_was_given() {
    let bins = tempfile::tempdir().unwrap();
    let saving = format!("printf 'rs_live_saved0123456789\\n' > \"$7/bootstrap-api-key\"\n{STAND_IN}");
    let bin = script(bins.path(), "relay", &saving);
    let node = Node::builder(&bin).start().unwrap();
    assert_eq!(node.key(), "rs_live_saved0123456789");
    assert!(node.admin_key().is_err(), "no admin key was saved");
}

#[test]
fn a_process_that_dies_before_it_is_ready_is_an_error_at_once() {
    let bins = tempfile::tempdir().unwrap();
    let bin = script(
        bins.path(),
        "relay",
        "echo 'relay: cannot open the ledger' >&2\nexit 3\n",
    );
    let started = Instant::now();
    let err = Node::builder(&bin).start().err().expect("it exits");
    assert!(matches!(err, KitError::ExitedEarly { .. }), "{err}");
    assert!(err.to_string().contains("cannot open the ledger"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no wait for the ready timeout"
    );

    let mut node = Node::builder(&bin).launch().unwrap();
    assert_eq!(node.wait_exit(Duration::from_secs(10)).unwrap().code(), Some(3));
}

#[test]
fn a_fixed_data_dir_is_used_and_kept() {
    let bins = tempfile::tempdir().unwrap();
    let bin = script(bins.path(), "relay", STAND_IN);
    let data = bins.path().join("node1");
    let node = Node::builder(&bin).dir(&data).ports(4100, 4101).start().unwrap();
    assert_eq!(node.data_dir(), data);
    assert!(node.logs().contains("--http 127.0.0.1:4100 --raft 127.0.0.1:4101"));
    drop(node);
    assert!(
        data.join(relay_testkit::LOG_FILE).is_file(),
        "the caller's dir outlives the node"
    );
}
