use triage_plugin_guest_attrs::GuestAttrsProbe;
use triage_sdk::{Params, Probe, ProbeError};

#[test]
fn manifest_declares_exactly_what_the_actions_run() {
    let manifest = format!("{:?}", GuestAttrsProbe::describe());
    for expected in [
        r#"Http("http://metadata.google.internal/computeMetadata/v1/instance/guest-attributes/gce-service-proxy/*")"#,
        r#"Exec(["gcloud", "compute", "instances", "get-guest-attributes", "--zone", "{zone}", "--project", "{project}", "--query-path=gce-service-proxy/", "--format=json", "--", "{instance}"])"#,
        r#"Exec(["gcloud", "compute", "instances", "get-guest-attributes", "--zone", "{zone}", "--query-path=gce-service-proxy/", "--format=json", "--", "{instance}"])"#,
        r#"Http("http://metadata.google.internal/computeMetadata/v1/instance/network-interfaces/0/network")"#,
        r#"Http("http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/scopes")"#,
        r#"Http("http://metadata.google.internal/computeMetadata/v1/instance/attributes/gce-service-proxy")"#,
        r#"\"default\":300"#,
    ] {
        assert!(
            manifest.contains(expected),
            "missing {expected} in {manifest}"
        );
    }
}

#[test]
fn bad_params_are_refused_before_any_capability_call() {
    let err =
        GuestAttrsProbe::run("gcloud", Params::from_json(r#"{"instance": "vm"}"#)).unwrap_err();
    assert!(
        matches!(err, ProbeError::InvalidParams(ref m) if m.contains("zone")),
        "{err:?}"
    );
    let err = GuestAttrsProbe::run("instance", Params::from_json(r#"{"x": 1}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(_)), "{err:?}");
    let err = GuestAttrsProbe::run("nope", Params::from_json("{}")).unwrap_err();
    assert!(matches!(err, ProbeError::UnknownAction(_)), "{err:?}");
}
