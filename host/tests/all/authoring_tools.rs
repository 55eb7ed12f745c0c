//! Issue 12, authoring: what a runbook author asks triage while writing one — an action's
//! params and facts, one scenario case run as a report, what a bundle holds when a call is
//! not captured, editor schemas for case and bundle files, every lint error at once, and
//! the runbook in the current directory.

use super::wat_plugin::WatPlugin;
use super::*;

#[test]
fn plugins_name_action_shows_params_and_facts() {
    let out = run(triage().args(["plugins", "iptables", "rules"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    // A param: its type, its allowed values, its default and its description.
    let table = text
        .lines()
        .position(|l| l.trim_start().starts_with("table "))
        .unwrap_or_else(|| panic!("no param `table`:\n{text}"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[table].contains("one of nat|filter|mangle|raw|security")
            && lines[table].contains("default \"nat\""),
        "{}",
        lines[table]
    );
    assert!(lines[table + 1].contains("The table to read."), "{text}");
    // Facts, nested ones by path, as conditions name them.
    for fact in [
        "any_uid_excluded",
        "chains.*.rules[].target",
        "outbound.intercepted",
    ] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(fact)),
            "no fact `{fact}`:\n{text}"
        );
    }
    // Only the action asked for.
    assert!(!text.contains("action ip6tables"), "{text}");

    // The whole plugin: every action, each in detail.
    let out = run(triage().args(["plugins", "iptables"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("action rules") && out.stdout.contains("action ip6tables"));
    assert!(!out.stdout.contains("config-dump"), "{}", out.stdout);

    // JSON: the same document as `plugins -o json`, narrowed.
    let out = run(triage().args(["plugins", "iptables", "rules", "-o", "json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["schema"], "triage.plugins/v1");
    let plugins = doc["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1);
    let actions = plugins[0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["name"], "rules");
    assert_eq!(
        actions[0]["params"]["properties"]["table"]["default"],
        "nat"
    );
    assert!(actions[0]["facts"]["properties"]["chains"].is_object());

    // A typo is one line with a suggestion, exit 2.
    let out = run(triage().args(["plugins", "iptabels"]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        "error: unknown plugin `iptabels` (did you mean `iptables`?) (`triage plugins` lists them)"
    );
    let out = run(triage().args(["plugins", "iptables", "rulez"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("has no action `rulez` (did you mean `rules`?)"),
        "{}",
        out.stderr
    );
}

#[test]
fn plugins_detail_escapes_what_a_hostile_plugin_declares() {
    let dir = tempfile::tempdir().unwrap();
    WatPlugin {
        name: "shouty",
        describe_prelude: "",
        sleeps: false,
        actions: &[("paint\u{1b}]0;owned\u{7}\u{1b}[2J", "")],
        answer: "{}",
    }
    .write(dir.path());
    let out = run(triage()
        .arg("--plugins")
        .arg(dir.path())
        .args(["plugins", "shouty"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\u{7}'), "{:?}", out.stdout);
    assert!(out.stdout.contains("action paint"), "{}", out.stdout);
}

#[test]
fn run_case_replays_a_scenario_case_with_its_bundle_inputs_and_answers() {
    let case = root().join("runbooks/service-unreachable/tests/vip-not-intercepted");
    let out = run(triage()
        .args(["run", "service-unreachable", "-o", "json", "--case"])
        .arg(&case));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(finding_ids(&report), ["vip-not-intercepted"]);
    assert_eq!(report["inputs"]["vip"], "10.0.0.2");
    assert!(
        report["target"]
            .as_str()
            .unwrap()
            .contains("examples/service-unreachable/interception-in-place"),
        "{}",
        report["target"]
    );
    // An --input replaces the case's value for it; the rest of the case stays.
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "-o",
            "json",
            "--input",
            "vip=10.0.0.1",
            "--case",
        ])
        .arg(&case));
    let report = out.json();
    assert_eq!(report["inputs"]["vip"], "10.0.0.1");
    assert_eq!(report["inputs"]["port"], 80);
    assert!(!finding_ids(&report).contains(&"vip-not-intercepted".to_string()));

    // A case's answers reach ask steps.
    let with_answer = std::fs::read_dir(root().join("runbooks"))
        .unwrap()
        .flat_map(|r| {
            std::fs::read_dir(r.unwrap().path().join("tests"))
                .into_iter()
                .flatten()
        })
        .map(|c| c.unwrap().path())
        .find(|c| {
            std::fs::read_to_string(c.join("case.yaml"))
                .is_ok_and(|t| t.lines().any(|l| l.starts_with("answers:")))
        })
        .expect("a built-in case with answers");
    let runbook = with_answer.parent().unwrap().parent().unwrap();
    let out = run(triage()
        .arg("run")
        .arg(runbook)
        .args(["-o", "json", "--fail-on", "never", "--case"])
        .arg(&with_answer));
    let report = out.json();
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["skip"] != "unanswered"),
        "{}: {report:#}",
        with_answer.display()
    );

    // A case is not a target beside another one.
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--bundle",
            "examples/service-unreachable/interception-missing",
            "--case",
        ])
        .arg(&case));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--case"), "{}", out.stderr);
}

#[test]
fn case_files_are_read_bounded_and_not_through_links_out() {
    let dir = tempfile::tempdir().unwrap();
    // A huge case file: refused unread, one line.
    let huge = dir.path().join("huge");
    std::fs::create_dir(&huge).unwrap();
    let file = std::fs::File::create(huge.join("case.yaml")).unwrap();
    file.set_len(3 << 30).unwrap();
    let started = std::time::Instant::now();
    let out = run(triage()
        .args(["run", "service-unreachable", "--case"])
        .arg(&huge));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("over the 1048576-byte limit"),
        "{}",
        out.stderr
    );

    // case.yaml that is a link out of its directory (here to a device that never ends).
    let linked = dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink("/dev/zero", linked.join("case.yaml")).unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--case"])
        .arg(&linked));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("outside the case directory"),
        "{}",
        out.stderr
    );

    // A case directory of a runbook that is a link out of the runbook: `triage test` and
    // `triage lint` refuse it instead of reading what it points at.
    let made = run(triage()
        .args(["new", "runbook", "linked-case", "--dir"])
        .arg(dir.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let rb = dir.path().join("linked-case");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("case.yaml"), "findings: []\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, rb.join("tests/zz-out")).unwrap();
    for command in ["test", "lint"] {
        let out = run(triage().arg(command).arg(&rb));
        assert_eq!(out.code, 2, "{command}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("zz-out: is a link to")
                && out.stderr.contains("outside the runbook's directory"),
            "{command}: {}",
            out.stderr
        );
    }
    // Named on the command line, a linked case directory is what the user chose.
    let out = run(triage()
        .arg("run")
        .arg(&rb)
        .arg("--case")
        .arg(rb.join("tests/envoy-running")));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn not_captured_names_what_the_bundle_holds_of_that_capability() {
    let dir = tempfile::tempdir().unwrap();
    // ps recorded with other options (one of them hostile), and more commands than a line
    // should list; no http call at all.
    let mut bundle = String::from(
        "calls:\n  - exec: [ps, -e]\n    stdout: \"\"\n  - exec: [ps, \"-eo\\e]0;owned\\a\\e[2J\", \"line\\nforged\"]\n    stdout: \"\"\n",
    );
    for i in 0..6 {
        bundle.push_str(&format!(
            "  - exec: [iptables-save, -t, table{i}]\n    stdout: \"\"\n"
        ));
    }
    std::fs::write(dir.path().join("bundle.yaml"), &bundle).unwrap();
    let out = run(triage()
        .args(["probe", "host", "processes", "--bundle"])
        .arg(dir.path()));
    assert_ne!(out.code, 0, "{}", out.stderr);
    let all = out.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        all.contains("not captured: exec ps -eo pid=,uid=,user=,args= is not in"),
        "{all}"
    );
    // The recorded ps calls come first, the hostile one escaped; the rest are counted.
    assert!(all.contains("; of exec it holds: ps -e, "), "{all}");
    assert!(all.contains(r"\x1b]0;owned\x07\x1b[2J"), "{all}");
    assert!(all.contains(r"line\nforged"), "{all}");
    assert!(all.contains("(and 5 more)"), "{all}");
    assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    assert!(!all.contains("line\nforged"), "{all}");

    // Nothing of the capability at all: said so.
    let out = run(triage()
        .args(["probe", "config-dump", "server-info", "--bundle"])
        .arg(dir.path()));
    let all = out.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(all.contains("it holds no http call"), "{all}");
}

/// Every file named `name` under the repository's runbooks/ and examples/.
fn files_named(name: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(&path, name, out);
            } else if path.file_name().is_some_and(|n| n == name) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("runbooks"), name, &mut out);
    walk(&root().join("examples"), name, &mut out);
    out.sort();
    out
}

#[test]
fn case_and_bundle_schemas_are_committed_and_every_file_validates() {
    for (of, file, yaml) in [
        ("case", "runbooks/case.schema.json", "case.yaml"),
        ("bundle", "runbooks/bundle.schema.json", "bundle.yaml"),
    ] {
        let out = run(triage().args(["schema", of]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert_eq!(
            committed, out.stdout,
            "{file} is stale: triage schema {of} > {file}"
        );
        let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
        assert_eq!(schema["additionalProperties"], false, "{of}");
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let files = files_named(yaml);
        assert!(files.len() > 50, "{yaml}: {}", files.len());
        let mut modelines = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            // A modeline points at the committed schema, relative to the file.
            let first = text.lines().next().unwrap_or("");
            if let Some(target) = first.strip_prefix("# yaml-language-server: $schema=") {
                modelines += 1;
                assert_eq!(
                    path.parent().unwrap().join(target).canonicalize().ok(),
                    root().join(file).canonicalize().ok(),
                    "{}",
                    path.display()
                );
            }
            let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
            let problems: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert_eq!(problems, Vec::<String>::new(), "{}", path.display());
        }
        assert!(modelines > 50, "{yaml}: {modelines} modelines");
        // What an editor flags: a typo in a key.
        let typo = if of == "case" {
            serde_json::json!({"findings": [], "inptus": {}})
        } else {
            serde_json::json!({"calls": [{"exec": ["ps"], "stdotu": ""}]})
        };
        assert!(!validator.is_valid(&typo), "{of}");
    }
    // A call needs exactly one key; a step mark is one of five.
    let bundle: serde_json::Value =
        serde_json::from_str(&run(triage().args(["schema", "bundle"])).stdout).unwrap();
    let validator = jsonschema::validator_for(&bundle).unwrap();
    assert!(!validator.is_valid(&serde_json::json!({"calls": [{"status": 0}]})));
    assert!(!validator.is_valid(&serde_json::json!({"calls": [{"exec": ["a"], "read": "/x"}]})));
    let case: serde_json::Value =
        serde_json::from_str(&run(triage().args(["schema", "case"])).stdout).unwrap();
    let validator = jsonschema::validator_for(&case).unwrap();
    assert!(!validator.is_valid(&serde_json::json!({"findings": [], "steps": {"a": "pased"}})));
}

#[test]
fn list_and_lint_see_the_runbook_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let made = run(triage()
        .args(["new", "runbook", "here-check", "--dir"])
        .arg(dir.path()));
    assert_eq!(made.code, 0, "{}", made.stderr);
    let here = dir.path().join("here-check");

    let out = run(triage().args(["list", "-o", "json"]).current_dir(&here));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    let first = &doc["runbooks"][0];
    assert_eq!(first["id"], "here-check", "{doc:#}");
    assert_eq!(first["origin"], "./runbook.yaml");

    let out = run(triage().arg("lint").current_dir(&here));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Broken, it is what lint reports, by its path.
    let case = here.join("tests/envoy-stopped/case.yaml");
    std::fs::write(&case, "findings: [no-such-finding]\n").unwrap();
    let out = run(triage().arg("lint").current_dir(&here));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-finding"), "{}", out.stderr);
    // test sees it the same way.
    let out = run(triage().arg("test").current_dir(&here));
    assert!(
        out.stdout.contains("here-check/envoy-running"),
        "{}",
        out.stdout
    );
}
