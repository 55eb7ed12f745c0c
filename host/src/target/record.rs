//! Recording: a target wrapper that remembers every answer and writes them as a bundle.
//!
//! The plugins see the answers as the target gave them (the diagnosis needs them whole);
//! the bundle gets them redacted ([`crate::redact`]): the calls (a token in a URL or on a
//! command line), every answer, and every error text, with `redacted:` in bundle.yaml
//! listing how many values each pattern took. A call whose own text was redacted is not
//! found when the bundle is replayed (its key changed); that is the price of a bundle
//! that can go into a ticket.

use super::bundle::{BUNDLE_FILE, BundleFile, HttpKey, RecordedCall, RecordedError};
use super::*;
use crate::redact::{Redactor, Tally};
use std::path::Path;
use std::sync::Mutex;

/// Answers up to this size that are valid UTF-8 stay inline in bundle.yaml; the rest go to
/// side files, which keeps the YAML readable and binary answers intact.
const INLINE_LIMIT: usize = 4096;

pub struct RecordingTarget {
    inner: Arc<dyn Target>,
    calls: Mutex<Vec<Recorded>>,
    started_at: i64,
    redact: Arc<Redactor>,
}

use std::sync::Arc;

/// One call as recorded, with the answers that may go to side files.
type Recorded = (RecordedCall, Vec<(SideSlot, Vec<u8>)>);

#[derive(Clone, Copy)]
enum SideSlot {
    Stdout,
    Stderr,
    Body,
}

impl RecordingTarget {
    pub fn new(inner: Arc<dyn Target>, redact: Arc<Redactor>) -> Self {
        let started_at = inner.now();
        RecordingTarget {
            inner,
            calls: Mutex::new(Vec::new()),
            started_at,
            redact,
        }
    }

    fn push(&self, call: RecordedCall, blobs: Vec<(SideSlot, Vec<u8>)>) {
        let mut calls = self.calls.lock().expect("recording lock");
        calls.push((call, blobs));
    }

    /// Writes the bundle atomically: everything goes to a temporary directory beside
    /// `dir`, which is renamed into place only when complete. An existing non-empty
    /// directory is never overwritten.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        if dir.exists() {
            let empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                anyhow::bail!(
                    "{}: already exists; choose a new directory for the recording",
                    dir.display()
                );
            }
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let tmp = tempfile::Builder::new()
            .prefix(".triage-bundle-")
            .tempdir_in(&parent)?;
        let calls = self.calls.lock().expect("recording lock");
        let tally = &mut Tally::default();
        let mut file = BundleFile {
            target: Some(self.inner.name()),
            recorded_at: Some(self.started_at),
            // A local recording needs no identity: replaying answers `local` anyway.
            identity: Some(self.inner.identity()).filter(|i| *i != Identity::local()),
            redacted: Vec::new(),
            calls: Vec::new(),
        };
        for (index, (call, blobs)) in calls.iter().enumerate() {
            let mut call = call.clone();
            self.redact_call(&mut call, tally);
            // Named after the redacted call: a file name must not carry a secret either.
            let original = &call.clone();
            for (slot, bytes) in blobs {
                let redacted = self.redact.bytes(bytes, tally);
                let bytes = redacted.as_ref();
                let inline = bytes.len() <= INLINE_LIMIT
                    && std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\r'));
                let (inline_field, file_field, suffix) = match slot {
                    SideSlot::Stdout => (&mut call.stdout, &mut call.stdout_file, "stdout"),
                    SideSlot::Stderr => (&mut call.stderr, &mut call.stderr_file, "stderr"),
                    SideSlot::Body => (&mut call.body, &mut call.body_file, "body"),
                };
                if bytes.is_empty() {
                    continue;
                }
                let name = format!("{:03}-{}.{suffix}", index + 1, slug(original));
                if inline {
                    *inline_field = Some(String::from_utf8_lossy(bytes).into_owned());
                } else {
                    std::fs::write(tmp.path().join(&name), bytes)?;
                    *file_field = Some(name);
                }
            }
            file.calls.push(call);
        }
        file.redacted = tally.entries();
        let yaml = serde_yaml::to_string(&file)?;
        std::fs::write(tmp.path().join(BUNDLE_FILE), yaml)?;
        let tmp = tmp.keep();
        if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&tmp, dir).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&tmp);
        })?;
        Ok(())
    }
}

impl RecordingTarget {
    /// The text of a call that is not an answer: what was asked, and an error message.
    fn redact_call(&self, call: &mut RecordedCall, tally: &mut Tally) {
        let redact = &self.redact;
        if let Some(argv) = &mut call.exec {
            redact.argv(argv, tally);
        }
        if let Some(http) = &mut call.http {
            redact.string(&mut http.url, tally);
        }
        for text in [&mut call.read, &mut call.resolve, &mut call.connect]
            .into_iter()
            .flatten()
        {
            redact.string(text, tally);
        }
        if let Some(error) = &mut call.error {
            for text in [&mut error.failed, &mut error.timed_out]
                .into_iter()
                .flatten()
            {
                redact.string(text, tally);
            }
        }
    }
}

fn slug(call: &RecordedCall) -> String {
    let raw = if let Some(argv) = &call.exec {
        argv.join("-")
    } else if let Some(h) = &call.http {
        h.url.rsplit('/').next().unwrap_or("http").to_string()
    } else if let Some(p) = &call.read {
        p.rsplit('/').next().unwrap_or("file").to_string()
    } else {
        "call".into()
    };
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(40);
    s
}

fn error_of(e: &CapabilityError) -> Option<RecordedError> {
    match e {
        CapabilityError::Failed(m) => Some(RecordedError {
            failed: Some(m.clone()),
            timed_out: None,
        }),
        CapabilityError::TimedOut(m) => Some(RecordedError {
            failed: None,
            timed_out: Some(m.clone()),
        }),
        // A denial happens before the target is asked and is not an answer of the target;
        // not-captured only arises when replaying.
        CapabilityError::Denied(_) | CapabilityError::NotCaptured(_) => None,
    }
}

impl Target for RecordingTarget {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn identity(&self) -> Identity {
        self.inner.identity()
    }
}

#[async_trait]
impl CarryOut for RecordingTarget {
    async fn exec(&self, argv: &[String], timeout: Duration) -> CapResult<ExecOutput> {
        let result = self.inner.exec(argv, timeout).await;
        let mut call = RecordedCall {
            exec: Some(argv.to_vec()),
            ..Default::default()
        };
        match &result {
            Ok(out) => {
                call.status = Some(out.status);
                self.push(
                    call,
                    vec![
                        (SideSlot::Stdout, out.stdout.clone()),
                        (SideSlot::Stderr, out.stderr.clone()),
                    ],
                );
            }
            Err(e) => {
                if let Some(err) = error_of(e) {
                    call.error = Some(err);
                    self.push(call, vec![]);
                }
            }
        }
        result
    }

    async fn http(&self, request: &HttpRequest, timeout: Duration) -> CapResult<HttpResponse> {
        let result = self.inner.http(request, timeout).await;
        let mut call = RecordedCall {
            http: Some(HttpKey {
                method: request.method.clone(),
                url: request.url.clone(),
            }),
            ..Default::default()
        };
        match &result {
            Ok(r) => {
                call.status = Some(r.status as i32);
                self.push(call, vec![(SideSlot::Body, r.body.clone())]);
            }
            Err(e) => {
                if let Some(err) = error_of(e) {
                    call.error = Some(err);
                    self.push(call, vec![]);
                }
            }
        }
        result
    }

    async fn read_file(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<Vec<u8>> {
        let result = self
            .inner
            .read_file(path, max_bytes, real_path_allowed)
            .await;
        let mut call = RecordedCall {
            read: Some(path.to_string()),
            ..Default::default()
        };
        match &result {
            Ok(body) => self.push(call, vec![(SideSlot::Body, body.clone())]),
            Err(e) => {
                if let Some(err) = error_of(e) {
                    call.error = Some(err);
                    self.push(call, vec![]);
                }
            }
        }
        result
    }

    async fn read_file_tail(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<FileTail> {
        let result = self
            .inner
            .read_file_tail(path, max_bytes, real_path_allowed)
            .await;
        let mut call = RecordedCall {
            read: Some(path.to_string()),
            ..Default::default()
        };
        match &result {
            Ok(tail) => {
                // `size` only when the start was not read: a whole file is recorded as a
                // plain read (redaction may change its length, and it replays either way).
                if (tail.bytes.len() as u64) < tail.size {
                    call.size = Some(tail.size);
                }
                self.push(call, vec![(SideSlot::Body, tail.bytes.clone())]);
            }
            Err(e) => {
                if let Some(err) = error_of(e) {
                    call.error = Some(err);
                    self.push(call, vec![]);
                }
            }
        }
        result
    }

    async fn resolve(&self, host: &str) -> CapResult<Vec<String>> {
        let result = self.inner.resolve(host).await;
        let mut call = RecordedCall {
            resolve: Some(host.to_string()),
            ..Default::default()
        };
        match &result {
            Ok(addrs) => call.addresses = Some(addrs.clone()),
            Err(e) => call.error = error_of(e),
        }
        self.push(call, vec![]);
        result
    }

    async fn connect(&self, host: &str, port: u16, timeout: Duration) -> CapResult<u32> {
        let result = self.inner.connect(host, port, timeout).await;
        let mut call = RecordedCall {
            connect: Some(format!("{host}:{port}")),
            ..Default::default()
        };
        match &result {
            Ok(ms) => call.elapsed_ms = Some(*ms),
            Err(e) => call.error = error_of(e),
        }
        self.push(call, vec![]);
        result
    }

    fn now(&self) -> i64 {
        self.inner.now()
    }

    /// The check runs on the recorded target but is not part of the recording: a replay
    /// runs nothing and needs no owner.
    async fn executable_owner(&self, pid: u32, timeout: Duration) -> CapResult<Option<(u32, u32)>> {
        self.inner.executable_owner(pid, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::bundle::BundleTarget;
    use crate::target::local::LocalTarget;

    fn allow_all(_: &str) -> Result<(), String> {
        Ok(())
    }

    /// A tail read is recorded with the file's length and replays as read; a plain read of
    /// that bundle is not captured (the file's start is not in it), and a tail read of a
    /// plain read replays its body as the whole file.
    #[tokio::test]
    async fn tail_reads_record_and_replay_with_the_files_length() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("envoy.err.log");
        let text = "line one\n".repeat(1000) + "the last line\n";
        std::fs::write(&log, &text).unwrap();
        let path = log.to_str().unwrap();
        let whole = dir.path().join("whole.log");
        std::fs::write(&whole, "a short log\n").unwrap();

        let recorder =
            RecordingTarget::new(Arc::new(LocalTarget::new()), Arc::new(Redactor::builtin()));
        let live = recorder.read_file_tail(path, 14, &allow_all).await.unwrap();
        assert_eq!(live.bytes, b"the last line\n");
        assert_eq!(live.size, text.len() as u64);
        let short = whole.to_str().unwrap();
        recorder
            .read_file(short, 1 << 20, &allow_all)
            .await
            .unwrap();
        let bundle_dir = dir.path().join("bundle");
        recorder.write(&bundle_dir).unwrap();

        let bundle = BundleTarget::open(&bundle_dir).unwrap();
        let replayed = bundle
            .read_file_tail(path, 1 << 20, &allow_all)
            .await
            .unwrap();
        assert_eq!(replayed, live);
        let fewer = bundle.read_file_tail(path, 5, &allow_all).await.unwrap();
        assert_eq!(
            (fewer.bytes.as_slice(), fewer.size),
            (&b"line\n"[..], live.size)
        );
        let head = bundle.read_file(path, 100, &allow_all).await.unwrap_err();
        assert!(
            matches!(&head, CapabilityError::NotCaptured(m) if m.contains("holds only the last 14 of the")),
            "{head}"
        );

        let tail = bundle.read_file_tail(short, 6, &allow_all).await.unwrap();
        assert_eq!((tail.bytes.as_slice(), tail.size), (&b"t log\n"[..], 12));
    }
}
