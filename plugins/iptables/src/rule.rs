//! Turns the arguments of one `-A CHAIN ...` rule into a [`Rule`].

use crate::addr::{format_address_list, parse_address_list};
use crate::model::{MarkMatch, Rule};

struct Cursor<'a> {
    args: &'a [String],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let arg = self.args.get(self.at)?;
        self.at += 1;
        Some(arg.as_str())
    }

    fn peek(&self) -> Option<&'a str> {
        self.args.get(self.at).map(String::as_str)
    }

    /// An option's value; the old syntax `--dport ! 22` negates through the value.
    fn value(&mut self) -> Option<(&'a str, bool)> {
        let mut negated = false;
        if self.peek() == Some("!") {
            negated = true;
            self.at += 1;
        }
        let value = self.next()?;
        match value.strip_prefix('!') {
            Some(rest) if !rest.is_empty() => Some((rest, !negated)),
            _ => Some((value, negated)),
        }
    }
}

/// Parses rule options (everything after `-A CHAIN`). Never fails: what it does not
/// understand lands in `unknown_options`.
pub fn parse_rule_args(chain: &str, args: &[String], raw: &str) -> Rule {
    let mut rule = Rule {
        chain: chain.to_string(),
        raw: raw.to_string(),
        ..Rule::default()
    };
    let mut cursor = Cursor { args, at: 0 };
    let mut negate = false;
    let mut module: Option<&str> = None;
    let mut after_target = false;

    while let Some(opt) = cursor.next() {
        if opt == "!" {
            negate = true;
            continue;
        }
        let mut missing_value = false;
        match opt {
            "-p" | "--protocol" => match cursor.value() {
                Some((v, n)) => {
                    rule.protocol = Some(v.to_ascii_lowercase());
                    rule.protocol_negated = negate ^ n;
                }
                None => missing_value = true,
            },
            "-s" | "--source" | "--src" => match cursor.value() {
                Some((v, n)) => {
                    rule.source_negated = negate ^ n;
                    rule.source_specs = parse_address_list(v);
                    rule.source = rule.source_specs.as_deref().map(format_address_list);
                }
                None => missing_value = true,
            },
            "-d" | "--destination" | "--dst" => match cursor.value() {
                Some((v, n)) => {
                    rule.destination_negated = negate ^ n;
                    rule.destination_specs = parse_address_list(v);
                    rule.destination = rule.destination_specs.as_deref().map(format_address_list);
                }
                None => missing_value = true,
            },
            "-i" | "--in-interface" => match cursor.value() {
                Some((v, n)) => {
                    rule.in_interface = Some(v.to_string());
                    rule.in_interface_negated = negate ^ n;
                }
                None => missing_value = true,
            },
            "-o" | "--out-interface" => match cursor.value() {
                Some((v, n)) => {
                    rule.out_interface = Some(v.to_string());
                    rule.out_interface_negated = negate ^ n;
                }
                None => missing_value = true,
            },
            "-m" | "--match" => match cursor.next() {
                Some(m) => {
                    module = Some(m);
                    after_target = false;
                    rule.modules.push(m.to_string());
                }
                None => missing_value = true,
            },
            "-j" | "--jump" | "-g" | "--goto" => match cursor.next() {
                Some(t) => {
                    rule.target = Some(t.to_string());
                    rule.goto = matches!(opt, "-g" | "--goto");
                    after_target = true;
                }
                None => missing_value = true,
            },
            "--dport"
            | "--destination-port"
            | "--dports"
            | "--destination-ports"
            | "--sport"
            | "--source-port"
            | "--sports"
            | "--source-ports" => match cursor.value() {
                Some((v, n)) => {
                    rule.add_port_match(opt.starts_with("--d"), negate ^ n, v);
                }
                None => missing_value = true,
            },
            "--uid-owner" | "--gid-owner" => match cursor.value() {
                Some((v, n)) => {
                    rule.add_owner_match(opt == "--uid-owner", negate ^ n, v);
                }
                None => missing_value = true,
            },
            "--comment" => match cursor.next() {
                Some(v) => rule.comment = Some(v.to_string()),
                None => missing_value = true,
            },
            "--mark" if !after_target => match cursor.value() {
                Some((v, n)) => rule.marks.push(MarkMatch {
                    value: v.to_string(),
                    negated: negate ^ n,
                    connmark: module == Some("connmark"),
                }),
                None => missing_value = true,
            },
            "--ctstate" | "--state" => match cursor.value() {
                Some((v, n)) => {
                    rule.ctstates = v.split(',').map(str::to_string).collect();
                    rule.ctstates_negated = negate ^ n;
                }
                None => missing_value = true,
            },
            "--to-ports" | "--to-port" => match cursor.next() {
                Some(v) => rule.to_ports = Some(v.to_string()),
                None => missing_value = true,
            },
            "--on-port" => match cursor.next() {
                Some(v) => match v.parse() {
                    Ok(port) => rule.on_port = Some(port),
                    Err(_) => rule.target_options.push(format!("--on-port {v}")),
                },
                None => missing_value = true,
            },
            "--tproxy-mark" => match cursor.next() {
                Some(v) => rule.tproxy_mark = Some(v.to_string()),
                None => missing_value = true,
            },
            "--to-destination" | "--to" if rule.target.as_deref() != Some("SNAT") => {
                match cursor.next() {
                    Some(v) => rule.to_destination = Some(v.to_string()),
                    None => missing_value = true,
                }
            }
            // A SYN is exactly the packet the nat table sees, so `--syn` never narrows the question.
            "--syn" => {}
            // Counters and the family switches say nothing about which packets match.
            "-c" | "--set-counters" => {
                cursor.next();
                cursor.next();
            }
            "-4" | "--ipv4" | "-6" | "--ipv6" | "--suppl-groups" => {}
            "-w" | "--wait" => {
                if cursor.peek().is_some_and(|v| v.parse::<u32>().is_ok()) {
                    cursor.next();
                }
            }
            other => {
                let mut written = String::new();
                if negate {
                    written.push_str("! ");
                }
                written.push_str(other);
                while let Some(v) = cursor.peek() {
                    if v == "!" || (v.starts_with('-') && v.len() > 1 && !is_number(v)) {
                        break;
                    }
                    written.push(' ');
                    written.push_str(v);
                    cursor.next();
                }
                if after_target && other.starts_with("--") {
                    rule.target_options.push(written);
                } else {
                    rule.unknown_options.push(written);
                    rule.has_unknown_matches = true;
                }
            }
        }
        if missing_value {
            rule.unknown_options.push(format!("{opt} (no value)"));
            rule.has_unknown_matches = true;
        }
        negate = false;
    }
    rule
}

fn is_number(text: &str) -> bool {
    text.parse::<i64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::split_args;

    fn rule(text: &str) -> Rule {
        let args = split_args(text);
        parse_rule_args("ISTIO_OUTPUT", &args, text)
    }

    #[test]
    fn istio_loopback_rule() {
        let r = rule(
            "-o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT",
        );
        assert_eq!(r.out_interface.as_deref(), Some("lo"));
        assert_eq!(r.destination.as_deref(), Some("127.0.0.1/32"));
        assert!(r.destination_negated);
        assert_eq!(r.dports, vec!["53", "15008"]);
        assert!(r.dports_negated);
        assert_eq!(r.uid_owner.as_deref(), Some("3"));
        assert!(!r.uid_owner_negated);
        assert_eq!(r.target.as_deref(), Some("ISTIO_IN_REDIRECT"));
        assert!(!r.has_unknown_matches);
    }

    #[test]
    fn tproxy_and_comment() {
        let r = rule("! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006");
        assert_eq!(r.on_port, Some(15006));
        assert_eq!(r.tproxy_mark.as_deref(), Some("1337/0xffffffff"));
        assert_eq!(r.destination.as_deref(), Some("::1/128"));
        let r = rule(
            r#"-p tcp -m comment --comment "skip UIDs" -m multiport --dports 53,3000:5000 -m owner ! --uid-owner 106-108 -j RETURN"#,
        );
        assert_eq!(r.comment.as_deref(), Some("skip UIDs"));
        assert_eq!(r.dports, vec!["53", "3000:5000"]);
        assert!(r.uid_owner_negated);
        assert_eq!(r.uid_owner.as_deref(), Some("106-108"));
    }

    #[test]
    fn unknown_options_are_kept() {
        let r = rule("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
        assert_eq!(r.unknown_options, vec!["--dst-type LOCAL"]);
        assert!(r.has_unknown_matches);
        let r = rule("-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff");
        assert!(!r.has_unknown_matches);
        assert_eq!(r.target_options.len(), 3);
        let r = rule("-p tcp --dport");
        assert!(r.has_unknown_matches);
    }
}
