//! Walks a table's chains with one test packet, the way netfilter would, to answer
//! "would this connection be sent to the proxy?".
//!
//! The packet is a new TCP connection. What the evaluator cannot know (the packet's
//! source address, interface names other than `lo`, user names behind `--uid-owner`,
//! unmodelled matches) it either assumes and says so in the notes, or, for matches it
//! cannot judge at all, follows both ways and reports every outcome.

use crate::addr::AddrSpec;
use crate::model::{Rule, extension_target};
use crate::parse::Table;
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use triage_sdk::JsonSchema;

/// Chains nest at most this deep (the kernel's own limit is lower in practice).
const MAX_DEPTH: usize = 64;
/// Rules looked at for one packet before giving up.
const MAX_STEPS: usize = 200_000;
/// Undecidable rules followed both ways for one packet.
const MAX_BRANCHES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by a local process: OUTPUT.
    Outbound,
    /// Arriving from the network: PREROUTING, INPUT.
    Inbound,
}

/// Who owns the socket a packet comes from, as `-m owner` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Id(u32),
    /// Some application id that no rule names.
    Unlisted,
    /// Arriving packets have no local socket.
    NoSocket,
}

#[derive(Debug, Clone)]
pub struct TestPacket {
    pub direction: Direction,
    pub dst: IpAddr,
    pub dport: u16,
    pub uid: Owner,
    pub gid: Owner,
}

/// One step of the walk: a rule that matched and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PathStep {
    /// Chain the step happened in.
    pub chain: String,
    /// 1-based rule position in that chain; 0 for the end of the chain (its policy).
    pub rule: usize,
    /// What happened: `jump ISTIO_OUTPUT`, `RETURN`, `REDIRECT --to-ports 15001`,
    /// `assumed match: ...`, `end of chain, policy ACCEPT`.
    pub action: String,
    /// The rule as written; null for a chain's end.
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sent to a local proxy port (REDIRECT, TPROXY, DNAT to loopback).
    Intercepted { inferred: bool },
    /// Left the table untouched by any interception rule.
    NotIntercepted,
    /// Dropped or rejected; the text names the rule or policy.
    Dropped(String),
    /// The walk could not finish; the text says why.
    Undecided(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub path: Vec<PathStep>,
}

#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub outcomes: Vec<Outcome>,
    pub notes: BTreeSet<String>,
}

impl Evaluation {
    /// True when every way the walk could go intercepts, false when none does.
    pub fn intercepted(&self) -> Option<bool> {
        let hits = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Intercepted { .. }))
            .count();
        let undecided = self
            .outcomes
            .iter()
            .any(|o| matches!(o.verdict, Verdict::Undecided(_)));
        if hits == self.outcomes.len() && hits > 0 {
            Some(true)
        } else if hits == 0 && !undecided {
            Some(false)
        } else {
            None
        }
    }

    /// True when every way the walk could go drops the connection, false when none does.
    pub fn dropped(&self) -> Option<bool> {
        let drops = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Dropped(_)))
            .count();
        let undecided = self
            .outcomes
            .iter()
            .any(|o| matches!(o.verdict, Verdict::Undecided(_)));
        if drops == self.outcomes.len() && drops > 0 {
            Some(true)
        } else if drops == 0 && !undecided {
            Some(false)
        } else {
            None
        }
    }

    /// Why the walk has no single answer: the first rule, as written, whose match it could
    /// not evaluate (an ipset, an unknown module) and that it therefore followed both ways,
    /// or else the reason the walk stopped. Null when every outcome agrees on `verdict`.
    pub fn undecided_by(&self, verdict: impl Fn(&Evaluation) -> Option<bool>) -> Option<String> {
        if verdict(self).is_some() {
            return None;
        }
        self.branched_step()
            .and_then(|s| s.raw.clone())
            .or_else(|| {
                self.outcomes.iter().find_map(|o| match &o.verdict {
                    Verdict::Undecided(why) => Some(why.clone()),
                    _ => None,
                })
            })
    }

    /// The chain holding the rule [`Self::undecided_by`] names, when it is a rule: the chain
    /// to list by hand (`iptables -t nat -L CHAIN -n -v`). Null when every outcome agrees on
    /// `verdict`, or the walk stopped for another reason.
    pub fn undecided_in(&self, verdict: impl Fn(&Evaluation) -> Option<bool>) -> Option<String> {
        if verdict(self).is_some() {
            return None;
        }
        self.branched_step().map(|s| s.chain.clone())
    }

    /// The first step, on any way of the walk, where it met a rule it could not evaluate
    /// and followed it both ways.
    fn branched_step(&self) -> Option<&PathStep> {
        self.outcomes.iter().flat_map(|o| &o.path).find(|s| {
            s.raw.is_some()
                && (s.action.starts_with("assumed match:")
                    || s.action.starts_with("assumed no match:"))
        })
    }

    pub fn dropped_by(&self) -> Option<String> {
        self.outcomes.iter().find_map(|o| match &o.verdict {
            Verdict::Dropped(by) => Some(by.clone()),
            _ => None,
        })
    }

    /// The path of the first intercepting outcome, or of the first outcome.
    pub fn representative_path(&self) -> Vec<PathStep> {
        self.outcomes
            .iter()
            .find(|o| matches!(o.verdict, Verdict::Intercepted { .. }))
            .or_else(|| self.outcomes.first())
            .map(|o| o.path.clone())
            .unwrap_or_default()
    }

    /// The first user chain the representative path entered.
    pub fn first_user_chain(&self, entries: &[String]) -> Option<String> {
        self.representative_path()
            .into_iter()
            .map(|s| s.chain)
            .find(|c| !entries.contains(c) && !crate::model::is_builtin_chain(c))
    }

    pub fn all_notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.notes.iter().cloned().collect();
        for o in &self.outcomes {
            if let Verdict::Undecided(why) = &o.verdict {
                notes.push(format!("undecided: {why}"));
            }
        }
        notes
    }
}

enum Tri {
    Yes,
    No,
    Unknown(String),
}

#[derive(Clone)]
struct Frame {
    chain: usize,
    next: usize,
}

struct State {
    entry_pos: usize,
    stack: Vec<Frame>,
    path: Vec<PathStep>,
}

pub struct Evaluator<'a> {
    table: &'a Table,
    /// Rules left for all walks together, so that many probes on a huge table stay bounded.
    budget: usize,
}

impl<'a> Evaluator<'a> {
    pub fn new(table: &'a Table, budget: usize) -> Self {
        Evaluator { table, budget }
    }

    /// Walks `entries` (chain indexes, e.g. PREROUTING then INPUT) in order with `packet`.
    pub fn evaluate(&mut self, entries: &[usize], packet: &TestPacket) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let Some(&first) = entries.first() else {
            evaluation.outcomes.push(Outcome {
                verdict: Verdict::NotIntercepted,
                path: Vec::new(),
            });
            return evaluation;
        };
        let mut work = vec![State {
            entry_pos: 0,
            stack: vec![Frame {
                chain: first,
                next: 0,
            }],
            path: Vec::new(),
        }];
        let mut steps = 0usize;
        let mut branches = 1usize;
        while let Some(mut state) = work.pop() {
            let verdict = self.walk(
                &mut state,
                entries,
                packet,
                &mut work,
                &mut steps,
                &mut branches,
                &mut evaluation.notes,
            );
            evaluation.outcomes.push(Outcome {
                verdict,
                path: state.path,
            });
        }
        evaluation
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        state: &mut State,
        entries: &[usize],
        packet: &TestPacket,
        work: &mut Vec<State>,
        steps: &mut usize,
        branches: &mut usize,
        notes: &mut BTreeSet<String>,
    ) -> Verdict {
        let table = self.table;
        loop {
            let Some(frame) = state.stack.last_mut() else {
                return Verdict::Undecided("empty call stack".into());
            };
            let (chain_at, rule_at) = (frame.chain, frame.next);
            frame.next = frame.next.saturating_add(1);
            let Some(chain) = table.chains.get(chain_at) else {
                return Verdict::Undecided("chain index out of range".into());
            };
            let Some(rule) = chain.rules.get(rule_at) else {
                if state.stack.len() > 1 {
                    state.stack.pop();
                    continue;
                }
                match leave_entry(table, state, entries, true) {
                    Some(verdict) => return verdict,
                    None => continue,
                }
            };
            *steps += 1;
            if *steps > MAX_STEPS || self.budget == 0 {
                return Verdict::Undecided("step bound reached before the walk finished".into());
            }
            self.budget -= 1;

            match rule_matches(rule, packet, notes) {
                Tri::No => continue,
                Tri::Yes => {}
                Tri::Unknown(reason) => {
                    if *branches >= MAX_BRANCHES {
                        return Verdict::Undecided(format!(
                            "too many undecidable rules (last: {reason})"
                        ));
                    }
                    *branches += 1;
                    let mut other = State {
                        entry_pos: state.entry_pos,
                        stack: state.stack.clone(),
                        path: state.path.clone(),
                    };
                    other
                        .path
                        .push(step(rule, format!("assumed no match: {reason}")));
                    work.push(other);
                    state
                        .path
                        .push(step(rule, format!("assumed match: {reason}")));
                }
            }

            let Some(target) = rule.target.as_deref() else {
                continue;
            };
            match target {
                "RETURN" => {
                    state.path.push(step(rule, "RETURN".into()));
                    if state.stack.len() > 1 {
                        state.stack.pop();
                        continue;
                    }
                    if let Some(verdict) = leave_entry(table, state, entries, true) {
                        return verdict;
                    }
                }
                "ACCEPT" | "SNAT" | "MASQUERADE" | "NETMAP" => {
                    state.path.push(step(rule, target.into()));
                    if let Some(verdict) = leave_entry(table, state, entries, false) {
                        return verdict;
                    }
                }
                "DROP" | "REJECT" => {
                    state.path.push(step(rule, target.into()));
                    return Verdict::Dropped(rule.raw.clone());
                }
                "REDIRECT" | "TPROXY" => {
                    let port = rule
                        .to_ports
                        .clone()
                        .or(rule.on_port.map(|p| p.to_string()));
                    let action = match port {
                        Some(p) if target == "REDIRECT" => format!("REDIRECT --to-ports {p}"),
                        Some(p) => format!("TPROXY --on-port {p}"),
                        None => target.into(),
                    };
                    state.path.push(step(rule, action));
                    return Verdict::Intercepted { inferred: false };
                }
                "DNAT" => {
                    let to = rule.to_destination.clone().unwrap_or_default();
                    state
                        .path
                        .push(step(rule, format!("DNAT --to-destination {to}")));
                    return if to.starts_with("127.") || to.starts_with("[::1]") || to == "::1" {
                        Verdict::Intercepted { inferred: false }
                    } else {
                        Verdict::NotIntercepted
                    };
                }
                "QUEUE" | "NFQUEUE" | "SYNPROXY" | "CLUSTERIP" => {
                    state.path.push(step(rule, target.into()));
                    return Verdict::Undecided(format!("{target} hands the packet elsewhere"));
                }
                t if extension_target(t) == Some(false) => continue,
                t => {
                    let callee =
                        table.index.get(t).copied().filter(|&at| {
                            table.chains.get(at).is_some_and(|c| !c.rules.is_empty())
                        });
                    match callee {
                        Some(at) => {
                            if state.stack.len() >= MAX_DEPTH {
                                return Verdict::Undecided(format!(
                                    "jumps nest deeper than {MAX_DEPTH}"
                                ));
                            }
                            let verb = if rule.goto { "goto" } else { "jump" };
                            state.path.push(step(rule, format!("{verb} {t}")));
                            if rule.goto {
                                match state.stack.len() {
                                    1 => {
                                        // A goto from the entry chain: when the callee ends, so does the entry chain.
                                        if let Some(bottom) = state.stack.last_mut() {
                                            bottom.next = usize::MAX;
                                        }
                                    }
                                    _ => {
                                        state.stack.pop();
                                    }
                                }
                            }
                            state.stack.push(Frame { chain: at, next: 0 });
                        }
                        None => {
                            let present = table.index.contains_key(t);
                            let whereabouts = if present {
                                "has no rules in this text"
                            } else {
                                "is not in this text"
                            };
                            if t.to_ascii_uppercase().contains("REDIRECT") {
                                notes.insert(format!(
                                    "chain {t} {whereabouts}; taken by its name to redirect to the proxy"
                                ));
                                state.path.push(step(rule, format!("{verb} {t} (no rules shown; redirect inferred from the name)", verb = if rule.goto { "goto" } else { "jump" })));
                                return Verdict::Intercepted { inferred: true };
                            }
                            notes.insert(format!("chain {t} {whereabouts}; assumed to return"));
                        }
                    }
                }
            }
        }
    }
}

fn step(rule: &Rule, action: String) -> PathStep {
    PathStep {
        chain: rule.chain.clone(),
        rule: rule.position,
        action,
        raw: Some(rule.raw.clone()),
    }
}

/// The entry chain `state` is in has ended (fell off, RETURN or ACCEPT): apply its policy
/// and move to the next entry chain. `None` means the walk goes on.
fn leave_entry(
    table: &Table,
    state: &mut State,
    entries: &[usize],
    apply_policy: bool,
) -> Option<Verdict> {
    let chain = entries
        .get(state.entry_pos)
        .and_then(|&at| table.chains.get(at))?;
    let policy = chain.policy.as_deref().unwrap_or("ACCEPT");
    if apply_policy {
        if matches!(policy, "DROP" | "REJECT") {
            state.path.push(PathStep {
                chain: chain.name.clone(),
                rule: 0,
                action: format!("end of chain, policy {policy}"),
                raw: None,
            });
            return Some(Verdict::Dropped(format!(
                "policy {policy} of chain {}",
                chain.name
            )));
        }
        state.path.push(PathStep {
            chain: chain.name.clone(),
            rule: 0,
            action: format!("end of chain, policy {policy}"),
            raw: None,
        });
    }
    state.entry_pos += 1;
    match entries.get(state.entry_pos) {
        Some(&next) => {
            state.stack = vec![Frame {
                chain: next,
                next: 0,
            }];
            None
        }
        None => Some(Verdict::NotIntercepted),
    }
}

fn rule_matches(rule: &Rule, packet: &TestPacket, notes: &mut BTreeSet<String>) -> Tri {
    let mut unknown: Option<String> = None;
    let mut consider = |t: Tri| -> bool {
        match t {
            Tri::No => false,
            Tri::Yes => true,
            Tri::Unknown(why) => {
                unknown.get_or_insert(why);
                true
            }
        }
    };
    let negate = |inside: Tri, negated: bool| -> Tri {
        match inside {
            Tri::Yes if negated => Tri::No,
            Tri::No if negated => Tri::Yes,
            other => other,
        }
    };

    if let Some(protocol) = rule.protocol.as_deref() {
        let inside = matches!(protocol, "tcp" | "6" | "all" | "0");
        if !consider(negate(yes_no(inside), rule.protocol_negated)) {
            return Tri::No;
        }
    }
    if let Some(specs) = &rule.destination_specs
        && !consider(negate(
            destination_inside(specs, packet.dst),
            rule.destination_negated,
        ))
    {
        return Tri::No;
    }
    if let Some(specs) = &rule.source_specs
        && !consider(negate(
            source_inside(specs, packet, notes),
            rule.source_negated,
        ))
    {
        return Tri::No;
    }
    if let Some(name) = rule.out_interface.as_deref() {
        let inside = match packet.direction {
            Direction::Inbound => false,
            Direction::Outbound => {
                interface_is(name, packet.dst.is_loopback(), "leave through", notes)
            }
        };
        if !consider(negate(yes_no(inside), rule.out_interface_negated)) {
            return Tri::No;
        }
    }
    if let Some(name) = rule.in_interface.as_deref() {
        let inside = match packet.direction {
            Direction::Outbound => false,
            Direction::Inbound => interface_is(name, false, "arrive on", notes),
        };
        if !consider(negate(yes_no(inside), rule.in_interface_negated)) {
            return Tri::No;
        }
    }
    for ports in &rule.port_matches {
        let inside = if ports.destination {
            let known = ports
                .ranges
                .iter()
                .flatten()
                .any(|&(a, b)| (a..=b).contains(&packet.dport));
            if known {
                Tri::Yes
            } else if ports.ranges.iter().any(Option::is_none) {
                Tri::Unknown("a port name the evaluator does not know".into())
            } else {
                Tri::No
            }
        } else {
            let ephemeral = ports
                .ranges
                .iter()
                .flatten()
                .any(|&(a, b)| a <= 60999 && b >= 32768);
            if ephemeral {
                notes.insert(
                    "assumed the connection's ephemeral source port is outside any --sport range"
                        .into(),
                );
            }
            Tri::No
        };
        if !consider(negate(inside, ports.negated)) {
            return Tri::No;
        }
    }
    for owner in &rule.owner_matches {
        let who = if owner.uid { packet.uid } else { packet.gid };
        let inside = match who {
            Owner::NoSocket | Owner::Unlisted => Tri::No,
            Owner::Id(id) => match owner.range() {
                Some((a, b)) => yes_no((a..=b).contains(&id)),
                None => Tri::Unknown(format!(
                    "cannot tell whether {} {id} is {}",
                    if owner.uid { "uid" } else { "gid" },
                    owner.value
                )),
            },
        };
        if !consider(negate(inside, owner.negated)) {
            return Tri::No;
        }
    }
    for mark in &rule.marks {
        let inside = match parse_mark(&mark.value) {
            Some((value, mask)) => {
                notes
                    .insert("assumed the packet carries no firewall or connection mark (0)".into());
                yes_no(value & mask == value && value == 0)
            }
            None => Tri::Unknown(format!("mark value {} not understood", mark.value)),
        };
        if !consider(negate(inside, mark.negated)) {
            return Tri::No;
        }
    }
    if !rule.ctstates.is_empty() {
        let inside = rule.ctstates.iter().any(|s| s.eq_ignore_ascii_case("NEW"));
        if !consider(negate(yes_no(inside), rule.ctstates_negated)) {
            return Tri::No;
        }
    }
    if rule.has_unknown_matches {
        unknown.get_or_insert(format!(
            "unmodelled match `{}`",
            rule.unknown_options.join(" ")
        ));
    }
    match unknown {
        Some(why) => Tri::Unknown(why),
        None => Tri::Yes,
    }
}

fn yes_no(b: bool) -> Tri {
    if b { Tri::Yes } else { Tri::No }
}

fn destination_inside(specs: &[AddrSpec], dst: IpAddr) -> Tri {
    let mut names = Vec::new();
    for spec in specs {
        match spec {
            AddrSpec::Net(c) if c.contains(dst) => return Tri::Yes,
            AddrSpec::Net(_) => {}
            AddrSpec::Name(n) => names.push(n.as_str()),
        }
    }
    if names.is_empty() {
        Tri::No
    } else {
        Tri::Unknown(format!(
            "destination host name {} not resolved",
            names.join(",")
        ))
    }
}

/// The source of a test packet is the machine's own address, which the rules do not say.
fn source_inside(specs: &[AddrSpec], packet: &TestPacket, notes: &mut BTreeSet<String>) -> Tri {
    for spec in specs {
        match spec {
            AddrSpec::Net(c) if c.is_loopback_only() && !packet.dst.is_loopback() => {}
            AddrSpec::Net(c) => {
                notes.insert(format!("assumed the packet's source address is not in {c}"));
            }
            AddrSpec::Name(n) => {
                notes.insert(format!("assumed the packet's source address is not {n}"));
            }
        }
    }
    Tri::No
}

/// Only `lo` is known: a packet to a loopback address leaves through it, and no other
/// interface name can be checked, so the packet is assumed not to use it.
fn interface_is(name: &str, on_loopback: bool, verb: &str, notes: &mut BTreeSet<String>) -> bool {
    let matches_lo = match name.strip_suffix('+') {
        Some(prefix) => "lo".starts_with(prefix),
        None => name == "lo",
    };
    if on_loopback {
        return matches_lo;
    }
    if !matches_lo {
        notes.insert(format!(
            "assumed the packet does not {verb} interface {name}"
        ));
    }
    false
}

fn parse_mark(text: &str) -> Option<(u32, u32)> {
    let (value, mask) = match text.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (text, None),
    };
    let number = |t: &str| -> Option<u32> {
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => t.parse().ok(),
        }
    };
    Some((number(value)?, mask.map(number).unwrap_or(Some(u32::MAX))?))
}
