//! The local target: capabilities carried out on this machine.

use super::*;
use crate::target::files;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

pub struct LocalTarget {
    /// `local://NAME`'s name (checked by `Spec::parse`); `None` for plain `local`.
    name: Option<String>,
    http: reqwest::Client,
    /// What a command a plugin asks for runs with: see [`passed_env`].
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

/// Variables a command a plugin asked for (iptables, envoy, kubectl, gcloud, ssh) still
/// sees; every other one is removed. triage's own environment holds secrets the commands
/// have no use for (`triage serve`'s chat and API tokens named by `token_env`, PGPASSWORD,
/// TRIAGE_REPORT_TOKEN), and a command that printed its environment would hand them to a
/// plugin and into a report. Kept: what finds programs and the user's config (PATH, HOME,
/// XDG_*), locale and time zone, kubectl's and gcloud's own settings (KUBECONFIG, KUBE*,
/// CLOUDSDK_*), ssh's agent, and proxies.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];
const PASSED_ENV_PREFIXES: &[&str] = &["LC_", "XDG_", "KUBE", "CLOUDSDK_"];

/// The variables of `vars` a command keeps: those above, and the names listed in
/// `TRIAGE_PASS_ENV` (comma-separated), for a team whose commands need one more.
fn passed_env(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    pass_env: &str,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let extra: Vec<&str> = pass_env
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    vars.filter(|(name, _)| {
        let Some(name) = name.to_str() else {
            return false;
        };
        PASSED_ENV.contains(&name)
            || PASSED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
            || extra.contains(&name)
    })
    .collect()
}

impl LocalTarget {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            // The metadata server and Envoy's admin port are plain HTTP on the same host:
            // a proxy in the environment would only get in the way.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with no TLS builds");
        let pass_env = std::env::var("TRIAGE_PASS_ENV").unwrap_or_default();
        LocalTarget {
            name: None,
            http,
            env: passed_env(std::env::vars_os(), &pass_env),
        }
    }

    /// This machine under a name of its own (`local://NAME`): what reports, fleets and a
    /// server call it, so that machines each checking themselves are told apart. The name
    /// must already be checked (`Spec::parse` does).
    pub fn named(name: &str) -> Self {
        LocalTarget {
            name: Some(name.to_string()),
            ..Self::new()
        }
    }
}

impl Default for LocalTarget {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads a stream up to `cap` bytes, then drains the rest so the child never blocks.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if out.len() < cap {
            let take = n.min(cap - out.len());
            out.extend_from_slice(&buf[..take]);
            truncated |= take < n;
        } else {
            truncated = true;
        }
    }
    Ok((out, truncated))
}

impl Target for LocalTarget {
    fn name(&self) -> String {
        match &self.name {
            Some(name) => format!("{}{name}", super::spec::LOCAL_NAMED),
            None => "local".into(),
        }
    }
}

#[async_trait]
impl CarryOut for LocalTarget {
    async fn exec(&self, argv: &[String], timeout: Duration) -> CapResult<ExecOutput> {
        let Some((program, args)) = argv.split_first() else {
            return Err(CapabilityError::Failed("empty argv".into()));
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CapabilityError::Failed(format!("cannot run `{program}`: {e}")))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let work = async {
            let (out, err, status) = tokio::join!(
                read_capped(stdout, MAX_ANSWER_BYTES),
                read_capped(stderr, 1 << 20),
                child.wait()
            );
            let io = |e: std::io::Error| CapabilityError::Failed(format!("`{program}`: {e}"));
            let (stdout, truncated) = out.map_err(io)?;
            if truncated {
                return Err(CapabilityError::Failed(format!(
                    "`{program}` printed more than {} MiB",
                    MAX_ANSWER_BYTES >> 20
                )));
            }
            let (stderr, _) = err.map_err(io)?;
            let status = status.map_err(io)?.code().unwrap_or(-1);
            Ok(ExecOutput {
                status,
                stdout,
                stderr,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(CapabilityError::TimedOut(format!(
                "`{program}` ran longer than {} ms",
                timeout.as_millis()
            ))),
        }
    }

    async fn http(&self, request: &HttpRequest, timeout: Duration) -> CapResult<HttpResponse> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| CapabilityError::Failed(format!("bad HTTP method {}", request.method)))?;
        let mut builder = self.http.request(method, &request.url).timeout(timeout);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                CapabilityError::TimedOut(format!("{} {}", request.method, request.url))
            } else {
                CapabilityError::Failed(format!(
                    "{} {}: {}",
                    request.method,
                    request.url,
                    error_chain(&e)
                ))
            }
        };
        let mut response = builder.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CapabilityError::Failed(format!(
                    "{} answered more than {} MiB",
                    request.url,
                    MAX_ANSWER_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    async fn read_file(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<Vec<u8>> {
        let cap = max_bytes.min(MAX_ANSWER_BYTES as u64);
        let failed = |e: &dyn std::fmt::Display| CapabilityError::Failed(format!("{path}: {e}"));
        // Resolve links, let the policy judge where they lead, then open that real path
        // refusing any link (one swapped in since is refused, not followed).
        let real = files::resolve(std::path::Path::new(path)).map_err(|e| failed(&e))?;
        let real_text = real
            .to_str()
            .ok_or_else(|| failed(&"the real path is not UTF-8"))?;
        real_path_allowed(real_text).map_err(CapabilityError::Denied)?;
        // One blocking read into a buffer sized from the file's length. tokio's async file
        // reads go through a bounce buffer in 2 MiB pieces and grow the Vec by doubling,
        // which made a 50 MB read about 1.5x slower than this. Regular files only, so the
        // read cannot block on a FIFO or run forever on a device.
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, files::FileError> {
            Ok(files::read_at_most(files::open_resolved(&real)?, cap)?)
        })
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&e))
    }

    async fn read_file_tail(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<FileTail> {
        let cap = max_bytes.min(MAX_ANSWER_BYTES as u64);
        let failed = |e: &dyn std::fmt::Display| CapabilityError::Failed(format!("{path}: {e}"));
        // The same checks as read_file: the real path judged by the policy, opened with no
        // link followed, regular files only (a FIFO or device is refused, never waited on).
        let real = files::resolve(std::path::Path::new(path)).map_err(|e| failed(&e))?;
        let real_text = real
            .to_str()
            .ok_or_else(|| failed(&"the real path is not UTF-8"))?;
        real_path_allowed(real_text).map_err(CapabilityError::Denied)?;
        let (bytes, size) = tokio::task::spawn_blocking(move || -> Result<_, files::FileError> {
            Ok(files::read_tail(files::open_resolved(&real)?, cap)?)
        })
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&e))?;
        Ok(FileTail { bytes, size })
    }

    async fn resolve(&self, host: &str) -> CapResult<Vec<String>> {
        let addrs = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| CapabilityError::Failed(format!("cannot resolve {host}: {e}")))?;
        let mut out: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
        out.dedup();
        Ok(out)
    }

    async fn connect(&self, host: &str, port: u16, timeout: Duration) -> CapResult<u32> {
        let start = std::time::Instant::now();
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_stream)) => Ok(start.elapsed().as_millis().min(u32::MAX as u128) as u32),
            Ok(Err(e)) => Err(CapabilityError::Failed(format!(
                "connect {host}:{port}: {e}"
            ))),
            Err(_) => Err(CapabilityError::TimedOut(format!(
                "connect {host}:{port} took longer than {} ms",
                timeout.as_millis()
            ))),
        }
    }

    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn vars(names: &[&str]) -> Vec<(OsString, OsString)> {
        names
            .iter()
            .map(|n| (OsString::from(n), OsString::from("v")))
            .collect()
    }

    #[test]
    fn a_command_keeps_only_what_finds_programs_and_config_and_the_names_passed() {
        let all = vars(&[
            "PATH",
            "HOME",
            "LC_ALL",
            "KUBECONFIG",
            "KUBECACHEDIR",
            "CLOUDSDK_CONFIG",
            "SSH_AUTH_SOCK",
            "PGPASSWORD",
            "TRIAGE_REPORT_TOKEN",
            "SLACK_SIGNING_SECRET",
            "TRIAGE_OPS_BOT_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "MY_TOOL_MODE",
        ]);
        let kept = |pass: &str| -> Vec<String> {
            passed_env(all.clone().into_iter(), pass)
                .into_iter()
                .map(|(k, _)| k.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            kept(""),
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "KUBECONFIG",
                "KUBECACHEDIR",
                "CLOUDSDK_CONFIG",
                "SSH_AUTH_SOCK"
            ]
        );
        assert!(kept(" MY_TOOL_MODE ,, ").contains(&"MY_TOOL_MODE".to_string()));
        // A prefix is not a name: TRIAGE_PASS_ENV=PG passes no PGPASSWORD.
        assert!(!kept("PG").contains(&"PGPASSWORD".to_string()));
    }

    /// The real thing: `env` run through the local target sees PATH but none of the
    /// variables cargo gives this test process (CARGO_PKG_NAME and the like).
    #[tokio::test]
    async fn a_command_run_for_a_plugin_does_not_see_triages_environment() {
        assert!(
            std::env::var_os("CARGO_PKG_NAME").is_some(),
            "run under cargo test"
        );
        let out = LocalTarget::new()
            .exec(&["env".to_string()], Duration::from_secs(10))
            .await
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.lines().any(|l| l.starts_with("PATH=")), "{text}");
        assert!(!text.contains("CARGO_PKG_NAME="), "{text}");
    }
}
