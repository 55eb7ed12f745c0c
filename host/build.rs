//! Builds every plugin under `plugins/` (and the test plugins under `host/tests/plugins/`)
//! for wasm32-wasip2 and embeds the built-in ones in the binary, together with the
//! built-in runbooks, so `triage` works from any directory.
//!
//! The plugins are built by a nested cargo in its own target directory: the outer cargo
//! holds the lock on the main one.
//!
//! Nothing here panics: a failure is one `cargo::error` line (cargo prints it as
//! `error: triage@…: …`), never a backtrace.

#[path = "build/toolchain.rs"]
mod toolchain;

use sha2::{Digest, Sha256};
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the script stops: one line for `cargo::error`, and whether cargo should also show
/// what the script's children wrote to stderr (the nested plugin build's compile errors).
struct Stop {
    message: String,
    show_output: bool,
}

impl From<String> for Stop {
    fn from(message: String) -> Self {
        Stop {
            message,
            show_output: false,
        }
    }
}

fn main() {
    if let Err(stop) = build() {
        // One line: a newline would end the directive and lose the rest.
        println!("cargo::error={}", stop.message.replace('\n', " "));
        if stop.show_output {
            // A failed script gets its stdout and stderr shown by cargo, which is where the
            // plugin compiler's errors are; with exit 0 cargo shows only the error line.
            std::process::exit(1);
        }
    }
}

/// `context: error` for the one line.
fn at(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn build() -> Result<(), Stop> {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", manifest_dir.display()))?
        .to_path_buf();
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    for watched in ["plugins", "sdk", "runbooks", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("tests/plugins").display()
    );

    // TRIAGE_ONLY_PLUGINS=a,b limits the built-in plugins to those directories (handy while
    // one plugin is half-written); unset, every plugin is built.
    println!("cargo:rerun-if-env-changed=TRIAGE_ONLY_PLUGINS");
    let only: Option<Vec<String>> = env::var("TRIAGE_ONLY_PLUGINS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let builtin: Vec<(String, PathBuf)> = crate_dirs(&root.join("plugins"))
        .into_iter()
        .filter(|(_, dir)| {
            only.as_ref().is_none_or(|o| {
                o.iter()
                    .any(|n| dir.file_name().is_some_and(|f| f == n.as_str()))
            })
        })
        .collect();
    let test_plugins = crate_dirs(&manifest_dir.join("tests/plugins"));
    // One plugin target dir per checkout: wasm cdylibs have no hash in their file names, so
    // two checkouts (git worktrees) sharing a target dir would overwrite each other's plugins.
    let checkout: String = Sha256::digest(root.as_os_str().as_encoded_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let target_dir = workspace_target_dir(&out_dir, &root)
        .join("plugins")
        .join(checkout);
    let packages: Vec<&(String, PathBuf)> = builtin.iter().chain(test_plugins.iter()).collect();
    if !packages.is_empty() {
        match toolchain::ensure_wasm_target()? {
            toolchain::TargetCheck::Present => {}
            toolchain::TargetCheck::Added { warning } => println!("cargo::warning={warning}"),
        }
        build_plugins(&root, &target_dir, &packages)?;
    }
    let manifests_dir = target_dir.join("manifests");
    if !builtin.is_empty() {
        write_manifests(&root, &target_dir, &manifests_dir)?;
    }
    let wasm_dir = target_dir.join("wasm32-wasip2").join("plugin");

    // The embedded copies live in OUT_DIR, which only this build script writes, so the
    // binary embeds exactly the bytes the digest below (the compile cache's key) was
    // computed from, even if the plugin target dir is rebuilt after this script ran.
    let embedded_dir = out_dir.join("plugins");
    let _ = fs::remove_dir_all(&embedded_dir);
    fs::create_dir_all(&embedded_dir).map_err(at(embedded_dir.display()))?;
    let mut code = String::from("pub static PLUGINS: &[BuiltinPlugin] = &[\n");
    for (name, _) in &builtin {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = wasm_dir.join(&file);
        let bytes = fs::read(&built).map_err(at(built.display()))?;
        let wasm = embedded_dir.join(&file);
        fs::write(&wasm, &bytes).map_err(at(wasm.display()))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // The manifest, from the same sources and the same nested build as the wasm, so
        // that loading runbooks needs no compiled plugin. The runtime checks it against the
        // compiled plugin's own describe() before the first call, and keys the compiled
        // code by both.
        let manifest_file = format!("{}.manifest.json", name.replace('-', "_"));
        let manifest = if manifests_dir.join(&manifest_file).is_file() {
            let file = embedded_dir.join(&manifest_file);
            fs::copy(manifests_dir.join(&manifest_file), &file).map_err(at(file.display()))?;
            format!("Some(include_str!({:?}))", file.display().to_string())
        } else {
            println!(
                "cargo::warning=plugin {name} has no manifest at build time (add it to host/plugin-manifests): it is compiled on first use to learn it"
            );
            "None".to_string()
        };
        writeln!(
            code,
            "    BuiltinPlugin {{ crate_name: {name:?}, sha256: {digest:?}, wasm: include_bytes!({:?}), manifest: {manifest} }},",
            wasm.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");

    // Test plugins are copied beside the generated code, never embedded.
    let test_dir = out_dir.join("test-plugins");
    let _ = fs::remove_dir_all(&test_dir);
    fs::create_dir_all(&test_dir).map_err(at(test_dir.display()))?;
    for (name, _) in &test_plugins {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let built = wasm_dir.join(&file);
        fs::copy(&built, test_dir.join(&file)).map_err(at(built.display()))?;
    }
    writeln!(
        code,
        "pub const TEST_PLUGIN_DIR: &str = {:?};",
        test_dir.display().to_string()
    )
    .expect("writing to a String cannot fail");

    code.push_str("pub static RUNBOOKS: &[BuiltinRunbook] = &[\n");
    for (id, file) in runbook_files(&root.join("runbooks")) {
        // runbook_files lists files under root, so the prefix is always there.
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        writeln!(
            code,
            "    BuiltinRunbook {{ id: {id:?}, path: {:?}, file: {:?}, source: include_str!({:?}) }},",
            relative.display().to_string(),
            file.display().to_string(),
            file.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let generated = out_dir.join("builtin.rs");
    fs::write(&generated, code).map_err(at(generated.display()))?;
    Ok(())
}

fn env_var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|e| format!("{name}: {e} (run the build through cargo)"))
}

/// (package name, dir) of every crate directly under `dir`.
fn crate_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|p| {
            let manifest = fs::read_to_string(p.join("Cargo.toml")).ok()?;
            let name = manifest.lines().find_map(|l| {
                let l = l.trim();
                l.strip_prefix("name")?
                    .trim()
                    .strip_prefix('=')?
                    .trim()
                    .strip_prefix('"')?
                    .split('"')
                    .next()
                    .map(String::from)
            })?;
            Some((name, p))
        })
        .collect();
    out.sort();
    out
}

/// runbooks/<id>/runbook.yaml
fn runbook_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("runbook.yaml").is_file())
        .filter_map(|p| {
            let id = p.file_name()?.to_string_lossy().into_owned();
            Some((id, p.join("runbook.yaml")))
        })
        .collect();
    out.sort();
    out
}

/// The target directory the outer cargo uses: the ancestor of OUT_DIR holding CACHEDIR.TAG.
fn workspace_target_dir(out_dir: &Path, root: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"))
}

/// A cargo for the plugins' own target directory, with none of the outer build's flags:
/// they are meant for the host build and must not leak into the wasm build. Nor its build
/// directory (`CARGO_BUILD_BUILD_DIR`, cargo's `build.build-dir`): the outer cargo holds that
/// directory's lock while this script runs, so a nested cargo sent there waits for it forever.
fn nested_cargo(root: &Path, subcommand: &str, target_dir: &Path) -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg(subcommand);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_LLVM_COV",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--target-dir").arg(target_dir);
    cmd
}

fn build_plugins(
    root: &Path,
    target_dir: &Path,
    packages: &[&(String, PathBuf)],
) -> Result<(), Stop> {
    let mut cmd = nested_cargo(root, "build", target_dir);
    cmd.args(["--profile", "plugin", "--target", "wasm32-wasip2"]);
    for (name, _) in packages {
        cmd.args(["-p", name]);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build the plugins: {e}"))?;
    if !status.success() {
        return Err(Stop {
            message: format!(
                "building the plugins for {} failed ({status}); the compiler's errors are in the stderr below",
                toolchain::WASM_TARGET
            ),
            show_output: true,
        });
    }
    Ok(())
}

/// Builds host/plugin-manifests natively in the plugins' target directory and runs it: it
/// writes every built-in plugin's manifest into `dir`.
fn write_manifests(root: &Path, target_dir: &Path, dir: &Path) -> Result<(), Stop> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(at(dir.display()))?;
    let mut cmd = nested_cargo(root, "run", target_dir);
    cmd.args(["--quiet", "-p", "triage-plugin-manifests", "--"])
        .arg(dir);
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to write the plugins' manifests: {e}"))?;
    if !status.success() {
        return Err(Stop {
            message: format!(
                "writing the plugins' manifests (host/plugin-manifests) failed ({status}); the errors are in the stderr below"
            ),
            show_output: true,
        });
    }
    Ok(())
}
