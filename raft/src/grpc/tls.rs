//! Mutual TLS between nodes (`--raft-tls-ca`, `--raft-tls-cert`, `--raft-tls-key`): each node
//! presents a certificate from the cluster CA and accepts only peers that present one too, on top
//! of the cluster secret. A peer is dialled by the host in its Raft address, which its certificate
//! must name (as `relay cert issue --host` writes it).

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// How long a peer may take over the TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The cluster CA and this node's certificate and key, as PEM.
#[derive(Clone)]
pub struct RaftTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for RaftTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("RaftTls").finish_non_exhaustive()
    }
}

impl RaftTls {
    /// The server side: this node's identity, and client certificates required from the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// The client side towards `addr` (`host:port`): the CA as the only root, this node's
    /// certificate as its client identity, and the host as the name to verify.
    fn client(&self, addr: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(host_of(addr))
    }
}

/// The host in `host:port` or `[v6]:port`, without brackets.
pub fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// A peer address: `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address, and
/// a port from 1; at most 256 bytes.
pub fn is_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && addr.len() <= 256
                && port.parse::<u16>().is_ok_and(|p| p != 0)
                && (addr.parse::<std::net::SocketAddr>().is_ok()
                    || host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
        }
        None => false,
    }
}

/// The endpoint for a peer's Raft address: plaintext, or TLS naming the address's host (a chaos
/// proxy may stand between, so the dialled address and the verified name can differ).
pub fn endpoint(addr: &str, tls: Option<&RaftTls>) -> Result<Endpoint, String> {
    let dial = crate::chaos::dial_addr(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{dial}")).map_err(|e| e.to_string())?;
    match tls {
        None => Ok(endpoint),
        Some(tls) => endpoint.tls_config(tls.client(addr)).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_addresses() {
        assert_eq!(host_of("127.0.0.1:9080"), "127.0.0.1");
        assert_eq!(host_of("node-1.relay:9080"), "node-1.relay");
        assert_eq!(host_of("[::1]:9080"), "::1");
        for good in ["127.0.0.1:9080", "[::1]:9080", "node-1.relay.svc:9080"] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in ["node", ":9080", "a b:9080", "node:0", "node:99999", "::1:9080", "x/y:1"] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
