//! The first run after a build: only what a command needs is compiled. Built-in plugins
//! carry their manifests (taken at build time), so listing, linting and loading runbooks
//! compile nothing, a run compiles only the plugins its runbook calls, and the compiled
//! code is checked against the manifest before it is trusted or cached.

use crate::{finding_ids, root, run, triage};
use std::path::{Path, PathBuf};

/// The compiled plugins in a cache directory.
fn compiled(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    out.sort();
    out
}

fn service_unreachable(cache: &Path) -> crate::Run {
    run(triage()
        .env("TRIAGE_CACHE_DIR", cache)
        .args(["run", "service-unreachable", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-missing"))
        .args(["--input", "vip=10.0.0.1", "--format", "json"]))
}

#[test]
fn list_lint_schema_and_plugins_compile_nothing() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    for args in [
        &["list"][..],
        &["lint"],
        &["schema"],
        &["plugins", "-o", "json"],
        &["graph", "service-unreachable"],
    ] {
        let out = run(triage().env("TRIAGE_CACHE_DIR", &cache).args(args));
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(
            compiled(&cache),
            Vec::<PathBuf>::new(),
            "{args:?} compiled plugins"
        );
    }
}

#[test]
fn a_first_run_compiles_only_the_plugins_its_runbook_calls() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let out = service_unreachable(&cache);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(finding_ids(&out.json()).contains(&"interception-missing".to_string()));
    // service-unreachable calls host, config-dump and iptables: three of the seven.
    assert_eq!(compiled(&cache).len(), 3, "{:?}", compiled(&cache));
    // Not on a terminal: no progress line in what a script reads.
    assert!(!out.stderr.contains("compiling"), "{}", out.stderr);
    // A warm run compiles nothing more and says the same.
    let warm = service_unreachable(&cache);
    assert_eq!(warm.code, 1, "{}", warm.stderr);
    assert_eq!(warm.json()["findings"], out.json()["findings"]);
    assert_eq!(compiled(&cache).len(), 3);
}

/// The first run compiles with Winch (fast) and leaves Cranelift (optimizing) to a
/// process of its own that outlives the command; a later run loads Cranelift's code. Before
/// Winch, the first run compiled with Cranelift and started nothing.
#[test]
fn cranelift_compiles_in_the_background_after_a_first_run_on_winch_code() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let first = run(triage()
        .env_remove(triage::runtime::NO_BACKGROUND_COMPILE)
        .env("TRIAGE_CACHE_DIR", &cache)
        .args(["-vv", "run", "service-unreachable", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-missing"))
        .args(["--input", "vip=10.0.0.1", "--format", "json"]));
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("compiling with Cranelift in the background"),
        "{}",
        first.stderr
    );
    // Winch's code for the three plugins the run called, there when the command ended.
    let winch = compiled(&cache);
    assert_eq!(winch.len(), 3, "{winch:?}");
    // Cranelift's arrives when the background process is done (seconds on a busy machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while compiled(&cache).len() < 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let cranelift: Vec<PathBuf> = compiled(&cache)
        .into_iter()
        .filter(|p| !winch.contains(p))
        .collect();
    assert_eq!(cranelift.len(), 3, "{:?}", compiled(&cache));
    // Without Winch's code, a later run loads Cranelift's: nothing compiled, nothing started.
    for path in &winch {
        std::fs::remove_file(path).unwrap();
    }
    let later = run(triage()
        .env_remove(triage::runtime::NO_BACKGROUND_COMPILE)
        .env("TRIAGE_CACHE_DIR", &cache)
        .args(["-vv", "run", "service-unreachable", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-missing"))
        .args(["--input", "vip=10.0.0.1", "--format", "json"]));
    assert_eq!(later.code, 1, "{}", later.stderr);
    assert_eq!(later.json()["findings"], first.json()["findings"]);
    assert!(
        !later.stderr.contains("plugin compiled"),
        "{}",
        later.stderr
    );
    assert!(
        !later.stderr.contains("in the background"),
        "{}",
        later.stderr
    );
    assert_eq!(compiled(&cache), cranelift);
}

#[test]
fn a_corrupt_compiled_plugin_in_the_cache_is_refused_and_compiled_again() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let first = service_unreachable(&cache);
    assert_eq!(first.code, 1, "{}", first.stderr);
    let entries = compiled(&cache);
    assert_eq!(entries.len(), 3);
    // Garbage, a truncated artifact and an empty file, each the user's own, mode 0600:
    // wasmtime's checks refuse them, and the plugins are compiled from their wasm again.
    let whole = std::fs::read(&entries[1]).unwrap();
    std::fs::write(&entries[0], b"\x7fELF not really machine code").unwrap();
    std::fs::write(&entries[1], &whole[..whole.len() / 2]).unwrap();
    std::fs::write(&entries[2], b"").unwrap();
    let out = service_unreachable(&cache);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.json()["findings"], first.json()["findings"]);
    assert_eq!(out.json()["summary"], first.json()["summary"]);
    for entry in &entries {
        let len = std::fs::metadata(entry).unwrap().len();
        assert!(
            len > 100_000,
            "{} not compiled again ({len} bytes)",
            entry.display()
        );
    }
}

#[test]
fn the_progress_line_shows_on_a_terminal_only() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    // script(1) gives the command a pseudo-terminal; its stdout is the terminal's output.
    let command = format!(
        "TRIAGE_CACHE_DIR={} {} run service-unreachable --bundle {} --input vip=10.0.0.1 --format json >/dev/null",
        cache.display(),
        std::env::var("TRIAGE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_triage").into()),
        root()
            .join("examples/service-unreachable/interception-missing")
            .display()
    );
    let out = run(std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_CONFIG_HOME", work.path().join("config"))
        .env("XDG_DATA_HOME", work.path().join("data"))
        .env(triage::runtime::NO_BACKGROUND_COMPILE, "1"));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("compiling plugins"),
        "no progress line on the terminal: {:?}",
        out.stdout
    );
    // A warm run compiles nothing, so shows nothing.
    let out = run(std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("XDG_CONFIG_HOME", work.path().join("config"))
        .env("XDG_DATA_HOME", work.path().join("data"))
        .env(triage::runtime::NO_BACKGROUND_COMPILE, "1"));
    assert_eq!(out.code, 1);
    assert!(!out.stdout.contains("compiling"), "{:?}", out.stdout);
}

/// A plugin whose manifest says less than its code: the host plugin's wasm, with a
/// manifest that drops one action's declared capability and adds another. Loading it works
/// (nothing is compiled), its first call is refused with one line, and its code is not
/// cached.
#[test]
fn a_manifest_that_lies_about_its_code_is_refused_at_the_first_call() {
    use triage::runtime::{PluginOrigin, Runtime, RuntimeOptions};
    let builtin = triage::builtin::PLUGINS
        .iter()
        .find(|p| p.crate_name == "triage-plugin-host")
        .unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(builtin.manifest.expect("built-ins carry their manifest")).unwrap();
    let action = manifest["actions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == "processes")
        .unwrap();
    action["capabilities"] = serde_json::json!([{"read_file": "/etc/shadow"}]);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mut runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.clone()),
        builtin: false,
        plugin_dirs: vec![],
    })
    .unwrap();
    let origin = PluginOrigin::File(work.path().join("liar.wasm"));
    runtime
        .add_plugin_with_manifest(builtin.wasm.to_vec(), &manifest.to_string(), origin.clone())
        .unwrap();
    // Loaded as it claims, without compiling anything.
    let declared = &runtime.plugin("host").unwrap().manifest();
    assert!(format!("{:?}", declared.action("processes").unwrap().capabilities).contains("shadow"));
    assert_eq!(compiled(&cache), Vec::<PathBuf>::new());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = rt
        .block_on(runtime.prepare("host"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("describes itself otherwise than the manifest it came with"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    assert_eq!(
        compiled(&cache),
        Vec::<PathBuf>::new(),
        "refused code was cached"
    );

    // The honest manifest, same wasm: compiled, checked, cached.
    let mut honest = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.clone()),
        builtin: false,
        plugin_dirs: vec![],
    })
    .unwrap();
    honest
        .add_plugin_with_manifest(builtin.wasm.to_vec(), builtin.manifest.unwrap(), origin)
        .unwrap();
    rt.block_on(honest.prepare("host")).unwrap();
    assert_eq!(compiled(&cache).len(), 1);
}

#[test]
fn a_malformed_or_huge_manifest_is_refused_with_one_line() {
    use triage::runtime::{PluginOrigin, Runtime, RuntimeOptions};
    let builtin = triage::builtin::PLUGINS
        .iter()
        .find(|p| p.crate_name == "triage-plugin-host")
        .unwrap();
    let mut runtime = Runtime::new(RuntimeOptions {
        cache_dir: None,
        builtin: false,
        plugin_dirs: vec![],
    })
    .unwrap();
    let huge = format!(
        r#"{{"name":"host","version":"1","sdk_version":"0.1.0","description":"{}","actions":[]}}"#,
        "x".repeat(2 << 20)
    );
    for bad in [
        "not json",
        r#"{"name":"host"}"#,
        r#"{"name":"host","version":"1","sdk_version":"0.1.0","description":"","actions":[{"name":"a","description":"","params_schema":"{","output_schema":"{}","capabilities":[]}]}"#,
        r#"{"name":"host","version":"1","sdk_version":"0.1.0","description":"","actions":[],"grant_everything":true}"#,
        &huge,
    ] {
        let error = runtime
            .add_plugin_with_manifest(
                builtin.wasm.to_vec(),
                bad,
                PluginOrigin::File("bad.wasm".into()),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.len() < 400, "{error}");
        assert!(runtime.plugin("host").is_none());
    }
}
