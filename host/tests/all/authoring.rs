//! Tools for runbook authors: `triage test`, `schema`, `graph`, `new`, and golden reports.

use super::*;

/// Set TRIAGE_BLESS=1 to rewrite golden files from the current output.
fn golden(name: &str, actual: &str) {
    let path = data(&format!("golden/{name}"));
    if std::env::var_os("TRIAGE_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with TRIAGE_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (TRIAGE_BLESS=1 rewrites it)",
        path.display()
    );
}

/// Durations change from run to run: `123 ms` becomes `N ms`.
fn without_durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            if rest == " ms" {
                out.push('N');
            } else {
                out.extend(&chars[start..i]);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[test]
fn golden_reports() {
    let cases = [
        ("interception-missing", vec!["vip=10.0.0.1"]),
        ("interception-in-place", vec!["vip=10.0.0.2", "port=80"]),
    ];
    for (bundle, inputs) in cases {
        for (format, ext) in [("human", "txt"), ("markdown", "md")] {
            let mut cmd = triage();
            cmd.args(["run", "service-unreachable", "--format", format, "--bundle"])
                // Relative to the repository (the cwd), so the report is the same in any clone.
                .arg(format!("examples/service-unreachable/{bundle}"));
            for i in &inputs {
                cmd.args(["--input", i]);
            }
            let out = run(&mut cmd);
            assert_eq!(out.code, 1, "{}", out.stderr);
            golden(
                &format!("service-unreachable-{bundle}.{ext}"),
                &without_durations(&out.stdout),
            );
        }
    }
}

#[test]
fn triage_test_runs_every_builtin_case() {
    let out = run(triage().arg("test"));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let last = out.stdout.lines().last().unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    let cases = std::fs::read_dir(root().join("runbooks"))
        .unwrap()
        .filter_map(|e| std::fs::read_dir(e.unwrap().path().join("tests")).ok())
        .map(|d| d.count())
        .sum::<usize>();
    assert_eq!(passed, cases, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("PASS service-unreachable/interception-missing")
    );
}

#[test]
fn triage_test_reports_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(triage()
        .args(["new", "runbook", "demo-check", "--dir"])
        .arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Claim the healthy case fires the finding: the test must say it did not.
    let case = dir.path().join("demo-check/tests/envoy-running/case.yaml");
    std::fs::write(&case, "findings: [envoy-not-running]\n").unwrap();
    let junit = dir.path().join("reports/junit.xml");
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    let out = run(triage()
        .arg("test")
        .arg(dir.path().join("demo-check"))
        .arg("--junit")
        .arg(&junit));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("FAIL demo-check/envoy-running: did not fire [envoy-not-running]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("1 passed, 1 failed\n"),
        "{}",
        out.stdout
    );

    // The same results as JUnit XML, as CI systems read it.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(
        (root.attribute("tests"), root.attribute("failures")),
        (Some("2"), Some("1"))
    );
    let suite = root.first_element_child().unwrap();
    assert_eq!(suite.attribute("name"), Some("demo-check"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    let failing = cases
        .iter()
        .find(|c| c.attribute("name") == Some("envoy-running"))
        .unwrap();
    let failure = failing.first_element_child().unwrap();
    assert_eq!(failure.tag_name().name(), "failure");
    assert_eq!(
        failure.attribute("message"),
        Some("did not fire [envoy-not-running]")
    );
    let passing = cases
        .iter()
        .find(|c| c.attribute("name") == Some("envoy-stopped"))
        .unwrap();
    // A passing case holds no failure, only its step marks.
    assert!(
        passing
            .children()
            .filter(|c| c.is_element())
            .all(|c| c.tag_name().name() == "system-out")
    );
    assert!(passing.attribute("time").unwrap().parse::<f64>().unwrap() >= 0.0);

    // An unwritable report path is a one-line error, exit 2.
    let out = run(triage()
        .arg("test")
        .arg(dir.path().join("demo-check"))
        .arg("--junit")
        .arg(dir.path().join("no-such-dir/junit.xml")));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no-such-dir/junit.xml"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn lint_checks_test_cases() {
    let dir = tempfile::tempdir().unwrap();
    run(triage()
        .args(["new", "runbook", "demo-check", "--dir"])
        .arg(dir.path()));
    let case = dir.path().join("demo-check/tests/envoy-stopped/case.yaml");
    std::fs::write(&case, "findings: [envoy-not-runing]\n").unwrap();
    let out = run(triage().arg("lint").arg(dir.path().join("demo-check")));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!(
            "{}:1:12: findings[0]: runbook `demo-check` has no finding `envoy-not-runing` (did you mean `envoy-not-running`?)",
            case.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn scaffolded_runbook_lints_and_passes_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(triage()
        .args(["new", "runbook", "my-check", "--dir"])
        .arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rb = dir.path().join("my-check");
    assert_eq!(run(triage().arg("lint").arg(&rb)).code, 0);
    let out = run(triage().arg("test").arg(&rb));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.ends_with("2 passed, 0 failed\n"));
    // Not overwritten the second time.
    let again = run(triage()
        .args(["new", "runbook", "my-check", "--dir"])
        .arg(dir.path()));
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"));
}

#[test]
fn scaffolded_plugin_builds_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(triage()
        .args(["new", "plugin", "uptime-probe", "--dir"])
        .arg(dir.path()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let krate = dir.path().join("uptime-probe");
    // Nothing it holds points back into this checkout: a machine with only the binary has
    // none. It carries its own copy of the SDK instead.
    let checkout = root().canonicalize().unwrap();
    for entry in walkdir(&krate) {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains(checkout.to_str().unwrap()),
            "{} names the checkout",
            entry.display()
        );
    }
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("triage-sdk = { path = \"triage-sdk\" }"),
        "{manifest}"
    );
    for file in ["src/lib.rs", "src/capability.rs", "wit/probe.wit"] {
        assert_eq!(
            std::fs::read_to_string(krate.join("triage-sdk").join(file)).unwrap(),
            std::fs::read_to_string(root().join("sdk").join(file)).unwrap(),
            "{file}"
        );
    }
    // Its own target dir, kept between runs so only the first build pays for serde & co;
    // offline, from the registry cache, as on a machine that cannot reach a checkout either.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_NET_OFFLINE", "true")
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success());
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/triage_plugin_uptime_probe.wasm"),
        plugins.path().join("uptime-probe.wasm"),
    )
    .unwrap();
    let out = run(triage().arg("--plugins").arg(plugins.path()).arg("plugins"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("uptime-probe 0.1.0"), "{}", out.stdout);
    assert!(
        out.stdout.contains("read_file /proc/uptime"),
        "{}",
        out.stdout
    );
}

#[test]
fn schema_is_derived_from_the_loader_types_and_committed() {
    let out = run(triage().arg("schema"));
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["title"], "Runbook");
    assert!(schema["properties"]["steps"].is_object());
    assert_eq!(
        schema["additionalProperties"], false,
        "deny_unknown_fields shows in the schema"
    );
    // The copy the runbooks' modeline points at must be current.
    let committed = std::fs::read_to_string(root().join("runbooks/runbook.schema.json")).unwrap();
    assert_eq!(
        committed, out.stdout,
        "runbooks/runbook.schema.json is stale: triage schema > runbooks/runbook.schema.json"
    );
}

#[test]
fn every_builtin_runbook_validates_against_the_committed_schema() {
    let text = std::fs::read_to_string(root().join("runbooks/runbook.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let problems = |doc: &serde_json::Value| -> Vec<String> {
        validator
            .iter_errors(doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let file = entry.unwrap().path().join("runbook.yaml");
        if !file.is_file() {
            continue;
        }
        let doc: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        // What an editor would flag in a runbook that loads and passes its tests.
        assert_eq!(problems(&doc), Vec::<String>::new(), "{}", file.display());
        checked += 1;
    }
    assert!(checked >= 16, "{checked}");

    // The schema knows each built-in action's params, so an editor flags a typo...
    let file = root().join("runbooks/service-unreachable/runbook.yaml");
    let doc: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    let at = steps
        .iter()
        .position(|s| s["probe"]["plugin"] == "iptables")
        .unwrap();
    let mut typo = doc.clone();
    typo["steps"][at]["probe"]["with"]["tabel"] = "nat".into();
    let found = problems(&typo);
    assert!(found.iter().any(|p| p.contains("tabel")), "{found:?}");
    // ...and an action the plugin does not have...
    let mut wrong = doc.clone();
    wrong["steps"][at]["probe"]["action"] = "rulez".into();
    let found = problems(&wrong);
    assert!(found.iter().any(|p| p.contains("rulez")), "{found:?}");
    // ...but leaves a plugin it does not know (a team's own) alone.
    let mut own = typo.clone();
    own["steps"][at]["probe"]["plugin"] = "our-probe".into();
    assert_eq!(problems(&own), Vec::<String>::new());
}

#[test]
fn graph_draws_conditions_on_edges() {
    let out = run(triage().args(["graph", "service-unreachable"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("flowchart TD\n"));
    assert!(
        out.stdout
            .contains("interception -->|\"inputs.vip\"| vip_interception"),
        "{}",
        out.stdout
    );
    let dot = run(triage().args(["graph", "service-unreachable", "--format", "dot"]));
    assert!(
        dot.stdout
            .contains("\"interception\" -> \"vip-interception\" [label=\"inputs.vip\"];"),
        "{}",
        dot.stdout
    );
}

#[test]
fn user_runbooks_shadow_builtins_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    run(triage()
        .args(["new", "runbook", "service-unreachable", "--dir"])
        .arg(dir.path()));
    // From TRIAGE_PATH …
    let out = run(triage().env("TRIAGE_PATH", dir.path()).args(["list"]));
    assert!(out.stdout.contains("(shadowed)"), "{}", out.stdout);
    let bundle = dir.path().join("service-unreachable/tests/envoy-stopped");
    let out = run(triage()
        .env("TRIAGE_PATH", dir.path())
        .args(["run", "service-unreachable", "--format", "json", "--bundle"])
        .arg(&bundle));
    assert!(
        out.stderr
            .contains("warning: runbook `service-unreachable` from"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("shadows the built-in one"));
    assert_eq!(finding_ids(&out.json()), vec!["envoy-not-running"]);
    // … and from the config file's runbook_paths.
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("triage")).unwrap();
    std::fs::write(
        config.path().join("triage/config.yaml"),
        format!("runbook_paths: [{:?}]\n", dir.path()),
    )
    .unwrap();
    let out = run(triage()
        .env("XDG_CONFIG_HOME", config.path())
        .args(["run", "service-unreachable", "--format", "json", "--bundle"])
        .arg(&bundle));
    assert_eq!(
        finding_ids(&out.json()),
        vec!["envoy-not-running"],
        "{}",
        out.stderr
    );
    // A config file that does not parse is an error with its position.
    std::fs::write(
        config.path().join("triage/config.yaml"),
        "runbook_path: []\n",
    )
    .unwrap();
    let out = run(triage().env("XDG_CONFIG_HOME", config.path()).arg("list"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("config.yaml:1:1: unknown field `runbook_path`"),
        "{}",
        out.stderr
    );
}

/// Every file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}
