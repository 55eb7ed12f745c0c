//! The run history: one row per run, written as the run moves from queued to running to its
//! end. A finished run's report is stored whole, so a restart loses nothing finished.
//!
//! [`Store`] is what the server needs of a history; two backends implement it:
//! - [`sqlite`]: one file, one server (the default). A run still queued or running when the
//!   process died is marked `interrupted` the next time the server opens the file.
//! - [`postgres`]: one database shared by several servers (replicas). Runs in flight belong to
//!   the replica that claimed them for as long as it renews their lease; see that module.

pub mod sqlite;

use serde_json::Value;

/// One run as the history keeps it (and as `GET /v1/runs` shows it, less the cursor and
/// the report texts).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: String,
    /// Insertion order; the paging cursor.
    #[serde(skip)]
    pub seq: i64,
    pub runbook: String,
    /// The target's name from the server's config.
    pub target: String,
    #[schema(value_type = Object)]
    pub inputs: Value,
    #[schema(value_type = Object)]
    pub answers: Value,
    /// queued, running, ok, failing, incomplete, unreachable, timed-out or interrupted.
    pub status: String,
    /// Who asked: `token:NAME` or `slack:USER`.
    pub requested_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// As the CLI's: 0 ok, 1 a finding at error severity, 3 a step errored.
    pub exit_code: Option<i64>,
    /// Why the run has no report (unreachable, timed out, interrupted).
    pub error: Option<String>,
    /// The `triage.report/v2` JSON, once there is one.
    #[serde(skip)]
    pub report: Option<String>,
    /// The report rendered as Markdown (GET /v1/runs/{id}?format=markdown).
    #[serde(skip)]
    pub markdown: Option<String>,
}

pub struct NewRun<'a> {
    pub id: &'a str,
    pub runbook: &'a str,
    pub target: &'a str,
    pub inputs: &'a Value,
    pub answers: &'a Value,
    pub requested_by: &'a str,
    pub created_at: &'a str,
    /// Where to tell the chat how the run ended (JSON, see [`ChatNotice`]); `None` for API
    /// runs. Kept so a run cut short by a crash is still reported after the restart.
    pub notify: Option<&'a str>,
}

/// Which runs [`Store::list`] returns: each `Some` narrows the list.
#[derive(Debug, Default)]
pub struct RunFilter {
    pub runbook: Option<String>,
    pub target: Option<String>,
    pub status: Option<String>,
    /// A caller's scope: only runs of these runbooks…
    pub runbooks_in: Option<Vec<String>>,
    /// …on these targets.
    pub targets_in: Option<Vec<String>>,
}

/// A run found still queued or running when its server was gone, and marked interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedRun {
    pub id: String,
    pub runbook: String,
    pub target: String,
    /// The run's `notify`, if a chat started it.
    pub notify: Option<String>,
}

/// How a run ended.
pub struct Outcome<'a> {
    pub status: &'a str,
    pub finished_at: &'a str,
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    pub report: Option<&'a str>,
    pub markdown: Option<&'a str>,
}

/// A history that could not be read or written: one line, for a log or a 500's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the server keeps of its runs. Calls are short and synchronous (a handler or a run
/// calls them inline, as it did with the one SQLite connection), so a backend blocks the
/// calling thread for one statement at most.
pub trait Store: Send + Sync {
    /// Records a new run as queued.
    fn insert(&self, run: &NewRun) -> StoreResult<()>;
    /// The run started (on this server).
    fn set_running(&self, id: &str, started_at: &str) -> StoreResult<()>;
    /// The run ended.
    fn finish(&self, id: &str, outcome: &Outcome) -> StoreResult<()>;
    /// One run, with its report.
    fn get(&self, id: &str) -> StoreResult<Option<RunRecord>>;
    /// Up to `limit` runs older than `before` (a `seq`; all when `None`), newest first, that
    /// pass `filter`, without reports.
    fn list(
        &self,
        limit: usize,
        before: Option<i64>,
        filter: &RunFilter,
    ) -> StoreResult<Vec<RunRecord>>;
    /// How many runs the history holds.
    fn count(&self) -> StoreResult<i64>;
}
