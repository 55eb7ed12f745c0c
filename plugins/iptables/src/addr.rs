//! Addresses and networks as iptables prints them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network in CIDR form, host bits cleared the way iptables stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `::1/128`.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().ok()?;
        let max = max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                Ok(_) => return None,
                Err(_) => mask_to_prefix(p.parse().ok()?, addr)?,
            },
        };
        Some(Cidr {
            addr: network(addr, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                network(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }

    /// An address inside the network that a probe packet can be sent to.
    pub fn sample_host(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) if self.prefix < 31 => IpAddr::V4(Ipv4Addr::from(u32::from(a) | 1)),
            IpAddr::V6(a) if self.prefix < 127 => IpAddr::V6(Ipv6Addr::from(u128::from(a) | 1)),
            other => other,
        }
    }

    /// True when every address of the network is a loopback address.
    pub fn is_loopback_only(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => self.prefix >= 8 && a.is_loopback(),
            IpAddr::V6(a) => self.prefix == 128 && a.is_loopback(),
        }
    }

    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// Old iptables prints dotted masks (`/255.255.255.0`); only contiguous ones are CIDRs.
fn mask_to_prefix(mask: IpAddr, addr: IpAddr) -> Option<u8> {
    let (bits, width) = match (mask, addr) {
        (IpAddr::V4(m), IpAddr::V4(_)) => (u128::from(u32::from(m)) << 96, 32),
        (IpAddr::V6(m), IpAddr::V6(_)) => (u128::from(m), 128),
        _ => return None,
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 || ones > width {
        return None;
    }
    u8::try_from(ones).ok()
}

/// One operand of `-s`/`-d`: a network, or a host name `iptables -L` printed unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrSpec {
    Net(Cidr),
    Name(String),
}

/// Parses an address operand (possibly a comma list); `None` means "any address".
pub fn parse_address_list(text: &str) -> Option<Vec<AddrSpec>> {
    let mut specs = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "anywhere" | "0.0.0.0/0" | "::/0" | "0/0" => return None,
            "localhost" | "localhost.localdomain" => specs.push(AddrSpec::Net(Cidr {
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                prefix: 32,
            })),
            "ip6-localhost" | "ip6-loopback" => specs.push(AddrSpec::Net(Cidr {
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            })),
            other => match Cidr::parse(other) {
                Some(c) if c.prefix == 0 => return None,
                Some(c) => specs.push(AddrSpec::Net(c)),
                None => specs.push(AddrSpec::Name(other.to_string())),
            },
        }
    }
    if specs.is_empty() { None } else { Some(specs) }
}

pub fn format_address_list(specs: &[AddrSpec]) -> String {
    let parts: Vec<String> = specs
        .iter()
        .map(|s| match s {
            AddrSpec::Net(c) => c.to_string(),
            AddrSpec::Name(n) => n.clone(),
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_contains() {
        let c = Cidr::parse("10.7.240.0/20").unwrap();
        assert!(c.contains("10.7.240.20".parse().unwrap()));
        assert!(!c.contains("10.7.0.1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("169.254.7.127").unwrap().to_string(),
            "169.254.7.127/32"
        );
        assert_eq!(
            Cidr::parse("10.0.0.9/255.255.255.0").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert!(Cidr::parse("10.0.0.0/255.0.255.0").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert_eq!(Cidr::parse("::127.0.0.53/128").unwrap().prefix, 128);
        assert!(Cidr::parse("::1/128").unwrap().is_loopback_only());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn anywhere_is_no_constraint() {
        assert_eq!(parse_address_list("anywhere"), None);
        assert_eq!(parse_address_list("::/0"), None);
        assert_eq!(
            parse_address_list("kube-dns.local"),
            Some(vec![AddrSpec::Name("kube-dns.local".into())])
        );
    }
}
