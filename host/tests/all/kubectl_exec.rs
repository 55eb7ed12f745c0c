//! Live: the real `kubectl exec`, end to end, against a stand-in for the Kubernetes API server
//! and kubelet on loopback, with the command it asks for run for real in a network namespace
//! that holds real iptables rules.
//!
//! **The API server is a stand-in**: no cluster can run here. It is as small as kubectl allows:
//! the discovery documents `kubectl get pod` asks for, the Pod objects, and the exec
//! subresource. `kubectl exec` (1.30+) opens a WebSocket to
//! `/api/v1/namespaces/NS/pods/POD/exec?command=…&container=…&stdout=true&stderr=true` offering
//! the `v5.channel.k8s.io` subprotocol; the stand-in accepts it (the handshake and framing are
//! tungstenite's), runs `ip netns exec NETNS COMMAND…` with the argv kubectl sent, and streams
//! what the command prints the way the kubelet does: binary messages whose first byte is the
//! channel (1 stdout, 2 stderr, 3 the exit status as a JSON `Status`), then a close. So kubectl
//! prints the pod's real `iptables-save` output and exits with the command's real status, and
//! the runbook judges a real table read through the real client. What a stand-in cannot show:
//! a container runtime, RBAC itself (the 403 is the answer an API server gives when RBAC
//! refuses `create` on `pods/exec`), and SPDY (the stand-in answers 400 to an SPDY upgrade,
//! and each test checks kubectl never needed one).

use super::netns::Netns;
use super::plugins_live::kubectl_present;
use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::Message;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocket};

const SUBPROTOCOL: &str = "v5.channel.k8s.io";
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// What the stand-in does when a pod is exec'd into.
#[derive(Clone)]
enum Exec {
    /// Runs the requested command in this network namespace (the pod's).
    InNetns(String),
    /// Refuses the exec as an API server does when RBAC denies `create` on `pods/exec`.
    Forbidden,
    /// Streams this many bytes of stdout, then exits 0: a pod that prints without end.
    Flood(u64),
    /// Sends these channel messages as they are, then the status of `exit`.
    Frames(Vec<(u8, Vec<u8>)>, i32),
}

struct Pod {
    object: Value,
    exec: Exec,
}

/// The stand-in API server (see the module's comment). Records each request as
/// `METHOD TARGET [upgrade]`.
struct ApiServer {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    dir: tempfile::TempDir,
}

impl ApiServer {
    fn start(pods: Vec<Pod>) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let pods: Arc<BTreeMap<String, Pod>> = Arc::new(
            pods.into_iter()
                .map(|p| {
                    let m = &p.object["metadata"];
                    (
                        format!(
                            "/api/v1/namespaces/{}/pods/{}",
                            m["namespace"].as_str().unwrap(),
                            m["name"].as_str().unwrap()
                        ),
                        p,
                    )
                })
                .collect(),
        );
        let (thread_log, thread_stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (pods, log) = (pods.clone(), thread_log.clone());
                std::thread::spawn(move || serve(conn, &pods, &log));
            }
        });
        let dir = tempfile::tempdir().unwrap();
        write_stand_in_kubeconfig(dir.path(), port);
        ApiServer {
            port,
            log,
            stop,
            dir,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// `triage ARGS` with kubectl pointed at this server (its discovery cache in a
    /// temporary directory, not ~/.kube).
    fn triage(&self, args: &[&str]) -> Run {
        run(triage()
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            // kubectl's own default, said out loud: the WebSocket executor, SPDY as fallback.
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true"))
    }

    /// The exec requests kubectl made, as `upgrade command…`.
    fn execs(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.contains("/exec?"))
            .collect()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn status_json(code: u16, reason: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    }))
    .unwrap()
}

fn respond(mut conn: &TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// The request head, read a byte at a time so that nothing after it is consumed: on an
/// upgrade, the WebSocket starts right after.
fn read_head(conn: &TcpStream) -> Option<(String, BTreeMap<String, String>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let mut reader = conn;
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 << 10 || reader.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = BufReader::new(text.as_bytes())
        .lines()
        .map_while(Result::ok);
    let request_line = lines.next()?;
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Some((request_line, headers))
}

fn serve(conn: TcpStream, pods: &BTreeMap<String, Pod>, log: &Mutex<Vec<String>>) {
    let Some((request_line, headers)) = read_head(&conn) else {
        return;
    };
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let upgrade = headers.get("upgrade").cloned().unwrap_or_default();
    log.lock().unwrap().push(
        format!("{method} {target} {upgrade}")
            .trim_end()
            .to_string(),
    );
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));

    if let Some(pod_path) = path.strip_suffix("/exec") {
        let Some(pod) = pods.get(pod_path) else {
            return respond(
                &conn,
                "404 Not Found",
                &status_json(404, "NotFound", "pods not found"),
            );
        };
        if let Exec::Forbidden = pod.exec {
            let name = pod.object["metadata"]["name"].as_str().unwrap();
            let ns = pod.object["metadata"]["namespace"].as_str().unwrap();
            let message = format!(
                "pods \"{name}\" is forbidden: User \"nobody\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"{ns}\""
            );
            return respond(
                &conn,
                "403 Forbidden",
                &status_json(403, "Forbidden", &message),
            );
        }
        let offered = headers
            .get("sec-websocket-protocol")
            .cloned()
            .unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket")
            || !offered.split(',').any(|p| p.trim() == SUBPROTOCOL)
        {
            return respond(
                &conn,
                "400 Bad Request",
                &status_json(
                    400,
                    "BadRequest",
                    "the stand-in API server speaks only v5.channel.k8s.io over WebSocket",
                ),
            );
        }
        let key = headers
            .get("sec-websocket-key")
            .cloned()
            .unwrap_or_default();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut raw = &conn;
        let _ = raw.write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            )
            .as_bytes(),
        );
        let command: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("command="))
            .map(percent_decode)
            .collect();
        let ws = WebSocket::from_raw_socket(conn, Role::Server, None);
        exec(ws, &pod.exec, &command);
        return;
    }

    let body = match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list"]},
            {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions",
             "verbs": ["create", "get"]},
        ]}),
        "/version" => json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4"}),
        _ => match pods.get(path) {
            Some(pod) => pod.object.clone(),
            None => {
                return respond(
                    &conn,
                    "404 Not Found",
                    &status_json(404, "NotFound", "not found"),
                );
            }
        },
    };
    respond(&conn, "200 OK", &serde_json::to_vec(&body).unwrap());
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn send(ws: &mut WebSocket<TcpStream>, channel: u8, bytes: &[u8]) -> bool {
    let mut message = Vec::with_capacity(bytes.len() + 1);
    message.push(channel);
    message.extend_from_slice(bytes);
    ws.send(Message::binary(message)).is_ok()
}

/// The exit status as the kubelet reports it on channel 3 (`metav1.Status`).
fn exit_status(code: i32, command: &[String]) -> Vec<u8> {
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({"metadata": {}, "status": "Failure",
               "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
               "reason": "NonZeroExitCode",
               "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    };
    serde_json::to_vec(&status).unwrap()
}

fn exec(mut ws: WebSocket<TcpStream>, what: &Exec, command: &[String]) {
    let code = match what {
        Exec::InNetns(netns) => {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", netns])
                .args(command)
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                send(&mut ws, STDOUT, &out.stdout);
            }
            if !out.stderr.is_empty() {
                send(&mut ws, STDERR, &out.stderr);
            }
            out.status.code().unwrap_or(1)
        }
        Exec::Flood(total) => {
            let chunk = vec![b'x'; 1 << 20];
            let mut sent = 0u64;
            while sent < *total {
                // kubectl gone (killed once it printed too much): stop.
                if !send(&mut ws, STDOUT, &chunk) {
                    return;
                }
                sent += chunk.len() as u64;
            }
            0
        }
        Exec::Frames(frames, code) => {
            for (channel, bytes) in frames {
                send(&mut ws, *channel, bytes);
            }
            *code
        }
        Exec::Forbidden => unreachable!("refused before the upgrade"),
    };
    send(&mut ws, STATUS, &exit_status(code, command));
    // A normal close (1000), as the API server ends a finished exec; a close without a code
    // reads to kubectl as a broken stream.
    let _ = ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    // Until kubectl answers the close (or goes away).
    while ws.read().is_ok() {}
}

/// A pod named `name` in `shop` from the sample Traffic Director pod (its sidecar
/// `istio-proxy` runs as 1337, and its init container excludes 1337).
fn pod(name: &str, exec: Exec) -> Pod {
    let mut object: Value =
        serde_json::from_slice(&std::fs::read(data("kubectl-exec/pod-sidecar-1337.json")).unwrap())
            .unwrap();
    object["metadata"]["name"] = json!(name);
    object["metadata"]["namespace"] = json!("shop");
    Pod { object, exec }
}

/// The same pod whose spec says nothing the loop check can use: the sidecar sets no
/// runAsUser, so only the live table could tell.
fn pod_with_silent_spec(name: &str, exec: Exec) -> Pod {
    let mut p = pod(name, exec);
    for c in p.object["spec"]["containers"].as_array_mut().unwrap() {
        if let Some(sc) = c.get_mut("securityContext").and_then(Value::as_object_mut) {
            sc.remove("runAsUser");
        }
    }
    p
}

/// A network namespace holding Istio's nat table (its CNI plugin's golden output: everything
/// outbound to 15001, UID 1337 excluded), less the lines `drop` names.
fn pod_netns(tag: &str, drop: &str) -> Option<Netns> {
    pod_netns_with(tag, |rules| {
        rules
            .lines()
            .filter(|l| drop.is_empty() || !l.contains(drop))
            .map(|l| format!("{l}\n"))
            .collect()
    })
}

/// A network namespace holding Istio's nat table as `edit` rewrites it.
fn pod_netns_with(tag: &str, edit: impl FnOnce(&str) -> String) -> Option<Netns> {
    let ns = Netns::create(tag)?;
    let rules = std::fs::read_to_string(
        root().join("fixtures/real/iptables/istio-cni-plugin-basic.golden.txt"),
    )
    .unwrap();
    let kept = edit(&rules);
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "iptables-restore"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(kept.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "iptables-restore in {}",
        ns.name
    );
    Some(ns)
}

fn loop_check(server: &ApiServer, pod: &str) -> Run {
    server.triage(&[
        "run",
        "traffic-loop",
        "-o",
        "json",
        "--facts",
        "--target",
        &format!("kubectl://shop/{pod}"),
    ])
}

/// Through `kubectl exec`, the pod's real nat table decides: with Envoy's UID excluded the
/// check holds; with the exclusion gone from the live table (the spec still says 1337 is
/// excluded) the loop is found, from the live table.
#[test]
fn kubectl_exec_reads_the_pods_real_nat_table() {
    if !kubectl_present() {
        return;
    }
    let Some(healthy) = pod_netns("kx-ok", "") else {
        return;
    };
    let Some(broken) = pod_netns("kx-loop", "--uid-owner 1337 -j RETURN") else {
        return;
    };
    let server = ApiServer::start(vec![
        pod("web-healthy", Exec::InNetns(healthy.name.clone())),
        pod("web-looping", Exec::InNetns(broken.name.clone())),
    ]);

    let out = loop_check(&server, "web-healthy");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert!(finding_ids(&report).is_empty(), "{report:#}");
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["status"], "passed", "{rules:#}");
    assert_eq!(rules["output"]["readable"], true, "{rules:#}");
    assert_eq!(rules["output"]["rules"]["proxy_uid_excluded"], true);
    assert_eq!(step(&report, "pod-loop")["status"], "passed");
    assert_eq!(report["summary"]["complete"], true);

    let out = loop_check(&server, "web-looping");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(finding_ids(&report), ["pod-proxy-uid-not-excluded"]);
    let f = &report["findings"][0];
    let detail = f["detail"].as_str().unwrap();
    assert!(detail.contains("Read from the pod's nat table"), "{detail}");
    // The evidence is the live table's own rule, as iptables-save printed it in the netns.
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"),
        "{f:#}"
    );

    // Both went through the WebSocket executor, into the sidecar, with the command
    // the default policy grants; SPDY never came up.
    assert_eq!(
        server.execs(),
        [
            "GET /api/v1/namespaces/shop/pods/web-healthy/exec?command=iptables-save&command=-t&command=nat&container=istio-proxy&stderr=true&stdout=true websocket",
            "GET /api/v1/namespaces/shop/pods/web-looping/exec?command=iptables-save&command=-t&command=nat&container=istio-proxy&stderr=true&stdout=true websocket",
        ]
    );
}

/// server-first-protocol on a pod, through `kubectl exec`: the sidecar's live nat table
/// decides whether MySQL (3306) goes through Envoy. Istio's table (everything outbound to
/// 15001) intercepts it; the same table with the guide's exclusion, a `--dport 3306 -j
/// RETURN` before the redirect, does not. The pod's spec is the same in both (it says
/// nothing of 3306), so only the live table can tell them apart. `port=3306` says the port
/// serves a server-first protocol (the stand-in serves no application log to show "MySQL
/// server has gone away"); without it an intercepted 3306 is only the info
/// server-first-port-unconfirmed (issue 10 §4 h).
#[test]
fn server_first_protocol_reads_the_pods_real_nat_table() {
    if !kubectl_present() {
        return;
    }
    let Some(intercepted) = pod_netns("kx-sf-in", "") else {
        return;
    };
    let Some(excluded) = pod_netns_with("kx-sf-ex", |rules| {
        rules.replacen(
            "-A ISTIO_OUTPUT -p tcp --dport 15020 -j RETURN\n",
            "-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN\n-A ISTIO_OUTPUT -p tcp --dport 15020 -j RETURN\n",
            1,
        )
    }) else {
        return;
    };
    let server = ApiServer::start(vec![
        pod(
            "mysql-client-intercepted",
            Exec::InNetns(intercepted.name.clone()),
        ),
        pod(
            "mysql-client-excluded",
            Exec::InNetns(excluded.name.clone()),
        ),
    ]);
    let check = |pod: &str| {
        server.triage(&[
            "run",
            "server-first-protocol",
            "-o",
            "json",
            "--facts",
            "--input",
            &format!("pod={pod}"),
            "--input",
            "namespace=shop",
            "--input",
            "port=3306",
        ])
    };

    let out = check("mysql-client-intercepted");
    let report = out.json();
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["output"]["readable"], true, "{rules:#}");
    assert_eq!(rules["output"]["port_intercepted"], true, "{rules:#}");
    assert_eq!(
        finding_ids(&report),
        ["server-first-port-intercepted"],
        "{report:#}"
    );

    let out = check("mysql-client-excluded");
    let report = out.json();
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["output"]["readable"], true, "{rules:#}");
    assert_eq!(rules["output"]["port_intercepted"], false, "{rules:#}");
    assert!(finding_ids(&report).is_empty(), "{report:#}");

    // Every table was read live, in the sidecar, through the WebSocket executor.
    let execs = server.execs();
    assert!(!execs.is_empty());
    for exec in execs {
        assert!(
            exec.contains("command=iptables-save&command=-t&command=nat&container=istio-proxy")
                && exec.ends_with("websocket"),
            "{exec}"
        );
    }
}

/// The kubectl:// transport itself (not a plugin's own kubectl command): `triage probe`
/// runs `iptables-save` in the pod through `kubectl exec -n shop web-1 -- …`.
#[test]
fn the_kubectl_target_runs_commands_in_the_pod() {
    if !kubectl_present() {
        return;
    }
    let Some(ns) = pod_netns("kx-probe", "") else {
        return;
    };
    let server = ApiServer::start(vec![pod("web-1", Exec::InNetns(ns.name.clone()))]);
    let out = server.triage(&[
        "probe",
        "iptables",
        "rules",
        "--with",
        "table=nat",
        "--with",
        "proxy_uid=1337",
        "--target",
        "kubectl://shop/web-1/istio-proxy",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let outcome = out.json();
    let facts = &outcome["facts"];
    assert_eq!(facts["intercepts_all_outbound"], true, "{outcome:#}");
    assert_eq!(facts["proxy_uid_excluded"], true, "{outcome:#}");
    let execs = server.execs();
    assert_eq!(execs.len(), 1, "{execs:#?}");
    assert!(
        execs[0].starts_with("GET /api/v1/namespaces/shop/pods/web-1/exec?command=iptables-save&command=-t&command=nat&container=istio-proxy"),
        "{execs:#?}"
    );
}

/// RBAC refuses the exec (403): the spec decides where it can (pod-judged-from-spec,
/// TRG0703, whose fix names the missing permission), and the check is unknown where it
/// cannot.
#[test]
fn a_forbidden_exec_is_judged_from_the_spec_or_unknown() {
    if !kubectl_present() {
        return;
    }
    let server = ApiServer::start(vec![
        pod("web-spec", Exec::Forbidden),
        pod_with_silent_spec("web-silent", Exec::Forbidden),
    ]);

    let out = loop_check(&server, "web-spec");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(finding_ids(&report), ["pod-judged-from-spec"], "{report:#}");
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["output"]["error"]["kind"], "forbidden", "{rules:#}");
    let f = &report["findings"][0];
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains("cannot create resource \"pods/exec\""),
        "{f:#}"
    );
    assert!(f["fix"].as_str().unwrap().contains("`create`"), "{f:#}");
    assert_eq!(report["summary"]["complete"], true);

    let out = loop_check(&server, "web-silent");
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert!(finding_ids(&report).is_empty(), "{report:#}");
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["status"], "unknown");
    let reason = rules["reason"].as_str().unwrap();
    assert!(reason.contains("forbidden"), "{reason}");
    assert!(reason.contains("pods/exec"), "{reason}");
}

/// What a hostile or broken pod prints through exec is bounded and reported, never a hang:
/// a gigabyte, terminal control sequences, and bytes that mimic the status channel.
#[test]
fn a_hostile_pods_exec_output_is_bounded_and_reported() {
    if !kubectl_present() {
        return;
    }
    // A status frame as the kubelet sends it, printed by the pod on stdout and stderr: it
    // arrives inside channel 1 and 2 messages, so it is the pod's text, not kubectl's status.
    let mut fake_status = vec![STATUS];
    fake_status.extend_from_slice(&exit_status(0, &[]));
    let server = ApiServer::start(vec![
        pod_with_silent_spec("web-flood", Exec::Flood(1 << 30)),
        pod_with_silent_spec(
            "web-escapes",
            Exec::Frames(
                vec![(
                    STDERR,
                    b"\x1b]0;owned\x07\x1b[2J\x1b[31mPermission denied (you must be root)\x1b[0m\r\n".to_vec(),
                )],
                1,
            ),
        ),
        pod_with_silent_spec(
            "web-fake-status",
            Exec::Frames(
                vec![(STDOUT, fake_status.clone()), (STDERR, fake_status)],
                1,
            ),
        ),
    ]);

    let started = Instant::now();
    let out = loop_check(&server, "web-flood");
    let took = started.elapsed();
    eprintln!("a gigabyte through kubectl exec: refused after {took:?}");
    assert_eq!(out.code, 3, "{}", out.stderr);
    let rules = step(&out.json(), "pod-rules").clone();
    assert_eq!(rules["status"], "errored", "{rules:#}");
    assert!(
        rules["reason"]
            .as_str()
            .unwrap()
            .contains("printed more than"),
        "{rules:#}"
    );
    assert!(took < Duration::from_secs(50), "the gigabyte took {took:?}");

    // Human output: the pod's escape sequences are shown escaped, never sent to the terminal.
    let out = server.triage(&[
        "run",
        "traffic-loop",
        "--target",
        "kubectl://shop/web-escapes",
    ]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains('\x1b') && !out.stdout.contains('\x07'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("Permission denied"), "{}", out.stdout);

    // The fake status is the pod's output; kubectl's status (exit 1) is the real one.
    let out = loop_check(&server, "web-fake-status");
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let rules = step(&report, "pod-rules");
    assert_eq!(rules["status"], "unknown", "{rules:#}");
    assert_eq!(rules["output"]["readable"], false, "{rules:#}");
    assert_eq!(rules["output"]["error"]["status"], 1, "{rules:#}");
}
