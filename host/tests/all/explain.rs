//! Finding codes and help links (issue 10 §5): `triage explain CODE|ID` works offline from
//! the binary, every report format shows a finding's code beside its id with a help link,
//! and the runbook's guide section shows in English beside the Spanish heading.

use super::*;

const GUIDE_URL: &str = "https://cloud.google.com/traffic-director/docs/troubleshooting";

fn interception_missing(format: &str) -> Run {
    run(triage().args([
        "run",
        "service-unreachable",
        "--bundle",
        "examples/service-unreachable/interception-missing",
        "--input",
        "vip=10.0.0.1",
        "--format",
        format,
    ]))
}

#[test]
fn explain_by_code_prints_meaning_check_fix_and_guide() {
    // From an empty directory, with no checkout around: what the binary holds is enough.
    let empty = tempfile::tempdir().unwrap();
    let out = run(triage()
        .current_dir(empty.path())
        .args(["explain", "TRG0403"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    for needle in [
        "TRG0403  interception-missing (error)",
        "Runbook service-unreachable:",
        "Step interception:",
        "Fires when:",
        "Fix (",
        "Guide section: Service configured with Traffic Director is not reachable",
        "(Spanish: No se puede acceder al servicio configurado con Traffic Director)",
        GUIDE_URL,
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} not in:\n{}",
            out.stdout
        );
    }
    // The id and a lower-case code find the same page.
    let by_id = run(triage().args(["explain", "interception-missing"]));
    assert_eq!(by_id.stdout, out.stdout);
    let lower = run(triage().args(["explain", "trg0403"]));
    assert_eq!(lower.stdout, out.stdout);
}

#[test]
fn explain_a_shared_finding_names_every_runbook_that_checks_it() {
    let out = run(triage().args(["explain", "envoy-version-too-old"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("TRG0103  envoy-version-too-old (error)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Runbook envoy-version:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Runbook proxy-not-connecting:"),
        "{}",
        out.stdout
    );
}

#[test]
fn explain_without_argument_lists_every_code_once() {
    let out = run(triage().args(["explain"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let codes: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert!(codes.contains(&"TRG0001"), "{}", out.stdout);
    assert!(codes.contains(&"TRG0403"), "{}", out.stdout);
    assert!(
        !codes.contains(&"-"),
        "a built-in finding without a code:\n{}",
        out.stdout
    );
    let unique: std::collections::BTreeSet<&&str> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len(), "{}", out.stdout);
}

#[test]
fn explain_unknown_or_hostile_names_one_line_exit_2() {
    for arg in ["TRG9999", "no-such-finding", "x\u{1b}[2J\nforged: line"] {
        let out = run(triage().args(["explain", arg]));
        assert_eq!(out.code, 2, "{arg:?}: {}", out.stdout);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{arg:?}:\n{}", out.stderr);
        assert!(
            lines[0].starts_with("error: no finding has the code or id"),
            "{}",
            lines[0]
        );
        assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
    }
    // An argument that looks like an option is clap's to refuse, not a lookup.
    let out = run(triage().args(["explain", "--format=json"]));
    assert_eq!(out.code, 2);
}

#[test]
fn json_report_carries_code_help_and_guide() {
    let out = interception_missing("json");
    let report = out.json();
    let guide = &report["runbook"]["guide"];
    assert_eq!(guide["url"], GUIDE_URL, "{report:#}");
    assert_eq!(
        guide["title_es"],
        "No se puede acceder al servicio configurado con Traffic Director"
    );
    assert_eq!(
        guide["title"],
        "Service configured with Traffic Director is not reachable"
    );
    // v2 readers keep working: the old keys are all there.
    assert!(report["runbook"]["source"].is_string());
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "interception-missing")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(f["code"], "TRG0403");
    assert_eq!(f["help"], GUIDE_URL);
    for key in ["id", "step", "severity", "title", "fix"] {
        assert!(f[key].is_string(), "{key} missing in {f:#}");
    }
}

#[test]
fn human_markdown_and_junit_show_code_and_help() {
    let human = interception_missing("human").stdout;
    assert!(human.contains("interception-missing [TRG0403]"), "{human}");
    assert!(
        human.contains(&format!("help: triage explain TRG0403 · {GUIDE_URL}")),
        "{human}"
    );
    assert!(
        human.contains(
            "guide: Service configured with Traffic Director is not reachable / No se puede acceder"
        ),
        "{human}"
    );

    let md = interception_missing("markdown").stdout;
    assert!(md.contains("`interception-missing` `TRG0403`"), "{md}");
    assert!(
        md.contains(&format!(
            "help: `triage explain TRG0403` · [guide]({GUIDE_URL})"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("Guide section: [Service configured with Traffic Director is not reachable]({GUIDE_URL})")),
        "{md}"
    );

    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--bundle",
            "examples/service-unreachable/interception-missing",
            "--input",
            "vip=10.0.0.1",
            "--format",
            "json",
            "--junit",
        ])
        .arg(&junit));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            "TRG0403 interception-missing: triage explain TRG0403 · {GUIDE_URL}"
        )),
        "{xml}"
    );
}

#[test]
fn every_builtin_runbook_links_its_guide_section() {
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let file = entry.unwrap().path().join("runbook.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let guide = &yaml["guide"];
        assert!(
            guide["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(GUIDE_URL)),
            "{}: no guide.url on the guide's page",
            file.display()
        );
        assert!(
            guide["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            file.display()
        );
        assert_eq!(
            guide["title_es"],
            yaml["source"],
            "{}: guide.title_es should be the section's Spanish heading, as source:",
            file.display()
        );
        // Compared with every run of white space as one space: the copy has non-breaking
        // spaces where the page had them.
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let spanish = words(
            &std::fs::read_to_string(root().join("docs/guide/troubleshooting-envoy.es.txt"))
                .unwrap(),
        );
        let heading = guide["title_es"].as_str().unwrap();
        // The Spanish heading is the copy's, word for word (or its first part, where a
        // runbook covers a subsection: "Canales …: atributos de invitado").
        let first = words(heading.split(": ").next().unwrap());
        assert!(
            spanish.contains(&first),
            "{}: `{first}` is not a heading of the copy",
            file.display()
        );
    }
}

#[test]
fn a_bad_code_or_help_url_is_a_located_lint_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, finding_extra, needle) in [
        ("bad-code", "code: TRG12", "invalid finding code `TRG12`"),
        ("bad-help", "help: \"javascript:alert(1)\"", "invalid URL"),
        (
            "help-markup",
            "help: \"https://x.example/a)[b](https://evil\"",
            "invalid URL",
        ),
    ] {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "apiVersion: triage/v1\nid: {name}\ntitle: t\nsteps:\n  - id: s\n    title: s\n    ask: {{prompt: p, choices: [a, b]}}\n    findings:\n      - id: f\n        {finding_extra}\n        when: \"true\"\n        severity: info\n        title: t\n"
            ),
        )
        .unwrap();
        let out = run(triage().arg("lint").arg(&file));
        assert_eq!(out.code, 2, "{name}: {}{}", out.stdout, out.stderr);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(needle), "{name}: {all}");
        assert!(
            all.contains(&format!("{name}.yaml:10:")),
            "{name}: no line in {all}"
        );
    }
}
