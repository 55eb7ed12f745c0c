//! Hostile plugins in the real host: each misbehaviour fails its own step, is reported, and
//! the other steps still run.

use super::wat_plugin::WatPlugin;
use super::*;

fn hostile_run() -> serde_json::Value {
    let out = run(triage()
        .args(["--plugins", test_plugin_dir(), "--policy"])
        .arg(data("sandbox/tight-policy.yaml"))
        .args(["run"])
        .arg(data("sandbox/hostile.yaml"))
        .args(["--format", "json"]));
    // Steps errored and no error finding fired: the run is incomplete.
    assert_eq!(out.code, 3, "stderr: {}", out.stderr);
    out.json()
}

#[test]
fn each_misbehaviour_fails_only_its_own_step() {
    let report = hostile_run();
    let reason = |id: &str| {
        let s = step(&report, id);
        assert_eq!(s["status"], "errored", "{id}: {s:#}");
        s["reason"].as_str().unwrap().to_string()
    };

    let spin = step(&report, "spin");
    // The CPU deadline (300 ms of guest time) stops it on a quiet machine; on a loaded one
    // (CI with every test binary running at once) the guest may not get 300 ms of CPU before
    // the 1.5 s wall-clock deadline, which stops it just the same. Either is the sandbox
    // holding; what must not happen is the spin running on.
    assert!(
        reason("spin").contains("stopped at the CPU deadline (300 ms")
            || reason("spin").contains("stopped at the wall-clock deadline (1500 ms)"),
        "{spin:#}"
    );
    // Stopped within its deadline: 300 ms of guest CPU, far below the 10 s wall limit.
    assert!(spin["duration_ms"].as_u64().unwrap() < 3000, "{spin:#}");

    assert!(reason("allocate").contains("stopped at the memory cap (128 MiB)"));
    assert!(reason("trap").contains("trapped: wasm trap: wasm `unreachable` instruction executed"));
    assert!(
        reason("huge").contains("output of")
            && reason("huge").contains("over the 1048576-byte cap")
    );

    let slow = step(&report, "slow");
    assert!(
        reason("slow").contains("stopped at the wall-clock deadline (1500 ms)"),
        "{slow:#}"
    );
    assert!(slow["duration_ms"].as_u64().unwrap() < 5000);

    // Denied by the policy: the reason names the capability and the YAML that would allow it.
    let denied = reason("denied");
    assert!(
        denied.contains("denied: exec `rm -rf /tmp/triage-hostile` is not allowed by the policy"),
        "{denied}"
    );
    assert!(
        denied.contains(r#"add `exec: [["rm", "-rf", "/tmp/triage-hostile"]]` under `allow:`"#),
        "{denied}"
    );
    let caps = step(&report, "denied")["capabilities"].as_array().unwrap();
    assert_eq!(caps[0]["outcome"], "denied");

    // Not declared in the manifest: refused even though the policy is not consulted.
    assert!(
        reason("undeclared").contains(
            "read_file `/etc/shadow` was not declared by hostile action `undeclared-read`"
        )
    );
    assert!(reason("http").contains("http `GET http://example.com/` was not declared"));

    // The well-behaved step ran, after and beside all of that.
    assert_eq!(step(&report, "fine")["status"], "passed");
    assert_eq!(finding_ids(&report), vec!["fine-fired"]);
}

#[test]
fn a_denied_call_never_reaches_the_target() {
    let marker = std::path::Path::new("/tmp/triage-hostile");
    std::fs::create_dir_all(marker).unwrap();
    let _ = hostile_run();
    assert!(marker.exists(), "the denied rm ran");
}

/// The `grow` plugin: one action grows a table by 100 million elements (800 MB of host
/// memory for the table's pointers), the other fills four memories of 244 MiB each.
pub fn grow_plugin(dir: &std::path::Path) -> std::path::PathBuf {
    // 3,900 pages of 64 KiB: each memory alone is under a 256 MiB cap.
    const FILL: &str = "(i32.const 255590400)";
    let four_memories = format!(
        "(drop (memory.grow $m0 (i32.const 3900))) \
         (memory.fill $m0 (i32.const 1048576) (i32.const 1) (i32.const 254541824)) \
         (drop (memory.grow $m1 (i32.const 3900))) (memory.fill $m1 (i32.const 0) (i32.const 1) {FILL}) \
         (drop (memory.grow $m2 (i32.const 3900))) (memory.fill $m2 (i32.const 0) (i32.const 1) {FILL}) \
         (drop (memory.grow $m3 (i32.const 3900))) (memory.fill $m3 (i32.const 0) (i32.const 1) {FILL})"
    );
    WatPlugin {
        name: "grow",
        describe_prelude: "",
        sleeps: false,
        actions: &[
            (
                "grow-table",
                "(drop (table.grow $t (ref.null func) (i32.const 100000000)))",
            ),
            ("four-memories", &four_memories),
        ],
        answer: "{}",
    }
    .write(dir)
}

#[test]
fn memories_tables_and_the_capability_log_stay_under_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    grow_plugin(dir.path());
    // TRIAGE_KEEP_WAT_PLUGINS=DIR keeps a copy, to measure it by hand (BENCHMARKS.md).
    if let Some(keep) = std::env::var_os("TRIAGE_KEEP_WAT_PLUGINS") {
        grow_plugin(std::path::Path::new(&keep));
    }
    let out = run(triage()
        .args(["--plugins", test_plugin_dir(), "--plugins"])
        .arg(dir.path())
        .arg("--policy")
        .arg(data("sandbox/memory-policy.yaml"))
        .arg("run")
        .arg(data("sandbox/hostile-memory.yaml"))
        .args(["--format", "json"]));
    assert_eq!(out.code, 3, "stderr: {}", out.stderr);
    let report = out.json();
    for id in ["table", "memories"] {
        let s = step(&report, id);
        assert_eq!(s["status"], "errored", "{s:#}");
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .contains("stopped at the memory cap (256 MiB)"),
            "{s:#}"
        );
    }

    // The plugin ran to its end; its capability log kept the first calls, each cut short,
    // and says how many more there were.
    let flood = step(&report, "flood");
    assert_eq!(flood["status"], "passed", "{flood:#}");
    let caps = flood["capabilities"].as_array().unwrap();
    assert!(caps.len() <= 1001, "{} entries", caps.len());
    assert!(caps[0]["request"].as_str().unwrap().len() <= 4096);
    assert!(caps[0]["request"].as_str().unwrap().ends_with('…'));
    let last = caps.last().unwrap();
    assert_eq!(last["outcome"], "dropped", "{last:#}");
    let kept = caps.len() - 1;
    assert!(
        last["detail"].as_str().unwrap().starts_with(&format!(
            "{} more capability calls were not logged",
            2000 - kept
        )),
        "{last:#}"
    );
    assert!(
        out.stdout.len() < 4 << 20,
        "{} bytes of report",
        out.stdout.len()
    );

    assert_eq!(step(&report, "fine")["status"], "passed");
    assert_eq!(finding_ids(&report), vec!["fine-fired"]);
}

#[test]
fn a_plugin_whose_describe_sleeps_spins_or_is_not_a_plugin_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let good = WatPlugin {
        name: "good",
        describe_prelude: "",
        sleeps: false,
        actions: &[("ok", "")],
        answer: "{}",
    };
    good.write(dir.path());
    // Sleeps a minute: before, this panicked the host ("no reactor running").
    WatPlugin {
        name: "sleeper",
        describe_prelude: "(call $block (call $subscribe (i64.const 60000000000)))",
        sleeps: true,
        ..good
    }
    .write(dir.path());
    // Spins forever: before, a vague error after 5 s that stopped every command.
    WatPlugin {
        name: "spinner",
        describe_prelude: "(loop $l (br $l))",
        ..good
    }
    .write(dir.path());
    std::fs::write(dir.path().join("garbage.wasm"), b"not a component").unwrap();

    let started = std::time::Instant::now();
    let out = run(triage().arg("--plugins").arg(dir.path()).arg("plugins"));
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("good"), "{}", out.stdout);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    let warning = |file: &str| {
        let path = dir.path().join(file);
        let prefix = format!("warning: skipped plugin {}: ", path.display());
        warnings
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no warning for {file} in:\n{}", out.stderr))
            .to_string()
    };
    assert!(
        warning("sleeper.wasm")
            .ends_with("describe(): stopped at the wall-clock deadline (5000 ms)"),
        "{}",
        out.stderr
    );
    // As for run: under load the wall-clock deadline may come first; both stop it.
    let spinner = warning("spinner.wasm");
    assert!(
        spinner.ends_with("describe(): stopped at the CPU deadline (2000 ms of guest time)")
            || spinner.ends_with("describe(): stopped at the wall-clock deadline (5000 ms)"),
        "{}",
        out.stderr
    );
    assert!(
        warning("garbage.wasm").contains("not a loadable WebAssembly component"),
        "{}",
        out.stderr
    );
    assert_eq!(warnings.len(), 3, "one line each:\n{}", out.stderr);
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");

    // A command that runs a runbook works too: the bad plugins cost their deadlines only.
    let out = run(triage()
        .arg("--plugins")
        .arg(dir.path())
        .args(["run", "service-unreachable", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-missing"))
        .args(["--format", "json"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(finding_ids(&out.json()).contains(&"interception-missing".to_string()));
}

/// The compiled component cached for the plugin named `who`: the `.cwasm` beside the
/// manifest that names it.
fn cached_who(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let key = name.strip_suffix(".manifest.json")?;
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            (manifest["name"] == "who").then(|| dir.join(format!("{key}.cwasm")))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_compiled_plugin_in_the_cache_that_others_could_write_is_not_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let plugin = |who: &str| WatPlugin {
        name: "who",
        describe_prelude: "",
        sleeps: false,
        actions: &[("which", "")],
        answer: if who == "honest" {
            r#"{"who":"honest"}"#
        } else {
            r#"{"who":"IMPOSTOR"}"#
        },
    };
    let honest_dir = work.path().join("honest");
    let impostor_dir = work.path().join("impostor");
    plugin("honest").write(&honest_dir);
    plugin("impostor").write(&impostor_dir);
    let probe = |dir: &std::path::Path| {
        run(triage()
            .env("TRIAGE_CACHE_DIR", &cache)
            .arg("--plugins")
            .arg(dir)
            .args(["probe", "who", "which"]))
    };
    let who = |out: &Run| -> String {
        let outcome: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
        outcome["facts"]["who"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // The first start creates the cache, only for this user, and fills it.
    let out = probe(&honest_dir);
    assert_eq!(who(&out), "honest", "{}", out.stderr);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let honest = cached_who(&cache);
    assert_eq!(honest.len(), 1);
    let out = probe(&impostor_dir);
    assert_eq!(who(&out), "IMPOSTOR");
    let impostor: Vec<_> = cached_who(&cache)
        .into_iter()
        .filter(|p| !honest.contains(p))
        .collect();
    assert_eq!(impostor.len(), 1);
    let impostor = std::fs::read(&impostor[0]).unwrap();

    // The impostor's machine code under the honest plugin's name, writable by anyone:
    // refused with one line, and the honest plugin compiled from its wasm instead.
    let plant = |mode: u32| {
        std::fs::write(&honest[0], &impostor).unwrap();
        std::fs::set_permissions(&honest[0], std::fs::Permissions::from_mode(mode)).unwrap();
    };
    plant(0o666);
    let out = probe(&honest_dir);
    assert_eq!(who(&out), "honest", "{}", out.stderr);
    let warning = format!(
        "warning: ignoring the cached {} (it is writable by group or others (mode 666)); compiling the plugin instead",
        honest[0].display()
    );
    assert!(out.stderr.lines().any(|l| l == warning), "{}", out.stderr);

    // Owned by someone else: refused too.
    plant(0o600);
    std::os::unix::fs::chown(&honest[0], Some(65534), Some(65534)).unwrap();
    let out = probe(&honest_dir);
    assert_eq!(who(&out), "honest", "{}", out.stderr);
    assert!(
        out.stderr.contains("(it is owned by uid 65534"),
        "{}",
        out.stderr
    );

    // A directory others can write: nothing in it is trusted.
    std::fs::remove_file(&honest[0]).unwrap();
    plant(0o600);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = probe(&honest_dir);
    assert_eq!(who(&out), "honest", "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: not using the plugin cache {}: writable by group or others (mode 777)",
            cache.display()
        )),
        "{}",
        out.stderr
    );

    // The control: the same planted file, the user's own in the user's own directory, is
    // trusted (the cache directory is the operator's, as docs/security.md says), so what
    // the checks above refused would otherwise have run.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = probe(&honest_dir);
    assert_eq!(who(&out), "IMPOSTOR", "{}", out.stderr);
}
