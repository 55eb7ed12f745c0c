//! The rule model every text form parses into.

use crate::addr::AddrSpec;
use serde::Serialize;
use triage_sdk::JsonSchema;

/// One netfilter rule, the same whichever text form it came from.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Rule {
    /// Chain the rule is in.
    pub chain: String,
    /// 1-based position in its chain (after `-I` inserts are applied).
    pub position: usize,
    /// `-p`: protocol name or number; null means any protocol.
    pub protocol: Option<String>,
    /// `! -p`.
    pub protocol_negated: bool,
    /// `-s`: source network(s) in CIDR form (comma-separated when several); null means any
    /// address (0.0.0.0/0 or ::/0, `anywhere` in `iptables -L`). Unresolved host names stay as printed.
    pub source: Option<String>,
    /// `! -s`.
    pub source_negated: bool,
    /// `-d`: destination network(s), same form as `source`.
    pub destination: Option<String>,
    /// `! -d`.
    pub destination_negated: bool,
    /// `-i`: input interface; null means any.
    pub in_interface: Option<String>,
    /// `! -i`.
    pub in_interface_negated: bool,
    /// `-o`: output interface; null means any.
    pub out_interface: Option<String>,
    /// `! -o`.
    pub out_interface_negated: bool,
    /// Destination ports from `--dport`/`--dports` (tcp, udp, multiport), numeric:
    /// `"3306"` or a range `"3000:5000"`. Service names from `iptables -L` are translated.
    pub dports: Vec<String>,
    /// The destination-port match is negated (`! --dport`, `! --dports`).
    pub dports_negated: bool,
    /// Source ports from `--sport`/`--sports`, same form as `dports`.
    pub sports: Vec<String>,
    /// The source-port match is negated.
    pub sports_negated: bool,
    /// `-m owner --uid-owner`: a uid, a range `"106-108"` or a user name.
    pub uid_owner: Option<String>,
    /// `! --uid-owner`.
    pub uid_owner_negated: bool,
    /// `-m owner --gid-owner`: a gid, a range or a group name.
    pub gid_owner: Option<String>,
    /// `! --gid-owner`.
    pub gid_owner_negated: bool,
    /// `-m mark --mark` / `-m connmark --mark` matches.
    pub marks: Vec<MarkMatch>,
    /// `-m conntrack --ctstate` / `-m state --state` states, e.g. `["RELATED", "ESTABLISHED"]`.
    pub ctstates: Vec<String>,
    /// The state match is negated.
    pub ctstates_negated: bool,
    /// Match modules loaded with `-m` (or shown by `iptables -L`), in order.
    pub modules: Vec<String>,
    /// `-j`/`-g` target: a chain name or an extension (`REDIRECT`, `RETURN`, `ACCEPT`, ...);
    /// null when the rule only counts packets.
    pub target: Option<String>,
    /// True when the target was given with `-g` (goto: a RETURN there goes back past this chain).
    pub goto: bool,
    /// REDIRECT/MASQUERADE `--to-ports` (`"15001"` or `"15001-15002"`).
    pub to_ports: Option<String>,
    /// TPROXY `--on-port`.
    pub on_port: Option<u16>,
    /// TPROXY `--tproxy-mark`.
    pub tproxy_mark: Option<String>,
    /// DNAT `--to-destination`.
    pub to_destination: Option<String>,
    /// `-m comment --comment` text, unquoted.
    pub comment: Option<String>,
    /// Target options not broken out above, as written (`--set-mark 1337`, `--zone 1`).
    pub target_options: Vec<String>,
    /// Options this parser does not model, as written; see `has_unknown_matches`.
    pub unknown_options: Vec<String>,
    /// True when some unmodelled option is a match condition, so an evaluator cannot
    /// tell whether a packet matches this rule.
    pub has_unknown_matches: bool,
    /// The rule as written in the input.
    pub raw: String,

    #[serde(skip)]
    pub(crate) source_specs: Option<Vec<AddrSpec>>,
    #[serde(skip)]
    pub(crate) destination_specs: Option<Vec<AddrSpec>>,
    #[serde(skip)]
    pub(crate) port_matches: Vec<PortMatch>,
    #[serde(skip)]
    pub(crate) owner_matches: Vec<OwnerMatch>,
}

/// A packet-mark or connection-mark match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MarkMatch {
    /// `value[/mask]` as written, e.g. `"0x539/0xfff"`.
    pub value: String,
    /// `! --mark`.
    pub negated: bool,
    /// True for `-m connmark`, false for `-m mark`.
    pub connmark: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortMatch {
    pub destination: bool,
    pub negated: bool,
    /// `None` for a port name the parser does not know.
    pub ranges: Vec<Option<(u16, u16)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerMatch {
    pub uid: bool,
    pub negated: bool,
    pub value: String,
}

impl Rule {
    /// Records an owner match, as `-m owner --uid-owner` or `-L`'s `owner UID match` write
    /// it. The first uid and gid also fill the rule's summary fields.
    /// Records a port match written as `80`, `3000:5000` or `80,443` (as `--dport(s)` or
    /// `-L`'s `dpt:`/`dpts:` write it), keeping both the text and the parsed ranges.
    pub(crate) fn add_port_match(&mut self, destination: bool, negated: bool, text: &str) {
        let ranges = parse_port_ranges(text);
        let written = text
            .split(',')
            .filter(|p| !p.is_empty())
            .zip(ranges.iter())
            .map(|(w, r)| format_port_range(r, w));
        if destination {
            self.dports.extend(written);
            self.dports_negated |= negated;
        } else {
            self.sports.extend(written);
            self.sports_negated |= negated;
        }
        self.port_matches.push(PortMatch {
            destination,
            negated,
            ranges,
        });
    }

    pub(crate) fn add_owner_match(&mut self, uid: bool, negated: bool, value: &str) {
        if uid && self.uid_owner.is_none() {
            self.uid_owner = Some(value.to_string());
            self.uid_owner_negated = negated;
        } else if !uid && self.gid_owner.is_none() {
            self.gid_owner = Some(value.to_string());
            self.gid_owner_negated = negated;
        }
        self.owner_matches.push(OwnerMatch {
            uid,
            negated,
            value: value.to_string(),
        });
    }
}

impl OwnerMatch {
    /// The numeric range the value names, or `None` for a user or group name.
    pub fn range(&self) -> Option<(u32, u32)> {
        owner_range(&self.value)
    }
}

pub(crate) fn owner_range(value: &str) -> Option<(u32, u32)> {
    match value.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => value.parse().ok().map(|n| (n, n)),
    }
}

/// Extension targets that are not chains, and whether the packet stops in this table.
pub(crate) fn extension_target(name: &str) -> Option<bool> {
    const TERMINAL: &[&str] = &[
        "ACCEPT",
        "DROP",
        "REJECT",
        "RETURN",
        "REDIRECT",
        "TPROXY",
        "DNAT",
        "SNAT",
        "MASQUERADE",
        "NETMAP",
        "QUEUE",
        "NFQUEUE",
        "SYNPROXY",
        "CLUSTERIP",
    ];
    const CONTINUING: &[&str] = &[
        "MARK",
        "CONNMARK",
        "LOG",
        "NFLOG",
        "ULOG",
        "CT",
        "NOTRACK",
        "TRACE",
        "CLASSIFY",
        "DSCP",
        "TOS",
        "TTL",
        "HL",
        "TCPMSS",
        "AUDIT",
        "CHECKSUM",
        "SECMARK",
        "CONNSECMARK",
        "IDLETIMER",
        "LED",
        "SET",
        "TEE",
        "TCPOPTSTRIP",
        "HMARK",
        "RATEEST",
        "ECN",
        "CONNLIMIT",
        "IPV4OPTSSTRIP",
    ];
    if TERMINAL.contains(&name) {
        Some(true)
    } else if CONTINUING.contains(&name) {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn is_builtin_chain(name: &str) -> bool {
    matches!(
        name,
        "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING"
    )
}

/// Parses a port list value: `53,3000:5000`, `15001`, `mysql`, `!22`.
pub(crate) fn parse_port_ranges(text: &str) -> Vec<Option<(u16, u16)>> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            if let Some(port) = crate::services::port_number(part) {
                return Some((port, port));
            }
            let (a, b) = match part.split_once([':', '-']) {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let first = if a.is_empty() {
                Some(0)
            } else {
                crate::services::port_number(a)
            };
            let last = if b.is_empty() {
                Some(u16::MAX)
            } else {
                crate::services::port_number(b)
            };
            match (first, last) {
                (Some(f), Some(l)) if f <= l => Some((f, l)),
                _ => None,
            }
        })
        .collect()
}

pub(crate) fn format_port_range(range: &Option<(u16, u16)>, written: &str) -> String {
    match range {
        Some((a, b)) if a == b => a.to_string(),
        Some((a, b)) => format!("{a}:{b}"),
        None => written.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists() {
        assert_eq!(
            parse_port_ranges("53,3000:5000"),
            vec![Some((53, 53)), Some((3000, 5000))]
        );
        assert_eq!(parse_port_ranges("http-alt"), vec![Some((8080, 8080))]);
        assert_eq!(parse_port_ranges("1024:"), vec![Some((1024, 65535))]);
        assert_eq!(parse_port_ranges("9:1"), vec![None]);
        assert_eq!(parse_port_ranges("bogus"), vec![None]);
    }

    #[test]
    fn owner_ranges() {
        assert_eq!(owner_range("106-108"), Some((106, 108)));
        assert_eq!(owner_range("1337"), Some((1337, 1337)));
        assert_eq!(owner_range("istio-proxy"), None);
        assert_eq!(owner_range("9-1"), None);
    }
}
