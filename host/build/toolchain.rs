//! Making sure the toolchain that builds the host can also build the plugins.
//!
//! rustup installs the targets listed in rust-toolchain.toml only when it installs the
//! toolchain itself: a machine that already had the pinned toolchain has no
//! `wasm32-wasip2` standard library, and the nested plugin build would fail deep inside
//! cargo. So before that build the script looks for the target in the sysroot of the
//! `rustc` cargo gave it, asks rustup to add it when rustup is there, and otherwise stops
//! with one line naming the command to run.
//!
//! Kept in its own file, without dependencies, so that a test can build it as the build
//! script of a throwaway crate under a toolchain that really lacks the target
//! (host/tests/all/conventions.rs).

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-wasip2";

/// What the check found: the message for a `cargo::warning` when it had to act.
pub enum TargetCheck {
    Present,
    Added { warning: String },
}

/// Finds the plugins' target in the sysroot of `$RUSTC`, adding it through rustup when it
/// is missing. The error is one line, for `cargo::error`.
pub fn ensure_wasm_target() -> Result<TargetCheck, String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = sysroot(&rustc)?;
    if has_target(&sysroot) {
        return Ok(TargetCheck::Present);
    }
    // rustup tells the processes it starts which toolchain it chose; naming it keeps the
    // target from going to another toolchain (the default one, say).
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok().filter(|t| !t.is_empty());
    let command = match &toolchain {
        Some(t) => format!("rustup target add {WASM_TARGET} --toolchain {t}"),
        None => format!("rustup target add {WASM_TARGET}"),
    };
    let Some(rustup) = find_on_path("rustup") else {
        return Err(format!(
            "the {WASM_TARGET} target (the plugins' standard library) is not installed in the \
             toolchain at {}, and rustup is not on PATH: run `{command}` with rustup, or install \
             {WASM_TARGET}'s rust-std for this toolchain, then build again",
            sysroot.display()
        ));
    };
    // The toolchain reaches rustup through RUSTUP_TOOLCHAIN, inherited, rather than
    // `--toolchain`: rustup's argument parser refuses a linked toolchain's name there, while
    // the variable gets it to say what is really wrong ("does not support components").
    let mut add = Command::new(&rustup);
    add.args(["target", "add", WASM_TARGET]);
    // rustup's own failure should read as one line too.
    add.env("RUST_BACKTRACE", "0");
    let output = add
        .output()
        .map_err(|e| format!("cannot run {}: {e}; run `{command}`", rustup.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("error:"))
            .map(|l| l.trim_start_matches("error:").trim().to_string())
            .unwrap_or_else(|| format!("it exited with {}", output.status));
        return Err(format!(
            "the {WASM_TARGET} target is not installed in the toolchain at {} and `{command}` \
             failed: {reason}",
            sysroot.display()
        ));
    }
    if !has_target(&sysroot) {
        return Err(format!(
            "`{command}` succeeded but the toolchain at {} still has no {WASM_TARGET} standard \
             library: add the target to that toolchain, then build again",
            sysroot.display()
        ));
    }
    Ok(TargetCheck::Added {
        warning: format!(
            "the {WASM_TARGET} target was missing from the toolchain at {}: added it with `{command}`",
            sysroot.display()
        ),
    })
}

fn sysroot(rustc: &OsString) -> Result<PathBuf, String> {
    let shown = Path::new(rustc).display();
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run {shown} to find its sysroot: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{shown} --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    ))
}

/// The target is usable when its `std` is in the sysroot: that is what rustup installs and
/// what a build for it links.
fn has_target(sysroot: &Path) -> bool {
    let lib = sysroot.join("lib/rustlib").join(WASM_TARGET).join("lib");
    std::fs::read_dir(lib).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
