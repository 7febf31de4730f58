//! How a node is reached: HTTPS for the API, mutual TLS between nodes, the addresses it gives its
//! peers, and its region. Plaintext stays the default on loopback (the embedded single node);
//! the Raft port refuses to listen in plaintext beyond loopback unless told to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use relay_raft::grpc::tls::{is_host_port, RaftTls};

use crate::config::ConfigError;

#[derive(Args, Debug, Clone, Default)]
pub struct NetArgs {
    /// Serve the API over HTTPS with this PEM certificate chain (leaf first). Reloaded, with
    /// --tls-key, on SIGHUP; open connections are kept.
    #[arg(long, env = "RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA (PEM): peers must present a certificate it signed (mutual TLS between
    /// nodes), and this node trusts it for its own HTTPS calls to members (the join).
    #[arg(long, env = "RELAY_RAFT_TLS_CA")]
    pub raft_tls_ca: Option<PathBuf>,
    /// This node's certificate for the Raft port, from the cluster CA, naming the host of its
    /// advertised Raft address (`relay cert issue --host`).
    #[arg(long, env = "RELAY_RAFT_TLS_CERT")]
    pub raft_tls_cert: Option<PathBuf>,
    /// The PEM private key of --raft-tls-cert.
    #[arg(long, env = "RELAY_RAFT_TLS_KEY")]
    pub raft_tls_key: Option<PathBuf>,
    /// Let the Raft port listen in plaintext on an address other than loopback. The cluster
    /// secret then crosses the network in the clear: only on a network you trust.
    #[arg(long, env = "RELAY_RAFT_INSECURE_PLAINTEXT")]
    pub raft_insecure_plaintext: bool,
    /// The `host:port` peers dial for Raft (default: the --raft address, which must then be a
    /// concrete IP). Use a DNS name under Kubernetes or compose.
    #[arg(long, env = "RELAY_ADVERTISE_RAFT")]
    pub advertise_raft: Option<String>,
    /// The URL members and clients reach this node's API at (default: http:// or https:// and
    /// the --http address).
    #[arg(long, env = "RELAY_ADVERTISE_HTTP")]
    pub advertise_http: Option<String>,
    /// This node's region (a label: letters, digits, '-', '_', '.'), shown by
    /// `relay cluster status`.
    #[arg(long, env = "RELAY_REGION")]
    pub region: Option<String>,
}

impl NetArgs {
    pub fn validate(&self, raft_bind: &str) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        let raft_files = [&self.raft_tls_ca, &self.raft_tls_cert, &self.raft_tls_key];
        let given = raft_files.iter().filter(|f| f.is_some()).count();
        if given != 0 && given != 3 {
            return bad("--raft-tls-ca, --raft-tls-cert and --raft-tls-key go together: give all three".into());
        }
        let bind: Option<SocketAddr> = raft_bind.parse().ok();
        if given == 0 && !self.raft_insecure_plaintext && bind.is_some_and(|a| !a.ip().is_loopback()) {
            return bad(format!(
                "--raft {raft_bind} is beyond loopback without mutual TLS: give --raft-tls-ca, --raft-tls-cert and \
                 --raft-tls-key (see `relay cert`), or --raft-insecure-plaintext on a network you trust"
            ));
        }
        match &self.advertise_raft {
            Some(addr) if !is_host_port(addr) => {
                return bad(format!("--advertise-raft {addr:?} must be host:port"));
            }
            None if bind.is_some_and(|a| a.ip().is_unspecified()) => {
                return bad(format!(
                    "--raft {raft_bind} listens on every address: give --advertise-raft HOST:PORT, the address peers dial"
                ));
            }
            _ => {}
        }
        if let Some(url) = &self.advertise_http {
            if url.len() > 256 || !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("--advertise-http {url:?} must be an http:// or https:// URL"));
            }
        }
        if let Some(region) = &self.region {
            if region.is_empty()
                || region.len() > 64
                || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return bad(format!("--region {region:?}: 1 to 64 letters, digits, '-', '_' or '.'"));
            }
        }
        Ok(())
    }

    /// The same rule as [`NetArgs::validate`], on the address the Raft port actually bound (a
    /// host name in `--raft` is only known once resolved).
    pub fn check_bound(&self, raft: SocketAddr) -> Result<(), ConfigError> {
        let plaintext = self.raft_tls_ca.is_none() && !self.raft_insecure_plaintext;
        if plaintext && !raft.ip().is_loopback() {
            return Err(ConfigError(format!(
                "the Raft port bound {raft}, beyond loopback, without mutual TLS: give --raft-tls-ca, --raft-tls-cert \
                 and --raft-tls-key, or --raft-insecure-plaintext on a network you trust"
            )));
        }
        if raft.ip().is_unspecified() && self.advertise_raft.is_none() {
            return Err(ConfigError(format!(
                "the Raft port listens on every address ({raft}): give --advertise-raft HOST:PORT"
            )));
        }
        Ok(())
    }

    /// The HTTPS acceptor, when --tls-cert is given (its files read and checked now).
    pub fn http_tls(&self) -> Result<Option<relay_api::tls::HttpTls>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => relay_api::tls::HttpTls::load(cert, key)
                .map(Some)
                .map_err(|e| ConfigError(format!("--tls-cert/--tls-key: {e}"))),
            _ => Ok(None),
        }
    }

    /// The Raft port's mutual TLS, when configured (the certificate and key checked now).
    pub fn raft_tls(&self) -> Result<Option<RaftTls>, ConfigError> {
        let (Some(ca), Some(cert), Some(key)) = (&self.raft_tls_ca, &self.raft_tls_cert, &self.raft_tls_key) else {
            return Ok(None);
        };
        relay_api::tls::load_certified_key(cert, key)
            .map_err(|e| ConfigError(format!("--raft-tls-cert/--raft-tls-key: {e}")))?;
        let ca_pem = read_pem(ca, "--raft-tls-ca")?;
        ca_roots(&ca_pem).map_err(|e| ConfigError(format!("--raft-tls-ca {}: {e}", ca.display())))?;
        Ok(Some(RaftTls {
            ca_pem,
            cert_pem: read_pem(cert, "--raft-tls-cert")?,
            key_pem: read_pem(key, "--raft-tls-key")?,
        }))
    }

    /// The CA this node trusts for HTTPS calls to members, as PEM.
    pub fn client_ca(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.raft_tls_ca
            .as_deref()
            .map(|ca| read_pem(ca, "--raft-tls-ca"))
            .transpose()
    }
}

/// Checks at startup what peers will check at every connection: this node's Raft certificate
/// chains to the cluster CA, is valid now, and names the host of its advertised Raft address.
pub fn verify_raft_cert(tls: &RaftTls, advertised_raft: &str) -> Result<(), ConfigError> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::pem::PemObject;
    let bad = |m: String| ConfigError(format!("--raft-tls-cert: {m}"));
    let mut roots = rustls::RootCertStore::empty();
    for ca in ca_roots(&tls.ca_pem).map_err(|e| ConfigError(format!("--raft-tls-ca: {e}")))? {
        roots.add(ca).map_err(|e| ConfigError(format!("--raft-tls-ca: {e}")))?;
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        relay_api::tls::provider(),
    )
    .build()
    .map_err(|e| ConfigError(format!("--raft-tls-ca: {e}")))?;
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let (leaf, rest) = chain
        .split_first()
        .ok_or_else(|| bad("no certificate in the file".into()))?;
    let host = relay_raft::grpc::tls::host_of(advertised_raft);
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|e| bad(format!("{host:?} cannot be checked against a certificate: {e}")))?;
    verifier
        .verify_server_cert(leaf, rest, &name, &[], rustls_pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| {
            bad(format!(
                "peers will refuse it as {host} (the host of the advertised Raft address {advertised_raft}): {e}"
            ))
        })
}

/// Reads a PEM file of at most 1 MiB.
fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError(format!("{flag} {}: {e}", path.display())))?;
    if bytes.len() > 1 << 20 {
        return Err(ConfigError(format!("{flag} {}: larger than 1 MiB", path.display())));
    }
    Ok(bytes)
}

/// The certificates in a CA file; at least one.
pub fn ca_roots(pem: &[u8]) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    match certs.is_empty() {
        true => Err("no certificate in the file".into()),
        false => Ok(certs),
    }
}

/// Refuses to send a credential (the cluster secret, an admin key) over plain HTTP beyond
/// loopback, unless the caller said the network is trusted.
pub fn check_secret_url(url: &str, plaintext_ok: bool, consent_flag: &str) -> Result<(), String> {
    // The host the HTTP client will dial, parsed as it parses it (a `\` ends the authority
    // there, so a hand-rolled split could check one host and send to another).
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => return Ok(()),
        "http" => {}
        _ => return Err(format!("{url:?} is not an http:// or https:// URL")),
    }
    let host = parsed.host_str().unwrap_or("");
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match loopback || plaintext_ok {
        true => Ok(()),
        false => Err(format!(
            "{url} is plain HTTP beyond loopback: the credential would cross the network in the clear; \
             use https:// (the node's --tls-cert), or {consent_flag} on a network you trust"
        )),
    }
}

/// A reqwest client builder that trusts only `ca_pem` when given (the cluster's private CA),
/// else the system's roots.
pub fn https_client(ca_pem: Option<&[u8]>) -> Result<reqwest::ClientBuilder, String> {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(pem) = ca_pem {
        ca_roots(pem).map_err(|e| format!("CA file: {e}"))?;
        builder = builder.tls_built_in_root_certs(false);
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("CA file: {e}"))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> NetArgs {
        NetArgs::default()
    }

    #[test]
    fn plaintext_raft_beyond_loopback_needs_consent() {
        assert!(args().validate("127.0.0.1:9080").is_ok());
        assert!(args().validate("10.0.0.5:9080").is_err());
        let a = NetArgs {
            raft_insecure_plaintext: true,
            ..args()
        };
        assert!(a.validate("10.0.0.5:9080").is_ok());
        // Every address needs one to advertise.
        assert!(a.validate("0.0.0.0:9080").is_err());
        let a = NetArgs {
            advertise_raft: Some("node-1.relay:9080".into()),
            ..a
        };
        assert!(a.validate("0.0.0.0:9080").is_ok());
    }

    #[test]
    fn credentials_go_over_plain_http_only_on_loopback_or_with_consent() {
        for ok in [
            "https://n1.example:8443",
            "http://127.0.0.1:8080",
            "http://localhost:1/x",
            "http://[::1]:80",
        ] {
            assert!(check_secret_url(ok, false, "--x").is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://relay1:8080",
            "http://127.0.0.1.evil:80",
            "ftp://x",
            "http://a@10.0.0.1",
            // The client dials the host before the backslash.
            "http://nonexistent.invalid\\@127.0.0.1/",
            "http://10.0.0.1\\@localhost/",
        ] {
            assert!(check_secret_url(bad, false, "--x").is_err(), "{bad}");
        }
        assert!(check_secret_url("http://relay1:8080", true, "--x").is_ok());
    }

    #[test]
    fn raft_tls_files_come_in_threes_and_names_are_checked() {
        let a = NetArgs {
            raft_tls_ca: Some("ca.pem".into()),
            ..args()
        };
        assert!(a.validate("127.0.0.1:9080").is_err());
        for bad in ["node", ":9080", "a b:9080", "node:0", "node:99999"] {
            let a = NetArgs {
                advertise_raft: Some(bad.into()),
                ..args()
            };
            assert!(a.validate("127.0.0.1:9080").is_err(), "{bad}");
        }
        for bad in ["", "eu west", "x".repeat(65).as_str()] {
            let a = NetArgs {
                region: Some(bad.into()),
                ..args()
            };
            assert!(a.validate("127.0.0.1:9080").is_err(), "{bad:?}");
        }
    }
}
