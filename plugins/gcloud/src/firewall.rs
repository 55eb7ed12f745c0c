//! Firewall rules; the guide: a private GKE cluster's control plane must reach the nodes on
//! TCP 9443 for the sidecar injector webhook.

use crate::json::{ParseError, from_json, last_segment, nullable};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Firewall {
    name: String,
    network: Option<String>,
    direction: Option<String>,
    priority: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    source_ranges: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    source_tags: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    target_tags: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    target_service_accounts: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    allowed: Vec<RawPermission>,
    #[serde(deserialize_with = "nullable")]
    denied: Vec<RawPermission>,
    disabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPermission {
    #[serde(rename = "IPProtocol")]
    protocol: String,
    #[serde(deserialize_with = "nullable")]
    ports: Vec<String>,
}

/// What to check the rules against.
#[derive(Default)]
pub struct FirewallQuery<'a> {
    /// TCP port that must be allowed in.
    pub port: Option<u16>,
    /// Source range (CIDR) the traffic comes from.
    pub source_range: Option<&'a str>,
    /// Only rules of this network count.
    pub network: Option<&'a str>,
}

/// The project's firewall rules.
#[derive(Serialize, JsonSchema, Debug)]
pub struct FirewallFacts {
    /// Every rule, in gcloud's order.
    pub rules: Vec<RuleFacts>,
    /// How many rules.
    pub count: usize,
    /// With the `port` param: an enabled INGRESS rule (of `network`, when given) allows TCP
    /// to that port (a listed port, a range such as "9000-9999", or all ports) from a source
    /// range covering `source_range` (when given). Deny rules are not weighed against it.
    pub allows_tcp_port: Option<bool>,
    /// Names of the rules that make `allows_tcp_port` true.
    pub matching_rules: Vec<String>,
}

/// One firewall rule.
#[derive(Serialize, JsonSchema, Debug)]
pub struct RuleFacts {
    /// Rule name.
    pub name: String,
    /// Network short name.
    pub network: Option<String>,
    /// "INGRESS" or "EGRESS" (INGRESS when unset, as the API defaults it).
    pub direction: String,
    /// Priority (lower wins).
    pub priority: Option<i64>,
    /// Source CIDRs.
    pub source_ranges: Vec<String>,
    /// Source network tags.
    pub source_tags: Vec<String>,
    /// Target network tags (all instances when empty).
    pub target_tags: Vec<String>,
    /// Target service accounts.
    pub target_service_accounts: Vec<String>,
    /// What the rule allows.
    pub allowed: Vec<Permission>,
    /// What the rule denies.
    pub denied: Vec<Permission>,
    /// The rule is disabled.
    pub disabled: bool,
}

/// A protocol and its ports.
#[derive(Serialize, JsonSchema, Debug)]
pub struct Permission {
    /// "tcp", "udp", "icmp", "all", or a protocol number.
    pub protocol: String,
    /// Ports and ranges ("9443", "9000-9999"); empty means all ports.
    pub ports: Vec<String>,
}

/// Parses `gcloud compute firewall-rules list --format=json`.
pub fn parse_firewall_rules(
    text: &str,
    query: &FirewallQuery,
) -> Result<FirewallFacts, ParseError> {
    let raw: Vec<Firewall> = from_json("a list of firewall rules", text)?;
    let permissions = |list: Vec<RawPermission>| -> Vec<Permission> {
        list.into_iter()
            .map(|p| Permission {
                protocol: p.protocol.to_ascii_lowercase(),
                ports: p.ports,
            })
            .collect()
    };
    let rules: Vec<RuleFacts> = raw
        .into_iter()
        .map(|f| RuleFacts {
            name: f.name,
            network: f.network.as_deref().map(last_segment),
            direction: f.direction.unwrap_or_else(|| "INGRESS".into()),
            priority: f.priority,
            source_ranges: f.source_ranges,
            source_tags: f.source_tags,
            target_tags: f.target_tags,
            target_service_accounts: f.target_service_accounts,
            allowed: permissions(f.allowed),
            denied: permissions(f.denied),
            disabled: f.disabled,
        })
        .collect();
    let matching_rules: Vec<String> = match query.port {
        Some(port) => rules
            .iter()
            .filter(|r| allows(r, port, query))
            .map(|r| r.name.clone())
            .collect(),
        None => Vec::new(),
    };
    Ok(FirewallFacts {
        allows_tcp_port: query.port.map(|_| !matching_rules.is_empty()),
        matching_rules,
        count: rules.len(),
        rules,
    })
}

fn allows(rule: &RuleFacts, port: u16, query: &FirewallQuery) -> bool {
    let network_ok = query
        .network
        .is_none_or(|n| rule.network.as_deref() == Some(last_segment(n).as_str()));
    let port_ok = rule.allowed.iter().any(|p| {
        (p.protocol == "tcp" || p.protocol == "all")
            && (p.ports.is_empty() || p.ports.iter().any(|s| covers_port(s, port)))
    });
    let source_ok = match query.source_range {
        None => true,
        // The API defaults an ingress rule without sources to 0.0.0.0/0.
        Some(_) if rule.source_ranges.is_empty() && rule.source_tags.is_empty() => true,
        Some(wanted) => rule.source_ranges.iter().any(|r| cidr_covers(r, wanted)),
    };
    !rule.disabled && rule.direction == "INGRESS" && network_ok && port_ok && source_ok
}

/// "9443", "9000-9999" or "all" covers the port.
pub fn covers_port(spec: &str, port: u16) -> bool {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("all") {
        return true;
    }
    match spec.split_once('-') {
        Some((low, high)) => match (low.trim().parse::<u16>(), high.trim().parse::<u16>()) {
            (Ok(low), Ok(high)) => (low..=high).contains(&port),
            _ => false,
        },
        None => spec.parse::<u16>() == Ok(port),
    }
}

/// The IPv4 CIDR `outer` contains all of `inner` (an address or CIDR). Anything else is
/// compared as text.
pub fn cidr_covers(outer: &str, inner: &str) -> bool {
    match (parse_cidr(outer), parse_cidr(inner)) {
        (Some((outer_net, outer_len)), Some((inner_net, inner_len))) => {
            let mask = if outer_len == 0 {
                0
            } else {
                u32::MAX << (32 - outer_len)
            };
            outer_len <= inner_len && (outer_net & mask) == (inner_net & mask)
        }
        _ => outer.trim() == inner.trim(),
    }
}

fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (address, len) = match text.trim().split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok().filter(|l| *l <= 32)?),
        None => (text.trim(), 32),
    };
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    Some((u32::from(address), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        assert!(covers_port("9443", 9443));
        assert!(covers_port("9000-9999", 9443));
        assert!(covers_port("all", 9443));
        assert!(!covers_port("443", 9443));
        assert!(!covers_port("9999-9000", 9443));
        assert!(!covers_port("-", 9443));
    }

    #[test]
    fn cidrs() {
        assert!(cidr_covers("172.16.0.0/28", "172.16.0.0/28"));
        assert!(cidr_covers("172.16.0.0/12", "172.16.0.0/28"));
        assert!(cidr_covers("0.0.0.0/0", "172.16.0.0/28"));
        assert!(!cidr_covers("172.16.0.0/29", "172.16.0.0/28"));
        assert!(!cidr_covers("10.0.0.0/8", "172.16.0.0/28"));
        assert!(cidr_covers("10.1.2.3", "10.1.2.3/32"));
        assert!(!cidr_covers("10.0.0.0/99", "10.0.0.0/8"));
    }
}
