//! The SQLite history: one file, one server. WAL mode, one connection behind a mutex (SQLite
//! serialises writers anyway, and every statement here is short).

use super::{
    FleetEntry, FleetResult, InterruptedRun, NewRun, Outcome, PutReport, RunFilter, RunRecord,
    Store, StoreResult,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

pub struct SqliteStore {
    // One connection: SQLite serialises writers anyway, and every statement here is short.
    conn: Mutex<Connection>,
}

/// 1: the runs table. 2: `notify`, where a chat run's end is to be posted. 3: the
/// `fleet_reports` table, the targets' results posted to `POST /v1/reports`.
const SCHEMA_VERSION: i64 = 3;

const COLUMNS: &str = "id, seq, runbook, target, inputs, answers, status, requested_by, \
                       created_at, started_at, finished_at, exit_code, error";

impl SqliteStore {
    /// Opens (or creates) the history file and marks runs left in flight as interrupted;
    /// returns the store and the runs it marked.
    pub fn open(path: &Path) -> Result<(SqliteStore, Vec<InterruptedRun>), String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let at = |e: rusqlite::Error| format!("{}: {e}", path.display());
        let conn = Connection::open(path).map_err(at)?;
        // WAL: readers (GET /v1/runs) never wait for the writer; NORMAL sync is durable
        // across a process crash, which is what the history must survive.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(at)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(at)?;
        if version > SCHEMA_VERSION {
            return Err(format!(
                "{}: written by a newer triage (history schema {version}, this one knows {SCHEMA_VERSION})",
                path.display()
            ));
        }
        if version < 1 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS runs (
                    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
                    id           TEXT NOT NULL UNIQUE,
                    runbook      TEXT NOT NULL,
                    target       TEXT NOT NULL,
                    inputs       TEXT NOT NULL,
                    answers      TEXT NOT NULL,
                    status       TEXT NOT NULL,
                    requested_by TEXT NOT NULL,
                    created_at   TEXT NOT NULL,
                    started_at   TEXT,
                    finished_at  TEXT,
                    exit_code    INTEGER,
                    error        TEXT,
                    report       TEXT,
                    markdown     TEXT
                 );
                 PRAGMA user_version = 1;",
            )
            .map_err(at)?;
        }
        if version < 2 {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN notify TEXT; PRAGMA user_version = 2;")
                .map_err(at)?;
        }
        if version < 3 {
            // One row per target of a fleet: the (fleet, target) key is what makes a
            // retried run's second post replace its first.
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS fleet_reports (
                    fleet       TEXT NOT NULL,
                    target      TEXT NOT NULL,
                    runbook     TEXT NOT NULL,
                    position    INTEGER,
                    result      TEXT NOT NULL,
                    posted_by   TEXT NOT NULL,
                    received_at TEXT NOT NULL,
                    PRIMARY KEY (fleet, target)
                 );
                 PRAGMA user_version = 3;",
            )
            .map_err(at)?;
        }
        let interrupted = mark_interrupted(&conn).map_err(at)?;
        Ok((
            SqliteStore {
                conn: Mutex::new(conn),
            },
            interrupted,
        ))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done statement behind.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SqliteStore {
    fn put_report(&self, entry: &FleetEntry) -> StoreResult<PutReport> {
        let mut conn = self.conn();
        // Immediate: the runbook check and the write happen under one write lock.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let other: Option<String> = tx
            .query_row(
                "SELECT runbook FROM fleet_reports WHERE fleet = ?1 AND runbook <> ?2 LIMIT 1",
                params![entry.fleet, entry.runbook],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(runbook) = other {
            return Ok(PutReport::OtherRunbook(runbook));
        }
        let replaced = tx.execute(
            "DELETE FROM fleet_reports WHERE fleet = ?1 AND target = ?2",
            params![entry.fleet, entry.target],
        )? > 0;
        tx.execute(
            "INSERT INTO fleet_reports (fleet, target, runbook, position, result, posted_by,
                                        received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.fleet,
                entry.target,
                entry.runbook,
                entry.position,
                entry.result,
                entry.posted_by,
                entry.received_at
            ],
        )?;
        tx.commit()?;
        Ok(if replaced {
            PutReport::Replaced
        } else {
            PutReport::Added
        })
    }

    fn fleet(&self, fleet: &str) -> StoreResult<Vec<FleetResult>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT target, runbook, position, result FROM fleet_reports WHERE fleet = ?1
             ORDER BY position IS NULL, position, target",
        )?;
        let rows = stmt.query_map([fleet], |r| {
            Ok(FleetResult {
                target: r.get(0)?,
                runbook: r.get(1)?,
                position: r.get(2)?,
                result: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert(&self, run: &NewRun) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO runs (id, runbook, target, inputs, answers, status, requested_by,
                              created_at, notify)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8)",
            params![
                run.id,
                run.runbook,
                run.target,
                run.inputs.to_string(),
                run.answers.to_string(),
                run.requested_by,
                run.created_at,
                run.notify
            ],
        )?;
        Ok(())
    }

    fn set_running(&self, id: &str, started_at: &str) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE runs SET status = 'running', started_at = ?2 WHERE id = ?1",
            params![id, started_at],
        )?;
        Ok(())
    }

    fn finish(&self, id: &str, outcome: &Outcome) -> StoreResult<bool> {
        self.conn().execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, exit_code = ?4, error = ?5, report = ?6,
                    markdown = ?7
             WHERE id = ?1",
            params![
                id,
                outcome.status,
                outcome.finished_at,
                outcome.exit_code,
                outcome.error,
                outcome.report,
                outcome.markdown
            ],
        )?;
        Ok(true)
    }

    fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS}, report, markdown FROM runs WHERE id = ?1"),
                [id],
                |row| {
                    let mut r = record(row)?;
                    r.report = row.get(13)?;
                    r.markdown = row.get(14)?;
                    Ok(r)
                },
            )
            .optional()?)
    }

    fn list(
        &self,
        limit: usize,
        before: Option<i64>,
        filter: &RunFilter,
    ) -> StoreResult<Vec<RunRecord>> {
        let mut clauses = vec!["seq < ?".to_string()];
        let mut values: Vec<rusqlite::types::Value> = vec![before.unwrap_or(i64::MAX).into()];
        for (column, wanted) in [
            ("runbook", &filter.runbook),
            ("target", &filter.target),
            ("status", &filter.status),
        ] {
            if let Some(v) = wanted {
                clauses.push(format!("{column} = ?"));
                values.push(v.clone().into());
            }
        }
        for (column, allowed) in [
            ("runbook", &filter.runbooks_in),
            ("target", &filter.targets_in),
        ] {
            if let Some(allowed) = allowed {
                let marks = vec!["?"; allowed.len()].join(", ");
                clauses.push(format!("{column} IN ({marks})"));
                values.extend(allowed.iter().map(|v| v.clone().into()));
            }
        }
        values.push((limit as i64).into());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM runs WHERE {} ORDER BY seq DESC LIMIT ?",
            clauses.join(" AND ")
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), record)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn count(&self) -> StoreResult<i64> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?)
    }
}

fn json_column(row: &rusqlite::Row, index: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(index)?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn record(row: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        seq: row.get(1)?,
        runbook: row.get(2)?,
        target: row.get(3)?,
        inputs: json_column(row, 4)?,
        answers: json_column(row, 5)?,
        status: row.get(6)?,
        requested_by: row.get(7)?,
        created_at: row.get(8)?,
        started_at: row.get(9)?,
        finished_at: row.get(10)?,
        exit_code: row.get(11)?,
        error: row.get(12)?,
        report: None,
        markdown: None,
    })
}

/// Marks every run still queued or running interrupted, in one transaction, and returns
/// them.
fn mark_interrupted(conn: &Connection) -> rusqlite::Result<Vec<InterruptedRun>> {
    let tx = conn.unchecked_transaction()?;
    let runs = tx
        .prepare(
            "SELECT id, runbook, target, notify FROM runs
             WHERE status IN ('queued', 'running') ORDER BY seq",
        )?
        .query_map([], |r| {
            Ok(InterruptedRun {
                id: r.get(0)?,
                runbook: r.get(1)?,
                target: r.get(2)?,
                notify: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.execute(
        "UPDATE runs SET status = 'interrupted', finished_at = ?1,
                error = 'the server stopped while this run was ' || status
         WHERE status IN ('queued', 'running')",
        [crate::report::rfc3339(std::time::SystemTime::now())],
    )?;
    tx.commit()?;
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::store::Store;
    use serde_json::json;

    #[test]
    fn a_reopened_history_keeps_finished_runs_and_marks_the_rest_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/runs.sqlite3");
        let (store, marked) = SqliteStore::open(&path).unwrap();
        assert!(marked.is_empty());
        for id in ["a", "b", "c"] {
            store
                .insert(&NewRun {
                    id,
                    runbook: "rb",
                    target: "demo",
                    inputs: &json!({"vip": "10.0.0.1"}),
                    answers: &json!({}),
                    requested_by: "token:t",
                    created_at: "2026-11-26T00:00:00Z",
                    notify: (id == "c").then_some(r#"{"chat":"slack"}"#),
                })
                .unwrap();
        }
        store.set_running("b", "2026-11-26T00:00:01Z").unwrap();
        store
            .finish(
                "a",
                &Outcome {
                    status: "ok",
                    finished_at: "2026-11-26T00:00:02Z",
                    exit_code: Some(0),
                    error: None,
                    report: Some("{\"schema\":\"triage.report/v2\"}"),
                    markdown: Some("# rb"),
                },
            )
            .unwrap();
        drop(store);

        let (store, marked) = SqliteStore::open(&path).unwrap();
        let ids: Vec<&str> = marked.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"], "b was running and c queued");
        assert_eq!(marked[0].notify, None);
        assert_eq!(marked[1].notify.as_deref(), Some(r#"{"chat":"slack"}"#));
        assert_eq!(marked[1].runbook, "rb");
        let a = store.get("a").unwrap().unwrap();
        assert_eq!(a.status, "ok");
        assert_eq!(a.inputs["vip"], "10.0.0.1");
        assert!(a.report.unwrap().contains("triage.report/v2"));
        let b = store.get("b").unwrap().unwrap();
        assert_eq!(b.status, "interrupted");
        assert_eq!(
            b.error.as_deref(),
            Some("the server stopped while this run was running")
        );
        assert!(store.get("nope").unwrap().is_none());

        // Newest first, paged by seq.
        let page = store.list(2, None, &RunFilter::default()).unwrap();
        let ids: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "b"]);
        let rest = store
            .list(2, Some(page[1].seq), &RunFilter::default())
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, "a");
        assert!(rest[0].report.is_none(), "lists leave the reports out");
    }

    #[test]
    fn a_first_version_history_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite3");
        // The schema as the first release wrote it, with a run left running.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                runbook TEXT NOT NULL, target TEXT NOT NULL, inputs TEXT NOT NULL,
                answers TEXT NOT NULL, status TEXT NOT NULL, requested_by TEXT NOT NULL,
                created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, exit_code INTEGER,
                error TEXT, report TEXT, markdown TEXT);
             INSERT INTO runs (id, runbook, target, inputs, answers, status, requested_by, created_at)
             VALUES ('old', 'rb', 'demo', '{}', '{}', 'running', 'token:t', '2026-11-25T00:00:00Z');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let (store, marked) = SqliteStore::open(&path).unwrap();
        assert_eq!(
            marked,
            [InterruptedRun {
                id: "old".into(),
                runbook: "rb".into(),
                target: "demo".into(),
                notify: None,
            }]
        );
        assert_eq!(store.get("old").unwrap().unwrap().status, "interrupted");
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Reopening a migrated file changes nothing.
        assert!(SqliteStore::open(&path).unwrap().1.is_empty());
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite3");
        std::fs::write(&path, b"not a database, just some text that is long enough").unwrap();
        let err = SqliteStore::open(&path).err().unwrap();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(!err.contains('\n'));
    }
}
