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

/// Roles that carry the Traffic Director client permissions among many others: the basic
/// roles Editor and Owner hold every `trafficdirector.networks.*` permission the client
/// role grants, so a service account holding one needs nothing more.
pub const BASIC_ROLES_WITH_TD_ACCESS: [&str; 2] = ["roles/editor", "roles/owner"];

/// Whether `role` lets its holder use Traffic Director (a client role, Editor or Owner).
pub fn gives_td_access(role: &str) -> bool {
    TD_CLIENT_ROLES.contains(&role) || BASIC_ROLES_WITH_TD_ACCESS.contains(&role)
}

/// One entry of `gcloud projects get-ancestors-iam-policy --format=json`: the project's,
/// each folder's and the organization's policy.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AncestorPolicy {
    #[serde(deserialize_with = "nullable")]
    id: String,
    #[serde(rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    policy: Policy,
}

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
    condition: Option<ConditionIn>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConditionIn {
    #[serde(deserialize_with = "nullable")]
    title: String,
    #[serde(deserialize_with = "nullable")]
    expression: String,
}

/// A binding's IAM condition, as written: triage shows it and never evaluates it (it is a
/// CEL expression over the request, e.g. its time or the resource's name).
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct ConditionFacts {
    /// The condition's title (may be empty).
    pub title: String,
    /// Its CEL expression, e.g. `request.time < timestamp("2020-04-01T00:00:00Z")`.
    pub expression: String,
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
    /// With the `member` param: it holds, by name and without a condition, a role that
    /// lets it use Traffic Director: a client role, or roles/editor or roles/owner.
    pub has_td_access: Option<bool>,
    /// With the `member` param: where that access comes from, e.g.
    /// "roles/editor on project td-demo-project".
    pub td_access_grants: Vec<String>,
    /// Grants of such a role to groups, domains or all authenticated users, which the
    /// member may belong to; membership cannot be read from the policy.
    pub td_access_via_groups: Vec<String>,
    /// The e-mail addresses of the groups among those (`group:` members), to check the
    /// member's membership of.
    pub td_access_groups: Vec<String>,
    /// With the `member` param: grants of such a role to it that carry an IAM condition
    /// (they may or may not apply now).
    pub conditional_td_access: Vec<String>,
    /// The policies read: "project ID" alone (`get-iam-policy`), or also each "folder ID"
    /// and "organization ID" above it (`get-ancestors-iam-policy`).
    pub policies_read: Vec<String>,
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
    /// That condition, when there is one.
    pub condition: Option<ConditionFacts>,
    /// Where it is granted: "project ID", "folder ID" or "organization ID".
    pub granted_on: String,
}

/// Parses `gcloud projects get-iam-policy PROJECT --format=json`. `member` may carry its
/// type prefix ("serviceAccount:x@…") or not ("x@…").
pub fn parse_iam_policy(text: &str, member: Option<&str>) -> Result<IamFacts, ParseError> {
    let policy: Policy = from_json("an IAM policy", text)?;
    Ok(iam_facts(vec![("project".to_owned(), policy)], member))
}

/// Parses `gcloud projects get-ancestors-iam-policy PROJECT --format=json`: the project's
/// policy and those of the folders and organization it inherits from.
pub fn parse_ancestors_iam_policy(
    text: &str,
    member: Option<&str>,
) -> Result<IamFacts, ParseError> {
    let policies: Vec<AncestorPolicy> = from_json("a list of ancestor IAM policies", text)?;
    Ok(iam_facts(
        policies
            .into_iter()
            .map(|p| (format!("{} {}", p.kind, p.id).trim().to_owned(), p.policy))
            .collect(),
        member,
    ))
}

/// Whether the policy member `candidate` ("serviceAccount:x@…") is `wanted`, which may carry
/// its type prefix or not ("x@…").
pub fn member_matches(candidate: &str, wanted: &str) -> bool {
    candidate == wanted
        || (!wanted.contains(':')
            && candidate
                .split_once(':')
                .is_some_and(|(_, id)| id == wanted))
}

fn iam_facts(policies: Vec<(String, Policy)>, member: Option<&str>) -> IamFacts {
    let policies_read: Vec<String> = policies.iter().map(|(on, _)| on.clone()).collect();
    let bindings: Vec<BindingFacts> = policies
        .into_iter()
        .flat_map(|(on, policy)| {
            policy.bindings.into_iter().map(move |b| BindingFacts {
                role: b.role,
                members: b.members,
                conditional: b.condition.is_some(),
                condition: b.condition.map(|c| ConditionFacts {
                    title: c.title,
                    expression: c.expression,
                }),
                granted_on: on.clone(),
            })
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

    let matches = member_matches;
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

    let mut td_access_grants = Vec::new();
    let mut conditional_td_access = Vec::new();
    let mut td_access_via_groups = Vec::new();
    let mut td_access_groups = Vec::new();
    for b in bindings.iter().filter(|b| gives_td_access(&b.role)) {
        let grant = format!("{} on {}", b.role, b.granted_on);
        for m in &b.members {
            if member.is_some_and(|wanted| matches(m, wanted)) {
                let list = if b.conditional {
                    &mut conditional_td_access
                } else {
                    &mut td_access_grants
                };
                list.push(grant.clone());
            } else if !b.conditional
                && (m.starts_with("group:")
                    || m.starts_with("domain:")
                    || m == "allAuthenticatedUsers"
                    || m.starts_with("principalSet:"))
            {
                td_access_via_groups.push(format!("{m}: {grant}"));
                if let Some(group) = m.strip_prefix("group:") {
                    td_access_groups.push(group.to_owned());
                }
            }
        }
    }
    for list in [
        &mut td_access_grants,
        &mut conditional_td_access,
        &mut td_access_via_groups,
        &mut td_access_groups,
    ] {
        list.sort();
        list.dedup();
    }
    IamFacts {
        bindings,
        roles_by_member,
        members_with_td_client_role,
        member_roles,
        has_td_client_role,
        has_td_access: member.map(|_| !td_access_grants.is_empty()),
        td_access_grants,
        td_access_via_groups,
        td_access_groups,
        conditional_td_access,
        policies_read,
    }
}
