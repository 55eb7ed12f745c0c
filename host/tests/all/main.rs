//! The integration tests: one binary (one link of wasmtime), modules by subject. Every test
//! drives the real `triage` binary with the real plugins, built once by build.rs.

mod authoring;
mod authoring_tools;
mod cli;
mod conventions;
mod doctor;
mod explain;
mod files;
mod findings;
mod first_run;
mod fleet;
mod fleet_server;
mod gce_checks;
mod gcloud_target;
mod guided;
mod interception_fixes;
mod k8s;
mod kubectl_exec;
mod lint;
mod live_dump;
mod log_location;
mod log_tail;
mod netns;
mod parsers;
mod plugins_live;
mod pod_interception;
mod policy;
mod probe;
mod record_replay;
mod redaction;
mod sandbox;
mod sarif;
mod scenarios;
mod security;
mod serve;
mod serve_hardening;
mod serve_manners;
mod serve_pg;
mod ssh;
mod standalone;
mod verdicts;
mod wat_plugin;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// `triage` with a cache shared by the whole test run and user dirs that hold nothing,
/// so no file of the person running the tests changes the outcome.
pub fn triage() -> Command {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // TRIAGE_BIN runs the tests against another build: the shared target dir's binary is
    // rebuilt by whichever checkout built last.
    let bin = std::env::var_os("TRIAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_triage")));
    let mut cmd = Command::new(bin);
    cmd.env("TRIAGE_CACHE_DIR", tmp.join("component-cache"))
        .env("XDG_CONFIG_HOME", tmp.join("empty-config"))
        .env("XDG_DATA_HOME", tmp.join("empty-data"))
        .env_remove("TRIAGE_PATH")
        .env("NO_COLOR", "1")
        // No Cranelift compile left running after a command: tests count the cache's
        // entries, and the machine's cores are the other tests'. first_run.rs tests it.
        .env(triage::runtime::NO_BACKGROUND_COMPILE, "1")
        .current_dir(root());
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running triage");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Finding ids of a JSON report, in order.
pub fn finding_ids(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// The finding ids of a report among `ids` (live runs also see what this machine runs,
/// e.g. whether an Envoy process exists, which a test about interception must not depend on).
pub fn findings_among(report: &serde_json::Value, ids: &[&str]) -> Vec<String> {
    finding_ids(report)
        .into_iter()
        .filter(|f| ids.contains(&f.as_str()))
        .collect()
}

/// The step with this id in a JSON report.
pub fn step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {report:#}"))
}

/// `DIR/kubeconfig` for kubectl against a stand-in API server on 127.0.0.1:`port` (plain
/// HTTP, no credentials): the tests that run the real kubectl point KUBECONFIG at it.
pub fn write_stand_in_kubeconfig(dir: &std::path::Path, port: u16) {
    std::fs::write(
        dir.join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: stand-in\n  context: {{cluster: stand-in, user: nobody}}\n\
             current-context: stand-in\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
}

/// The test plugins; TRIAGE_TEST_PLUGINS points at another build's (the shared target dir's
/// copy is rewritten by whichever checkout built last).
pub fn test_plugin_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        std::env::var("TRIAGE_TEST_PLUGINS")
            .unwrap_or_else(|_| triage::builtin::TEST_PLUGIN_DIR.to_string())
    })
}
