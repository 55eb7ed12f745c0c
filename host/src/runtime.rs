//! The plugin runtime: one wasmtime engine, plugins compiled once and cached on disk, and
//! a fresh sandboxed store for every call.
//!
//! Two compilers. Cranelift (optimizing) makes the code kept for every later run; Winch
//! (wasmtime's baseline compiler) compiles a built-in plugin whose Cranelift code is not in
//! the cache yet about seven times faster, so that a first run takes well under a second
//! (BENCHMARKS.md, "The first run"). Winch's code is cached too, and when the command ends
//! a detached, lower-priority `triage` process compiles those plugins with Cranelift into
//! the cache, which later runs prefer. Both kinds of code run under the same sandbox: the
//! same limiter, the same epoch interruption (CPU budget), the same WASI context.

pub mod bindings;
pub mod cache;
#[cfg(target_os = "linux")]
pub mod limits;
pub mod manifest;
pub mod sandbox;
pub mod schema;

use crate::capability::{CapabilityUse, PluginLog};
use crate::capability::{Grants, Policy};
use crate::target::Target;
use bindings::{Plugin, PluginPre, guest};
use cache::ComponentCache;
pub use manifest::{ActionSpec, DeclaredCapability, PluginManifest};
use sandbox::CallState;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

/// How often the epoch advances; the unit of the CPU budget.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A plugin's error message (a step's reason) is cut past this.
const MAX_REASON_BYTES: usize = 8192;

/// A manifest kept beside a plugin is refused past this (the built-in ones are a few KiB
/// to a few tens of KiB: schemas and capability patterns).
const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The SDK line this host serves: plugins built with another minor version are refused.
pub const SDK_COMPAT: &str = "0.1.";

/// Limits of every plugin call; defined with the policy, whose `limits:` sets them.
pub use crate::capability::policy::SandboxLimits;

/// Limits of `describe()`: the sandbox of every call, with deadlines sized for what
/// describe is (a constant manifest, built in microseconds). They hold while plugins load,
/// before any policy file is read, so a describe that spins or sleeps costs every
/// command at most this long.
pub const DESCRIBE_LIMITS: SandboxLimits = SandboxLimits {
    memory_bytes: 256 << 20,
    cpu: Duration::from_secs(2),
    wall: Duration::from_secs(5),
    output_bytes: 16 << 20,
};

/// Where a plugin came from.
#[derive(Debug, Clone)]
pub enum PluginOrigin {
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginOrigin::Builtin => write!(f, "built-in"),
            PluginOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Wasm {
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Wasm {
    fn bytes(&self) -> &[u8] {
        match self {
            Wasm::Static(b) => b,
            Wasm::Owned(b) => b,
        }
    }
}

pub struct LoadedPlugin {
    /// The manifest's name, known before the rest of it is read.
    pub name: String,
    /// Read on first need: a built-in's manifest is parsed only when a command asks about
    /// the plugin (parsing all seven, schemas and all, was a tenth of a warm run).
    manifest: std::sync::OnceLock<PluginManifest>,
    /// The JSON a lazily read manifest comes from; `None` when it was read at once.
    manifest_json: Option<&'static str>,
    pub origin: PluginOrigin,
    wasm: Wasm,
    key: String,
    /// The manifest came with the plugin rather than from its code (a built-in's, taken at
    /// build time): the code's own `describe()` must agree before its first call.
    check_manifest: bool,
    /// Compiled (or loaded from the cache) on first need, once.
    pre: std::sync::OnceLock<PluginPre<CallState>>,
    /// Held while compiling, so two steps that need the plugin at once compile it once.
    compiling: std::sync::Mutex<()>,
}

impl LoadedPlugin {
    /// What the plugin says it does: its actions, their schemas and capabilities.
    pub fn manifest(&self) -> &PluginManifest {
        self.manifest.get_or_init(|| {
            let json = self
                .manifest_json
                .expect("a manifest not read at once has its JSON");
            // A built-in's manifest was made by the build from the plugin's own describe();
            // host/tests/all/first_run.rs reads every one.
            PluginManifest::from_json(json).expect("a built-in plugin's manifest reads")
        })
    }
}

/// Why a plugin call produced no facts. Each is a step's `errored` reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailure {
    #[error("unknown plugin `{0}`")]
    UnknownPlugin(String),
    #[error("{plugin}: {message}")]
    Probe {
        plugin: String,
        kind: &'static str,
        message: String,
    },
    #[error("{plugin}: stopped at the CPU deadline ({ms} ms of guest time)")]
    CpuDeadline { plugin: String, ms: u128 },
    #[error("{plugin}: stopped at the wall-clock deadline ({ms} ms)")]
    WallDeadline { plugin: String, ms: u128 },
    #[error("{plugin}: stopped at the memory cap ({mib} MiB)")]
    MemoryCap { plugin: String, mib: usize },
    #[error("{plugin}: trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("{plugin}: output of {bytes} bytes is over the {cap}-byte cap")]
    OutputTooLarge {
        plugin: String,
        bytes: usize,
        cap: usize,
    },
    #[error("{plugin}: output is not JSON: {message}")]
    BadOutput { plugin: String, message: String },
    #[error("{0}")]
    Host(String),
}

pub struct CallOutcome {
    pub result: Result<Value, CallFailure>,
    pub journal: Vec<CapabilityUse>,
    pub logs: Vec<PluginLog>,
    pub duration: Duration,
}

/// A manifest as a plugin is added: read already, or to be read from a built-in's JSON.
enum Manifest {
    Read(PluginManifest),
    Lazy {
        name: String,
        sdk_version: String,
        json: &'static str,
    },
}

pub struct RuntimeOptions {
    /// Where compiled components and manifests are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub builtin: bool,
    /// Directories of extra `*.wasm` plugins; later ones shadow earlier ones and built-ins.
    pub plugin_dirs: Vec<PathBuf>,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: ComponentCache,
    cache_dir: Option<PathBuf>,
    /// Built-ins not yet compiled by Cranelift are compiled by Winch (the CLI sets this).
    quick_first_compile: bool,
    /// Winch's engine, made the first time a plugin needs it.
    baseline: std::sync::OnceLock<Option<Baseline>>,
    /// Built-ins running on Winch's code in this process: Cranelift compiles them in the
    /// background when the runtime is dropped.
    on_baseline: std::sync::Mutex<Vec<String>>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Non-fatal problems found while loading (shadowed plugins), for the CLI to print.
    pub warnings: Vec<String>,
    /// Show a progress line on stderr while plugins compile (the CLI on a terminal).
    progress: bool,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Self> {
        let engine = new_engine(Strategy::Cranelift)?;
        let linker = new_linker(&engine)?;
        let cache = ComponentCache::new(options.cache_dir.clone(), &engine);
        let mut runtime = Runtime {
            engine,
            linker,
            cache,
            cache_dir: options.cache_dir,
            quick_first_compile: false,
            baseline: std::sync::OnceLock::new(),
            on_baseline: std::sync::Mutex::new(Vec::new()),
            plugins: BTreeMap::new(),
            warnings: Vec::new(),
            progress: false,
        };
        if options.builtin {
            for builtin in crate::builtin::PLUGINS {
                let wasm = Wasm::Static(builtin.wasm);
                match builtin.manifest {
                    Some(manifest) => runtime
                        .add_builtin(wasm, builtin.sha256, manifest)
                        .map_err(|e| {
                            anyhow::anyhow!("built-in plugin {}: {e}", builtin.crate_name)
                        })?,
                    None => runtime.add(wasm, builtin.sha256, PluginOrigin::Builtin)?,
                }
            }
        }
        for dir in &options.plugin_dirs {
            runtime.load_dir(dir)?;
        }
        let refused = runtime.cache.take_warnings();
        runtime.warnings.extend(refused);
        Ok(runtime)
    }

    /// Loads every `*.wasm` in a directory (a missing directory is an error only when it
    /// was asked for explicitly; callers check that). A plugin that cannot be loaded (not a
    /// component, another SDK, a `describe()` that traps, spins or sleeps) is skipped with
    /// a one-line warning naming it, so one bad file does not stop every command.
    pub fn load_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot read plugin directory: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        for file in files {
            if let Err(e) = self.load_file(&file) {
                self.warnings
                    .push(format!("skipped plugin {}", first_line(&format!("{e:#}"))));
            }
        }
        Ok(())
    }

    pub fn load_file(&mut self, file: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let hash = cache::sha256_hex(&bytes);
        self.add(
            Wasm::Owned(bytes),
            &hash,
            PluginOrigin::File(file.to_path_buf()),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    }

    /// Compiles built-ins that Cranelift has not compiled yet with Winch, and has
    /// Cranelift compile them in the background when this runtime is dropped (see the
    /// module's doc). For a command line, whose first run must be quick; a library user or a
    /// server keeps Cranelift only.
    pub fn set_quick_first_compile(&mut self, quick: bool) {
        self.quick_first_compile = quick;
    }

    /// Shows a progress line on stderr while plugins compile; for a terminal only.
    pub fn set_progress(&mut self, progress: bool) {
        self.progress = progress;
    }

    /// Adds a plugin from its wasm and the manifest kept beside it (the JSON that
    /// `triage_sdk::__private::manifest_json` writes), as the built-in plugins are added:
    /// nothing is compiled until a call needs it, and the call is refused if the code's own
    /// `describe()` says otherwise.
    pub fn add_plugin_with_manifest(
        &mut self,
        wasm: Vec<u8>,
        manifest_json: &str,
        origin: PluginOrigin,
    ) -> anyhow::Result<()> {
        let hash = cache::sha256_hex(&wasm);
        self.add_with_manifest(Wasm::Owned(wasm), &hash, manifest_json, origin)
    }

    /// Adds a built-in plugin with the manifest the build took from it: only its name and
    /// SDK version are read now, the rest when a command needs it.
    fn add_builtin(
        &mut self,
        wasm: Wasm,
        wasm_sha256: &str,
        manifest_json: &'static str,
    ) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Head {
            name: String,
            sdk_version: String,
        }
        let head: Head = serde_json::from_str(manifest_json)
            .map_err(|e| anyhow::anyhow!("bad manifest: {}", first_line(&e.to_string())))?;
        let key = self.manifest_key(wasm_sha256, manifest_json);
        tracing::debug!(
            plugin = head.name,
            "plugin manifest from the build: nothing compiled until a call needs the plugin (then from the cache, or compiled into it)"
        );
        self.insert(
            Manifest::Lazy {
                name: head.name,
                sdk_version: head.sdk_version,
                json: manifest_json,
            },
            PluginOrigin::Builtin,
            wasm,
            key,
            std::sync::OnceLock::new(),
            true,
        )
    }

    /// The cache key of code that comes with a manifest: of the wasm *and* the manifest,
    /// so code cached for one never serves the other.
    fn manifest_key(&self, wasm_sha256: &str, manifest_json: &str) -> String {
        self.cache.key(&cache::sha256_hex(
            format!(
                "{wasm_sha256}\0{}",
                cache::sha256_hex(manifest_json.as_bytes())
            )
            .as_bytes(),
        ))
    }

    /// Adds a plugin whose manifest comes with it (a built-in's, taken at build time), so
    /// nothing is compiled until a call needs the plugin. Its code's own `describe()` is
    /// checked against the manifest when it is compiled, and the compiled code is cached
    /// under a key of the wasm *and* the manifest, so code cached for one never serves
    /// the other.
    fn add_with_manifest(
        &mut self,
        wasm: Wasm,
        wasm_sha256: &str,
        manifest_json: &str,
        origin: PluginOrigin,
    ) -> anyhow::Result<()> {
        if manifest_json.len() > MAX_MANIFEST_BYTES {
            anyhow::bail!(
                "manifest of {} bytes is over the {MAX_MANIFEST_BYTES}-byte cap",
                manifest_json.len()
            );
        }
        let manifest = PluginManifest::from_json(manifest_json)
            .map_err(|e| anyhow::anyhow!("bad manifest: {}", first_line(&e)))?;
        let key = self.manifest_key(wasm_sha256, manifest_json);
        tracing::debug!(
            plugin = manifest.name,
            "plugin manifest from the build: nothing compiled until a call needs the plugin (then from the cache, or compiled into it)"
        );
        self.insert(
            Manifest::Read(manifest),
            origin,
            wasm,
            key,
            std::sync::OnceLock::new(),
            true,
        )
    }

    fn add(&mut self, wasm: Wasm, hash: &str, origin: PluginOrigin) -> anyhow::Result<()> {
        let key = self.cache.key(hash);
        let pre = std::sync::OnceLock::new();
        let manifest = match self.cache.load_manifest(&key) {
            Some(m) => m,
            None => {
                let (component, fresh) = self.load_or_compile(wasm.bytes(), &key)?;
                if fresh {
                    self.cache.store_component(&key, &component);
                }
                let instance_pre =
                    PluginPre::new(self.linker.instantiate_pre(&component).map_err(|e| {
                        anyhow::anyhow!(
                            "not a triage plugin (does not fit the triage:probe world): {e}"
                        )
                    })?)
                    .map_err(wasm_error)?;
                let manifest = self.describe(&instance_pre)?;
                self.cache.store_manifest(&key, &manifest);
                // Keep what was just compiled: the first call must not compile again.
                let _ = pre.set(instance_pre);
                manifest
            }
        };
        self.insert(Manifest::Read(manifest), origin, wasm, key, pre, false)
    }

    fn insert(
        &mut self,
        manifest: Manifest,
        origin: PluginOrigin,
        wasm: Wasm,
        key: String,
        pre: std::sync::OnceLock<PluginPre<CallState>>,
        check_manifest: bool,
    ) -> anyhow::Result<()> {
        let (name, sdk_version) = match &manifest {
            Manifest::Read(m) => (m.name.clone(), m.sdk_version.as_str()),
            Manifest::Lazy {
                name, sdk_version, ..
            } => (name.clone(), sdk_version.as_str()),
        };
        if !sdk_version.starts_with(SDK_COMPAT) {
            anyhow::bail!(
                "plugin `{name}` was built with triage-sdk {sdk_version}; this triage serves triage-sdk {SDK_COMPAT}x: rebuild the plugin against it",
            );
        }
        if let Some(previous) = self.plugins.get(&name) {
            self.warnings.push(format!(
                "plugin `{name}` from {origin} shadows the one from {}",
                previous.origin
            ));
        }
        let (manifest, manifest_json) = match manifest {
            Manifest::Read(m) => (std::sync::OnceLock::from(m), None),
            Manifest::Lazy { json, .. } => (std::sync::OnceLock::new(), Some(json)),
        };
        let plugin = LoadedPlugin {
            name,
            manifest,
            manifest_json,
            origin,
            wasm,
            key,
            check_manifest,
            pre,
            compiling: std::sync::Mutex::new(()),
        };
        self.plugins.insert(plugin.name.clone(), Arc::new(plugin));
        Ok(())
    }

    /// Compiles a component, or loads it from the cache when this engine compiled it
    /// before; with whether it was compiled now (`false`: from the cache). The caller
    /// stores what was compiled, once it has checked it.
    fn load_or_compile(&self, bytes: &[u8], key: &str) -> anyhow::Result<(Component, bool)> {
        if let Some(component) = self.cache.load_component(&self.engine, key) {
            return Ok((component, false));
        }
        compile(&self.engine, bytes, key).map(|c| (c, true))
    }

    /// Winch, for a built-in whose Cranelift code is not cached, when quick first compiles
    /// are on; made on first need.
    fn baseline_for(&self, plugin: &LoadedPlugin) -> Option<&Baseline> {
        if !self.quick_first_compile || !matches!(plugin.origin, PluginOrigin::Builtin) {
            return None;
        }
        self.baseline
            .get_or_init(|| match Baseline::new(self.cache_dir.clone()) {
                Ok(baseline) => Some(baseline),
                Err(e) => {
                    tracing::debug!(error = %e, "no baseline compiler; compiling with Cranelift");
                    None
                }
            })
            .as_ref()
    }

    /// A plugin's code: Cranelift's from the cache; else, for a built-in when quick first
    /// compiles are on, Winch's (from the cache or compiled now); else compiled by
    /// Cranelift. With whether it was compiled now, and the Winch engine it is for, if so.
    fn code_for(
        &self,
        plugin: &LoadedPlugin,
    ) -> anyhow::Result<(Component, bool, Option<&Baseline>)> {
        if let Some(component) = self.cache.load_component(&self.engine, &plugin.key) {
            return Ok((component, false, None));
        }
        if let Some(baseline) = self.baseline_for(plugin) {
            self.on_baseline
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(plugin.name.clone());
            let key = baseline.cache.key(&plugin.key);
            if let Some(component) = baseline.cache.load_component(&baseline.engine, &key) {
                return Ok((component, false, Some(baseline)));
            }
            let component = compile(&baseline.engine, plugin.wasm.bytes(), &key)?;
            return Ok((component, true, Some(baseline)));
        }
        let component = compile(&self.engine, plugin.wasm.bytes(), &plugin.key)?;
        Ok((component, true, None))
    }

    /// Calls `describe()` in the sandbox, under the describe limits. It runs on a thread of
    /// its own with its own async runtime: loading happens both inside and outside one
    /// (the server loads in its runtime), and WASI's clocks need a reactor to sleep on.
    fn describe(&self, pre: &PluginPre<CallState>) -> anyhow::Result<PluginManifest> {
        let limits = DESCRIBE_LIMITS;
        let engine = pre.engine().clone();
        let pre = pre.clone();
        let work = move || -> Result<guest::Manifest, CallFailure> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CallFailure::Host(format!("cannot start an async runtime: {e}")))?;
            // The target's HTTP client wants the runtime around when it is made.
            let _entered = runtime.enter();
            let state = CallState::new(
                Grants::none("describe", Arc::new(Policy::builtin())),
                Arc::new(crate::target::local::LocalTarget::new()),
                limits.memory_bytes,
                cpu_ticks(limits.cpu),
                limits.wall,
            );
            let mut store = new_store(&engine, state);
            let outcome = runtime.block_on(tokio::time::timeout(limits.wall, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .triage_probe_probe()
                    .call_describe(&mut store)
                    .await
            }));
            match outcome {
                Ok(Ok(manifest)) => Ok(manifest),
                Ok(Err(trap)) => Err(classify_trap("describe()", &trap, store.data(), &limits)),
                Err(_) => Err(CallFailure::WallDeadline {
                    plugin: "describe()".into(),
                    ms: limits.wall.as_millis(),
                }),
            }
        };
        let manifest = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("triage-describe".into())
                .spawn_scoped(scope, work)
                .map_err(|e| CallFailure::Host(format!("cannot start a thread: {e}")))?
                .join()
                .map_err(|_| CallFailure::Host("describe() panicked the host".into()))?
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        PluginManifest::from_wit(manifest).map_err(|e| anyhow::anyhow!("bad manifest: {e}"))
    }

    pub fn plugin(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.get(name).map(|p| p.as_ref())
    }

    pub fn plugins(&self) -> impl Iterator<Item = &LoadedPlugin> {
        self.plugins.values().map(|p| p.as_ref())
    }

    async fn instance_pre(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<PluginPre<CallState>, CallFailure> {
        self.ready(plugin)
    }

    /// The plugin's compiled code, ready to instantiate: compiled on first need (or loaded
    /// from the cache), once, and kept.
    fn ready(&self, plugin: &LoadedPlugin) -> Result<PluginPre<CallState>, CallFailure> {
        if let Some(pre) = plugin.pre.get() {
            return Ok(pre.clone());
        }
        // A poisoned lock only means another compile panicked; this one starts afresh.
        let _compiling = plugin
            .compiling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pre) = plugin.pre.get() {
            return Ok(pre.clone());
        }
        let name = &plugin.name;
        let compiled = self.code_for(plugin);
        // Loading after start-up: no one else prints the cache's warnings now.
        let baseline_cache = self
            .baseline
            .get()
            .and_then(Option::as_ref)
            .map(|b| &b.cache);
        for cache in std::iter::once(&self.cache).chain(baseline_cache) {
            for warning in cache.take_warnings() {
                eprintln!("warning: {warning}");
            }
        }
        let (component, fresh, baseline) =
            compiled.map_err(|e| CallFailure::Host(format!("{name}: {e}")))?;
        let (linker, cache, key) = match baseline {
            Some(b) => (&b.linker, &b.cache, b.cache.key(&plugin.key)),
            None => (&self.linker, &self.cache, plugin.key.clone()),
        };
        let pre = linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| CallFailure::Host(format!("{name}: {e}")))?;
        if fresh {
            // Code from the cache was checked when it was stored, under a key that covers
            // the manifest too; freshly compiled code is checked now, and only kept once
            // its describe() agrees with the manifest the runbooks were checked against.
            if plugin.check_manifest {
                self.check_manifest(plugin, &pre)?;
            }
            cache.store_component(&key, &component);
        }
        let _ = plugin.pre.set(pre.clone());
        Ok(pre)
    }

    /// Refuses a plugin whose code describes itself otherwise than the manifest it came
    /// with: the grants of every call are made from that manifest.
    fn check_manifest(
        &self,
        plugin: &LoadedPlugin,
        pre: &PluginPre<CallState>,
    ) -> Result<(), CallFailure> {
        let name = &plugin.name;
        let described = self
            .describe(pre)
            .map_err(|e| CallFailure::Host(format!("{name}: {}", first_line(&format!("{e:#}")))))?;
        let same =
            serde_json::to_value(&described).ok() == serde_json::to_value(plugin.manifest()).ok();
        if !same {
            return Err(CallFailure::Host(format!(
                "plugin `{name}` ({}): its code describes itself otherwise than the manifest it came with; refused (rebuild triage)",
                plugin.origin
            )));
        }
        Ok(())
    }

    /// Warms a plugin: compiles (or loads from the cache) so the first call is fast.
    pub async fn prepare(&self, name: &str) -> Result<(), CallFailure> {
        let plugin = self
            .plugin(name)
            .ok_or_else(|| CallFailure::UnknownPlugin(name.into()))?;
        self.instance_pre(plugin).await.map(|_| ())
    }

    /// Gets the named plugins ready before a run needs them: those not cached are
    /// compiled in parallel (one thread each; Cranelift spreads each over the cores too),
    /// with a progress line on a terminal. A plugin that fails is left for its call to
    /// report (the step errors with the reason). Blocks until all are ready.
    pub fn prepare_all<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut plugins: Vec<&LoadedPlugin> = Vec::new();
        for name in names {
            if let Some(plugin) = self.plugin(name)
                && plugin.pre.get().is_none()
                && !plugins.iter().any(|p| p.name == plugin.name)
            {
                plugins.push(plugin);
            }
        }
        if plugins.is_empty() {
            return;
        }
        let to_compile: Vec<&str> = plugins
            .iter()
            .filter(|p| {
                !self.cache.has_component(&p.key)
                    && !self
                        .baseline_for(p)
                        .is_some_and(|b| b.cache.has_component(&b.cache.key(&p.key)))
            })
            .map(|p| p.name.as_str())
            .collect();
        let bar = (self.progress && !to_compile.is_empty()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(to_compile.len() as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} compiling plugins {pos}/{len}: {msg} (first use; cached after)",
            ) {
                bar.set_style(style);
            }
            bar.set_message(to_compile.join(", "));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        std::thread::scope(|scope| {
            for plugin in plugins {
                let bar = bar.as_ref();
                let compiles = to_compile.contains(&plugin.name.as_str());
                let work = move || {
                    let _ = self.ready(plugin);
                    if let (Some(bar), true) = (bar, compiles) {
                        bar.inc(1);
                    }
                };
                // Without a thread, the plugin is compiled on this one (or by its call).
                if let Err(e) = std::thread::Builder::new()
                    .name("triage-compile".into())
                    .spawn_scoped(scope, work)
                {
                    tracing::debug!(error = %e, "no thread to compile on");
                    work();
                }
            }
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }

    /// Runs one action in a fresh sandbox. `params` must already be validated.
    pub async fn call(
        &self,
        plugin_name: &str,
        action: &str,
        params: &Value,
        target: Arc<dyn Target>,
        policy: Arc<Policy>,
    ) -> CallOutcome {
        let started = Instant::now();
        let fail = |f: CallFailure| CallOutcome {
            result: Err(f),
            journal: Vec::new(),
            logs: Vec::new(),
            duration: started.elapsed(),
        };
        let Some(plugin) = self.plugin(plugin_name) else {
            return fail(CallFailure::UnknownPlugin(plugin_name.into()));
        };
        let declared = plugin
            .manifest()
            .action(action)
            .map(|a| a.capabilities.as_slice())
            .unwrap_or(&[]);
        let limits = policy.limits.clone();
        let grants = Grants::new(plugin_name, action, declared, params, policy);
        let pre = match self.instance_pre(plugin).await {
            Ok(pre) => pre,
            Err(e) => return fail(e),
        };
        let state = CallState::new(
            grants,
            target,
            limits.memory_bytes,
            cpu_ticks(limits.cpu),
            limits.wall,
        );
        let mut store = new_store(pre.engine(), state);
        let params_json = params.to_string();
        let label = format!("{}@{}", plugin.name, plugin.manifest().version);

        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .triage_probe_probe()
                .call_run(&mut store, action, &params_json)
                .await
        };
        let outcome = tokio::time::timeout(limits.wall, run).await;
        let state = store.data_mut();
        let journal = state.journal.take();
        let logs = std::mem::take(&mut state.logs);
        let result = match outcome {
            Err(_) => Err(CallFailure::WallDeadline {
                plugin: label,
                ms: limits.wall.as_millis(),
            }),
            Ok(Err(trap)) => Err(classify_trap(&label, &trap, state, &limits)),
            Ok(Ok(Err(probe_error))) => Err(probe_failure(&label, probe_error)),
            Ok(Ok(Ok(json))) => {
                if json.len() > limits.output_bytes {
                    Err(CallFailure::OutputTooLarge {
                        plugin: label,
                        bytes: json.len(),
                        cap: limits.output_bytes,
                    })
                } else {
                    serde_json::from_str(&json).map_err(|e| CallFailure::BadOutput {
                        plugin: label,
                        message: e.to_string(),
                    })
                }
            }
        };
        CallOutcome {
            result,
            journal,
            logs,
            duration: started.elapsed(),
        }
    }
}

/// Winch's engine, its linker and its entries in the cache.
struct Baseline {
    engine: Engine,
    linker: Linker<CallState>,
    cache: ComponentCache,
}

impl Baseline {
    fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let engine = new_engine(Strategy::Winch)?;
        let linker = new_linker(&engine)?;
        // The engine's fingerprint is in every key, so Winch's entries never serve as
        // Cranelift's (and wasmtime refuses code from another compiler's settings anyway).
        let cache = ComponentCache::new(cache_dir, &engine);
        Ok(Baseline {
            engine,
            linker,
            cache,
        })
    }
}

impl Drop for Runtime {
    /// Has Cranelift compile, in a process of its own, the built-ins that ran on Winch's
    /// code, so that later runs get optimized code without this one waiting for it.
    fn drop(&mut self) {
        let mut names = std::mem::take(
            &mut *self
                .on_baseline
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        names.sort();
        names.dedup();
        let Some(dir) = self.cache_dir.as_ref().filter(|_| self.cache.is_enabled()) else {
            return;
        };
        if names.is_empty() || std::env::var_os(NO_BACKGROUND_COMPILE).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut command = std::process::Command::new(exe);
        command
            .arg(OPTIMIZE_COMMAND)
            .args(&names)
            .env("TRIAGE_CACHE_DIR", dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // Its own process group: a Ctrl-C meant for this command does not reach it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        match command.spawn() {
            Ok(child) => tracing::debug!(
                pid = child.id(),
                plugins = names.join(","),
                "compiling with Cranelift in the background"
            ),
            Err(e) => tracing::debug!(error = %e, "cannot start the background compile"),
        }
    }
}

/// The first argument of the background compile: `triage __compile-builtins NAME...`
/// (cli.rs reads it before the command line is parsed).
pub const OPTIMIZE_COMMAND: &str = "__compile-builtins";

/// Set (to anything), no background compile is started: for tests that count the cache's
/// entries, and for benchmarks that must not share the cores with it.
pub const NO_BACKGROUND_COMPILE: &str = "TRIAGE_NO_BACKGROUND_COMPILE";

/// The background compile: the named built-ins compiled by Cranelift into the cache, at a
/// lower priority than the user's work. Unknown names are ignored.
pub fn compile_builtins_in_background(names: &[String]) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::nice(10);
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: crate::paths::cache_dir(),
        builtin: true,
        plugin_dirs: Vec::new(),
    })?;
    // One at a time: commands started in a row on an empty cache would otherwise each
    // start one, all compiling the same plugins. A plugin this one skips is asked for again
    // by the next command that runs on its Winch code.
    let Some(dir) = runtime
        .cache_dir
        .as_ref()
        .filter(|_| runtime.cache.is_enabled())
    else {
        return Ok(());
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("background-compile.lock"))?;
    if lock.try_lock().is_err() {
        return Ok(());
    }
    runtime.prepare_all(names.iter().map(String::as_str));
    Ok(())
}

enum Strategy {
    Cranelift,
    Winch,
}

fn new_engine(strategy: Strategy) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.strategy(match strategy {
        Strategy::Cranelift => wasmtime::Strategy::Cranelift,
        Strategy::Winch => wasmtime::Strategy::Winch,
    });
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    #[cfg(target_os = "linux")]
    {
        // Big guest memories on huge pages: fewer page faults on a big input. Memories
        // made by the host cannot be copy-on-write images of the module's data, so
        // that data is copied in at instantiation (a few hundred KiB).
        config.with_host_memory(Arc::new(crate::hugepages::HugePageMemories));
        config.memory_init_cow(false);
    }
    let engine = Engine::new(&config).map_err(wasm_error)?;
    spawn_epoch_ticker(&engine);
    Ok(engine)
}

fn new_linker(engine: &Engine) -> anyhow::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_error)?;
    Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
        .map_err(wasm_error)?;
    Ok(linker)
}

fn compile(engine: &Engine, bytes: &[u8], key: &str) -> anyhow::Result<Component> {
    let started = Instant::now();
    let component = Component::new(engine, bytes).map_err(|e| {
        let first = format!("{e:#}");
        anyhow::anyhow!(
            "not a loadable WebAssembly component ({})",
            first.lines().next().unwrap_or("")
        )
    })?;
    tracing::debug!(
        key,
        ms = started.elapsed().as_millis() as u64,
        "plugin compiled"
    );
    Ok(component)
}

/// A fresh store for one call: the memory budget, and the CPU budget counted in epoch
/// ticks (each tick also yields, so the wall-clock timeout and other steps get a turn).
fn new_store(engine: &Engine, state: CallState) -> Store<CallState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        state.cpu_ticks += 1;
        if state.cpu_ticks > state.cpu_tick_budget {
            state.cpu_exhausted = true;
            return Err(wasmtime::Error::msg("CPU deadline"));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

fn cpu_ticks(cpu: Duration) -> u64 {
    (cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// wasmtime 48 has its own error type; the CLI's edges speak anyhow.
fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn classify_trap(
    label: &str,
    trap: &wasmtime::Error,
    state: &CallState,
    limits: &SandboxLimits,
) -> CallFailure {
    let text = format!("{trap:#}");
    if state.cpu_exhausted {
        return CallFailure::CpuDeadline {
            plugin: label.into(),
            ms: limits.cpu.as_millis(),
        };
    }
    if state.limits.exceeded() {
        return CallFailure::MemoryCap {
            plugin: label.into(),
            mib: limits.memory_bytes >> 20,
        };
    }
    let message = match trap.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => first_line(&text).to_string(),
    };
    CallFailure::Trap {
        plugin: label.into(),
        message,
    }
}

fn probe_failure(label: &str, e: guest::ProbeError) -> CallFailure {
    let (kind, message) = match e {
        guest::ProbeError::UnknownAction(m) => ("unknown-action", m),
        guest::ProbeError::InvalidParams(m) => ("invalid-params", format!("invalid params: {m}")),
        guest::ProbeError::Capability(c) => {
            let e = crate::capability::CapabilityError::from(c);
            (e.kind(), e.to_string())
        }
        guest::ProbeError::BadInput(m) => ("bad-input", format!("bad input: {m}")),
        guest::ProbeError::Failed(m) => ("failed", m),
    };
    // The message is the step's reason: a plugin may make it as big as its memory.
    let mut message = message;
    limits::truncate_text(&mut message, MAX_REASON_BYTES);
    CallFailure::Probe {
        plugin: label.into(),
        kind,
        message,
    }
}

/// Advances the engine's epoch for as long as the process lives. Guest code checks the
/// epoch at function entries and loop headers, which is how CPU budgets are enforced.
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("triage-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
