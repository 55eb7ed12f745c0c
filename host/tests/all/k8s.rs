//! The Kubernetes examples (examples/k8s): every manifest checked by the real kubectl
//! against Kubernetes' own schema, the sweep Job's command run here as its four pods would
//! run it, and the DaemonSet's capabilities tried on the real iptables.
//!
//! What kubectl's client-side validation checks: that each document's apiVersion and kind
//! are served, every field name at every depth (an unknown or misspelt field is refused),
//! every value's type (a string where an integer goes, a map where a list goes), required
//! fields, and duplicate keys. What it cannot check, and no test here does: what the API
//! server alone decides, such as values inside strings (a Quantity, an enum like
//! `restartPolicy`, an image that exists), rules across fields (backoffLimitPerIndex needs
//! completionMode Indexed, podFailurePolicy needs restartPolicy Never, a DaemonSet's
//! selector must match its template's labels), and admission (Pod Security: the
//! DaemonSet's namespace must allow privileged pods). The schema is Kubernetes 1.33's.

use super::fleet::{aggregate_of, targets_file};
use super::plugins_live::{Answer, Loopback, json_answer, kubectl_present};
use super::serve::{Server, TOKEN, client, rt};
use super::*;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

fn examples() -> PathBuf {
    root().join("examples/k8s")
}

/// Every manifest under examples/k8s.
fn manifests() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    found.sort();
    assert!(found.len() >= 2, "{found:?}");
    found
}

/// The YAML documents of a manifest, as JSON.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn object(file: &str, kind: &str) -> (Value, Vec<Value>) {
    let docs = documents(&examples().join(file));
    let found = docs
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {file}"))
        .clone();
    (found, docs)
}

/// The container named `name` of a workload's pod template.
fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

// ---------------------------------------------------------------------------------------
// (a) kubectl validates every manifest

/// Protocol-buffer encoding: the little of it an OpenAPI v2 document needs (varints and
/// length-delimited fields). kubectl downloads the schema it validates with only as
/// gnostic's `openapi.v2.Document` message, whatever a server offers; the field numbers
/// below are that message's (github.com/google/gnostic, openapiv2/OpenAPIv2.proto).
struct Proto(Vec<u8>);

impl Proto {
    fn new() -> Proto {
        Proto(Vec::new())
    }

    fn varint(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, field: u64, payload: &[u8]) -> &mut Self {
        self.varint(field << 3 | 2);
        self.varint(payload.len() as u64);
        self.0.extend_from_slice(payload);
        self
    }

    fn message(&mut self, field: u64, inner: Proto) -> &mut Self {
        self.bytes(field, &inner.0)
    }

    fn text(&mut self, field: u64, text: &str) -> &mut Self {
        self.bytes(field, text.as_bytes())
    }

    fn boolean(&mut self, field: u64, value: bool) -> &mut Self {
        self.varint(field << 3);
        self.varint(u64::from(value));
        self
    }
}

/// One JSON type out of the fixture's `["string", "null"]`.
fn single_type(t: &Value) -> &str {
    match t {
        Value::String(s) => s,
        Value::Array(types) => {
            let real: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            assert_eq!(real.len(), 1, "{t}");
            real[0]
        }
        other => panic!("type {other}"),
    }
}

/// A schema of the fixture as gnostic's `Schema` message. The fixture is the API server's
/// OpenAPI definitions rewritten as JSON Schema (openapi2jsonschema, as kubernetes-validate
/// ships them: fixtures/real/SOURCES.md); this undoes the rewriting: a nullable type
/// `[T, "null"]` is T again, `#/$defs/` refs are `#/definitions/`, and the two `oneOf`s the
/// rewriting makes are the OpenAPI originals (IntOrString is a string of format
/// int-or-string, Quantity a string).
fn schema(x: &Value) -> Proto {
    let mut p = Proto::new();
    if let Some(one_of) = x.get("oneOf") {
        let mut types: Vec<&str> = one_of
            .as_array()
            .unwrap()
            .iter()
            .map(|o| single_type(&o["type"]))
            .collect();
        types.sort();
        let (format, ty) = match types.as_slice() {
            ["integer", "string"] => (Some("int-or-string"), "string"),
            ["number", "string"] => (None, "string"),
            other => panic!("oneOf {other:?}"),
        };
        if let Some(format) = format {
            p.text(2, format);
        }
        let mut type_item = Proto::new();
        type_item.text(1, ty);
        p.message(22, type_item);
        return p;
    }
    if let Some(r) = x.get("$ref").and_then(Value::as_str) {
        p.text(1, &r.replace("#/$defs/", "#/definitions/"));
    }
    if let Some(format) = x.get("format").and_then(Value::as_str) {
        p.text(2, format);
    }
    for required in x
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        p.text(19, required.as_str().unwrap());
    }
    match x.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut item = Proto::new();
            item.boolean(2, *allowed);
            p.message(21, item);
        }
        Some(inner @ Value::Object(_)) => {
            let mut item = Proto::new();
            item.message(1, schema(inner));
            p.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = x.get("type") {
        let mut type_item = Proto::new();
        type_item.text(1, single_type(t));
        p.message(22, type_item);
    }
    if let Some(items) = x.get("items") {
        let mut item = Proto::new();
        item.message(1, schema(items));
        p.message(23, item);
    }
    for part in x
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        p.message(24, schema(part));
    }
    if let Some(props) = x.get("properties").and_then(Value::as_object) {
        let mut properties = Proto::new();
        for (name, value) in props {
            let mut named = Proto::new();
            named.text(1, name).message(2, schema(value));
            properties.message(1, named);
        }
        p.message(25, properties);
    }
    // The extension that ties a definition to its apiVersion and kind: kubectl finds a
    // document's schema by it. Its value is YAML, and JSON is YAML.
    if let Some(gvk) = x.get("x-kubernetes-group-version-kind") {
        let mut any = Proto::new();
        any.text(2, &gvk.to_string());
        let mut named = Proto::new();
        named
            .text(1, "x-kubernetes-group-version-kind")
            .message(2, any);
        p.message(31, named);
    }
    p
}

/// The OpenAPI v2 document of the fixture's definitions, with no paths: so kubectl finds
/// no sign that the server validates fields itself (`fieldValidation`) and validates on
/// the client; the stand-in server below never validates anything.
fn openapi_v2() -> Vec<u8> {
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(
            root().join("fixtures/real/kubernetes/openapi-v1.33.0-definitions-examples-k8s.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut definitions = Proto::new();
    for (name, def) in fixture["$defs"].as_object().unwrap() {
        let mut named = Proto::new();
        named.text(1, name).message(2, schema(def));
        definitions.message(1, named);
    }
    let mut info = Proto::new();
    info.text(1, "Kubernetes").text(2, "v1.33.0");
    let mut doc = Proto::new();
    doc.text(1, "2.0").message(2, info).message(9, definitions);
    doc.0
}

/// A stand-in for a Kubernetes API server: discovery (which kinds are served) and the
/// OpenAPI v2 schema. kubectl's `--dry-run=client` sends nothing else.
fn api_server() -> Loopback {
    let resources = |group_version: &str, list: &[(&str, &str, bool)]| {
        json_answer(&json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": list.iter().map(|(name, kind, namespaced)| json!({
                "name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                "verbs": ["create", "get", "list", "delete"]
            })).collect::<Vec<_>>()
        }))
    };
    let group = |name: &str| {
        json!({
            "name": name,
            "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
            "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}
        })
    };
    let mut routes: BTreeMap<String, Answer> = BTreeMap::new();
    routes.insert(
        "/api".into(),
        json_answer(&json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
    );
    routes.insert(
        "/apis".into(),
        json_answer(&json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [group("batch"), group("apps")]})),
    );
    routes.insert(
        "/api/v1".into(),
        resources(
            "v1",
            &[
                ("configmaps", "ConfigMap", true),
                ("secrets", "Secret", true),
                ("serviceaccounts", "ServiceAccount", true),
                ("namespaces", "Namespace", false),
            ],
        ),
    );
    routes.insert(
        "/apis/batch/v1".into(),
        resources("batch/v1", &[("jobs", "Job", true)]),
    );
    routes.insert(
        "/apis/apps/v1".into(),
        resources("apps/v1", &[("daemonsets", "DaemonSet", true)]),
    );
    // The type the API server gives it; kubectl refuses the Accept header's `@` form.
    routes.insert(
        "/openapi/v2".into(),
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            openapi_v2(),
        ),
    );
    Loopback::start(routes)
}

struct Kubectl {
    dir: tempfile::TempDir,
    _server: Loopback,
}

impl Kubectl {
    fn new() -> Kubectl {
        let server = api_server();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: loopback\n  cluster: {{server: \"{}\"}}\n\
                 contexts:\n- name: loopback\n  context: {{cluster: loopback, user: nobody}}\n\
                 current-context: loopback\nusers:\n- name: nobody\n  user: {{}}\n",
                server.url()
            ),
        )
        .unwrap();
        Kubectl {
            dir,
            _server: server,
        }
    }

    /// `kubectl create --dry-run=client --validate=strict -f FILE -o name`.
    fn validate(&self, file: &Path) -> Run {
        run(Command::new("kubectl")
            .args([
                "create",
                "--dry-run=client",
                "--validate=strict",
                "-o",
                "name",
                "-f",
            ])
            .arg(file)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.path().join("cache")))
    }
}

#[test]
fn kubectl_validates_every_manifest_against_the_kubernetes_schema() {
    if !kubectl_present() {
        return;
    }
    let kubectl = Kubectl::new();
    for manifest in manifests() {
        let out = kubectl.validate(&manifest);
        assert_eq!(
            out.code,
            0,
            "{}: {}{}",
            manifest.display(),
            out.stdout,
            out.stderr
        );
        // One name per document: each was read, mapped to a served kind and validated.
        let docs = documents(&manifest);
        assert_eq!(out.stdout.lines().count(), docs.len(), "{}", out.stdout);
        for doc in &docs {
            let name = doc["metadata"]["name"].as_str().unwrap();
            assert!(
                out.stdout.lines().any(|l| l.ends_with(&format!("/{name}"))),
                "{name}: {}",
                out.stdout
            );
        }
    }
}

#[test]
fn kubectl_refuses_a_misspelt_field_and_a_wrong_type_in_the_manifests() {
    // Proves the validation above ran: the same documents, each with one mistake, are
    // refused with the mistake named.
    if !kubectl_present() {
        return;
    }
    let kubectl = Kubectl::new();
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = object("sweep-job.yaml", "Job");
    let (daemonset, _) = object("node-daemonset.yaml", "DaemonSet");
    let mistakes: Vec<(&str, Value, &str)> = vec![
        (
            "job-misspelt",
            {
                let mut j = job.clone();
                let spec = j["spec"].as_object_mut().unwrap();
                let v = spec.remove("backoffLimitPerIndex").unwrap();
                spec.insert("backoffLimitPerIndx".into(), v);
                j
            },
            "unknown field \"backoffLimitPerIndx\"",
        ),
        (
            "job-wrong-type",
            {
                let mut j = job.clone();
                j["spec"]["parallelism"] = json!("four");
                j
            },
            "invalid type",
        ),
        (
            "daemonset-deep-misspelt",
            {
                let mut d = daemonset.clone();
                let caps = &mut d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"];
                caps["added"] = caps["add"].clone();
                d
            },
            "unknown field \"added\"",
        ),
        (
            "daemonset-wrong-type",
            {
                let mut d = daemonset.clone();
                d["spec"]["template"]["spec"]["hostNetwork"] = json!("yes");
                d
            },
            "invalid type",
        ),
    ];
    for (name, doc, expected) in mistakes {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = kubectl.validate(&file);
        assert_ne!(out.code, 0, "{name}: {}", out.stdout);
        assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// (b) the sweep Job's pods, run here

/// Environment variables the manifest sets to paths inside the pod (its volumes): here they
/// name this test's files instead. Everything else comes from the manifest as written.
const POD_PATHS: [&str; 4] = ["TARGETS", "TRIAGE_CACHE_DIR", "HOME", "TRIAGE_SSH_CONFIG"];

/// A shard's pod, as Kubernetes starts it: the container's command and args as the
/// manifest gives them, its literal env values, JOB_COMPLETION_INDEX, and `triage` first on
/// the PATH. A value the manifest takes from a ConfigMap, a Secret or the pod's labels is
/// `from_refs`' (as Kubernetes would resolve it), else unset (as an absent optional key
/// leaves it). Returns the exit code and what the pod's log would hold: stdout and stderr
/// in one stream.
fn run_pod(
    job: &Value,
    index: usize,
    targets: &Path,
    bin: &Path,
    from_refs: &[(&str, &str)],
) -> (i32, String) {
    let c = container(job, "triage");
    let argv: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["args"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    let template = triage();
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env_clear();
    for (name, value) in template.get_envs() {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    cmd.env(
        "PATH",
        format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display()),
    );
    let mut names = Vec::new();
    for var in c["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        names.push(name);
        if let Some(value) = var["value"].as_str()
            && !POD_PATHS.contains(&name)
        {
            cmd.env(name, value);
        }
        if let Some((_, value)) = from_refs.iter().find(|(n, _)| *n == name) {
            assert!(
                var["valueFrom"].is_object(),
                "{name} is not taken from a reference"
            );
            cmd.env(name, value);
        }
    }
    for (name, _) in from_refs {
        assert!(names.contains(name), "the manifest does not set {name}");
    }
    for path in POD_PATHS {
        assert!(names.contains(&path), "the manifest no longer sets {path}");
    }
    cmd.env("TARGETS", targets)
        .env("HOME", std::env::temp_dir())
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .current_dir(std::env::temp_dir());
    let (mut reader, writer) = std::io::pipe().unwrap();
    cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
    let mut child = cmd.spawn().unwrap();
    // The Command holds the pipe's writing ends until dropped: the read ends only when the
    // pod's processes and it have closed theirs.
    drop(cmd);
    let mut log = String::new();
    reader.read_to_string(&mut log).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), log)
}

/// The collection step of examples/k8s/README.md: `kubectl logs POD | grep '^{'` keeps the
/// jsonl lines of a pod's log and drops what triage wrote to stderr.
fn jsonl_of(log: &str) -> String {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A directory with `triage` in it: the binary the tests run, under the name the manifest
/// calls.
fn triage_on_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let program = triage().get_program().to_owned();
    std::os::unix::fs::symlink(program, bin.join("triage")).unwrap();
    bin
}

#[test]
fn the_jobs_four_pods_merged_give_the_aggregate_of_one_process() {
    let (job, docs) = object("sweep-job.yaml", "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let shards = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(shards));
    let env = |name: &str| {
        container(&job, "triage")["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["value"].as_str())
            .unwrap_or_else(|| panic!("no {name} value"))
            .to_string()
    };
    assert_eq!(
        env("SHARDS"),
        shards.to_string(),
        "SHARDS must equal completions"
    );
    assert_eq!(shards, 4);
    // The targets file the pods read is the ConfigMap's, mounted where TARGETS says.
    let configmap = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(configmap["data"]["targets.txt"].is_string());
    assert!(env("TARGETS").ends_with("/targets.txt"));

    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 11);
    let bin = triage_on_path(dir.path());
    let mut files = Vec::new();
    for index in 0..shards as usize {
        let (code, log) = run_pod(&job, index, &targets, &bin, &[]);
        // Shards 1 and 3 (indexes 0 and 2) hold the broken VMs: triage exits 1 there, and
        // the pod still succeeds, its result in its log.
        assert_eq!(code, 0, "index {index}: {log}");
        let jsonl = jsonl_of(&log);
        let aggregate = aggregate_of(&jsonl);
        let failing = aggregate["summary"]["failing"].as_u64().unwrap();
        assert_eq!(failing > 0, index % 2 == 0, "index {index}: {log}");
        let file = dir.path().join(format!("triage-sweep-{index}.jsonl"));
        std::fs::write(&file, jsonl).unwrap();
        files.push(file);
    }
    let merged = run(triage()
        .args(["fleet", "merge", "-o", "jsonl"])
        .args(&files));
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    let (runbook, vip) = (env("RUNBOOK"), format!("vip={}", env("VIP")));
    let one = run(triage()
        .args(["run", runbook.as_str(), "--input", vip.as_str()])
        .arg("--targets")
        .arg(&targets)
        .args(["-o", "jsonl"]));
    assert_eq!(one.code, 1, "{}", one.stderr);
    let whole = aggregate_of(&one.stdout);
    assert_eq!(whole["summary"]["targets"], 11);
    assert_eq!(aggregate_of(&merged.stdout), whole);
}

/// The Job run's uid, as Kubernetes puts it in the pods' `batch.kubernetes.io/controller-uid`
/// label.
const JOB_UID: &str = "5f0c1d2e-8a1b-4c3d-9e8f-0123456789ab";
const REPORT_TOKEN: &str = "report-token-k8s-0123456789";

/// A real `triage serve` on loopback, its history in `dir`, with a read token (TOKEN) and
/// the pods' report token (REPORT_TOKEN, `scopes: [report]`).
fn report_server(dir: &Path) -> Server {
    let examples = root().join("examples/service-unreachable");
    let config = dir.join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\n\
             \x20 - name: sweep\n    token: {REPORT_TOKEN}\n    scopes: [report]\n\
             targets:\n  healthy: {}\n\
             limits:\n  runs_per_minute_per_caller: 1000\n  max_body_bytes: 1048576\n",
            examples.join("interception-in-place").display(),
        ),
    )
    .unwrap();
    Server::start(&config, &dir.join("runs.sqlite3"))
}

#[test]
fn the_jobs_pods_posting_to_a_server_give_the_fleet_of_one_process() {
    // The report_to variant: the ConfigMap's report_to and the triage-report Secret set, the
    // pods post to a real `triage serve` on loopback as well as logging their jsonl.
    let (job, _) = object("sweep-job.yaml", "Job");
    let dir = tempfile::tempdir().unwrap();
    let server = report_server(dir.path());
    let targets = targets_file(dir.path(), 11);
    let bin = triage_on_path(dir.path());
    let refs = [
        ("TRIAGE_REPORT_TO", server.base.as_str()),
        ("TRIAGE_REPORT_TOKEN", REPORT_TOKEN),
        ("FLEET_ID", JOB_UID),
    ];
    for index in 0..4 {
        let (code, log) = run_pod(&job, index, &targets, &bin, &refs);
        assert_eq!(code, 0, "index {index}: {log}");
        // The log keeps the jsonl too: the merge of the logs works either way.
        aggregate_of(&jsonl_of(&log));
    }
    let one = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--input",
            "vip=10.0.0.1",
            "-o",
            "json",
        ])
        .arg("--targets")
        .arg(&targets));
    assert_eq!(one.code, 1, "{}", one.stderr);
    let one = one.json();
    let served: Value = rt().block_on(async {
        let answer = client()
            .get(server.url(&format!("/v1/fleets/{JOB_UID}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    });
    assert_eq!(served["schema"], "triage.fleet/v1");
    assert_eq!(served["summary"]["targets"], 11);
    assert_eq!(served["summary"], one["summary"], "{served:#}");
    let failing = |fleet: &Value| {
        let mut names: Vec<String> = fleet["findings"]["interception-missing"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(failing(&served), failing(&one));
    assert_eq!(failing(&one).len(), 6);
}

#[test]
fn a_bad_targets_file_fails_the_job_instead_of_retrying_it() {
    // Exit 2 (a usage error, the same in every shard) leaves the pod failed with 2, which
    // the Job's podFailurePolicy turns into FailJob.
    let (job, _) = object("sweep-job.yaml", "Job");
    let dir = tempfile::tempdir().unwrap();
    let bin = triage_on_path(dir.path());
    let (code, log) = run_pod(&job, 0, &dir.path().join("missing.txt"), &bin, &[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("missing.txt"), "{log}");
    let rules = job["spec"]["podFailurePolicy"]["rules"].as_array().unwrap();
    assert!(
        rules.iter().any(|r| r["action"] == "FailJob"
            && r["onExitCodes"]["operator"] == "In"
            && r["onExitCodes"]["values"]
                .as_array()
                .unwrap()
                .contains(&json!(code))),
        "{rules:#?}"
    );
    // Retries stay per index: one lost pod reruns its shard only.
    assert!(job["spec"]["backoffLimitPerIndex"].as_u64().is_some());
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
}

// ---------------------------------------------------------------------------------------
// (c) the DaemonSet's capabilities, on the real iptables

#[test]
fn the_daemonsets_capabilities_are_exactly_what_iptables_needs_to_read_the_tables() {
    let Some(ns) = super::netns::Netns::create("k8s-caps") else {
        return;
    };
    let (daemonset, _) = object("node-daemonset.yaml", "DaemonSet");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    let security = &container(&daemonset, "triage")["securityContext"];
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_ne!(security["privileged"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    let added: Vec<String> = security["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect();
    // Lists the nat table in the namespace with only `caps` (plus none of root's others).
    let list = |iptables: &str, caps: &[String]| -> Run {
        let bounding: String = std::iter::once("--bounding-set=-all".to_string())
            .chain(caps.iter().map(|c| format!("+{c}")))
            .collect::<Vec<_>>()
            .join(",");
        run(Command::new("ip").args([
            "netns",
            "exec",
            ns.name.as_str(),
            "setpriv",
            bounding.as_str(),
            "--inh-caps=-all",
            "--",
            iptables,
            "-t",
            "nat",
            "-S",
        ]))
    };
    for iptables in ["iptables-nft", "iptables-legacy"] {
        let out = list(iptables, &added);
        assert_eq!(out.code, 0, "{iptables} with {added:?}: {}", out.stderr);
        assert!(out.stdout.contains("-P OUTPUT ACCEPT"), "{}", out.stdout);
    }
    // Each one is needed: without NET_ADMIN neither backend reads, without NET_RAW the
    // legacy one does not.
    for missing in &added {
        let fewer: Vec<String> = added.iter().filter(|c| *c != missing).cloned().collect();
        let out = list("iptables-legacy", &fewer);
        assert_ne!(
            out.code, 0,
            "iptables-legacy read the table without {missing}"
        );
    }
    let without_admin: Vec<String> = added
        .iter()
        .filter(|c| *c != "net_admin")
        .cloned()
        .collect();
    assert_ne!(list("iptables-nft", &without_admin).code, 0);
    assert_eq!(added, ["net_admin", "net_raw"]);
}

/// The DaemonSet's pod, as near as this machine comes: the container's command line from
/// the manifest after `wrapper` (a network namespace and the manifest's capabilities, or
/// nothing), its literal env values, and `triage` first on the PATH. A value the manifest
/// takes from the downward API, a ConfigMap or a Secret is `from_refs`' (as Kubernetes would
/// resolve it), else unset (as an absent optional key leaves it). stdout and stderr piped.
fn node_pod(wrapper: &[&str], bin: &Path, from_refs: &[(&str, &str)]) -> Command {
    let (daemonset, _) = object("node-daemonset.yaml", "DaemonSet");
    let c = container(&daemonset, "triage");
    let argv: Vec<&str> = wrapper
        .iter()
        .copied()
        .chain(
            c["command"]
                .as_array()
                .unwrap()
                .iter()
                .chain(c["args"].as_array().unwrap())
                .map(|a| a.as_str().unwrap()),
        )
        .collect();
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env_clear();
    for (name, value) in triage().get_envs() {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    for var in c["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        if let Some(value) = var["value"].as_str()
            && !POD_PATHS.contains(&name)
        {
            cmd.env(name, value);
        }
        if let Some((_, value)) = from_refs.iter().find(|(n, _)| *n == name) {
            assert!(
                var["valueFrom"].is_object(),
                "{name} is not taken from a reference"
            );
            cmd.env(name, value);
        }
    }
    cmd.env(
        "PATH",
        format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display()),
    )
    .env("HOME", std::env::temp_dir())
    .current_dir(std::env::temp_dir())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    cmd
}

/// The next line the pod printed, as JSON (one report a line).
fn next_report(out: &mut impl std::io::BufRead) -> Value {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Deletes the pod as the kubelet does, TERM to its PID 1 (the shell), and checks it ends
/// within 5 s with 0, not INTERVAL seconds later.
fn delete_pod(pod: &mut std::process::Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &pod.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(status) = pod.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = pod.kill();
            panic!("the pod's shell did not stop within 5 s of TERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut err) = pod.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn the_daemonsets_pod_prints_a_report_a_line_and_stops_at_once_on_term() {
    // In a network namespace of its own (the node's, with hostNetwork), the host's PID
    // namespace (hostPID), as root with only the manifest's added capabilities; no server
    // configured, so the log is all there is.
    let Some(ns) = super::netns::Netns::create("k8s-node") else {
        return;
    };
    let (daemonset, _) = object("node-daemonset.yaml", "DaemonSet");
    let c = container(&daemonset, "triage");
    let caps: Vec<String> = c["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("+{}", c.as_str().unwrap().to_lowercase()))
        .collect();
    let bounding = format!("--bounding-set=-all,{}", caps.join(","));
    let dir = tempfile::tempdir().unwrap();
    let bin = triage_on_path(dir.path());
    let wrapper = [
        "ip",
        "netns",
        "exec",
        ns.name.as_str(),
        "setpriv",
        bounding.as_str(),
        "--inh-caps=-all",
        "--",
    ];
    let mut pod = node_pod(&wrapper, &bin, &[("NODE_NAME", "gke-pool-1-node-7")])
        .spawn()
        .unwrap();
    // `ip netns exec` and setpriv exec what follows: the child is the pod's shell, PID 1 of
    // the container.
    let report = next_report(&mut std::io::BufReader::new(pod.stdout.take().unwrap()));
    assert_eq!(report["schema"], "triage.report/v2");
    // The target is named after the node (the downward API's spec.nodeName).
    assert_eq!(report["target"], "local://gke-pool-1-node-7");
    // The node's nat table was read with those capabilities: an empty table is a finding,
    // not a step that could not see it.
    let interception = step(&report, "interception");
    assert_eq!(interception["status"], "failed", "{interception:#}");
    assert!(finding_ids(&report).contains(&"interception-missing".to_string()));
    // Deleting the pod sends TERM to its PID 1: it ends now, not INTERVAL seconds later.
    delete_pod(&mut pod);
}

#[test]
fn the_daemonsets_pods_posting_to_a_server_keep_each_nodes_latest_report() {
    // Two nodes' pods with report_to and the triage-report Secret set post to a real
    // `triage serve` on loopback; the fleet holds one target per node, each node's latest
    // report, and a node that stopped (a pod deleted) keeps its last one with its time. The
    // pods run in this machine's network namespace (where the server listens) and with its
    // capabilities: the test above tries the namespace and the capabilities.
    let (daemonset, _) = object("node-daemonset.yaml", "DaemonSet");
    let env = container(&daemonset, "triage")["env"]
        .as_array()
        .unwrap()
        .clone();
    let var = |name: &str| {
        env.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("the manifest does not set {name}"))
            .clone()
    };
    assert_eq!(
        var("NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    let fleet_id = var("FLEET_ID")["value"].as_str().unwrap().to_string();
    assert_eq!(
        var("TRIAGE_REPORT_TO")["valueFrom"]["configMapKeyRef"]["optional"],
        true
    );
    assert_eq!(
        var("TRIAGE_REPORT_TOKEN")["valueFrom"]["secretKeyRef"]["optional"],
        true
    );
    let dir = tempfile::tempdir().unwrap();
    let server = report_server(dir.path());
    let bin = triage_on_path(dir.path());
    let fleet = || -> Value {
        rt().block_on(async {
            let answer = client()
                .get(server.url(&format!("/v1/fleets/{fleet_id}")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            answer.json().await.unwrap_or(Value::Null)
        })
    };
    // Waits until the fleet holds `report` as `target`'s (a post follows the printed line).
    let posted = |target: &str, report: &Value| -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let served = fleet();
            let found = served["targets"].as_array().is_some_and(|ts| {
                ts.iter()
                    .any(|t| t["target"] == target && t["report"] == *report)
            });
            if found {
                return served;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{target}'s report is not in the fleet: {served:#}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let pod = |node: &str, interval: &str| {
        let mut cmd = node_pod(
            &[],
            &bin,
            &[
                ("NODE_NAME", node),
                ("TRIAGE_REPORT_TO", server.base.as_str()),
                ("TRIAGE_REPORT_TOKEN", REPORT_TOKEN),
            ],
        );
        cmd.env("INTERVAL", interval).spawn().unwrap()
    };
    let mut b = pod("node-b", "900");
    let b_first = next_report(&mut std::io::BufReader::new(b.stdout.take().unwrap()));
    assert_eq!(b_first["target"], "local://node-b");
    posted("local://node-b", &b_first);
    // node-b's pod is deleted (its node drained): it posts no more.
    delete_pod(&mut b);
    // node-a's rounds a second apart, not 15 minutes (started_at counts whole seconds).
    let mut a = pod("node-a", "1");
    let mut a_out = std::io::BufReader::new(a.stdout.take().unwrap());
    let a_first = next_report(&mut a_out);
    assert_eq!(a_first["target"], "local://node-a");
    let served = posted("local://node-a", &a_first);
    assert_eq!(served["summary"]["targets"], 2, "{served:#}");
    // node-a's next round replaces its report: still two targets.
    let a_second = next_report(&mut a_out);
    assert_ne!(a_second["started_at"], a_first["started_at"]);
    let served = posted("local://node-a", &a_second);
    delete_pod(&mut a);
    assert_eq!(served["schema"], "triage.fleet/v1");
    assert_eq!(served["summary"]["targets"], 2, "{served:#}");
    let targets = served["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local://node-a", "local://node-b"]);
    // The node that stopped is the one whose report's time stays behind.
    assert_eq!(targets[1]["report"], b_first);
    assert!(
        targets[1]["report"]["started_at"].as_str() < targets[0]["report"]["started_at"].as_str(),
        "{served:#}"
    );
}

// ---------------------------------------------------------------------------------------
// (e) gke-pods-not-starting's admission dry run: the real kubectl's `kubectl run
// --dry-run=server` against a stand-in API server on loopback
//
// **The API server is a stand-in**: no cluster, no admission chain and no webhook can run
// here. It answers what kubectl 1.32 asks for (found by logging its requests: /version,
// /api, /apis, /api/v1, then `POST /api/v1/namespaces/NS/pods?dryRun=All&fieldManager=
// kubectl-run` with the Pod as its body) with what an API server answers after admission: the
// webhook failure Status (500 InternalError, the guide's message), the admitted pod as the
// injector mutated it (201), or RBAC's 403. What it cannot show: a real webhook being called,
// and that a dry run persists nothing (that is the API server's promise, not kubectl's).

/// A dry-run answer: HTTP status line and body.
type DryRunAnswer = (&'static str, Vec<u8>);

/// The stand-in: discovery, and one answer to every pod creation. Logs `METHOD TARGET` and,
/// for a POST, its body.
struct AdmissionApi {
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    dir: tempfile::TempDir,
}

impl AdmissionApi {
    fn start(answer: DryRunAnswer) -> AdmissionApi {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (thread_log, answer) = (log.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, answer) = (thread_log.clone(), answer.clone());
                std::thread::spawn(move || admission_serve(conn, &answer, &log));
            }
        });
        let dir = tempfile::tempdir().unwrap();
        write_stand_in_kubeconfig(dir.path(), port);
        AdmissionApi { port, log, dir }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }

    /// `triage probe kubectl admission -w NAME=VALUE…` with kubectl pointed here.
    fn probe(&self, with: &[&str]) -> Run {
        let mut cmd = triage();
        cmd.args(["probe", "kubectl", "admission"])
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.path().join("cache"));
        for w in with {
            cmd.arg("-w").arg(w);
        }
        run(&mut cmd)
    }
}

impl Drop for AdmissionApi {
    fn drop(&mut self) {
        // The accept loop ends with the test process; wake it so no thread waits on a port.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn admission_serve(
    conn: std::net::TcpStream,
    answer: &DryRunAnswer,
    log: &std::sync::Mutex<Vec<(String, String)>>,
) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    log.lock().unwrap().push((
        format!("{method} {target}"),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    let path = target.split('?').next().unwrap_or("");
    let discovery = match path {
        "/version" => Some(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4"})),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"]})),
        "/apis" => Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})),
        "/api/v1" => Some(
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            ]}),
        ),
        _ => None,
    };
    let is_pod_create =
        method == "POST" && path.starts_with("/api/v1/namespaces/") && path.ends_with("/pods");
    let (status, body) = match (discovery, is_pod_create) {
        (Some(doc), _) if method == "GET" => ("200 OK", doc.to_string().into_bytes()),
        (_, true) => (answer.0, answer.1.clone()),
        _ => (
            "404 Not Found",
            br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}"#.to_vec(),
        ),
    };
    let mut conn = &conn;
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let _ = conn.write_all(&body);
}

fn admission_status(code: u16, reason: &str, message: &str) -> Vec<u8> {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
    .into_bytes()
}

/// The guide's failure as today's API servers word it (with `failed to call webhook:`).
const WEBHOOK_TIMEOUT: &str = "Internal error occurred: failed calling webhook \"sidecar-injector.istio.io\": failed to call webhook: Post \"https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s\": context deadline exceeded";

/// The one request that is not discovery: the dry-run create, with its body.
fn the_dry_run(api: &AdmissionApi) -> (String, Value) {
    let writes: Vec<(String, String)> = api
        .requests()
        .into_iter()
        .filter(|(line, _)| !line.starts_with("GET "))
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    let (line, body) = writes[0].clone();
    (line, serde_json::from_str(&body).unwrap())
}

#[test]
fn the_admission_dry_run_reads_the_webhook_failure_the_injected_pod_and_rbac() {
    if !kubectl_present() {
        return;
    }
    // (a) The injector's webhook times out: the refusal a standalone pod's `kubectl run`
    // printed, now facts, classified as the events' failures are.
    let api = AdmissionApi::start((
        "500 Internal Server Error",
        admission_status(500, "InternalError", WEBHOOK_TIMEOUT),
    ));
    let out = api.probe(&["namespace=shop", "image=gcr.io/td-demo/app:1.0"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let probe = out.json();
    let facts = &probe["facts"];
    assert_eq!(facts["admitted"], false, "{facts:#}");
    assert_eq!(facts["error"], Value::Null);
    let failure = &facts["webhook_failures"][0];
    assert_eq!(failure["webhook"], "sidecar-injector.istio.io");
    assert_eq!(
        (&failure["cause"], &failure["timeout"], &failure["injector"]),
        (&json!("timeout"), &json!(true), &json!(true))
    );
    assert_eq!(failure["service_namespace"], "istio-control");
    assert_eq!(failure["namespace"], "shop");
    assert!(
        facts["message"].as_str().unwrap().starts_with(
            "Error from server (InternalError): Internal error occurred: failed calling webhook"
        ),
        "{facts:#}"
    );
    // What kubectl 1.32 sent: a server-side dry run of the fixed pod, in the namespace given.
    let (line, pod) = the_dry_run(&api);
    assert_eq!(
        line,
        "POST /api/v1/namespaces/shop/pods?dryRun=All&fieldManager=kubectl-run"
    );
    assert_eq!(pod["metadata"]["name"], "triage-admission-check");
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "gcr.io/td-demo/app:1.0"
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(
        probe["capabilities"][0]["request"],
        "kubectl run triage-admission-check --image=gcr.io/td-demo/app:1.0 --restart=Never --dry-run=server -n shop -o json"
    );

    // (b) Admitted, with the sidecar Traffic Director's injector adds (the scenario case's pod).
    let admitted = std::fs::read(
        root()
            .join("runbooks/gke-pods-not-starting/tests/standalone-pod-admitted/admitted-pod.json"),
    )
    .unwrap();
    let api = AdmissionApi::start(("201 Created", admitted));
    let out = api.probe(&[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let facts = &out.json()["facts"];
    assert_eq!(
        (&facts["admitted"], &facts["injected"]),
        (&json!(true), &json!(true)),
        "{facts:#}"
    );
    assert_eq!(facts["sidecar"]["name"], "istio-proxy");
    assert_eq!(
        facts["sidecar"]["discovery_address"],
        "trafficdirector.googleapis.com:443"
    );
    assert_eq!(
        facts["containers"],
        json!(["istio-init", "triage-admission-check", "istio-proxy"])
    );
    assert_eq!(facts["webhook_failures"], json!([]));
    let (line, _) = the_dry_run(&api);
    assert_eq!(
        line,
        "POST /api/v1/namespaces/default/pods?dryRun=All&fieldManager=kubectl-run"
    );

    // (c) RBAC refuses `create` on pods: no facts, kubectl's reason, so the step is unknown.
    let api = AdmissionApi::start((
        "403 Forbidden",
        admission_status(
            403,
            "Forbidden",
            "pods \"triage-admission-check\" is forbidden: User \"nobody\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"",
        ),
    ));
    let out = api.probe(&[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let facts = &out.json()["facts"];
    assert_eq!(facts["error"]["kind"], "forbidden", "{facts:#}");
    assert!(facts.get("admitted").is_none(), "{facts:#}");
    assert!(
        facts["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot create resource \"pods\""),
        "{facts:#}"
    );
}

/// A namespace or image that would be an option, or carries a control character, never
/// reaches kubectl: the plugin refuses it (and the host would refuse a `-…` operand too).
#[test]
fn hostile_namespaces_and_images_never_reach_the_api_server() {
    if !kubectl_present() {
        return;
    }
    let api = AdmissionApi::start(("201 Created", b"{}".to_vec()));
    for with in [
        "namespace=--as=system:admin",
        "namespace=-n",
        "namespace=default\n--kubeconfig=/tmp/kc",
        "namespace=default\u{1b}[2J",
        "image=--overrides={\"spec\":{\"hostNetwork\":true}}",
        "image=-it",
        "image=busybox --privileged",
        "image=busy\u{7}box",
        "image=busybox\r\n--as=system:admin",
    ] {
        let out = api.probe(&[with]);
        assert_ne!(out.code, 0, "{with:?}: {}", out.stdout);
        let probe = out.json();
        let error = probe["error"].as_str().unwrap_or_default();
        let name = with.split('=').next().unwrap();
        assert!(
            error.contains(&format!("{name} ")) && !error.contains('\u{1b}'),
            "{with:?}: {error}"
        );
        assert_eq!(probe["capabilities"], json!([]), "{with:?}");
    }
    assert_eq!(api.requests(), [], "kubectl was started");
}

/// The default policy grants the dry run exactly: no form of `kubectl run` or `create`
/// without `--dry-run=server`, no other name, no option added.
#[test]
fn the_default_policy_grants_the_dry_run_and_no_real_create() {
    use triage::capability::exec::Request;
    let policy = triage::capability::Policy::builtin();
    let allows = |argv: &str| {
        policy.allows(&Request {
            argv: argv.split(' ').map(str::to_string).collect(),
        })
    };
    let granted = "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=server -n default -o json";
    assert!(allows(granted));
    assert!(allows(
        "kubectl run triage-admission-check --image=gcr.io/p/app@sha256:0a1b --restart=Never --dry-run=server -n shop -o json"
    ));
    for refused in [
        // Not a dry run: these create the pod.
        "kubectl run triage-admission-check --image=busybox --restart=Never -n default -o json",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=none -n default -o json",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=client -n default -o json",
        "kubectl create -f - --dry-run=server -n default -o json",
        "kubectl create -f - -n default -o json",
        "kubectl apply -f - --dry-run=server -n default -o json",
        // Another pod, or options that change what the pod is, whom it runs as, or where.
        "kubectl run web --image=busybox --restart=Never --dry-run=server -n default -o json",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=server -n default -o json --overrides={}",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=server -n default -o json --as=system:admin",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=server -n --kubeconfig=/tmp/kc -o json",
        "kubectl run triage-admission-check --image=busybox --restart=Always --dry-run=server -n default -o json",
        "kubectl run triage-admission-check --image=busybox --restart=Never --dry-run=server -n default -o json -- sh",
    ] {
        assert!(!allows(refused), "allowed: {refused}");
    }
}
