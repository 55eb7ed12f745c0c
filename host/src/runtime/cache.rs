//! The on-disk cache of compiled components and their manifests, so that a second start
//! neither compiles nor instantiates a plugin just to learn what it can do.
//!
//! Entries are keyed by the wasm's SHA-256 and a fingerprint of the engine (wasmtime
//! version and compilation settings), so an upgrade never loads stale machine code.
//! Files are written to a temporary name and renamed, so a crash never leaves half a file.
//!
//! A compiled component is native code that runs outside the sandbox, and a manifest says
//! what a plugin may ask for: whoever can write the cache can run code as the user. So the
//! cache directory is created 0700, and a directory or file that someone else owns or can
//! write (group or other write bits) is refused, with a one-line warning, and the plugin is
//! compiled from its wasm instead. The directory (`TRIAGE_CACHE_DIR`) is trusted as the
//! operator's own: see docs/security.md.

use super::PluginManifest;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_fingerprint: String,
    /// Cache files refused as untrusted, for the caller to show (one line each).
    warnings: Mutex<Vec<String>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a cache file or directory is not trusted, or `None` when it is: it must be the
/// user's own and writable by nobody else.
#[cfg(unix)]
fn distrust(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = current_uid();
    if meta.uid() != me {
        return Some(format!("owned by uid {}, not {me}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

#[cfg(not(unix))]
fn distrust(_meta: &std::fs::Metadata) -> Option<String> {
    None
}

#[cfg(target_os = "linux")]
fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(all(unix, not(target_os = "linux")))]
fn current_uid() -> u32 {
    // Whoever owns a file this process just made.
    tempfile::tempfile()
        .and_then(|f| f.metadata())
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

/// Creates the cache directory (0700, parents too) or checks the one there.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    #[cfg(not(unix))]
    let _ = std::fs::create_dir_all(dir);
    // Following a link: a cache kept elsewhere through a link of the user's is fine; what
    // is checked is the directory the files really go to.
    match std::fs::metadata(dir) {
        Err(e) => Err(format!("cannot create it: {e}")),
        Ok(meta) if !meta.is_dir() => Err("not a directory".into()),
        Ok(meta) => distrust(&meta).map_or(Ok(()), Err),
    }
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let mut warnings = Vec::new();
        let dir = dir.filter(|d| match prepare_dir(d) {
            Ok(()) => true,
            Err(why) => {
                warnings.push(format!(
                    "not using the plugin cache {}: {why}; plugins are compiled on every start (the cache holds native code: make it the user's own, mode 0700)",
                    d.display()
                ));
                false
            }
        });
        ComponentCache {
            dir,
            engine_fingerprint: format!("{:016x}", hasher.finish()),
            warnings: Mutex::new(warnings),
        }
    }

    /// Whether compiled code is kept (a directory was given and can be trusted).
    pub fn is_enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The warnings so far, each once.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("cache warnings lock"))
    }

    pub fn key(&self, wasm_sha256: &str) -> String {
        format!(
            "{}-{}",
            &wasm_sha256[..wasm_sha256.len().min(32)],
            self.engine_fingerprint
        )
    }

    fn path(&self, key: &str, ext: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.{ext}")))
    }

    /// The cache file for `key`, if there is one and it can be trusted.
    fn trusted_file(&self, key: &str, ext: &str) -> Option<PathBuf> {
        let path = self.path(key, ext)?;
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let why = if !meta.file_type().is_file() {
            Some("not a regular file".to_string())
        } else {
            distrust(&meta)
        };
        if let Some(why) = why {
            self.warnings
                .lock()
                .expect("cache warnings lock")
                .push(format!(
                    "ignoring the cached {} (it is {why}); compiling the plugin instead",
                    path.display()
                ));
            return None;
        }
        Some(path)
    }

    pub fn load_manifest(&self, key: &str) -> Option<PluginManifest> {
        let text = std::fs::read(self.trusted_file(key, "manifest.json")?).ok()?;
        let manifest: PluginManifest = serde_json::from_slice(&text).ok()?;
        tracing::debug!(
            key,
            plugin = manifest.name,
            "plugin manifest loaded from the cache"
        );
        Some(manifest)
    }

    pub fn store_manifest(&self, key: &str, manifest: &PluginManifest) {
        if let (Some(path), Ok(bytes)) = (
            self.path(key, "manifest.json"),
            serde_json::to_vec(manifest),
        ) {
            write_atomic(path, &bytes);
        }
    }

    /// Whether compiled code for `key` is there (trusted or not: a quick look, for the
    /// progress line).
    pub fn has_component(&self, key: &str) -> bool {
        self.path(key, "cwasm").is_some_and(|p| p.is_file())
    }

    pub fn load_component(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.trusted_file(key, "cwasm")?;
        // SAFETY: the file is in a directory only this user can write (checked when the
        // cache was opened), is this user's own and writable by no one else, and was
        // written by `store_component` of an engine with the same fingerprint; wasmtime
        // still checks its header and refuses an incompatible artifact (then we recompile).
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match &loaded {
            Ok(_) => tracing::debug!(key, "plugin loaded from the cache"),
            Err(e) => tracing::debug!(key, error = %e, "cached plugin refused; compiling"),
        }
        loaded.ok()
    }

    pub fn store_component(&self, key: &str, component: &Component) {
        if let (Some(path), Ok(bytes)) = (self.path(key, "cwasm"), component.serialize()) {
            tracing::debug!(key, bytes = bytes.len(), "plugin compiled and cached");
            write_atomic(path, &bytes);
        }
    }
}

/// Best effort: a cache that cannot be written only costs a recompile next time. The
/// directory was made 0700 when the cache was opened; the temporary file is created 0600
/// and renamed over whatever was there (a refused file too).
fn write_atomic(path: PathBuf, bytes: &[u8]) {
    let _ = crate::files::write_atomic(&path, bytes);
}
