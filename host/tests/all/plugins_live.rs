//! Every plugin through the real host (the `triage` binary, a small runbook per plugin under
//! tests/data/plugins/), on real data: live wherever this machine can serve it — an Envoy
//! admin API and a Kubernetes API server on loopback answering with real dumps and objects,
//! the real `ps`, `stat`, resolver, TCP stack, `kubectl` and `ip6tables` — and from bundles
//! for what only Google can answer (the metadata server, gcloud).

use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/real");

/// The version string the guide shows everywhere (guest attribute, `--version`, /server_info).
const GUIDE_VERSION: &str =
    "dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL";

fn real(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(REAL).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn plugin_data(plugin: &str, file: &str) -> Vec<u8> {
    std::fs::read(
        root()
            .join("plugins")
            .join(plugin)
            .join("tests/data")
            .join(file),
    )
    .unwrap()
}

fn runbook(name: &str) -> PathBuf {
    data(&format!("plugins/{name}.yaml"))
}

/// `triage run RUNBOOK --format json --facts`.
fn run_runbook(name: &str) -> Command {
    let mut cmd = triage();
    cmd.arg("run")
        .arg(runbook(name))
        .args(["--format", "json", "--facts"]);
    cmd
}

/// Runs it, insists on the exit code, returns the report.
fn report(cmd: &mut Command, code: i32) -> Value {
    let out = run(cmd);
    assert_eq!(
        out.code, code,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.json()
}

/// The facts of a step that ran (passed or failed, not errored or skipped).
fn facts<'a>(report: &'a Value, id: &str) -> &'a Value {
    let s = step(report, id);
    assert!(
        s["status"] == "passed" || s["status"] == "failed",
        "{id} did not run: {s:#}"
    );
    &s["output"]
}

/// A tiny HTTP/1.1 server on loopback: fixed answers by request target (path and query) or
/// else by path, 404 otherwise; one connection per request. It records every request line.
pub(super) struct Loopback {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

/// A body and its content type.
pub(super) type Answer = (&'static str, Vec<u8>);

impl Loopback {
    pub(super) fn start(routes: BTreeMap<String, Answer>) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let (thread_log, thread_stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (routes, log) = (routes.clone(), thread_log.clone());
                std::thread::spawn(move || answer(conn, &routes, &log));
            }
        });
        Loopback { port, log, stop }
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads a GET request's head from `conn` (request line, then headers up to the empty line;
/// a GET has no body) and returns its target, `/path?query`; None when nothing could be read.
pub(super) fn read_get_target(conn: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    Some(
        request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string(),
    )
}

fn answer(conn: TcpStream, routes: &BTreeMap<String, Answer>, log: &Mutex<Vec<String>>) {
    let Some(target) = read_get_target(&conn) else {
        return;
    };
    log.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    let (status, (content_type, body)) = match routes.get(&target).or_else(|| routes.get(path)) {
        Some(found) => ("200 OK", found.clone()),
        None => (
            "404 Not Found",
            (
                "application/json",
                br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}"#.to_vec(),
            ),
        ),
    };
    let mut conn = &conn;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

pub(super) fn json_answer(value: &Value) -> Answer {
    ("application/json", value.to_string().into_bytes())
}

// ---------------------------------------------------------------------------------------
// config-dump: an Envoy admin API on loopback serving real dumps

/// Envoy's admin endpoints, answered with the real Istio 1.6 productpage sidecar dump, the
/// real Istio `/clusters?format=json` output, and a /server_info with the guide's version.
fn envoy_admin() -> Loopback {
    let server_info = json!({
        "version": GUIDE_VERSION,
        "state": "LIVE",
        "hot_restart_version": "disabled",
        "command_line_options": {
            "base_id": "0",
            "concurrency": 2,
            "config_path": "/etc/envoy/envoy.yaml",
            "log_level": "info",
            "service_node": "projects/123456789012/networks/default/nodes/5f4dcc3b-td-vm-1",
            "mode": "Serve"
        },
        "uptime_current_epoch": "7205s",
        "uptime_all_epochs": "7205s",
        "node": {
            "id": "projects/123456789012/networks/default/nodes/5f4dcc3b-td-vm-1",
            "cluster": "cluster",
            "metadata": {"TRAFFICDIRECTOR_NETWORK_NAME": "default"}
        }
    });
    let mut routes = BTreeMap::new();
    routes.insert(
        "/config_dump".to_string(),
        (
            "application/json",
            real("envoy-config-dump/istio-1.6-bookinfo-productpage-sidecar.config_dump.json"),
        ),
    );
    routes.insert(
        "/clusters?format=json".to_string(),
        (
            "application/json",
            real("envoy-admin/istio-sidecar-clusters-format-json-camelcase.json"),
        ),
    );
    routes.insert("/server_info".to_string(), json_answer(&server_info));
    Loopback::start(routes)
}

fn config_dump_run(admin_url: &str) -> Command {
    let mut cmd = run_runbook("config-dump");
    cmd.args(["--input", &format!("admin_url={admin_url}")]);
    cmd
}

#[test]
fn config_dump_reads_a_live_admin_api() {
    let admin = envoy_admin();
    // Port 8080 is served by nothing in the sidecar's dump: a warning, so exit 0.
    let report = report(&mut config_dump_run(&admin.url()), 0);
    assert_eq!(
        finding_ids(&report),
        [
            "envoy-version",
            "inbound-listener-missing",
            "endpoints-mostly-unhealthy"
        ],
        "{report:#}"
    );

    let info = facts(&report, "server-info");
    assert_eq!(info["version"], GUIDE_VERSION);
    assert_eq!(info["version_number"], "1.15.1");
    assert_eq!(info["meets_minimum"], true);
    assert_eq!(info["state"], "LIVE");
    assert_eq!(info["uptime_seconds"], 7205);
    assert_eq!(
        info["node_id"],
        "projects/123456789012/networks/default/nodes/5f4dcc3b-td-vm-1"
    );
    assert_eq!(report["findings"][0]["title"], "Envoy 1.15.1 (LIVE)");

    let config = facts(&report, "config");
    let counts = [
        "dynamic_listener_count",
        "static_listener_count",
        "warming_listener_count",
        "dynamic_cluster_count",
        "static_cluster_count",
        "dynamic_route_count",
    ]
    .map(|k| config[k].as_u64().unwrap());
    assert_eq!(counts, [51, 1, 0, 80, 3, 26]);
    assert_eq!(config["has_dynamic_resources"], true);
    assert_eq!(config["listeners"].as_array().unwrap().len(), 52);
    let inbound = config["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "virtualInbound")
        .expect("the virtualInbound listener");
    assert_eq!(
        (&inbound["address"], &inbound["port"]),
        (&json!("0.0.0.0"), &json!(15006))
    );
    // 9080 from its HTTP route (inbound|9080|…), 15020 from its TCP chain's cluster
    // (inbound|15020|mgmt-15020|mgmtCluster): TCP inbound chains count too (issue 10 §4 c).
    assert_eq!(config["inbound_listener_ports"], json!([9080, 15020]));
    assert_eq!(config["inbound_listener_missing_ports"], json!([8080]));
    assert_eq!(
        config["bootstrap"]["xds_server"],
        "istio-pilot.istio-system:15010"
    );

    let clusters = facts(&report, "clusters");
    let counts = [
        "cluster_count",
        "host_count",
        "healthy_host_count",
        "unhealthy_host_count",
    ]
    .map(|k| clusters[k].as_u64().unwrap());
    assert_eq!(counts, [7, 9, 7, 2]);
    assert_eq!(
        clusters["mostly_unhealthy"],
        json!(["outbound|15014||istio-policy.istio-system.svc.cluster.local"])
    );

    // Each action made its one request, through the http capability; `config` first asks
    // the version (1.15.1: older than the filtered dumps of issue 14, so the whole dump).
    let mut requests = admin.requests();
    requests.sort();
    assert_eq!(
        requests,
        [
            "/clusters?format=json",
            "/config_dump",
            "/server_info",
            "/server_info"
        ]
    );
    let caps = &step(&report, "config")["capabilities"];
    assert!(
        caps[0]["request"]
            .as_str()
            .unwrap()
            .ends_with("/server_info"),
        "{caps:#}"
    );
    let cap = &caps[1];
    assert_eq!(cap["capability"], "http");
    assert_eq!(cap["outcome"], "ok");
    assert!(
        cap["request"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}/config_dump", admin.url())),
        "{cap:#}"
    );
}

/// A report without what differs from one run to the next: times, the target's name.
fn without_run_details(mut value: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("duration_ms");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let map = value.as_object_mut().unwrap();
    map.remove("started_at");
    map.remove("target");
    strip(&mut value);
    value
}

#[test]
fn config_dump_live_run_recorded_then_replayed() {
    let admin = envoy_admin();
    let url = admin.url();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("envoy-admin");
    let live = report(config_dump_run(&url).arg("--record").arg(&bundle), 0);
    assert_eq!(admin.requests().len(), 4);
    // The bundle alone answers: the server is gone.
    drop(admin);

    let replay = report(config_dump_run(&url).arg("--bundle").arg(&bundle), 0);
    assert!(
        replay["target"].as_str().unwrap().starts_with("bundle:"),
        "{}",
        replay["target"]
    );
    assert_eq!(without_run_details(replay), without_run_details(live));

    // Another admin endpoint is another call, which the bundle does not hold.
    let other = run(config_dump_run("http://127.0.0.1:9")
        .arg("--bundle")
        .arg(&bundle));
    assert_eq!(other.code, 3, "{}", other.stderr);
    let reason = step(&other.json(), "config")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("not captured"), "{reason}");
}

// ---------------------------------------------------------------------------------------
// kubectl: the real kubectl against a Kubernetes API server on loopback

pub(super) fn kubectl_present() -> bool {
    let found = Command::new("kubectl")
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

/// Every YAML document of a real fixture, as the JSON the API server sends.
fn yaml_objects(rel: &str) -> Vec<Value> {
    use serde::Deserialize;
    let text = String::from_utf8(real(rel)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// A `…List` as the API server answers a list request.
fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": "123456"},
        "items": items,
    })
}

fn items_of(file: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&plugin_data("kubectl", file)).unwrap();
    doc["items"].as_array().unwrap().clone()
}

/// The discovery documents kubectl asks for before a `get` (found by logging its requests:
/// /version, /api, /apis, then each group version's resource list), and the objects.
fn kubernetes_api() -> Loopback {
    let resource = |name: &str, kind: &str, namespaced: bool| {
        json!({
            "name": name,
            "singularName": kind.to_lowercase(),
            "namespaced": namespaced,
            "kind": kind,
            "verbs": ["get", "list", "watch"],
        })
    };
    let group = |name: &str| {
        let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
        json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
    };
    let mut api = BTreeMap::new();
    api.insert(
        "/version".to_string(),
        json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}),
    );
    api.insert(
        "/api".to_string(),
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.2:443"}]}),
    );
    api.insert(
        "/apis".to_string(),
        json!({"kind": "APIGroupList", "apiVersion": "v1",
               "groups": [group("apps"), group("admissionregistration.k8s.io")]}),
    );
    api.insert(
        "/api/v1".to_string(),
        json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            resource("pods", "Pod", true),
            resource("events", "Event", true),
            resource("configmaps", "ConfigMap", true),
        ]}),
    );
    api.insert(
        "/apis/apps/v1".to_string(),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            resource("deployments", "Deployment", true),
            resource("replicasets", "ReplicaSet", true),
        ]}),
    );
    api.insert(
        "/apis/admissionregistration.k8s.io/v1".to_string(),
        json!({"kind": "APIResourceList", "apiVersion": "v1",
               "groupVersion": "admissionregistration.k8s.io/v1", "resources": [
            resource("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", false),
        ]}),
    );

    // The guide's GKE scenario (the plugin's test data): busybox with Traffic Director's
    // sidecar, one pod crash-looping, the deployment at 0/1, the webhook timeout event.
    api.insert(
        "/api/v1/namespaces/default/pods".to_string(),
        list("PodList", "v1", items_of("pods-busybox-td-injected.json")),
    );
    let deployment: Value =
        serde_json::from_slice(&plugin_data("kubectl", "deployment-busybox-0-of-1.json")).unwrap();
    api.insert(
        "/apis/apps/v1/namespaces/default/deployments".to_string(),
        list("DeploymentList", "apps/v1", vec![deployment]),
    );
    api.insert(
        "/api/v1/namespaces/default/events".to_string(),
        list("EventList", "v1", items_of("events-webhook-timeout.json")),
    );
    api.insert(
        "/api/v1/namespaces/istio-control/configmaps/istio-sidecar-injector".to_string(),
        serde_json::from_slice(&plugin_data(
            "kubectl",
            "configmap-td-sidecar-injector.json",
        ))
        .unwrap(),
    );
    api.insert(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations".to_string(),
        list(
            "MutatingWebhookConfigurationList",
            "admissionregistration.k8s.io/v1",
            items_of("mutatingwebhookconfigurations-td.json"),
        ),
    );

    // Real objects (fixtures/real/kubectl): Istio's analyzer pods, by namespace; the
    // pod Istio's native-sidecar Deployment creates; Istio 1.3.1's injector ConfigMap.
    let mut by_namespace: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pod in yaml_objects("kubectl/istio-analyzer-pods-with-istio-proxy-mismatched-sidecar.yaml")
        .into_iter()
        .filter(|o| o["kind"] == "Pod")
    {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        by_namespace.entry(ns).or_default().push(pod);
    }
    for (ns, pods) in by_namespace {
        if ns != "default" {
            api.insert(
                format!("/api/v1/namespaces/{ns}/pods"),
                list("PodList", "v1", pods),
            );
        }
    }
    let native = yaml_objects(
        "kubectl/istio-injected-deployment-native-sidecar-istio-proxy-initcontainer.yaml",
    )
    .into_iter()
    .find(|o| o["kind"] == "Deployment")
    .unwrap();
    let template = &native["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("hello-7d9f8c6b5-x2x9z");
    metadata["namespace"] = json!("native");
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]});
    api.insert(
        "/api/v1/namespaces/native/pods".to_string(),
        list("PodList", "v1", vec![pod]),
    );
    let istio_configmap =
        yaml_objects("kubectl/istio-1.3.1-sidecar-injector-configmap-discoveryAddress.yaml")
            .into_iter()
            .find(|o| o["kind"] == "ConfigMap")
            .unwrap();
    api.insert(
        "/api/v1/namespaces/istio-system/configmaps/istio-sidecar-injector".to_string(),
        istio_configmap,
    );

    // `kubectl logs` reads the pod, then its log (the Istio-format sidecar log the guide's
    // lines were written into, from the envoy-logs plugin's test data).
    let crashing = items_of("pods-busybox-td-injected.json")[1].clone();
    let pod_path = format!(
        "/api/v1/namespaces/default/pods/{}",
        crashing["metadata"]["name"].as_str().unwrap()
    );
    api.insert(pod_path.clone(), crashing);
    let mut routes: BTreeMap<String, Answer> = api
        .iter()
        .map(|(k, v)| (k.clone(), json_answer(v)))
        .collect();
    routes.insert(
        format!("{pod_path}/log"),
        (
            "text/plain",
            plugin_data("envoy-logs", "gke-td-sidecar-istio-format.kubectl-logs.txt"),
        ),
    );
    Loopback::start(routes)
}

#[test]
fn kubectl_live_against_a_loopback_api_server() {
    if !kubectl_present() {
        return;
    }
    let server = kubernetes_api();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: loopback\n  cluster: {{server: \"{}\"}}\n\
             contexts:\n- name: loopback\n  context: {{cluster: loopback, user: nobody}}\n\
             current-context: loopback\nusers:\n- name: nobody\n  user: {{}}\n",
            server.url()
        ),
    )
    .unwrap();
    // The environment passes through the local target to kubectl; the discovery cache goes
    // to the temporary directory, not ~/.kube.
    let report = report(
        run_runbook("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .env("KUBECACHEDIR", dir.path().join("cache")),
        1,
    );
    let requests = server.requests();
    assert_eq!(
        finding_ids(&report),
        ["injector-webhook-unreachable"],
        "{report:#}\nrequests: {requests:#?}"
    );

    let pods = facts(&report, "pods");
    let counts = ["pod_count", "ready_pods", "sidecar_pods"].map(|k| pods[k].as_u64().unwrap());
    assert_eq!(counts, [2, 1, 2]);
    let good = &pods["pods"][0];
    assert_eq!(
        (&good["ready"], &good["phase"]),
        (&json!("2/2"), &json!("Running"))
    );
    assert_eq!(good["sidecar"]["kind"], "container");
    assert_eq!(
        good["sidecar"]["discovery_address_is_traffic_director"],
        true
    );
    assert_eq!(good["exclude_outbound_ports"], json!([3306]));
    let bad = &pods["pods"][1];
    assert_eq!(bad["ready"], "1/2");
    assert_eq!(
        bad["sidecar"]["discovery_address"],
        "istio-pilot.istio-system:15010"
    );

    let native = &facts(&report, "native-sidecar-pods")["pods"][0];
    assert_eq!(native["sidecar"]["kind"], "native-sidecar");
    assert_eq!(native["sidecar"]["name"], "istio-proxy");
    assert_eq!(native["container_count"], 2);
    // Istio's analyzer pods carry no status: nothing is ready, every pod has the proxy.
    let istio = facts(&report, "istio-pods");
    let counts = ["pod_count", "ready_pods", "sidecar_pods"].map(|k| istio[k].as_u64().unwrap());
    assert_eq!(counts, [7, 0, 7]);
    let kinds: Vec<&str> = istio["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sidecar"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "container").count(), 6);
    assert_eq!(kinds.iter().filter(|k| **k == "init-container").count(), 1);
    let init = facts(&report, "init-container-pods");
    assert_eq!(init["pod_count"], 1);
    let pod = &init["pods"][0];
    assert_eq!(pod["name"], "details-v1-pod-old-native");
    assert_eq!(pod["sidecar"]["kind"], "init-container");
    assert_eq!(
        pod["sidecar"]["image"],
        "registry.istio.io/release/proxyv2:1.3.0"
    );

    let deployments = facts(&report, "deployments");
    assert_eq!(deployments["not_ready"], json!(["busybox"]));
    assert_eq!(deployments["items"][0]["ready"], "0/1");
    assert_eq!(
        deployments["webhook_failures"][0]["service_namespace"],
        "istio-control"
    );
    assert!(
        requests.iter().any(
            |r| r.starts_with("/apis/apps/v1/namespaces/default/deployments?")
                && r.contains("labelSelector=app%3Dbusybox")
        ),
        "the selector reached the API server: {requests:#?}"
    );

    let events = facts(&report, "events");
    assert_eq!(
        (&events["event_count"], &events["warning_count"]),
        (&json!(3), &json!(2))
    );
    let failure = &events["webhook_failures"][0];
    assert_eq!(failure["webhook"], "sidecar-injector.istio.io");
    assert_eq!(
        failure["url"],
        "https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s"
    );
    assert_eq!(failure["timeout"], true);
    assert_eq!(failure["object"], "ReplicaSet/busybox-6b8b7c6c9f");
    assert_eq!(
        report["findings"][0]["title"],
        "The API server could not call sidecar-injector.istio.io"
    );

    let configmap = facts(&report, "configmap");
    assert_eq!(configmap["injector"], "traffic-director");
    assert_eq!(
        configmap["discovery_address"],
        "trafficdirector.googleapis.com:443"
    );
    assert_eq!(
        (&configmap["network"], &configmap["project"]),
        (&json!("td-vpc"), &json!("798832730858"))
    );
    let istio = facts(&report, "istio-configmap");
    assert_eq!(istio["injector"], "istio");
    assert_eq!(istio["discovery_address_templated"], true);

    let webhooks = facts(&report, "webhooks");
    assert_eq!(webhooks["injectors"], json!(["traffic-director"]));
    assert_eq!(webhooks["traffic_director_injector_active"], true);
    assert_eq!(webhooks["istio_injector_active"], false);

    let lines = facts(&report, "proxy-log");
    assert_eq!(lines["line_count"], 6);
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/log?") && r.contains("container=istio-proxy")),
        "{requests:#?}"
    );
    let scan = facts(&report, "proxy-log-scan");
    assert_eq!(
        (&scan["found"], &scan["source"]),
        (&json!(true), &json!("kubectl"))
    );
    assert_eq!(
        scan["matches"]["td-config-not-found"]["networks"],
        json!(["gke-vpc"])
    );
    assert_eq!(
        scan["kinds"],
        json!([
            "access-log-permission-denied",
            "td-config-not-found",
            "td-entity-not-found",
            "xds-stream-closed"
        ])
    );
    assert_eq!(
        step(&report, "proxy-log-scan")["capabilities"][0]["request"],
        "kubectl logs -n default -c istio-proxy --tail 50 -- busybox-6b8b7c6c9f-q9w7d"
    );

    // The real kubectl ran: the step names the command, and it did API discovery first.
    let cap = &step(&report, "webhooks")["capabilities"][0];
    assert_eq!(
        cap["request"],
        "kubectl get mutatingwebhookconfigurations -o json"
    );
    assert!(
        requests.iter().any(|r| r.starts_with("/api/v1?")),
        "{requests:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// host: the real ps, stat, resolver and TCP stack

#[test]
fn host_facts_of_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    // A process whose executable is called envoy: a copy of sleep.
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir(&proc_dir).unwrap();
    let sleeper = proc_dir.join("envoy");
    std::fs::copy("/bin/sleep", &sleeper).unwrap();
    let mut envoy = Command::new(&sleeper).arg("60").spawn().unwrap();
    // An envoy binary that prints the guide's --version line.
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let version_bin = bin_dir.join("envoy");
    std::fs::write(
        &version_bin,
        format!("#!/bin/sh\necho\necho \"$0  version: {GUIDE_VERSION}\"\n"),
    )
    .unwrap();
    // A file to stat, with a mode to recognise.
    let stat_path = dir.path().join("access.log");
    std::fs::write(&stat_path, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&version_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&stat_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Exactly what the runbook's steps run, and nothing else: the built-in policy's `ps` and
    // `stat` entries, this test's Envoy binary by its absolute path (a policy names the
    // program it allows), and this machine's loopback for DNS and TCP.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "defaults: false\nallow:\n  exec:\n    - [ps, -eo, \"pid=,uid=,user=,args=\"]\n    - [\"{}\", --version]\n    - [stat, -c, \"%U|%u|%G|%g|%a|%F\", --, \"*\"]\n  resolve: [localhost]\n  connect: [\"127.0.0.1:*\"]\n",
            version_bin.display()
        ),
    )
    .unwrap();

    let mut cmd = triage();
    cmd.arg("--policy")
        .arg(&policy)
        .arg("run")
        .arg(runbook("host"))
        .args(["--format", "json", "--facts"])
        .arg("--input")
        .arg(format!("envoy_binary={}", version_bin.display()))
        .arg("--input")
        .arg(format!("stat_path={}", stat_path.display()))
        .args([
            "--input",
            &format!("open_port={}", open.local_addr().unwrap().port()),
        ])
        .args(["--input", &format!("closed_port={closed_port}")]);
    let out = run(&mut cmd);
    let _ = envoy.kill();
    let _ = envoy.wait();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert!(finding_ids(&report).is_empty(), "{report:#}");

    let ps = facts(&report, "processes");
    assert_eq!(ps["envoy_running"], true);
    let uid = current_uid();
    let ours = ps["envoy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == envoy.id())
        .unwrap_or_else(|| panic!("pid {} not among {ps:#}", envoy.id()));
    assert_eq!(ours["uid"], uid);
    assert!(
        ours["args"].as_str().unwrap().ends_with("envoy 60"),
        "{ours:#}"
    );
    assert!(ps["process_count"].as_u64().unwrap() > 1);

    let version = facts(&report, "envoy-version");
    assert_eq!(version["found"], true);
    assert_eq!(version["build_version"], GUIDE_VERSION);
    assert_eq!(version["version_number"], "1.15.1");
    assert_eq!(version["meets_minimum"], true);

    let stat = facts(&report, "file-stat");
    assert_eq!(stat["exists"], true);
    assert_eq!(stat["mode"], "640");
    assert_eq!(stat["kind"], "regular empty file");
    assert_eq!(stat["uid"], uid);
    assert_eq!(
        stat["writable_by"],
        json!({"owner": true, "group": false, "others": false})
    );
    // UID 1337 is not the owner (unless the test runs as it) and the others bit is off.
    if uid != 1337 && uid != 0 {
        assert_eq!(stat["writable_by_user"], false);
    }

    let dns = facts(&report, "dns");
    assert_eq!(dns["resolved"], true);
    assert!(
        dns["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "127.0.0.1" || a == "::1"),
        "{dns:#}"
    );

    assert_eq!(facts(&report, "tcp-open")["reachable"], true);
    let closed = facts(&report, "tcp-closed");
    assert_eq!(closed["reachable"], false);
    assert_eq!(closed["timed_out"], false);
    assert!(
        closed["error"].as_str().unwrap().contains("refused"),
        "{closed:#}"
    );
}

/// This process's uid, from `id -u` (no libc call needed).
fn current_uid() -> u64 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// envoy-logs: a log file on disk

#[test]
fn envoy_logs_reads_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("envoy.err.log");
    // The guide's error lines, in Envoy's default log format.
    std::fs::write(
        &log,
        "[2021-01-12 11:39:13.114][12][info][main] [source/server/server.cc:656] starting main dispatch loop\n\
         [2021-01-12 11:39:14.399][12][warning][config] [source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 5, Traffic Director configuration was not found for network \"my-network\" in project \"123456789012\".\n\
         [2021-01-12 11:39:14.401][12][warning][upstream] [source/common/upstream/load_stats_reporter.cc:182] StreamLoadStats gRPC config stream closed: 5, Traffic Director configuration was not found for network \"my-network\" in project \"123456789012\".\n\
         [2021-01-12 11:40:02.118][12][warning][config] [source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 5, Requested entity was not found.\n\
         [2021-01-12 12:02:41.002][12][warning][config] [source/common/config/grpc_subscription_impl.cc:101] gRPC config for type.googleapis.com/envoy.api.v2.Listener rejected: Error adding/updating listener(s) TRAFFICDIRECTOR_INTERCEPTION_PORT: unable to open file '/var/log/envoy.log': Permission denied\n\
         [2021-01-12 12:05:09.771][12][warning][config] [source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 14, upstream connect error or disconnect/reset before headers. reset reason: connection failure\n",
    )
    .unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!("allow:\n  read_file: [\"{}/**\"]\n", dir.path().display()),
    )
    .unwrap();

    let mut cmd = triage();
    cmd.arg("--policy")
        .arg(&policy)
        .arg("run")
        .arg(runbook("envoy-logs"))
        .args(["--format", "json", "--facts", "--input"])
        .arg(format!("log_path={}", log.display()));
    let report = report(&mut cmd, 1);
    assert_eq!(
        finding_ids(&report),
        ["td-config-not-found", "access-log-permission-denied"]
    );
    assert_eq!(
        report["findings"][0]["title"],
        "Traffic Director has no configuration for network my-network"
    );
    assert_eq!(
        report["findings"][1]["title"],
        "Envoy cannot open /var/log/envoy.log"
    );

    let log_facts = facts(&report, "log");
    assert_eq!(log_facts["found"], true);
    assert_eq!(log_facts["truncated"], false);
    assert_eq!(log_facts["line_count"], 6);
    assert_eq!(
        log_facts["kinds"],
        json!([
            "access-log-permission-denied",
            "td-config-not-found",
            "td-entity-not-found",
            "xds-stream-closed",
            "xds-stream-unavailable"
        ])
    );
    let m = &log_facts["matches"];
    assert_eq!(m["td-config-not-found"]["count"], 2);
    assert_eq!(
        m["td-config-not-found"]["projects"],
        json!(["123456789012"])
    );
    assert_eq!(
        m["td-config-not-found"]["streams"],
        json!(["StreamAggregatedResources", "StreamLoadStats"])
    );
    assert_eq!(
        m["td-config-not-found"]["first_timestamp"],
        "2021-01-12 11:39:14.399"
    );
    assert_eq!(m["td-entity-not-found"]["count"], 1);
    assert_eq!(
        m["access-log-permission-denied"]["listeners"],
        json!(["TRAFFICDIRECTOR_INTERCEPTION_PORT"])
    );
    assert_eq!(m["xds-stream-unavailable"]["count"], 1);

    // Without the policy the path is refused, and the refusal says what to add.
    let mut cmd = run_runbook("envoy-logs");
    cmd.arg("--input")
        .arg(format!("log_path={}", log.display()));
    let denied = run(&mut cmd).json();
    let reason = step(&denied, "log")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("read_file"), "{reason}");
    assert!(reason.contains("not allowed by the policy"), "{reason}");
}

// ---------------------------------------------------------------------------------------
// guest-attrs and gcloud: nothing here can serve metadata.google.internal or answer for a
// real gcloud, so they run through the host on bundles written from the guide and from the
// plugins' test data (gcloud's REST shapes).

#[test]
fn guest_attrs_from_a_written_bundle() {
    let report = report(
        run_runbook("guest-attrs")
            .arg("--bundle")
            .arg(data("plugins/guest-attrs-vm")),
        1,
    );
    assert_eq!(
        finding_ids(&report),
        ["agent-heartbeat-stale", "bootstrap-failed"]
    );

    let metadata = facts(&report, "metadata");
    assert_eq!(metadata["bootstrap_status"], "FINISHED");
    assert_eq!(metadata["bootstrap_finished"], true);
    assert_eq!(metadata["bootstrap_last_failure"], Value::Null);
    assert_eq!(metadata["agent_last_failure"], Value::Null);
    assert_eq!(metadata["proxy_version"], GUIDE_VERSION);
    assert_eq!(metadata["proxy_version_number"], "1.15.1");
    // `now` is the recording's time, ten minutes after the heartbeat.
    assert_eq!(metadata["now"], 1610452154);
    assert_eq!(metadata["agent_heartbeat_age_seconds"], 600);
    assert_eq!(metadata["agent_heartbeat_stale"], true);
    let keys: Vec<&String> = metadata["attributes"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["agent-heartbeat", "bootstrap-status", "proxy-version"]
    );
    // Each key was its own GET; the absent ones were 404s, not errors.
    let caps = step(&report, "metadata")["capabilities"]
        .as_array()
        .unwrap();
    assert_eq!(caps.len(), 5);
    assert!(caps.iter().all(|c| c["outcome"] == "ok"), "{caps:#?}");

    let gcloud = facts(&report, "gcloud");
    assert_eq!(gcloud["bootstrap_status"], "FAILED");
    assert_eq!(gcloud["bootstrap_finished"], false);
    assert!(
        gcloud["bootstrap_last_failure"]
            .as_str()
            .unwrap()
            .contains("Module ip6_tables not found")
    );
    assert_eq!(gcloud["agent_heartbeat_stale"], Value::Null);
    assert_eq!(
        report["findings"][1]["evidence"],
        gcloud["bootstrap_last_failure"]
    );
}

#[test]
fn gcloud_from_a_bundle_of_its_json() {
    use triage::target::bundle::{BUNDLE_FILE, BundleFile, RecordedCall};
    let dir = tempfile::tempdir().unwrap();
    let answer = |argv: &[&str], file: &str| RecordedCall {
        exec: Some(argv.iter().map(|a| a.to_string()).collect()),
        status: Some(0),
        stdout: Some(String::from_utf8(plugin_data("gcloud", file)).unwrap()),
        ..Default::default()
    };
    let bundle = BundleFile {
        target: Some("a workstation with gcloud (written from the plugin's test data)".into()),
        recorded_at: None,
        identity: None,
        redacted: Vec::new(),
        calls: vec![
            answer(
                &[
                    "gcloud",
                    "compute",
                    "forwarding-rules",
                    "list",
                    "--format=json",
                ],
                "forwarding-rules.json",
            ),
            answer(
                &[
                    "gcloud",
                    "compute",
                    "instances",
                    "describe",
                    "--zone",
                    "us-central1-a",
                    "--format=json",
                    "--",
                    "td-vm-1",
                ],
                "instance-service-proxy-cloud-platform.json",
            ),
        ],
    };
    std::fs::write(
        dir.path().join(BUNDLE_FILE),
        serde_yaml::to_string(&bundle).unwrap(),
    )
    .unwrap();

    let report = report(run_runbook("gcloud").arg("--bundle").arg(dir.path()), 0);
    assert!(finding_ids(&report).is_empty(), "{report:#}");

    let rules = facts(&report, "forwarding-rules");
    assert_eq!(rules["count"], 4);
    assert_eq!(
        rules["self_managed"],
        json!(["td-gke-forwarding-rule", "td-vm-forwarding-rule"])
    );
    assert_eq!(rules["self_managed_networks"], json!(["td-vpc"]));
    assert_eq!(rules["has_self_managed_rule_in_network"], true);

    let vm = facts(&report, "instance");
    assert_eq!(vm["name"], "td-vm-1");
    assert_eq!(vm["has_cloud_platform_scope"], true);
    assert_eq!(
        (&vm["network"], &vm["zone"]),
        (&json!("td-vpc"), &json!("us-central1-a"))
    );
    let proxy = &vm["service_proxy"];
    assert_eq!(proxy["valid_json"], true);
    assert_eq!(proxy["network"], "td-vpc");
    assert_eq!(proxy["proxy_port"], 15001);
    assert_eq!(proxy["serving_ports"], json!([80, 8080]));
}

// ---------------------------------------------------------------------------------------
// iptables: ip6tables in a network namespace

#[test]
fn ip6tables_is_usable_in_a_network_namespace() {
    let Some(ns) = super::netns::Netns::create("ip6") else {
        return;
    };
    let out = ns.triage(&[
        "run",
        runbook("iptables").to_str().unwrap(),
        "--format",
        "json",
        "--facts",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert!(finding_ids(&report).is_empty(), "{report:#}");
    let ip6 = facts(&report, "ip6tables");
    assert_eq!(ip6["usable"], true, "{ip6:#}");
    assert_eq!(ip6["status"], 0);
    assert_eq!(ip6["reason"], Value::Null);
    // A fresh namespace has the nat table's policies and no rules.
    assert_eq!(ip6["rule_count"], 0);
    // The step also reads /proc/sys/net/ipv6/conf/all/disable_ipv6 (IPv6 off in the kernel).
    let requests: Vec<&str> = step(&report, "ip6tables")["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["request"].as_str())
        .collect();
    assert_eq!(
        requests
            .iter()
            .find(|r| r.starts_with("ip6tables"))
            .copied(),
        Some("ip6tables -t nat -S"),
        "{requests:?}"
    );
}

/// `envoy-uptime` on this machine, under the built-in policy: a process named envoy that
/// has just started is seen with a few seconds of uptime, the machine's uptime is the one
/// /proc/uptime holds, so Envoy "started after boot" by nearly all of it.
#[test]
fn envoy_uptime_of_a_just_started_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let sleeper = dir.path().join("envoy");
    std::fs::copy("/bin/sleep", &sleeper).unwrap();
    let mut envoy = Command::new(&sleeper).arg("60").spawn().unwrap();
    let out = run(triage().args(["probe", "host", "envoy-uptime"]));
    let _ = envoy.kill();
    let _ = envoy.wait();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let facts = &out.json()["facts"];
    let ours = facts["envoy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == envoy.id())
        .unwrap_or_else(|| panic!("pid {} not among {facts:#}", envoy.id()))
        .clone();
    assert!(ours["elapsed_seconds"].as_u64().unwrap() < 30, "{ours:#}");
    let machine: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let seen = facts["machine_uptime_seconds"].as_u64().unwrap() as f64;
    assert!((machine - seen).abs() < 30.0, "{seen} vs {machine}");
    assert!(
        facts["envoy_uptime_seconds"].as_u64().unwrap() < 30,
        "{facts:#}"
    );
}
