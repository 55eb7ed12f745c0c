//! Big dumps, live (issue 14): the config-dump plugin asks a live Envoy ≥ 1.20 only for what
//! a step's `sections` need (`/config_dump?resource=…&mask=…`), falls back to the whole dump
//! everywhere else, and bundles hold the calls that were made.
//!
//! The Envoy here is a stand-in, a real HTTP server on loopback serving the real Istio 1.6
//! sidecar dump from fixtures/real. Its `resource`/`mask` filtering stands in for Envoy's:
//! written from Envoy's documented semantics (docs/root/operations/admin.rst) and its
//! handler (source/server/admin/config_dump_handler.cc, 1.20 and later): `resource` returns
//! the entries of the first dump that has that repeated field, each packed with its own
//! `@type`, 404 when no dump has it, 400 for a field that is not repeated; `mask` keeps the
//! named fields of each entry, a path's first part may be the entry's one `Any` field and
//! then the rest applies inside it, 400 for a field the entry does not have; `mask` alone
//! trims every dump that has the fields and leaves out the others. What it cannot know, the
//! fields inside an `Any`, it does not check. No Envoy binary can run here.

use super::*;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const DUMP: &str = "istio-1.6-bookinfo-productpage-sidecar.config_dump.json";

fn real_dump() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/real/envoy-config-dump")
        .join(DUMP);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How the stand-in treats `/config_dump`'s query.
#[derive(Clone, Copy, PartialEq)]
pub enum Filters {
    /// As Envoy ≥ 1.20 does.
    Honoured,
    /// As Envoy < 1.13 does (or a proxy that drops the query): the whole dump, always.
    Ignored,
    /// Every filtered request answers 400 (an Envoy that refuses a mask).
    Refused,
}

/// The repeated fields of each dump (envoy.admin.v3 config_dump protos) and their entries'
/// message names and fields; the one `Any` field of each entry is listed first.
const REPEATED: &[(&str, &str, &str, &[&str])] = &[
    (
        "ClustersConfigDump",
        "static_clusters",
        "StaticCluster",
        &["cluster", "last_updated"],
    ),
    (
        "ClustersConfigDump",
        "dynamic_active_clusters",
        "DynamicCluster",
        &[
            "cluster",
            "version_info",
            "last_updated",
            "error_state",
            "client_status",
        ],
    ),
    (
        "ClustersConfigDump",
        "dynamic_warming_clusters",
        "DynamicCluster",
        &[
            "cluster",
            "version_info",
            "last_updated",
            "error_state",
            "client_status",
        ],
    ),
    (
        "ListenersConfigDump",
        "static_listeners",
        "StaticListener",
        &["listener", "last_updated"],
    ),
    (
        "ListenersConfigDump",
        "dynamic_listeners",
        "DynamicListener",
        &[
            "",
            "name",
            "active_state",
            "warming_state",
            "draining_state",
            "error_state",
            "client_status",
        ],
    ),
    (
        "RoutesConfigDump",
        "static_route_configs",
        "StaticRouteConfig",
        &["route_config", "last_updated"],
    ),
    (
        "RoutesConfigDump",
        "dynamic_route_configs",
        "DynamicRouteConfig",
        &[
            "route_config",
            "version_info",
            "last_updated",
            "error_state",
            "client_status",
        ],
    ),
    (
        "SecretsConfigDump",
        "static_secrets",
        "StaticSecret",
        &["secret", "name", "last_updated"],
    ),
    (
        "SecretsConfigDump",
        "dynamic_active_secrets",
        "DynamicSecret",
        &[
            "secret",
            "name",
            "version_info",
            "last_updated",
            "error_state",
            "client_status",
        ],
    ),
    (
        "SecretsConfigDump",
        "dynamic_warming_secrets",
        "DynamicSecret",
        &[
            "secret",
            "name",
            "version_info",
            "last_updated",
            "error_state",
            "client_status",
        ],
    ),
];

/// The top-level fields of each dump, for `mask` without `resource`.
const DUMP_FIELDS: &[(&str, &[&str])] = &[
    ("BootstrapConfigDump", &["bootstrap", "last_updated"]),
    (
        "ClustersConfigDump",
        &[
            "version_info",
            "static_clusters",
            "dynamic_active_clusters",
            "dynamic_warming_clusters",
        ],
    ),
    (
        "ListenersConfigDump",
        &["version_info", "static_listeners", "dynamic_listeners"],
    ),
    (
        "RoutesConfigDump",
        &["static_route_configs", "dynamic_route_configs"],
    ),
    (
        "ScopedRoutesConfigDump",
        &[
            "inline_scoped_route_configs",
            "dynamic_scoped_route_configs",
        ],
    ),
    (
        "SecretsConfigDump",
        &[
            "static_secrets",
            "dynamic_active_secrets",
            "dynamic_warming_secrets",
        ],
    ),
];

/// A message's fields of DynamicListener's state (`active_state.last_updated`).
const LISTENER_STATE: &[&str] = &["version_info", "listener", "last_updated"];

fn short_type(config: &Value) -> &str {
    config["@type"]
        .as_str()
        .unwrap_or("")
        .rsplit('.')
        .next()
        .unwrap_or("")
}

/// Keeps, of `value`, what the mask paths (already split) name.
fn trim(value: &Value, paths: &[Vec<&str>]) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    if let Some(t) = map.get("@type") {
        out.insert("@type".into(), t.clone());
    }
    for (key, field) in map {
        let below: Vec<Vec<&str>> = paths
            .iter()
            .filter(|p| p[0] == key)
            .map(|p| p[1..].to_vec())
            .collect();
        if below.is_empty() {
            continue;
        }
        if below.iter().any(|p| p.is_empty()) {
            out.insert(key.clone(), field.clone());
        } else {
            out.insert(key.clone(), trim(field, &below));
        }
    }
    Value::Object(out)
}

/// Envoy's `/config_dump?QUERY` of `dump`, or its error status and text.
fn envoy_config_dump(dump: &Value, query: &str) -> Result<Value, (u16, String)> {
    let mut resource = None;
    let mut mask = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("resource", v)) => resource = Some(v.to_string()),
            Some(("mask", v)) => mask = Some(v.to_string()),
            _ => {}
        }
    }
    let paths: Option<Vec<Vec<&str>>> = mask
        .as_deref()
        .map(|m| m.split(',').map(|p| p.split('.').collect()).collect());
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    if let Some(resource) = resource {
        let Some((_, _, entry_type, fields)) = REPEATED.iter().find(|r| r.1 == resource) else {
            let repeated = DUMP_FIELDS
                .iter()
                .any(|(_, f)| f.contains(&resource.as_str()));
            return Err(if repeated {
                (
                    400,
                    format!(
                        "{resource} is not a repeated field. Use ?mask={resource} to get only this field"
                    ),
                )
            } else {
                (404, format!("{resource} not found in config dump"))
            });
        };
        if let Some(paths) = &paths {
            for path in paths {
                let known = fields.contains(&path[0])
                    && (path.len() == 1
                        || path[0] == fields[0]
                        || (path[0].ends_with("_state") && LISTENER_STATE.contains(&path[1])));
                if !known {
                    return Err((
                        400,
                        format!("FieldMask {mask:?} could not be successfully used."),
                    ));
                }
            }
        }
        let Some(config) = configs.iter().find(|c| {
            REPEATED
                .iter()
                .any(|r| r.1 == resource && r.0 == short_type(c))
        }) else {
            return Err((404, format!("{resource} not found in config dump")));
        };
        let prefix = config["@type"].as_str().unwrap_or("");
        for entry in config[resource.as_str()]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let entry = match &paths {
                Some(paths) => trim(&entry, paths),
                None => entry,
            };
            let mut packed = Map::new();
            packed.insert("@type".into(), json!(format!("{prefix}.{entry_type}")));
            if let Value::Object(fields) = entry {
                packed.extend(fields);
            }
            out.push(Value::Object(packed));
        }
    } else if let Some(paths) = &paths {
        for config in &configs {
            let fields = DUMP_FIELDS
                .iter()
                .find(|d| d.0 == short_type(config))
                .map(|d| d.1)
                .unwrap_or(&[]);
            if paths.iter().all(|p| p.len() == 1 && fields.contains(&p[0])) {
                out.push(trim(config, paths));
            }
        }
        if out.is_empty() {
            return Err((
                400,
                format!("FieldMask {mask:?} could not be successfully applied to any configs."),
            ));
        }
    } else {
        out = configs;
    }
    Ok(json!({ "configs": out }))
}

/// The stand-in Envoy admin endpoint: `/server_info` with `version`, `/config_dump` with
/// or without filters. It logs each request target and counts the body bytes it sent.
pub struct StandIn {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    pub fn start(version: &str, filters: Filters, dump_bytes: Vec<u8>) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_info = json!({
            "version": format!("0123456789abcdef0123456789abcdef01234567/{version}/Clean/RELEASE/BoringSSL"),
            "state": "LIVE",
            "hot_restart_version": "disabled",
            "uptime_current_epoch": "7205s",
            "uptime_all_epochs": "7205s",
        })
        .to_string()
        .into_bytes();
        let dump: Value = serde_json::from_slice(&dump_bytes).unwrap();
        let shared = Arc::new((server_info, dump_bytes, dump));
        let (log, sent, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (t_log, t_sent, t_stop) = (log.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if t_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (shared, log, sent) = (shared.clone(), t_log.clone(), t_sent.clone());
                std::thread::spawn(move || {
                    let (server_info, whole, dump) = &*shared;
                    serve(conn, &log, &sent, |target| {
                        let (path, query) = target.split_once('?').unwrap_or((target, ""));
                        match path {
                            "/server_info" => (200, server_info.clone()),
                            "/config_dump" if query.is_empty() || filters == Filters::Ignored => {
                                (200, whole.clone())
                            }
                            "/config_dump" if filters == Filters::Refused => {
                                (400, b"FieldMask could not be successfully used.".to_vec())
                            }
                            "/config_dump" => match envoy_config_dump(dump, query) {
                                Ok(v) => (200, serde_json::to_vec_pretty(&v).unwrap()),
                                Err((status, text)) => (status, text.into_bytes()),
                            },
                            _ => (404, b"invalid path. admin commands are: ...".to_vec()),
                        }
                    })
                });
            }
        });
        StandIn {
            port,
            log,
            sent,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Body bytes sent so far; `reset` starts the count again.
    pub fn body_bytes(&self, reset: bool) -> u64 {
        if reset {
            self.log.lock().unwrap().clear();
            self.sent.swap(0, Ordering::SeqCst)
        } else {
            self.sent.load(Ordering::SeqCst)
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    conn: TcpStream,
    log: &Mutex<Vec<String>>,
    sent: &AtomicU64,
    answer: impl Fn(&str) -> (u16, Vec<u8>),
) {
    let Some(target) = super::plugins_live::read_get_target(&conn) else {
        return;
    };
    log.lock().unwrap().push(target.clone());
    let (status, body) = answer(&target);
    let content_type = if status == 200 {
        "application/json"
    } else {
        "text/plain"
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut conn = &conn;
    let _ = conn.write_all(head.as_bytes());
    if conn.write_all(&body).is_ok() {
        sent.fetch_add(body.len() as u64, Ordering::SeqCst);
    }
}

/// `triage probe config-dump config` against `url` with these `--with` values; its outcome.
fn probe_config(url: &str, with: &[&str], extra: &[&str]) -> Value {
    let mut cmd = triage();
    cmd.args(["probe", "config-dump", "config", "--with"])
        .arg(format!("admin_url={url}"));
    for w in with {
        cmd.args(["--with", w]);
    }
    cmd.args(extra);
    let out = run(&mut cmd);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.json()
}

fn requested_urls(outcome: &Value) -> Vec<String> {
    outcome["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request"].as_str().unwrap().to_string())
        .collect()
}

const WITH_ALL: &[&str] = &[
    "include_listeners=true",
    "serving_ports=[9080, 8080]",
    "vip=10.7.240.20",
];

#[test]
fn a_filtered_dump_gives_the_facts_of_the_whole_dump() {
    let whole = StandIn::start("1.15.1", Filters::Honoured, real_dump());
    let filtered = StandIn::start("1.24.3", Filters::Honoured, real_dump());
    let from_whole = probe_config(&whole.url(), WITH_ALL, &[]);
    let from_filtered = probe_config(&filtered.url(), WITH_ALL, &[]);
    assert_eq!(from_filtered["facts"], from_whole["facts"]);
    assert_eq!(from_whole["facts"]["dynamic_listener_count"], 51);
    assert_eq!(from_whole["facts"]["dynamic_cluster_count"], 80);
    assert!(
        from_whole["facts"]["route_config_names"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );

    // 1.15 is older than 1.20: its version, then the whole dump, nothing filtered.
    assert_eq!(whole.requests(), ["/server_info", "/config_dump"]);
    // 1.24: its version, then only filtered requests; never the whole dump.
    let asked = filtered.requests();
    assert_eq!(asked[0], "/server_info");
    assert!(
        asked[1..].iter().all(|r| r.starts_with("/config_dump?")),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"/config_dump?mask=bootstrap".to_string()),
        "{asked:?}"
    );
    assert!(
        filtered.body_bytes(false) < whole.body_bytes(false),
        "filtered {} bytes, whole {}",
        filtered.body_bytes(false),
        whole.body_bytes(false)
    );
    // The report lists each call that was made.
    let urls = requested_urls(&from_filtered);
    assert!(
        urls.iter()
            .any(|u| u.ends_with("/config_dump?resource=dynamic_listeners")),
        "{urls:?}"
    );
}

#[test]
fn a_step_that_needs_only_counts_moves_a_fraction_of_the_dump() {
    let envoy = StandIn::start("1.24.3", Filters::Honoured, real_dump());
    let whole = probe_config(&envoy.url(), &[], &[]);
    let whole_bytes = envoy.body_bytes(true);
    let counts = probe_config(&envoy.url(), &["sections=[counts, bootstrap]"], &[]);
    let asked = envoy.requests();
    let counts_bytes = envoy.body_bytes(true);
    for key in [
        "has_dynamic_resources",
        "dynamic_listener_count",
        "static_listener_count",
        "warming_listener_count",
        "dynamic_cluster_count",
        "static_cluster_count",
        "warming_cluster_count",
        "dynamic_route_count",
        "static_route_count",
        "dynamic_secret_count",
        "listener_errors",
        "bootstrap",
        "traffic_director",
    ] {
        assert_eq!(counts["facts"][key], whole["facts"][key], "{key}");
    }
    // What the step did not ask for is null, not an empty list or a zero that a condition
    // would read as "none".
    for key in [
        "access_log_paths",
        "inbound_listener_ports",
        "route_config_names",
    ] {
        assert_eq!(counts["facts"][key], Value::Null, "{key}");
        assert!(!whole["facts"][key].is_null(), "{key}");
    }
    assert!(
        counts_bytes * 4 < whole_bytes,
        "counts and bootstrap moved {counts_bytes} bytes against {whole_bytes} for everything"
    );
    // The listeners were asked for trimmed to their state, not their definition, and the
    // route configurations to their names.
    assert!(
        asked
            .iter()
            .any(|r| r.starts_with("/config_dump?resource=dynamic_listeners&mask=name,")),
        "{asked:?}"
    );
    assert!(
        !asked.contains(&"/config_dump?resource=dynamic_listeners".to_string()),
        "{asked:?}"
    );
    assert!(!asked.contains(&"/config_dump".to_string()), "{asked:?}");
}

#[test]
fn an_envoy_that_ignores_the_filter_is_read_as_the_whole_dump() {
    // It says 1.24 but answers every query with everything (a proxy in front that drops
    // the query would do the same): the first answer is recognised as a whole dump by its
    // entries' types and used as such, not counted as dynamic listeners.
    let reference = StandIn::start("1.15.1", Filters::Honoured, real_dump());
    let ignoring = StandIn::start("1.24.3", Filters::Ignored, real_dump());
    let expected = probe_config(&reference.url(), WITH_ALL, &[]);
    let got = probe_config(&ignoring.url(), WITH_ALL, &[]);
    assert_eq!(got["facts"], expected["facts"]);
    assert_eq!(got["facts"]["dynamic_listener_count"], 51);
    // Its first filtered answer was the whole dump: nothing more was asked.
    assert_eq!(ignoring.requests().len(), 2, "{:?}", ignoring.requests());

    // An Envoy that refuses the filters (400): the whole dump, the same facts.
    let refusing = StandIn::start("1.24.3", Filters::Refused, real_dump());
    let got = probe_config(&refusing.url(), WITH_ALL, &[]);
    assert_eq!(got["facts"], expected["facts"]);
    let asked = refusing.requests();
    assert_eq!(
        asked.last().map(String::as_str),
        Some("/config_dump"),
        "{asked:?}"
    );
}

#[test]
fn a_recorded_bundle_holds_the_filtered_calls_and_old_bundles_still_replay() {
    let dir = tempfile::tempdir().unwrap();
    let envoy = StandIn::start("1.24.3", Filters::Honoured, real_dump());
    let url = envoy.url();
    let new_bundle = dir.path().join("filtered");
    let live = probe_config(
        &url,
        &["sections=[counts, bootstrap]"],
        &["--record", new_bundle.to_str().unwrap()],
    );
    let yaml = std::fs::read_to_string(new_bundle.join("bundle.yaml")).unwrap();
    assert!(
        yaml.contains("/config_dump?resource=dynamic_listeners&mask="),
        "{yaml}"
    );
    assert!(
        yaml.match_indices("/config_dump")
            .all(|(at, _)| yaml.as_bytes()[at..].get(12) == Some(&b'?')),
        "the whole dump was not asked for:\n{yaml}"
    );

    // An older Envoy recorded: its version and the whole dump.
    let old = StandIn::start("1.15.1", Filters::Honoured, real_dump());
    let old_bundle = dir.path().join("whole");
    probe_config(&old.url(), &[], &["--record", old_bundle.to_str().unwrap()]);
    drop(envoy);
    drop(old);

    // Each replays with the servers gone: the filtered calls from the new bundle, and the
    // whole dump from the old one when a step asks for a filtered dump it does not hold.
    let replayed = probe_config(
        &url,
        &["sections=[counts, bootstrap]"],
        &["--bundle", new_bundle.to_str().unwrap()],
    );
    assert_eq!(replayed["facts"], live["facts"]);
    let old_url = yaml_admin_url(&old_bundle);
    let from_old = probe_config(
        &old_url,
        &["sections=[counts, bootstrap]"],
        &["--bundle", old_bundle.to_str().unwrap()],
    );
    assert_eq!(from_old["facts"], live["facts"]);

    // A bundle of only the whole dump, as recorded before filtering existed (no
    // /server_info): the same facts.
    let only_dump = dir.path().join("only-dump");
    std::fs::create_dir(&only_dump).unwrap();
    std::fs::write(only_dump.join("config_dump.json"), real_dump()).unwrap();
    std::fs::write(
        only_dump.join("bundle.yaml"),
        "target: vm-1\ncalls:\n  - http: {method: GET, url: \"http://127.0.0.1:15000/config_dump\"}\n    status: 200\n    body_file: config_dump.json\n",
    )
    .unwrap();
    let from_dump = probe_config(
        "http://127.0.0.1:15000",
        &["sections=[counts, bootstrap]"],
        &["--bundle", only_dump.to_str().unwrap()],
    );
    assert_eq!(from_dump["facts"], live["facts"]);
}

/// The admin URL a bundle's calls were made to.
fn yaml_admin_url(bundle: &std::path::Path) -> String {
    let yaml = std::fs::read_to_string(bundle.join("bundle.yaml")).unwrap();
    let start = yaml.find("http://127.0.0.1:").unwrap();
    let rest = &yaml[start..];
    let end = rest
        .find("/server_info")
        .or_else(|| rest.find("/config_dump"))
        .unwrap();
    rest[..end].to_string()
}

#[test]
fn the_admin_url_cannot_turn_a_filter_into_another_admin_page() {
    let envoy = StandIn::start("1.24.3", Filters::Honoured, real_dump());
    for hostile in [
        format!("{}/quitquitquit?", envoy.url()),
        format!("{}/quitquitquit#", envoy.url()),
        format!("{}/healthcheck/fail?x=", envoy.url()),
    ] {
        let out = run(triage()
            .args(["probe", "config-dump", "config", "--with"])
            .arg(format!("admin_url={hostile}")));
        assert_ne!(out.code, 0, "{hostile}: {}", out.stdout);
        assert!(
            out.stdout.contains("must not hold a query")
                || out.stderr.contains("must not hold a query"),
            "{hostile}: {}{}",
            out.stdout,
            out.stderr
        );
    }
    // A path prefix is refused by the default policy: only /server_info, /config_dump and
    // /config_dump?… on loopback are granted.
    let out = run(triage()
        .args(["probe", "config-dump", "config", "--with"])
        .arg(format!("admin_url={}/quitquitquit", envoy.url())));
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        envoy
            .requests()
            .iter()
            .all(|r| r == "/server_info" || r == "/config_dump" || r.starts_with("/config_dump?")),
        "{:?}",
        envoy.requests()
    );
}

// ---------------------------------------------------------------------------------------
// The 50 MB dump, whole against filtered, in one run (BENCHMARKS.md, "Big dumps, live"):
// `cargo test -p triage --test all live_dump::bench -- --ignored --nocapture`
// (TRIAGE_BIN=target/release/triage for the release binary).

/// The bench's dump (host/benches/config_dump.rs builds it the same way): the real Istio 1.6
/// sidecar dump with its dynamic listeners and clusters repeated under new names until it
/// is ~50 MB, pretty-printed as Envoy prints it.
fn fifty_megabytes() -> Vec<u8> {
    fn multiplied(dump: &Value, copies: usize) -> Vec<u8> {
        let mut dump = dump.clone();
        for config in dump["configs"].as_array_mut().unwrap() {
            for key in ["dynamic_listeners", "dynamic_active_clusters"] {
                let Some(Value::Array(items)) = config.get_mut(key) else {
                    continue;
                };
                let originals = items.clone();
                for copy in 1..copies {
                    items.extend(originals.iter().cloned().map(|mut e| {
                        for pointer in ["/active_state/listener/name", "/cluster/name", "/name"] {
                            if let Some(Value::String(name)) = e.pointer_mut(pointer) {
                                *name = format!("{name}~{copy}");
                            }
                        }
                        e
                    }));
                }
            }
        }
        serde_json::to_vec_pretty(&dump).unwrap()
    }
    let dump: Value = serde_json::from_slice(&real_dump()).unwrap();
    let once = multiplied(&dump, 1).len();
    let per_copy = multiplied(&dump, 2).len() - once;
    multiplied(&dump, (50_000_000 - once) / per_copy + 1)
}

/// Wall, user and system seconds of one `triage probe config-dump config`, and its facts.
fn timed_probe(url: &str, with: &[&str]) -> ([f64; 3], Value) {
    let bin = std::env::var_os("TRIAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_triage")));
    let template = triage();
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.args(["-f", "TIME %e %U %S"]).arg(bin);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(root())
        .args(["probe", "config-dump", "config", "--with"])
        .arg(format!("admin_url={url}"));
    for w in with {
        cmd.args(["--with", w]);
    }
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let line = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with("TIME "))
        .unwrap();
    let t: Vec<f64> = line[5..].split(' ').map(|x| x.parse().unwrap()).collect();
    ([t[0], t[1], t[2]], out.json()["facts"].clone())
}

#[test]
#[ignore = "a benchmark: about a minute; run it by name"]
fn bench_fifty_megabyte_dump_whole_against_filtered() {
    let dump = fifty_megabytes();
    eprintln!("dump: {:.1} MB", dump.len() as f64 / 1e6);
    let whole = StandIn::start("1.15.1", Filters::Honoured, dump.clone());
    let filtered = StandIn::start("1.24.3", Filters::Honoured, dump);
    let cases: &[(&str, &[&str])] = &[
        ("all sections (default)", &[]),
        (
            "counts, bootstrap (service-unreachable)",
            &["sections=[counts, bootstrap]"],
        ),
        (
            "listeners, routes (inbound-interception)",
            &["sections=[listeners, routes]"],
        ),
        ("bootstrap (td-config-not-found)", &["sections=[bootstrap]"]),
    ];
    // Warm the component cache first, so no row pays for compiling the plugin.
    timed_probe(&whole.url(), &["sections=[bootstrap]"]);
    whole.body_bytes(true);
    eprintln!(
        "| sections | whole dump (Envoy 1.15): bytes, wall / user / sys s | filtered (Envoy 1.24): requests, bytes, wall / user / sys s |"
    );
    eprintln!("|---|---|---|");
    for (name, with) in cases {
        let mut rows = Vec::new();
        for server in [&whole, &filtered] {
            let mut best = [f64::MAX; 3];
            let mut facts = Value::Null;
            let mut bytes = 0;
            let mut requests = 0;
            for _ in 0..3 {
                let (t, f) = timed_probe(&server.url(), with);
                if t[0] < best[0] {
                    best = t;
                }
                facts = f;
                requests = server.requests().len();
                bytes = server.body_bytes(true);
            }
            rows.push((best, facts, bytes, requests));
        }
        assert_eq!(rows[0].1, rows[1].1, "{name}: the same facts");
        let fmt = |t: [f64; 3]| format!("{:.2} / {:.2} / {:.2}", t[0], t[1], t[2]);
        eprintln!(
            "| {name} | {:.1} MB, {} | {}, {:.2} MB, {} |",
            rows[0].2 as f64 / 1e6,
            fmt(rows[0].0),
            rows[1].3,
            rows[1].2 as f64 / 1e6,
            fmt(rows[1].0)
        );
    }
}

/// What an on-call engineer reads in a report: each step's mark and reason, each finding
/// with its text; the admin URL (its port differs) replaced by ADMIN.
fn verdict(report: &Value, url: &str) -> Value {
    let text = |v: &Value| Value::String(v.to_string().replace(url, "ADMIN"));
    let steps: Vec<Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["id"], s["status"], s["severity"], text(&s["reason"])]))
        .collect();
    let findings: Vec<Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            json!([
                f["id"],
                f["step"],
                text(&f["title"]),
                text(&f["detail"]),
                text(&f["evidence"]),
                text(&f["fix"])
            ])
        })
        .collect();
    json!({"steps": steps, "findings": findings, "summary": report["summary"]})
}

/// The runbooks that read /config_dump, run live on this machine against a stand-in Envoy
/// 1.15 (the whole dump) and 1.24 (filtered): the same marks, findings and texts. A real
/// process named `envoy` runs meanwhile, so the steps that need one do run.
#[test]
fn runbooks_reading_config_dump_give_the_same_verdicts_filtered_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let envoy_bin = dir.path().join("envoy");
    std::fs::copy("/bin/sleep", &envoy_bin).unwrap();
    let mut envoy = std::process::Command::new(&envoy_bin)
        .arg("300")
        .spawn()
        .unwrap();
    let whole = StandIn::start("1.15.1", Filters::Honoured, real_dump());
    let filtered = StandIn::start("1.24.3", Filters::Honoured, real_dump());
    let mut ran_filtered = Vec::new();
    for (runbook, inputs) in [
        ("service-unreachable", &["vip=10.7.240.20"][..]),
        // The log path given: where the running Envoy logs (the locate step) depends on
        // which processes named envoy other tests run meanwhile.
        (
            "td-config-not-found",
            &["log_path=/var/log/envoy/envoy.err.log"][..],
        ),
        (
            "access-log-permission",
            &["log_path=/var/log/envoy/envoy.err.log"][..],
        ),
        ("inbound-interception", &["serving_ports=9080,8080"][..]),
        (
            "service-proxy-template-unreachable",
            &["vip=10.7.240.20", "port=9080"][..],
        ),
    ] {
        let mut verdicts = Vec::new();
        for server in [&whole, &filtered] {
            let mut cmd = triage();
            cmd.args(["run", runbook, "--target", "local", "--format", "json"])
                .args(["--input", &format!("admin_url={}", server.url())]);
            for i in inputs {
                cmd.args(["--input", i]);
            }
            let out = run(&mut cmd);
            assert!([0, 1, 3].contains(&out.code), "{runbook}: {}", out.stderr);
            verdicts.push((out.code, verdict(&out.json(), &server.url())));
        }
        assert_eq!(verdicts[0], verdicts[1], "{runbook}");
        // Whether its config step ran here (inbound-interception's needs the metadata
        // server's serving ports or the VM's): then the filtered one asked filtered.
        if filtered
            .requests()
            .iter()
            .any(|r| r.starts_with("/config_dump?"))
        {
            ran_filtered.push(runbook);
        }
        eprintln!(
            "{runbook}: exit {}, {}",
            verdicts[0].0, verdicts[0].1["findings"]
        );
        whole.body_bytes(true);
        filtered.body_bytes(true);
    }
    let _ = envoy.kill();
    let _ = envoy.wait();
    assert!(
        [
            "service-unreachable",
            "td-config-not-found",
            "access-log-permission"
        ]
        .iter()
        .all(|r| ran_filtered.contains(r)),
        "{ran_filtered:?}"
    );
}
