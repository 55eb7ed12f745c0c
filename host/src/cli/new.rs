//! `triage new runbook|plugin NAME`: scaffolds that work from the first command (a runbook
//! with two passing test cases, a plugin crate that builds for wasm32-wasip2).

use super::{Cli, CliResult, OrExit};
use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// What to scaffold.
    #[arg(value_enum)]
    kind: NewKind,
    /// The runbook id or plugin name.
    name: String,
    /// Where to create it (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum NewKind {
    /// A runbook with one step and two passing scenario test cases.
    Runbook,
    /// A plugin crate with one action and a unit test.
    Plugin,
}

pub fn run(cli: &Cli, args: &NewArgs) -> CliResult {
    let made = match args.kind {
        NewKind::Runbook => new_runbook(&args.name, &args.dir, &super::load_runtime(cli)?),
        NewKind::Plugin => new_plugin(&args.name, &args.dir),
    }
    .or_usage()?;
    println!("created {}", made.display());
    Ok(0)
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!("{}: already exists; not overwriting it", path.display());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    crate::files::write_atomic(path, text.as_bytes()).with_context(|| path.display().to_string())
}

/// Scaffolds `DIR/ID/runbook.yaml` with one step and a passing test case.
pub fn new_runbook(
    id: &str,
    dir: &Path,
    plugins: &crate::runtime::Runtime,
) -> anyhow::Result<PathBuf> {
    crate::runbook::Id::try_from(id.to_string()).map_err(anyhow::Error::msg)?;
    let root = dir.join(id);
    let fill = |t: &str| t.replace("__ID__", id);
    write_new(
        &root.join("runbook.yaml"),
        &fill(include_str!("new/templates/runbook/runbook.yaml")),
    )?;
    // The modeline points editors at this; write it once per directory of runbooks.
    let schema = dir.join("runbook.schema.json");
    if !schema.exists() {
        write_new(&schema, &super::schema::runbook_schema(plugins))?;
    }
    // And the cases' and bundles' modelines at these.
    for (name, text) in [
        ("case.schema.json", super::schema::case_schema()),
        ("bundle.schema.json", super::schema::bundle_schema()),
    ] {
        let schema = dir.join(name);
        if !schema.exists() {
            write_new(&schema, &text)?;
        }
    }
    write_new(
        &root.join("tests/envoy-running/case.yaml"),
        &fill(include_str!("new/templates/runbook/case-running.yaml")),
    )?;
    write_new(
        &root.join("tests/envoy-running/bundle.yaml"),
        &fill(include_str!("new/templates/runbook/bundle-running.yaml")),
    )?;
    write_new(
        &root.join("tests/envoy-stopped/case.yaml"),
        &fill(include_str!("new/templates/runbook/case-stopped.yaml")),
    )?;
    write_new(
        &root.join("tests/envoy-stopped/bundle.yaml"),
        &fill(include_str!("new/templates/runbook/bundle-stopped.yaml")),
    )?;
    Ok(root)
}

/// The SDK's source, carried by the binary so that a plugin scaffolded anywhere builds
/// against the very SDK this triage speaks, with no checkout and no registry release of the
/// SDK: (path under the SDK folder, contents). Its `Cargo.toml` is written apart
/// ([`SDK_MANIFEST`]), since the checkout's one inherits from the workspace.
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    (
        "src/capability.rs",
        include_str!("../../../sdk/src/capability.rs"),
    ),
    (
        "src/manifest.rs",
        include_str!("../../../sdk/src/manifest.rs"),
    ),
    ("src/parse.rs", include_str!("../../../sdk/src/parse.rs")),
    ("wit/probe.wit", include_str!("../../../sdk/wit/probe.wit")),
];

/// The SDK's manifest for a plugin's own copy: the checkout's dependencies and this
/// binary's version (the SDK stamps it into every plugin it builds, and the host checks it).
const SDK_MANIFEST: &str = r#"[package]
name = "triage-sdk"
description = "Write triage probe plugins: implement Probe, call register_probe! (the copy written by `triage new plugin`)"
version = "__VERSION__"
edition = "2024"
license = "Apache-2.0"

[dependencies]
wit-bindgen = "0.63"
serde = { version = "1", features = ["derive"] }
serde_json = "1"
schemars = "1.2"
"#;

/// Scaffolds a plugin crate `DIR/NAME` that builds for wasm32-wasip2 against the SDK.
/// Inside this repository's `plugins/` it joins the workspace; elsewhere it is its own
/// workspace with a copy of the SDK this binary carries in `DIR/NAME/triage-sdk/`, so it
/// builds on a machine that has only the binary (and a Rust toolchain).
pub fn new_plugin(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    crate::runbook::Id::try_from(name.to_string()).map_err(anyhow::Error::msg)?;
    let root = dir.join(name);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let in_workspace = dir.canonicalize().ok() == repo.join("plugins").canonicalize().ok();
    let sdk = if in_workspace {
        "triage-sdk.workspace = true\nserde.workspace = true\nserde_json.workspace = true\nschemars.workspace = true".to_string()
    } else {
        "# The SDK this plugin was scaffolded with, written by `triage new plugin`.\ntriage-sdk = { path = \"triage-sdk\" }\nserde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\nschemars = \"1.2\"".to_string()
    };
    let standalone = if in_workspace {
        ""
    } else {
        "\n# Its own workspace, so it builds wherever it is.\n[workspace]\n"
    };
    let package = if in_workspace {
        "version.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrust-version.workspace = true".to_string()
    } else {
        "version = \"0.1.0\"\nedition = \"2024\"".to_string()
    };
    let fill = |t: &str| {
        t.replace("__NAME__", name)
            .replace("__CRATE__", &name.replace('-', "_"))
            .replace("__PACKAGE__", &package)
            .replace("__DEPS__", &sdk)
            .replace("__WORKSPACE__", standalone)
    };
    write_new(
        &root.join("Cargo.toml"),
        &fill(include_str!("new/templates/plugin/Cargo.toml.txt")),
    )?;
    write_new(
        &root.join("src/lib.rs"),
        &fill(include_str!("new/templates/plugin/lib.rs.txt")),
    )?;
    write_new(
        &root.join("README.md"),
        &fill(include_str!("new/templates/plugin/README.md")),
    )?;
    if !in_workspace {
        let sdk = root.join("triage-sdk");
        write_new(
            &sdk.join("Cargo.toml"),
            &SDK_MANIFEST.replace("__VERSION__", env!("CARGO_PKG_VERSION")),
        )?;
        for (path, text) in SDK_FILES {
            write_new(&sdk.join(path), text)?;
        }
    }
    Ok(root)
}
