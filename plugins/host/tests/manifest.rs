use triage_plugin_host::HostProbe;
use triage_sdk::{Params, Probe, ProbeError};

#[test]
fn manifest_declares_exactly_what_the_actions_run() {
    let manifest = format!("{:?}", HostProbe::describe());
    for expected in [
        r#"Exec(["ps", "-eo", "pid=,uid=,user=,args="])"#,
        r#"Exec(["ps", "-eo", "pid=,etimes=,args="])"#,
        r#"ReadFile("/proc/uptime")"#,
        r#"Exec(["{binary}", "--version"])"#,
        r#"Exec(["/proc/*/exe", "--version"])"#,
        r#"Exec(["envoy", "--version"])"#,
        r#"Exec(["readlink", "--", "/proc/*/fd/2"])"#,
        r#"Exec(["stat", "-c", "%U|%u|%G|%g|%a|%F", "--", "{path}"])"#,
        r#"Resolve("{host}")"#,
        r#"Connect("{host}:{port}")"#,
        r#"\"default\":\"/usr/local/bin/envoy\""#,
        r#"\"default\":\"1.9.1\""#,
        r#"\"default\":\"trafficdirector.googleapis.com\""#,
        r#"\"default\":443"#,
        r#"\"default\":3000"#,
    ] {
        assert!(
            manifest.contains(expected),
            "missing {expected} in {manifest}"
        );
    }
    for action in [
        "processes",
        "envoy-uptime",
        "envoy-log-location",
        "envoy-version",
        "file-stat",
        "dns",
        "tcp",
    ] {
        assert!(
            manifest.contains(&format!("name: \"{action}\"")),
            "{action}"
        );
    }
}

#[test]
fn bad_params_are_refused_before_any_capability_call() {
    let err = HostProbe::run(
        "envoy-version",
        Params::from_json(r#"{"min_version": "new"}"#),
    )
    .unwrap_err();
    assert!(
        matches!(err, ProbeError::InvalidParams(ref m) if m.contains("min_version")),
        "{err:?}"
    );
    let err = HostProbe::run("file-stat", Params::from_json("{}")).unwrap_err();
    assert!(
        matches!(err, ProbeError::InvalidParams(ref m) if m.contains("path")),
        "{err:?}"
    );
    let err = HostProbe::run("tcp", Params::from_json(r#"{"port": 70000}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(_)), "{err:?}");
    let err = HostProbe::run("uptime", Params::from_json("{}")).unwrap_err();
    assert!(matches!(err, ProbeError::UnknownAction(_)), "{err:?}");
}
