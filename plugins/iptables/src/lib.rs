//! Probe: netfilter rules from `iptables-save`, `iptables -S` and `iptables -L`, parsed into
//! one model, with an evaluator that says whether traffic would reach the proxy.

mod addr;
mod eval;
mod facts;
mod ip6;
mod listing;
mod model;
mod parse;
pub mod pod;
mod rule;
mod services;
mod tokenize;

pub use eval::PathStep;
pub use facts::{
    ChainFacts, Inbound, Outbound, Query, RulesFacts, ServingPort, VipFix, parse_rules,
};
pub use ip6::{
    DISABLE_IPV6_PATH, Ip6tablesStatus, KernelIpv6, status_from_run, status_not_started,
};
pub use model::{MarkMatch, Rule};
pub use parse::ParseError;

use serde::{Deserialize, Serialize};
use triage_sdk::{Action, CapabilityError, Facts, JsonSchema, Manifest, Params, Probe, ProbeError};

/// A netfilter table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableName {
    #[default]
    Nat,
    Filter,
    Mangle,
    Raw,
    Security,
}

impl TableName {
    pub fn as_str(self) -> &'static str {
        match self {
            TableName::Nat => "nat",
            TableName::Filter => "filter",
            TableName::Mangle => "mangle",
            TableName::Raw => "raw",
            TableName::Security => "security",
        }
    }
}

/// Which command prints the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RulesCommand {
    /// `iptables-save -t TABLE`
    #[default]
    Save,
    /// `iptables -t TABLE -S`
    Spec,
    /// `iptables -t TABLE -L -n -v` (`-v` prints the interface columns; without them
    /// Istio's `-o lo` rules read as "return everything")
    List,
}

fn default_table() -> TableName {
    TableName::Nat
}

fn default_command() -> RulesCommand {
    RulesCommand::Save
}

/// Params of `rules`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesParams {
    /// The table to read.
    #[serde(default = "default_table")]
    pub table: TableName,
    /// The command that prints it: `save`, `spec` or `list`.
    #[serde(default = "default_command")]
    pub command: RulesCommand,
    /// Read the IPv6 rules (ip6tables-save / ip6tables) instead.
    #[serde(default)]
    pub ipv6: bool,
    /// A service VIP to check interception for, e.g. `10.0.0.1`.
    #[serde(default)]
    pub vip: Option<String>,
    /// The VIP's port; without it the check uses a port no rule names.
    #[serde(default)]
    pub port: Option<u16>,
    /// The uid the proxy runs as, to check it is excluded from interception.
    #[serde(default)]
    pub proxy_uid: Option<u32>,
    /// Ports the workload serves, to check inbound interception and drops for each.
    #[serde(default)]
    pub serving_ports: Vec<u16>,
    /// Read the rules with `sudo -n iptables -t TABLE -L -n -v`, the guide's `sudo iptables
    /// -L -t nat`: for a target that logs in as a user, not root (`gcloud://`, where gcloud
    /// compute ssh logs in as you). The `list` form of the IPv4 nat and filter tables only
    /// (the default policy allows exactly those two command lines). A refusal (gcloud
    /// compute ssh, sudo, or iptables itself) is returned as `error`, not as a failed step,
    /// so the runbook can say the rules could not be seen and how to fix that.
    #[serde(default)]
    pub sudo: bool,
}

/// Why the rules could not be read (only with `sudo`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadRefusal {
    /// Who refused: `transport` (gcloud compute ssh or ssh could not log in: no key, OS
    /// Login denied, port 22 closed, the instance not running), `sudo` (logged in, but
    /// `sudo -n` was refused: a password is required, or the account may not use sudo), or
    /// `iptables` (it ran and failed).
    pub refused_by: String,
    /// The refusal as it was given (its first telling line).
    pub message: String,
    /// The command line the plugin asked for.
    pub command: String,
}

/// What `rules` returns when, with `sudo`, the rules could not be read: the table and why,
/// and no rule facts at all, so that no condition over the rules can hold.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RulesUnread {
    /// The table asked for.
    pub table: String,
    /// Why it could not be read.
    pub error: ReadRefusal,
}

impl RulesParams {
    pub fn argv(&self) -> Vec<&'static str> {
        self.argv_for(self.command)
    }

    /// The one command line `sudo` reads with; the params it cannot go with are refused.
    pub fn sudo_argv(&self) -> Result<Vec<&'static str>, ProbeError> {
        if self.ipv6
            || self.command != RulesCommand::List
            || !matches!(self.table, TableName::Nat | TableName::Filter)
        {
            return Err(ProbeError::invalid_params(
                "sudo reads the IPv4 nat or filter table with `command: list` only (sudo -n iptables -t nat|filter -L -n -v)",
            ));
        }
        let mut argv = vec!["sudo", "-n"];
        argv.extend(self.argv_for(RulesCommand::List));
        Ok(argv)
    }

    /// The requested command first, then the other two forms of the same table: they all
    /// parse into the same facts, and a bundle recorded by another runbook (or by hand)
    /// often holds only one of them.
    pub fn argvs(&self) -> Vec<Vec<&'static str>> {
        let mut order = vec![self.command];
        order.extend(
            [RulesCommand::Save, RulesCommand::Spec, RulesCommand::List]
                .into_iter()
                .filter(|c| *c != self.command),
        );
        order.into_iter().map(|c| self.argv_for(c)).collect()
    }

    fn argv_for(&self, command: RulesCommand) -> Vec<&'static str> {
        let table = self.table.as_str();
        match (command, self.ipv6) {
            (RulesCommand::Save, false) => vec!["iptables-save", "-t", table],
            (RulesCommand::Save, true) => vec!["ip6tables-save", "-t", table],
            (RulesCommand::Spec, false) => vec!["iptables", "-t", table, "-S"],
            (RulesCommand::Spec, true) => vec!["ip6tables", "-t", table, "-S"],
            (RulesCommand::List, false) => vec!["iptables", "-t", table, "-L", "-n", "-v"],
            (RulesCommand::List, true) => vec!["ip6tables", "-t", table, "-L", "-n", "-v"],
        }
    }

    pub fn query(&self) -> Result<Query, ProbeError> {
        let vip = match self.vip.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(text) => {
                let address = text.split_once('/').map_or(text, |(a, _)| a);
                let address = address.trim_start_matches('[').trim_end_matches(']');
                Some(address.parse().map_err(|_| {
                    ProbeError::invalid_params(format!("vip `{text}` is not an IP address"))
                })?)
            }
        };
        Ok(Query {
            table: self.table.as_str().into(),
            ipv6: self.ipv6,
            vip,
            port: self.port,
            proxy_uid: self.proxy_uid,
            serving_ports: self.serving_ports.clone(),
        })
    }
}

/// Params of `ip6tables`: none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ip6tablesParams {}

/// The plugin.
pub struct IptablesProbe;

impl Probe for IptablesProbe {
    fn describe() -> Manifest {
        Manifest::new(
            "iptables",
            env!("CARGO_PKG_VERSION"),
            "Netfilter rules (iptables-save, iptables -S, iptables -L) as facts: chains, owner exclusions, and whether outbound, VIP and inbound traffic is redirected to the proxy",
        )
        .action(
            Action::new::<RulesParams, RulesFacts>(
                "rules",
                "Reads one table's rules and says what they intercept: chains, uid exclusions, outbound mode, a VIP's path, inbound ports",
            )
            .exec(&["iptables-save", "-t", "{table}"])
            .exec(&["ip6tables-save", "-t", "{table}"])
            .exec(&["iptables", "-t", "{table}", "-S"])
            .exec(&["ip6tables", "-t", "{table}", "-S"])
            .exec(&["iptables", "-t", "{table}", "-L", "-n", "-v"])
            .exec(&["ip6tables", "-t", "{table}", "-L", "-n", "-v"])
            .exec(&["sudo", "-n", "iptables", "-t", "{table}", "-L", "-n", "-v"]),
        )
        .action({
            let action = Action::new::<pod::PodRulesParams, pod::PodRulesFacts>(
                "pod-rules",
                "Reads a pod's nat table with kubectl exec into its Envoy sidecar (iptables-save, else iptables -S) and says what it intercepts; a refusal (no NET_ADMIN, no iptables in the image) is the answer's error",
            );
            pod::pod_argvs("{pod}", "{namespace}", "{container}")
                .iter()
                .fold(action, |action, argv| action.exec(argv))
        })
        .action(
            Action::new::<Ip6tablesParams, Ip6tablesStatus>(
                "ip6tables",
                "Checks that ip6tables' nat table works (it fails until a reboot on some console-created VMs)",
            )
            .exec(&["ip6tables", "-t", "nat", "-S"])
            .read_file(DISABLE_IPV6_PATH),
        )
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "rules" => {
                let p: RulesParams = params.parse()?;
                let query = p.query()?;
                let text = if p.sudo {
                    match read_rules_with_sudo(&p)? {
                        Ok(text) => text,
                        Err(error) => {
                            return Facts::new(&RulesUnread {
                                table: p.table.as_str().into(),
                                error,
                            });
                        }
                    }
                } else {
                    read_rules(&p)?
                };
                let facts =
                    parse_rules(&text, &query).map_err(|e| ProbeError::bad_input(e.to_string()))?;
                Facts::new(&facts)
            }
            "pod-rules" => {
                let p: pod::PodRulesParams = params.parse()?;
                let facts = pod::read_pod_rules(&p, &mut |argv| triage_sdk::exec(argv))?;
                Facts::new(&facts)
            }
            "ip6tables" => {
                let _: Ip6tablesParams = params.parse()?;
                // Read before ip6tables runs, and never fatal: when the kernel has no IPv6,
                // that (not a module or the package) is why ip6tables fails.
                let kernel_ipv6 = match triage_sdk::read_file_string(DISABLE_IPV6_PATH, 64) {
                    Ok(text) => KernelIpv6::from_read(Ok(&text)),
                    Err(CapabilityError::Failed(message)) => KernelIpv6::from_read(Err(&message)),
                    Err(other) => KernelIpv6::unknown(&other.to_string()),
                };
                let status = match triage_sdk::exec(&["ip6tables", "-t", "nat", "-S"]) {
                    Ok(out) => status_from_run(
                        out.status,
                        &out.stdout_text(),
                        &out.stderr_text(),
                        kernel_ipv6,
                    ),
                    Err(CapabilityError::Failed(message)) => {
                        status_not_started(&message, kernel_ipv6)
                    }
                    Err(other) => return Err(other.into()),
                };
                Facts::new(&status)
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

/// The table's text through `sudo -n iptables … -L -n -v`, or who refused and why. A
/// bundle that does not hold the call, or a policy that denies it, is the step's error as
/// anywhere else: those say nothing about the target.
fn read_rules_with_sudo(p: &RulesParams) -> Result<Result<String, ReadRefusal>, ProbeError> {
    let argv = p.sudo_argv()?;
    let command = argv.join(" ");
    let refusal = |refused_by: &str, message: String| ReadRefusal {
        refused_by: refused_by.into(),
        message,
        command: command.clone(),
    };
    match triage_sdk::exec(&argv) {
        Ok(out) if out.status == 0 => Ok(Ok(out.stdout_text())),
        Ok(out) => {
            let stderr = out.stderr_text();
            let lines: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
                .collect();
            // sudo prefixes what it says with `sudo:`; anything else came from iptables.
            let by_sudo = lines.iter().find(|l| l.starts_with("sudo:"));
            let (who, line) = match by_sudo {
                Some(l) => ("sudo", Some(*l)),
                None => ("iptables", lines.first().copied()),
            };
            Ok(Err(refusal(
                who,
                format!(
                    "exit status {}{}",
                    out.status,
                    line.map(|l| format!(": {l}")).unwrap_or_default()
                ),
            )))
        }
        Err(CapabilityError::Failed(message)) | Err(CapabilityError::TimedOut(message)) => {
            Ok(Err(refusal("transport", message)))
        }
        Err(other) => Err(other.into()),
    }
}

/// The table's text from the first form that can be had. Another form is tried only when
/// the call itself could not happen: a bundle that does not hold it (`not captured`), or a
/// command that could not be started (e.g. no `iptables-save` installed). A command that
/// ran and failed (permission denied, no such table) would fail the same way in any form,
/// and is reported as it is.
fn read_rules(p: &RulesParams) -> Result<String, ProbeError> {
    let mut lacking = Vec::new();
    let mut first_error = None;
    for argv in p.argvs() {
        match triage_sdk::exec(&argv) {
            Ok(out) if out.status == 0 => return Ok(out.stdout_text()),
            Ok(out) => {
                let stderr = out.stderr_text();
                let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
                return Err(CapabilityError::Failed(format!(
                    "`{}` exited with status {}{}",
                    argv.join(" "),
                    out.status,
                    first.map(|l| format!(": {l}")).unwrap_or_default()
                ))
                .into());
            }
            Err(CapabilityError::NotCaptured(message)) => {
                lacking.push(format!("`{}`", argv.join(" ")));
                first_error.get_or_insert(CapabilityError::NotCaptured(message));
            }
            Err(CapabilityError::Failed(message)) => {
                first_error.get_or_insert(CapabilityError::Failed(message));
            }
            Err(other) => return Err(other.into()),
        }
    }
    match first_error {
        Some(CapabilityError::NotCaptured(_)) if lacking.len() == p.argvs().len() => {
            Err(CapabilityError::NotCaptured(format!(
                "the bundle holds none of {}: record one of them (e.g. `triage probe iptables rules --with table={} --record DIR`)",
                lacking.join(", "),
                p.table.as_str()
            ))
            .into())
        }
        Some(e) => Err(e.into()),
        None => Err(ProbeError::bad_input("no command to read the rules with")),
    }
}

triage_sdk::register_probe!(IptablesProbe);
