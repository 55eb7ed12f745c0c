//! `cargo bench -p triage --bench runtime`: the costs that decide how fast a run starts.
//!
//! - `plugin/compile-cold`: nothing cached: compile the iptables plugin with Cranelift and
//!   check its describe() against the manifest built into the binary.
//! - `plugin/cache-hit`: a later start: the compiled code comes from the cache.
//! - `call/instantiate+call`: a fresh sandboxed instance and one call of a trivial action.
//! - `call/iptables-rules`: instantiate, call, and parse the guide's nat table from a bundle.
//! - `target/open-bundle`: what `triage serve` pays per run to open a bundle target (read and
//!   parse bundle.yaml; side files are read when a step asks).
//! - `e2e/service-unreachable`: the `triage` binary end to end on an example bundle with a
//!   warm cache (process start included).
//! - `e2e/service-unreachable-empty-cache`: the same, each time with an empty cache
//!   (`TRIAGE_CACHE_DIR` a new directory): the first run after an install, which compiles
//!   the three plugins the runbook calls (with Winch; the background Cranelift compile that
//!   a run starts is turned off here, so that it does not share the cores with the next
//!   sample).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triage::capability::Policy;
use triage::runtime::{Runtime, RuntimeOptions};
use triage::target::Target;
use triage::target::bundle::BundleTarget;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn runtime(cache: &Path, test_plugins: bool) -> Runtime {
    let plugin_dirs = if test_plugins {
        vec![PathBuf::from(triage::builtin::TEST_PLUGIN_DIR)]
    } else {
        vec![]
    };
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.to_path_buf()),
        builtin: true,
        plugin_dirs,
    })
    .unwrap()
}

fn plugin(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("plugin");
    group.sample_size(10);
    group.bench_function("compile-cold", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |cache| {
                let r = runtime(cache.path(), false);
                rt.block_on(r.prepare("iptables")).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    let cache = tempfile::tempdir().unwrap();
    rt.block_on(runtime(cache.path(), false).prepare("iptables"))
        .unwrap();
    group.sample_size(50);
    group.bench_function("cache-hit", |b| {
        b.iter(|| {
            let r = runtime(cache.path(), false);
            rt.block_on(r.prepare("iptables")).unwrap();
        })
    });
    group.finish();
}

fn call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let r = runtime(cache.path(), true);
    let policy = Arc::new(Policy::builtin());
    let bundle: Arc<dyn Target> = Arc::new(
        BundleTarget::open(&root().join("examples/service-unreachable/interception-in-place"))
            .unwrap(),
    );
    rt.block_on(r.prepare("hostile")).unwrap();
    rt.block_on(r.prepare("iptables")).unwrap();
    let mut group = c.benchmark_group("call");
    let none = serde_json::json!({});
    group.bench_function("instantiate+call", |b| {
        b.iter(|| {
            let out = rt.block_on(r.call("hostile", "ok", &none, bundle.clone(), policy.clone()));
            assert!(out.result.is_ok());
        })
    });
    let params = serde_json::json!({"table": "nat", "command": "spec", "vip": "10.0.0.1", "proxy_uid": 1006});
    group.bench_function("iptables-rules", |b| {
        b.iter(|| {
            let out =
                rt.block_on(r.call("iptables", "rules", &params, bundle.clone(), policy.clone()));
            assert!(out.result.is_ok());
        })
    });
    group.finish();
}

fn target(c: &mut Criterion) {
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let mut group = c.benchmark_group("target");
    group.bench_function("open-bundle", |b| {
        b.iter(|| BundleTarget::open(&bundle).unwrap())
    });
    group.finish();
}

fn e2e(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_triage");
    let command = || {
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--input",
            "vip=10.0.0.1",
            "--bundle",
        ])
        .arg(root().join("examples/service-unreachable/interception-in-place"))
        .env("TRIAGE_CACHE_DIR", cache.path())
        .env(triage::runtime::NO_BACKGROUND_COMPILE, "1")
        .stdout(std::process::Stdio::null());
        cmd
    };
    // The warm run loads Cranelift's code, as every run after the background compile does.
    Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        builtin: true,
        plugin_dirs: vec![],
    })
    .unwrap()
    .prepare_all(["host", "config-dump", "iptables"]);
    assert!(command().status().unwrap().success()); // warms the rest of the cache
    let mut group = c.benchmark_group("e2e");
    group.sample_size(30);
    group.bench_function("service-unreachable", |b| {
        b.iter(|| assert!(command().status().unwrap().success()))
    });
    group.sample_size(10);
    group.bench_function("service-unreachable-empty-cache", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |empty| {
                let status = command()
                    .env("TRIAGE_CACHE_DIR", empty.path())
                    .status()
                    .unwrap();
                assert!(status.success());
                empty // removed after the timing
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, plugin, call, target, e2e);
criterion_main!(benches);
