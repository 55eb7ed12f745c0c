//! The parsers on real Kubernetes objects (fixtures/real) and on kubectl JSON
//! written for the guide's scenarios (tests/data).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use triage_plugin_kubectl::{configmap, events, json::ParseError, logs, pods, webhooks, workloads};

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn data(name: &str) -> String {
    std::fs::read_to_string(Path::new(DATA).join(name)).unwrap()
}

/// Every YAML document of a fixture, as the JSON kubectl would print for it.
fn yaml_docs(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .map(|doc| serde_json::to_value(doc).unwrap())
        .collect()
}

/// A Deployment's pod template as the Pod it would create.
fn pod_from_template(deployment: &Value) -> Value {
    let template = &deployment["spec"]["template"];
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]})
}

fn kubectl_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(REAL).join("kubectl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.push(
        Path::new(REAL).join(
            "envoy-bootstrap/td-istio-proxy-sidecar-spec-discoveryAddress-trafficdirector.yaml",
        ),
    );
    files
}

/// Runs the matching parser on every object of every fixture; returns pods and configmaps by file.
fn parse_all_fixtures() -> Vec<(String, Vec<pods::PodFacts>, Vec<configmap::ConfigMapFacts>)> {
    kubectl_fixtures()
        .iter()
        .map(|path| {
            let mut pod_facts = Vec::new();
            let mut configmaps = Vec::new();
            for doc in yaml_docs(path) {
                match doc["kind"].as_str() {
                    Some("Pod") => pod_facts.push(pods::parse_pod(&doc.to_string()).unwrap()),
                    Some("Deployment") => {
                        pod_facts
                            .push(pods::parse_pod(&pod_from_template(&doc).to_string()).unwrap());
                        workloads::parse_workload(&doc.to_string()).unwrap();
                    }
                    Some("ConfigMap") => {
                        configmaps.push(configmap::parse_configmap(&doc.to_string()).unwrap())
                    }
                    _ => {}
                }
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, pod_facts, configmaps)
        })
        .collect()
}

#[test]
fn every_real_fixture_parses_and_yields_known_facts() {
    let all = parse_all_fixtures();
    assert_eq!(all.len(), 5);
    let by_name = |n: &str| all.iter().find(|(name, ..)| name == n).unwrap();

    let (_, hello, _) = by_name("istio-1.11-injected-deployment-istio-proxy-container.yaml");
    let sidecar = hello[0].sidecar.as_ref().unwrap();
    assert_eq!(
        (sidecar.name.as_str(), sidecar.kind.as_str()),
        ("istio-proxy", "container")
    );
    assert_eq!(
        sidecar.image.as_deref(),
        Some("gcr.io/istio-testing/proxyv2:latest")
    );
    assert_eq!(
        sidecar.args[..2],
        ["proxy".to_string(), "sidecar".to_string()]
    );
    assert_eq!(
        sidecar.discovery_address, None,
        "PROXY_CONFIG is {{}} and there is no flag"
    );
    assert_eq!(hello[0].container_count, 2);
    assert_eq!(hello[0].ready, "0/2");
    assert!(
        hello[0].annotations["sidecar.istio.io/status"]
            .contains("\"containers\":[\"istio-proxy\"]")
    );
    assert_eq!(hello[0].labels["app"], "hello");

    let (_, native, _) =
        by_name("istio-injected-deployment-native-sidecar-istio-proxy-initcontainer.yaml");
    let sidecar = native[0].sidecar.as_ref().unwrap();
    assert_eq!(
        (sidecar.name.as_str(), sidecar.kind.as_str()),
        ("istio-proxy", "native-sidecar")
    );
    assert_eq!(native[0].containers.len(), 1);
    assert_eq!(native[0].init_containers.len(), 2);
    assert_eq!(
        native[0].container_count, 2,
        "kubectl counts the native sidecar in READY"
    );
    assert_eq!(
        native[0].init_containers[1].restart_policy.as_deref(),
        Some("Always")
    );

    let (_, analyzer, _) = by_name("istio-analyzer-pods-with-istio-proxy-mismatched-sidecar.yaml");
    assert_eq!(analyzer.len(), 12);
    let kinds = |kind: &str| {
        analyzer
            .iter()
            .filter(|p| p.sidecar.as_ref().unwrap().kind == kind)
            .count()
    };
    assert_eq!((kinds("container"), kinds("init-container")), (10, 2));
    let old = analyzer
        .iter()
        .find(|p| p.name == "details-v1-pod-old")
        .unwrap();
    assert_eq!(old.namespace.as_deref(), Some("enabled-namespace"));
    assert_eq!(
        old.sidecar.as_ref().unwrap().image.as_deref(),
        Some("registry.istio.io/release/proxyv2:1.3.0")
    );
    let overwritten = analyzer
        .iter()
        .find(|p| p.name == "details-v1-pod-overwritten-sidecar")
        .unwrap();
    assert_eq!(
        overwritten.annotations["sidecar.istio.io/proxyImage"],
        "registry.istio.io/release/proxyv2:1.3.0-prerelease"
    );

    let (_, td, _) = by_name("td-istio-proxy-sidecar-spec-discoveryAddress-trafficdirector.yaml");
    let sidecar = td[0].sidecar.as_ref().unwrap();
    assert_eq!(
        sidecar.discovery_address.as_deref(),
        Some("trafficdirector.googleapis.com:443")
    );
    assert_eq!(sidecar.discovery_address_source.as_deref(), Some("args"));
    assert!(sidecar.discovery_address_is_traffic_director);
    assert_eq!(
        sidecar.image.as_deref(),
        Some("docker.io/istio/proxyv2:1.2.4")
    );

    let (_, _, configmaps) =
        by_name("istio-1.3.1-sidecar-injector-configmap-discoveryAddress.yaml");
    let cm = &configmaps[0];
    assert_eq!(
        (cm.name.as_str(), cm.namespace.as_deref()),
        ("istio-sidecar-injector", Some("istio-system"))
    );
    assert_eq!(cm.keys, ["config", "values"]);
    assert_eq!(cm.discovery_address, None);
    assert!(
        cm.discovery_address_templated,
        "Istio computes --discoveryAddress from .ProxyConfig"
    );
    assert!(!cm.discovery_address_is_traffic_director);
    assert_eq!(cm.injector, "istio");
    assert_eq!((cm.network.as_deref(), cm.project.as_deref()), (None, None));
}

#[test]
fn fixture_pods_as_one_list() {
    let path = Path::new(REAL)
        .join("kubectl/istio-analyzer-pods-with-istio-proxy-mismatched-sidecar.yaml");
    let items: Vec<Value> = yaml_docs(&path)
        .into_iter()
        .filter(|d| d["kind"] == "Pod")
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let facts = pods::parse_pods(&list.to_string()).unwrap();
    assert_eq!(
        (facts.pod_count, facts.ready_pods, facts.sidecar_pods),
        (12, 0, 12)
    );
}

#[test]
fn td_injected_pods() {
    let facts = pods::parse_pods(&data("pods-busybox-td-injected.json")).unwrap();
    assert_eq!(
        (facts.pod_count, facts.ready_pods, facts.sidecar_pods),
        (2, 1, 2)
    );
    let good = &facts.pods[0];
    assert_eq!(
        (good.ready.as_str(), good.phase.as_deref()),
        ("2/2", Some("Running"))
    );
    assert_eq!(good.exclude_outbound_ports, [3306]);
    assert!(
        good.sidecar
            .as_ref()
            .unwrap()
            .discovery_address_is_traffic_director
    );
    let bad = &facts.pods[1];
    assert_eq!(bad.ready, "1/2");
    assert!(!bad.pod_ready);
    let proxy = bad
        .containers
        .iter()
        .find(|c| c.name == "istio-proxy")
        .unwrap();
    assert_eq!(
        (proxy.restart_count, proxy.state_reason.as_deref()),
        (5, Some("CrashLoopBackOff"))
    );
    let sidecar = bad.sidecar.as_ref().unwrap();
    assert_eq!(
        sidecar.discovery_address.as_deref(),
        Some("istio-pilot.istio-system:15010")
    );
    assert!(!sidecar.discovery_address_is_traffic_director);
}

#[test]
fn events_with_the_guides_webhook_failure() {
    let facts = events::parse_events(&data("events-webhook-timeout.json"), None).unwrap();
    assert_eq!((facts.event_count, facts.warning_count), (3, 2));
    assert_eq!(facts.webhook_failures.len(), 2);
    let guide = &facts.webhook_failures[0];
    assert_eq!(guide.call.webhook, "sidecar-injector.istio.io");
    assert_eq!(
        guide.call.url.as_deref(),
        Some("https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s")
    );
    assert_eq!(
        guide.call.error,
        "net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"
    );
    assert_eq!(guide.object, "ReplicaSet/busybox-6b8b7c6c9f");
    assert_eq!((guide.count, guide.call.timeout), (7, true));
    let newer = &facts.webhook_failures[1];
    assert_eq!(
        newer.call.url.as_deref(),
        Some("https://istiod.istio-system.svc:443/inject?timeout=10s")
    );
    assert_eq!(newer.count, 4, "from series.count");
    assert_eq!(
        newer.last_timestamp.as_deref(),
        Some("2024-05-21T08:03:41.118032Z")
    );

    let json = serde_json::to_value(&facts).unwrap();
    assert_eq!(
        json["webhook_failures"][0]["webhook"], "sidecar-injector.istio.io",
        "the call is flattened"
    );
    assert_eq!(json["events"][1]["involved_object"]["kind"], "ReplicaSet");
}

#[test]
fn busybox_deployment_zero_of_one() {
    let facts = workloads::parse_workload(&data("deployment-busybox-0-of-1.json")).unwrap();
    assert_eq!(
        (
            facts.replicas,
            facts.ready_replicas,
            facts.available_replicas,
            facts.unavailable
        ),
        (1, 0, 0, 1)
    );
    assert_eq!(facts.ready, "0/1");
    assert!(!facts.all_ready);
    assert_eq!(
        facts.webhook_failures[0].service_namespace.as_deref(),
        Some("istio-control")
    );

    let list = json!({"kind": "List", "items": [serde_json::from_str::<Value>(&data("deployment-busybox-0-of-1.json")).unwrap()]});
    let facts = workloads::parse_workloads(&list.to_string(), None).unwrap();
    assert_eq!(facts.not_ready, ["busybox"]);
}

#[test]
fn replicasets_carry_the_failed_create() {
    let facts =
        workloads::parse_workloads(&data("replicasets-busybox-failedcreate.json"), None).unwrap();
    assert_eq!(facts.count, 2);
    assert_eq!(facts.not_ready, ["busybox-6b8b7c6c9f"]);
    assert_eq!(facts.items[0].owner.as_deref(), Some("busybox"));
    assert_eq!(facts.items[1].ready, "2/2");
    assert_eq!(facts.webhook_failures.len(), 1);
    let failure = &facts.webhook_failures[0];
    assert_eq!(failure.call.webhook, "sidecar-injector.istio.io");
    // The guide's `kubectl describe rs`: the failure names its ReplicaSet and when it began,
    // in the events' shape, so a runbook reads both the same way.
    assert_eq!(failure.object, "ReplicaSet/busybox-6b8b7c6c9f");
    assert_eq!(
        failure.last_timestamp.as_deref(),
        Some("2020-03-04T10:15:02Z")
    );
    assert_eq!(failure.call.cause, "timeout");
    assert!(failure.call.injector);
}

/// A failure of another webhook, or of an injector webhook with the injector's name but
/// another Service, is not the injector's when the injector's registrations are known.
#[test]
fn failures_are_matched_against_the_injectors_registrations() {
    use triage_plugin_kubectl::webhook_failure::InjectorWebhookRef;
    let td = [InjectorWebhookRef {
        name: "sidecar-injector.istio.io".into(),
        service_namespace: Some("istio-control".into()),
        service_name: Some("istio-sidecar-injector".into()),
        url: None,
    }];
    let facts = events::parse_events(&data("events-webhook-timeout.json"), Some(&td)).unwrap();
    let marks: Vec<(&str, bool)> = facts
        .webhook_failures
        .iter()
        .map(|f| (f.call.webhook.as_str(), f.call.injector))
        .collect();
    assert_eq!(
        marks,
        [
            ("sidecar-injector.istio.io", true),
            ("namespace.sidecar-injector.istio.io", false)
        ]
    );
    let facts =
        workloads::parse_workloads(&data("replicasets-busybox-failedcreate.json"), Some(&td))
            .unwrap();
    assert!(facts.webhook_failures[0].call.injector);
}

#[test]
fn injector_configmap_of_traffic_director() {
    let facts = configmap::parse_configmap(&data("configmap-td-sidecar-injector.json")).unwrap();
    assert_eq!(facts.namespace.as_deref(), Some("istio-control"));
    assert_eq!(
        facts.discovery_address.as_deref(),
        Some("trafficdirector.googleapis.com:443")
    );
    assert!(facts.discovery_address_is_traffic_director);
    assert_eq!(facts.network.as_deref(), Some("td-vpc"));
    assert_eq!(facts.project.as_deref(), Some("798832730858"));
    assert_eq!(facts.injector, "traffic-director");
}

#[test]
fn webhooks_tell_which_injector_runs() {
    let td = webhooks::parse_webhooks(&data("mutatingwebhookconfigurations-td.json")).unwrap();
    assert_eq!(td.injectors, ["traffic-director"]);
    assert!(td.traffic_director_injector_active && !td.istio_injector_active);
    let hook = &td.configurations[0].webhooks[0];
    let service = hook.service.as_ref().unwrap();
    assert_eq!(
        (
            service.namespace.as_str(),
            service.name.as_str(),
            service.port
        ),
        ("istio-control", "istio-sidecar-injector", Some(443))
    );
    assert_eq!(
        (hook.failure_policy.as_deref(), hook.timeout_seconds),
        (Some("Fail"), Some(30))
    );
    assert_eq!(
        td.configurations[1].webhooks[0].injector, None,
        "cert-manager is no injector"
    );

    let istio =
        webhooks::parse_webhooks(&data("mutatingwebhookconfigurations-istio.json")).unwrap();
    assert_eq!(istio.injectors, ["istio"]);
    assert_eq!(istio.configurations[0].webhooks.len(), 2);
}

#[test]
fn logs_are_lines() {
    let facts = logs::parse_logs(
        "[2020-03-04 10:31:22.101][1][warning][config] StreamAggregatedResources gRPC config stream closed: 14, upstream connect error\r\nsecond\n",
    );
    assert_eq!(facts.line_count, 2);
    assert!(facts.lines[0].ends_with("upstream connect error"));
    assert_eq!(logs::parse_logs("").line_count, 0);
}

type Parser = fn(&str) -> Result<(), ParseError>;

fn parsers() -> [(&'static str, Parser); 7] {
    [
        ("pods", |t| pods::parse_pods(t).map(drop)),
        ("pod", |t| pods::parse_pod(t).map(drop)),
        ("workloads", |t| {
            workloads::parse_workloads(t, None).map(drop)
        }),
        ("workload", |t| workloads::parse_workload(t).map(drop)),
        ("events", |t| events::parse_events(t, None).map(drop)),
        ("configmap", |t| configmap::parse_configmap(t).map(drop)),
        ("webhooks", |t| webhooks::parse_webhooks(t).map(drop)),
    ]
}

#[test]
fn empty_binary_and_wrong_output_are_clear_errors() {
    let binary =
        String::from_utf8_lossy(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0xff, 0xfe, 0]).into_owned();
    for (name, parse) in parsers() {
        for (input, expect) in [
            ("", "empty output"),
            (" \n\t", "empty output"),
            (binary.as_str(), "starts with"),
            ("No resources found in default namespace.", "starts with"),
            ("{\"kind\": \"List\", \"items\": [", "truncated"),
            ("[1, 2]", "unexpected JSON"),
        ] {
            let err = parse(input).expect_err(name);
            assert!(err.0.contains(expect), "{name} on {input:?}: {err}");
        }
    }
}

#[test]
fn every_truncation_of_real_output_is_handled() {
    for file in [
        "pods-busybox-td-injected.json",
        "events-webhook-timeout.json",
        "mutatingwebhookconfigurations-td.json",
    ] {
        let text = data(file);
        for (_, parse) in parsers() {
            for cut in (0..text.len())
                .step_by(7)
                .filter(|c| text.is_char_boundary(*c))
            {
                let _ = parse(&text[..cut]);
            }
        }
    }
}

#[test]
fn enormous_lists_parse() {
    let pod: Value = serde_json::from_str::<Value>(&data("pods-busybox-td-injected.json")).unwrap()
        ["items"][0]
        .clone();
    let list = json!({"kind": "List", "items": vec![pod; 10_000]}).to_string();
    assert!(list.len() > 10_000_000);
    let facts = pods::parse_pods(&list).unwrap();
    assert_eq!((facts.pod_count, facts.ready_pods), (10_000, 10_000));
    let deep = "[".repeat(100_000);
    assert!(pods::parse_pods(&deep).is_err());
}
