//! `--format sarif`: the log deserialises with serde-sarif's types and validates against the
//! SARIF 2.1.0 schema (fixtures/schemas/, copied with its source in SOURCES.md), for a run,
//! doctor and a fleet; one rule per finding id; results at the target; what could not be
//! checked is a notification; text from the target cannot carry control sequences.

use crate::redaction::{JWT, RAW, hostile_envoy_log_bundle};
use crate::{root, run, triage};
use serde_json::Value;

const BUNDLE: &str = "examples/service-unreachable/interception-missing";

fn schema() -> Value {
    let path = root().join("fixtures/schemas/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // The copy is the 2.1.0 schema, not another version saved under its name.
    assert_eq!(
        schema["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    );
    assert_eq!(
        schema["properties"]["version"]["enum"],
        serde_json::json!(["2.1.0"])
    );
    schema
}

const STRAY: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";

fn escape_stray_bracket(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter_mut()
            .map(|(key, v)| {
                if key == "pattern" && *v == STRAY {
                    *v = Value::from(STRAY.replace("]?", r"\]?"));
                    1
                } else {
                    escape_stray_bracket(v)
                }
            })
            .sum(),
        Value::Array(items) => items.iter_mut().map(escape_stray_bracket).sum(),
        _ => 0,
    }
}

/// The log, checked three ways: serde-sarif reads it, the schema accepts it, and its
/// version is 2.1.0. Returns it as JSON for the test's own checks.
fn valid_sarif(stdout: &str) -> Value {
    let typed: serde_sarif::sarif::Sarif = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("serde-sarif cannot read it ({e}):\n{stdout}"));
    assert_eq!(typed.runs.len(), 1);
    let log: Value = serde_json::from_str(stdout).unwrap();
    // The published schema's `language` patterns (run, toolComponent) hold a stray `]`, a
    // literal to ECMA-262 that jsonschema's check of the schema itself refuses. Escaping it
    // keeps its meaning (ECMA-262 reads both as the character `]`) and changes nothing else.
    let mut schema = schema();
    let fixed = escape_stray_bracket(&mut schema);
    assert_eq!(fixed, 2, "the two language patterns, as published");
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not SARIF 2.1.0: {errors:#?}\n{stdout}");
    assert_eq!(log["version"], "2.1.0");
    log
}

fn rule_ids(log: &Value) -> Vec<String> {
    log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn results(log: &Value) -> &Vec<Value> {
    log["runs"][0]["results"].as_array().unwrap()
}

/// The target a result or notification is located at (its one logical location).
fn located_at(item: &Value) -> &str {
    let locations = item["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1, "{item:#}");
    assert!(locations[0].get("physicalLocation").is_none(), "{item:#}");
    locations[0]["logicalLocations"][0]["name"]
        .as_str()
        .unwrap()
}

#[test]
fn a_run_is_sarif_with_a_rule_per_finding_id_and_results_at_the_target() {
    let json = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--bundle",
            BUNDLE,
        ])
        .args(["--input", "vip=10.0.0.1"]));
    let report = json.json();
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "-o",
            "sarif",
            "--bundle",
            BUNDLE,
        ])
        .args(["--input", "vip=10.0.0.1"]));
    assert_eq!(
        out.code, json.code,
        "same exit code as JSON: {}",
        out.stderr
    );
    let log = valid_sarif(&out.stdout);

    let mut ids = crate::finding_ids(&report);
    ids.dedup();
    assert!(!ids.is_empty(), "the example fires findings: {report:#}");
    assert_eq!(rule_ids(&log), ids);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for (rule, finding) in rules.iter().zip(report["findings"].as_array().unwrap()) {
        assert_eq!(rule["shortDescription"]["text"], finding["title"]);
        let help = rule["help"]["text"].as_str().unwrap();
        assert!(help.contains("triage guide service-unreachable"), "{help}");
        if let Some(fix) = finding["fix"].as_str() {
            assert!(help.contains(fix), "the rule's help gives the fix: {help}");
        }
    }
    let target = report["target"].as_str().unwrap();
    let results = results(&log);
    assert_eq!(results.len(), report["findings"].as_array().unwrap().len());
    for (result, finding) in results.iter().zip(report["findings"].as_array().unwrap()) {
        assert_eq!(result["ruleId"], finding["id"]);
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], finding["id"]);
        let level = match finding["severity"].as_str().unwrap() {
            "info" => "note",
            other => other,
        };
        assert_eq!(result["level"], level);
        assert_eq!(located_at(result), target);
    }
    assert_eq!(
        log["runs"][0]["invocations"][0]["executionSuccessful"],
        report["summary"]["complete"]
    );
}

#[test]
fn doctor_is_sarif_and_says_what_it_could_not_check() {
    let out = run(triage().args(["doctor", "--format", "sarif", "--bundle", BUNDLE]));
    let json = run(triage().args(["doctor", "--format", "json", "--bundle", BUNDLE]));
    assert_eq!(out.code, json.code, "{}", out.stderr);
    let log = valid_sarif(&out.stdout);
    let doctor = json.json();
    let fired: Vec<&str> = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(fired.contains(&"interception-missing"), "{doctor:#}");
    let results = results(&log);
    assert_eq!(results.len(), fired.len());
    for id in &fired {
        assert!(rule_ids(&log).iter().any(|r| r == id), "no rule for {id}");
    }
    for r in results {
        assert_eq!(located_at(r), doctor["target"].as_str().unwrap());
    }
    // Each unknown or errored step is a notification at the target, and the invocation is
    // not successful then: an empty dashboard must not read as a clean machine.
    let invocation = &log["runs"][0]["invocations"][0];
    let unchecked = doctor["unchecked"].as_array().unwrap();
    let notes = invocation["toolExecutionNotifications"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(notes, unchecked.len(), "{invocation:#}");
    assert_eq!(
        invocation["executionSuccessful"],
        doctor["summary"]["complete"]
    );
}

#[test]
fn a_fleet_is_one_sarif_log_with_each_targets_results_and_the_unreachable_noted() {
    let out = run(triage().args([
        "run",
        "service-unreachable",
        "--format",
        "sarif",
        "--bundle",
        BUNDLE,
        "--bundle",
        "examples/service-unreachable/interception-in-place",
        "--bundle",
        "no-such-bundle",
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let log = valid_sarif(&out.stdout);
    let results = results(&log);
    assert!(!results.is_empty());
    for r in results {
        assert_eq!(located_at(r), format!("bundle:{BUNDLE}"), "{r:#}");
    }
    let notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .expect("the missing bundle is noted");
    let missing: Vec<&Value> = notes
        .iter()
        .filter(|n| located_at(n) == "bundle:no-such-bundle")
        .collect();
    assert_eq!(missing.len(), 1, "{notes:#?}");
    assert_eq!(missing[0]["descriptor"]["id"], "unreachable");
    assert_eq!(
        log["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
}

/// Every string in a JSON document.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

/// JSON escapes control characters, but a viewer decodes them again: the decoded strings
/// must hold none of the hostile sequences (a terminal viewer would act on them).
#[test]
fn sarif_text_from_the_target_carries_no_control_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_envoy_log_bundle(dir.path());
    let out = run(triage()
        .args(["run", "envoy-logs", "--format", "sarif", "--bundle"])
        .arg(&bundle));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let log = valid_sarif(&out.stdout);
    let mut all = Vec::new();
    strings(&log, &mut all);
    let text = all.join("\n");
    for raw in RAW {
        assert!(!text.contains(raw), "{raw:?} reached the SARIF log: {text}");
    }
    assert!(text.contains(r"my-net\x1b[2J"), "shown as text: {text}");
    assert!(!text.contains(JWT), "the bearer token was redacted: {text}");
}
