//! `relay-loadtest` from the outside: a short `bench --quick` against real Relay and etcd
//! clusters produces a well-formed table with numbers on both sides, and wrong arguments or
//! unreachable targets fail clearly with a non-zero exit.

use std::path::PathBuf;
use std::process::Command;

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relay-loadtest"))
}

/// `relay`, built into the same directory by the same `cargo test --workspace`.
fn relay_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_relay-loadtest"))
        .parent()
        .expect("bin dir")
        .join("relay");
    assert!(bin.is_file(), "{} missing: build the workspace", bin.display());
    bin
}

/// Every scenario against both systems; only the shape and that both produced numbers.
#[test]
fn quick_bench_fills_the_table() {
    let out = loadtest()
        .args(["bench", "--quick", "--relay-bin"])
        .arg(relay_bin())
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let scenarios: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        scenarios,
        [
            "store-small",
            "store-x402",
            "download",
            "checkpoint-get",
            "mailbox-poll",
            "checkpoint-put",
            "checkpoint-cas",
            "mailbox-drop",
            "claim",
            "baton-append",
            "baton-append-witnessed",
            "baton-read"
        ],
        "{stdout}"
    );
    for row in &rows {
        check_row(row);
    }
}

/// Two rounds, each on fresh clusters: the row names both rounds' ratios and reports the worse.
#[test]
fn rounds_report_the_worst() {
    let out = loadtest()
        .args([
            "bench",
            "--rounds",
            "2",
            "--scenarios",
            "checkpoint-get",
            "--concurrency",
            "4",
        ])
        .args(["--duration-seconds", "1", "--relay-bin"])
        .arg(relay_bin())
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("| checkpoint-get"))
        .expect("a row")
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    check_row(&row);
    let all: Vec<f64> = row[5]
        .split(", ")
        .map(|r| r.parse().expect("a round's ratio"))
        .collect();
    assert_eq!(all.len(), 2, "{row:?}");
    let worst: f64 = row[4].parse().expect("ratio");
    assert!((worst - all[0].min(all[1])).abs() < 0.006, "{row:?}");
}

fn check_row(row: &[&str]) {
    assert_eq!(row.len(), 13, "{row:?}");
    let relay: f64 = row[2].parse().expect("Relay ops/s");
    let etcd: f64 = row[3].parse().expect("etcd ops/s");
    let ratio: f64 = row[4].parse().expect("ratio");
    assert!(relay > 0.0 && etcd > 0.0, "{row:?}");
    assert!((ratio - relay / etcd).abs() < 0.02, "{row:?}");
    for p in [6, 7, 8, 9] {
        let v: f64 = row[p].parse().expect("latency");
        assert!(v > 0.0, "{row:?}");
    }
    let rss: f64 = row[11].parse().expect("peak RSS");
    assert!(rss > 1.0, "{row:?}");
}

#[test]
fn bad_arguments_and_dead_targets_fail_clearly() {
    let run = |args: &[&str]| {
        let out = loadtest().args(args).output().expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["run", "--scenario", "claim"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--targets"), "{err}");
    let (code, err) = run(&["run", "--targets", "ftp://x", "--api-key", "k", "--scenario", "claim"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not an http:// URL"), "{err}");
    let (code, err) = run(&[
        "run",
        "--targets",
        "http://127.0.0.1:1",
        "--api-key",
        "k",
        "--scenario",
        "claim",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is the node up"), "{err}");
    let (code, err) = run(&["run", "--etcd", "http://127.0.0.1:1", "--scenario", "claim"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot reach etcd"), "{err}");
    let (code, err) = run(&["bench", "--relay-bin", "/nonexistent/relay", "--no-etcd"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a file"), "{err}");
    let (code, _) = run(&["run", "--targets", "http://x", "--api-key", "k", "--scenario", "nope"]);
    assert_eq!(code, Some(2));
}

/// A scale curve at two small sizes: one table row each with every measure filled, and the plot.
#[test]
fn scale_measures_every_size_and_draws_the_curve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("scale.svg");
    let out = loadtest()
        .args(["scale", "--sizes", "300,600", "--concurrency", "8", "--plot"])
        .arg(&svg)
        .arg("--relay-bin")
        .arg(relay_bin())
        .output()
        .expect("run scale");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scale failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| leases"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["300", "600"],
        "{stdout}"
    );
    for row in &rows {
        assert_eq!(row.len(), 12, "{row:?}");
        let num = |i: usize| -> f64 { row[i].parse().unwrap_or_else(|_| panic!("column {i} of {row:?}")) };
        assert!(num(1) > 0.0, "creates/s {row:?}");
        assert_eq!(row[2].split(" / ").count(), 3, "an RSS per node {row:?}");
        assert!(num(3) > 0.0 && num(6) > 0.0, "data and snapshot sizes {row:?}");
        // 10% of the leases are Storage leases, each one object file.
        assert!(num(4) >= row[0].parse::<f64>().unwrap() / 10.0, "objects {row:?}");
        assert!(num(8) > 0.0 && num(9) > 0.0, "restart and catch-up {row:?}");
    }
    let plot = std::fs::read_to_string(&svg).expect("the plot");
    assert!(
        plot.starts_with("<svg") && plot.matches("<circle").count() == 14,
        "{plot}"
    );
}

/// Leases ending in one second: none served after its end on any node, the bytes all gone.
#[test]
fn mass_expiry_serves_nothing_late_and_frees_the_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("expiry.svg");
    let out = loadtest()
        .args([
            "expiry",
            "--leases",
            "1000",
            "--fill-seconds",
            "10",
            "--concurrency",
            "16",
        ])
        .args(["--watch-seconds", "20", "--plot"])
        .arg(&svg)
        .arg("--relay-bin")
        .arg(relay_bin())
        .output()
        .expect("run expiry");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "expiry failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |name: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {name}")))
            .unwrap_or_else(|| panic!("no {name:?} in\n{stdout}"));
        line.trim_matches('|').split('|').nth(1).unwrap().trim().to_string()
    };
    assert_eq!(value("object files before"), "1000", "{stdout}");
    assert_eq!(value("… served (a violation)"), "0", "{stdout}");
    let after: u64 = value("probe reads begun after").parse().unwrap();
    assert!(after > 0, "the probes must have read past the expiry:\n{stdout}");
    let gone: f64 = value("all object bytes gone")
        .parse()
        .expect("bytes gone within the watch");
    assert!(gone < 20.0, "{stdout}");
    assert!(std::fs::read_to_string(&svg).expect("the plot").contains("<polyline"));
}
