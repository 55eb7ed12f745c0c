//! Hostile input against the real binary (docs/security.md): values that try to become
//! command-line options. Each test holds a repro from issue 11 and fails without its fix.

use super::*;
use std::path::{Path, PathBuf};

/// A kubeconfig whose user authenticates with an exec credential plugin: a script that
/// touches `marker`. kubectl runs it as soon as it loads the file and talks to the
/// cluster, so the marker appearing means code ran on this host.
struct HostileKubeconfig {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    marker: PathBuf,
}

impl HostileKubeconfig {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("triage-security-")
            .tempdir()
            .unwrap();
        let marker = dir.path().join("code-ran");
        let script = dir.path().join("credential.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntouch '{}'\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"x\"}}}}'\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kubeconfig = dir.path().join("kc");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: c\n  cluster: {{server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}}\n\
                 contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
                 users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
                 command: {}\n      interactiveMode: Never\n",
                script.display()
            ),
        )
        .unwrap();
        HostileKubeconfig {
            dir,
            kubeconfig,
            marker,
        }
    }

    /// `--kubeconfig=FILE`: the value an attacker gives as a pod name.
    fn option(&self) -> String {
        format!("--kubeconfig={}", self.kubeconfig.display())
    }

    /// kubectl's discovery cache in the temporary directory, not ~/.kube.
    fn env<'a>(&self, cmd: &'a mut std::process::Command) -> &'a mut std::process::Command {
        cmd.env("KUBECACHEDIR", self.dir.path().join("cache"))
    }

    fn assert_no_code_ran(&self, context: &str) {
        assert!(
            !self.marker.exists(),
            "the kubeconfig's credential plugin ran: {context}"
        );
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The self-check: with the file given the way a user would, kubectl does run the
/// script. Without this, a test that asserts the marker is absent could pass vacuously.
#[test]
fn the_hostile_kubeconfig_does_run_its_script_when_kubectl_loads_it() {
    if !kubectl_present() {
        return;
    }
    let hostile = HostileKubeconfig::new();
    let _ = hostile
        .env(&mut std::process::Command::new("kubectl"))
        .args(["get", "pods", "--request-timeout=2s"])
        .arg(hostile.option())
        .output()
        .unwrap();
    assert!(
        hostile.marker.exists(),
        "kubectl did not run the credential plugin"
    );
}

fn kubectl_present() -> bool {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("this test needs kubectl (.ci/run installs it)");
        }
        eprintln!("skipped: kubectl is not installed");
    }
    found
}

/// `triage run envoy-logs --input pod=--kubeconfig=FILE`: the runbook declares `pod` an
/// RFC 1123 name, so the value is refused before anything runs (exit 2, one line).
#[test]
fn an_input_that_is_an_option_is_refused_before_the_run_starts() {
    let hostile = HostileKubeconfig::new();
    let out = run(hostile
        .env(&mut triage())
        .args(["run", "envoy-logs", "--format", "json", "--input"])
        .arg(format!("pod={}", hostile.option())));
    hostile.assert_no_code_ran(&out.stdout);
    assert_eq!(
        out.code, 2,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.is_empty(), "a run started: {}", out.stdout);
    let stderr = out.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("input `pod`")
            && stderr.contains(&format!("{:?}", hostile.option()))
            && stderr.contains("RFC 1123"),
        "{stderr}"
    );
}

/// The host's own check, for runbooks that declare no pattern and for values that come from
/// the target system: `triage probe` hands the value straight to the plugin, and the host
/// refuses to put it where an argument begins. The capability log says which param.
#[test]
fn the_host_refuses_a_param_beginning_with_a_dash_where_an_argument_begins() {
    let hostile = HostileKubeconfig::new();
    let out = run(hostile
        .env(&mut triage())
        .args(["probe", "envoy-logs", "kubectl", "--with"])
        .arg(format!("pod={}", hostile.option())));
    hostile.assert_no_code_ran(&out.stdout);
    assert_eq!(
        out.code, 3,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let outcome = out.json();
    assert_eq!(outcome["status"], "errored", "{outcome:#}");
    let call = &outcome["capabilities"][0];
    assert_eq!(call["capability"], "exec", "{outcome:#}");
    assert_eq!(call["outcome"], "denied", "{outcome:#}");
    let detail = call["detail"].as_str().unwrap();
    assert!(
        detail.contains("param `pod`") && detail.contains("begins with `-`"),
        "{detail}"
    );
    // The request shown is what the plugin asked for: the name after `--`.
    assert!(
        call["request"]
            .as_str()
            .unwrap()
            .ends_with(&format!("-- {}", hostile.option())),
        "{call:#}"
    );

    // gcloud reads `--flags-file` anywhere on its command line, even after `--` and as the
    // value of `--zone`: refused in either place, and gcloud never starts.
    for (param, other) in [
        ("instance", "zone=us-central1-a"),
        ("zone", "instance=vm-1"),
    ] {
        let out = run(triage()
            .args(["probe", "gcloud", "instance", "--with", other, "--with"])
            .arg(format!(
                "{param}=--flags-file={}",
                hostile.path().join("flags.yaml").display()
            )));
        assert_eq!(out.code, 3, "{}", out.stderr);
        let call = &out.json()["capabilities"][0];
        assert_eq!(call["outcome"], "denied", "{call:#}");
        assert!(
            call["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("param `{param}`")),
            "{call:#}"
        );
    }
}
