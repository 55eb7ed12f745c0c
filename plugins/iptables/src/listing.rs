//! Rows of `iptables -L` (with or without `-n`, `-v`, `--line-numbers`).

use crate::addr::{format_address_list, parse_address_list};
use crate::model::{MarkMatch, Rule};

/// The column names of a `target prot opt source destination` header line.
pub fn header_columns(line: &str) -> Option<Vec<String>> {
    let cols: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let has = |name: &str| cols.iter().any(|c| c == name);
    (has("target") && has("prot") && has("source") && has("destination")).then_some(cols)
}

/// `Chain NAME (policy ACCEPT)` / `Chain NAME (3 references)`:
/// the name, the policy and the reference count.
pub fn chain_header(line: &str) -> Option<(String, Option<String>, Option<u32>)> {
    let rest = line.strip_prefix("Chain ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let detail = rest
        .split_once('(')
        .map(|(_, d)| d.trim_end_matches(')'))
        .unwrap_or("");
    let mut detail_words = detail.split_whitespace();
    let (policy, references) = match (detail_words.next(), detail_words.next()) {
        (Some("policy"), Some(p)) => (Some(p.trim_end_matches(',').to_string()), None),
        (Some(n), Some(w)) if w.starts_with("reference") => (None, n.parse().ok()),
        _ => (None, None),
    };
    Some((name, policy, references))
}

fn is_opt_column(token: &str) -> bool {
    matches!(token, "--" | "-f" | "!f")
}

fn is_protocol_like(token: &str) -> bool {
    let t = token.trim_start_matches('!');
    t.parse::<u8>().is_ok()
        || matches!(
            t,
            "all"
                | "tcp"
                | "udp"
                | "icmp"
                | "ipv6-icmp"
                | "icmpv6"
                | "sctp"
                | "udplite"
                | "esp"
                | "ah"
                | "gre"
                | "mh"
        )
}

/// Parses one row under `columns`; `None` when the row is too short to be one.
pub fn parse_row(chain: &str, columns: &[String], line: &str) -> Option<Rule> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let mut rule = Rule {
        chain: chain.to_string(),
        raw: line.trim().to_string(),
        ..Rule::default()
    };
    let mut at = 0;
    for (index, column) in columns.iter().enumerate() {
        match column.as_str() {
            "target" => {
                // An empty target column is blank padding, so it shows only as a missing token.
                let blank_first = index == 0 && line.starts_with(char::is_whitespace);
                let candidate = *tokens.get(at)?;
                let next = tokens.get(at + 1).copied().unwrap_or("");
                let missing = blank_first
                    || (index > 0 && is_protocol_like(candidate) && is_opt_column(next));
                if !missing {
                    rule.target = Some(candidate.to_string());
                    at += 1;
                }
            }
            "prot" => {
                let p = *tokens.get(at)?;
                at += 1;
                let (negated, name) = match p.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, p),
                };
                if !matches!(name, "all" | "0") {
                    rule.protocol = Some(name.to_ascii_lowercase());
                    rule.protocol_negated = negated;
                }
            }
            "opt" => {
                if tokens.get(at).is_some_and(|t| is_opt_column(t)) {
                    at += 1;
                }
            }
            "in" | "out" => {
                let value = *tokens.get(at)?;
                at += 1;
                let (negated, name) = match value.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, value),
                };
                if name != "*" && name != "any" {
                    if column == "in" {
                        rule.in_interface = Some(name.to_string());
                        rule.in_interface_negated = negated;
                    } else {
                        rule.out_interface = Some(name.to_string());
                        rule.out_interface_negated = negated;
                    }
                }
            }
            "source" | "destination" => {
                let value = *tokens.get(at)?;
                at += 1;
                let (negated, text) = match value.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, value),
                };
                let specs = parse_address_list(text);
                let written = specs.as_deref().map(format_address_list);
                if column == "source" {
                    rule.source_negated = negated && specs.is_some();
                    rule.source_specs = specs;
                    rule.source = written;
                } else {
                    rule.destination_negated = negated && specs.is_some();
                    rule.destination_specs = specs;
                    rule.destination = written;
                }
            }
            _ => {
                tokens.get(at)?;
                at += 1;
            }
        }
    }
    parse_extras(&mut rule, tokens.get(at..).unwrap_or(&[]));
    Some(rule)
}

/// The free-form text after the destination column, printed by each match and target.
fn parse_extras(rule: &mut Rule, tokens: &[&str]) {
    let mut at = 0;
    let mut negate = false;
    let mut in_target_text = false;
    while let Some(&token) = tokens.get(at) {
        at += 1;
        if token == "!" {
            negate = true;
            continue;
        }
        match token {
            "/*" => {
                let mut words = Vec::new();
                while let Some(&w) = tokens.get(at) {
                    at += 1;
                    if w == "*/" {
                        break;
                    }
                    words.push(w);
                }
                rule.comment = Some(words.join(" "));
                rule.modules.push("comment".into());
            }
            "tcp" | "udp" | "sctp" | "udplite" => rule.modules.push(token.into()),
            t if port_prefix(t).is_some() => {
                if let Some((destination, value)) = port_prefix(t) {
                    push_ports(rule, destination, value, negate);
                }
            }
            "multiport" => {
                rule.modules.push("multiport".into());
                let kind = tokens.get(at).copied().unwrap_or("");
                if matches!(kind, "dports" | "sports" | "ports") {
                    at += 1;
                    let mut negated = negate;
                    if tokens.get(at) == Some(&"!") {
                        negated = !negated;
                        at += 1;
                    }
                    if let Some(&list) = tokens.get(at) {
                        at += 1;
                        let (negated, list) = match list.strip_prefix('!') {
                            Some(l) => (!negated, l),
                            None => (negated, list),
                        };
                        if kind == "ports" {
                            rule.unknown_options.push(format!("multiport ports {list}"));
                            rule.has_unknown_matches = true;
                        } else {
                            push_ports(rule, kind == "dports", list, negated);
                        }
                    }
                }
            }
            "owner" => {
                rule.modules.push("owner".into());
                // `owner UID match 1337`, `owner GID match 1337`
                let kind = tokens.get(at).copied().unwrap_or("");
                if matches!(kind, "UID" | "GID") && tokens.get(at + 1) == Some(&"match") {
                    at += 2;
                    let mut negated = negate;
                    if tokens.get(at) == Some(&"!") {
                        negated = !negated;
                        at += 1;
                    }
                    if let Some(&value) = tokens.get(at) {
                        at += 1;
                        rule.add_owner_match(kind == "UID", negated, value);
                    }
                } else {
                    rule.unknown_options.push(format!("owner {kind}"));
                    rule.has_unknown_matches = true;
                    at += 1;
                }
            }
            "mark" | "connmark" if tokens.get(at) == Some(&"match") => {
                rule.modules.push(token.into());
                at += 1;
                let mut negated = negate;
                if tokens.get(at) == Some(&"!") {
                    negated = !negated;
                    at += 1;
                }
                if let Some(&value) = tokens.get(at) {
                    at += 1;
                    rule.marks.push(MarkMatch {
                        value: value.to_string(),
                        negated,
                        connmark: token == "connmark",
                    });
                }
            }
            "ctstate" | "state" => {
                rule.modules.push(
                    if token == "ctstate" {
                        "conntrack"
                    } else {
                        "state"
                    }
                    .into(),
                );
                let mut negated = negate;
                if tokens.get(at) == Some(&"!") {
                    negated = !negated;
                    at += 1;
                }
                if let Some(&value) = tokens.get(at) {
                    at += 1;
                    rule.ctstates = value.split(',').map(str::to_string).collect();
                    rule.ctstates_negated = negated;
                }
            }
            "redir" | "masq"
                if tokens.get(at) == Some(&"ports") || tokens.get(at) == Some(&"ports:") =>
            {
                in_target_text = true;
                at += 1;
                if let Some(&value) = tokens.get(at) {
                    at += 1;
                    rule.to_ports = Some(value.to_string());
                }
            }
            "TPROXY" => {
                // `TPROXY redirect 0.0.0.0:15006 mark 0x539/0xffffffff`
                in_target_text = true;
                if tokens.get(at) == Some(&"redirect") {
                    at += 1;
                    if let Some(&endpoint) = tokens.get(at) {
                        at += 1;
                        rule.on_port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok());
                    }
                }
                if tokens.get(at) == Some(&"mark") {
                    at += 1;
                    if let Some(&mark) = tokens.get(at) {
                        at += 1;
                        rule.tproxy_mark = Some(mark.to_string());
                    }
                }
            }
            t if t.starts_with("to:") && rule.target.as_deref() == Some("DNAT") => {
                in_target_text = true;
                rule.to_destination = Some(t.trim_start_matches("to:").to_string());
            }
            other => {
                let written = if negate {
                    format!("! {other}")
                } else {
                    other.to_string()
                };
                let target_is_extension = rule
                    .target
                    .as_deref()
                    .is_some_and(|t| crate::model::extension_target(t).is_some());
                let target_word = other.chars().all(|c| c.is_ascii_uppercase())
                    && crate::model::extension_target(other).is_some();
                if target_word || in_target_text || (target_is_extension && is_target_text(other)) {
                    in_target_text = true;
                    rule.target_options.push(written);
                } else {
                    rule.unknown_options.push(written);
                    rule.has_unknown_matches = true;
                }
            }
        }
        negate = false;
    }
}

/// Words targets print in `iptables -L` (`MARK set 0x1`, `CT zone 1`, `reject-with ...`).
fn is_target_text(word: &str) -> bool {
    matches!(
        word,
        "set" | "xset" | "and" | "or" | "xor" | "zone" | "reject-with" | "save" | "restore"
    ) || word.starts_with("to:")
}

/// `dpt:mysql`, `dpts:3000:5000`, `spt:53`, `dpt:!22` → (destination?, value).
fn port_prefix(token: &str) -> Option<(bool, &str)> {
    for (prefix, destination) in [
        ("dpt:", true),
        ("dpts:", true),
        ("spt:", false),
        ("spts:", false),
    ] {
        if let Some(value) = token.strip_prefix(prefix) {
            return Some((destination, value));
        }
    }
    None
}

fn push_ports(rule: &mut Rule, destination: bool, value: &str, negate: bool) {
    let (negated, value) = match value.strip_prefix('!') {
        Some(v) => (!negate, v),
        None => (negate, value),
    };
    rule.add_port_match(destination, negated, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<String> {
        header_columns("target     prot opt source               destination").unwrap()
    }

    #[test]
    fn guide_rows() {
        let r = parse_row(
            "SERVICE_PROXY_INBOUND",
            &cols(),
            "SERVICE_PROXY_IN_REDIRECT   tcp  --  anywhere     anywhere  tcp dpt:mysql",
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("SERVICE_PROXY_IN_REDIRECT"));
        assert_eq!(r.protocol.as_deref(), Some("tcp"));
        assert_eq!(r.source, None);
        assert_eq!(r.dports, vec!["3306"]);
        assert!(!r.has_unknown_matches);
    }

    #[test]
    fn extension_rows() {
        let r = parse_row(
            "X",
            &cols(),
            "REDIRECT   tcp  --  0.0.0.0/0   0.0.0.0/0   redir ports 15001",
        )
        .unwrap();
        assert_eq!(r.to_ports.as_deref(), Some("15001"));
        let r = parse_row(
            "X",
            &cols(),
            "RETURN     all  --  anywhere   anywhere   owner UID match 1337",
        )
        .unwrap();
        assert_eq!(r.uid_owner.as_deref(), Some("1337"));
        let r = parse_row(
            "X",
            &cols(),
            "RETURN     all  --  anywhere   anywhere   ! owner UID match 1337",
        )
        .unwrap();
        assert!(r.uid_owner_negated);
        let r = parse_row("X", &cols(), "ISTIO_IN_REDIRECT  tcp  --  anywhere  anywhere  multiport dports 80,443 /* a comment */").unwrap();
        assert_eq!(r.dports, vec!["80", "443"]);
        assert_eq!(r.comment.as_deref(), Some("a comment"));
        let r = parse_row("X", &cols(), "           all  --  anywhere   anywhere").unwrap();
        assert_eq!(r.target, None);
        let r = parse_row("X", &cols(), "TPROXY     tcp  --  anywhere  !localhost  TPROXY redirect 0.0.0.0:15006 mark 0x539/0xffffffff").unwrap();
        assert_eq!(r.on_port, Some(15006));
        assert!(r.destination_negated);
        assert_eq!(r.destination.as_deref(), Some("127.0.0.1/32"));
        assert!(parse_row("X", &cols(), "RETURN").is_none());
    }

    #[test]
    fn verbose_columns() {
        let cols = header_columns(
            " pkts bytes target     prot opt in     out     source               destination",
        )
        .unwrap();
        let r = parse_row(
            "X",
            &cols,
            "    0     0 RETURN     all  --  *      lo      127.0.0.6            0.0.0.0/0",
        )
        .unwrap();
        assert_eq!(r.out_interface.as_deref(), Some("lo"));
        assert_eq!(r.source.as_deref(), Some("127.0.0.6/32"));
        assert_eq!(r.in_interface, None);
    }

    #[test]
    fn chain_headers() {
        assert_eq!(
            chain_header("Chain SERVICE_PROXY_SERVICE_CIDRS (1 references)"),
            Some(("SERVICE_PROXY_SERVICE_CIDRS".into(), None, Some(1)))
        );
        assert_eq!(
            chain_header("Chain OUTPUT (policy ACCEPT 10 packets, 600 bytes)"),
            Some(("OUTPUT".into(), Some("ACCEPT".into()), None))
        );
    }
}
