//! The `gce-service-proxy` metadata value that automatic Envoy deployment reads: JSON such as
//! `{"api-version": "0.2", "proxy-spec": {"network": "my-network", "proxy-port": 15001, …},
//! "service": {"serving-ports": [80, 81]}}`. Hand-written values are not always valid JSON
//! (the public examples miss a comma), so when strict parsing fails the known keys are
//! looked up in the text instead, and the facts say so.

use serde::Serialize;
use serde_json::Value;
use triage_sdk::JsonSchema;

/// The most serving ports kept (a port list longer than this is not a real config).
const MAX_PORTS: usize = 1024;

/// What the `gce-service-proxy` metadata asks the VM's proxy to do.
#[derive(Serialize, JsonSchema, Debug, Default, PartialEq, Eq)]
pub struct ServiceProxyFacts {
    /// The value is valid JSON; when false the other facts come from a text search.
    pub valid_json: bool,
    /// Why strict JSON parsing failed.
    pub parse_error: Option<String>,
    /// `api-version`.
    pub api_version: Option<String>,
    /// `proxy-spec.network`: the VPC network the proxy asks Traffic Director about (the
    /// `default` network when unset).
    pub network: Option<String>,
    /// `proxy-spec.proxy-port`: Envoy's interception port.
    pub proxy_port: Option<u16>,
    /// `service.serving-ports`: the workload's inbound ports (a list, or "80;81").
    pub serving_ports: Vec<u16>,
    /// `proxy-spec.tracing`.
    pub tracing: Option<String>,
    /// `proxy-spec.access-log`: the access log path.
    pub access_log: Option<String>,
    /// `proxy-spec.api-server`: the xDS server, when overridden.
    pub api_server: Option<String>,
}

/// Reads the `gce-service-proxy` metadata value.
pub fn parse_service_proxy(value: &str) -> ServiceProxyFacts {
    match serde_json::from_str::<Value>(value) {
        Ok(json) => from_json(&json),
        Err(e) => ServiceProxyFacts {
            parse_error: Some(e.to_string()),
            ..from_text(value)
        },
    }
}

fn from_json(json: &Value) -> ServiceProxyFacts {
    let spec = json.get("proxy-spec");
    let service = json.get("service");
    // Keys are looked up in their section first, then at the top level.
    let find = |section: Option<&Value>, key: &str| -> Option<Value> {
        section
            .and_then(|s| s.get(key))
            .or_else(|| json.get(key))
            .cloned()
    };
    ServiceProxyFacts {
        valid_json: true,
        parse_error: None,
        api_version: find(None, "api-version").as_ref().and_then(text_of),
        network: find(spec, "network").as_ref().and_then(text_of),
        proxy_port: find(spec, "proxy-port").as_ref().and_then(port_of),
        serving_ports: find(service, "serving-ports")
            .as_ref()
            .map(ports_of)
            .unwrap_or_default(),
        tracing: find(spec, "tracing").as_ref().and_then(text_of),
        access_log: find(spec, "access-log").as_ref().and_then(text_of),
        api_server: find(spec, "api-server").as_ref().and_then(text_of),
    }
}

fn from_text(text: &str) -> ServiceProxyFacts {
    let scalar = |key: &str| raw_value(text, key).and_then(|v| text_of(&v));
    ServiceProxyFacts {
        valid_json: false,
        parse_error: None,
        api_version: scalar("api-version"),
        network: scalar("network"),
        proxy_port: raw_value(text, "proxy-port").as_ref().and_then(port_of),
        serving_ports: raw_value(text, "serving-ports")
            .as_ref()
            .map(ports_of)
            .unwrap_or_default(),
        tracing: scalar("tracing"),
        access_log: scalar("access-log"),
        api_server: scalar("api-server"),
    }
}

/// The JSON value after `"key":` in otherwise broken JSON: a string, number or flat array.
fn raw_value(text: &str, key: &str) -> Option<Value> {
    let quoted = format!("\"{key}\"");
    let after = &text[text.find(&quoted)? + quoted.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = match after.chars().next()? {
        '"' => after[1..].find('"').map(|i| i + 2)?,
        '[' => after.find(']').map(|i| i + 1)?,
        _ => after.find([',', '}', '\n']).unwrap_or(after.len()),
    };
    serde_json::from_str(after[..end].trim()).ok()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ports_of(v: &Value) -> Vec<u16> {
    let mut ports: Vec<u16> = match v {
        Value::Array(items) => items.iter().filter_map(port_of).take(MAX_PORTS).collect(),
        Value::String(s) => s
            .split([';', ',', ' '])
            .filter_map(|p| p.trim().parse().ok())
            .take(MAX_PORTS)
            .collect(),
        other => port_of(other).into_iter().collect(),
    };
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_json() {
        let facts = parse_service_proxy(
            r#"{"api-version":"0.2","proxy-spec":{"proxy-port":15001,"network":"td-vpc","tracing":"ON","access-log":"/var/log/envoy/access.log"},"service":{"serving-ports":[80,81]}}"#,
        );
        assert!(facts.valid_json);
        assert_eq!(facts.network.as_deref(), Some("td-vpc"));
        assert_eq!(
            (facts.proxy_port, facts.serving_ports),
            (Some(15001), vec![80, 81])
        );
        assert_eq!(
            facts.access_log.as_deref(),
            Some("/var/log/envoy/access.log")
        );
    }

    #[test]
    fn the_published_example_missing_a_comma_is_still_read() {
        let value = "{\n  \"api-version\": \"0.2\",\n  \"proxy-spec\": {\n    \"proxy-port\": 15001,\n    \"network\": \"my-network\",\n    \"tracing\": \"ON\",\n    \"access-log\": \"/var/log/envoy/access.log\"\n  }\n  \"service\": {\n    \"serving-ports\": [80, 81]\n  }\n}";
        let facts = parse_service_proxy(value);
        assert!(!facts.valid_json);
        assert!(facts.parse_error.is_some());
        assert_eq!(facts.api_version.as_deref(), Some("0.2"));
        assert_eq!(facts.network.as_deref(), Some("my-network"));
        assert_eq!(
            (facts.proxy_port, facts.serving_ports),
            (Some(15001), vec![80, 81])
        );
    }

    #[test]
    fn ports_as_a_semicolon_list_and_odd_values() {
        let facts = parse_service_proxy(r#"{"service":{"serving-ports":"8080;8443;99999;x"}}"#);
        assert_eq!(facts.serving_ports, [8080, 8443]);
        for text in [
            "",
            "\"",
            "{\"network\":",
            "{\"network\": \"",
            "{\"serving-ports\": [1,",
            "\u{0}\u{1}é",
        ] {
            let _ = parse_service_proxy(text);
        }
    }
}
