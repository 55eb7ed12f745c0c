//! Live: the real iptables in a network namespace this test creates, the runbook run with
//! the local target inside it. Needs root and iptables (CI installs it); elsewhere the
//! tests say they were skipped, and under CI=true a missing prerequisite is a failure.

use super::*;
use std::process::Command;

/// A network namespace that is deleted when dropped.
pub struct Netns {
    pub name: String,
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Netns {
    pub fn create(tag: &str) -> Option<Netns> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !root || !have("ip") || !have("iptables") {
            if std::env::var_os("CI").is_some() {
                panic!("this test needs root, iproute2 and iptables (.ci/run installs them)");
            }
            eprintln!("skipped: needs root, iproute2 and iptables");
            return None;
        }
        let name = format!("triage-{tag}-{}", std::process::id());
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        Some(Netns { name })
    }

    /// Runs a command inside the namespace and insists it succeeds.
    pub fn sh(&self, argv: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn iptables(&self, rule: &str) {
        let mut argv = vec!["iptables", "-t", "nat"];
        argv.extend(rule.split_whitespace());
        self.sh(&argv);
    }

    /// `triage ARGS` inside the namespace.
    pub fn triage(&self, args: &[&str]) -> Run {
        self.triage_with_env(args, &[])
    }

    /// `triage ARGS` inside the namespace, with extra environment variables.
    pub fn triage_with_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = triage();
        cmd.envs(extra.iter().copied());
        let program = cmd.get_program().to_owned();
        let envs: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect();
        let mut inner = Command::new("ip");
        inner
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .current_dir(root());
        for (k, v) in envs {
            match v {
                Some(v) => inner.env(k, v),
                None => inner.env_remove(k),
            };
        }
        run(&mut inner)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The rules the guide quotes for VIP 10.0.0.1 and Envoy on 15001 as UID 1006, plus the
/// ISTIO_REDIRECT rule its excerpt leaves out (without it nothing reaches Envoy).
/// The findings about interception (the runbook's other checks look at Envoy itself).
pub const INTERCEPTION: &[&str] = &["interception-missing", "vip-not-intercepted"];

pub const GUIDE_RULES: &[&str] = &[
    "-N ISTIO_IN_REDIRECT",
    "-N ISTIO_OUTPUT",
    "-N ISTIO_REDIRECT",
    "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
    "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
    "-A ISTIO_OUTPUT -m owner --uid-owner 1006 -j RETURN",
    "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
    "-A ISTIO_OUTPUT -d 10.0.0.1/32 -j ISTIO_REDIRECT",
    "-A ISTIO_OUTPUT -j RETURN",
    "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
];

#[test]
fn live_interception_in_a_network_namespace() {
    let Some(ns) = Netns::create("live") else {
        return;
    };

    // Nothing installed yet: interception is missing.
    let out = ns.triage(&[
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--input",
        "vip=10.0.0.1",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        findings_among(&out.json(), INTERCEPTION),
        vec!["interception-missing"]
    );

    for rule in GUIDE_RULES {
        ns.iptables(rule);
    }
    let out = ns.triage(&[
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--input",
        "vip=10.0.0.1",
        "--input",
        "proxy_uid=1006",
    ]);
    let report = out.json();
    assert!(
        findings_among(&report, INTERCEPTION).is_empty(),
        "{report:#}"
    );
    assert_eq!(
        step(&report, "interception")["status"],
        "passed",
        "{report:#}"
    );
    assert_eq!(
        step(&report, "vip-interception")["status"],
        "passed",
        "{report:#}"
    );
    assert_eq!(report["target"], "local");
    let caps = &step(&report, "interception")["capabilities"][0];
    assert_eq!(caps["request"], "iptables -t nat -S");
    assert_eq!(caps["outcome"], "ok");

    let out = ns.triage(&[
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--input",
        "vip=10.0.0.2",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        findings_among(&out.json(), INTERCEPTION),
        vec!["vip-not-intercepted"]
    );
}
