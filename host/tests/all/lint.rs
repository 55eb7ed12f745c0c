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

/// A runbook in a fresh directory, for the tests that write their own.
fn runbook_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The error lines of a lint run (all but the count at the end).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.contains("runbook(s) checked"))
        .collect()
}

/// Three independent errors: a bad key in a step and a wrong type in a finding stop serde
/// (one each), and an unknown plugin action is only seen after deserialisation. All three
/// are reported, in file order, each at its place; no `missing field` for the finding's
/// severity that was taken out, and no error for step `b` needing the step whose finding
/// broke.
const THREE_ERRORS: &str = "apiVersion: triage/v1
id: three
title: Three errors
steps:
  - id: a
    title: A
    ask: {prompt: \"?\", choices: [yes, no]}
    colour: red
  - id: b
    title: B
    needs: [a]
    probe:
      plugin: iptables
      action: nat-rules
    findings:
      - id: f
        when: \"true\"
        severity: [error]
        title: F
  - id: c
    title: C
    needs: [b]
    when: \"steps.b.output\"
    ask: {prompt: \"?\", choices: [yes, no]}
";

#[test]
fn every_error_in_a_file_is_reported_at_its_place() {
    let (_dir, path) = runbook_file("three.yaml", THREE_ERRORS);
    let out = run(triage().arg("lint").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let file = path.display().to_string();
    let lines = error_lines(&out.stderr);
    let expected = [
        (8, 5, "steps[0]: unknown field `colour`"),
        (14, 15, "plugin `iptables` has no action `nat-rules`"),
        (
            18,
            19,
            "steps[1].findings[0].severity: invalid type: sequence",
        ),
    ];
    assert_eq!(lines.len(), expected.len(), "{}", out.stderr);
    for (line, (l, c, says)) in lines.iter().zip(expected) {
        let prefix = format!("{file}:{l}:{c}: ");
        assert!(
            line.starts_with(&prefix) && line.contains(says),
            "expected `{prefix}…{says}…`, got {line}\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .trim_end()
            .ends_with("1 runbook(s) checked, 3 error(s)"),
        "{}",
        out.stderr
    );

    // `run` and `test` read the runbook through the same loader: the same lines.
    for args in [
        vec![
            "run",
            path.to_str().unwrap(),
            "--bundle",
            "examples/service-unreachable/interception-missing",
        ],
        vec!["test", path.to_str().unwrap()],
    ] {
        let other = run(triage().args(&args));
        assert_eq!(other.code, 2, "{args:?}: {}", other.stderr);
        for line in &lines {
            assert!(
                other.stderr.contains(line),
                "{args:?} lacks `{line}`:\n{}",
                other.stderr
            );
        }
    }
}

/// A step taken out for a broken title does not make the steps that need it, or read it, errors
/// of their own; the ones after it keep their positions.
#[test]
fn a_step_taken_out_leaves_no_false_errors_behind() {
    let text = "apiVersion: triage/v1
id: gone
title: Gone
steps:
  - id: a
    title: [A]
    ask: {prompt: \"?\", choices: [yes, no]}
  - id: b
    title: B
    needs: [a]
    when: \"answers.a == 'yes'\"
    ask: {prompt: \"?\", choices: [yes, no]}
  - id: c
    title: C
    needs: [nowhere]
    ask: {prompt: \"?\", choices: [yes, no]}
";
    let (_dir, path) = runbook_file("gone.yaml", text);
    let out = run(triage().arg("lint").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let file = path.display().to_string();
    let lines = error_lines(&out.stderr);
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with(&format!("{file}:6:12: "))
            && lines[0].contains("steps[0].title: invalid type: sequence"),
        "{}",
        out.stderr
    );
    assert!(
        lines[1].starts_with(&format!("{file}:15:13: "))
            && lines[1].contains("unknown step `nowhere` in needs"),
        "{}",
        out.stderr
    );
}

/// 10 MB of the same mistake: the first 100 errors, a line saying the rest was not searched,
/// in bounded time.
#[test]
fn a_file_of_a_million_mistakes_gets_a_hundred_lines() {
    let mut text = String::from("apiVersion: triage/v1\nid: flood\ntitle: Flood\nsteps:\n");
    let mut i = 0;
    // Just under the 1 MiB a runbook may be: about 13,000 steps, each with a mistake.
    while text.len() < (1 << 20) - 100 {
        text.push_str(&format!(
            "  - {{id: s{i}, title: S, ask: {{prompt: p, choices: [y]}}, bad: 1}}\n"
        ));
        i += 1;
    }
    let (_dir, path) = runbook_file("flood.yaml", &text);
    let started = std::time::Instant::now();
    let out = run(triage().arg("lint").arg(&path));
    let took = started.elapsed();
    assert_eq!(out.code, 2, "{}", &out.stderr[..out.stderr.len().min(2000)]);
    let lines = error_lines(&out.stderr);
    assert_eq!(
        lines.len(),
        101,
        "{}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    assert!(lines[0].contains(":5:") && lines[0].contains("unknown field `bad`"));
    assert!(lines[100].ends_with("too many errors: stopped after the first 100"));
    assert!(
        out.stderr.contains("1 runbook(s) checked, 100 error(s)"),
        "{}",
        out.stderr
    );
    // A debug build on a busy 2-core machine; a release build takes a fraction of this.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

/// A runbook over 1 MiB, a FIFO (which would block the read forever) and a device are each
/// refused in one line at the file's line 1, before any parsing; the biggest built-in runbook
/// is under 40 KiB.
#[test]
fn a_flood_a_fifo_or_a_device_is_refused_before_it_is_parsed() {
    let mut text = String::from("apiVersion: triage/v1\nid: big\ntitle: Big\nsteps: []\n");
    text.push_str(&"# padding\n".repeat(110_000));
    let (dir, big) = runbook_file("big.yaml", &text);
    let fifo = dir.path().join("fifo.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, why) in [
        (
            big.clone(),
            format!("is {} bytes, over the 1048576-byte limit", text.len()),
        ),
        (fifo, "is not a regular file (a FIFO)".to_string()),
        (
            std::path::PathBuf::from("/dev/zero"),
            "is not a regular file (a character device)".to_string(),
        ),
    ] {
        for verb in ["lint", "run"] {
            let out = run(triage().arg(verb).arg(&path));
            assert_eq!(out.code, 2, "{verb} {}: {}", path.display(), out.stderr);
            let line = format!("{}:1:1: cannot read: {why}", path.display());
            assert!(out.stderr.contains(&line), "{verb}: {}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        }
    }
}

/// Nesting past the cap is one located error, whatever else is wrong.
#[test]
fn deep_nesting_is_one_located_error() {
    let text = format!(
        "apiVersion: triage/v1\nid: deep\ntitle: Deep\nsteps:\n  - id: a\n    title: A\n    colour: red\n    probe: {{plugin: host, action: x, with: {{v: {}{}}}}}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    let (_dir, path) = runbook_file("deep.yaml", &text);
    let out = run(triage().arg("lint").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lines = error_lines(&out.stderr);
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with(&format!("{}:8:", path.display()))
            && lines[0].contains("YAML nested more than 64 levels deep"),
        "{}",
        out.stderr
    );
}

/// A key with terminal escapes in it is named escaped: the terminal shows it, never acts on it.
#[test]
fn control_characters_in_keys_are_escaped() {
    let text = "apiVersion: triage/v1\nid: ctl\ntitle: Ctl\nsteps:\n  - id: a\n    title: A\n    ask: {prompt: \"?\", choices: [yes]}\n    \"col\\e[31mour\\u0007\": red\n    \"x\\ny\": 1\n";
    let (_dir, path) = runbook_file("ctl.yaml", text);
    let out = run(triage().arg("lint").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "{:?}",
        out.stderr
    );
    let lines = error_lines(&out.stderr);
    assert_eq!(lines.len(), 2, "{:?}", out.stderr);
    assert!(
        lines[0].contains("unknown field `col\\u{1b}[31mour\\u{7}`"),
        "{:?}",
        out.stderr
    );
    assert!(
        lines[1].contains("unknown field `x\\ny`"),
        "{:?}",
        out.stderr
    );
}

const CASED_RUNBOOK: &str = "apiVersion: triage/v1
id: cased
title: Cased
inputs:
  vip: {required: true, description: the VIP}
  port: {type: integer, default: 80}
steps:
  - id: ask
    title: Asked
    ask: {prompt: \"?\", choices: [\"yes\", \"no\"]}
    findings:
      - id: said-no
        when: \"answer == 'no'\"
        severity: error
        title: No
";

/// Case files: every error, at the key or value it is about, in the file's own words
/// (`inputs.port`, `answers.ask`), never the command line's (`--input`); a case file that
/// does not deserialise has all its errors listed too, and does not hide the other cases.
#[test]
fn case_file_errors_are_all_located_in_the_files_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runbook.yaml"), CASED_RUNBOOK).unwrap();
    let case = |name: &str, text: &str| {
        let d = dir.path().join("tests").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("case.yaml"), text).unwrap();
        std::fs::write(d.join("bundle.yaml"), "target: t\ncalls: []\n").unwrap();
        d.join("case.yaml").display().to_string()
    };
    let bad = case(
        "bad",
        "inputs:\n  port: eighty\n  vpi: 10.0.0.1\nanswers:\n  ask: maybe\n  nostep: \"yes\"\nfindings: [said-no, said-yes]\nsteps: {asked: passed}\n",
    );
    let broken = case(
        "broken",
        "description: [not, text]\ninputs: {vip: 10.0.0.1}\nfindings: [said-no]\nsteps: {ask: maybe}\ncolour: red\n",
    );
    let out = run(triage().arg("lint").arg(dir.path()));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let expected = [
        (
            &bad,
            1,
            1,
            "inputs: runbook `cased` needs input `vip` (the VIP)",
        ),
        (&bad, 2, 9, "inputs.port: input `port` must be an integer"),
        (&bad, 3, 3, "inputs.vpi: runbook `cased` has no input `vpi`"),
        (
            &bad,
            5,
            8,
            "answers.ask: \"maybe\" is not one of the choices (yes, no)",
        ),
        (
            &bad,
            6,
            3,
            "answers.nostep: runbook `cased` has no step `nostep`",
        ),
        (
            &bad,
            7,
            21,
            "findings[1]: runbook `cased` has no finding `said-yes`",
        ),
        (
            &bad,
            8,
            9,
            "steps.asked: runbook `cased` has no step `asked` (did you mean `ask`?)",
        ),
        (&broken, 1, 14, "description: invalid type: sequence"),
        (&broken, 4, 14, "steps.ask: unknown variant `maybe`"),
        (&broken, 5, 1, "unknown field `colour`"),
    ];
    let lines = error_lines(&out.stderr);
    assert_eq!(lines.len(), expected.len(), "{}", out.stderr);
    for (line, (file, l, c, says)) in lines.iter().zip(expected) {
        let prefix = format!("{file}:{l}:{c}: ");
        assert!(
            line.starts_with(&prefix) && line.contains(says),
            "expected `{prefix}…{says}…`, got {line}\n{}",
            out.stderr
        );
    }
    assert!(
        !out.stderr.contains("--input") && !out.stderr.contains("--answer"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 runbook(s) checked, 10 error(s)"),
        "{}",
        out.stderr
    );
}
