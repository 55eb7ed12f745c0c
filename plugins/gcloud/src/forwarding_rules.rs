//! Forwarding rules; Traffic Director needs one with the INTERNAL_SELF_MANAGED scheme in
//! the proxies' VPC network.

use crate::json::{ParseError, from_json, last_segment, nullable};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

const SELF_MANAGED: &str = "INTERNAL_SELF_MANAGED";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ForwardingRule {
    name: String,
    load_balancing_scheme: Option<String>,
    network: Option<String>,
    #[serde(rename = "IPAddress")]
    ip_address: Option<String>,
    #[serde(rename = "IPProtocol")]
    ip_protocol: Option<String>,
    port_range: Option<String>,
    #[serde(deserialize_with = "nullable")]
    ports: Vec<String>,
    target: Option<String>,
    region: Option<String>,
}

/// The project's forwarding rules.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ForwardingRulesFacts {
    /// Every rule, in gcloud's order.
    pub rules: Vec<RuleFacts>,
    /// How many rules.
    pub count: usize,
    /// Names of the rules with scheme INTERNAL_SELF_MANAGED (Traffic Director's).
    pub self_managed: Vec<String>,
    /// Networks (short names) with at least one INTERNAL_SELF_MANAGED rule, sorted.
    pub self_managed_networks: Vec<String>,
    /// With the `network` param: an INTERNAL_SELF_MANAGED rule exists in that network.
    pub has_self_managed_rule_in_network: Option<bool>,
}

/// One forwarding rule.
#[derive(Serialize, JsonSchema, Debug)]
pub struct RuleFacts {
    /// Rule name.
    pub name: String,
    /// e.g. "INTERNAL_SELF_MANAGED", "EXTERNAL", "INTERNAL".
    pub load_balancing_scheme: Option<String>,
    /// Network short name (last segment of the URL).
    pub network: Option<String>,
    /// The VIP (`IPAddress`); "0.0.0.0" for a Traffic Director catch-all.
    pub ip_address: Option<String>,
    /// `IPProtocol`, e.g. "TCP".
    pub ip_protocol: Option<String>,
    /// e.g. "80-80".
    pub port_range: Option<String>,
    /// `ports`, for rules that list them.
    pub ports: Vec<String>,
    /// Target short name, e.g. a target HTTP proxy.
    pub target: Option<String>,
    /// Region short name; null for global rules.
    pub region: Option<String>,
}

/// Parses `gcloud compute forwarding-rules list --format=json`.
pub fn parse_forwarding_rules(
    text: &str,
    network: Option<&str>,
) -> Result<ForwardingRulesFacts, ParseError> {
    let raw: Vec<ForwardingRule> = from_json("a list of forwarding rules", text)?;
    let rules: Vec<RuleFacts> = raw
        .into_iter()
        .map(|r| RuleFacts {
            name: r.name,
            load_balancing_scheme: r.load_balancing_scheme,
            network: r.network.as_deref().map(last_segment),
            ip_address: r.ip_address,
            ip_protocol: r.ip_protocol,
            port_range: r.port_range,
            ports: r.ports,
            target: r.target.as_deref().map(last_segment),
            region: r.region.as_deref().map(last_segment),
        })
        .collect();
    let self_managed: Vec<&RuleFacts> = rules
        .iter()
        .filter(|r| r.load_balancing_scheme.as_deref() == Some(SELF_MANAGED))
        .collect();
    let mut self_managed_networks: Vec<String> = self_managed
        .iter()
        .filter_map(|r| r.network.clone())
        .collect();
    self_managed_networks.sort();
    self_managed_networks.dedup();
    let wanted = network.map(last_segment);
    Ok(ForwardingRulesFacts {
        has_self_managed_rule_in_network: wanted.map(|n| self_managed_networks.contains(&n)),
        self_managed: self_managed.iter().map(|r| r.name.clone()).collect(),
        self_managed_networks,
        count: rules.len(),
        rules,
    })
}
