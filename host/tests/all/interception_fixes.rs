//! Live: the fixes the interception runbooks print, applied as written to real iptables in a
//! network namespace, and a real connection showing what they change. Needs root, iproute2
//! and iptables (see netns.rs).

use super::netns::{GUIDE_RULES, Netns};
use super::*;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// A TCP listener on 0.0.0.0:`port` inside the namespace (a thread moved into it with
/// setns), standing in for Envoy's outbound port: the connections it accepts are the ones
/// the nat table redirected. Sends the peer's address for each one it accepts.
pub fn listener_in(ns: &Netns, port: u16) -> mpsc::Receiver<String> {
    let path = format!("/run/netns/{}", ns.name);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (accepted_tx, accepted_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&handle),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test namespace");
        let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind in the namespace");
        ready_tx.send(()).unwrap();
        for stream in listener.incoming().flatten() {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            if accepted_tx.send(peer).is_err() {
                break;
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("listener ready");
    accepted_rx
}

/// `triage probe host tcp` to `host:port` from inside the namespace: whether the connection
/// was established (by whoever answered it).
fn reachable(ns: &Netns, host: &str, port: u16) -> bool {
    // The built-in policy allows TCP only to trafficdirector.googleapis.com:443; the operator
    // grants this one address, as a person testing the fix by hand would.
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        format!("allow:\n  connect: [\"{host}:{port}\"]\n"),
    )
    .unwrap();
    let out = ns.triage(&[
        "--policy",
        policy.path().to_str().unwrap(),
        "probe",
        "host",
        "tcp",
        "--with",
        &format!("host={host}"),
        "--with",
        &format!("port={port}"),
        "--with",
        "timeout_ms=1500",
    ]);
    let facts = out.json();
    facts["facts"]["reachable"]
        .as_bool()
        .or_else(|| facts["reachable"].as_bool())
        .unwrap_or_else(|| panic!("no reachable fact: {facts:#}"))
}

/// The one shell command in backticks that starts with `sudo iptables`.
fn iptables_command(fix: &str) -> String {
    fix.split('`')
        .find(|part| part.starts_with("sudo iptables") || part.starts_with("sudo ip6tables"))
        .unwrap_or_else(|| panic!("no iptables command in the fix: {fix}"))
        .trim_start_matches("sudo ")
        .to_string()
}

/// issue 10 §4 b: the guide's rules intercept only 10.0.0.1; the fix printed for 10.0.0.2
/// used to append after ISTIO_OUTPUT's final `-j RETURN`, where no connection reaches it.
/// Now it inserts before that RETURN, and once applied a real connection to the VIP lands
/// on the proxy's port while the proxy's own UID stays excluded.
#[test]
fn live_vip_fix_makes_the_vip_intercepted() {
    let Some(ns) = Netns::create("vipfix") else {
        return;
    };
    ns.sh(&["ip", "link", "set", "lo", "up"]);
    // The VIP's network on loopback (a /24 there is local as a whole), with nothing
    // listening on port 80: without interception a connection to 10.0.0.2:80 is refused;
    // with it, the nat table sends it to the listener on 15001.
    ns.sh(&["ip", "addr", "add", "10.0.0.100/24", "dev", "lo"]);
    for rule in GUIDE_RULES {
        ns.iptables(rule);
    }
    let accepted = listener_in(&ns, 15001);

    assert!(
        !reachable(&ns, "10.0.0.2", 80),
        "10.0.0.2 must not be reachable before the fix"
    );
    assert!(accepted.try_recv().is_err(), "nothing redirected yet");

    let out = ns.triage(&[
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--input",
        "vip=10.0.0.2",
        "--input",
        "port=80",
        "--input",
        "proxy_uid=1006",
    ]);
    let report = out.json();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "vip-not-intercepted")
        .unwrap_or_else(|| panic!("no vip-not-intercepted: {report:#}"));
    let fix = finding["fix"].as_str().unwrap();
    let command = iptables_command(fix);
    assert_eq!(
        command,
        "iptables -t nat -I ISTIO_OUTPUT 4 -d 10.0.0.2/32 -j ISTIO_REDIRECT"
    );

    // The fix as printed, run by a shell, as the on-call person would paste it.
    ns.sh(&["sh", "-c", &command]);

    assert!(
        reachable(&ns, "10.0.0.2", 80),
        "after the fix the connection is redirected to the listener on 15001"
    );
    accepted
        .recv_timeout(Duration::from_secs(5))
        .expect("the listener standing in for Envoy accepted the redirected connection");

    let out = ns.triage(&[
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--input",
        "vip=10.0.0.2",
        "--input",
        "port=80",
        "--input",
        "proxy_uid=1006",
    ]);
    let report = out.json();
    assert!(
        findings_among(&report, &["interception-missing", "vip-not-intercepted"]).is_empty(),
        "{report:#}"
    );
    assert_eq!(step(&report, "vip-interception")["status"], "passed");
    // The proxy's own traffic still RETURNs first: traffic-loop finds no loop.
    let out = ns.triage(&[
        "run",
        "traffic-loop",
        "--format",
        "json",
        "--input",
        "proxy_uid=1006",
    ]);
    assert!(
        findings_among(&out.json(), &["proxy-uid-not-excluded"]).is_empty(),
        "{}",
        out.stdout
    );
}

/// issue 10 §2: a bundle with none of the three forms of the nat table says which calls it
/// lacks, in one error.
#[test]
fn a_bundle_without_the_table_names_every_form_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bundle.yaml"),
        "target: no-iptables\nrecorded_at: 1610451554\ncalls:\n  - exec: [ps, -eo, \"pid=,uid=,user=,args=\"]\n    status: 0\n    stdout: \"\"\n",
    )
    .unwrap();
    let out = run(triage().args([
        "probe",
        "iptables",
        "rules",
        "--bundle",
        dir.path().to_str().unwrap(),
    ]));
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    for form in [
        "`iptables-save -t nat`",
        "`iptables -t nat -S`",
        "`iptables -t nat -L -n -v`",
    ] {
        assert!(text.contains(form), "{form} not named in: {text}");
    }
}

/// The "check it by hand" command of an undecided interception lists the chain that holds
/// the rule triage could not evaluate: the chain that redirects (the undecided rule is in
/// ISTIO_OUTPUT, where OUTPUT would show only the jump) or OUTPUT (the rule is there, before
/// the jump, where ISTIO_OUTPUT would not show it).
#[test]
fn an_undecided_interception_names_the_chain_of_the_rule_it_could_not_evaluate() {
    let cases = [
        // (case, its inputs, step, the command its reason must give)
        (
            "outbound-undecidable",
            vec!["vip=10.0.0.1"],
            "interception",
            "`sudo iptables -t nat -L ISTIO_OUTPUT -n -v`",
        ),
        (
            "vip-undecidable-in-output",
            vec!["vip=10.0.0.1", "port=3306"],
            "vip-interception",
            "`sudo iptables -t nat -L OUTPUT -n -v`",
        ),
    ];
    for (case, inputs, step_id, command) in cases {
        let bundle = root().join("runbooks/service-unreachable/tests").join(case);
        let mut cmd = triage();
        cmd.args(["run", "service-unreachable", "--format", "json", "--bundle"])
            .arg(&bundle);
        for input in inputs {
            cmd.args(["--input", input]);
        }
        let out = run(&mut cmd);
        let report = out.json();
        let step = step(&report, step_id);
        assert_eq!(step["status"], "unknown", "{case}: {step:#}");
        let reason = step["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(command),
            "{case}: {command} not in: {reason}"
        );
    }
}
