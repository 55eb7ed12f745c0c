//! Hostile and huge inputs: every parser returns an error, never panics or overflows.

use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;
use triage_plugin_config_dump::*;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn every_input_file() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["envoy-admin", "envoy-bootstrap", "envoy-config-dump"] {
        let entries =
            std::fs::read_dir(format!("{REAL}/{dir}")).unwrap_or_else(|e| panic!("{dir}: {e}"));
        files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    let entries = std::fs::read_dir(DATA).unwrap_or_else(|e| panic!("{e}"));
    files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    files.sort();
    files
}

fn all_parsers(bytes: &[u8]) -> [bool; 5] {
    let min = EnvoyVersion {
        major: 1,
        minor: 9,
        patch: 1,
    };
    let q = Query {
        vip: "10.0.0.1".parse().ok(),
        port: Some(80),
        serving_ports: Some(vec![80]),
        include_listeners: true,
    };
    [
        parse_config_dump(bytes, &q).is_ok(),
        parse_clusters(bytes, 99.0).is_ok(),
        parse_server_info(bytes, &min).is_ok(),
        parse_bootstrap_file(bytes).is_ok(),
        parse_csds_nodes(bytes).is_ok(),
    ]
}

#[test]
fn every_sixteenth_prefix_of_every_fixture() {
    for path in every_input_file() {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for k in 0..16 {
            let prefix = bytes.get(..bytes.len() * k / 16).unwrap_or_default();
            all_parsers(prefix);
            if path.extension().is_some_and(|e| e == "json") && !prefix.is_empty() {
                // A cut JSON document is never a valid dump.
                let q = Query::default();
                assert!(
                    parse_config_dump(prefix, &q).is_err(),
                    "{} cut at {k}/16",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn truncation_error_says_so() {
    let bytes = std::fs::read(format!(
        "{REAL}/envoy-config-dump/osm-bookbuyer.config_dump.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let cut = bytes.get(..bytes.len() / 2).unwrap_or_default();
    let err = parse_config_dump(cut, &Query::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn empty_whitespace_and_bom() {
    for input in [
        &b""[..],
        b"   \n\t",
        b"\xEF\xBB\xBF",
        b"null",
        b"[]",
        b"{}",
        b"0",
        b"\"configs\"",
    ] {
        assert!(!all_parsers(input)[0], "{input:?}");
    }
    let err = parse_config_dump(b"", &Query::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("empty"), "{err}");
    let bom = b"\xEF\xBB\xBF{\"configs\": []}";
    assert!(parse_config_dump(bom, &Query::default()).is_ok_and(|f| !f.has_dynamic_resources));
}

#[test]
fn binary_garbage() {
    // A fixed xorshift stream: reproducible without a rand dependency.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for len in [1usize, 7, 64, 1000, 65_536] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        assert_eq!(all_parsers(&bytes), [false; 5], "len {len}");
    }
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let depth = 200_000;
    let (open, close) = ("[".repeat(depth), "]".repeat(depth));
    // Skipped values are walked without recursion, so depth there costs nothing.
    let in_ignored_field = format!("{{\"configs\":[{{\"x\":{open}{close}}}]}}");
    let facts = parse_config_dump(in_ignored_field.as_bytes(), &Query::default());
    assert!(facts.is_ok_and(|f| !f.has_dynamic_resources));
    // Node metadata is kept as a JSON value; serde_json's recursion limit stops it.
    let in_metadata = format!(
        "{{\"configs\":[{{\"bootstrap\":{{\"node\":{{\"metadata\":{{\"x\":{open}{close}}}}}}}}}]}}"
    );
    let err = parse_config_dump(in_metadata.as_bytes(), &Query::default())
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("recursion limit")),
        "{err:?}"
    );
    let yaml_metadata = format!("node:\n  metadata:\n    x: {open}{close}\n");
    assert!(parse_bootstrap_file(yaml_metadata.as_bytes()).is_err());
    // Unclosed and object nesting, everywhere.
    let unclosed = format!(
        "{{\"configs\":[{{\"static_listeners\":[{{\"listener\":{{\"filter_chains\":[{{\"filters\":[{{\"typed_config\":{open}"
    );
    let objects = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let yaml_unclosed = format!("node:\n  metadata:\n    x: {open}\n");
    for input in [unclosed, yaml_unclosed] {
        assert_eq!(all_parsers(input.as_bytes()), [false; 5]);
    }
    // Valid but pointless: only its shape matters, and no parser may crash on it.
    all_parsers(objects.as_bytes());
    all_parsers(in_ignored_field.as_bytes());
}

#[test]
fn over_the_limit_is_refused_up_front() {
    let bytes = std::fs::read(format!(
        "{REAL}/envoy-config-dump/osm-bookbuyer.config_dump.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let err = parse_config_dump_limited(&bytes, &Query::default(), 1024)
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("limit")));
    assert!(parse_config_dump_limited(&bytes, &Query::default(), bytes.len()).is_ok());
}

#[test]
fn wrong_types_are_errors_not_panics() {
    let q = Query {
        include_listeners: true,
        ..Query::default()
    };
    for input in [
        r#"{"configs": {}}"#,
        r#"{"configs": [1, "x", null]}"#,
        r#"{"configs": [{"dynamic_listeners": 5}]}"#,
        r#"{"configs": [{"dynamic_listeners": [{"active_state": {"listener": {"filter_chains": "x"}}}]}]}"#,
        r#"{"configs": [{"static_clusters": {"a": 1}}]}"#,
    ] {
        assert!(parse_config_dump(input.as_bytes(), &q).is_err(), "{input}");
    }
    // Odd but harmless values are tolerated.
    let odd = r#"{"configs": [{"dynamic_listeners": [{"active_state": {"listener": {"name": "l",
        "address": {"socket_address": {"address": "10.0.0.1", "port_value": "99999"}},
        "filter_chains": [{"filter_chain_match": {"destination_port": "80",
            "prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": {"value": 8}}]}}]}}}]}]}"#;
    let facts = parse_config_dump(odd.as_bytes(), &q).unwrap_or_else(|e| panic!("{e}"));
    let listener = facts
        .listeners
        .as_deref()
        .unwrap_or_default()
        .first()
        .unwrap_or_else(|| panic!("no listener"));
    assert_eq!(listener.port, None);
    let chain = listener
        .filter_chains
        .first()
        .unwrap_or_else(|| panic!("no chain"));
    assert_eq!(
        (chain.destination_port, chain.prefix_ranges.clone()),
        (Some(80), vec!["10.0.0.0/8".to_owned()])
    );
}

/// ~20 MB built by repeating a real sidecar dump's listeners: the counts must scale exactly
/// and the parse must stay well within a second in an optimised build.
#[test]
fn twenty_megabyte_dump() {
    let path =
        format!("{REAL}/envoy-config-dump/istio-1.6-bookinfo-productpage-sidecar.config_dump.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut doc: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let configs = doc
        .get_mut("configs")
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("configs"));
    let listeners_dump = configs
        .iter_mut()
        .find(|c| {
            c.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("ListenersConfigDump"))
        })
        .unwrap_or_else(|| panic!("no listeners dump"));
    let dynamic = listeners_dump
        .get_mut("dynamic_listeners")
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("no dynamic_listeners"));
    let original = dynamic.clone();
    let one_copy = serde_json::to_vec(&original).map(|v| v.len()).unwrap_or(1);
    let copies = (20 * 1024 * 1024) / one_copy + 1;
    for _ in 1..copies {
        dynamic.extend(original.iter().cloned());
    }
    let big = serde_json::to_vec(&doc).unwrap_or_else(|e| panic!("{e}"));
    assert!(big.len() >= 20 * 1024 * 1024, "{} bytes", big.len());

    let started = Instant::now();
    let with_listeners = Query {
        include_listeners: true,
        ..Query::default()
    };
    let facts = parse_config_dump(&big, &with_listeners).unwrap_or_else(|e| panic!("{e}"));
    let elapsed = started.elapsed();
    eprintln!(
        "parsed {} MB with {} listeners in {:?} ({:.0} MB/s, unoptimised builds are ~10x slower)",
        big.len() / 1_000_000,
        facts.dynamic_listener_count,
        elapsed,
        big.len() as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert_eq!(facts.dynamic_listener_count, 51 * copies);
    assert_eq!(facts.static_listener_count, 1);
    assert_eq!(facts.listeners.map(|l| l.len()), Some(51 * copies + 1));
    assert_eq!(facts.dynamic_cluster_count, 80);
    assert_eq!(facts.inbound_listener_ports, vec![9080, 15020]);
    // Names are deduplicated, so repetition does not grow them.
    let single = parse_config_dump(&bytes, &Query::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(facts.route_config_names, single.route_config_names);
}
