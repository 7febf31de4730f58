//! `relay cert init|issue`: a private CA and node certificates for a cluster's TLS (HTTPS with
//! `--tls-cert`/`--tls-key`, mutual TLS between nodes with `--raft-tls-*`). One node certificate
//! serves both: it is valid for server and client authentication, for every `--host` given.
//!
//! Keys are ECDSA P-256, written mode 0600; nothing is ever overwritten.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

#[derive(Args, Debug)]
pub struct CertArgs {
    #[command(subcommand)]
    pub action: CertAction,
}

#[derive(Subcommand, Debug)]
pub enum CertAction {
    /// Make a CA: `<dir>/ca.pem` (give it to every node as --raft-tls-ca, and to clients) and
    /// `<dir>/ca-key.pem` (keep it off the nodes).
    Init {
        #[arg(long, default_value = "relay-certs")]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Relay cluster CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Make `<dir>/<name>.pem` and `<dir>/<name>-key.pem`, signed by the CA in `<dir>`, valid for
    /// each `--host` (a DNS name or an IP address: every name the node is dialled by).
    Issue {
        #[arg(long, default_value = "relay-certs")]
        dir: PathBuf,
        /// File name and common name, e.g. `node1`.
        #[arg(long)]
        name: String,
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 397)]
        days: u32,
    },
}

#[derive(Debug, thiserror::Error)]
enum CertError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

pub fn run(args: &CertArgs) -> ExitCode {
    let result = match &args.action {
        CertAction::Init { dir, name, days } => init(dir, name, *days),
        CertAction::Issue { dir, name, hosts, days } => issue(dir, name, hosts, *days),
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e @ CertError::Usage(_)) => {
            eprintln!("relay cert: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("relay cert: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validity(params: &mut CertificateParams, days: u32) -> Result<(), CertError> {
    if !(1..=36_500).contains(&days) {
        return Err(CertError::Usage("--days must be 1 to 36500".into()));
    }
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for clocks a little behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

fn init(dir: &Path, name: &str, days: u32) -> Result<Vec<PathBuf>, CertError> {
    check_name(name, "--name", &[' '])?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    create_dir(dir)?;
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.pem");
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(vec![cert_path, key_path])
}

fn issue(dir: &Path, name: &str, hosts: &[String], days: u32) -> Result<Vec<PathBuf>, CertError> {
    check_name(name, "--name", &[])?;
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| CertError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let ca_key = KeyPair::from_pem(&read(dir.join("ca-key.pem"))?)?;
    let issuer = Issuer::from_ca_cert_pem(&read(dir.join("ca.pem"))?, ca_key)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    for host in hosts {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        params.subject_alt_names.push(match bare.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                check_host(host)?;
                SanType::DnsName(host.as_str().try_into()?)
            }
        });
    }
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, days)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}-key.pem"));
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(vec![cert_path, key_path])
}

/// A DNS name for `--host` (an IP address is parsed before): labels of 1 to 63 letters, digits
/// and inner hyphens, at most 253 bytes, optionally `*.` before at least two labels.
fn check_host(host: &str) -> Result<(), CertError> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    let ok = host.len() <= 253
        && (name.len() == host.len() || labels.len() >= 2)
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    match ok {
        true => Ok(()),
        false => Err(CertError::Usage(format!(
            "--host {host:?} is neither an IP address nor a DNS name (labels of letters, digits and inner hyphens; `*.` may lead)"
        ))),
    }
}

/// Names become file names and certificate fields: letters, digits, `.`, `-`, `_`, and `also`.
fn check_name(name: &str, flag: &str, also: &[char]) -> Result<(), CertError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || also.contains(&c));
    match ok {
        true => Ok(()),
        false => Err(CertError::Usage(format!(
            "{flag} {name:?}: use 1 to 64 letters, digits, '.', '-', '_' (not starting with '.')"
        ))),
    }
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_addresses_or_dns_names() {
        for ok in [
            "node1",
            "relay-1.example.net",
            "*.relay-peers.ns.svc.cluster.local",
            &"a".repeat(63),
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "a*b",
            "-a_b..",
            "999.1.1.1",
            "*.com",
            "a..b",
            "x-",
            &"a".repeat(64),
            "1.2.3",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }
}
