//! `relay serve --config FILE`: the example config starts a node; the file's values apply unless
//! a flag overrides them; a bad key or value stops the node with exit code 2, naming the key.

mod common;

use std::process::{Command, Stdio};

use common::{client, Relay, RelayExt};

fn example() -> String {
    format!("{}/../relay.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_example_config_starts_a_node() {
    let relay = Relay::start(&["--config", &example()]);
    let pricing = relay.get_json(&client(), "/api/pricing").await;
    assert_eq!(pricing["rateMicrosPerGbDay"], 1000);
    assert_eq!(pricing["minDurationSeconds"], 1, "the flag beats the file's 60");
}

#[tokio::test]
async fn file_values_apply_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "rate_micros_per_gb_day = 4321\nmin_charge_micros = 7\nmax_duration_seconds = 7200\n\
         webhook_allow_cidr = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let relay = Relay::start(&["--config", file.to_str().unwrap(), "--min-charge-micros", "9"]);
    let pricing = relay.get_json(&client(), "/api/pricing").await;
    assert_eq!(pricing["rateMicrosPerGbDay"], 4321);
    assert_eq!(pricing["minChargeMicros"], 9);
    assert_eq!(pricing["maxDurationSeconds"], 7200);
}

/// Runs `relay serve --config <text>` and returns its exit code and stderr.
fn refused(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["serve", "--http", "127.0.0.1:0", "--raft", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A node that starts instead of refusing is stopped, and the case fails below.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_files_exit_2_naming_the_key() {
    for (text, names) in [
        ("rate_micros_per_gb_day = \"lots\"\n", "rate_micros_per_gb_day"),
        ("rate_micros_per_gb_day = -5\n", "rate_micros_per_gb_day"),
        ("max_connections = 1.5\n", "max_connections"),
        ("no_such_setting = 1\n", "no_such_setting"),
        ("http = [\"127.0.0.1:1\"]\n", "http"),
        ("http = { a = 1 }\n", "http"),
        ("webhook_allow_cidr = [\"not-a-cidr\"]\n", "webhook"),
        ("chaos_dial = [\"127.0.0.1:1=127.0.0.1:2\"]\n", "chaos_dial"),
        ("rate_micros_per_gb_day = \n", "bad.toml"),
        ("node_id = 0\n", "node-id"),
        ("node_id = 1.0\n", "node_id"),
        ("data_dir = false\n", "data_dir"),
        ("min_charge_micros = 0\n", "min-charge-micros"),
    ] {
        let (code, stderr) = refused(text);
        assert_eq!(code, Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(names), "{text:?} should name {names}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
    // A device is not read at all; a secret is never echoed.
    let (code, stderr) = {
        let out = Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["serve", "--config", "/dev/zero"])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let (code, stderr) = refused("admin_api_key = \"rs_admin_not valid at all\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("admin") && !stderr.contains("not valid at all"),
        "{stderr}"
    );
}
