//! A project's IAM policy; the guide: the proxies' service account needs permission to use
//! the Traffic Director API.

use crate::json::{ParseError, from_json, nullable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triage_sdk::JsonSchema;

/// Roles that let a service account fetch configuration from Traffic Director: the current
/// `roles/trafficdirector.client`, and `roles/compute.networkViewer`, which the older setup
/// guides granted instead.
pub const TD_CLIENT_ROLES: [&str; 2] = [
    "roles/trafficdirector.client",
    "roles/compute.networkViewer",
];

#[derive(Deserialize, Default)]
#[serde(default)]
struct Policy {
    #[serde(deserialize_with = "nullable")]
    bindings: Vec<Binding>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Binding {
    role: String,
    #[serde(deserialize_with = "nullable")]
    members: Vec<String>,
    condition: Option<serde::de::IgnoredAny>,
}

/// The policy's bindings, by role and by member.
#[derive(Serialize, JsonSchema, Debug)]
pub struct IamFacts {
    /// Every binding.
    pub bindings: Vec<BindingFacts>,
    /// Each member ("serviceAccount:…", "user:…") with its roles, sorted.
    pub roles_by_member: BTreeMap<String, Vec<String>>,
    /// Members holding one of the Traffic Director client roles unconditionally.
    pub members_with_td_client_role: Vec<String>,
    /// With the `member` param: that member's roles (unconditional and conditional).
    pub member_roles: Option<Vec<String>>,
    /// With the `member` param: it holds roles/trafficdirector.client or
    /// roles/compute.networkViewer without a condition.
    pub has_td_client_role: Option<bool>,
}

/// One binding.
#[derive(Serialize, JsonSchema, Debug)]
pub struct BindingFacts {
    /// e.g. "roles/trafficdirector.client".
    pub role: String,
    /// Members granted the role.
    pub members: Vec<String>,
    /// The binding has an IAM condition, so it may not apply.
    pub conditional: bool,
}

/// Parses `gcloud projects get-iam-policy PROJECT --format=json`. `member` may carry its
/// type prefix ("serviceAccount:x@…") or not ("x@…").
pub fn parse_iam_policy(text: &str, member: Option<&str>) -> Result<IamFacts, ParseError> {
    let policy: Policy = from_json("an IAM policy", text)?;
    let bindings: Vec<BindingFacts> = policy
        .bindings
        .into_iter()
        .map(|b| BindingFacts {
            role: b.role,
            members: b.members,
            conditional: b.condition.is_some(),
        })
        .collect();

    let mut roles_by_member: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in &bindings {
        for m in &b.members {
            roles_by_member
                .entry(m.clone())
                .or_default()
                .push(b.role.clone());
        }
    }
    for roles in roles_by_member.values_mut() {
        roles.sort();
        roles.dedup();
    }

    let is_td_binding =
        |b: &&BindingFacts| !b.conditional && TD_CLIENT_ROLES.contains(&b.role.as_str());
    let mut members_with_td_client_role: Vec<String> = bindings
        .iter()
        .filter(is_td_binding)
        .flat_map(|b| b.members.iter().cloned())
        .collect();
    members_with_td_client_role.sort();
    members_with_td_client_role.dedup();

    let matches = |candidate: &str, wanted: &str| {
        candidate == wanted
            || (!wanted.contains(':')
                && candidate
                    .split_once(':')
                    .is_some_and(|(_, id)| id == wanted))
    };
    let member_roles = member.map(|wanted| {
        let mut roles: Vec<String> = roles_by_member
            .iter()
            .filter(|(candidate, _)| matches(candidate, wanted))
            .flat_map(|(_, roles)| roles.iter().cloned())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    });
    let has_td_client_role = member.map(|wanted| {
        members_with_td_client_role
            .iter()
            .any(|candidate| matches(candidate, wanted))
    });

    Ok(IamFacts {
        bindings,
        roles_by_member,
        members_with_td_client_role,
        member_roles,
        has_td_client_role,
    })
}
