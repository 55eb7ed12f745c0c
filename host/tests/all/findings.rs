//! `runbooks/findings.yaml`, the finding ids' contract, checked against the built-in runbooks
//! both ways, and every finding id expected to fire by at least one scenario case.

use super::*;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

const CONTRACT: &str = "runbooks/findings.yaml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contract {
    findings: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    runbooks: Vec<String>,
    severity: String,
    meaning: String,
    code: String,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    retired: bool,
}

/// Where a built-in runbook declares a finding.
struct Declared {
    runbook: String,
    severity: String,
    title: String,
    code: Option<String>,
}

/// The detection runbook `triage doctor` runs first: built in, not under runbooks/, and
/// its findings are part of the contract too.
const DOCTOR_DETECT: &str = "host/src/cli/doctor-detect.yaml";

/// finding id → every declaration, over runbooks/<id>/runbook.yaml and doctor's detection.
fn declared_findings() -> BTreeMap<String, Vec<Declared>> {
    let mut out: BTreeMap<String, Vec<Declared>> = BTreeMap::new();
    for (runbook, yaml) in builtin_runbooks() {
        for step in yaml["steps"].as_sequence().into_iter().flatten() {
            for finding in step["findings"].as_sequence().into_iter().flatten() {
                let text = |key: &str| finding[key].as_str().unwrap_or_default().to_string();
                out.entry(text("id")).or_default().push(Declared {
                    runbook: runbook.clone(),
                    severity: text("severity"),
                    title: text("title"),
                    code: finding["code"].as_str().map(str::to_string),
                });
            }
        }
    }
    out
}

fn builtin_runbooks() -> Vec<(String, serde_yaml::Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let file = entry.unwrap().path().join("runbook.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let id = yaml["id"].as_str().unwrap_or_default().to_string();
        out.push((id, yaml));
    }
    let detect = std::fs::read_to_string(root().join(DOCTOR_DETECT)).unwrap();
    out.push((
        "doctor-detect".to_string(),
        serde_yaml::from_str(&detect).unwrap_or_else(|e| panic!("{DOCTOR_DETECT}: {e}")),
    ));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The finding ids the scenario cases of one runbook expect to fire.
fn expected_by_cases(runbook: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if runbook == "doctor-detect" {
        // Its cases are the doctor tests: an id they assert on, quoted, is known to fire.
        let tests = std::fs::read_to_string(root().join("host/tests/all/doctor.rs")).unwrap();
        for id in declared_findings_of_detect() {
            if tests.contains(&format!("\"{id}\"")) {
                out.insert(id);
            }
        }
        return out;
    }
    let tests = root().join("runbooks").join(runbook).join("tests");
    for case in std::fs::read_dir(tests).into_iter().flatten() {
        let file = case.unwrap().path().join("case.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let case: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        out.extend(
            case["findings"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_string)),
        );
    }
    out
}

/// The finding ids of doctor's detection runbook.
fn declared_findings_of_detect() -> Vec<String> {
    let text = std::fs::read_to_string(root().join(DOCTOR_DETECT)).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    yaml["steps"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|s| s["findings"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect()
}

fn load_contract() -> Contract {
    let path = root().join(CONTRACT);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{CONTRACT}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{CONTRACT}: {e}"))
}

/// What `contract` gets wrong about `declared`, one line each, with the fix in the line.
fn contract_problems(
    contract: &Contract,
    declared: &BTreeMap<String, Vec<Declared>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed: BTreeMap<&str, &Entry> = BTreeMap::new();
    let mut codes: BTreeMap<&str, &str> = BTreeMap::new();
    for entry in &contract.findings {
        if listed.insert(&entry.id, entry).is_some() {
            problems.push(format!(
                "`{}` has two entries in {CONTRACT}: keep one",
                entry.id
            ));
        }
        if !matches!(entry.severity.as_str(), "error" | "warning" | "info") {
            problems.push(format!(
                "`{}`: severity `{}` in {CONTRACT} is not error, warning or info",
                entry.id, entry.severity
            ));
        }
        if entry.meaning.trim().is_empty() || entry.meaning.contains('\n') {
            problems.push(format!(
                "`{}`: `meaning` in {CONTRACT} must be one non-empty line",
                entry.id
            ));
        }
        if !is_finding_code(&entry.code) {
            problems.push(format!(
                "`{}`: code `{}` in {CONTRACT} is not 2 to 5 capital letters and 4 digits",
                entry.id, entry.code
            ));
        }
        if let Some(other) = codes.insert(&entry.code, &entry.id) {
            problems.push(format!(
                "`{}` and `{other}` share the code `{}` in {CONTRACT}: codes are unique",
                entry.id, entry.code
            ));
        }
        if let Some(help) = &entry.help
            && !help.starts_with("https://")
        {
            problems.push(format!(
                "`{}`: `help` in {CONTRACT} must be an https:// URL, not `{help}`",
                entry.id
            ));
        }
    }

    let mut missing = Vec::new();
    for (id, declarations) in declared {
        let runbooks: Vec<&str> = declarations.iter().map(|d| d.runbook.as_str()).collect();
        let runbooks: Vec<&str> = runbooks
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let severities: BTreeSet<&str> = declarations.iter().map(|d| d.severity.as_str()).collect();
        if severities.len() > 1 {
            let each: Vec<String> = declarations
                .iter()
                .map(|d| format!("{} in {}", d.severity, d.runbook))
                .collect();
            problems.push(format!(
                "`{id}` has different severities ({}): a finding id means one thing, so give it \
                 one severity or use another id",
                each.join(", ")
            ));
        }
        let Some(entry) = listed.get(id.as_str()) else {
            missing.push((id, runbooks, declarations));
            continue;
        };
        if entry.retired {
            problems.push(format!(
                "`{id}` is marked `retired: true` in {CONTRACT} but runbook(s) {} declare it: \
                 a retired id is never reused, so give the finding a new id (or un-retire it)",
                runbooks.join(", ")
            ));
        }
        let mut listed_runbooks: Vec<&str> = entry.runbooks.iter().map(String::as_str).collect();
        listed_runbooks.sort();
        if listed_runbooks != runbooks {
            problems.push(format!(
                "`{id}`: {CONTRACT} says `runbooks: [{}]` but it is declared by [{}]: set \
                 `runbooks: [{}]`",
                entry.runbooks.join(", "),
                runbooks.join(", "),
                runbooks.join(", ")
            ));
        }
        for d in declarations {
            if d.code.as_deref() != Some(entry.code.as_str()) {
                problems.push(format!(
                    "`{id}` in runbook {} has `code: {}` but {CONTRACT} gives it `{}`: set \
                     `code: {}` on the finding",
                    d.runbook,
                    d.code.as_deref().unwrap_or("(none)"),
                    entry.code,
                    entry.code
                ));
            }
        }
        if severities.len() == 1 && !severities.contains(entry.severity.as_str()) {
            problems.push(format!(
                "`{id}`: {CONTRACT} says `severity: {}` but runbook(s) {} declare {}: a \
                 severity change is a contract change (bots filter on it); update the entry if \
                 it is meant",
                entry.severity,
                runbooks.join(", "),
                declarations[0].severity
            ));
        }
    }
    if !missing.is_empty() {
        let mut text = format!(
            "{} finding id(s) declared by runbooks are missing from {CONTRACT}: {}. Add these \
             entries (write `meaning` as one line saying what it means when it fires):",
            missing.len(),
            missing
                .iter()
                .map(|(id, _, _)| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (id, runbooks, declarations) in &missing {
            text.push_str(&format!(
                "\n  - id: {id}\n    runbooks: [{}]\n    severity: {}\n    meaning: {}\n    code: {}",
                runbooks.join(", "),
                declarations[0].severity,
                declarations[0].title.lines().next().unwrap_or_default(),
                declarations[0]
                    .code
                    .as_deref()
                    .unwrap_or("(the next free TRGssnn of its guide section)")
            ));
        }
        problems.push(text);
    }
    for entry in &contract.findings {
        if !entry.retired && !declared.contains_key(&entry.id) {
            problems.push(format!(
                "`{}` is in {CONTRACT} but no built-in runbook declares it: if a runbook \
                 should, add the finding there; if it was renamed or removed after a release, \
                 keep the entry with `retired: true`; if it never shipped, delete the entry",
                entry.id
            ));
        }
        if entry.retired && !entry.runbooks.is_empty() {
            problems.push(format!(
                "`{}` is retired: set `runbooks: []` in {CONTRACT}",
                entry.id
            ));
        }
    }
    problems
}

fn is_finding_code(code: &str) -> bool {
    let letters = code.chars().take_while(char::is_ascii_uppercase).count();
    (2..=5).contains(&letters)
        && code.len() == letters + 4
        && code[letters..].chars().all(|c| c.is_ascii_digit())
}

/// Every code ever issued, with the finding it names. A code is a promise to whoever wrote
/// it into a ticket, a dashboard or an alert rule: it is never removed, renamed or reused, so
/// this list only grows (append a new finding's code here when you add it to the contract).
const ISSUED_CODES: &[(&str, &str)] = &[
    ("TRG0001", "envoy-admin-unreachable"),
    ("TRG0101", "envoy-version"),
    ("TRG0102", "envoy-version-unknown"),
    ("TRG0103", "envoy-version-too-old"),
    ("TRG0104", "envoy-version-mismatch"),
    ("TRG0201", "envoy-log-not-found"),
    ("TRG0202", "td-config-not-found"),
    ("TRG0203", "td-entity-not-found"),
    ("TRG0204", "access-log-permission-denied"),
    ("TRG0205", "xds-stream-unavailable"),
    ("TRG0206", "log-errors-before-restart"),
    ("TRG0207", "envoy-log-location"),
    ("TRG0301", "proxy-uid-not-excluded"),
    ("TRG0302", "td-api-disabled"),
    ("TRG0303", "vm-scope-missing"),
    ("TRG0304", "sa-missing-role"),
    ("TRG0305", "td-dns-failure"),
    ("TRG0306", "td-unreachable"),
    ("TRG0401", "envoy-not-running"),
    ("TRG0402", "no-dynamic-config"),
    ("TRG0403", "interception-missing"),
    ("TRG0404", "vip-not-intercepted"),
    ("TRG0501", "ip6tables-unavailable"),
    ("TRG0502", "ip6tables-not-installed"),
    ("TRG0503", "ipv6-disabled-in-kernel"),
    ("TRG0701", "intercepts-all-outbound"),
    ("TRG0702", "pod-intercepts-all-outbound"),
    ("TRG0703", "pod-judged-from-spec"),
    ("TRG0801", "envoy-restarted-recently"),
    ("TRG0802", "pod-proxy-uid-not-excluded"),
    ("TRG0901", "endpoints-mostly-unhealthy"),
    ("TRG1001", "no-forwarding-rule"),
    ("TRG1002", "network-mismatch"),
    ("TRG1003", "project-number-missing"),
    ("TRG1101", "bootstrap-not-started"),
    ("TRG1102", "bootstrap-in-progress"),
    ("TRG1103", "bootstrap-failed"),
    ("TRG1104", "bootstrap-not-finished"),
    ("TRG1105", "serial-agent-log"),
    ("TRG1201", "vip-not-in-service-cidrs"),
    ("TRG1202", "vip-not-in-listeners"),
    ("TRG1203", "agent-heartbeat-stale"),
    ("TRG1204", "agent-last-failure"),
    ("TRG1301", "serving-port-not-redirected"),
    ("TRG1302", "inbound-listener-missing"),
    ("TRG1303", "inbound-port-dropped"),
    ("TRG1401", "injector-webhook-unreachable"),
    ("TRG1402", "deployment-not-ready"),
    ("TRG1403", "injector-webhook-down"),
    ("TRG1404", "injector-webhook-certificate"),
    ("TRG1405", "admission-webhook-failing"),
    ("TRG1406", "missing-firewall-9443"),
    ("TRG1501", "discovery-address-wrong"),
    ("TRG1502", "network-not-set"),
    ("TRG1503", "project-mismatch"),
    ("TRG1504", "istio-injector-active"),
    ("TRG1601", "server-first-port-intercepted"),
    ("TRG1602", "server-first-port-unconfirmed"),
];

#[test]
fn finding_codes_are_never_reused_or_dropped() {
    let contract = load_contract();
    let by_code: BTreeMap<&str, &str> = contract
        .findings
        .iter()
        .map(|e| (e.code.as_str(), e.id.as_str()))
        .collect();
    let mut problems = Vec::new();
    for (code, id) in ISSUED_CODES {
        match by_code.get(code) {
            Some(now) if now == id => {}
            Some(now) => problems.push(format!(
                "{code} was issued for `{id}` but {CONTRACT} gives it to `{now}`: a code is never \
                 reused; give `{now}` the next free code of its section"
            )),
            None => problems.push(format!(
                "{code} (`{id}`) is gone from {CONTRACT}: keep the entry, with `retired: true` if \
                 no runbook fires it any more"
            )),
        }
    }
    let issued: BTreeSet<&str> = ISSUED_CODES.iter().map(|(c, _)| *c).collect();
    for entry in &contract.findings {
        if !issued.contains(entry.code.as_str()) {
            problems.push(format!(
                "{} (`{}`) is new: append (\"{}\", \"{}\") to ISSUED_CODES in host/tests/all/findings.rs",
                entry.code, entry.id, entry.code, entry.id
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn finding_ids_in_the_contract_match_the_runbooks() {
    let problems = contract_problems(&load_contract(), &declared_findings());
    assert!(
        problems.is_empty(),
        "{CONTRACT} and the built-in runbooks disagree:\n{}",
        problems.join("\n")
    );
}

/// Every finding id is expected to fire by a scenario case of a runbook that declares it, so
/// each one is known to fire on some recorded system. (Per id, not per runbook: a finding shared
/// by several runbooks, such as `bootstrap-failed`, is proven once.)
#[test]
fn finding_ids_each_fire_in_a_scenario() {
    let mut problems = Vec::new();
    for (id, declarations) in declared_findings() {
        let runbooks: BTreeSet<String> = declarations.into_iter().map(|d| d.runbook).collect();
        if !runbooks.iter().any(|r| expected_by_cases(r).contains(&id)) {
            let runbooks: Vec<String> = runbooks.into_iter().collect();
            problems.push(format!(
                "no scenario case expects `{id}` to fire; add one under runbooks/{}/tests/ \
                 (see README, Scenario tests)",
                runbooks.join("/tests/ or runbooks/")
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The checker itself: each kind of disagreement is reported, by id, with its fix.
#[test]
fn finding_ids_check_names_missing_extra_and_changed_ids() {
    let contract: Contract = serde_yaml::from_str(
        "findings:
  - {id: kept, code: TRG0001, runbooks: [a], severity: error, meaning: fine}
  - {id: gone, code: TRG0002, runbooks: [a], severity: error, meaning: no runbook has it}
  - {id: moved, code: TRG0003, runbooks: [a], severity: error, meaning: declared by b too}
  - {id: softened, code: TRG0004, runbooks: [a], severity: error, meaning: now a warning}
  - {id: old, code: TRG0005, runbooks: [], severity: error, meaning: retired long ago, retired: true}
  - {id: kept, code: TRG0006, runbooks: [a], severity: error, meaning: twice}
  - {id: reuses, code: TRG0005, runbooks: [a], severity: error, meaning: takes a retired code}
  - {id: recoded, code: trg7, runbooks: [a], severity: error, meaning: a bad code}
",
    )
    .unwrap();
    let declare = |runbook: &str, severity: &str, code: &str| Declared {
        runbook: runbook.into(),
        severity: severity.into(),
        title: "Something is {{ wrong }}".into(),
        code: Some(code.into()),
    };
    let declared = BTreeMap::from([
        ("kept".to_string(), vec![declare("a", "error", "TRG0001")]),
        (
            "moved".to_string(),
            vec![
                declare("a", "error", "TRG0003"),
                declare("b", "error", "TRG0099"),
            ],
        ),
        (
            "softened".to_string(),
            vec![declare("a", "warning", "TRG0004")],
        ),
        (
            "new-one".to_string(),
            vec![declare("c", "warning", "TRG0007")],
        ),
        ("reuses".to_string(), vec![declare("a", "error", "TRG0005")]),
        ("recoded".to_string(), vec![declare("a", "error", "trg7")]),
    ]);
    let problems = contract_problems(&contract, &declared).join("\n");
    for expected in [
        "`kept` has two entries",
        "`gone` is in runbooks/findings.yaml but no built-in runbook declares it",
        "`moved`: runbooks/findings.yaml says `runbooks: [a]` but it is declared by [a, b]: set `runbooks: [a, b]`",
        "`softened`: runbooks/findings.yaml says `severity: error` but runbook(s) a declare warning",
        "missing from runbooks/findings.yaml: `new-one`",
        "`reuses` and `old` share the code `TRG0005`",
        "`recoded`: code `trg7` in runbooks/findings.yaml is not 2 to 5 capital letters and 4 digits",
        "`moved` in runbook b has `code: TRG0099` but runbooks/findings.yaml gives it `TRG0003`",
        "  - id: new-one\n    runbooks: [c]\n    severity: warning\n    meaning: Something is {{ wrong }}",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
    // A retired entry is fine as it is: only the finding that took its code is named.
    assert!(
        !problems.lines().any(|l| l.starts_with("`old`")),
        "{problems}"
    );
}
