//! `triage lint`: one malformed runbook per kind of error, each reported with its file,
//! line and column and a one-line reason, and a non-zero exit.

use super::*;

/// (file, line, column, part of the message)
const CASES: &[(&str, usize, usize, &str)] = &[
    ("malformed-yaml.yaml", 6, 12, "invalid YAML"),
    ("unknown-field.yaml", 8, 5, "unknown field `finding`"),
    (
        "duplicate-step.yaml",
        7,
        9,
        "duplicate step id `a` (first used by steps[0])",
    ),
    (
        "duplicate-finding.yaml",
        12,
        14,
        "duplicate finding id `f` (already used in step `a`)",
    ),
    (
        "unknown-need.yaml",
        9,
        13,
        "unknown step `interceptoin` in needs (did you mean `interception`?)",
    ),
    ("cycle.yaml", 7, 12, "dependency cycle: a → c → b → a"),
    (
        "bad-expression.yaml",
        9,
        15,
        "bad expression `output.chains.ISTIO_OUTPUT and`",
    ),
    ("bad-template.yaml", 12, 14, "bad template"),
    (
        "unknown-plugin.yaml",
        8,
        15,
        "unknown plugin `iptabels` (did you mean `iptables`?)",
    ),
    (
        "unknown-action.yaml",
        9,
        15,
        "plugin `iptables` has no action `nat-rules`",
    ),
    (
        "bad-params.yaml",
        12,
        18,
        "params do not match action `rules`: with.command: \"sideways\" is not one of",
    ),
    ("unknown-param.yaml", 11, 16, "unknown param `tabel`"),
    (
        "bad-api-version.yaml",
        1,
        13,
        "unsupported apiVersion `triage/v2`",
    ),
    (
        "unknown-input.yaml",
        9,
        11,
        "unknown input `vpi` (did you mean `vip`?)",
    ),
    (
        "output-of-unneeded-step.yaml",
        9,
        11,
        "`steps.a` is used but `a` is not among the needs of step `b`",
    ),
    ("bad-id.yaml", 2, 5, "invalid id `Bad_Id`"),
];

#[test]
fn each_error_kind_has_its_line_and_column() {
    let mut failures = Vec::new();
    for (file, line, column, message) in CASES {
        let path = data(&format!("lint/{file}"));
        let out = run(triage().arg("lint").arg(&path));
        let expected_prefix = format!("{}:{line}:{column}: ", path.display());
        let first = out.stderr.lines().next().unwrap_or("");
        if out.code != 2 || !first.starts_with(&expected_prefix) || !first.contains(message) {
            failures.push(format!(
                "{file}: expected `{expected_prefix}…{message}…` (exit 2), got exit {}: {first}",
                out.code
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_lint_case_is_in_the_table() {
    let dir = data("lint");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for f in files {
        assert!(
            CASES.iter().any(|(name, ..)| *name == f),
            "{f} has no expected error in CASES"
        );
    }
}

#[test]
fn builtin_runbooks_and_examples_lint_clean() {
    let out = run(triage().arg("lint"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("0 error(s)"), "{}", out.stderr);
}
