//! The acceptance run: three real nodes, every nemesis, every workload, a checked history.

use std::path::PathBuf;
use std::process::Command;

fn chaos_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_relay-chaos"))
}

/// `cargo test --workspace` builds `relay` into the same directory (relay-node's tests need it).
fn relay_bin() -> PathBuf {
    let p = chaos_bin().with_file_name("relay");
    assert!(
        p.is_file(),
        "{} missing: run the whole workspace's tests (scripts/test.sh)",
        p.display()
    );
    p
}

#[test]
fn short_run_with_every_nemesis_and_workload_is_valid() {
    let history = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(chaos_bin())
        .args(["run", "--nodes", "3", "--duration-seconds", "35", "--seed", "20261123"])
        .args(["--nemesis", "all", "--workload", "all", "--interval-seconds", "1.5"])
        .arg("--relay-bin")
        .arg(relay_bin())
        .arg("--history")
        .arg(history.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "relay-chaos failed:\n{stderr}\n{stdout}");
    let verdict: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["seed"], 20261123);
    assert!(verdict["violations"].as_array().unwrap().is_empty());
    assert!(verdict["ops"].as_u64().unwrap() >= 1000, "{verdict}");
    for nemesis in ["kill", "pause", "partition", "latency", "skew"] {
        assert!(
            stderr.contains(&format!("nemesis {nemesis} start")),
            "{nemesis} never ran:\n{stderr}"
        );
    }
    assert!(stderr.contains("SIGKILL every node at once"), "{stderr}");
    // Every workload had acknowledged operations, and the final reads ran.
    for f in [
        "read",
        "cas",
        "claim",
        "claim_probe",
        "create",
        "download",
        "delete",
        "drop",
        "pickup",
        "baton_append",
        "baton_read",
        "budget_read",
        "baton_final",
        "budget_final",
    ] {
        assert!(
            verdict["counts"][f]["ok"].as_u64().unwrap_or(0) > 0,
            "no acknowledged {f}: {verdict}"
        );
    }
    // The written history checks the same offline.
    let recheck = Command::new(chaos_bin())
        .args(["check", "--skew-bound-ms", "1000", "--history"])
        .arg(history.path())
        .output()
        .unwrap();
    assert!(recheck.status.success(), "{}", String::from_utf8_lossy(&recheck.stderr));
}

/// A history that breaks promises is rejected, with the slice that shows it.
#[test]
fn check_rejects_a_bad_history() {
    let lines = [
        r#"{"index":0,"client":"a","node":1,"invoke_us":0,"complete_us":10,"outcome":"ok","f":"cas","key":"r","expect":1,"value":5,"new_version":2}"#,
        r#"{"index":1,"client":"b","node":2,"invoke_us":20,"complete_us":30,"outcome":"ok","f":"read","key":"r","version":1,"value":0}"#,
        r#"{"index":2,"client":"c","node":3,"invoke_us":40,"complete_us":50,"outcome":"ok","f":"pickup","mailbox":0,"message_id":"msg_1","drop":77}"#,
    ];
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let out = Command::new(chaos_bin())
        .args(["check", "--history"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(verdict["valid"], false);
    let v = verdict["violations"].as_array().unwrap();
    assert_eq!(v.len(), 2, "{verdict}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not linearizable") && stderr.contains("never attempted"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_refused_clearly() {
    for (args, needle) in [
        (vec!["run", "--nodes", "4"], "must be 3 or 5"),
        (vec!["run", "--nemesis", "meteor"], "unknown \"meteor\""),
        (vec!["run", "--workload", "none"], "workload"),
        (
            vec!["run", "--relay-bin", "/nonexistent/relay", "--duration-seconds", "5"],
            "no such file",
        ),
    ] {
        let out = Command::new(chaos_bin()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
