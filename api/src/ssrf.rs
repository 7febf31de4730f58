//! Where webhooks may go: never to loopback, private, link-local (cloud metadata included),
//! unique-local, unspecified or multicast addresses unless the operator allows a CIDR. Checked
//! when a mailbox is created and again on every connection, through a resolver that drops
//! forbidden addresses, so DNS rebinding cannot slip past the first check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use webhook_http::dns::{Addrs, Name, Resolve, Resolving};
use webhook_http::Url;

/// An IP network, `10.0.0.0/8` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = ip.parse().map_err(|_| format!("{s:?}: not an IP network"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Ranges that are not the public internet (IANA's special-purpose registries): loopback,
/// private, shared (CGNAT), link-local, documentation, benchmarking, reserved, multicast, and the
/// IPv6 forms that embed or translate an IPv4 address (NAT64, 6to4, Teredo, IPv4-compatible).
const INTERNAL: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "::ffff:0:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

static INTERNAL_CIDRS: std::sync::LazyLock<Vec<Cidr>> = std::sync::LazyLock::new(|| {
    INTERNAL
        .iter()
        .map(|c| c.parse().expect("a constant CIDR parses"))
        .collect()
});

/// Whether the address is internal (and so refused unless allowed).
pub fn is_internal(ip: IpAddr) -> bool {
    INTERNAL_CIDRS.iter().any(|c| c.contains(ip))
}

#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub allow: Vec<Cidr>,
}

impl Policy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    /// Checks a webhook URL as given at create: http(s), a host, no credentials, and every
    /// address its host resolves to permitted.
    pub async fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("only http and https webhooks are allowed".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("webhook URLs may not carry credentials".into());
        }
        let host = url.host_str().ok_or("webhook URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs = resolve(host.trim_start_matches('[').trim_end_matches(']'), port).await?;
        // Never echo what a name resolved to: that would make this check a lookup service for
        // the operator's internal names.
        if addrs.iter().any(|a| !self.permits(a.ip())) {
            return Err("webhook host is or resolves to an internal address".into());
        }
        Ok(url)
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| "webhook host lookup timed out".to_string())?
            .map_err(|_| "webhook host does not resolve".to_string())?
            .collect();
    if addrs.is_empty() {
        return Err("webhook host does not resolve".into());
    }
    Ok(addrs)
}

/// The resolver the webhook client connects through: forbidden addresses never reach a socket.
pub struct GuardedResolver(pub Arc<Policy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host, 0).await?;
            let permitted: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic SSRF targets are internal; public addresses are not.
    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Allowed CIDRs open exactly their range.
    #[test]
    fn cidrs() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(c.contains("127.5.6.7".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
        let policy = Policy { allow: vec![c] };
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("169.254.169.254".parse().unwrap()));
    }

    /// Create-time checks refuse bad schemes, credentials and internal hosts.
    #[tokio::test]
    async fn url_checks() {
        let p = Policy::default();
        assert!(p.check_url("ftp://example.com/").await.is_err());
        assert!(p.check_url("http://user:pw@93.184.216.34/").await.is_err());
        assert!(p.check_url("http://169.254.169.254/latest/meta-data").await.is_err());
        assert!(p.check_url("http://[::1]:8080/").await.is_err());
        assert!(p.check_url("http://localhost/").await.is_err());
        assert!(p.check_url("http://93.184.216.34/hook").await.is_ok());
    }

    /// At connect time the resolver drops internal addresses, so a name that (re)binds to one
    /// never gets a connection; an allowed range passes.
    #[tokio::test]
    async fn resolver_filters_internal_addresses() {
        let name: Name = "localhost".parse().unwrap();
        assert!(GuardedResolver(Arc::new(Policy::default()))
            .resolve(name)
            .await
            .is_err());
        let allow = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver(Arc::new(allow)).resolve(name).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
