//! The plugin's manifest and its entry point, natively.

use triage_plugin_iptables::{IptablesProbe, RulesFacts, RulesParams};
use triage_sdk::{Params, Probe, ProbeError};

#[test]
fn params_schema_has_the_defaults() {
    let schema = serde_json::to_value(schemars::schema_for!(RulesParams)).expect("schema");
    let props = &schema["properties"];
    assert_eq!(props["table"]["default"], "nat");
    assert_eq!(props["command"]["default"], "save");
    assert_eq!(props["ipv6"]["default"], false);
    assert_eq!(props["serving_ports"]["default"], serde_json::json!([]));
    let facts = serde_json::to_value(schemars::schema_for!(RulesFacts)).expect("schema");
    for field in [
        "chains",
        "outbound",
        "vip_intercepted",
        "proxy_uid_excluded",
        "inbound",
        "uid_owner_exclusions",
    ] {
        assert!(
            facts["properties"][field]["description"].is_string(),
            "{field} is documented"
        );
    }
}

#[test]
fn manifest_declares_exactly_the_commands() {
    let manifest = format!("{:?}", IptablesProbe::describe());
    for argv in [
        r#"["iptables-save", "-t", "{table}"]"#,
        r#"["ip6tables-save", "-t", "{table}"]"#,
        r#"["iptables", "-t", "{table}", "-S"]"#,
        r#"["ip6tables", "-t", "{table}", "-S"]"#,
        r#"["iptables", "-t", "{table}", "-L", "-n", "-v"]"#,
        r#"["ip6tables", "-t", "{table}", "-L", "-n", "-v"]"#,
        r#"["ip6tables", "-t", "nat", "-S"]"#,
        r#"["kubectl", "exec", "-n", "{namespace}", "-c", "{container}", "{pod}", "--", "iptables-save", "-t", "nat"]"#,
        r#"["kubectl", "exec", "-n", "{namespace}", "-c", "{container}", "{pod}", "--", "iptables", "-t", "nat", "-S"]"#,
        r#"["sudo", "-n", "iptables", "-t", "{table}", "-L", "-n", "-v"]"#,
    ] {
        assert!(manifest.contains(argv), "{argv} missing from {manifest}");
    }
    assert_eq!(manifest.matches("Exec(").count(), 10);
}

#[test]
fn argv_follows_the_params() {
    let p: RulesParams = serde_json::from_str("{}").expect("defaults");
    assert_eq!(p.argv(), vec!["iptables-save", "-t", "nat"]);
    let p: RulesParams =
        serde_json::from_str(r#"{"table":"mangle","command":"list","ipv6":true}"#).expect("params");
    assert_eq!(
        p.argv(),
        vec!["ip6tables", "-t", "mangle", "-L", "-n", "-v"]
    );
    let p: RulesParams = serde_json::from_str(r#"{"command":"spec"}"#).expect("params");
    assert_eq!(p.argv(), vec!["iptables", "-t", "nat", "-S"]);
}

#[test]
fn sudo_reads_only_the_guides_two_listings() {
    for (params, argv) in [
        (
            r#"{"table":"nat","command":"list","sudo":true}"#,
            vec!["sudo", "-n", "iptables", "-t", "nat", "-L", "-n", "-v"],
        ),
        (
            r#"{"table":"filter","command":"list","sudo":true}"#,
            vec!["sudo", "-n", "iptables", "-t", "filter", "-L", "-n", "-v"],
        ),
    ] {
        let p: RulesParams = serde_json::from_str(params).expect("params");
        assert_eq!(p.sudo_argv().expect(params), argv);
    }
    // Anything else would need a command line the default policy does not pin.
    for params in [
        r#"{"table":"mangle","command":"list","sudo":true}"#,
        r#"{"table":"nat","command":"save","sudo":true}"#,
        r#"{"table":"nat","command":"list","ipv6":true,"sudo":true}"#,
    ] {
        let p: RulesParams = serde_json::from_str(params).expect("params");
        assert!(p.sudo_argv().is_err(), "{params}");
    }
}

#[test]
fn bad_params_fail_before_running_anything() {
    let err = IptablesProbe::run("rules", Params::from_json(r#"{"bogus": 1}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(_)), "{err:?}");
    let err = IptablesProbe::run("rules", Params::from_json(r#"{"table": "nosuch"}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(_)), "{err:?}");
    let err =
        IptablesProbe::run("rules", Params::from_json(r#"{"vip": "not-an-ip"}"#)).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidParams(m) if m.contains("not-an-ip")));
    let err = IptablesProbe::run("nope", Params::from_json("{}")).unwrap_err();
    assert!(matches!(err, ProbeError::UnknownAction(_)));
}

#[test]
fn vip_accepts_cidr_and_brackets() {
    let p: RulesParams = serde_json::from_str(r#"{"vip":"10.0.0.1/32"}"#).expect("params");
    assert_eq!(
        p.query().expect("query").vip,
        Some("10.0.0.1".parse().unwrap())
    );
    let p: RulesParams = serde_json::from_str(r#"{"vip":"[fd00::1]"}"#).expect("params");
    assert_eq!(
        p.query().expect("query").vip,
        Some("fd00::1".parse().unwrap())
    );
}
