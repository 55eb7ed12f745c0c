//! The run history: one row per run, written as the run moves from queued to running to its
//! end. A finished run's report is stored whole, so a restart loses nothing finished.
//!
//! [`Store`] is what the server needs of a history; two backends implement it:
//! - [`sqlite`]: one file, one server (the default). A run still queued or running when the
//!   process died is marked `interrupted` the next time the server opens the file.
//! - [`postgres`]: one database shared by several servers (replicas). Runs in flight belong to
//!   the replica that claimed them for as long as it renews their lease; see that module.

pub mod postgres;
pub mod sqlite;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// One target's result in a fleet, as posted to `POST /v1/reports` and checked.
pub struct FleetEntry<'a> {
    pub fleet: &'a str,
    /// The target as the fleet names it (its identity: a second post replaces the first).
    pub target: &'a str,
    pub runbook: &'a str,
    /// Its place in the targets file of the run that posted it, for the fleet's order.
    pub position: Option<i64>,
    /// The target's result with its report (the `targets[]` entry of `triage.fleet/v1`).
    pub result: &'a str,
    /// Who posted it: `token:NAME`.
    pub posted_by: &'a str,
    pub received_at: &'a str,
}

/// What [`Store::put_report`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutReport {
    /// The fleet had no report for that target.
    Added,
    /// It had one (a retried run): the new one took its place.
    Replaced,
    /// The fleet is of another runbook (named): nothing was written.
    OtherRunbook(String),
}

/// One target's stored result in a fleet.
#[derive(Debug, Clone)]
pub struct FleetResult {
    pub target: String,
    pub runbook: String,
    pub position: Option<i64>,
    /// The `targets[]` entry, as [`FleetEntry::result`] gave it.
    pub result: String,
}

/// What the server keeps of its runs. Calls are short and synchronous (a handler or a run
/// calls them inline, as it did with the one SQLite connection), so a backend blocks the
/// calling thread for one statement at most.
pub trait Store: Send + Sync {
    /// Records a new run as queued.
    fn insert(&self, run: &NewRun) -> StoreResult<()>;
    /// The run started (on this server).
    fn set_running(&self, id: &str, started_at: &str) -> StoreResult<()>;
    /// The run ended; whether that was recorded (a shared history records only the end of
    /// a run this server still holds).
    fn finish(&self, id: &str, outcome: &Outcome) -> StoreResult<bool>;
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
    /// Keeps a target's result in its fleet, in place of the one it posted before, unless
    /// the fleet already holds results of another runbook (checked and written atomically,
    /// so two first posts of different runbooks cannot both land).
    fn put_report(&self, entry: &FleetEntry) -> StoreResult<PutReport>;
    /// Every result of a fleet (none when there is no such fleet), in the fleet's order:
    /// by position (results posted without one last), then by target.
    fn fleet(&self, fleet: &str) -> StoreResult<Vec<FleetResult>>;

    /// Whether other servers share this history. Then the queue is the history's: a run is
    /// inserted `queued` and whichever replica has a free slot [`claim`](Store::claim)s it.
    fn shared(&self) -> bool {
        false
    }
    /// Inserts the run as queued if fewer than `max_queued` runs are (a shared queue's
    /// bound); whether it did.
    fn insert_if_room(&self, run: &NewRun, max_queued: usize) -> StoreResult<bool> {
        let _ = max_queued;
        self.insert(run).map(|()| true)
    }
    /// The oldest queued run, now running and this server's until its lease runs out.
    fn claim(&self, started_at: &str) -> StoreResult<Option<ClaimedRun>> {
        let _ = started_at;
        Ok(None)
    }
    /// Extends the lease of every run this server holds; the ids it still holds.
    fn renew(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Records `key` (a signed request taken) until `until` (Unix seconds); whether it was
    /// new. Only a shared history keeps these (a server alone keeps them in memory).
    fn first_time(&self, key: &str, until: i64) -> StoreResult<bool> {
        let _ = (key, until);
        Ok(true)
    }
    /// How many runs wait in a shared queue (every server's); 0 when not shared.
    fn queued(&self) -> StoreResult<i64> {
        Ok(0)
    }
    /// Marks interrupted every running run whose lease ran out (its server died); returns
    /// them, each to exactly one caller.
    fn reap(&self, finished_at: &str) -> StoreResult<Vec<InterruptedRun>> {
        let _ = finished_at;
        Ok(Vec::new())
    }
}

/// A run taken from a shared queue, with what it takes to run it.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: String,
    pub runbook: String,
    pub target: String,
    pub inputs: Value,
    pub answers: Value,
    pub notify: Option<String>,
}

/// Where the history is: `--db` or the config's `db:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    Sqlite(PathBuf),
    Postgres(postgres::PgUrl),
}

impl Db {
    /// A `postgres://` (or `postgresql://`) URL, else a file path, relative to `base`.
    ///
    /// Any other `scheme://` and a libpq `key=value` string are refused rather than taken for
    /// a file name: either may carry a password, and a file path is printed whole (the
    /// start-up line). The error names the scheme only.
    pub fn parse(text: &str, base: &Path) -> Result<Db, String> {
        if let Some(url) = postgres::PgUrl::parse(text) {
            return Ok(Db::Postgres(url));
        }
        if let Some(at) = text.find("://") {
            // Only a scheme's own characters are echoed: what follows may be a password.
            let scheme: String = text[..at]
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c))
                .take(20)
                .collect();
            return Err(format!(
                "db: `{scheme}://…` is not a history triage keeps: give a SQLite file or a postgres:// URL"
            ));
        }
        if text.contains('=') && text.contains(' ') {
            return Err(
                "db: looks like a libpq `key=value` connection string: write it as a postgres:// URL"
                    .to_string(),
            );
        }
        Ok(Db::Sqlite(base.join(text)))
    }
}

/// The path, or the URL without its password.
impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(path) => write!(f, "{}", path.display()),
            Db::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// Opens the history; with SQLite, also the runs it found in flight and marked interrupted
/// (a shared history leaves those to the lease: see [`postgres`]).
pub fn open(db: &Db, lease: Duration) -> Result<(Arc<dyn Store>, Vec<InterruptedRun>), String> {
    match db {
        Db::Sqlite(path) => {
            let (store, interrupted) = sqlite::SqliteStore::open(path)?;
            Ok((Arc::new(store), interrupted))
        }
        Db::Postgres(url) => Ok((Arc::new(postgres::PgStore::open(url, lease)?), Vec::new())),
    }
}
