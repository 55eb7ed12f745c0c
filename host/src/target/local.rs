//! The local target: capabilities carried out on this machine.

use super::*;
use crate::target::files;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

pub struct LocalTarget {
    http: reqwest::Client,
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
        LocalTarget { http }
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
        "local".into()
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
