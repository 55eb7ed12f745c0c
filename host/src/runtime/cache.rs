//! The on-disk cache of compiled components and their manifests, so that a second start
//! neither compiles nor instantiates a plugin just to learn what it can do.
//!
//! Entries are keyed by the wasm's SHA-256 and a fingerprint of the engine (wasmtime
//! version and compilation settings), so an upgrade never loads stale machine code.
//! Files are written to a temporary name and renamed, so a crash never leaves half a file.

use super::PluginManifest;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_fingerprint: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        ComponentCache {
            dir,
            engine_fingerprint: format!("{:016x}", hasher.finish()),
        }
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

    pub fn load_manifest(&self, key: &str) -> Option<PluginManifest> {
        let text = std::fs::read(self.path(key, "manifest.json")?).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn store_manifest(&self, key: &str, manifest: &PluginManifest) {
        if let (Some(path), Ok(bytes)) = (
            self.path(key, "manifest.json"),
            serde_json::to_vec(manifest),
        ) {
            write_atomic(path, &bytes);
        }
    }

    pub fn load_component(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key, "cwasm")?;
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file was written by `store_component` of an engine with the same
        // fingerprint, in the user's own cache directory; wasmtime still checks its
        // header and refuses an incompatible artifact (then we just recompile).
        unsafe { Component::deserialize_file(engine, &path) }.ok()
    }

    pub fn store_component(&self, key: &str, component: &Component) {
        if let (Some(path), Ok(bytes)) = (self.path(key, "cwasm"), component.serialize()) {
            write_atomic(path, &bytes);
        }
    }
}

/// Best effort: a cache that cannot be written only costs a recompile next time.
fn write_atomic(path: PathBuf, bytes: &[u8]) {
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = crate::files::write_atomic(&path, bytes);
    }
}
