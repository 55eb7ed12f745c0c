//! `cargo bench -p triage --bench config_dump`: a ~50 MB `/config_dump`, four ways.
//!
//! The dump is the real Istio 1.6 productpage sidecar dump (fixtures/real) with its
//! listeners and clusters repeated under new names until the file reaches ~50 MB; it is
//! written to a temporary file when the bench starts. Every variant reads that file:
//!
//! - `sandbox`: the config-dump plugin's `config` action with `path`, through
//!   `Runtime::call` and the local target (read-file capability), plugin precompiled;
//! - `sandbox-listeners`: the same with `include_listeners: true` (every listener and its
//!   filter chains returned and parsed again by the host);
//! - `native-typed`: the plugin crate's `parse_config_dump`, natively;
//! - `native-value`: `serde_json::Value`, then the same listener extraction by hand;
//! - `jq`: a `jq` process doing that extraction (skipped when jq is not installed);
//! - `host-read-file`: only the host half of the sandbox's read-file call, for the breakdown.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use triage::capability::Policy;
use triage::runtime::{Runtime, RuntimeOptions};
use triage::target::Target;
use triage::target::local::LocalTarget;
use triage_plugin_config_dump::{Query, parse_config_dump};

const SOURCE: &str = "istio-1.6-bookinfo-productpage-sidecar.config_dump.json";
const TARGET_BYTES: usize = 50_000_000;

/// The listener extraction every variant does: name, address and port of each listener.
const JQ_FILTER: &str = "[.configs[] | ((.dynamic_listeners // [])[] | .active_state.listener), \
     ((.static_listeners // [])[] | .listener) \
     | {name, address: .address.socket_address.address, port: .address.socket_address.port_value}] | length";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/real/envoy-config-dump")
        .join(SOURCE)
}

/// Renames a listener or cluster copy so the dump stays plausible (names are unique).
fn rename(entry: &mut Value, copy: usize) {
    for pointer in ["/active_state/listener/name", "/cluster/name", "/name"] {
        if let Some(Value::String(name)) = entry.pointer_mut(pointer) {
            *name = format!("{name}~{copy}");
        }
    }
}

/// The real dump with every dynamic listener and cluster repeated `copies` times, pretty
/// printed as Envoy prints it; and its listener count.
fn multiplied(dump: &Value, copies: usize) -> (Vec<u8>, usize) {
    let mut dump = dump.clone();
    let mut listeners = 0;
    for config in dump["configs"].as_array_mut().unwrap() {
        for key in ["dynamic_listeners", "dynamic_active_clusters"] {
            let Some(Value::Array(items)) = config.get_mut(key) else {
                continue;
            };
            let originals = items.clone();
            for copy in 1..copies {
                items.extend(originals.iter().cloned().map(|mut e| {
                    rename(&mut e, copy);
                    e
                }));
            }
            if key == "dynamic_listeners" {
                listeners += items.len();
            }
        }
        if let Some(Value::Array(items)) = config.get("static_listeners") {
            listeners += items.len();
        }
    }
    (serde_json::to_vec_pretty(&dump).unwrap(), listeners)
}

/// Writes a dump of about `TARGET_BYTES`; returns its listener count.
fn write_big_dump(path: &Path) -> usize {
    let dump: Value = serde_json::from_slice(&std::fs::read(fixture()).unwrap()).unwrap();
    let once = multiplied(&dump, 1).0.len();
    let per_copy = multiplied(&dump, 2).0.len() - once;
    let (bytes, listeners) = multiplied(&dump, (TARGET_BYTES - once) / per_copy + 1);
    std::fs::write(path, bytes).unwrap();
    listeners
}

/// What `native-value` extracts: the same listener triples as the jq filter.
fn listeners_from_value(dump: &Value) -> usize {
    let mut out = Vec::new();
    for config in dump["configs"].as_array().into_iter().flatten() {
        let dynamic = config["dynamic_listeners"].as_array().into_iter().flatten();
        let statics = config["static_listeners"].as_array().into_iter().flatten();
        for listener in dynamic
            .map(|l| &l["active_state"]["listener"])
            .chain(statics.map(|l| &l["listener"]))
        {
            let socket = &listener["address"]["socket_address"];
            out.push((
                listener["name"].as_str(),
                socket["address"].as_str(),
                socket["port_value"].as_u64(),
            ));
        }
    }
    out.len()
}

fn have_jq() -> bool {
    Command::new("jq")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn config_dump(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let dump_path = dir.path().join("config_dump.json");
    let listeners = write_big_dump(&dump_path);
    let size = std::fs::metadata(&dump_path).unwrap().len();
    eprintln!(
        "config_dump bench: {} ({:.1} MB, {listeners} listeners)",
        dump_path.display(),
        size as f64 / 1e6
    );
    let path = dump_path.to_str().unwrap().to_owned();

    // Only the file is granted; the limits are the defaults (256 MiB of guest memory, 16 MiB
    // of output, 5 s of CPU): the 50 MB dump fits them, so none is raised.
    let policy_text = format!("allow:\n  read_file: [{path:?}]\n");
    let policy = Arc::new(Policy::parse(&policy_text, Path::new("bench-policy.yaml")).unwrap());
    assert_eq!(policy.limits, triage::runtime::SandboxLimits::default());
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        builtin: true,
        plugin_dirs: vec![],
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(runtime.prepare("config-dump")).unwrap();
    let target: Arc<dyn Target> = Arc::new(LocalTarget::new());
    let params = json!({ "path": path });
    let params_listeners = json!({ "path": path, "include_listeners": true });
    // The listeners the facts count (summaries only) or list (`include_listeners`).
    let sandboxed = |params: &Value| {
        let out = rt.block_on(runtime.call(
            "config-dump",
            "config",
            params,
            target.clone(),
            policy.clone(),
        ));
        let facts = out.result.unwrap_or_else(|e| panic!("sandbox: {e}"));
        match facts["listeners"].as_array() {
            Some(list) => list.len(),
            None => {
                let count = |k: &str| facts[k].as_u64().unwrap() as usize;
                count("dynamic_listener_count") + count("static_listener_count")
            }
        }
    };
    // Every variant must see the same listeners, or the comparison means nothing.
    assert_eq!(sandboxed(&params), listeners);
    assert_eq!(sandboxed(&params_listeners), listeners);
    // The same query as `sandbox`: the listeners are built (the summaries come from them)
    // but not returned.
    let typed = || {
        let bytes = std::fs::read(&dump_path).unwrap();
        let facts = parse_config_dump(&bytes, &Query::default()).unwrap();
        assert!(facts.listeners.is_none());
        facts.dynamic_listener_count + facts.static_listener_count
    };
    assert_eq!(typed(), listeners);
    let value = || {
        let bytes = std::fs::read(&dump_path).unwrap();
        listeners_from_value(&serde_json::from_slice(&bytes).unwrap())
    };
    assert_eq!(value(), listeners);
    let jq = || {
        let out = Command::new("jq")
            .args([JQ_FILTER, &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap()
    };

    let mut group = c.benchmark_group("config_dump_50mb");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.throughput(criterion::Throughput::Bytes(size));
    group.bench_function("sandbox", |b| b.iter(|| sandboxed(&params)));
    group.bench_function("sandbox-listeners", |b| {
        b.iter(|| sandboxed(&params_listeners))
    });
    group.bench_function("native-typed", |b| b.iter(typed));
    group.bench_function("native-value", |b| b.iter(value));
    // Part of `sandbox`: the host side of the read-file capability alone.
    group.bench_function("host-read-file", |b| {
        b.iter(|| {
            let bytes = rt
                .block_on(target.read_file(&path, 256 << 20, &|_| Ok(())))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(bytes.len() as u64, size);
        })
    });
    if have_jq() {
        assert_eq!(jq(), listeners);
        group.bench_function("jq", |b| b.iter(jq));
    } else {
        eprintln!("config_dump bench: jq is not installed; skipping the jq variant");
    }
    group.finish();
}

criterion_group!(benches, config_dump);
criterion_main!(benches);
