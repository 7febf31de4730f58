//! Durability: kill -9 then restart keeps every acknowledged lease; expired ones stay gone.

mod common;

use std::time::Duration;

use common::{bytes, client, now_ms, parse_ms, Relay, RelayExt};

/// Every lease acknowledged before SIGKILL downloads intact after restart; a lease that expired
/// while the node was down answers 410 and its bytes are deleted after restart.
#[tokio::test]
async fn kill9_then_restart_loses_nothing_acknowledged() {
    let mut relay = Relay::start(&["--snapshot-every-entries", "100"]);
    let http = client();
    let mut kept = Vec::new();
    // Enough writes to cross a snapshot and log purge, so recovery uses both.
    for i in 0..60u8 {
        let body = bytes(100 + i as usize, i);
        let r = relay.store(&http, &format!("f{i}.bin"), body.clone(), 3600).await;
        kept.push((r["lease_id"].as_str().unwrap().to_string(), body));
        if i % 2 == 0 {
            let resp = relay.download(&http, r["lease_id"].as_str().unwrap()).await;
            assert_eq!(resp.status(), 200);
        }
    }
    let short = relay.store(&http, "short.bin", bytes(10, 1), 1).await;
    let short_expires = parse_ms(short["expires_at"].as_str().unwrap());
    let short_blob = relay.objects_dir().join(short["object_key"].as_str().unwrap());
    relay.kill9();

    // Stay down past the short lease's expiry: the sweeper cannot have run for it.
    while now_ms() < short_expires + 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(short_blob.exists(), "nothing deletes bytes while the node is down");
    relay.restart().unwrap();

    for (lease_id, body) in &kept {
        let resp = relay.download(&http, lease_id).await;
        assert_eq!(
            resp.status(),
            200,
            "lease {lease_id} lost after kill -9; log:\n{}",
            relay.logs()
        );
        assert!(
            resp.bytes().await.unwrap().as_ref() == body.as_slice(),
            "lease {lease_id} bytes differ"
        );
    }
    let resp = relay.download(&http, short["lease_id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 410);
    let deadline = now_ms() + 2_000;
    while short_blob.exists() && now_ms() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!short_blob.exists(), "expired blob not deleted after restart");
}

/// SIGTERM drains and exits 0, and the node starts again on its data.
#[tokio::test]
async fn sigterm_exits_cleanly() {
    let mut relay = Relay::start(&[]);
    let http = client();
    let r = relay.store(&http, "t.bin", bytes(10, 2), 600).await;
    let status = relay.terminate().unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", relay.logs());
    assert!(relay.logs().contains("shutdown: complete"));
    relay.restart().unwrap();
    assert_eq!(
        relay.download(&http, r["lease_id"].as_str().unwrap()).await.status(),
        200
    );
}
