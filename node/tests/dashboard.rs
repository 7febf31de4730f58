//! `/dashboard` in a real browser: Debian's headless Chromium driven through WebDriver (Selenium
//! and chromedriver; `scripts/test.sh` installs them and sets RELAY_REQUIRE_BROWSER=1, so there a
//! missing browser fails instead of skipping). The script (`tests/browser/dashboard.py`) signs in,
//! sees leases made through the API, revokes a handoff token, sees a mailbox's message and a lease
//! expire, reads billing and the cluster, and writes a screenshot of each page under this test's
//! output directory (`<target>/tmp/dashboard/`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, Relay, RelayExt, KEY};
use serde_json::{json, Value};

fn browser_ready() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Path::new("/usr/bin/chromedriver").exists()
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("RELAY_REQUIRE_BROWSER").is_none(),
            "chromium, chromium-driver or selenium is missing (scripts/test.sh installs them)"
        );
        eprintln!("skipping: no chromium, chromedriver or selenium here");
    }
    ok
}

async fn post(http: &reqwest::Client, node: &Relay, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = http.post(node.url(path)).header("authorization", node.auth());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{path}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let node = Relay::start(&[]);
    let http = client();
    // The page runs only its own script and styles, and talks only to this origin.
    let page = http.get(node.url("/dashboard")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // More than one page (200) of leases, the oldest first, so the ones below lead the list.
    for i in 0..201 {
        node.store(&http, &format!("filler-{i}.bin"), vec![1u8; 10], 3600).await;
    }
    let long = node.store(&http, "report.pdf", vec![7u8; 5000], 3600).await;
    let long_id = long["lease_id"].as_str().unwrap().to_string();
    // Long enough to sign in and look around first, short enough to watch it expire.
    let short = node.store(&http, "soon.txt", b"going".to_vec(), 25).await;
    let short_id = short["lease_id"].as_str().unwrap().to_string();
    let handoff = post(
        &http,
        &node,
        &format!("/api/handoff/{long_id}"),
        &[],
        json!({"max_claims": 3}),
    )
    .await;
    let handoff_id = handoff["handoff_id"].as_str().unwrap().to_string();
    let mailbox = node.mailbox(&http, 1 << 20, &[]).await;
    let mailbox_id = mailbox["lease_id"].as_str().unwrap().to_string();
    let dropped = http
        .post(mailbox["drop_url"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(r#"{"task": "summarize"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(dropped.status(), 201);

    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let _ = std::fs::remove_dir_all(&out_dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let admin = node.admin_key().unwrap();
    let run = tokio::task::spawn_blocking({
        let (base, out_dir) = (node.base().to_string(), out_dir.clone());
        let args = [long_id.clone(), short_id.clone(), mailbox_id, handoff_id.clone()];
        move || {
            Command::new("timeout")
                .args(["300", "python3"])
                .arg(script)
                .args([base.as_str(), KEY, admin.as_str()])
                .args(&args)
                .arg(&out_dir)
                .env("SE_OFFLINE", "true")
                .output()
                .expect("python3")
        }
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "the browser run failed:\n{}\n{}\nnode log:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        node.logs()
    );

    // What the browser did, seen through the API: the token is revoked, the short lease expired.
    let left: Value = http
        .get(node.url(&format!("/api/handoffs/{long_id}")))
        .header("authorization", node.auth())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left["count"], 0, "{left}");
    assert!(!left.to_string().contains(&handoff_id));
    let gone = node.download(&http, &short_id).await;
    assert_eq!(gone.status(), 410);
    for page in [
        "leases",
        "handoffs",
        "handoff-revoked",
        "mailbox",
        "expired",
        "billing",
        "cluster",
        "phone",
    ] {
        let png = std::fs::read(out_dir.join(format!("{page}.png"))).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "no screenshot of {page}"
        );
    }
}
