//! Probe plugin: Google Cloud resources through `gcloud … --format=json`, for the guide's
//! checks outside the VM: the Traffic Director API, forwarding rules, VM scopes and
//! metadata, the serial console, firewall rules, private GKE clusters and IAM roles.

pub mod access;
pub mod cluster;
mod commands;
pub mod firewall;
pub mod forwarding_rules;
pub mod iam;
pub mod instance;
pub mod json;
pub mod serial;
pub mod service_proxy;
pub mod services;
pub mod td_access;

use commands::{
    ClusterParams, FirewallParams, ForwardingRulesParams, IamParams, InstanceParams, Location,
    PROJECT, ProjectParams, TdAccessParams, ancestors_iam_argv, cluster_argv, firewall_argv,
    forwarding_rules_argv, iam_argv, instance_argv, membership_argv, serial_argv, services_argv,
};
use triage_sdk::register_probe;
use triage_sdk::{Action, Facts, Manifest, Params, Probe, ProbeError};

/// Declares `argv_for(project)` both without and with `--project {project}`.
fn with_project(mut action: Action, argv_for: impl Fn(Option<&str>) -> Vec<String>) -> Action {
    for project in [None, Some(PROJECT)] {
        let argv = argv_for(project);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        action = action.exec(&argv);
    }
    action
}

/// Runs gcloud and parses what it printed; gcloud's own refusal (no permission, scopes,
/// credentials) becomes the answer's `error`, a parse failure of its output a probe error.
fn answer<T: serde::Serialize>(
    argv: &[String],
    parse: impl FnOnce(&str) -> Result<T, json::ParseError>,
) -> Result<Facts, ProbeError> {
    let answer = match access::run(argv)? {
        Ok(text) => access::Answer {
            facts: Some(parse(&text).map_err(bad_input)?),
            error: None,
        },
        Err(error) => access::Answer {
            facts: None,
            error: Some(error),
        },
    };
    Facts::new(&answer)
}

fn bad_input(e: json::ParseError) -> ProbeError {
    ProbeError::bad_input(e.0)
}

/// The probe; public so native tests can call `describe` and `run`.
pub struct GcloudProbe;

impl Probe for GcloudProbe {
    fn describe() -> Manifest {
        let mut cluster = Action::new::<ClusterParams, access::Answer<cluster::ClusterFacts>>(
            "cluster",
            "A GKE cluster: private nodes, the control plane's range, network",
        );
        for location in Location::PATTERNS {
            cluster = with_project(cluster, |project| {
                cluster_argv("{cluster}", location, project)
            });
        }
        Manifest::new(
            "gcloud",
            env!("CARGO_PKG_VERSION"),
            "Google Cloud forwarding rules, enabled APIs, VMs, serial output, firewall rules, GKE clusters and IAM via gcloud --format=json",
        )
        .action(with_project(
            Action::new::<ForwardingRulesParams, access::Answer<forwarding_rules::ForwardingRulesFacts>>(
                "forwarding-rules",
                "Forwarding rules, and whether an INTERNAL_SELF_MANAGED one (Traffic Director's) exists in a network",
            ),
            forwarding_rules_argv,
        ))
        .action(with_project(
            Action::new::<ProjectParams, access::Answer<services::ServicesFacts>>(
                "services",
                "Enabled APIs, and whether the Traffic Director API is one",
            ),
            services_argv,
        ))
        .action(with_project(
            Action::new::<InstanceParams, access::Answer<instance::InstanceFacts>>(
                "instance",
                "A VM's service account scopes, metadata (gce-service-proxy parsed) and network",
            ),
            |project| instance_argv("{instance}", "{zone}", project),
        ))
        .action(with_project(
            Action::new::<InstanceParams, access::Answer<serial::SerialFacts>>(
                "serial-output",
                "Service proxy and Envoy bootstrap errors on a VM's serial console",
            ),
            |project| serial_argv("{instance}", "{zone}", project),
        ))
        .action(with_project(
            Action::new::<FirewallParams, access::Answer<firewall::FirewallFacts>>(
                "firewall-rules",
                "Firewall rules, and whether one lets TCP to a port in from a source range",
            ),
            firewall_argv,
        ))
        .action(cluster)
        .action(
            Action::new::<IamParams, access::Answer<iam::IamFacts>>(
                "iam-policy",
                "A project's IAM bindings, and whether a member holds a Traffic Director client role",
            )
            .exec(&iam_argv(PROJECT).iter().map(String::as_str).collect::<Vec<_>>())
            .exec(
                &ancestors_iam_argv(PROJECT)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
        )
        .action(
            Action::new::<TdAccessParams, access::Answer<td_access::TdAccessFacts>>(
                "td-access",
                "Whether a service account may use Traffic Director: its roles on the project, folders and organization, and its membership of each group holding one (Cloud Identity)",
            )
            .exec(
                &ancestors_iam_argv(PROJECT)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .exec(
                &membership_argv("*", "*")
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
        )
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "forwarding-rules" => {
                let p: ForwardingRulesParams = params.parse()?;
                answer(&forwarding_rules_argv(p.project.as_deref()), |text| {
                    forwarding_rules::parse_forwarding_rules(text, p.network.as_deref())
                })
            }
            "services" => {
                let p: ProjectParams = params.parse()?;
                answer(
                    &services_argv(p.project.as_deref()),
                    services::parse_services,
                )
            }
            "instance" => {
                let p: InstanceParams = params.parse()?;
                answer(
                    &instance_argv(&p.instance, &p.zone, p.project.as_deref()),
                    instance::parse_instance,
                )
            }
            "serial-output" => {
                let p: InstanceParams = params.parse()?;
                answer(
                    &serial_argv(&p.instance, &p.zone, p.project.as_deref()),
                    |text| Ok(serial::parse_serial_output(text)),
                )
            }
            "firewall-rules" => {
                let p: FirewallParams = params.parse()?;
                let query = firewall::FirewallQuery {
                    port: p.port,
                    source_range: p.source_range.as_deref(),
                    network: p.network.as_deref(),
                };
                answer(&firewall_argv(p.project.as_deref()), |text| {
                    firewall::parse_firewall_rules(text, &query)
                })
            }
            "cluster" => {
                let p: ClusterParams = params.parse()?;
                let argv = cluster_argv(&p.cluster, p.location()?, p.project.as_deref());
                answer(&argv, cluster::parse_cluster)
            }
            "iam-policy" => {
                let p: IamParams = params.parse()?;
                if p.ancestors {
                    answer(&ancestors_iam_argv(&p.project), |text| {
                        iam::parse_ancestors_iam_policy(text, p.member.as_deref())
                    })
                } else {
                    answer(&iam_argv(&p.project), |text| {
                        iam::parse_iam_policy(text, p.member.as_deref())
                    })
                }
            }
            "td-access" => {
                let p: TdAccessParams = params.parse()?;
                if !(1..=td_access::MAX_GROUPS_LIMIT).contains(&p.max_groups) {
                    return Err(ProbeError::invalid_params(format!(
                        "max_groups is {}; give 1 to {}",
                        p.max_groups,
                        td_access::MAX_GROUPS_LIMIT
                    )));
                }
                let policy = match access::run(&ancestors_iam_argv(&p.project))? {
                    Ok(text) => iam::parse_ancestors_iam_policy(&text, p.member.as_deref())
                        .map_err(bad_input)?,
                    Err(error) => {
                        return Facts::new(&access::Answer::<td_access::TdAccessFacts> {
                            facts: None,
                            error: Some(error),
                        });
                    }
                };
                let facts = td_access::judge(
                    policy,
                    p.member.as_deref(),
                    p.max_groups,
                    |group, member| {
                        use td_access::CheckOutcome;
                        match access::run(&membership_argv(group, member)) {
                            Ok(Ok(text)) => match td_access::parse_membership(&text) {
                                Ok(is_member) => CheckOutcome::Member(is_member),
                                Err(e) => CheckOutcome::Unreadable(e.0),
                            },
                            Ok(Err(error)) => CheckOutcome::Refused(error),
                            Err(e) => CheckOutcome::NotRun(e.to_string()),
                        }
                    },
                );
                Facts::new(&access::Answer {
                    facts: Some(facts),
                    error: None,
                })
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

register_probe!(GcloudProbe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_declares_every_command_with_and_without_project() {
        let manifest = format!("{:?}", GcloudProbe::describe());
        for needle in [
            r#"["gcloud", "compute", "forwarding-rules", "list", "--format=json"]"#,
            r#"["gcloud", "compute", "forwarding-rules", "list", "--format=json", "--project", "{project}"]"#,
            r#"["gcloud", "services", "list", "--enabled", "--format=json", "--project", "{project}"]"#,
            r#"["gcloud", "compute", "instances", "describe", "--zone", "{zone}", "--format=json", "--", "{instance}"]"#,
            r#"["gcloud", "compute", "instances", "get-serial-port-output", "--zone", "{zone}", "--port", "1", "--", "{instance}"]"#,
            r#"["gcloud", "container", "clusters", "describe", "--region", "{region}", "--format=json", "--project", "{project}", "--", "{cluster}"]"#,
            r#"["gcloud", "projects", "get-iam-policy", "--format=json", "--", "{project}"]"#,
        ] {
            assert!(manifest.contains(needle), "missing {needle}");
        }
    }

    #[test]
    fn bad_params_are_refused_before_running_anything() {
        assert!(matches!(
            GcloudProbe::run("nope", Params::from_json("{}")),
            Err(ProbeError::UnknownAction(_))
        ));
        let both = Params::from_json(r#"{"cluster":"c","zone":"z","region":"r"}"#);
        assert!(matches!(
            GcloudProbe::run("cluster", both),
            Err(ProbeError::InvalidParams(_))
        ));
        let neither = Params::from_json(r#"{"cluster":"c"}"#);
        assert!(matches!(
            GcloudProbe::run("cluster", neither),
            Err(ProbeError::InvalidParams(_))
        ));
        let no_project = Params::from_json("{}");
        assert!(matches!(
            GcloudProbe::run("iam-policy", no_project),
            Err(ProbeError::InvalidParams(_))
        ));
    }
}
