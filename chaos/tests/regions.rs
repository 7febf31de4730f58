//! `relay-chaos regions`: three voters 40–80 ms apart and a learner 150 ms away (delays on the
//! Raft links). Every request succeeds, what each costs follows the round trips (a read at the far
//! learner pays its round trip to the leader, a write at the leader one to the nearest voter), and
//! writes resume after the leader's region dies. With the heartbeat below the round trips
//! (openraft bounds each replication call by it) this fails: the learner never catches up and the
//! survivors never commit.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn regions_pay_their_round_trips_and_survive_the_leaders_region() {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_relay-chaos"));
    let relay = chaos.with_file_name("relay");
    assert!(
        relay.is_file(),
        "{} missing: run the whole workspace's tests",
        relay.display()
    );
    let out = Command::new(&chaos)
        .args(["regions", "--requests", "10", "--relay-bin"])
        .arg(&relay)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let p50 = |row: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("{row}: {stdout}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[5], "0", "failed requests: {line}");
        cells[3].parse().unwrap()
    };
    assert!(p50("read at the far learner") >= 150.0, "{stdout}");
    assert!(p50("write at the far learner") >= 150.0, "{stdout}");
    assert!(p50("write at the leader") >= 40.0, "{stdout}");
    let read_at_leader = p50("read at the leader");
    assert!((40.0..150.0).contains(&read_at_leader), "{stdout}");
    assert!(stdout.contains("failover:"), "{stdout}");
}
