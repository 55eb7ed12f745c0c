//! Whether a member (the VM's service account) may use Traffic Director, judged on every
//! grant the project's and its ancestors' IAM policies hold: by name, to everyone, or to a
//! group it is in. Group membership is not in IAM policies: for each group holding a
//! covering role the `td-access` action asks the Cloud Identity API
//! (`gcloud identity groups memberships check-transitive-membership`), which follows nested
//! groups.
//!
//! What it does not decide, it says: an IAM condition (a CEL expression over the request,
//! which triage does not evaluate; its title and expression are kept), a group whose check
//! was refused or not run, groups beyond the bound, `principalSet:`/`principal:` grants. A
//! `domain:` grant never covers a service account: a service account's address is under
//! gserviceaccount.com, never in a customer's Workspace or Cloud Identity domain, and IAM's
//! `domain:` principal holds only that domain's users and groups.

use crate::access::GcloudError;
use crate::iam::{self, IamFacts};
use crate::json::{ParseError, from_json};
use serde::Serialize;
use std::collections::BTreeMap;
use triage_sdk::JsonSchema;

/// Groups checked when the runbook does not say: each check is one gcloud call (a second
/// or two), and a policy may list hundreds of groups.
pub const DEFAULT_MAX_GROUPS: u32 = 10;
/// The most a caller may ask for.
pub const MAX_GROUPS_LIMIT: u32 = 50;

/// Parses `gcloud identity groups memberships check-transitive-membership --format=json`:
/// `{"hasMembership": true}`. The API leaves a false boolean out of its JSON (proto3), so
/// `{}` means "not a member".
pub fn parse_membership(text: &str) -> Result<bool, ParseError> {
    let answer: serde_json::Map<String, serde_json::Value> =
        from_json("a transitive membership check", text)?;
    match answer.get("hasMembership") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(is_member)) => Ok(*is_member),
        Some(other) => Err(ParseError(format!(
            "hasMembership is {other}, not true or false"
        ))),
    }
}

/// Whether `s` is a plain e-mail address that may be put in a gcloud command line: letters,
/// digits and `._%+-` before the `@` (starting with a letter or digit, so never an option),
/// a dotted host name after it. Group names come from the target's IAM policy, which is
/// not trusted.
pub fn is_plain_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && local
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The policies' facts, and the verdict on the member's access to Traffic Director.
#[derive(Serialize, JsonSchema, Debug)]
pub struct TdAccessFacts {
    /// The bindings, as `iam-policy` gives them.
    #[serde(flatten)]
    pub policy: IamFacts,
    /// With `member`: "granted" (a grant covers it), "missing" (none does, every group
    /// holding a covering role was checked and it is in none), or "unknown" (see
    /// `conditional_grants`, `group_checks`, `groups_not_checked`, `undecidable_grants`).
    pub access: Option<String>,
    /// When granted, what grants it, e.g. "roles/trafficdirector.client on project p, granted
    /// to group:mesh@example.com, which td-vm@p.iam.gserviceaccount.com is a member of".
    pub granted_by: Option<String>,
    /// One per group checked (or refused), in the order checked: unconditional grants'
    /// groups first, then sorted.
    pub group_checks: Vec<GroupCheck>,
    /// Groups holding a covering role that were not checked (see `checks_stopped_by`).
    pub groups_not_checked: Vec<String>,
    /// Why checking stopped: "the bound of N groups", or the group whose check gcloud
    /// refused (the same account would be refused for the others).
    pub checks_stopped_by: Option<String>,
    /// The most groups checked in one call.
    pub max_groups: u32,
    /// Covering grants with an IAM condition that would apply to the member (to it, to a
    /// group it is or may be in, or to everyone): triage does not evaluate conditions.
    pub conditional_grants: Vec<ConditionalGrant>,
    /// Covering grants to a `domain:`, which never hold a service account (not counted).
    pub domain_grants: Vec<String>,
    /// Covering grants to principals triage cannot resolve (`principalSet:`, `principal:`).
    pub undecidable_grants: Vec<String>,
}

/// One group's membership check.
#[derive(Serialize, JsonSchema, Debug)]
pub struct GroupCheck {
    /// The group's e-mail address, as the policy names it.
    pub group: String,
    /// The covering roles it holds, e.g. "roles/trafficdirector.client on project p" (with
    /// " if <condition title>" for a conditional one).
    pub grants: Vec<String>,
    /// Whether the member is in the group, directly or through nested groups; null when
    /// the check did not answer.
    pub member: Option<bool>,
    /// Why gcloud did not answer (permission denied: the account lacks Cloud Identity
    /// groups read access, or the organisation's edition lacks the check; api-disabled:
    /// the Cloud Identity API is off).
    pub error: Option<GcloudError>,
    /// Why triage did not run the check (a group name that is not a plain e-mail address,
    /// or the host refused the command).
    pub not_run: Option<String>,
    /// The command, as a person would type it.
    pub command: String,
}

/// A covering grant carrying an IAM condition.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ConditionalGrant {
    /// e.g. "roles/compute.networkViewer on project p".
    pub grant: String,
    /// The principal it is granted to: the member, "group:…", "allAuthenticatedUsers".
    pub to: String,
    /// The condition's title.
    pub title: String,
    /// Its CEL expression.
    pub expression: String,
}

/// What one membership check gave.
pub enum CheckOutcome {
    /// gcloud's answer: a member or not.
    Member(bool),
    /// gcloud's refusal (permission denied, API disabled…).
    Refused(GcloudError),
    /// gcloud printed something that is not the check's answer.
    Unreadable(String),
    /// The command could not run (the host refused it, or a bundle does not hold it).
    NotRun(String),
}

/// The command a person runs to check a membership themselves.
pub fn membership_command(group: &str, member: &str) -> String {
    format!(
        "gcloud identity groups memberships check-transitive-membership --group-email={} --member-email={}",
        shell_quote(group),
        shell_quote(member)
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._%+-=:/".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

struct GroupGrant {
    grant: String,
    condition: Option<iam::ConditionFacts>,
}

/// Judges `member`'s access over `policy`, calling `check(group, member_email)` for the
/// groups that need it, at most `max_groups` times.
pub fn judge(
    policy: IamFacts,
    member: Option<&str>,
    max_groups: u32,
    mut check: impl FnMut(&str, &str) -> CheckOutcome,
) -> TdAccessFacts {
    let mut facts = TdAccessFacts {
        access: None,
        granted_by: None,
        group_checks: Vec::new(),
        groups_not_checked: Vec::new(),
        checks_stopped_by: None,
        max_groups,
        conditional_grants: Vec::new(),
        domain_grants: Vec::new(),
        undecidable_grants: Vec::new(),
        policy,
    };
    let Some(wanted) = member else {
        return facts;
    };
    let email = wanted.split_once(':').map_or(wanted, |(_, e)| e);
    let is_service_account = email.ends_with(".gserviceaccount.com");

    if let Some(grant) = facts.policy.td_access_grants.first() {
        facts.granted_by = Some(format!("{grant}, granted to {email} by name"));
        facts.access = Some("granted".into());
        return facts;
    }

    let mut groups: BTreeMap<String, Vec<GroupGrant>> = BTreeMap::new();
    for b in facts
        .policy
        .bindings
        .iter()
        .filter(|b| iam::gives_td_access(&b.role))
    {
        let grant = format!("{} on {}", b.role, b.granted_on);
        for m in &b.members {
            let conditional = |to: &str| ConditionalGrant {
                grant: grant.clone(),
                to: to.to_owned(),
                title: b
                    .condition
                    .as_ref()
                    .map(|c| c.title.clone())
                    .unwrap_or_default(),
                expression: b
                    .condition
                    .as_ref()
                    .map(|c| c.expression.clone())
                    .unwrap_or_default(),
            };
            if iam::member_matches(m, wanted) {
                // Unconditional grants by name were handled above.
                if b.conditional {
                    facts.conditional_grants.push(conditional(m));
                }
            } else if m == "allUsers" || m == "allAuthenticatedUsers" {
                // Every Google account and every service account is in these.
                if b.conditional {
                    facts.conditional_grants.push(conditional(m));
                } else if facts.granted_by.is_none() {
                    facts.granted_by = Some(format!(
                        "{grant}, granted to {m}, which every service account is in"
                    ));
                }
            } else if let Some(group) = m.strip_prefix("group:") {
                groups
                    .entry(group.to_owned())
                    .or_default()
                    .push(GroupGrant {
                        grant: grant.clone(),
                        condition: b.condition.clone(),
                    });
            } else if let Some(domain) = m.strip_prefix("domain:") {
                let ours = email
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain));
                if !is_service_account && ours {
                    facts.undecidable_grants.push(format!("{m}: {grant}"));
                } else {
                    facts.domain_grants.push(format!("{m}: {grant}"));
                }
            } else if m.starts_with("principalSet:") || m.starts_with("principal:") {
                facts.undecidable_grants.push(format!("{m}: {grant}"));
            }
        }
    }
    if facts.granted_by.is_some() {
        facts.access = Some("granted".into());
        return facts;
    }

    // Groups with an unconditional grant first: a membership there decides.
    let mut order: Vec<(String, Vec<GroupGrant>)> = groups.into_iter().collect();
    order.sort_by_key(|(_, grants)| grants.iter().all(|g| g.condition.is_some()));
    let mut run = 0;
    for (group, grants) in order {
        if facts.checks_stopped_by.is_some() {
            facts.groups_not_checked.push(group);
            continue;
        }
        if run == max_groups {
            facts.checks_stopped_by = Some(format!("the bound of {max_groups} groups"));
            facts.groups_not_checked.push(group);
            continue;
        }
        let mut entry = GroupCheck {
            command: membership_command(&group, email),
            grants: grants
                .iter()
                .map(|g| match &g.condition {
                    Some(c) => format!("{} if {:?}", g.grant, c.title),
                    None => g.grant.clone(),
                })
                .collect(),
            group: group.clone(),
            member: None,
            error: None,
            not_run: None,
        };
        if !is_plain_email(&group) {
            entry.not_run = Some(
                "the group's name is not a plain e-mail address, so triage does not pass it to gcloud"
                    .into(),
            );
            facts.group_checks.push(entry);
            continue;
        }
        if !is_plain_email(email) {
            entry.not_run = Some(format!(
                "the member {email:?} is not a plain e-mail address, so triage does not pass it to gcloud"
            ));
            facts.group_checks.push(entry);
            continue;
        }
        run += 1;
        match check(&group, email) {
            CheckOutcome::Member(is_member) => {
                entry.member = Some(is_member);
                if is_member {
                    if let Some(g) = grants.iter().find(|g| g.condition.is_none()) {
                        facts.granted_by = Some(format!(
                            "{}, granted to group:{group}, which {email} is a member of",
                            g.grant
                        ));
                        facts.group_checks.push(entry);
                        facts.access = Some("granted".into());
                        // The rest cannot change the verdict: not checked, not listed.
                        return facts;
                    }
                    for g in &grants {
                        let c = g.condition.clone().unwrap_or(iam::ConditionFacts {
                            title: String::new(),
                            expression: String::new(),
                        });
                        facts.conditional_grants.push(ConditionalGrant {
                            grant: g.grant.clone(),
                            to: format!("group:{group}"),
                            title: c.title,
                            expression: c.expression,
                        });
                    }
                }
            }
            CheckOutcome::Refused(error) => {
                // The same account, or the same disabled API, refuses every other group.
                if error.access || error.kind == "api-disabled" {
                    facts.checks_stopped_by = Some(format!("gcloud's refusal for {group}"));
                }
                entry.error = Some(error);
            }
            CheckOutcome::Unreadable(why) => entry.not_run = Some(why),
            CheckOutcome::NotRun(why) => {
                facts.checks_stopped_by = Some(format!("the refusal to run the check for {group}"));
                entry.not_run = Some(why);
            }
        }
        facts.group_checks.push(entry);
    }

    // A group whose membership is unknown may hold a conditional grant too: it is as
    // undecided as the group itself, so nothing more is listed for it.
    let undecided = !facts.conditional_grants.is_empty()
        || !facts.undecidable_grants.is_empty()
        || !facts.groups_not_checked.is_empty()
        || facts.group_checks.iter().any(|c| c.member.is_none());
    facts.access = Some(if undecided { "unknown" } else { "missing" }.into());
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_addresses_go_to_gcloud() {
        for good in [
            "mesh-proxies@example.com",
            "td-vm@td-demo-project.iam.gserviceaccount.com",
            "a.b+c_d%e@sub.example.co.uk",
        ] {
            assert!(is_plain_email(good), "{good}");
        }
        for bad in [
            "-evil@example.com",
            "--flags-file=/tmp/x@example.com",
            "evil@-example.com",
            "a b@example.com",
            "a@example",
            "a@@example.com",
            "a@example.com\n--format=x",
            "@example.com",
            "",
        ] {
            assert!(!is_plain_email(bad), "{bad:?}");
        }
        assert!(!is_plain_email(&format!("{}@example.com", "a".repeat(300))));
    }

    #[test]
    fn membership_answers() {
        assert!(parse_membership(r#"{"hasMembership": true}"#).unwrap());
        assert!(!parse_membership(r#"{"hasMembership": false}"#).unwrap());
        assert!(!parse_membership("{}").unwrap());
        assert!(parse_membership("").is_err());
        assert!(parse_membership("[]").is_err());
        assert!(parse_membership(r#"{"hasMembership": "yes"}"#).is_err());
    }

    #[test]
    fn commands_are_quoted_for_a_shell() {
        assert_eq!(
            membership_command("g@example.com", "sa@p.iam.gserviceaccount.com"),
            "gcloud identity groups memberships check-transitive-membership --group-email=g@example.com --member-email=sa@p.iam.gserviceaccount.com"
        );
        assert!(membership_command("a;b", "x").contains("'a;b'"));
    }

    const SA: &str = "td-vm@td-demo-project.iam.gserviceaccount.com";

    fn policy(bindings: &str) -> IamFacts {
        let text = format!(
            r#"[{{"id": "td-demo-project", "type": "project", "policy": {{"bindings": [{bindings}]}}}}]"#
        );
        iam::parse_ancestors_iam_policy(&text, Some(SA)).unwrap()
    }

    fn td_to(member: &str) -> String {
        format!(r#"{{"role": "roles/trafficdirector.client", "members": ["{member}"]}}"#)
    }

    /// Runs `judge` with answers by group, recording the groups asked about.
    fn judged(
        bindings: &str,
        max: u32,
        answer: impl Fn(&str) -> CheckOutcome,
    ) -> (TdAccessFacts, Vec<String>) {
        let mut asked = Vec::new();
        let facts = judge(policy(bindings), Some(SA), max, |group, member| {
            assert_eq!(member, SA);
            asked.push(group.to_owned());
            answer(group)
        });
        (facts, asked)
    }

    #[test]
    fn a_member_of_a_covering_group_is_granted_through_it() {
        let bindings = format!(
            "{},{}",
            td_to("group:a@example.com"),
            td_to("group:b@example.com")
        );
        let (facts, asked) = judged(&bindings, 10, |g| {
            CheckOutcome::Member(g == "a@example.com")
        });
        assert_eq!(facts.access.as_deref(), Some("granted"));
        assert_eq!(asked, ["a@example.com"], "the first membership decides");
        let by = facts.granted_by.unwrap();
        assert!(
            by.contains("group:a@example.com") && by.contains("on project td-demo-project"),
            "{by}"
        );

        let (facts, asked) = judged(&bindings, 10, |_| CheckOutcome::Member(false));
        assert_eq!(facts.access.as_deref(), Some("missing"));
        assert_eq!(asked, ["a@example.com", "b@example.com"]);
        assert!(facts.group_checks.iter().all(|c| c.member == Some(false)));
    }

    #[test]
    fn a_refused_check_is_unknown_and_stops_the_others() {
        let bindings = format!(
            "{},{}",
            td_to("group:a@example.com"),
            td_to("group:b@example.com")
        );
        let denied = crate::access::GcloudError::from_stderr(
            1,
            "ERROR: (gcloud.identity.groups.memberships.check-transitive-membership) PERMISSION_DENIED: The caller does not have permission\n",
        );
        let (facts, asked) = judged(&bindings, 10, |_| CheckOutcome::Refused(denied.clone()));
        assert_eq!(facts.access.as_deref(), Some("unknown"));
        assert_eq!(asked, ["a@example.com"]);
        assert_eq!(facts.groups_not_checked, ["b@example.com"]);
        assert_eq!(
            facts.group_checks[0].error.as_ref().unwrap().kind,
            "permission-denied"
        );
    }

    #[test]
    fn the_bound_cuts_the_checks_and_says_so() {
        let bindings = (0..5)
            .map(|i| td_to(&format!("group:g{i}@example.com")))
            .collect::<Vec<_>>()
            .join(",");
        let (facts, asked) = judged(&bindings, 2, |_| CheckOutcome::Member(false));
        assert_eq!(asked.len(), 2);
        assert_eq!(facts.access.as_deref(), Some("unknown"));
        assert_eq!(facts.groups_not_checked.len(), 3);
        assert_eq!(
            facts.checks_stopped_by.as_deref(),
            Some("the bound of 2 groups")
        );
    }

    #[test]
    fn hostile_group_names_never_reach_gcloud() {
        let bindings = format!(
            "{},{},{}",
            td_to("group:--flags-file=/tmp/evil.yaml"),
            td_to("group:-evil@example.com"),
            td_to("group:ok@example.com")
        );
        let (facts, asked) = judged(&bindings, 10, |_| CheckOutcome::Member(false));
        assert_eq!(asked, ["ok@example.com"]);
        assert_eq!(facts.access.as_deref(), Some("unknown"));
        let refused: Vec<&str> = facts
            .group_checks
            .iter()
            .filter(|c| c.not_run.is_some())
            .map(|c| c.group.as_str())
            .collect();
        assert_eq!(
            refused,
            ["--flags-file=/tmp/evil.yaml", "-evil@example.com"]
        );
    }

    #[test]
    fn conditions_domains_and_everyone() {
        let conditional = format!(
            r#"{{"role": "roles/trafficdirector.client", "members": ["serviceAccount:{SA}"],
                "condition": {{"title": "until spring", "expression": "request.time < timestamp(\"2020-04-01T00:00:00Z\")"}}}}"#
        );
        let (facts, asked) = judged(&conditional, 10, |_| unreachable!());
        assert!(asked.is_empty());
        assert_eq!(facts.access.as_deref(), Some("unknown"));
        assert_eq!(facts.conditional_grants[0].title, "until spring");
        assert!(
            facts.conditional_grants[0]
                .expression
                .contains("2020-04-01")
        );

        // A service account is never in a domain: principal.
        let (facts, _) = judged(&td_to("domain:gserviceaccount.com"), 10, |_| unreachable!());
        assert_eq!(facts.access.as_deref(), Some("missing"));
        assert_eq!(
            facts.domain_grants,
            ["domain:gserviceaccount.com: roles/trafficdirector.client on project td-demo-project"]
        );

        let (facts, _) = judged(&td_to("allAuthenticatedUsers"), 10, |_| unreachable!());
        assert_eq!(facts.access.as_deref(), Some("granted"));
    }
}
