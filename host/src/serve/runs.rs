//! The run manager: admits runs (bounded queue), runs them (bounded concurrency, a deadline
//! each), records every change in the history, and keeps an event log per live run for
//! `GET /v1/runs/{id}/events` and for the Slack poster.

use super::config::{Limits, Scope};
use super::metrics::Metrics;
use super::rate::RateLimiter;
use super::store::{ClaimedRun, InterruptedRun, NewRun, Outcome, Store};
use crate::capability::Policy;
use crate::engine::{self, inputs};
use crate::report::{FindingReport, Report, StepReport, rfc3339};
use crate::run;
use crate::runbook::{LoadedRunbook, Severity};
use crate::runtime::Runtime;
use crate::target::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, Semaphore, watch};

/// Where a run is. `ok`, `failing` and `incomplete` come with a report and mean what the
/// CLI's exit codes 0, 1 and 3 mean; `unreachable`, `timed-out` and `interrupted` are ends
/// without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Running,
    /// Ran to an outcome, as a fleet target does (see [`run::Status`]).
    Ended(run::Status),
    /// The server stopped before the run ended.
    Interrupted,
}

impl RunStatus {
    /// The statuses a run can end with.
    pub const ENDS: [RunStatus; 6] = [
        RunStatus::Ended(run::Status::Ok),
        RunStatus::Ended(run::Status::Failing),
        RunStatus::Ended(run::Status::Incomplete),
        RunStatus::Ended(run::Status::Unreachable),
        RunStatus::Ended(run::Status::TimedOut),
        RunStatus::Interrupted,
    ];

    /// Every status, in the order a run goes through them.
    pub fn all() -> impl Iterator<Item = RunStatus> {
        [RunStatus::Queued, RunStatus::Running]
            .into_iter()
            .chain(RunStatus::ENDS)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Ended(status) => status.as_str(),
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn from_name(text: &str) -> Option<RunStatus> {
        RunStatus::all().find(|s| s.as_str() == text)
    }

    /// The history's status text back to the enum; text no status spells (a newer
    /// server's, or a damaged row) reads as interrupted rather than failing the whole
    /// listing.
    pub fn from_stored(text: &str) -> RunStatus {
        RunStatus::from_name(text).unwrap_or(RunStatus::Interrupted)
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RunStatus::from_name(&text).ok_or_else(|| {
            let names: Vec<&'static str> = RunStatus::all().map(RunStatus::as_str).collect();
            serde::de::Error::custom(format!(
                "unknown status `{text}`, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

impl utoipa::PartialSchema for RunStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Where a run is. `ok`, `failing` and `incomplete` come with a report and mean \
                 what the CLI's exit codes 0, 1 and 3 mean; `unreachable`, `timed-out` and \
                 `interrupted` are ends without one.",
            ))
            .enum_values(Some(RunStatus::all().map(RunStatus::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for RunStatus {}

/// What `GET /v1/runs/{id}/events` sends, one server-sent event each (the event name is the
/// `event` field).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    Queued {
        run: String,
    },
    Started {
        run: String,
        at: String,
    },
    /// A step ended (passed, failed, skipped or errored) with the findings it fired.
    Step {
        run: String,
        step: String,
        title: String,
        status: String,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        findings: Vec<EventFinding>,
    },
    /// The last event of every run.
    Finished {
        run: String,
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl RunEvent {
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::Queued { .. } => "queued",
            RunEvent::Started { .. } => "started",
            RunEvent::Step { .. } => "step",
            RunEvent::Finished { .. } => "finished",
        }
    }

    pub fn step(run: &str, s: &StepReport, findings: &[FindingReport]) -> RunEvent {
        RunEvent::Step {
            run: run.to_string(),
            step: s.id.clone(),
            title: s.title.clone(),
            status: s.status.as_str().to_string(),
            duration_ms: s.duration_ms,
            reason: s.reason.clone(),
            findings: findings
                .iter()
                .map(|f| EventFinding {
                    id: f.id.clone(),
                    severity: f.severity.as_str().to_string(),
                    title: f.title.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventFinding {
    pub id: String,
    pub severity: String,
    pub title: String,
}

/// A run in flight: its events so far, and a counter that wakes whoever follows them.
pub struct LiveRun {
    events: Mutex<Vec<RunEvent>>,
    count: watch::Sender<usize>,
    /// Set by whoever records the run's end first (the run itself, or shutdown).
    ended: AtomicBool,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
    /// The report, once the run has one (the Slack poster renders it).
    report: Mutex<Option<Arc<Report>>>,
    /// What its end is posted with.
    info: RunInfo,
}

/// What a run's end is posted with: the names the chat knows, and where to post.
struct RunInfo {
    runbook: String,
    target: String,
    notify: Option<String>,
}

impl LiveRun {
    fn new(info: RunInfo) -> Self {
        LiveRun {
            info,
            events: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            ended: AtomicBool::new(false),
            abort: Mutex::new(None),
            report: Mutex::new(None),
        }
    }

    fn push(&self, event: RunEvent) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events.push(event);
        self.count.send_replace(events.len());
    }

    /// Events from index `from` on, once there are any; empty when the run has ended and
    /// there is nothing past `from`.
    pub async fn next_events(&self, from: usize) -> Vec<RunEvent> {
        let mut rx = self.count.subscribe();
        loop {
            {
                let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
                if events.len() > from {
                    return events[from..].to_vec();
                }
                if matches!(events.last(), Some(RunEvent::Finished { .. })) {
                    return Vec::new();
                }
            }
            if rx.changed().await.is_err() {
                return Vec::new();
            }
        }
    }

    /// Waits for the run's end; returns its last event and its report (if it has one).
    pub async fn finished(&self) -> (RunEvent, Option<Arc<Report>>) {
        let mut seen = 0;
        loop {
            let batch = self.next_events(seen).await;
            seen += batch.len();
            if let Some(last @ RunEvent::Finished { .. }) = batch.last() {
                let report = self
                    .report
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                return (last.clone(), report);
            }
            if batch.is_empty() {
                // Ended without a Finished event cannot happen; do not spin if it does.
                let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
                let last = events.last().cloned().expect("a run has events");
                return (last, None);
            }
        }
    }
}

/// Who submits a run, as `Runs::submit` needs it.
pub struct Origin<'a> {
    /// The name the history records (`token:NAME`, `slack:USER`).
    pub requested_by: String,
    /// The run rates the run counts against: a token's, or a chat user's (and, for a chat
    /// whose users can be forged, the whole chat's). It starts only if every one has room.
    pub rates: Vec<RateBucket>,
    /// What the caller may run.
    pub scope: &'a Scope,
    /// Where a chat hears of the run's end; kept in the history in case the server dies
    /// first.
    pub notify: Option<String>,
}

/// One run rate a run counts against.
pub struct RateBucket {
    /// Whose bucket (a token's name, `slack:TEAM:USER`, …).
    pub key: String,
    /// Its runs a minute; `None`: `limits.runs_per_minute_per_caller`.
    pub per_minute: Option<u32>,
    /// How a refusal names it (`token:ops`, `mattermost:alice`, `every mattermost user`).
    pub who: String,
}

/// What a caller asks for. Targets are names from the config file, never specs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// A runbook id (`GET /v1/runbooks`).
    pub runbook: String,
    /// A target name from the server's config (`GET /v1/targets`).
    pub target: String,
    /// Input values by name: strings, numbers, booleans, or lists of them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Answers to ask steps, by step id.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

#[derive(Debug)]
pub enum SubmitError {
    /// The request names something that is not there, or gives a bad value (HTTP 400).
    Invalid(String),
    /// The caller's scope does not include that runbook or target (HTTP 403).
    Forbidden(String),
    /// The queue is full; try again in this many seconds (HTTP 429).
    Busy { retry_after: u64 },
    /// This caller started its `per_minute` runs; the next may start in `retry_after`
    /// seconds (HTTP 429).
    RateLimited {
        caller: String,
        per_minute: u32,
        retry_after: u64,
    },
    /// The server is shutting down (HTTP 503).
    ShuttingDown,
    /// The history could not be written (HTTP 500).
    Internal(String),
}

impl SubmitError {
    /// Every reason, as `triage_runs_refused_total` labels them.
    pub const REASONS: [&'static str; 6] = [
        "invalid",
        "forbidden",
        "queue-full",
        "rate-limited",
        "shutting-down",
        "internal",
    ];

    /// Why the run was refused, in a word (the metrics' label).
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::Invalid(_) => "invalid",
            SubmitError::Forbidden(_) => "forbidden",
            SubmitError::Busy { .. } => "queue-full",
            SubmitError::RateLimited { .. } => "rate-limited",
            SubmitError::ShuttingDown => "shutting-down",
            SubmitError::Internal(_) => "internal",
        }
    }
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Invalid(m) | SubmitError::Forbidden(m) | SubmitError::Internal(m) => {
                f.write_str(m)
            }
            SubmitError::Busy { retry_after } => {
                write!(f, "the run queue is full; try again in {retry_after} s")
            }
            SubmitError::RateLimited {
                caller,
                per_minute,
                retry_after,
            } => write!(
                f,
                "{caller} may start {per_minute} run(s) a minute; try again in {retry_after} s"
            ),
            SubmitError::ShuttingDown => f.write_str("the server is shutting down"),
        }
    }
}

/// A run's end, as whoever posts it to a chat needs it.
pub struct Ended {
    pub id: String,
    pub runbook: String,
    pub target: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub report: Option<Arc<Report>>,
    /// Where to post it (the history's `notify`).
    pub notify: String,
}

/// Called once per chat run's end, by the server that recorded it.
pub type OnEnd = Box<dyn Fn(Ended) + Send + Sync>;

pub struct Runs {
    pub store: Arc<dyn Store>,
    pub runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
    /// Name → target spec, from the config file.
    pub targets: BTreeMap<String, Spec>,
    runtime: Arc<Runtime>,
    policy: Arc<Policy>,
    /// Applied to every run's report (and so to every chat post and API answer).
    redact: Arc<crate::redact::Redactor>,
    pub limits: Limits,
    permits: Arc<Semaphore>,
    /// Queued plus running.
    admitted: AtomicUsize,
    running: AtomicUsize,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    shutting_down: watch::Sender<bool>,
    /// A moving average of run time, for Retry-After.
    average_run_ms: AtomicU64,
    /// Each caller's run rate (`runs_per_minute`).
    rates: RateLimiter,
    /// What `GET /metrics` reports.
    pub metrics: Metrics,
    /// Where runs execute: a runtime of their own, so CPU-bound plugin work never delays
    /// the HTTP answers (Slack gives a command 3 seconds).
    executor: tokio::runtime::Handle,
    /// Posts a chat run's end (set once the chats are configured).
    on_end: OnceLock<OnEnd>,
    /// Wakes this server's workers when it queued a run in a shared history.
    queued: Notify,
    /// The runs waiting in a shared history (every replica's), as last counted: what
    /// `/metrics`, `/healthz` and `Retry-After` report as queued there.
    shared_queued: AtomicUsize,
}

impl Runs {
    // Each argument is a separate piece of the server's state, given once at start.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
        targets: BTreeMap<String, Spec>,
        runtime: Arc<Runtime>,
        policy: Arc<Policy>,
        limits: Limits,
        redact: Arc<crate::redact::Redactor>,
        executor: tokio::runtime::Handle,
    ) -> Arc<Runs> {
        Arc::new(Runs {
            store,
            runbooks,
            targets,
            runtime,
            policy,
            redact,
            permits: Arc::new(Semaphore::new(limits.max_concurrent_runs)),
            limits,
            admitted: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
            shutting_down: watch::Sender::new(false),
            average_run_ms: AtomicU64::new(1000),
            rates: RateLimiter::default(),
            metrics: Metrics::new(
                RunStatus::ENDS.map(RunStatus::as_str).to_vec(),
                SubmitError::REASONS.to_vec(),
            ),
            executor,
            on_end: OnceLock::new(),
            queued: Notify::new(),
            shared_queued: AtomicUsize::new(0),
        })
    }

    /// What to do when a chat run ends (post its result); set once.
    pub fn set_on_end(&self, on_end: OnEnd) {
        let _ = self.on_end.set(on_end);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutting_down.borrow()
    }

    pub fn live(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// (queued, running) right now. With a shared history, queued is the database's
    /// queue, every replica's runs, as last counted; running is this server's.
    pub fn load(&self) -> (usize, usize) {
        let admitted = self.admitted.load(Ordering::SeqCst);
        let running = self.running.load(Ordering::SeqCst);
        let queued = if self.store.shared() {
            self.shared_queued.load(Ordering::SeqCst)
        } else {
            admitted.saturating_sub(running)
        };
        (queued, running)
    }

    /// Checks the request, records it as queued and starts it once a slot is free.
    pub fn submit(
        self: &Arc<Self>,
        request: RunRequest,
        origin: Origin,
    ) -> Result<(String, Arc<LiveRun>), SubmitError> {
        let submitted = self.admit(request, origin);
        if let Err(e) = &submitted {
            self.metrics.refused(e.reason());
        }
        submitted
    }

    fn admit(
        self: &Arc<Self>,
        request: RunRequest,
        origin: Origin,
    ) -> Result<(String, Arc<LiveRun>), SubmitError> {
        let Origin {
            requested_by,
            rates,
            scope,
            notify,
        } = origin;
        if *self.shutting_down.borrow() {
            return Err(SubmitError::ShuttingDown);
        }
        if !scope.allows_runbook(&request.runbook) || !scope.allows_target(&request.target) {
            return Err(SubmitError::Forbidden(format!(
                "{requested_by} may not run `{}` on `{}` (see its runbooks: and targets: in the server's config)",
                request.runbook, request.target
            )));
        }
        let loaded = self
            .runbooks
            .get(&request.runbook)
            .cloned()
            .ok_or_else(|| {
                SubmitError::Invalid(format!(
                    "no runbook `{}` (GET /v1/runbooks lists them)",
                    request.runbook
                ))
            })?;
        let spec = self.targets.get(&request.target).cloned().ok_or_else(|| {
            SubmitError::Invalid(format!(
                "no target `{}` in the server's config (GET /v1/targets lists them)",
                request.target
            ))
        })?;
        let inputs =
            inputs::resolve_json(&loaded.runbook, &request.inputs).map_err(SubmitError::Invalid)?;
        inputs::check_answers(&loaded.runbook, &request.answers).map_err(SubmitError::Invalid)?;

        // Only a request that could run is charged to the caller's rates.
        let now = Instant::now();
        let mut charged: Vec<&str> = Vec::new();
        for bucket in &rates {
            let per_minute = bucket
                .per_minute
                .unwrap_or(self.limits.runs_per_minute_per_caller);
            if let Err(retry_after) = self.rates.take(&bucket.key, per_minute, now) {
                for key in charged {
                    self.rates.give_back(key);
                }
                return Err(SubmitError::RateLimited {
                    caller: bucket.who.clone(),
                    per_minute,
                    retry_after,
                });
            }
            charged.push(&bucket.key);
        }
        if self.store.shared() {
            return self.admit_shared(request, requested_by, inputs, notify, charged);
        }
        let capacity = self.limits.max_concurrent_runs + self.limits.max_queued_runs;
        if self
            .admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_err()
        {
            // A full queue is not the caller's doing: the runs it was charged are given back.
            for key in charged {
                self.rates.give_back(key);
            }
            return Err(SubmitError::Busy {
                retry_after: self.retry_after(),
            });
        }
        let id = new_run_id();
        let answers = serde_json::to_value(&request.answers).unwrap_or_default();
        let inserted = self.store.insert(&NewRun {
            id: &id,
            runbook: &request.runbook,
            target: &request.target,
            inputs: &Value::Object(inputs.clone()),
            answers: &answers,
            requested_by: &requested_by,
            created_at: &rfc3339(SystemTime::now()),
            notify: notify.as_deref(),
        });
        if let Err(e) = inserted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::Internal(format!("the run history: {e}")));
        }
        let live = Arc::new(LiveRun::new(RunInfo {
            runbook: request.runbook.clone(),
            target: request.target.clone(),
            notify,
        }));
        live.push(RunEvent::Queued { run: id.clone() });
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), live.clone());
        let job = Job {
            id: id.clone(),
            loaded,
            spec,
            target_name: request.target.clone(),
            inputs,
            answers: request.answers,
            live: live.clone(),
        };
        let task = self.executor.spawn(self.clone().execute(job));
        *live.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        Ok((id, live))
    }

    /// Admission to a shared queue: the run waits in the history, bounded by
    /// `max_queued_runs` across every server, until one with a free slot claims it.
    fn admit_shared(
        &self,
        request: RunRequest,
        requested_by: String,
        inputs: Map<String, Value>,
        notify: Option<String>,
        charged: Vec<&str>,
    ) -> Result<(String, Arc<LiveRun>), SubmitError> {
        let id = new_run_id();
        let answers = serde_json::to_value(&request.answers).unwrap_or_default();
        let inserted = self.store.insert_if_room(
            &NewRun {
                id: &id,
                runbook: &request.runbook,
                target: &request.target,
                inputs: &Value::Object(inputs),
                answers: &answers,
                requested_by: &requested_by,
                created_at: &rfc3339(SystemTime::now()),
                notify: notify.as_deref(),
            },
            self.limits.max_queued_runs,
        );
        match inserted {
            Ok(true) => {}
            Ok(false) => {
                for key in charged {
                    self.rates.give_back(key);
                }
                return Err(SubmitError::Busy {
                    retry_after: self.retry_after(),
                });
            }
            Err(e) => return Err(SubmitError::Internal(format!("the run history: {e}"))),
        }
        self.shared_queued.fetch_add(1, Ordering::SeqCst);
        self.queued.notify_one();
        // Whichever server claims the run keeps its live events; callers elsewhere follow it
        // through the history.
        let live = Arc::new(LiveRun::new(RunInfo {
            runbook: request.runbook,
            target: request.target,
            notify,
        }));
        live.push(RunEvent::Queued { run: id.clone() });
        Ok((id, live))
    }

    /// With a shared history: `max_concurrent_runs` workers that claim queued runs, and a
    /// task that renews this server's leases and interrupts runs whose server died.
    pub fn start_workers(self: &Arc<Self>) {
        if !self.store.shared() {
            return;
        }
        for _ in 0..self.limits.max_concurrent_runs {
            self.executor.spawn(self.clone().work());
        }
        self.executor.spawn(self.clone().keep_leases());
    }

    /// Claims and runs queued runs, one at a time, until shutdown.
    async fn work(self: Arc<Self>) {
        // Another server's submissions are seen by polling; this one's wake a worker at once.
        const POLL: Duration = Duration::from_millis(200);
        let mut shutdown = self.shutting_down.subscribe();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let claimed = {
                let store = self.store.clone();
                let at = rfc3339(SystemTime::now());
                tokio::task::spawn_blocking(move || store.claim(&at))
                    .await
                    .unwrap_or_else(|e| Err(super::store::StoreError(e.to_string())))
            };
            match claimed {
                Ok(Some(run)) => {
                    // Counted before the shutdown check can see zero.
                    self.admitted.fetch_add(1, Ordering::SeqCst);
                    let _ =
                        self.shared_queued
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                Some(n.saturating_sub(1))
                            });
                    let Some(job) = self.job_for(run) else {
                        continue;
                    };
                    let live = job.live.clone();
                    let task = self.executor.spawn(self.clone().execute(job));
                    *live.abort.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(task.abort_handle());
                    let _ = task.await;
                }
                Ok(None) => {
                    // Nothing left to claim: the queue is empty, whatever was last counted.
                    self.shared_queued.store(0, Ordering::SeqCst);
                    tokio::select! {
                        _ = self.queued.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.wait_for(|stopping| *stopping) => return,
                    }
                }
                Err(e) => {
                    tracing::warn!("run history: claiming a queued run: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The job for a run claimed from the history, registered as live here; `None` (the run
    /// ended as interrupted) when this server's config lacks its runbook or target.
    fn job_for(&self, run: ClaimedRun) -> Option<Job> {
        let live = Arc::new(LiveRun::new(RunInfo {
            runbook: run.runbook.clone(),
            target: run.target.clone(),
            notify: run.notify,
        }));
        live.push(RunEvent::Queued {
            run: run.id.clone(),
        });
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id.clone(), live.clone());
        let answers: BTreeMap<String, String> =
            serde_json::from_value(run.answers).unwrap_or_default();
        let inputs = match run.inputs {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        match (
            self.runbooks.get(&run.runbook),
            self.targets.get(&run.target),
        ) {
            (Some(loaded), Some(spec)) => Some(Job {
                id: run.id,
                loaded: loaded.clone(),
                spec: spec.clone(),
                target_name: run.target,
                inputs,
                answers,
                live,
            }),
            _ => {
                // Replicas are meant to share one config; one that does not cannot run this.
                end_run(
                    &*self.store,
                    &self.metrics,
                    self.on_end.get(),
                    &run.id,
                    &live,
                    RunStatus::Interrupted,
                    None,
                    Some(format!(
                        "the server that took this run serves no runbook `{}` or no target `{}`: \
                         give every server the same config",
                        run.runbook, run.target
                    )),
                );
                self.live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&run.id);
                self.admitted.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// Renews this server's leases a few times per lease, stops runs it no longer holds
    /// (another server took them for dead), and marks interrupted the runs of servers that
    /// died, posting to their chats.
    async fn keep_leases(self: Arc<Self>) {
        let every = (self.limits.run_lease / 3).max(Duration::from_millis(100));
        let mut shutdown = self.shutting_down.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => {}
            }
            // Only runs that started before the renewal can be missing from its answer for
            // the right reason (a run claimed meanwhile is not lost).
            let started = self.started_here();
            let store = self.store.clone();
            let at = rfc3339(SystemTime::now());
            let work = tokio::task::spawn_blocking(move || {
                (store.renew(), store.reap(&at), store.queued())
            })
            .await;
            let Ok((held, reaped, queued)) = work else {
                continue;
            };
            if let Ok(queued) = queued {
                self.shared_queued
                    .store(usize::try_from(queued).unwrap_or(0), Ordering::SeqCst);
            }
            match held {
                Ok(held) => self.drop_lost(&started, &held),
                Err(e) => tracing::warn!("run history: renewing this server's leases: {e}"),
            }
            match reaped {
                Ok(runs) => self.reaped(runs),
                Err(e) => tracing::warn!("run history: looking for runs of stopped servers: {e}"),
            }
            // After shutdown's drain the leases need no renewing: the last round is done.
            if *shutdown.borrow() && self.admitted.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
    }

    /// The runs executing here that have started and not ended.
    fn started_here(&self) -> Vec<(String, Arc<LiveRun>)> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, live)| {
                !live.ended.load(Ordering::SeqCst)
                    && live
                        .events
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .any(|e| matches!(e, RunEvent::Started { .. }))
            })
            .map(|(id, live)| (id.clone(), live.clone()))
            .collect()
    }

    /// Stops the runs this server is executing (`started`) that the history no longer gives
    /// it (`held`).
    fn drop_lost(&self, started: &[(String, Arc<LiveRun>)], held: &[String]) {
        let lost = started.iter().filter(|(id, _)| !held.contains(id));
        for (id, live) in lost {
            let id = id.clone();
            tracing::warn!(run = %id, "this server's lease on the run ran out; stopping it");
            if let Some(abort) = live.abort.lock().unwrap_or_else(|p| p.into_inner()).take() {
                abort.abort();
            }
            // Its end is the other server's to record; only the local state is closed.
            if !live.ended.swap(true, Ordering::SeqCst) {
                live.push(RunEvent::Finished {
                    run: id.clone(),
                    status: RunStatus::Interrupted,
                    exit_code: None,
                    error: Some("this server lost its lease on the run".into()),
                });
                self.live
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                self.admitted.fetch_sub(1, Ordering::SeqCst);
                self.running.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Runs of a server that died, marked interrupted by this one: their chats are told.
    fn reaped(&self, runs: Vec<InterruptedRun>) {
        for run in runs {
            tracing::warn!(run = %run.id, "run interrupted: the server running it stopped renewing its lease");
            self.metrics.ended(RunStatus::Interrupted.as_str());
            if let (Some(on_end), Some(notify)) = (self.on_end.get(), run.notify) {
                on_end(Ended {
                    id: run.id,
                    runbook: run.runbook,
                    target: run.target,
                    status: RunStatus::Interrupted,
                    error: Some(
                        "the server running it stopped (its lease ran out); run it again".into(),
                    ),
                    report: None,
                    notify,
                });
            }
        }
    }

    fn retry_after(&self) -> u64 {
        let (queued, _) = self.load();
        let per_run = self.average_run_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let wait = per_run * (queued + 1) as f64 / self.limits.max_concurrent_runs as f64;
        (wait.ceil() as u64).clamp(1, 3600)
    }

    async fn execute(self: Arc<Self>, job: Job) {
        let mut shutdown = self.shutting_down.subscribe();
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.expect("never closed"),
            _ = shutdown.wait_for(|stopping| *stopping) => {
                self.end(&job, RunStatus::Interrupted, None, Some("the server shut down before the run started".into()));
                return;
            }
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        tracing::info!(run = %job.id, runbook = %job.loaded.runbook.id, target = %job.spec, "run started");
        let started = Instant::now();
        let at = rfc3339(SystemTime::now());
        if let Err(e) = self.store.set_running(&job.id, &at) {
            eprintln!("warning: run history: {e}");
        }
        job.live.push(RunEvent::Started {
            run: job.id.clone(),
            at,
        });
        let (status, report, error) = self.run_to_end(&job).await;
        drop(permit);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.metrics.ran(started.elapsed());
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(run = %job.id, status = status.as_str(), ms, "run ended");
        let old = self.average_run_ms.load(Ordering::Relaxed);
        self.average_run_ms
            .store((old * 7 + ms) / 8, Ordering::Relaxed);
        self.end(&job, status, report, error);
    }

    async fn run_to_end(&self, job: &Job) -> (RunStatus, Option<Report>, Option<String>) {
        let (id, live) = (job.id.clone(), job.live.clone());
        let on_step: engine::StepCallback = Box::new(move |s, findings| {
            live.push(RunEvent::step(&id, s, findings));
        });
        let outcome = run::run(run::Job {
            loaded: &job.loaded,
            runtime: &self.runtime,
            target: &job.spec,
            // The configured name, never the address: reports go to chats and the history.
            target_label: Some(job.target_name.clone()),
            inputs: job.inputs.clone(),
            answers: job.answers.clone(),
            policy: self.policy.clone(),
            redact: self.redact.clone(),
            deadline: self.limits.run_deadline,
            fail_on: Some(Severity::Error),
            on_step: Some(on_step),
        })
        .await;
        // Reports and errors go to chats and API callers, who know targets by name only:
        // the address (an ssh URL, a bundle's path) stays on the server.
        let hide = AddressHider::new(&job.spec, &job.target_name);
        let mut report = outcome.report;
        if let Some(report) = &mut report {
            for step in &mut report.steps {
                if let Some(reason) = &mut step.reason {
                    *reason = hide.text(reason);
                }
                for used in &mut step.capabilities {
                    used.request = hide.text(&used.request);
                    if let Some(detail) = &mut used.detail {
                        *detail = hide.text(detail);
                    }
                }
                for log in &mut step.logs {
                    log.message = hide.text(&log.message);
                }
            }
        }
        let error = outcome.error.map(|e| {
            let hidden = hide.text(&e);
            if hidden != e {
                eprintln!("run {}: {e}", job.id);
            }
            hidden
        });
        (RunStatus::Ended(outcome.status), report, error)
    }

    /// Records the run's end once, whoever gets there first (the run or shutdown).
    fn end(&self, job: &Job, status: RunStatus, report: Option<Report>, error: Option<String>) {
        end_run(
            &*self.store,
            &self.metrics,
            self.on_end.get(),
            &job.id,
            &job.live,
            status,
            report,
            error,
        );
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.id);
        self.admitted.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stops taking runs, lets running ones finish for up to `grace`, and marks the rest
    /// interrupted. Queued runs that never started are marked at once.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.shutting_down.send_replace(true);
        let deadline = Instant::now() + grace;
        while self.admitted.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let left: Vec<(String, Arc<LiveRun>)> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (id, live) in &left {
            if let Some(abort) = live.abort.lock().unwrap_or_else(|p| p.into_inner()).take() {
                abort.abort();
            }
            end_run(
                &*self.store,
                &self.metrics,
                self.on_end.get(),
                id,
                live,
                RunStatus::Interrupted,
                None,
                Some(format!(
                    "the server shut down; the run did not end within the {} s grace period",
                    grace.as_secs()
                )),
            );
        }
        left.len()
    }
}

struct Job {
    id: String,
    loaded: Arc<LoadedRunbook>,
    spec: Spec,
    /// The name the config gives the target.
    target_name: String,
    inputs: Map<String, Value>,
    answers: BTreeMap<String, String>,
    live: Arc<LiveRun>,
}

/// Records a run's end once, whoever gets there first (the run, a lost lease, shutdown),
/// and has its chat told, if a chat started it and the end was this server's to record.
#[allow(clippy::too_many_arguments)]
fn end_run(
    store: &dyn Store,
    metrics: &Metrics,
    on_end: Option<&OnEnd>,
    id: &str,
    live: &LiveRun,
    status: RunStatus,
    report: Option<Report>,
    error: Option<String>,
) {
    if live.ended.swap(true, Ordering::SeqCst) {
        return;
    }
    let exit_code = report.as_ref().map(|r| r.exit_code(Some(Severity::Error)));
    let render = |format| {
        use crate::report::Render;
        report
            .as_ref()
            .map(|r| r.render(format, &Default::default()))
    };
    let (json, markdown) = (
        render(crate::report::Format::Json),
        render(crate::report::Format::Markdown),
    );
    let written = store.finish(
        id,
        &Outcome {
            status: status.as_str(),
            finished_at: &rfc3339(SystemTime::now()),
            exit_code,
            error: error.as_deref(),
            report: json.as_deref(),
            markdown: markdown.as_deref(),
        },
    );
    // A shared history refuses the end of a run this server no longer holds: the server
    // that took it over recorded (and posted) its end.
    let ours = match written {
        Ok(ours) => ours,
        Err(e) => {
            eprintln!("warning: run history: run {id}: {e}");
            true
        }
    };
    if ours {
        metrics.ended(status.as_str());
    } else {
        tracing::warn!(run = %id, "the run's end was not recorded: another server took it over");
    }
    let report = report.map(Arc::new);
    *live.report.lock().unwrap_or_else(|p| p.into_inner()) = report.clone();
    if ours && let (Some(on_end), Some(notify)) = (on_end, &live.info.notify) {
        on_end(Ended {
            id: id.to_string(),
            runbook: live.info.runbook.clone(),
            target: live.info.target.clone(),
            status,
            error: error.clone(),
            report,
            notify: notify.clone(),
        });
    }
    live.push(RunEvent::Finished {
        run: id.to_string(),
        status,
        exit_code,
        error,
    });
}

/// Replaces a target's address in text with its configured name.
struct AddressHider {
    /// Longest first, so a whole URL is replaced before its host alone.
    addresses: Vec<String>,
    name: String,
}

impl AddressHider {
    fn new(spec: &Spec, name: &str) -> AddressHider {
        let mut addresses = vec![spec.to_string()];
        match spec {
            Spec::Local => addresses.clear(),
            // `local://NAME` as written is hidden like a URL; the bare NAME is left, as
            // the word `local` is: it is the machine's name, not an address.
            Spec::LocalNamed(_) => {}
            Spec::Bundle(dir) => addresses.push(dir.display().to_string()),
            Spec::Remote { spec, .. } => {
                if let Ok(url) = reqwest::Url::parse(spec)
                    && let Some(host) = url.host_str()
                {
                    if !url.username().is_empty() {
                        addresses.push(format!("{}@{host}", url.username()));
                    }
                    addresses.push(host.to_string());
                }
            }
        }
        // A one-letter host would eat every such letter of a message.
        addresses.retain(|a| a.len() >= 3);
        addresses.sort_by_key(|a| std::cmp::Reverse(a.len()));
        addresses.dedup();
        AddressHider {
            addresses,
            name: name.to_string(),
        }
    }

    fn text(&self, text: &str) -> String {
        self.addresses
            .iter()
            .fold(text.to_string(), |t, a| t.replace(a.as_str(), &self.name))
    }
}

/// A run id: the time in milliseconds then 8 random hex digits, so ids sort by creation and
/// cannot be guessed from one another.
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    // RandomState is seeded from the OS's randomness per process; the counter makes each
    // hash in this process different.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(ms);
    format!("r{ms:012x}{:08x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_the_target_name() {
        let ssh = Spec::parse("ssh://ops@192.0.2.10:2222").unwrap();
        let hide = AddressHider::new(&ssh, "web-1");
        assert_eq!(
            hide.text("ssh://ops@192.0.2.10:2222: ssh: connect to host 192.0.2.10 port 2222"),
            "web-1: ssh: connect to host web-1 port 2222"
        );
        let bundle = Spec::Bundle("/srv/bundles/b1".into());
        assert_eq!(
            AddressHider::new(&bundle, "demo").text("bundle /srv/bundles/b1/bundle.yaml: gone"),
            "bundle demo/bundle.yaml: gone"
        );
    }

    #[test]
    fn run_ids_differ_and_sort_by_time() {
        let a = new_run_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(a.len(), 21);
    }

    #[test]
    fn stored_status_text_round_trips() {
        for status in RunStatus::all() {
            // as_str is what the history stores and serde is what the API sends: one spelling.
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(RunStatus::from_stored(status.as_str()), status);
        }
        assert_eq!(RunStatus::from_stored("paused"), RunStatus::Interrupted);
        let unknown = serde_json::from_value::<RunStatus>(serde_json::json!("paused"));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown status `paused`")
        );
    }
}
