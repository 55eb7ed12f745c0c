//! Probe plugin `guest-attrs`: the gce-service-proxy guest attributes a service-proxy VM
//! publishes (bootstrap status, proxy version, agent heartbeat), read inside the VM from the
//! metadata server or from a workstation with gcloud, and what the metadata server knows
//! about the VM (project, network, service account, the gce-service-proxy attribute).

pub mod attributes;
pub mod instance;
pub mod timestamp;
pub mod version;

use std::collections::BTreeMap;

use serde::Deserialize;
use triage_envoy::{default_min_version, min_version_param};
use triage_sdk::{Action, Facts, JsonSchema, Manifest, Params, Probe, ProbeError};

use crate::attributes::{GuestAttributeFacts, KEYS, guest_attribute_facts, parse_gcloud_output};
use crate::instance::{InstanceFacts, MetadataAnswers, PATHS, instance_facts};

const METADATA: &str = "http://metadata.google.internal/computeMetadata/v1/";
const GUEST_ATTRIBUTES: &str = "http://metadata.google.internal/computeMetadata/v1/instance/guest-attributes/gce-service-proxy/";
/// The metadata server answers 403 to requests without it.
const METADATA_FLAVOR: (&str, &str) = ("Metadata-Flavor", "Google");
const HTTP_NOT_FOUND: u16 = 404;

fn default_max_heartbeat_age() -> u64 {
    300
}

/// Params of `metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataParams {
    /// A heartbeat older than this many seconds is stale (the guide: five minutes).
    #[serde(default = "default_max_heartbeat_age")]
    pub max_heartbeat_age_seconds: u64,
    /// `meets_minimum` compares `proxy-version` with this release (the guide: 1.9.1).
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

/// Params of `gcloud`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcloudParams {
    /// The VM's name.
    pub instance: String,
    /// The VM's zone.
    pub zone: String,
    /// The VM's project; gcloud's configured project when absent.
    #[serde(default)]
    pub project: Option<String>,
    /// A heartbeat older than this many seconds is stale (the guide: five minutes).
    #[serde(default = "default_max_heartbeat_age")]
    pub max_heartbeat_age_seconds: u64,
    /// `meets_minimum` compares `proxy-version` with this release (the guide: 1.9.1).
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

/// Params of `instance`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceParams {}

/// The probe; public so native tests can inspect its manifest.
pub struct GuestAttrsProbe;

impl Probe for GuestAttrsProbe {
    fn describe() -> Manifest {
        let mut instance = Action::new::<InstanceParams, InstanceFacts>(
            "instance",
            "Inside the VM: project, zone, network, service account scopes and the \
             gce-service-proxy metadata attribute, from the metadata server",
        );
        for path in PATHS {
            instance = instance.http(&format!("{METADATA}{path}"));
        }
        Manifest::new(
            "guest-attrs",
            env!("CARGO_PKG_VERSION"),
            "gce-service-proxy guest attributes (bootstrap status, proxy version, agent \
             heartbeat) and the VM's metadata",
        )
        .action(
            Action::new::<MetadataParams, GuestAttributeFacts>(
                "metadata",
                "Inside the VM: reads the gce-service-proxy guest attributes from the metadata server",
            )
            .http(&format!("{GUEST_ATTRIBUTES}*")),
        )
        .action(
            Action::new::<GcloudParams, GuestAttributeFacts>(
                "gcloud",
                "From a workstation: reads the gce-service-proxy guest attributes with gcloud",
            )
            .exec(&gcloud_argv("{instance}", "{zone}", Some("{project}")))
            .exec(&gcloud_argv("{instance}", "{zone}", None)),
        )
        .action(instance)
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "metadata" => {
                let p: MetadataParams = params.parse()?;
                let min_version = min_version_param(&p.min_version)?;
                let mut found = BTreeMap::new();
                for key in KEYS {
                    if let Some(value) = metadata_get(&format!("{GUEST_ATTRIBUTES}{key}"))? {
                        found.insert(key.to_owned(), value);
                    }
                }
                let now = triage_sdk::now();
                Facts::new(&guest_attribute_facts(
                    found,
                    now,
                    p.max_heartbeat_age_seconds,
                    &min_version,
                ))
            }
            "gcloud" => {
                let p: GcloudParams = params.parse()?;
                let min_version = min_version_param(&p.min_version)?;
                let argv = gcloud_argv(&p.instance, &p.zone, p.project.as_deref());
                let output = triage_sdk::exec_ok(&argv)?;
                let found = parse_gcloud_output(&output).map_err(|e| ProbeError::bad_input(e.0))?;
                let now = triage_sdk::now();
                Facts::new(&guest_attribute_facts(
                    found,
                    now,
                    p.max_heartbeat_age_seconds,
                    &min_version,
                ))
            }
            "instance" => {
                let _: InstanceParams = params.parse()?;
                let mut answers = [const { None }; PATHS.len()];
                for (answer, path) in answers.iter_mut().zip(PATHS) {
                    *answer = metadata_get(&format!("{METADATA}{path}"))?;
                }
                let [
                    project_id,
                    numeric_project_id,
                    name,
                    zone,
                    network,
                    service_account_email,
                    scopes,
                    attribute_keys,
                    gce_service_proxy,
                    instance_enable_guest_attributes,
                    project_enable_guest_attributes,
                ] = answers;
                Facts::new(&instance_facts(&MetadataAnswers {
                    project_id,
                    numeric_project_id,
                    name,
                    zone,
                    network,
                    service_account_email,
                    scopes,
                    attribute_keys,
                    gce_service_proxy,
                    instance_enable_guest_attributes,
                    project_enable_guest_attributes,
                }))
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

/// The instance goes last, after `--`, so that a name is never read as a flag.
fn gcloud_argv<'a>(instance: &'a str, zone: &'a str, project: Option<&'a str>) -> Vec<&'a str> {
    let mut argv = vec!["gcloud", "compute", "instances", "get-guest-attributes"];
    argv.extend(["--zone", zone]);
    if let Some(project) = project {
        argv.extend(["--project", project]);
    }
    argv.extend([
        "--query-path=gce-service-proxy/",
        "--format=json",
        "--",
        instance,
    ]);
    argv
}

/// A metadata value; `None` when the server says 404 (the key is not set).
fn metadata_get(url: &str) -> Result<Option<String>, ProbeError> {
    let response = triage_sdk::http("GET", url, &[METADATA_FLAVOR])?;
    match response.status {
        200..=299 => Ok(Some(String::from_utf8_lossy(&response.body).into_owned())),
        HTTP_NOT_FOUND => Ok(None),
        status => {
            let body = String::from_utf8_lossy(&response.body);
            let first_line = body.lines().next().unwrap_or_default().trim();
            Err(ProbeError::failed(format!(
                "GET {url} answered {status}: {first_line}"
            )))
        }
    }
}

triage_sdk::register_probe!(GuestAttrsProbe);
