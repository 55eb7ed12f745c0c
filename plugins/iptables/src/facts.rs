//! The facts runbooks read, derived from one parsed table.

use crate::addr::{AddrSpec, Cidr};
use crate::eval::{Direction, Evaluation, Evaluator, Owner, PathStep, TestPacket};
use crate::model::{Rule, extension_target, is_builtin_chain, owner_range};
use crate::parse::{Format, ParseError, Table, parse_ruleset};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use triage_sdk::JsonSchema;

/// Rules walked across every probe of one table, so that a huge table stays quick.
const TOTAL_STEP_BUDGET: usize = 2_000_000;
/// Distinct destinations or ports probed at most.
const MAX_PROBES: usize = 256;

/// What the caller wants to know about the rules.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub table: String,
    pub ipv6: bool,
    pub vip: Option<IpAddr>,
    pub port: Option<u16>,
    pub proxy_uid: Option<u32>,
    pub serving_ports: Vec<u16>,
}

/// Facts about one netfilter table.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RulesFacts {
    /// The table asked for (`nat`, `filter`, `mangle`, `raw`, `security`).
    pub table: String,
    /// The text form read: `save` (iptables-save), `spec` (iptables -S, or a list of
    /// iptables commands) or `list` (iptables -L).
    pub format: String,
    /// True when the IPv6 rules (ip6tables) were read.
    pub ipv6: bool,
    /// Every table the text held (`*nat`, `-t raw`), first appearance first; empty for `-S`/`-L` text.
    pub tables_found: Vec<String>,
    /// Number of rules in this table.
    pub rule_count: usize,
    /// Lines that were neither a table, a chain, a rule, a comment nor a command echo.
    pub unparsed_lines: usize,
    /// Chains by name. `policy` is null for user chains; `references` counts the rules
    /// that jump or go to the chain (or the count `iptables -L` printed, if higher).
    pub chains: BTreeMap<String, ChainFacts>,
    /// Jump targets that are neither chains in this text nor known extension targets.
    pub missing_chains: Vec<String>,
    /// Chains that rules jump to but that hold no rules.
    pub empty_jump_targets: Vec<String>,
    /// Owner ids (as written: `1337`, `106-108`, a user name) whose traffic a RETURN or
    /// ACCEPT rule, with no other condition, takes out of the chains reachable from OUTPUT.
    pub uid_owner_exclusions: Vec<String>,
    /// Same for `--gid-owner`.
    pub gid_owner_exclusions: Vec<String>,
    /// RETURN/ACCEPT owner rules reachable from OUTPUT that only exclude some traffic
    /// (a protocol, ports or addresses too).
    pub partial_owner_exclusions: Vec<PartialExclusion>,
    /// `--to-ports` of REDIRECT rules (first port of a range), sorted.
    pub redirect_ports: Vec<u16>,
    /// `--on-port` of TPROXY rules, sorted.
    pub tproxy_ports: Vec<u16>,
    /// Whether and where application traffic leaving the machine is sent to the proxy.
    pub outbound: Outbound,
    /// Shortcut for `outbound.mode == "all"`.
    pub intercepts_all_outbound: bool,
    /// The `proxy_uid` asked about, if any.
    pub proxy_uid: Option<u32>,
    /// Null without `proxy_uid`. Otherwise true when traffic from that uid is not sent back to
    /// the proxy wherever other applications' traffic is (no loop). When nothing is
    /// intercepted, true only if a rule names the uid in an exclusion. Also null when the
    /// walk of the uid's connection meets a rule whose match it cannot evaluate (an ipset, an
    /// unknown match module) and the ways disagree: `proxy_uid_undecided_by` names the rule.
    pub proxy_uid_excluded: Option<bool>,
    /// When `proxy_uid` is given and `proxy_uid_excluded` is null: the rule, as written, that
    /// makes it undecidable, or why the walk stopped. Null otherwise.
    pub proxy_uid_undecided_by: Option<String>,
    /// True when `uid_owner_exclusions` is not empty.
    pub any_uid_excluded: bool,
    /// The `vip` asked about, if any.
    pub vip: Option<String>,
    /// The destination port used for the VIP probe (the `port` param, or a port no rule names).
    pub vip_port: Option<u16>,
    /// Null without `vip`, or when the answer depends on something the rules do not show
    /// (see `vip_interception_notes`). Otherwise whether a new TCP connection from an
    /// unexcluded application to vip:port, walked from OUTPUT, is REDIRECTed/TPROXYed to the proxy.
    pub vip_intercepted: Option<bool>,
    /// The rules that decided `vip_intercepted`, in order.
    pub vip_interception_path: Vec<PathStep>,
    /// Assumptions the VIP walk made, and why it could not decide if it could not.
    pub vip_interception_notes: Vec<String>,
    /// When `vip_intercepted` is false and other traffic is intercepted: the rule that
    /// would send the VIP where the intercepted traffic goes, inserted where the VIP's
    /// connection leaves that chain today (so never after a final `-j RETURN`). Null otherwise.
    pub vip_fix: Option<VipFix>,
    /// What happens to connections arriving from the network (PREROUTING, then INPUT).
    pub inbound: Inbound,
    /// For each requested serving port: whether arriving connections reach the proxy.
    pub serving_ports: Vec<ServingPort>,
    /// Destination ports named by DROP or REJECT rules in this table, sorted.
    pub dropped_ports: Vec<u16>,
    /// Remarks about the text as a whole (table or family missing).
    pub notes: Vec<String>,
    /// Only with the `sudo` param, when the rules could not be read: who refused and why.
    /// Then this and `table` are the only facts, so no condition over the rules holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ReadRefusal>,
}

/// One chain.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChainFacts {
    /// Built-in chain policy (`ACCEPT`, `DROP`); null for user chains or when not shown.
    pub policy: Option<String>,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
    /// Rules that jump or go to this chain.
    pub references: u32,
}

/// An owner match that excludes only part of an id's traffic.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PartialExclusion {
    /// `uid` or `gid`.
    pub kind: String,
    /// The id as written.
    pub id: String,
    /// The rule, as written.
    pub rule: String,
}

/// A rule to insert so that the VIP is intercepted like the traffic that already is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VipFix {
    /// The chain that sends intercepted traffic on (`ISTIO_OUTPUT`, `SERVICE_PROXY_SERVICE_CIDRS`).
    pub chain: String,
    /// 1-based position for `iptables -I CHAIN N`: where the VIP's connection leaves the
    /// chain today (the rule that returns it, or one past the last rule).
    pub position: usize,
    /// Where the rule sends the VIP: the chain or target the intercepting rule uses.
    pub target: String,
    /// The whole command's arguments, one word each, e.g. `iptables -t nat -I ISTIO_OUTPUT
    /// 5 -d 10.0.0.2/32 -j ISTIO_REDIRECT`: quote each word when rendering it.
    pub argv: Vec<String>,
    /// The intercepting rule the new one copies its target from, as written.
    pub modelled_on: String,
    /// A rule before `position` that would still keep the VIP away, because the proxy's
    /// own owner exclusion comes after it and the new rule must not precede that
    /// (it would send the proxy's traffic back to itself). Null when none.
    pub still_bypassed_by: Option<String>,
}

/// Outbound interception.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Outbound {
    /// True when some outbound application traffic is sent to the proxy, false when none is.
    /// Null when none is known to be but a probe's walk met a rule whose match it cannot
    /// evaluate (an ipset, an unknown match module) and that leads to different ends:
    /// whether traffic is intercepted then depends on something the table does not show.
    pub intercepted: Option<bool>,
    /// When `intercepted` is null: the rule, as written, that makes it undecidable (the
    /// first such on the walk's path), or why the walk stopped. Null otherwise.
    pub undecided_by: Option<String>,
    /// The chain holding the rule that `undecided_by` (or else `all_undecided_by`) names:
    /// the one to list by hand (`iptables -t nat -L CHAIN -n -v`), which is not always
    /// OUTPUT or `chain`. Null when neither names a rule.
    pub undecided_in: Option<String>,
    /// When `mode` is not `all` although a connection to an arbitrary outside address might
    /// be redirected: the rule, as written, whose match the walk cannot evaluate (an ipset,
    /// an unknown match module) and that leads both ways, or why the walk stopped. Then
    /// `intercepts_all_outbound` is false for want of an answer, not because it was seen to
    /// be. Null when that walk has a single answer.
    pub all_undecided_by: Option<String>,
    /// `all`: a connection to an arbitrary outside address is redirected; `cidrs`: only
    /// connections to the listed networks are; `none`: nothing is known to be (see
    /// `intercepted`, null when that is undecided).
    pub mode: String,
    /// Destination networks whose traffic is redirected (as named in `-d` rules).
    pub cidrs: Vec<String>,
    /// Destination networks that a RETURN/ACCEPT rule or a `! -d` keeps away from the proxy.
    pub excluded_cidrs: Vec<String>,
    /// The first user chain OUTPUT sends intercepted traffic through (`ISTIO_OUTPUT`).
    pub chain: Option<String>,
    /// The address:port used as "an arbitrary outside address".
    pub probe: String,
    /// Assumptions the walk made.
    pub notes: Vec<String>,
}

/// Inbound interception.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Inbound {
    /// True when a connection to a port no rule names is redirected to the proxy.
    pub all_ports: bool,
    /// Ports named in the inbound rules (or asked about) whose connections are redirected, sorted.
    pub redirected_ports: Vec<u16>,
    /// With `all_ports`, the named ports that are not redirected (`15008`, `15020`, ...), sorted.
    pub excluded_ports: Vec<u16>,
    /// The first user chain PREROUTING sends them through (`ISTIO_INBOUND`, `SERVICE_PROXY_INBOUND`).
    pub chain: Option<String>,
    /// Assumptions the walk made.
    pub notes: Vec<String>,
}

/// One requested serving port.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ServingPort {
    /// The port.
    pub port: u16,
    /// A new TCP connection arriving for this port is redirected to the proxy (true), or is
    /// not (false); null when a rule whose match the walk cannot evaluate (an ipset, an
    /// unknown match module) lies on its path and the ways disagree.
    pub redirected: Option<bool>,
    /// It is dropped or rejected in this table instead (true), or not (false); null when
    /// undecidable, as for `redirected`.
    pub dropped: Option<bool>,
    /// The rule (or policy) that drops it, on some way of the walk.
    pub dropped_by: Option<String>,
    /// When `redirected` or `dropped` is null: the rule, as written, that makes it
    /// undecidable, or why the walk stopped. Null otherwise.
    pub undecided_by: Option<String>,
}

/// Parses any iptables text form and derives the facts for `query.table`.
pub fn parse_rules(text: &str, query: &Query) -> Result<RulesFacts, ParseError> {
    let ruleset = parse_ruleset(text)?;
    let format = ruleset.format;
    let unparsed = ruleset.unparsed_lines;
    let table = ruleset.into_table(&query.table, query.ipv6);
    Ok(analyze(&table, query, format, unparsed))
}

fn analyze(table: &Table, query: &Query, format: Format, unparsed_lines: usize) -> RulesFacts {
    let mut counted: HashMap<usize, u32> = HashMap::new();
    let mut missing = BTreeSet::new();
    let mut empty_targets = BTreeSet::new();
    for rule in table.chains.iter().flat_map(|c| &c.rules) {
        let Some(target) = rule.target.as_deref().filter(|t| !t.is_empty()) else {
            continue;
        };
        match table.index.get(target) {
            Some(&at) => {
                *counted.entry(at).or_default() += 1;
                if table.chains.get(at).is_some_and(|c| c.rules.is_empty()) {
                    empty_targets.insert(target.to_string());
                }
            }
            None if extension_target(target).is_none() => {
                missing.insert(target.to_string());
            }
            None => {}
        }
    }

    let chains: BTreeMap<String, ChainFacts> = table
        .chains
        .iter()
        .enumerate()
        .map(|(at, c)| {
            let references = counted
                .get(&at)
                .copied()
                .unwrap_or(0)
                .max(c.declared_references.unwrap_or(0));
            (
                c.name.clone(),
                ChainFacts {
                    policy: c.policy.clone(),
                    rules: c.rules.clone(),
                    references,
                },
            )
        })
        .collect();

    let mut redirect_ports = BTreeSet::new();
    let mut tproxy_ports = BTreeSet::new();
    let mut dropped_ports = BTreeSet::new();
    for rule in table.chains.iter().flat_map(|c| &c.rules) {
        match rule.target.as_deref() {
            Some("REDIRECT") => {
                if let Some(p) = rule.to_ports.as_deref().and_then(first_port) {
                    redirect_ports.insert(p);
                }
            }
            Some("TPROXY") => {
                if let Some(p) = rule.on_port {
                    tproxy_ports.insert(p);
                }
            }
            Some("DROP" | "REJECT") => {
                for ports in rule
                    .port_matches
                    .iter()
                    .filter(|p| p.destination && !p.negated)
                {
                    for &(a, b) in ports.ranges.iter().flatten() {
                        dropped_ports.insert(a);
                        dropped_ports.insert(b);
                    }
                }
            }
            _ => {}
        }
    }

    let mut notes = table.notes.clone();
    let roots = unreferenced_user_chains(table, &counted);
    let outbound_entries = match table.index.get("OUTPUT") {
        Some(&at) => vec![at],
        None => {
            let picked: Vec<usize> = roots
                .iter()
                .copied()
                .filter(|&at| !looks_inbound(&table.chains[at].name))
                .collect();
            if !picked.is_empty() {
                notes.push(format!(
                    "no OUTPUT chain in the text; outbound walks start from {}",
                    names(table, &picked)
                ));
            }
            picked
        }
    };
    let mut inbound_entries: Vec<usize> = ["PREROUTING", "INPUT"]
        .iter()
        .filter_map(|n| table.index.get(*n).copied())
        .collect();
    if inbound_entries.is_empty() {
        inbound_entries = roots
            .iter()
            .copied()
            .filter(|&at| looks_inbound(&table.chains[at].name))
            .collect();
        if !inbound_entries.is_empty() {
            notes.push(format!(
                "no PREROUTING chain in the text; inbound walks start from {}",
                names(table, &inbound_entries)
            ));
        }
    }
    let outbound_reach = reachable(table, &outbound_entries);
    let inbound_reach = reachable(table, &inbound_entries);

    let named_ports: Vec<(u16, u16)> = table
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .flat_map(|r| &r.port_matches)
        .flat_map(|p| p.ranges.iter().flatten().copied())
        .collect();
    let neutral_port = [443u16, 8443, 9443, 40443, 50443, 61443]
        .into_iter()
        .find(|p| !named_ports.iter().any(|&(a, b)| (a..=b).contains(p)))
        .unwrap_or(443);
    let outside = outside_address(table);
    let local = if table.ipv6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))
    };

    let mut evaluator = Evaluator::new(table, TOTAL_STEP_BUDGET);
    let outbound_packet = |dst: IpAddr, dport: u16, uid: Owner| TestPacket {
        direction: Direction::Outbound,
        dst,
        dport,
        uid,
        gid: Owner::Unlisted,
    };
    let entry_names: Vec<String> = ["OUTPUT", "PREROUTING", "INPUT"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // Outbound: an arbitrary outside address, then each network the rules name.
    let outside_eval = evaluator.evaluate(
        &outbound_entries,
        &outbound_packet(outside, neutral_port, Owner::Unlisted),
    );
    let all = outside_eval.intercepted() == Some(true);
    let mut cidrs = Vec::new();
    let mut excluded_cidrs = Vec::new();
    let mut intercepted_probes: Vec<IpAddr> = Vec::new();
    let mut outbound_chain = all
        .then(|| outside_eval.first_user_chain(&entry_names))
        .flatten();
    let mut outbound_notes: BTreeSet<String> = outside_eval.all_notes().into_iter().collect();
    // The first probe whose walk has no single answer: if no probe is intercepted, this
    // rule (an ipset, a match the walk cannot evaluate) is why "nothing" is not a verdict.
    let outside_undecided_by = outside_eval.undecided_by(Evaluation::intercepted);
    let mut outbound_undecided_by = outside_undecided_by.clone();
    let outside_undecided_in = outside_eval.undecided_in(Evaluation::intercepted);
    let mut outbound_undecided_in = outside_undecided_in.clone();
    let mut seen = BTreeSet::new();
    for (cidr, exits) in destination_candidates(table, &outbound_reach) {
        if seen.len() >= MAX_PROBES {
            outbound_notes.insert(format!(
                "only the first {MAX_PROBES} destination networks were probed"
            ));
            break;
        }
        if !seen.insert(cidr) {
            continue;
        }
        let eval = evaluator.evaluate(
            &outbound_entries,
            &outbound_packet(cidr.sample_host(), neutral_port, Owner::Unlisted),
        );
        match eval.intercepted() {
            Some(true) => {
                cidrs.push(cidr.to_string());
                intercepted_probes.push(cidr.sample_host());
                if outbound_chain.is_none() {
                    outbound_chain = eval.first_user_chain(&entry_names);
                }
            }
            Some(false) if exits => excluded_cidrs.push(cidr.to_string()),
            Some(false) => {}
            None => {
                if outbound_undecided_by.is_none() {
                    outbound_undecided_by = eval.undecided_by(Evaluation::intercepted);
                    outbound_undecided_in = eval.undecided_in(Evaluation::intercepted);
                }
            }
        }
    }
    let mode = if all {
        "all"
    } else if !cidrs.is_empty() {
        "cidrs"
    } else {
        "none"
    };
    if all {
        intercepted_probes.insert(0, outside);
    }

    // Owner exclusions, as written.
    let mut uid_exclusions = Vec::new();
    let mut gid_exclusions = Vec::new();
    let mut partial = Vec::new();
    let mut listed: BTreeSet<(bool, &str)> = BTreeSet::new();
    for &at in &outbound_reach {
        for rule in &table.chains[at].rules {
            if !matches!(rule.target.as_deref(), Some("RETURN" | "ACCEPT")) {
                continue;
            }
            for owner in rule.owner_matches.iter().filter(|o| !o.negated) {
                if is_owner_only(rule) {
                    if listed.insert((owner.uid, owner.value.as_str())) {
                        let list = if owner.uid {
                            &mut uid_exclusions
                        } else {
                            &mut gid_exclusions
                        };
                        list.push(owner.value.clone());
                    }
                } else {
                    partial.push(PartialExclusion {
                        kind: if owner.uid { "uid" } else { "gid" }.into(),
                        id: owner.value.clone(),
                        rule: rule.raw.clone(),
                    });
                }
            }
        }
    }

    let vip_port = query.vip.map(|_| query.port.unwrap_or(neutral_port));
    let vip_eval = query.vip.map(|vip| {
        evaluator.evaluate(
            &outbound_entries,
            &outbound_packet(vip, query.port.unwrap_or(neutral_port), Owner::Unlisted),
        )
    });
    if let (Some(vip), Some(true)) = (
        query.vip,
        vip_eval.as_ref().and_then(Evaluation::intercepted),
    ) && !intercepted_probes.contains(&vip)
    {
        intercepted_probes.push(vip);
    }

    let vip_fix = match (query.vip, &vip_eval) {
        (Some(vip), Some(eval)) if eval.intercepted() == Some(false) => intercepted_probes
            .iter()
            .find(|&&probe| probe != vip)
            .and_then(|&probe| {
                let reference = evaluator.evaluate(
                    &outbound_entries,
                    &outbound_packet(probe, neutral_port, Owner::Unlisted),
                );
                vip_fix_for(
                    table,
                    vip,
                    &query.table,
                    query.ipv6,
                    &reference.representative_path(),
                    &eval.representative_path(),
                    &outbound_entries,
                )
            }),
        _ => None,
    };

    let proxy_uid_excluded = query.proxy_uid.map(|uid| {
        let named = uid_exclusions
            .iter()
            .any(|id| owner_range(id).is_some_and(|(a, b)| (a..=b).contains(&uid)));
        if intercepted_probes.is_empty() {
            return (Some(named), None);
        }
        let mut undecided_by: Option<String> = None;
        for dst in &intercepted_probes {
            let dport = if Some(*dst) == query.vip {
                vip_port.unwrap_or(neutral_port)
            } else {
                neutral_port
            };
            let eval = evaluator.evaluate(
                &outbound_entries,
                &outbound_packet(*dst, dport, Owner::Id(uid)),
            );
            match eval.intercepted() {
                Some(true) => return (Some(false), None),
                Some(false) => {}
                None => {
                    undecided_by.get_or_insert_with(|| {
                        eval.undecided_by(Evaluation::intercepted)
                            .unwrap_or_else(|| "the walk has no single answer".into())
                    });
                }
            }
        }
        match undecided_by {
            Some(rule) => (None, Some(rule)),
            None => (Some(true), None),
        }
    });
    let (proxy_uid_excluded, proxy_uid_undecided_by) = proxy_uid_excluded.unwrap_or((None, None));

    // Inbound: a port no rule names, then every named or requested port.
    let inbound_packet = |dport: u16| TestPacket {
        direction: Direction::Inbound,
        dst: local,
        dport,
        uid: Owner::NoSocket,
        gid: Owner::NoSocket,
    };
    let any_port_eval = evaluator.evaluate(&inbound_entries, &inbound_packet(neutral_port));
    let all_ports = any_port_eval.intercepted() == Some(true);
    let mut inbound_notes: BTreeSet<String> = any_port_eval.all_notes().into_iter().collect();
    let mut inbound_chain = all_ports
        .then(|| any_port_eval.first_user_chain(&entry_names))
        .flatten();
    let mut candidate_ports: BTreeSet<u16> = BTreeSet::new();
    for &at in &inbound_reach {
        for ports in table.chains[at]
            .rules
            .iter()
            .flat_map(|r| &r.port_matches)
            .filter(|p| p.destination)
        {
            candidate_ports.extend(ports.ranges.iter().flatten().map(|&(a, _)| a));
        }
    }
    candidate_ports.extend(query.serving_ports.iter().copied());
    let mut port_evals: BTreeMap<u16, Evaluation> = BTreeMap::new();
    for port in candidate_ports {
        if port_evals.len() >= MAX_PROBES {
            inbound_notes.insert(format!(
                "only the first {MAX_PROBES} inbound ports were probed"
            ));
            break;
        }
        let eval = evaluator.evaluate(&inbound_entries, &inbound_packet(port));
        port_evals.insert(port, eval);
    }
    let mut redirected_ports = Vec::new();
    let mut excluded_ports = Vec::new();
    for (&port, eval) in &port_evals {
        match eval.intercepted() {
            Some(true) => {
                redirected_ports.push(port);
                if inbound_chain.is_none() {
                    inbound_chain = eval.first_user_chain(&entry_names);
                }
            }
            Some(false) if all_ports => excluded_ports.push(port),
            _ => {}
        }
        inbound_notes.extend(eval.all_notes());
    }
    let serving_ports = query
        .serving_ports
        .iter()
        .map(|&port| {
            let eval = port_evals.get(&port);
            // A port never probed (the probe bound) is as undecided as an ipset makes it.
            let redirected = eval.and_then(Evaluation::intercepted);
            let dropped = eval.and_then(Evaluation::dropped);
            let undecided_by = match eval {
                None => Some(format!(
                    "only the first {MAX_PROBES} inbound ports were probed"
                )),
                Some(e) => e
                    .undecided_by(Evaluation::intercepted)
                    .or_else(|| e.undecided_by(Evaluation::dropped)),
            };
            ServingPort {
                port,
                redirected,
                dropped,
                dropped_by: eval.and_then(Evaluation::dropped_by),
                undecided_by,
            }
        })
        .collect();

    RulesFacts {
        table: query.table.clone(),
        format: format.as_str().into(),
        ipv6: table.ipv6,
        tables_found: table.tables_found.clone(),
        rule_count: table.rule_count(),
        unparsed_lines,
        chains,
        missing_chains: missing.into_iter().collect(),
        empty_jump_targets: empty_targets.into_iter().collect(),
        any_uid_excluded: !uid_exclusions.is_empty(),
        uid_owner_exclusions: uid_exclusions,
        gid_owner_exclusions: gid_exclusions,
        partial_owner_exclusions: partial,
        redirect_ports: redirect_ports.into_iter().collect(),
        tproxy_ports: tproxy_ports.into_iter().collect(),
        outbound: Outbound {
            intercepted: if mode != "none" {
                Some(true)
            } else if outbound_undecided_by.is_some() {
                None
            } else {
                Some(false)
            },
            undecided_by: if mode == "none" {
                outbound_undecided_by
            } else {
                None
            },
            undecided_in: if mode == "none" {
                outbound_undecided_in
            } else if all {
                None
            } else {
                outside_undecided_in
            },
            all_undecided_by: if all { None } else { outside_undecided_by },
            mode: mode.into(),
            cidrs,
            excluded_cidrs,
            chain: outbound_chain,
            probe: match outside {
                IpAddr::V4(a) => format!("{a}:{neutral_port}"),
                IpAddr::V6(a) => format!("[{a}]:{neutral_port}"),
            },
            notes: outbound_notes.into_iter().collect(),
        },
        intercepts_all_outbound: all,
        proxy_uid: query.proxy_uid,
        proxy_uid_excluded,
        proxy_uid_undecided_by,
        vip: query.vip.map(|v| v.to_string()),
        vip_port,
        vip_intercepted: vip_eval.as_ref().and_then(Evaluation::intercepted),
        vip_interception_path: vip_eval
            .as_ref()
            .map(Evaluation::representative_path)
            .unwrap_or_default(),
        vip_interception_notes: vip_eval
            .as_ref()
            .map(Evaluation::all_notes)
            .unwrap_or_default(),
        vip_fix,
        inbound: Inbound {
            all_ports,
            redirected_ports,
            excluded_ports,
            chain: inbound_chain,
            notes: inbound_notes.into_iter().collect(),
        },
        serving_ports,
        dropped_ports: dropped_ports.into_iter().collect(),
        notes,
        error: None,
    }
}

/// The rule `rule` of `chain` (1-based), if the path step names one.
fn rule_at<'t>(table: &'t Table, chain: &str, position: usize) -> Option<&'t Rule> {
    let at = *table.index.get(chain)?;
    table.chains.get(at)?.rules.get(position.checked_sub(1)?)
}

/// Where and how to add the VIP: the deepest rule on an intercepted connection's path that
/// sends it on towards the proxy, in a chain the VIP's connection also went through; the
/// new rule goes where the VIP's connection leaves that chain today.
fn vip_fix_for(
    table: &Table,
    vip: IpAddr,
    table_name: &str,
    ipv6: bool,
    intercepted: &[PathStep],
    vip_path: &[PathStep],
    entries: &[usize],
) -> Option<VipFix> {
    // Chains the VIP's walk was in: those its steps happened in, those it jumped to (a chain
    // it fell through shows no step of its own) and where it started.
    let mut visited: BTreeSet<&str> = entries
        .iter()
        .filter_map(|&at| table.chains.get(at))
        .map(|c| c.name.as_str())
        .collect();
    for step in vip_path {
        visited.insert(step.chain.as_str());
        if let Some(target) =
            rule_at(table, &step.chain, step.rule).and_then(|r| r.target.as_deref())
            && table.index.contains_key(target)
        {
            visited.insert(target);
        }
    }
    let anchor = intercepted.iter().rev().find_map(|step| {
        let rule = rule_at(table, &step.chain, step.rule)?;
        let target = rule.target.as_deref()?;
        // A chain (a missing one named *REDIRECT* too: a partial `-L` excerpt leaves it
        // out, and the walk inferred the redirect from its name), or a redirect itself.
        let forwards =
            table.index.contains_key(target) || target.contains("REDIRECT") || target == "DNAT";
        (forwards && visited.contains(step.chain.as_str())).then_some(rule)
    })?;
    let chain_at = *table.index.get(&anchor.chain)?;
    let chain = &table.chains[chain_at];
    let past_end = chain.rules.len() + 1;
    // Where the VIP left the chain: a RETURN/ACCEPT or goto there; otherwise (it fell
    // through, or came back from a jump and fell through) one past the last rule.
    let mut position = vip_path
        .iter()
        .filter(|s| s.chain == anchor.chain && s.rule > 0)
        .filter_map(|s| rule_at(table, &s.chain, s.rule))
        .find(|r| r.goto || matches!(r.target.as_deref(), Some("RETURN" | "ACCEPT")))
        .map_or(past_end, |r| r.position);
    let leaving_rule = (position < past_end).then(|| chain.rules[position - 1].raw.clone());
    // The proxy's own traffic must meet its exclusion before the new rule, or it loops.
    let last_exclusion = chain
        .rules
        .iter()
        .filter(|r| matches!(r.target.as_deref(), Some("RETURN" | "ACCEPT")))
        .filter(|r| r.owner_matches.iter().any(|o| !o.negated))
        .map(|r| r.position)
        .max();
    let mut still_bypassed_by = None;
    if let Some(last) = last_exclusion
        && position <= last
    {
        position = last + 1;
        still_bypassed_by = leaving_rule;
    }
    let target = anchor.target.clone()?;
    let host_prefix = if vip.is_ipv6() { 128 } else { 32 };
    let mut argv: Vec<String> = vec![
        if ipv6 { "ip6tables" } else { "iptables" }.into(),
        "-t".into(),
        table_name.into(),
        "-I".into(),
        anchor.chain.clone(),
        position.to_string(),
        "-d".into(),
        format!("{vip}/{host_prefix}"),
    ];
    // REDIRECT and DNAT to ports need the protocol; copy it from the rule modelled on.
    if let Some(protocol) = anchor
        .protocol
        .as_deref()
        .filter(|p| !matches!(*p, "all" | "0"))
        && !anchor.protocol_negated
    {
        argv.extend(["-p".into(), protocol.to_string()]);
    }
    argv.extend([if anchor.goto { "-g" } else { "-j" }.into(), target.clone()]);
    match target.as_str() {
        "REDIRECT" => {
            if let Some(ports) = &anchor.to_ports {
                argv.extend(["--to-ports".into(), ports.clone()]);
            }
        }
        "DNAT" => argv.extend(["--to-destination".into(), anchor.to_destination.clone()?]),
        _ => {}
    }
    Some(VipFix {
        chain: anchor.chain.clone(),
        position,
        target,
        argv,
        modelled_on: anchor.raw.clone(),
        still_bypassed_by,
    })
}

fn first_port(text: &str) -> Option<u16> {
    text.split(['-', ':']).next().and_then(|p| p.parse().ok())
}

/// Only an owner match (and a comment) narrows the rule: the id's traffic leaves whatever it is.
fn is_owner_only(rule: &Rule) -> bool {
    rule.protocol
        .as_deref()
        .is_none_or(|p| p == "all" || p == "0")
        && rule.source_specs.is_none()
        && rule.destination_specs.is_none()
        && rule.in_interface.is_none()
        && rule.out_interface.is_none()
        && rule.port_matches.is_empty()
        && rule.marks.is_empty()
        && rule.ctstates.is_empty()
        && !rule.has_unknown_matches
}

fn looks_inbound(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.contains("INBOUND") || upper.contains("PRERT") || upper.contains("PREROUTING")
}

fn names(table: &Table, at: &[usize]) -> String {
    at.iter()
        .filter_map(|&i| table.chains.get(i))
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// User chains nothing in the text jumps to: where a partial listing's walk can start.
fn unreferenced_user_chains(table: &Table, counted: &HashMap<usize, u32>) -> Vec<usize> {
    (0..table.chains.len())
        .filter(|at| !counted.contains_key(at))
        .filter(|&at| {
            !is_builtin_chain(&table.chains[at].name) && !table.chains[at].rules.is_empty()
        })
        .collect()
}

fn reachable(table: &Table, entries: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; table.chains.len()];
    let mut order = Vec::new();
    let mut queue: Vec<usize> = entries.to_vec();
    while let Some(at) = queue.pop() {
        if seen.get(at).copied().unwrap_or(true) {
            continue;
        }
        seen[at] = true;
        order.push(at);
        for rule in &table.chains[at].rules {
            if let Some(&next) = rule.target.as_deref().and_then(|t| table.index.get(t)) {
                queue.push(next);
            }
        }
    }
    order
}

/// Networks named by `-d` in chains reachable from OUTPUT, and whether the rule naming
/// them keeps traffic away from the proxy (RETURN/ACCEPT, or `! -d`).
fn destination_candidates(table: &Table, reach: &[usize]) -> Vec<(Cidr, bool)> {
    let mut found = Vec::new();
    for &at in reach {
        for rule in &table.chains[at].rules {
            let exits = rule.destination_negated
                || matches!(rule.target.as_deref(), Some("RETURN" | "ACCEPT"));
            for spec in rule.destination_specs.iter().flatten() {
                if let AddrSpec::Net(c) = spec
                    && c.is_v6() == table.ipv6
                {
                    found.push((*c, exits));
                }
            }
        }
    }
    found
}

/// A public address no `-d` rule names, so that it stands for "anywhere else".
fn outside_address(table: &Table) -> IpAddr {
    let candidates: Vec<IpAddr> = if table.ipv6 {
        vec![
            IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
            IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
        ]
    } else {
        vec![
            IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
            IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
            IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
        ]
    };
    let named: Vec<Cidr> = table
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .flat_map(|r| r.destination_specs.iter().flatten())
        .filter_map(|s| match s {
            AddrSpec::Net(c) => Some(*c),
            AddrSpec::Name(_) => None,
        })
        .collect();
    candidates
        .iter()
        .copied()
        .find(|a| !named.iter().any(|c| c.contains(*a)))
        .unwrap_or(candidates[0])
}
