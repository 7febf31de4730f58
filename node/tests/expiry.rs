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
