//! Asking a live Envoy only for the parts of `/config_dump` a step needs.
//!
//! A production dump runs to tens of megabytes, most of it listeners, clusters and route
//! configurations a step may not read. Envoy's admin API can return one repeated field of
//! one dump (`?resource=dynamic_listeners`: its entries, each with its own `@type`), trim
//! each entry to some fields (`&mask=…`, a protobuf FieldMask; a path may go one level into
//! the entry's `Any`, `route_config.name`), or trim every dump to a field (`?mask=bootstrap`
//! alone). So `config` asks for what its `sections` need, a request per repeated field.
//!
//! Which Envoys are asked this way: 1.20 and later, read from `/server_info` first.
//! `resource` and `mask` came in 1.13 (envoyproxy/envoy#9100), but until mid-2021 a mask
//! the message could not take made Envoy LOG(FATAL) (envoyproxy/envoy#17257, on 1.18.3),
//! and `?mask=` without `resource` applied to a dump without that field is such a mask; the
//! fixes (envoyproxy/envoy#16979, #17214) answer 400 instead or skip that dump. A diagnosis
//! must never take the proxy down, so older Envoys, and any whose version cannot be read,
//! get the one request for the whole dump, as before.
//!
//! Nothing an Envoy answers is trusted to be filtered: an entry whose `@type` is a whole
//! `*ConfigDump` means the parameters were ignored (an older Envoy, a proxy in between),
//! and that answer is then read as the whole dump. Any failed filtered request (an error
//! status, a refusal, a bundle that holds only the whole dump) falls back to the whole
//! dump too, so bundles recorded before this keep replaying.

use crate::dump::{
    ConfigFacts, Piece, PiecesRead, Query, is_whole_dump, parse_config_dump, parse_config_pieces,
};
use crate::version::parse_server_info;
use crate::wire::ParseError;
use serde::Deserialize;
use triage_envoy::EnvoyVersion;
use triage_sdk::{JsonSchema, ProbeError};

/// The first Envoy release asked for filtered dumps (see the module's comment).
pub const FILTERED_SINCE: EnvoyVersion = EnvoyVersion {
    major: 1,
    minor: 20,
    patch: 0,
};

/// A part of the `config` facts, and of the dump it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The `*_count` facts, `has_dynamic_resources` and `listener_errors`.
    Counts,
    /// `listeners`, `access_log_paths`, `vip_listener`, `vip_in_listeners` and the
    /// inbound ports: every listener with its filter chains.
    Listeners,
    /// `route_config_names`: the route configurations' names and the listeners' references.
    Routes,
    /// `bootstrap` and `traffic_director`: the node, its metadata and the xDS server.
    Bootstrap,
}

/// Every section: the default, what the whole dump gives.
pub const ALL_SECTIONS: [Section; 4] = [
    Section::Counts,
    Section::Listeners,
    Section::Routes,
    Section::Bootstrap,
];

/// The facts each section owns; the others are set to null, in every mode (file, whole
/// dump, filtered), so a step's facts do not depend on how its dump was read.
pub fn section_of(fact: &str) -> Option<Section> {
    Some(match fact {
        "has_dynamic_resources"
        | "dynamic_listener_count"
        | "warming_listener_count"
        | "static_listener_count"
        | "dynamic_cluster_count"
        | "warming_cluster_count"
        | "static_cluster_count"
        | "dynamic_route_count"
        | "static_route_count"
        | "dynamic_secret_count"
        | "listener_errors" => Section::Counts,
        "listeners"
        | "access_log_paths"
        | "vip_listener"
        | "vip_in_listeners"
        | "inbound_listener_ports"
        | "inbound_listener_missing_ports" => Section::Listeners,
        "route_config_names" => Section::Routes,
        "bootstrap" | "traffic_director" => Section::Bootstrap,
        _ => return None,
    })
}

/// The filtered requests (query strings) that give `sections`, each with what it returns.
/// The masks name only fields every Envoy ≥ [`FILTERED_SINCE`] has.
pub fn plan(sections: &[Section]) -> Vec<(Piece, &'static str)> {
    let has = |s| sections.contains(&s);
    let mut plan = Vec::new();
    // Route names come from the listeners' filter chains as well as from the routes dump.
    if has(Section::Listeners) || has(Section::Routes) {
        plan.push((Piece::DynamicListeners, "resource=dynamic_listeners"));
    } else if has(Section::Counts) {
        // Whether each listener is active or warming, and why Envoy rejected it; its
        // definition is most of the dump and is left out. Envoy always stamps an active
        // or warming state's last_updated, so the state stays present once trimmed.
        plan.push((
            Piece::DynamicListeners,
            "resource=dynamic_listeners&mask=name,active_state.last_updated,warming_state.last_updated,error_state",
        ));
    }
    if has(Section::Listeners) || has(Section::Routes) || has(Section::Counts) {
        // Bootstrap listeners: a few, counted only with their definition.
        plan.push((Piece::StaticListeners, "resource=static_listeners"));
    }
    if has(Section::Counts) {
        plan.extend([
            (
                Piece::StaticClusters,
                "resource=static_clusters&mask=last_updated",
            ),
            (
                Piece::ActiveClusters,
                "resource=dynamic_active_clusters&mask=last_updated",
            ),
            (
                Piece::WarmingClusters,
                "resource=dynamic_warming_clusters&mask=last_updated",
            ),
            (
                Piece::ActiveSecrets,
                "resource=dynamic_active_secrets&mask=name",
            ),
            (
                Piece::WarmingSecrets,
                "resource=dynamic_warming_secrets&mask=name",
            ),
        ]);
    }
    if has(Section::Counts) || has(Section::Routes) {
        plan.extend([
            (
                Piece::StaticRoutes,
                "resource=static_route_configs&mask=route_config.name",
            ),
            (
                Piece::DynamicRoutes,
                "resource=dynamic_route_configs&mask=route_config.name",
            ),
        ]);
    }
    if has(Section::Bootstrap) {
        plan.push((Piece::Bootstrap, "mask=bootstrap"));
    }
    plan
}

/// The facts of a live Envoy at `admin_url`, asking for the least that gives `sections`.
pub fn live_config(
    admin_url: &str,
    sections: &[Section],
    query: &Query,
) -> Result<ConfigFacts, ProbeError> {
    let whole_url = format!("{admin_url}/config_dump");
    if filtering_supported(admin_url) {
        let mut answers = Vec::new();
        for (piece, query_string) in plan(sections) {
            match triage_sdk::http_get(&format!("{whole_url}?{query_string}"), &[]) {
                // Its first answer tells an Envoy that ignores the filter: that answer is
                // the whole dump, and asking for the other pieces would fetch it again.
                Ok(body) if answers.is_empty() && is_whole_dump(&body) => {
                    return parse_config_dump(&body, query)
                        .map_err(|e| bad_input(&format!("GET {whole_url}?{query_string}"), &e));
                }
                Ok(body) => answers.push((piece, body)),
                Err(e) => {
                    triage_sdk::log(
                        triage_sdk::LogLevel::Info,
                        &format!("a filtered config dump failed ({e}); reading the whole dump"),
                    );
                    answers.clear();
                    break;
                }
            }
        }
        if !answers.is_empty() {
            let borrowed: Vec<(Piece, &[u8])> =
                answers.iter().map(|(p, b)| (*p, b.as_slice())).collect();
            let read = parse_config_pieces(&borrowed, query)
                .map_err(|e| bad_input(&format!("GET {whole_url}?…"), &e))?;
            return match read {
                PiecesRead::Facts(facts) => Ok(*facts),
                PiecesRead::WholeDump(index) => parse_config_dump(&answers[index].1, query)
                    .map_err(|e| bad_input(&format!("GET {whole_url}?…"), &e)),
            };
        }
    }
    let body = triage_sdk::http_get(&whole_url, &[])?;
    parse_config_dump(&body, query).map_err(|e| bad_input(&format!("GET {whole_url}"), &e))
}

/// Whether the Envoy says it is one that takes `resource` and `mask` safely. Any failure
/// to tell (no answer, not captured in a bundle, no release number) is a no.
fn filtering_supported(admin_url: &str) -> bool {
    let Ok(body) = triage_sdk::http_get(&format!("{admin_url}/server_info"), &[]) else {
        return false;
    };
    let min = FILTERED_SINCE;
    parse_server_info(&body, &min)
        .ok()
        .and_then(|info| info.meets_minimum)
        .unwrap_or(false)
}

fn bad_input(source: &str, e: &ParseError) -> ProbeError {
    ProbeError::bad_input(format!("{source}: {e}"))
}
