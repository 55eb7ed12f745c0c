//! Fleets across machines: real `triage run --report-to` processes posting to a real
//! `triage serve` on loopback, and `GET /v1/fleets/{id}` against a local fleet run.

use super::serve::{Server, TOKEN, client, rt};
use super::{root, run, triage};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const REPORT_TOKEN: &str = "report-token-0123456789";
/// A report token that may post only into the fleet `nightly`.
const NIGHTLY_TOKEN: &str = "nightly-token-0123456789";

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    db: PathBuf,
}

fn setup(limits: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples/service-unreachable");
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\n\
             \x20 - name: reporter\n    token: {REPORT_TOKEN}\n    scopes: [report]\n\
             \x20 - name: nightly\n    token: {NIGHTLY_TOKEN}\n    scopes: [report]\n    fleets: [nightly]\n\
             targets:\n  healthy: {}\n\
             limits:\n  runs_per_minute_per_caller: 1000\n{limits}",
            examples.join("interception-in-place").display(),
        ),
    )
    .unwrap();
    Setup {
        dir: dir.path().to_path_buf(),
        db: dir.path().join("runs.sqlite3"),
        config,
        _dir: dir,
    }
}

/// A targets file of `count` bundle targets, each its own name (a link to an example
/// bundle): even positions the broken VM, odd ones the healthy one; listed in reverse name
/// order, so that the file's order and the names' order differ.
fn targets_file(dir: &Path, count: usize) -> PathBuf {
    super::fleet::write_targets(dir, (0..count).rev().map(|i| (format!("vm-{i:02}"), i)))
}

/// A fleet report without what differs from one run to the next: times and durations.
fn timeless(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("duration_ms");
                map.remove("started_at");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn shard_process(s: &Server, targets: &Path, shard: usize, fleet: &str) -> std::process::Child {
    triage()
        .args(["run", "service-unreachable", "--input", "vip=10.0.0.1"])
        .arg("--targets")
        .arg(targets)
        .args([
            "--shard",
            &format!("{shard}/4"),
            "-o",
            "jsonl",
            "--jobs",
            "2",
        ])
        .args(["--report-to", &s.base, "--fleet-id", fleet])
        .env("TRIAGE_REPORT_TOKEN", REPORT_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn four_shard_processes_posting_to_one_server_give_the_fleet_of_one_process() {
    let setup = setup("  max_body_bytes: 1048576\n");
    let server = Server::start(&setup.config, &setup.db);
    sweep(&setup, &[&server]);
}

/// The same with the history on PostgreSQL and two replicas: shards 1 and 3 post to one,
/// 2 and 4 to the other, and both answer the whole fleet.
#[test]
fn four_shards_posting_to_two_replicas_on_postgres_give_the_fleet_of_one_process() {
    let Some(bin) = super::serve_pg::postgres_or_skip() else {
        return;
    };
    let pg = super::serve_pg::Postgres::start(&bin);
    let setup = setup("  max_body_bytes: 1048576\n");
    let db = PathBuf::from(pg.url());
    let (a, b) = (
        Server::start(&setup.config, &db),
        Server::start(&setup.config, &db),
    );
    sweep(&setup, &[&a, &b]);
}

/// Runs the fleet in one process, then as four shard processes posting to `servers` (in
/// turn); every server's `GET /v1/fleets/{id}` must be the one process's report.
fn sweep(setup: &Setup, servers: &[&Server]) {
    let targets = targets_file(&setup.dir, 11);
    let whole = run(triage()
        .args(["run", "service-unreachable", "--input", "vip=10.0.0.1"])
        .arg("--targets")
        .arg(&targets)
        .args(["-o", "json", "--jobs", "2"]));
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    let local = whole.json();
    // The shards run side by side, as the pods of an Indexed Job do.
    let shards: Vec<_> = (1..=4)
        .map(|i| shard_process(servers[i % servers.len()], &targets, i, "sweep-1"))
        .collect();
    for (i, child) in (1..).zip(shards) {
        let ended = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&ended.stderr);
        // Position p is vm-(10-p): shards 1 and 3 hold the broken VMs (even numbers).
        assert_eq!(ended.status.code(), Some(i % 2), "shard {i}: {stderr}");
        assert!(!stderr.contains("not posted"), "shard {i}: {stderr}");
    }
    for server in servers {
        let (status, served) = get(server, TOKEN, "/v1/fleets/sweep-1");
        assert_eq!(status, 200, "{served}");
        assert_eq!(served["schema"], "triage.fleet/v1");
        assert_eq!(served["summary"]["targets"], 11);
        assert_eq!(served["summary"]["failing"], 6);
        // The same report as the local run's, targets in the file's order, each with its
        // whole report; only times differ.
        assert_eq!(timeless(served), timeless(local.clone()));
    }
    // A retried pod (shard 1 again) replaces its targets' results: nothing counted twice.
    let again = shard_process(servers[0], &targets, 1, "sweep-1")
        .wait_with_output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let (_, served) = get(servers[servers.len() - 1], TOKEN, "/v1/fleets/sweep-1");
    assert_eq!(timeless(served), timeless(local));
}

/// Posts a body with a token; the status and the body's JSON.
fn post(s: &Server, token: &str, body: &Value) -> (u16, Value) {
    rt().block_on(async {
        let r = client()
            .post(s.url("/v1/reports"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    })
}

fn get(s: &Server, token: &str, path: &str) -> (u16, Value) {
    rt().block_on(async {
        let r = client()
            .get(s.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// A real report of one bundle, as a target's posted result.
fn real_report() -> Value {
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--input",
            "vip=10.0.0.1",
            "-o",
            "json",
        ])
        .arg("--bundle")
        .arg(root().join("examples/service-unreachable/interception-missing")));
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.json()
}

fn posted(fleet: &str, target: &str, report: &Value) -> Value {
    json!({"fleet": fleet, "runbook": "service-unreachable",
           "result": {"target": target, "status": "failing", "duration_ms": 5, "report": report}})
}

fn one_line_error(body: &Value, says: &str) {
    let e = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains(says), "{e:?} should say {says:?}");
}

#[test]
fn report_scopes_and_hostile_posts_are_refused_in_one_line() {
    let setup = setup("  max_body_bytes: 262144\n");
    let server = Server::start(&setup.config, &setup.db);
    let report = real_report();
    // A report token posts, and reads nothing.
    let (status, body) = post(&server, REPORT_TOKEN, &posted("f1", "vm-a", &report));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["fleet_url"], "/v1/fleets/f1");
    for path in ["/v1/fleets/f1", "/v1/runs", "/v1/targets", "/metrics"] {
        let (status, body) = get(&server, REPORT_TOKEN, path);
        assert_eq!(status, 403, "{path}: {body}");
        one_line_error(&body, "needs `runs`");
    }
    let (status, body) = rt().block_on(async {
        let r = client()
            .post(server.url("/v1/runs"))
            .bearer_auth(REPORT_TOKEN)
            .json(&json!({"runbook": "service-unreachable", "target": "healthy"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 403, "{body}");
    // A token without `scopes:` (runs) reads fleets, and may not post into them.
    let (status, body) = post(&server, TOKEN, &posted("f1", "vm-b", &report));
    assert_eq!(status, 403, "{body}");
    one_line_error(&body, "needs `report`");
    let (status, fleet) = get(&server, TOKEN, "/v1/fleets/f1");
    assert_eq!(status, 200, "{fleet}");
    assert_eq!(fleet["summary"]["targets"], 1);
    // A token for one fleet cannot post a target into another.
    let (status, body) = post(&server, NIGHTLY_TOKEN, &posted("f1", "vm-c", &report));
    assert_eq!(status, 403, "{body}");
    one_line_error(&body, "not `f1`");
    assert_eq!(
        post(&server, NIGHTLY_TOKEN, &posted("nightly", "vm-c", &report)).0,
        201
    );
    // Fleet ids that are paths, control characters or 10 kB.
    for bad in [
        "../etc",
        "..",
        "a/b",
        "a\u{1}b",
        "-rf",
        &"x".repeat(10_000),
        "",
    ] {
        let (status, body) = post(&server, REPORT_TOKEN, &posted(bad, "vm-a", &report));
        assert_eq!(status, 400, "{bad:.40}: {body}");
        one_line_error(&body, "fleet id");
    }
    for bad in ["..", "a%01b", "%2E%2E%2Fetc"] {
        let (status, body) = get(&server, TOKEN, &format!("/v1/fleets/{bad}"));
        assert!(matches!(status, 400 | 404), "{bad}: {status} {body}");
    }
    // Targets with control characters, or 10 kB.
    for bad in ["vm\u{1b}[2J", &"t".repeat(10_000)] {
        let (status, body) = post(&server, REPORT_TOKEN, &posted("f1", bad, &report));
        assert_eq!(status, 400, "{body}");
        one_line_error(&body, "result.target");
    }
    // Reports that are not triage.report/v2, or that disagree with their status.
    let mut v1 = report.clone();
    v1["schema"] = json!("triage.report/v1");
    let mut other_runbook = report.clone();
    other_runbook["runbook"]["id"] = json!("traffic-loop");
    let cases = [
        (json!("just a string"), "not a triage.report/v2"),
        (
            json!({"schema": "triage.report/v2"}),
            "not a triage.report/v2",
        ),
        (v1, "is not triage.report/v2"),
        (other_runbook, "of runbook `traffic-loop`"),
    ];
    for (bad, says) in cases {
        let (status, body) = post(&server, REPORT_TOKEN, &posted("f1", "vm-d", &bad));
        assert_eq!(status, 400, "{body}");
        one_line_error(&body, says);
    }
    let mut ok_but_failing = posted("f1", "vm-d", &report);
    ok_but_failing["result"]["status"] = json!("unreachable");
    let (status, body) = post(&server, REPORT_TOKEN, &ok_but_failing);
    assert_eq!(status, 400, "{body}");
    one_line_error(&body, "has no report");
    let mut unknown_field = posted("f1", "vm-d", &report);
    unknown_field["result"]["findings"] = json!([]);
    assert_eq!(post(&server, REPORT_TOKEN, &unknown_field).0, 400);
    // A fleet is one runbook: a result of another is a conflict, and nothing is stored.
    let mut other = posted("f1", "vm-e", &report);
    other["runbook"] = json!("traffic-loop");
    other["result"]["report"]["runbook"]["id"] = json!("traffic-loop");
    let (status, body) = post(&server, REPORT_TOKEN, &other);
    assert_eq!(status, 409, "{body}");
    one_line_error(&body, "holds results of runbook `service-unreachable`");
    // The same target again replaces its result.
    let (status, body) = post(&server, REPORT_TOKEN, &posted("f1", "vm-a", &report));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "replaced");
    assert_eq!(
        get(&server, TOKEN, "/v1/fleets/f1").1["summary"]["targets"],
        1
    );
    assert_eq!(get(&server, TOKEN, "/v1/fleets/nope").0, 404);
    // A gigabyte body: one 413 line, and the server stays up.
    let head = gigabyte_post(&server);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("\"error\""), "{head}");
    assert_eq!(get(&server, TOKEN, "/v1/fleets/f1").0, 200);
}

/// Sends `POST /v1/reports` announcing a gigabyte and writes until the server stops
/// reading; what it answered.
fn gigabyte_post(s: &Server) -> String {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let header = format!(
        "POST /v1/reports HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {REPORT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    let sender = std::thread::spawn(move || {
        writer.write_all(header.as_bytes()).unwrap();
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0u64;
        while sent < 1 << 30 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let mut answer = vec![0u8; 4096];
    let mut got = 0;
    while got < answer.len() {
        match conn.read(&mut answer[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        if String::from_utf8_lossy(&answer[..got]).contains("}") {
            break;
        }
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let sent = sender.join().unwrap();
    assert!(sent < 1 << 30, "the server read the whole gigabyte");
    String::from_utf8_lossy(&answer[..got]).into_owned()
}

#[test]
fn a_run_whose_post_fails_prints_its_report_and_exits_4() {
    let bundle = root().join("examples/service-unreachable/interception-missing");
    let cmd = || {
        let mut c = triage();
        c.args([
            "run",
            "service-unreachable",
            "--input",
            "vip=10.0.0.1",
            "-o",
            "json",
        ])
        .arg("--bundle")
        .arg(&bundle);
        c
    };
    // No token in the environment: a usage error before anything runs.
    let out = run(cmd()
        .args(["--report-to", "http://127.0.0.1:9", "--fleet-id", "f"])
        .env_remove("TRIAGE_REPORT_TOKEN"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("TRIAGE_REPORT_TOKEN"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = run(cmd()
        .args(["--report-to", "http://127.0.0.1:9", "--fleet-id", "../x"])
        .env("TRIAGE_REPORT_TOKEN", REPORT_TOKEN));
    assert_eq!(out.code, 2, "{}", out.stderr);
    // Nobody listening: the report is printed, stderr says the post failed, exit 4.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = run(cmd()
        .args(["--report-to", &url, "--fleet-id", "f"])
        .env("TRIAGE_REPORT_TOKEN", REPORT_TOKEN));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(out.json()["schema"], "triage.report/v2");
    assert!(out.stderr.contains("was not posted"), "{}", out.stderr);
    // A single run posts too: its target named as given.
    let setup = setup("  max_body_bytes: 1048576\n");
    let server = Server::start(&setup.config, &setup.db);
    let out = run(cmd()
        .args(["--report-to", &server.base, "--fleet-id", "one"])
        .env("TRIAGE_REPORT_TOKEN", REPORT_TOKEN));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let (status, fleet) = get(&server, TOKEN, "/v1/fleets/one");
    assert_eq!(status, 200, "{fleet}");
    assert_eq!(fleet["summary"]["failing"], 1);
    assert_eq!(fleet["targets"][0]["report"], out.json());
    // A token without the report scope: 403, told on stderr, exit 4.
    let out = run(cmd()
        .args(["--report-to", &server.base, "--fleet-id", "one"])
        .env("TRIAGE_REPORT_TOKEN", TOKEN));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("403"), "{}", out.stderr);
}

/// Machines that each check themselves (the pods of examples/k8s/node-daemonset.yaml):
/// `--target local://NODE` names each one's target, so two nodes posting into one fleet are
/// two targets, and a node posting again replaces its report instead of adding one; the
/// fleet shows when each node's report was made, so a node that stopped posting is the one
/// whose `started_at` stays behind.
#[test]
fn nodes_named_by_local_targets_are_a_target_each_and_a_repost_replaces() {
    let setup = setup("  max_body_bytes: 1048576\n");
    let server = Server::start(&setup.config, &setup.db);
    // This machine, live: whatever it finds (exit 0, 1 or 3), the report is posted.
    let node = |target: &str, fleet: &str| {
        run(triage()
            .args(["run", "service-unreachable", "-o", "json"])
            .args(["--input", "admin_url=http://127.0.0.1:9"])
            .args(["--target", target])
            .args(["--report-to", &server.base, "--fleet-id", fleet])
            .env("TRIAGE_REPORT_TOKEN", REPORT_TOKEN))
    };
    let posted_by = |target: &str| {
        let out = node(target, "nodes");
        assert!(matches!(out.code, 0 | 1 | 3), "{target}: {}", out.stderr);
        assert!(!out.stderr.contains("not posted"), "{}", out.stderr);
        let report = out.json();
        assert_eq!(report["target"], target);
        report
    };
    let b = posted_by("local://node-b");
    let a = posted_by("local://node-a");
    let fleet = || {
        let (status, fleet) = get(&server, TOKEN, "/v1/fleets/nodes");
        assert_eq!(status, 200, "{fleet}");
        fleet
    };
    let names = |fleet: &Value| -> Vec<String> {
        fleet["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["target"].as_str().unwrap().to_string())
            .collect()
    };
    let served = fleet();
    assert_eq!(served["summary"]["targets"], 2, "{served:#}");
    // Without a place in a list, by name.
    assert_eq!(names(&served), ["local://node-a", "local://node-b"]);
    assert_eq!(served["targets"][0]["report"], a);
    assert_eq!(served["targets"][1]["report"], b);
    // node-a again, a second later (started_at counts whole seconds): still two targets,
    // node-a's the new report; node-b's keeps its older time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = posted_by("local://node-a");
    assert_ne!(again["started_at"], a["started_at"]);
    let served = fleet();
    assert_eq!(served["summary"]["targets"], 2, "{served:#}");
    assert_eq!(names(&served), ["local://node-a", "local://node-b"]);
    assert_eq!(served["targets"][0]["report"], again);
    assert_eq!(
        served["targets"][1]["report"]["started_at"],
        b["started_at"]
    );
    assert!(
        served["targets"][1]["report"]["started_at"].as_str()
            < served["targets"][0]["report"]["started_at"].as_str()
    );
    // Plain `local` is the same target on every machine: two runs, one target.
    for _ in 0..2 {
        let out = node("local", "plain");
        assert!(matches!(out.code, 0 | 1 | 3), "{}", out.stderr);
    }
    let (_, plain) = get(&server, TOKEN, "/v1/fleets/plain");
    assert_eq!(names(&plain), ["local"]);
    // Names a user or an environment gives: control characters, 10 kB, a path, an option.
    // Each is a one-line usage error before anything runs, and nothing is posted.
    let huge = "n".repeat(10_000);
    for bad in [
        "node\u{1b}[2J",
        "node\nforged: line",
        huge.as_str(),
        "../etc",
        "-oProxyCommand=x",
        "",
        "Node-A",
    ] {
        let out = node(&format!("local://{bad}"), "hostile");
        assert_eq!(out.code, 2, "{bad:.40?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        let line = out.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{line:.300?}");
        assert!(!line.contains('\u{1b}'), "{line:.300?}");
        assert!(line.len() < 400, "{} bytes", line.len());
        assert!(line.contains("RFC 1123 name"), "{line}");
    }
    assert_eq!(get(&server, TOKEN, "/v1/fleets/hostile").0, 404);
    assert_eq!(fleet()["summary"]["targets"], 2);
}
