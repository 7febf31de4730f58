//! Expiry: 410 from `expires_at` on, judged at read time, and the bytes gone within a second.

mod common;

use std::time::Duration;

use common::{bytes, client, now_ms, parse_ms, Relay, RelayExt};

/// Downloads succeed before `expires_at`, answer 410 from it on, and the blob is deleted from
/// disk within one second of expiry by the sweeper and GC worker.
#[tokio::test]
async fn lease_is_gone_at_expiry_and_bytes_within_a_second() {
    let relay = Relay::start(&[]);
    let http = client();
    let receipt = relay.store(&http, "short.txt", bytes(64, 9), 2).await;
    let lease_id = receipt["lease_id"].as_str().unwrap();
    let expires_at = parse_ms(receipt["expires_at"].as_str().unwrap());
    let blob = relay.objects_dir().join(receipt["object_key"].as_str().unwrap());
    assert!(blob.exists(), "blob written at {}", blob.display());

    let mut last_ok = None;
    let mut first_gone = None;
    while first_gone.is_none() && now_ms() < expires_at + 5_000 {
        let sent = now_ms();
        let status = relay.download(&http, lease_id).await.status().as_u16();
        match status {
            200 => last_ok = Some(sent),
            410 => first_gone = Some(now_ms()),
            other => panic!("unexpected status {other}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_gone = first_gone.expect("lease never answered 410");
    let last_ok = last_ok.expect("lease was never readable");
    assert!(
        last_ok < expires_at,
        "served at {last_ok}, after expires_at {expires_at}"
    );
    assert!(
        first_gone >= expires_at,
        "410 at {first_gone}, before expires_at {expires_at}"
    );
    assert!(
        first_gone < expires_at + 1_000,
        "410 only at {first_gone}, expires_at {expires_at}"
    );

    while blob.exists() && now_ms() < expires_at + 3_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone_at = now_ms();
    assert!(!blob.exists(), "blob still on disk 3 s after expiry");
    assert!(
        gone_at <= expires_at + 1_000,
        "blob deleted {} ms after expiry",
        gone_at - expires_at
    );

    let list = relay.leases(&http).await;
    assert_eq!(list["leases"][0]["status"], "expired");
    assert_eq!(list["leases"][0]["expired_at"], receipt["expires_at"]);
}

/// More than two GC batches' worth of leases expiring together: every object file goes (the
/// collector walks the queue batch after batch with a cursor and records each batch while it
/// deletes the next), and the threads doing the deletes run at a lower CPU priority than the
/// node's others.
#[tokio::test]
async fn a_mass_expiry_deletes_every_batch_on_low_priority_threads() {
    const LEASES: usize = 2 * 1024 + 100;
    let relay = Relay::start(&["--max-uploads-per-client", "16"]);
    let http = client();
    let objects = relay.objects_dir();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let api = relay.client(http.clone());
            tokio::spawn(async move {
                for i in (t..LEASES).step_by(16) {
                    let reply = api
                        .store(&format!("m{i}"), 3, vec![i as u8; 8])
                        .send()
                        .await
                        .expect("store");
                    assert_eq!(reply.status, 201, "store {i}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let files = common::files_under(&objects).len();
    assert!(files >= LEASES, "{files} object files for {LEASES} leases");

    let pid = relay.pid().expect("relay pid");
    let gc_nice: Vec<i64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "relay-gc"))
        .map(|t| nice_of(&t.path()))
        .collect();
    assert!(!gc_nice.is_empty(), "no relay-gc thread");
    assert!(gc_nice.iter().all(|&n| n == 10), "relay-gc threads at nice {gc_nice:?}");
    assert_eq!(
        nice_of(&std::path::PathBuf::from(format!("/proc/{pid}"))),
        0,
        "the node's main thread"
    );

    let deadline = now_ms() + 20_000;
    while !common::files_under(&objects).is_empty() && now_ms() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = common::files_under(&objects).len();
    assert_eq!(left, 0, "{left} object files left 20 s after the leases ended");
    // The last batch is recorded just after its files go.
    let mut deleted = 0.0;
    while deleted < LEASES as f64 && now_ms() < deadline + 5_000 {
        let metrics = relay.metrics(&http).await;
        deleted = metrics
            .lines()
            .find_map(|l| l.strip_prefix("relay_objects_deleted_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("relay_objects_deleted_total in /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        deleted >= LEASES as f64,
        "{deleted} deletions recorded for {LEASES} leases"
    );
}

/// The nice value of a process or thread (`stat` field 19).
fn nice_of(dir: &std::path::Path) -> i64 {
    let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}
