//! Enabled APIs; the guide: the Traffic Director API must be enabled in the project.

use crate::json::{ParseError, from_json, last_segment};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

const TRAFFIC_DIRECTOR_API: &str = "trafficdirector.googleapis.com";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Service {
    name: String,
    config: Option<ServiceConfig>,
    state: Option<String>,
    parent: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceConfig {
    name: Option<String>,
}

/// The enabled services.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ServicesFacts {
    /// Service names, e.g. "compute.googleapis.com", sorted.
    pub enabled: Vec<String>,
    /// How many.
    pub count: usize,
    /// trafficdirector.googleapis.com is enabled.
    pub trafficdirector_enabled: bool,
    /// The project number, from `parent` ("projects/NUMBER").
    pub project_number: Option<String>,
}

/// Parses `gcloud services list --enabled --format=json`.
pub fn parse_services(text: &str) -> Result<ServicesFacts, ParseError> {
    let raw: Vec<Service> = from_json("a list of services", text)?;
    let project_number = raw
        .iter()
        .find_map(|s| s.parent.as_deref())
        .map(last_segment);
    let mut enabled: Vec<String> = raw
        .into_iter()
        .filter(|s| s.state.as_deref().is_none_or(|state| state == "ENABLED"))
        .map(|s| {
            s.config
                .and_then(|c| c.name)
                .unwrap_or_else(|| last_segment(&s.name))
        })
        .filter(|name| !name.is_empty())
        .collect();
    enabled.sort();
    enabled.dedup();
    Ok(ServicesFacts {
        trafficdirector_enabled: enabled.iter().any(|s| s == TRAFFIC_DIRECTOR_API),
        count: enabled.len(),
        enabled,
        project_number,
    })
}
