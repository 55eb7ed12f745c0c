//! Each action's params and the gcloud argv they turn into. `describe` declares the same
//! argv built from `{param}` placeholders, so what is declared is exactly what runs.

use serde::Deserialize;
use triage_sdk::{JsonSchema, ProbeError};

/// Placeholder for `describe`.
pub const PROJECT: &str = "{project}";

/// `gcloud ARGS… [--project P] [-- NAMES…]`. Names (instances, clusters, projects) come
/// last after `--`, so that a name is never read as a flag. gcloud still looks for
/// `--flags-file` and `--configuration` everywhere, even after `--`, which is why the host
/// also refuses any value beginning with `-` where an argument begins (docs/security.md).
pub fn gcloud(args: &[&str], project: Option<&str>, names: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = std::iter::once("gcloud")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    if let Some(project) = project {
        argv.extend(["--project".to_string(), project.to_string()]);
    }
    if !names.is_empty() {
        argv.push("--".to_string());
        argv.extend(names.iter().map(|n| n.to_string()));
    }
    argv
}

pub fn forwarding_rules_argv(project: Option<&str>) -> Vec<String> {
    gcloud(
        &["compute", "forwarding-rules", "list", "--format=json"],
        project,
        &[],
    )
}

pub fn services_argv(project: Option<&str>) -> Vec<String> {
    gcloud(
        &["services", "list", "--enabled", "--format=json"],
        project,
        &[],
    )
}

pub fn instance_argv(instance: &str, zone: &str, project: Option<&str>) -> Vec<String> {
    gcloud(
        &[
            "compute",
            "instances",
            "describe",
            "--zone",
            zone,
            "--format=json",
        ],
        project,
        &[instance],
    )
}

pub fn serial_argv(instance: &str, zone: &str, project: Option<&str>) -> Vec<String> {
    gcloud(
        &[
            "compute",
            "instances",
            "get-serial-port-output",
            "--zone",
            zone,
            "--port",
            "1",
        ],
        project,
        &[instance],
    )
}

pub fn firewall_argv(project: Option<&str>) -> Vec<String> {
    gcloud(
        &["compute", "firewall-rules", "list", "--format=json"],
        project,
        &[],
    )
}

/// Where a cluster is: `--zone Z` or `--region R`.
#[derive(Clone, Copy)]
pub enum Location<'a> {
    Zone(&'a str),
    Region(&'a str),
}

impl Location<'_> {
    /// Both forms, with placeholders, for `describe`.
    pub const PATTERNS: [Location<'static>; 2] =
        [Location::Zone("{zone}"), Location::Region("{region}")];
}

pub fn cluster_argv(cluster: &str, location: Location, project: Option<&str>) -> Vec<String> {
    let (flag, value) = match location {
        Location::Zone(z) => ("--zone", z),
        Location::Region(r) => ("--region", r),
    };
    gcloud(
        &[
            "container",
            "clusters",
            "describe",
            flag,
            value,
            "--format=json",
        ],
        project,
        &[cluster],
    )
}

pub fn iam_argv(project: &str) -> Vec<String> {
    gcloud(
        &["projects", "get-iam-policy", "--format=json"],
        None,
        &[project],
    )
}

/// The project's policy and those it inherits (folders, organization), so that a grant
/// made above the project is seen.
pub fn ancestors_iam_argv(project: &str) -> Vec<String> {
    gcloud(
        &["projects", "get-ancestors-iam-policy", "--format=json"],
        None,
        &[project],
    )
}

/// `gcloud identity groups memberships check-transitive-membership`: whether `member` is in
/// `group`, directly or through nested groups. Each value is a separate argument after its
/// flag, so the host's rule that `*` never matches an argument beginning with `-` holds for
/// both (the policy declares them as `*`): a group named `--flags-file=…` is refused.
pub fn membership_argv(group: &str, member: &str) -> Vec<String> {
    gcloud(
        &[
            "identity",
            "groups",
            "memberships",
            "check-transitive-membership",
            "--group-email",
            group,
            "--member-email",
            member,
            "--format=json",
        ],
        None,
        &[],
    )
}

/// Params of `forwarding-rules`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardingRulesParams {
    /// Project ID; gcloud's configured project when unset.
    #[serde(default)]
    pub project: Option<String>,
    /// VPC network (name or URL) to look for an INTERNAL_SELF_MANAGED rule in.
    #[serde(default)]
    pub network: Option<String>,
}

/// Params of `services`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectParams {
    /// Project ID; gcloud's configured project when unset.
    #[serde(default)]
    pub project: Option<String>,
}

/// Params of `instance` and `serial-output`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {
    /// VM name.
    pub instance: String,
    /// The VM's zone, e.g. "us-central1-a".
    pub zone: String,
    /// Project ID; gcloud's configured project when unset.
    #[serde(default)]
    pub project: Option<String>,
}

/// Params of `firewall-rules`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallParams {
    /// Project ID; gcloud's configured project when unset.
    #[serde(default)]
    pub project: Option<String>,
    /// TCP port that must be allowed in, e.g. 9443 for the sidecar injector webhook.
    #[serde(default)]
    pub port: Option<u16>,
    /// Where the traffic comes from, e.g. the GKE control plane's range "172.16.0.0/28".
    #[serde(default)]
    pub source_range: Option<String>,
    /// Only rules of this network (name or URL) count.
    #[serde(default)]
    pub network: Option<String>,
}

/// Params of `cluster`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterParams {
    /// GKE cluster name.
    pub cluster: String,
    /// Zone of a zonal cluster (give `zone` or `region`).
    #[serde(default)]
    pub zone: Option<String>,
    /// Region of a regional cluster (give `zone` or `region`).
    #[serde(default)]
    pub region: Option<String>,
    /// Project ID; gcloud's configured project when unset.
    #[serde(default)]
    pub project: Option<String>,
}

impl ClusterParams {
    pub fn location(&self) -> Result<Location<'_>, ProbeError> {
        match (&self.zone, &self.region) {
            (Some(zone), None) => Ok(Location::Zone(zone)),
            (None, Some(region)) => Ok(Location::Region(region)),
            _ => Err(ProbeError::invalid_params(
                "give exactly one of `zone` and `region`",
            )),
        }
    }
}

/// Params of `iam-policy`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IamParams {
    /// Project ID.
    pub project: String,
    /// Member to check, e.g. "serviceAccount:123456789012-compute@developer.gserviceaccount.com"
    /// (the type prefix may be left out).
    #[serde(default)]
    pub member: Option<String>,
    /// Also read the policies the project inherits from its folders and organization
    /// (`gcloud projects get-ancestors-iam-policy`), so that a grant made there counts.
    #[serde(default)]
    pub ancestors: bool,
}

/// Params of `td-access`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TdAccessParams {
    /// Project ID; its folders' and organization's policies are read too.
    pub project: String,
    /// The service account to judge, e.g. "td-vm@my-project.iam.gserviceaccount.com" (a
    /// "serviceAccount:" prefix may be given). Without it only the bindings are read.
    #[serde(default)]
    pub member: Option<String>,
    /// The most groups whose membership is checked (one gcloud call each), 1 to 50; the
    /// facts say which groups the bound left unchecked.
    #[serde(default = "default_max_groups")]
    pub max_groups: u32,
}

fn default_max_groups() -> u32 {
    crate::td_access::DEFAULT_MAX_GROUPS
}
