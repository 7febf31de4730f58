//! The `relay` client against a real node: every subcommand, its `--json` parsed, its exit codes
//! (not found 3, gone 4, payment required 5, unavailable 6, not allowed 7, usage 2), progress
//! bars under a pseudo-terminal (`script`) and none otherwise, a profile file, completions, and
//! a write whose answer is lost retried with the same Idempotency-Key and applied once.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{client, Relay, RelayExt, KEY};
use serde_json::Value;

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");

/// `relay ARGS` against `url` with `key`, HOME in `home` (so no profile is picked up by chance).
fn relay(home: &Path, url: &str, key: &str, args: &[&str]) -> Output {
    Command::new(RELAY_BIN)
        .args(args)
        .env("HOME", home)
        .env("RELAY_URL", url)
        .env("RELAY_API_KEY", key)
        .env_remove("RELAY_PROFILE")
        .output()
        .expect("run relay")
}

fn ok_json(out: Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_against_a_live_node() {
    let node = Relay::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let url = node.base().to_string();
    let run = |args: &[&str]| relay(dir, &url, KEY, args);

    // store put / get, ls, handoff, claim.
    let file = dir.join("notes.txt");
    std::fs::write(&file, b"hello from the cli").unwrap();
    let receipt = ok_json(
        run(&["store", "put", file.to_str().unwrap(), "--ttl", "10m", "--json"]),
        "store put",
    );
    let lease = receipt["lease_id"].as_str().unwrap().to_string();
    assert_eq!(receipt["size_bytes"], 18);
    let out = run(&["store", "get", &lease]);
    assert_eq!(out.stdout, b"hello from the cli");
    // Stdin as the file.
    let mut child = Command::new(RELAY_BIN)
        .args(["store", "put", "-", "--name", "piped.txt", "--json"])
        .env("HOME", dir)
        .env("RELAY_URL", &url)
        .env("RELAY_API_KEY", KEY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from a pipe").unwrap();
    let piped = ok_json(child.wait_with_output().unwrap(), "store put -");
    assert_eq!(
        run(&["store", "get", piped["lease_id"].as_str().unwrap()]).stdout,
        b"from a pipe"
    );
    // A directory is not a file to write; nothing is left behind.
    assert_eq!(code(&run(&["store", "get", &lease, "-o", dir.to_str().unwrap()])), 2);
    assert!(!std::fs::read_dir(dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("relay-partial")));
    let copy = dir.join("copy.txt");
    assert!(run(&["store", "get", &lease, "-o", copy.to_str().unwrap()])
        .status
        .success());
    assert_eq!(std::fs::read(&copy).unwrap(), b"hello from the cli");
    let listing = ok_json(run(&["ls", "--json"]), "ls");
    assert!(listing["leases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["lease_id"] == lease.as_str()));
    let table = String::from_utf8(run(&["ls"]).stdout).unwrap();
    assert!(
        table.starts_with("LEASE") && table.contains(&lease) && table.contains("notes.txt"),
        "{table}"
    );
    let handoff = ok_json(
        run(&["handoff", &lease, "--claims", "1", "--delete-on-claim", "--json"]),
        "handoff",
    );
    let link = handoff["claim_url"].as_str().unwrap().to_string();
    let claimed = relay(dir, &url, "", &["claim", &link]);
    assert!(claimed.status.success(), "{}", String::from_utf8_lossy(&claimed.stderr));
    assert_eq!(claimed.stdout, b"hello from the cli");
    // The link was for one claim, and the lease went with it: gone (4).
    assert_eq!(code(&relay(dir, &url, "", &["claim", &link])), 4);
    assert_eq!(code(&run(&["store", "get", &lease])), 4);

    // checkpoint put (bought with --ttl, then written), get, rm.
    let state = dir.join("state.json");
    std::fs::write(&state, br#"{"step": 1}"#).unwrap();
    let s = state.to_str().unwrap();
    assert_eq!(
        code(&run(&["checkpoint", "put", "wf-cli", s])),
        3,
        "no checkpoint, no --ttl"
    );
    let first = ok_json(
        run(&["checkpoint", "put", "wf-cli", s, "--ttl", "10m", "--json"]),
        "checkpoint create",
    );
    assert_eq!(first["version"], 1);
    std::fs::write(&state, br#"{"step": 2}"#).unwrap();
    let second = ok_json(run(&["checkpoint", "put", "wf-cli", s, "--json"]), "checkpoint write");
    assert_eq!(second["version"], 2);
    assert_eq!(
        code(&run(&["checkpoint", "put", "wf-cli", s, "--if-version", "1"])),
        1,
        "a stale version"
    );
    let got: Value = serde_json::from_slice(&run(&["checkpoint", "get", "wf-cli"]).stdout).unwrap();
    assert_eq!(got["step"], 2);
    ok_json(run(&["checkpoint", "rm", "wf-cli", "--json"]), "checkpoint rm");
    assert_eq!(code(&run(&["checkpoint", "get", "wf-cli"])), 4);

    // mailbox create, drop (no key), poll, pickup.
    let mailbox = ok_json(
        run(&["mailbox", "create", "--capacity", "64KiB", "--ttl", "10m", "--json"]),
        "mailbox create",
    );
    let mailbox_id = mailbox["lease_id"].as_str().unwrap().to_string();
    let drop_url = mailbox["drop_url"].as_str().unwrap().to_string();
    let message = dir.join("msg.json");
    std::fs::write(&message, br#"{"hi": true}"#).unwrap();
    let dropped = ok_json(
        relay(
            dir,
            &url,
            "",
            &[
                "mailbox",
                "drop",
                &drop_url,
                message.to_str().unwrap(),
                "--content-type",
                "application/json",
                "--json",
            ],
        ),
        "mailbox drop",
    );
    let message_id = dropped["id"].as_str().unwrap().to_string();
    let polled = ok_json(run(&["mailbox", "poll", &mailbox_id, "--json"]), "mailbox poll");
    assert_eq!(polled["count"], 1);
    let picked = run(&["mailbox", "pickup", &mailbox_id, &message_id]);
    assert_eq!(picked.stdout, br#"{"hi": true}"#);
    assert_eq!(
        code(&run(&["mailbox", "pickup", &mailbox_id, &message_id])),
        3,
        "picked up once"
    );

    // baton create, append, entries, meta, tokens, get, rm; a blob baton's put.
    let baton = ok_json(
        run(&[
            "baton", "create", "--write", "append", "--ttl", "10m", "--token", "read", "--json",
        ]),
        "baton create",
    );
    let baton_id = baton["baton_id"].as_str().unwrap().to_string();
    assert!(baton["tokens"][0]["token"].as_str().unwrap().starts_with("bt_"));
    ok_json(run(&["baton", "append", &baton_id, "first", "--json"]), "append");
    ok_json(run(&["baton", "append", &baton_id, "second", "--json"]), "append");
    let entries = ok_json(run(&["baton", "entries", &baton_id, "--json"]), "entries");
    assert_eq!(entries["entries"][1]["content"], "second");
    assert_eq!(
        ok_json(run(&["baton", "meta", &baton_id, "--json"]), "meta")["state"],
        "active"
    );
    assert_eq!(
        ok_json(run(&["baton", "tokens", &baton_id, "--json"]), "tokens")["tokens"][0]["scope"],
        "read"
    );
    assert_eq!(run(&["baton", "get", &baton_id]).stdout, b"firstsecond");
    let blob = ok_json(
        run(&[
            "baton",
            "create",
            "--write",
            "overwrite",
            "--file",
            file.to_str().unwrap(),
            "--json",
        ]),
        "blob baton",
    );
    let blob_id = blob["baton_id"].as_str().unwrap().to_string();
    std::fs::write(&file, b"v2").unwrap();
    assert_eq!(
        ok_json(
            run(&["baton", "put", &blob_id, file.to_str().unwrap(), "--json"]),
            "put"
        )["version"],
        2
    );
    assert_eq!(run(&["baton", "get", &blob_id]).stdout, b"v2");
    ok_json(run(&["rm", &blob_id, "--hard", "--json"]), "rm baton");
    assert_eq!(code(&run(&["baton", "get", &blob_id])), 4);
    let shared = ok_json(
        run(&[
            "baton",
            "share",
            &baton_id,
            "--scope",
            "read",
            "--read-cap",
            "2",
            "--json",
        ]),
        "baton share",
    );
    let token_id = shared["tokens"][0]["token_id"].as_str().unwrap().to_string();
    assert_eq!(shared["tokens"][0]["read_cap"], 2);
    ok_json(
        run(&["baton", "revoke", &baton_id, &token_id, "--json"]),
        "baton revoke",
    );
    let extended = ok_json(
        run(&["baton", "extend", &baton_id, "--ttl", "1h", "--json"]),
        "baton extend",
    );
    assert!(extended["price_micros"].as_u64().unwrap() > 0, "{extended}");
    ok_json(run(&["baton", "rm", &baton_id, "--json"]), "baton rm");

    // quote, pricing, account balance and billing.
    let quote = ok_json(run(&["quote", "--size", "1GiB", "--ttl", "1d", "--json"]), "quote");
    assert_eq!(quote["cost_micros"], "1000");
    assert_eq!(ok_json(run(&["pricing", "--json"]), "pricing")["currency"], "USDC");
    let balance = ok_json(run(&["account", "balance", "--json"]), "balance");
    assert_eq!(balance["account_id"], "acct_bootstrap");
    let billing = ok_json(run(&["account", "billing", "--json"]), "billing");
    assert!(billing["items"].as_array().unwrap().len() >= 4);
    assert!(String::from_utf8(run(&["account", "billing"]).stdout)
        .unwrap()
        .starts_with("AT"));

    // Exit codes: not found, not allowed, usage, unavailable, payment required.
    assert_eq!(code(&run(&["store", "get", "lse_01HX0000000000000000000000"])), 3);
    assert_eq!(code(&relay(dir, &url, "rs_live_notakey0000000000000000", &["ls"])), 7);
    assert_eq!(code(&relay(dir, &url, "", &["ls"])), 2, "no key at all");
    assert_eq!(code(&run(&["store", "put", file.to_str().unwrap(), "--ttl", "1y"])), 2);
    assert_eq!(
        code(&run(&[
            "store",
            "put",
            file.to_str().unwrap(),
            "--name",
            "a\r\nX-Evil: 1"
        ])),
        2
    );
    // A key never goes to plain HTTP beyond loopback, however the URL is spelled.
    let far = relay(dir, "http://nonexistent.invalid\\@127.0.0.1/", KEY, &["ls"]);
    assert_eq!(code(&far), 2, "{}", String::from_utf8_lossy(&far.stderr));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = relay(dir, &dead, KEY, &["ls", "--quiet"]);
    assert_eq!(
        code(&unreachable),
        6,
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
    let admin = format!("Bearer {}", node.admin_key().unwrap());
    let http = client();
    let poor: Value = http
        .post(node.url("/cluster/accounts"))
        .header("authorization", &admin)
        .json(&serde_json::json!({"account_id": "poor", "balance_micros": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poor["account_id"], "poor");
    let key: Value = http
        .post(node.url("/cluster/accounts/poor/keys"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poor_key = key["api_key"].as_str().unwrap();
    let unpaid = relay(dir, &url, poor_key, &["store", "put", file.to_str().unwrap()]);
    assert_eq!(code(&unpaid), 5, "{}", String::from_utf8_lossy(&unpaid.stderr));
    assert!(String::from_utf8_lossy(&unpaid.stderr).contains("insufficient_balance"));

    // A profile file stands in for the flags and the environment.
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, format!("url = \"{url}\"\nkey = \"{KEY}\"\n")).unwrap();
    let out = Command::new(RELAY_BIN)
        .args(["ls", "--json", "--profile", profile.to_str().unwrap()])
        .env("HOME", dir)
        .env_remove("RELAY_URL")
        .env_remove("RELAY_API_KEY")
        .output()
        .unwrap();
    ok_json(out, "ls with a profile");
}

/// Progress shows (bytes, rate, ETA) when stderr is a terminal, and never in a pipe or with
/// --quiet; the bytes arrive whole either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_under_a_terminal_only() {
    let node = Relay::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let big = dir.join("big.bin");
    std::fs::write(&big, common::bytes(3 << 20, 7)).unwrap();
    let under_pty = |args: &str| -> String {
        let out = Command::new("script")
            .args(["-qec", &format!("{RELAY_BIN} {args}"), "/dev/null"])
            .env("HOME", dir)
            .env("TERM", "xterm")
            .env("RELAY_URL", node.base())
            .env("RELAY_API_KEY", KEY)
            .output()
            .expect("script (util-linux) runs a pseudo-terminal");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = under_pty(&format!("store put {} --ttl 10m", big.display()));
    assert!(
        shown.contains("upload") && shown.contains("MiB/3.00 MiB") && shown.contains("ETA"),
        "no progress under a terminal: {shown}"
    );
    let lease = shown
        .split_whitespace()
        .find(|w| w.contains("lse_"))
        .map(|w| w[w.find("lse_").unwrap()..].to_string())
        .expect("the lease id");
    let out_file = dir.join("back.bin");
    let shown = under_pty(&format!("store get {lease} -o {}", out_file.display()));
    assert!(shown.contains("download") && shown.contains("ETA"), "{shown}");
    assert_eq!(std::fs::read(&out_file).unwrap(), std::fs::read(&big).unwrap());
    let quiet = under_pty(&format!("store put {} --quiet", big.display()));
    assert!(!quiet.contains("ETA"), "--quiet still drew: {quiet}");

    // In a pipe: no bar, no escape codes.
    let piped = relay(dir, node.base(), KEY, &["store", "put", big.to_str().unwrap()]);
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("ETA") && !stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef relay"),
        ("fish", "complete -c relay"),
    ] {
        let out = Command::new(RELAY_BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker) && text.contains("checkpoint"), "{shell}");
    }
    let bad = Command::new(RELAY_BIN)
        .args(["completions", "cmd.exe"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// A proxy that forwards the first request and drops its answer once it starts to arrive (the
/// node has done the work), then relays everything after.
async fn answer_losing_proxy(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            if std::mem::take(&mut first) {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let (mut client_rd, _client_wr) = client.split();
                    let (mut up_rd, mut up_wr) = upstream.split();
                    let forward = async {
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n) = client_rd.read(&mut buf).await {
                            if n == 0 || up_wr.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let mut answer = [0u8; 1];
                    tokio::select! {
                        _ = forward => {}
                        _ = up_rd.read(&mut answer) => {}
                    }
                    // Dropping both ends loses the answer.
                });
            } else {
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_retried_with_the_same_key_and_applied_once() {
    let node = Relay::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let file = dir.join("once.txt");
    std::fs::write(&file, b"exactly once").unwrap();
    let proxied = answer_losing_proxy(node.http_addr().to_string()).await;
    let out = tokio::task::spawn_blocking({
        let (dir, file) = (dir.to_path_buf(), file.clone());
        move || relay(&dir, &proxied, KEY, &["store", "put", file.to_str().unwrap(), "--json"])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("retrying"), "the first answer was not lost: {stderr}");
    let receipt = ok_json(out, "store put through a proxy that loses the first answer");
    let listing = ok_json(relay(dir, node.base(), KEY, &["ls", "--json"]), "ls");
    let same: Vec<&Value> = listing["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["file_name"] == "once.txt")
        .collect();
    assert_eq!(same.len(), 1, "the retried create was applied twice: {listing}");
    assert_eq!(same[0]["lease_id"], receipt["lease_id"]);

    // A delete whose answer is lost finds the lease gone on its retry: done, not an error.
    let lease = receipt["lease_id"].as_str().unwrap().to_string();
    let proxied = answer_losing_proxy(node.http_addr().to_string()).await;
    let out = tokio::task::spawn_blocking({
        let dir = dir.to_path_buf();
        move || relay(&dir, &proxied, KEY, &["rm", &lease])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("the first answer was lost"),
        "{stderr}"
    );
    let gone = relay(
        dir,
        node.base(),
        KEY,
        &["store", "get", receipt["lease_id"].as_str().unwrap()],
    );
    assert_eq!(code(&gone), 4);
}
