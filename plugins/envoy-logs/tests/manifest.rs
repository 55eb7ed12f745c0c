use triage_plugin_envoy_logs::EnvoyLogsProbe;
use triage_sdk::{Params, Probe, ProbeError};

#[test]
fn manifest_declares_exactly_what_the_actions_run() {
    let manifest = format!("{:?}", EnvoyLogsProbe::describe());
    assert!(manifest.contains(r#"name: "file""#), "{manifest}");
    assert!(manifest.contains(r#"ReadFile("{path}")"#), "{manifest}");
    assert!(manifest.contains(r#"name: "kubectl""#), "{manifest}");
    assert!(
        manifest.contains(
            r#"Exec(["kubectl", "logs", "-n", "{namespace}", "-c", "{container}", "--tail", "{tail}", "--", "{pod}"])"#
        ),
        "{manifest}"
    );
    assert!(
        manifest.contains(r#"\"default\":\"/var/log/envoy/envoy.err.log\""#),
        "{manifest}"
    );
    assert!(manifest.contains(r#"\"default\":16777216"#), "{manifest}");
}

#[test]
fn bad_params_and_unknown_actions_are_refused_before_any_capability_call() {
    let err = EnvoyLogsProbe::run("kubectl", Params::from_json("{}")).unwrap_err();
    assert!(
        matches!(err, ProbeError::InvalidParams(ref m) if m.contains("pod")),
        "{err:?}"
    );
    let err = EnvoyLogsProbe::run("file", Params::from_json(r#"{"paht": "/x"}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(_)), "{err:?}");
    let err = EnvoyLogsProbe::run("tail", Params::from_json("{}")).unwrap_err();
    assert!(matches!(err, ProbeError::UnknownAction(_)), "{err:?}");
}
