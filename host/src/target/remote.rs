//! Remote targets: capabilities carried out on another machine through a transport the
//! operator already uses — `ssh`, `gcloud compute ssh`, or `kubectl exec`.
//!
//! - `ssh://[user@]host[:port]` runs `ssh -o BatchMode=yes … host -- CMD`. ssh joins its
//!   arguments into one string for the remote shell, so every argument is single-quoted
//!   here: a value from a runbook can never become shell syntax. `TRIAGE_SSH_CONFIG=FILE`
//!   adds `-F FILE` (keys, known hosts, jump hosts).
//! - `gcloud://INSTANCE?zone=Z[&project=P]` runs `gcloud compute ssh INSTANCE --zone Z
//!   [--project P] --command CMD`, quoted the same way.
//! - `kubectl://[namespace/]pod[/container]` runs `kubectl exec -n NS POD [-c C] -- ARGV`:
//!   a real argv, no shell at all.
//!
//! The other capabilities are carried out *on the target* with standard tools: `http` with
//! `curl`, `read-file` with `realpath` and `head -c` (its tail with `tail -c` and `wc -c`), `resolve` with `getent ahosts`, `connect` with
//! bash's `/dev/tcp`. Guided mode says so before each step.

use super::*;
use crate::capability::shell_quote;
use crate::runbook::input_pattern::Named;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
    Gcloud {
        instance: String,
        zone: String,
        project: Option<String>,
    },
    Kubectl {
        namespace: String,
        pod: String,
        container: Option<String>,
    },
}

pub struct RemoteTarget {
    transport: Transport,
    spec: String,
    local: local::LocalTarget,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:[]".contains(c))
}

impl Transport {
    /// Parses a remote target's URL (see `target::Spec`); the error says what is wrong with
    /// it. Names may not start with `-` (they would read as options).
    pub fn parse(spec: &str) -> Result<Transport, String> {
        let bad = |why: &str| why.to_string();
        if let Some(rest) = spec.strip_prefix("ssh://") {
            let (user, hostport) = match rest.split_once('@') {
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, rest),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                    h.to_string(),
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| bad("the port is not a number"))?,
                    ),
                ),
                _ => (hostport.to_string(), None),
            };
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            if !valid_name(&host) || user.as_deref().is_some_and(|u| !valid_name(u)) {
                return Err(bad("expected ssh://[user@]host[:port]"));
            }
            return Ok(Transport::Ssh { user, host, port });
        }
        if let Some(rest) = spec.strip_prefix("gcloud://") {
            let (instance, query) = rest.split_once('?').unwrap_or((rest, ""));
            let mut zone = None;
            let mut project = None;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("zone", z)) => zone = Some(z.to_string()),
                    Some(("project", p)) => project = Some(p.to_string()),
                    _ => return Err(bad("gcloud targets take zone= and project=")),
                }
            }
            let zone =
                zone.ok_or_else(|| bad("expected gcloud://INSTANCE?zone=ZONE[&project=P]"))?;
            // Compute Engine's own name rules, stricter than `valid_name`: these three go to
            // gcloud as option values and an operand, so nothing gcloud could read as an
            // option (`--command=id`) or a shell could read as syntax (`a;b`) gets through.
            let gce = |what: &str, value: &str, ok: bool| {
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "gcloud target: {what} {:?} is not a Compute Engine {what} (expected gcloud://INSTANCE?zone=ZONE[&project=P])",
                        value
                    ))
                }
            };
            gce("instance", instance, Named::Rfc1035Label.matches(instance))?;
            gce("zone", &zone, Named::GcpZone.matches(&zone))?;
            if let Some(p) = &project {
                gce("project", p, Named::GcpProject.matches(p))?;
            }
            return Ok(Transport::Gcloud {
                instance: instance.into(),
                zone,
                project,
            });
        }
        if let Some(rest) = spec.strip_prefix("kubectl://") {
            let parts: Vec<&str> = rest.split('/').collect();
            let (namespace, pod, container) = match parts.as_slice() {
                [pod] => ("default", *pod, None),
                [ns, pod] => (*ns, *pod, None),
                [ns, pod, c] => (*ns, *pod, Some(c.to_string())),
                _ => return Err(bad("expected kubectl://[namespace/]pod[/container]")),
            };
            if !valid_name(namespace)
                || !valid_name(pod)
                || container.as_deref().is_some_and(|c| !valid_name(c))
            {
                return Err(bad("expected kubectl://[namespace/]pod[/container]"));
            }
            return Ok(Transport::Kubectl {
                namespace: namespace.into(),
                pod: pod.into(),
                container,
            });
        }
        Err(bad(
            "unknown target; use local, local://NAME, ssh://…, gcloud://… or kubectl://…",
        ))
    }

    /// Whether `argv` runs on this machine rather than on the target. On a `kubectl://`
    /// target, kubectl's own commands (`kubectl get pod`, `kubectl exec … -- iptables-save`)
    /// speak to the cluster's API server, which is reached from where kubectl is configured
    /// (this machine, with the kubeconfig that also carries the `exec` into the pod); inside
    /// the pod there is neither kubectl nor credentials for it. So a runbook can read the
    /// pod's object (annotations, restarts) and run commands in it in the same run.
    pub fn runs_here(&self, argv: &[String]) -> bool {
        matches!(self, Transport::Kubectl { .. }) && argv.first().is_some_and(|p| p == "kubectl")
    }

    /// The local argv that runs `argv` on the target.
    pub fn wrap(&self, argv: &[String]) -> Vec<String> {
        let quoted = || {
            argv.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out: Vec<String> = Vec::new();
        match self {
            Transport::Ssh { user, host, port } => {
                out.extend(
                    ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"].map(String::from),
                );
                if let Some(config) = std::env::var_os("TRIAGE_SSH_CONFIG") {
                    out.push("-F".into());
                    out.push(config.to_string_lossy().into_owned());
                }
                if let Some(p) = port {
                    out.extend(["-p".to_string(), p.to_string()]);
                }
                if let Some(u) = user {
                    out.extend(["-l".to_string(), u.clone()]);
                }
                out.extend([host.clone(), "--".into(), quoted()]);
            }
            Transport::Gcloud {
                instance,
                zone,
                project,
            } => {
                out.extend(["gcloud", "compute", "ssh"].map(String::from));
                out.push(instance.clone());
                out.extend(["--zone".to_string(), zone.clone()]);
                if let Some(p) = project {
                    out.extend(["--project".to_string(), p.clone()]);
                }
                out.extend(["--quiet".to_string(), "--command".to_string(), quoted()]);
            }
            Transport::Kubectl {
                namespace,
                pod,
                container,
            } => {
                out.extend(["kubectl", "exec", "-n"].map(String::from));
                out.push(namespace.clone());
                out.push(pod.clone());
                if let Some(c) = container {
                    out.extend(["-c".to_string(), c.clone()]);
                }
                out.push("--".into());
                out.extend(argv.iter().cloned());
            }
        }
        out
    }
}

impl RemoteTarget {
    /// A remote target through `transport`; `spec` is its name in reports.
    pub fn new(transport: Transport, spec: String) -> Self {
        RemoteTarget {
            transport,
            spec,
            local: local::LocalTarget::new(),
        }
    }

    /// Runs argv on the target; a transport failure (ssh exit 255, kubectl can't reach the
    /// pod) is a failed capability, not the command's answer.
    async fn remote(&self, argv: &[String], timeout: Duration) -> CapResult<ExecOutput> {
        let out = self.local.exec(&self.transport.wrap(argv), timeout).await?;
        if let Some(why) = gcloud_refusal(&self.transport, &out) {
            return Err(CapabilityError::Failed(format!(
                "gcloud compute ssh to {} failed: {why}",
                self.spec
            )));
        }
        if matches!(self.transport, Transport::Ssh { .. }) && out.status == 255 {
            let why = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            return Err(CapabilityError::Failed(format!(
                "ssh to {} failed: {why}",
                self.spec
            )));
        }
        Ok(out)
    }
}

/// Why `gcloud compute ssh` itself failed, if it did, rather than the command it carried:
/// ssh's own exit status 255 (no key accepted, OS Login denied, port 22 closed, IAP
/// refused), or gcloud's `ERROR: (gcloud.compute.ssh)` line (no such instance, instance not
/// running, no permission), which it prints only for its own errors. The remote command's
/// status otherwise passes through, and is the command's answer. The reason is the line
/// that says why: ssh's line before gcloud's generic "exited with return code [255]".
fn gcloud_refusal(transport: &Transport, out: &ExecOutput) -> Option<String> {
    if !matches!(transport, Transport::Gcloud { .. }) || out.status == 0 {
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let gcloud_error = lines.iter().any(|l| l.starts_with("ERROR: (gcloud."));
    if out.status != 255 && !gcloud_error {
        return None;
    }
    let generic = |l: &&&str| l.contains("exited with return code");
    let why = lines
        .iter()
        .rev()
        .find(|l| !generic(l) && !l.starts_with("Warning: Permanently added"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| format!("exit status {}", out.status));
    Some(why)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// An HTTP token (RFC 9110 section 5.6.2): what a method or a header name may be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// curl puts the method and headers into the request as given, so a line break in one
/// starts a second request the policy never saw (a header `X-A: a\r\n\r\nPOST /quit…`).
/// Methods and header names must be tokens; header values may not break the line.
fn check_request_text(request: &HttpRequest) -> Result<(), String> {
    if !is_token(&request.method) {
        return Err(format!(
            "bad HTTP method {:?}: a method is a single word of letters, digits and !#$%&'*+-.^_`|~",
            request.method
        ));
    }
    for (name, value) in &request.headers {
        if !is_token(name) {
            return Err(format!(
                "bad HTTP header name {name:?}: a header name is a single word of letters, digits and !#$%&'*+-.^_`|~"
            ));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(format!(
                "bad value of HTTP header {name}: it holds a line break or NUL"
            ));
        }
    }
    Ok(())
}

/// Splits `curl -i` output into status, headers and body (skipping `100 Continue`s).
fn parse_curl_response(raw: &[u8]) -> Option<HttpResponse> {
    let mut rest = raw;
    loop {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let body = &rest[end + 4..];
        let mut lines = head.lines();
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Some(HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        });
    }
}

impl Target for RemoteTarget {
    fn name(&self) -> String {
        self.spec.clone()
    }

    fn identity(&self) -> Identity {
        match &self.transport {
            Transport::Ssh { user, host, .. } => Identity {
                kind: "ssh".into(),
                host: Some(host.clone()),
                user: user.clone(),
                ..Default::default()
            },
            Transport::Gcloud {
                instance,
                zone,
                project,
            } => Identity {
                kind: "gcloud".into(),
                instance: Some(instance.clone()),
                zone: Some(zone.clone()),
                project: project.clone(),
                ..Default::default()
            },
            Transport::Kubectl {
                namespace,
                pod,
                container,
            } => Identity {
                kind: "kubectl".into(),
                namespace: Some(namespace.clone()),
                pod: Some(pod.clone()),
                container: container.clone(),
                ..Default::default()
            },
        }
    }
}

#[async_trait]
impl CarryOut for RemoteTarget {
    async fn exec(&self, argv: &[String], timeout: Duration) -> CapResult<ExecOutput> {
        if self.transport.runs_here(argv) {
            return self.local.exec(argv, timeout).await;
        }
        self.remote(argv, timeout).await
    }

    async fn http(&self, request: &HttpRequest, timeout: Duration) -> CapResult<HttpResponse> {
        check_request_text(request).map_err(CapabilityError::Failed)?;
        let secs = timeout.as_secs().max(1).to_string();
        // -q (first, or curl ignores it): no .curlrc of the target's user, which could add a
        // body, a method or a proxy to the request the policy checked.
        // --globoff: `[1-20]` or `{a,b}` in a URL is text, not twenty requests.
        // --proto: http and https only, whatever the URL says.
        let mut argv = strings(&[
            "curl",
            "-q",
            "-sS",
            "-i",
            "--globoff",
            "--proto",
            "=http,https",
            "--max-time",
            &secs,
        ]);
        // The method the grants allowed, and only it. HEAD is curl's --head: `-X HEAD` would
        // wait for a body that never comes.
        if request.method == "HEAD" {
            argv.push("--head".into());
        } else {
            argv.extend(strings(&["-X", &request.method]));
        }
        for (k, v) in &request.headers {
            argv.push("-H".into());
            argv.push(format!("{k}: {v}"));
        }
        argv.push("--".into());
        argv.push(request.url.clone());
        let out = self.remote(&argv, timeout).await?;
        if out.status != 0 {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(CapabilityError::Failed(format!(
                "{} {} on {}: {why}",
                request.method, request.url, self.spec
            )));
        }
        parse_curl_response(&out.stdout).ok_or_else(|| {
            CapabilityError::Failed(format!("{}: curl's answer has no HTTP head", request.url))
        })
    }

    async fn read_file(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<Vec<u8>> {
        let n = max_bytes.min(MAX_ANSWER_BYTES as u64).to_string();
        // One round trip answers the real path (links resolved), a NUL, then the bytes; the
        // bytes reach the plugin only if the policy allows the real path. Only a regular
        // file is read, so a FIFO cannot hang the read and a device cannot run forever.
        // Path and count reach sh as $1 and $2, never inside the script text.
        let script = r#"f=$(realpath -e -- "$1") || exit 3
[ -f "$f" ] || { echo "not a regular file: $f" >&2; exit 4; }
printf '%s\0' "$f"
exec head -c "$2" -- "$f""#;
        let out = self
            .remote(
                &strings(&["sh", "-c", script, "read-file", path, &n]),
                Duration::from_secs(60),
            )
            .await?;
        if out.status != 0 {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(CapabilityError::Failed(format!("{path}: {why}")));
        }
        let Some(nul) = out.stdout.iter().position(|b| *b == 0) else {
            return Err(CapabilityError::Failed(format!(
                "{path}: the target did not say where the path leads"
            )));
        };
        let real = String::from_utf8_lossy(&out.stdout[..nul]).into_owned();
        real_path_allowed(&real).map_err(CapabilityError::Denied)?;
        Ok(out.stdout[nul + 1..].to_vec())
    }

    async fn read_file_tail(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<FileTail> {
        let n = max_bytes.min(MAX_ANSWER_BYTES as u64).to_string();
        // As read_file: the real path and a NUL first, only a regular file; then the last
        // bytes, a NUL and the file's length. The length is taken after the bytes, so a log
        // growing meanwhile makes it larger, never smaller: the plugin may think it missed
        // the start when it did not, never the other way round. `tail -c` seeks on a regular
        // file: a gigabyte log costs what its end costs.
        let script = r#"f=$(realpath -e -- "$1") || exit 3
[ -f "$f" ] || { echo "not a regular file: $f" >&2; exit 4; }
printf '%s\0' "$f"
tail -c "$2" -- "$f" || exit 5
printf '\0'
exec wc -c < "$f""#;
        let out = self
            .remote(
                &strings(&["sh", "-c", script, "read-file-tail", path, &n]),
                Duration::from_secs(60),
            )
            .await?;
        if out.status != 0 {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(CapabilityError::Failed(format!("{path}: {why}")));
        }
        let unclear = || {
            CapabilityError::Failed(format!(
                "{path}: the target's answer is not a path, the bytes and a length"
            ))
        };
        // The path holds no NUL, the length neither: the first NUL and the last delimit the bytes.
        let first = out
            .stdout
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(unclear)?;
        let last = out
            .stdout
            .iter()
            .rposition(|b| *b == 0)
            .ok_or_else(unclear)?;
        if last == first {
            return Err(unclear());
        }
        let real = String::from_utf8_lossy(&out.stdout[..first]).into_owned();
        real_path_allowed(&real).map_err(CapabilityError::Denied)?;
        let size: u64 = std::str::from_utf8(&out.stdout[last + 1..])
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(unclear)?;
        let bytes = out.stdout[first + 1..last].to_vec();
        Ok(FileTail {
            size: size.max(bytes.len() as u64),
            bytes,
        })
    }

    async fn resolve(&self, host: &str) -> CapResult<Vec<String>> {
        let out = self
            .remote(
                &strings(&["getent", "ahosts", host]),
                Duration::from_secs(30),
            )
            .await?;
        if out.status != 0 {
            return Err(CapabilityError::Failed(format!(
                "cannot resolve {host} on {}",
                self.spec
            )));
        }
        let mut addrs: Vec<String> = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(a) = line.split_whitespace().next()
                && !addrs.iter().any(|x| x == a)
            {
                addrs.push(a.to_string());
            }
        }
        Ok(addrs)
    }

    async fn connect(&self, host: &str, port: u16, timeout: Duration) -> CapResult<u32> {
        let secs = timeout.as_secs().max(1).to_string();
        // Host and port reach bash as $1 and $2, never inside the script text.
        let script = "exec 3<>\"/dev/tcp/$1/$2\"";
        let argv = strings(&[
            "timeout",
            &secs,
            "bash",
            "-c",
            script,
            "connect",
            host,
            &port.to_string(),
        ]);
        let start = std::time::Instant::now();
        let out = self
            .remote(&argv, timeout + Duration::from_secs(15))
            .await?;
        match out.status {
            0 => Ok(start.elapsed().as_millis().min(u32::MAX as u128) as u32),
            124 => Err(CapabilityError::TimedOut(format!(
                "connect {host}:{port} from {}",
                self.spec
            ))),
            _ => Err(CapabilityError::Failed(format!(
                "connect {host}:{port} from {}: {}",
                self.spec,
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    /// The local clock: targets are expected to keep time (NTP), and asking costs a round trip.
    fn now(&self) -> i64 {
        self.local.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        strings(v)
    }

    #[test]
    fn ssh_quotes_every_argument() {
        let t = Transport::parse("ssh://root@10.0.0.5:2222").unwrap();
        let wrapped = t.wrap(&argv(&["stat", "-c", "%U|%a", "/var/log/x; rm -rf /"]));
        assert_eq!(
            &wrapped[..5],
            ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        );
        assert!(wrapped.windows(2).any(|w| w == ["-p", "2222"]));
        assert!(wrapped.windows(2).any(|w| w == ["-l", "root"]));
        assert_eq!(
            wrapped.last().unwrap(),
            "stat -c '%U|%a' '/var/log/x; rm -rf /'"
        );
    }

    #[test]
    fn gcloud_and_kubectl_argv() {
        let t = Transport::parse("gcloud://vm-1?zone=europe-west1-b&project=td-project-1").unwrap();
        assert_eq!(
            t.wrap(&argv(&["iptables", "-t", "nat", "-S"])),
            argv(&[
                "gcloud",
                "compute",
                "ssh",
                "vm-1",
                "--zone",
                "europe-west1-b",
                "--project",
                "td-project-1",
                "--quiet",
                "--command",
                "iptables -t nat -S"
            ])
        );
        let t = Transport::parse("kubectl://shop/web-1/envoy").unwrap();
        assert_eq!(
            t.wrap(&argv(&["cat", "/etc/envoy/envoy.yaml"])),
            argv(&[
                "kubectl",
                "exec",
                "-n",
                "shop",
                "web-1",
                "-c",
                "envoy",
                "--",
                "cat",
                "/etc/envoy/envoy.yaml"
            ])
        );
        let t = Transport::parse("kubectl://web-1").unwrap();
        assert_eq!(
            t.wrap(&argv(&["ps"]))[..5],
            argv(&["kubectl", "exec", "-n", "default", "web-1"])[..]
        );
    }

    #[test]
    fn kubectl_commands_of_a_kubectl_target_run_here() {
        let pod = Transport::parse("kubectl://shop/web-1/envoy").unwrap();
        assert!(pod.runs_here(&argv(&[
            "kubectl", "get", "pod", "-n", "shop", "-o", "json", "--", "web-1"
        ])));
        assert!(!pod.runs_here(&argv(&["iptables-save", "-t", "nat"])));
        // Only the program's name counts, not an argument that happens to say kubectl.
        assert!(!pod.runs_here(&argv(&["cat", "kubectl"])));
        assert!(!pod.runs_here(&[]));
        // Over ssh or gcloud, kubectl is whatever the remote machine has.
        let vm = Transport::parse("ssh://10.0.0.5").unwrap();
        assert!(!vm.runs_here(&argv(&["kubectl", "get", "pods"])));
    }

    #[test]
    fn bad_targets_are_refused() {
        for bad in [
            "ssh://",
            "ssh://-oProxyCommand=x",
            "ssh://h:notaport",
            "gcloud://vm",
            "gcloud://vm?zone=a&evil=1",
            "kubectl://a/b/c/d",
            "kubectl://-n",
            "ftp://x",
        ] {
            assert!(Transport::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gcloud_names_cannot_become_options_or_shell() {
        // Each value is hostile in one slot: it would be read by gcloud as an option
        // (`--command=id` as the instance runs `id` instead), by the shell as syntax, or
        // it is not a Compute Engine name at all.
        for bad in [
            "gcloud://--command=id?zone=us-central1-a",
            "gcloud://-vm?zone=us-central1-a",
            "gcloud://a;b?zone=us-central1-a",
            "gcloud://vm?zone=--command=id",
            "gcloud://vm?zone=us-central1-a;id",
            "gcloud://vm?zone=us-central1-a&project=--command=id",
            "gcloud://vm?zone=us-central1-a&project=a;b",
            "gcloud://vm?zone=us-central1-a&project=evil:my-project",
            "gcloud://VM?zone=us-central1-a",
            "gcloud://vm_1?zone=us-central1-a",
            "gcloud://vm-?zone=us-central1-a",
            "gcloud://vm?zone=us-central1-a&project=td-demo$(id)",
        ] {
            let err = Transport::parse(bad).expect_err(bad);
            assert!(err.contains("gcloud"), "{bad}: {err}");
        }
        for good in [
            "gcloud://td-vm-1?zone=us-central1-a",
            "gcloud://td-vm-1?zone=northamerica-northeast1-b&project=td-demo-project",
            "gcloud://vm?zone=us-central1-a&project=example.com:my-project",
        ] {
            assert!(Transport::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn gcloud_refusals_are_told_from_the_commands_answer() {
        let t = Transport::parse("gcloud://td-vm-1?zone=us-central1-a").unwrap();
        let out = |status: i32, stderr: &str| ExecOutput {
            status,
            stdout: vec![],
            stderr: stderr.as_bytes().to_vec(),
        };
        // ssh refused the key: ssh's line, not gcloud's "exited with return code".
        assert_eq!(
            gcloud_refusal(
                &t,
                &out(
                    255,
                    "alice@203.0.113.7: Permission denied (publickey).\nERROR: (gcloud.compute.ssh) [/usr/bin/ssh] exited with return code [255].\n"
                )
            )
            .as_deref(),
            Some("alice@203.0.113.7: Permission denied (publickey).")
        );
        // gcloud's own error (exit 1): its ERROR line.
        let stopped = "ERROR: (gcloud.compute.ssh) Instance [td-vm-1] in zone [us-central1-a] is not running.";
        assert_eq!(
            gcloud_refusal(&t, &out(1, stopped)).as_deref(),
            Some(stopped)
        );
        // The remote command's own failure (sudo, iptables) is its answer, not a refusal,
        // and ssh's known-hosts warning does not make one either.
        assert_eq!(
            gcloud_refusal(
                &t,
                &out(
                    1,
                    "Warning: Permanently added 'compute.1' (ED25519) to the list of known hosts.\nsudo: a password is required\n"
                )
            ),
            None
        );
        assert_eq!(gcloud_refusal(&t, &out(0, "ERROR: (gcloud.x) y")), None);
        let ssh = Transport::parse("ssh://h").unwrap();
        assert_eq!(gcloud_refusal(&ssh, &out(255, "x")), None);
    }

    #[test]
    fn methods_and_headers_cannot_start_another_request() {
        let request = |method: &str, name: &str, value: &str| HttpRequest {
            method: method.into(),
            url: "http://127.0.0.1:15000/stats".into(),
            headers: vec![(name.into(), value.into())],
        };
        assert!(check_request_text(&request("GET", "Metadata-Flavor", "Google")).is_ok());
        for (method, name, value) in [
            ("GET", "X-A", "a\r\n\r\nPOST /quitquitquit HTTP/1.1"),
            ("GET", "X-A", "a\nb"),
            ("GET", "X-A", "a\0b"),
            ("GET", "X-A: b\r\nX-B", "c"),
            ("GET", "X A", "c"),
            ("GET", "", "c"),
            ("POST /quitquitquit HTTP/1.1\r\n\r\nGET", "X-A", "b"),
            ("GET /x", "X-A", "b"),
            ("", "X-A", "b"),
        ] {
            assert!(
                check_request_text(&request(method, name, value)).is_err(),
                "{method:?} {name:?} {value:?}"
            );
        }
    }

    #[test]
    fn curl_heads_parse() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope";
        let r = parse_curl_response(raw).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"nope");
        assert_eq!(
            r.headers[0],
            ("content-type".to_string(), "text/plain".to_string())
        );
        assert!(parse_curl_response(b"garbage").is_none());
    }
}
