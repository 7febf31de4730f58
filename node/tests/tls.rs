//! TLS, with certificates made by `relay cert`: three nodes serving HTTPS and speaking mutual TLS
//! between them work end to end; a node or client whose certificate comes from another CA can
//! neither join nor talk to the Raft port; SIGHUP swaps the HTTPS certificate without dropping
//! open connections, and a broken file keeps the current one.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bytes, client, Cluster, Relay, RelayExt, KEY, SECRET};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_relay");

fn relay_cert(args: &[&str]) -> std::process::Output {
    Command::new(RELAY_BIN)
        .arg("cert")
        .args(args)
        .output()
        .expect("relay cert")
}

/// A CA made by `relay cert init` and node certificates for 127.0.0.1 made by `relay cert issue`.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new(names: &[&str]) -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let out = relay_cert(&["init", "--dir", d]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let certs = Certs { dir };
        for name in names {
            certs.issue(name);
        }
        certs
    }

    fn issue(&self, name: &str) {
        let d = self.dir.path().to_str().unwrap();
        let out = relay_cert(&[
            "issue",
            "--dir",
            d,
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--host",
            "localhost",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn s(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).unwrap()
    }

    /// HTTPS and mutual TLS with node `name`'s certificate, trusting `ca`'s CA between nodes.
    fn node_flags(&self, name: &str, ca: &Certs) -> Vec<String> {
        let (cert, key) = (self.s(&format!("{name}.pem")), self.s(&format!("{name}-key.pem")));
        [
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--raft-tls-ca",
            &ca.s("ca.pem"),
            "--raft-tls-cert",
            &cert,
            "--raft-tls-key",
            &key,
        ]
        .map(String::from)
        .to_vec()
    }
}

fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn der_of(pem_file: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pem_file).unwrap()
}

/// One TLS connection made by hand, to see what the server presents and keep it open.
struct Tls {
    conn: rustls::ClientConnection,
    sock: TcpStream,
}

impl Tls {
    /// Connects to `addr` trusting `ca_pem`, presenting `identity` (cert and key files) if given,
    /// and completes the handshake; `alpn` as asked.
    fn open(addr: &str, ca_pem: &[u8], identity: Option<(&Path, &Path)>, alpn: &[u8]) -> Result<Tls, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem).unwrap()).unwrap();
        let builder =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(vec![der_of(cert)], PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        Ok(Tls { conn, sock })
    }

    fn server_cert(&self) -> CertificateDer<'static> {
        self.conn.peer_certificates().unwrap()[0].clone().into_owned()
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut s = rustls::Stream::new(&mut self.conn, &mut self.sock);
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads whatever comes next (at least one byte, or the error / end of stream).
    fn read_some(&mut self) -> std::io::Result<Vec<u8>> {
        let mut s = rustls::Stream::new(&mut self.conn, &mut self.sock);
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `GET path` over this connection (kept alive); the status code.
    fn get(&mut self, path: &str) -> u16 {
        self.write(format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = Vec::new();
        loop {
            let chunk = self.read_some().unwrap();
            assert!(!chunk.is_empty(), "the connection closed");
            answer.extend_from_slice(&chunk);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if answer.len() >= head_end + 4 + length {
                    return text[9..12].parse().unwrap();
                }
            }
        }
    }
}

/// Whether the Raft port at `addr` takes a client presenting `identity`: after the handshake a
/// gRPC server answers the HTTP/2 preface with its SETTINGS; a refused client reads an alert or
/// the end of the stream.
fn raft_port_accepts(addr: &str, ca_pem: &[u8], identity: Option<(&Path, &Path)>) -> bool {
    let Ok(mut tls) = Tls::open(addr, ca_pem, identity, b"h2") else {
        return false;
    };
    if tls
        .write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .is_err()
    {
        return false;
    }
    matches!(tls.read_some(), Ok(bytes) if !bytes.is_empty())
}

#[tokio::test]
async fn three_nodes_over_https_and_mutual_tls_and_no_stranger_gets_in() {
    let certs = Certs::new(&["node1", "node2", "node3"]);
    let rogue = Certs::new(&["node4"]);
    let ca = certs.ca_pem();
    let cluster = Cluster::start_tls(3, &[], ca.clone(), &mut |i, _| {
        let mut flags = certs.node_flags(&format!("node{}", i + 1), &certs);
        flags.extend(["--region".to_string(), format!("region-{}", i + 1)]);
        flags
    })
    .await;
    let http = https_client(&ca);

    let status = cluster.status(0).await;
    assert_eq!(status["voters"].as_array().unwrap().len(), 3, "{status}");
    assert_eq!(status["version"]["formats"]["rpc"], 2, "{status}");
    assert_eq!(status["version"]["binary"], env!("CARGO_PKG_VERSION"), "{status}");
    for member in status["members"].as_array().unwrap() {
        assert!(
            member["http_addr"].as_str().unwrap().starts_with("https://"),
            "{status}"
        );
        assert_eq!(member["region"], format!("region-{}", member["id"]), "{status}");
    }
    // A write through a follower (forwarded to the leader over mutual TLS) reads back everywhere.
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let body = bytes(3000, 9);
    let receipt = cluster.nodes[follower].store(&http, "tls.bin", body.clone(), 600).await;
    let lease_id = receipt["lease_id"].as_str().unwrap();
    for node in &cluster.nodes {
        assert!(node.base().starts_with("https://"));
        let got = node.download(&http, lease_id).await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice());
    }

    // Plaintext to the HTTPS port gets no answer; a client that does not trust the CA refuses.
    let plain = client()
        .get(format!("http://{}/healthz", cluster.nodes[0].http_addr()))
        .send()
        .await;
    assert!(plain.is_err(), "plaintext was answered: {plain:?}");
    assert!(client().get(cluster.nodes[0].url("/healthz")).send().await.is_err());

    // The Raft port: a certificate from the cluster CA is taken; none, or another CA's, is not.
    let raft = cluster.nodes[0].raft_addr().to_string();
    let own = (certs.path("node2.pem"), certs.path("node2-key.pem"));
    let stranger = (rogue.path("node4.pem"), rogue.path("node4-key.pem"));
    assert!(raft_port_accepts(&raft, &ca, Some((&own.0, &own.1))));
    assert!(!raft_port_accepts(&raft, &ca, None));
    assert!(!raft_port_accepts(&raft, &ca, Some((&stranger.0, &stranger.1))));

    // A node whose certificate comes from another CA asks to join. It has the secret and trusts
    // both CAs (so it passes its own startup check and reaches the member over HTTPS); the
    // members trust only theirs, cannot verify it, and refuse it.
    let both = rogue.path("both-cas.pem");
    std::fs::write(&both, [rogue.ca_pem(), ca.clone()].concat()).unwrap();
    let objects = format!("file://{}", cluster.objects_dir().unwrap().display());
    let mut intruder_flags = rogue.node_flags("node4", &certs);
    let at = intruder_flags.iter().position(|f| f == "--raft-tls-ca").unwrap();
    intruder_flags[at + 1] = both.display().to_string();
    let mut intruder = relay_testkit::Node::builder(RELAY_BIN)
        .args(["--node-id", "4", "--cluster-secret", SECRET, "--bootstrap-api-key", KEY])
        .args(["--objects", &objects, "--join", cluster.nodes[0].base()])
        .args(intruder_flags)
        .launch()
        .unwrap();
    let exit = tokio::task::spawn_blocking(move || {
        let status = intruder.wait_exit(Duration::from_secs(60));
        (status, intruder.logs())
    })
    .await
    .unwrap();
    let (status, logs) = exit;
    assert!(!status.unwrap().success(), "{logs}");
    assert!(logs.contains("refused"), "{logs}");
    let status = cluster.status(leader).await;
    assert_eq!(status["members"].as_array().unwrap().len(), 3, "{status}");
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let certs = Certs::new(&["first", "second"]);
    let ca = certs.ca_pem();
    let (live, live_key) = (certs.path("live.pem"), certs.path("live-key.pem"));
    std::fs::copy(certs.path("first.pem"), &live).unwrap();
    std::fs::copy(certs.path("first-key.pem"), &live_key).unwrap();
    let node = Relay::start(&[
        "--tls-cert",
        live.to_str().unwrap(),
        "--tls-key",
        live_key.to_str().unwrap(),
    ]);
    assert!(node.base().starts_with("https://"));
    let addr = node.http_addr().to_string();
    let mut before = Tls::open(&addr, &ca, None, b"http/1.1").unwrap();
    assert_eq!(before.server_cert(), der_of(&certs.path("first.pem")));
    assert_eq!(before.get("/healthz"), 200);

    // Renewed files, then SIGHUP: new handshakes get the new certificate; the open connection
    // goes on.
    std::fs::copy(certs.path("second.pem"), &live).unwrap();
    std::fs::copy(certs.path("second-key.pem"), &live_key).unwrap();
    let hup = |node: &Relay| unsafe { libc::kill(node.pid().unwrap(), libc::SIGHUP) };
    assert_eq!(hup(&node), 0);
    let second = der_of(&certs.path("second.pem"));
    let started = Instant::now();
    while Tls::open(&addr, &ca, None, b"http/1.1").unwrap().server_cert() != second {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no reload: {}",
            node.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(before.get("/healthz"), 200);
    assert_eq!(
        https_client(&ca)
            .get(node.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A key that is not one: the reload is refused and logged, the current certificate stays.
    std::fs::write(&live_key, "not a key").unwrap();
    assert_eq!(hup(&node), 0);
    let started = Instant::now();
    while !node.logs().contains("not reloaded") {
        assert!(started.elapsed() < Duration::from_secs(10), "{}", node.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(Tls::open(&addr, &ca, None, b"http/1.1").unwrap().server_cert(), second);
    assert!(node.is_running());
}

/// `relay cert` never overwrites and refuses odd names; a Raft port beyond loopback without
/// mutual TLS is refused at startup (exit 2) unless plaintext is asked for by name.
#[test]
fn cert_tool_and_plaintext_refusals() {
    let out = Command::new(RELAY_BIN).arg("version").output().unwrap();
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(version["binary"], env!("CARGO_PKG_VERSION"));
    for (format, n) in [("data", 2), ("rpc", 2), ("state", 1)] {
        assert_eq!(version["formats"][format], n, "{version}");
    }

    let certs = Certs::new(&["node1"]);
    let d = certs.s("");
    let again = relay_cert(&["init", "--dir", &d]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let again = relay_cert(&["issue", "--dir", &d, "--name", "node1", "--host", "127.0.0.1"]);
    assert_eq!(again.status.code(), Some(1));
    for name in ["../evil", "", "a/b", ".hidden"] {
        let out = relay_cert(&["issue", "--dir", &d, "--name", name, "--host", "127.0.0.1"]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {out:?}");
    }
    let no_ca = tempfile::tempdir().unwrap();
    let out = relay_cert(&[
        "issue",
        "--dir",
        no_ca.path().to_str().unwrap(),
        "--name",
        "n",
        "--host",
        "h",
    ]);
    assert_eq!(out.status.code(), Some(1));

    // A Raft certificate that does not name the advertised host is refused at startup, not at
    // the first peer's handshake.
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.s("node1.pem"), certs.s("node1-key.pem"));
    let out = Command::new(RELAY_BIN)
        .args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ])
        .args(["--raft", "127.0.0.1:0", "--advertise-raft", "elsewhere.example:9080"])
        .args([
            "--raft-tls-ca",
            &certs.s("ca.pem"),
            "--raft-tls-cert",
            &cert,
            "--raft-tls-key",
            &key,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("peers will refuse"),
        "{out:?}"
    );

    let out = Command::new(RELAY_BIN)
        .args([
            "serve",
            "--raft",
            "10.255.255.1:9080",
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--raft-tls-ca"),
        "{out:?}"
    );
    let out = Command::new(RELAY_BIN)
        .args([
            "serve",
            "--raft-tls-ca",
            &certs.s("ca.pem"),
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("all three"), "{out:?}");
}
