//! The PostgreSQL history: one database shared by several `triage serve` replicas.
//!
//! The table is the SQLite one plus two columns, `claimed_by` and `lease_until`. A run is
//! inserted `queued` and belongs to nobody; a replica with a free run slot claims the oldest
//! queued run in one statement (`FOR UPDATE SKIP LOCKED`, so two replicas never take the
//! same row and neither waits for the other), which marks it `running`, names the replica and
//! sets a lease. The replica renews the leases of its runs while they run. Every change a
//! replica makes to a run it claimed says `WHERE claimed_by = me AND status = 'running'`, so
//! once a run is no longer its own nothing it writes lands.
//!
//! A replica that dies stops renewing; when the lease has expired, any other replica marks
//! the run `interrupted` (and tells its chat). It is not run again: it had started, its
//! plugins may have run commands on the target, and a second run under the same id would
//! show two histories of events. A run still `queued` when its replica died was never
//! claimed by it: another replica runs it.
//!
//! Leases are compared with the database's clock (`now()`), never a replica's, so replicas
//! with skewed clocks agree on when a lease ran out.
//!
//! Calls are synchronous, like SQLite's: the driver (tokio-postgres) runs its connections on
//! a small runtime of its own, and a call waits for its answer on the calling thread.

use super::{
    ClaimedRun, FleetEntry, FleetResult, InterruptedRun, NewRun, Outcome, PutReport, RunFilter,
    RunRecord, Store, StoreError, StoreResult,
};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row};

/// Connections per replica: enough that a slow list does not hold up a run's update.
const CONNECTIONS: usize = 4;

/// The schema's versions, applied in order under an advisory lock (so two replicas starting
/// at once do not both migrate). 1 and 2 are SQLite's 1 and 2 (the runs table, `notify`);
/// 3 adds the claim; 4 the fleets (`POST /v1/reports`): `fleets` says each fleet's runbook
/// (its primary key settles two first posts of different runbooks), `fleet_reports` holds a
/// row per target, keyed so that a second post replaces the first; 5 the signed chat
/// requests taken (so a replay to another replica is refused).
const MIGRATIONS: [&str; 5] = [
    "CREATE TABLE runs (
        seq          BIGSERIAL PRIMARY KEY,
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
    )",
    "ALTER TABLE runs ADD COLUMN notify TEXT",
    "ALTER TABLE runs ADD COLUMN claimed_by TEXT;
     ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
     CREATE INDEX runs_in_flight ON runs (status, seq) WHERE status IN ('queued', 'running')",
    "CREATE TABLE fleets (
        fleet   TEXT PRIMARY KEY,
        runbook TEXT NOT NULL
     );
     CREATE TABLE fleet_reports (
        fleet       TEXT NOT NULL REFERENCES fleets (fleet),
        target      TEXT NOT NULL,
        runbook     TEXT NOT NULL,
        position    BIGINT,
        result      TEXT NOT NULL,
        posted_by   TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (fleet, target)
     )",
    "CREATE TABLE seen_requests (key TEXT PRIMARY KEY, until BIGINT NOT NULL)",
];

/// Any number; the same in every triage, so replicas exclude each other while migrating.
const MIGRATION_LOCK: i64 = 0x7472_6961_6765; // "triage"

const COLUMNS: &str = "id, seq, runbook, target, inputs, answers, status, requested_by, \
                       created_at, started_at, finished_at, exit_code, error";

/// A `postgres://` URL as the operator wrote it; shown only with its password replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    /// `Some` for a `postgres://` or `postgresql://` URL.
    pub fn parse(text: &str) -> Option<PgUrl> {
        (text.starts_with("postgres://") || text.starts_with("postgresql://"))
            .then(|| PgUrl(text.to_string()))
    }

    /// The URL with its password (if any) as `***`: what logs, errors and `--check` show.
    pub fn redacted(&self) -> String {
        match reqwest::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            // Not a URL the parser reads: show the scheme only rather than risk a secret.
            Err(_) => format!("{}…", &self.0[..self.0.find("//").map_or(0, |i| i + 2)]),
        }
    }
}

// Debug too, so that a `{:?}` of a config never prints the password.
impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

pub struct PgStore {
    /// Drives the connections; calls wait on it from whatever thread they come from.
    runtime: tokio::runtime::Runtime,
    config: Config,
    clients: Mutex<Vec<Option<Arc<Client>>>>,
    next: AtomicUsize,
    /// This process's name in `claimed_by`.
    replica: String,
    /// How long a claim holds without a renewal.
    lease: Duration,
    /// The URL, password hidden, for errors.
    shown: String,
}

impl PgStore {
    /// Connects, migrates the schema, and names this replica. A run left in flight by a
    /// replica that died is not touched here: [`Store::reap`] marks it once its lease ran out.
    pub fn open(url: &PgUrl, lease: Duration) -> Result<PgStore, String> {
        let shown = url.redacted();
        let mut config: Config = url
            .0
            .parse()
            .map_err(|e| format!("{shown}: not a PostgreSQL URL: {e}"))?;
        // libpq's variable, so the password need not be in the URL (which `ps` shows when
        // it is given with --db).
        if config.get_password().is_none()
            && let Some(password) = std::env::var_os("PGPASSWORD")
        {
            config.password(password.as_encoded_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives(true);
        config.application_name("triage serve");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("triage-pg")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the PostgreSQL runtime: {e}"))?;
        let replica = format!("{}:{}:{:08x}", hostname(), std::process::id(), random_u32());
        let store = PgStore {
            runtime,
            config,
            clients: Mutex::new(vec![None; CONNECTIONS]),
            next: AtomicUsize::new(0),
            replica,
            lease,
            shown,
        };
        store.migrate().map_err(|e| e.0)?;
        Ok(store)
    }

    /// This replica's name, as `claimed_by` records it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        // tokio-postgres never prints the connection string; the database's own message
        // (`e.as_db_error()`) is the useful part when there is one.
        let text = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        StoreError(format!("{}: {text}", self.shown))
    }

    /// A connection, opened (again) if it is not open.
    fn client(&self) -> StoreResult<Arc<Client>> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = &clients[slot]
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        let config = self.config.clone();
        let connected = futures::executor::block_on(self.runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes; the next call reconnects.
                let _ = connection.await;
            });
            // A hung database must not hold a run's thread for ever.
            client
                .batch_execute("SET statement_timeout = '30s'")
                .await?;
            Ok::<_, tokio_postgres::Error>(client)
        }))
        .map_err(|e| StoreError(format!("{}: {e}", self.shown)))?;
        let client = Arc::new(connected.map_err(|e| self.error(e))?);
        clients[slot] = Some(client.clone());
        Ok(client)
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let client = self.client()?;
        futures::executor::block_on(client.query(sql, params)).map_err(|e| self.error(e))
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let client = self.client()?;
        futures::executor::block_on(client.execute(sql, params)).map_err(|e| self.error(e))
    }

    fn migrate(&self) -> StoreResult<()> {
        let client = self.client()?;
        let known = MIGRATIONS.len() as i64;
        futures::executor::block_on(async {
            // One transaction: the lock is held until commit, and a failed step leaves the
            // schema as it was.
            client.batch_execute("BEGIN").await?;
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS triage_schema (version BIGINT NOT NULL);
                     INSERT INTO triage_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM triage_schema)",
                )
                .await?;
            let version: i64 = client
                .query_one("SELECT version FROM triage_schema", &[])
                .await?
                .get(0);
            if version > known {
                client.batch_execute("ROLLBACK").await?;
                return Ok(Err(StoreError(format!(
                    "{}: written by a newer triage (history schema {version}, this one knows {known})",
                    self.shown
                ))));
            }
            for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                client.batch_execute(step).await?;
                client
                    .execute("UPDATE triage_schema SET version = $1", &[&(i as i64 + 1)])
                    .await?;
            }
            client.batch_execute("COMMIT").await?;
            Ok(Ok(()))
        })
        .map_err(|e: tokio_postgres::Error| {
            // The connection is in a failed transaction: drop it rather than reuse it.
            self.clients
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter_mut()
                .for_each(|c| *c = None);
            self.error(e)
        })?
    }

    fn lease_seconds(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}

impl Store for PgStore {
    fn insert(&self, run: &NewRun) -> StoreResult<()> {
        self.execute(
            "INSERT INTO runs (id, runbook, target, inputs, answers, status, requested_by,
                               created_at, notify)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)",
            &[
                &run.id,
                &run.runbook,
                &run.target,
                &run.inputs.to_string(),
                &run.answers.to_string(),
                &run.requested_by,
                &run.created_at,
                &run.notify,
            ],
        )?;
        Ok(())
    }

    fn set_running(&self, id: &str, started_at: &str) -> StoreResult<()> {
        // Claiming already marked the run running; this only keeps the start time exact.
        self.execute(
            "UPDATE runs SET started_at = $2 WHERE id = $1 AND claimed_by = $3",
            &[&id, &started_at, &self.replica],
        )?;
        Ok(())
    }

    fn finish(&self, id: &str, outcome: &Outcome) -> StoreResult<bool> {
        // Only the claimant writes the end, and only while the run is still its own: a
        // replica whose lease ran out (it was cut off, then came back) finds the run
        // interrupted by another and records nothing.
        let changed = self.execute(
            "UPDATE runs SET status = $2, finished_at = $3, exit_code = $4, error = $5,
                    report = $6, markdown = $7, lease_until = NULL
             WHERE id = $1 AND claimed_by = $8 AND status = 'running'",
            &[
                &id,
                &outcome.status,
                &outcome.finished_at,
                &outcome.exit_code,
                &outcome.error,
                &outcome.report,
                &outcome.markdown,
                &self.replica,
            ],
        )?;
        Ok(changed == 1)
    }

    fn get(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let rows = self.query(
            &format!("SELECT {COLUMNS}, report, markdown FROM runs WHERE id = $1"),
            &[&id],
        )?;
        Ok(rows.first().map(|row| {
            let mut r = record(row);
            r.report = row.get(13);
            r.markdown = row.get(14);
            r
        }))
    }

    fn list(
        &self,
        limit: usize,
        before: Option<i64>,
        filter: &RunFilter,
    ) -> StoreResult<Vec<RunRecord>> {
        let before = before.unwrap_or(i64::MAX);
        let limit = limit as i64;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&before];
        let mut clauses = vec!["seq < $1".to_string()];
        for (column, wanted) in [
            ("runbook", &filter.runbook),
            ("target", &filter.target),
            ("status", &filter.status),
        ] {
            if let Some(v) = wanted {
                params.push(v);
                clauses.push(format!("{column} = ${}", params.len()));
            }
        }
        for (column, allowed) in [
            ("runbook", &filter.runbooks_in),
            ("target", &filter.targets_in),
        ] {
            if let Some(allowed) = allowed {
                params.push(allowed);
                clauses.push(format!("{column} = ANY(${})", params.len()));
            }
        }
        params.push(&limit);
        let rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM runs WHERE {} ORDER BY seq DESC LIMIT ${}",
                clauses.join(" AND "),
                params.len()
            ),
            &params,
        )?;
        Ok(rows.iter().map(record).collect())
    }

    fn count(&self) -> StoreResult<i64> {
        Ok(self.query("SELECT count(*) FROM runs", &[])?[0].get(0))
    }

    fn shared(&self) -> bool {
        true
    }

    fn put_report(&self, entry: &FleetEntry) -> StoreResult<PutReport> {
        // The first post names the fleet's runbook; a concurrent first post of another
        // runbook waits on the key and then reads the winner's row.
        self.execute(
            "INSERT INTO fleets (fleet, runbook) VALUES ($1, $2) ON CONFLICT (fleet) DO NOTHING",
            &[&entry.fleet, &entry.runbook],
        )?;
        let runbook: String = self
            .query(
                "SELECT runbook FROM fleets WHERE fleet = $1",
                &[&entry.fleet],
            )?
            .first()
            .map(|row| row.get(0))
            .ok_or_else(|| StoreError(format!("fleet `{}` vanished", entry.fleet)))?;
        if runbook != entry.runbook {
            return Ok(PutReport::OtherRunbook(runbook));
        }
        let rows = self.query(
            "INSERT INTO fleet_reports (fleet, target, runbook, position, result, posted_by,
                                        received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (fleet, target) DO UPDATE SET
                position = EXCLUDED.position, result = EXCLUDED.result,
                posted_by = EXCLUDED.posted_by, received_at = EXCLUDED.received_at
             RETURNING (xmax = 0)",
            &[
                &entry.fleet,
                &entry.target,
                &entry.runbook,
                &entry.position,
                &entry.result,
                &entry.posted_by,
                &entry.received_at,
            ],
        )?;
        // xmax is 0 on a row this statement inserted, set on one it updated.
        let inserted: bool = rows.first().map(|row| row.get(0)).unwrap_or(true);
        Ok(if inserted {
            PutReport::Added
        } else {
            PutReport::Replaced
        })
    }

    fn fleet(&self, fleet: &str) -> StoreResult<Vec<FleetResult>> {
        // COLLATE "C": targets in byte order, as SQLite and Rust sort them.
        let rows = self.query(
            "SELECT target, runbook, position, result FROM fleet_reports WHERE fleet = $1
             ORDER BY position IS NULL, position, target COLLATE \"C\"",
            &[&fleet],
        )?;
        Ok(rows
            .iter()
            .map(|row| FleetResult {
                target: row.get(0),
                runbook: row.get(1),
                position: row.get(2),
                result: row.get(3),
            })
            .collect())
    }

    fn insert_if_room(&self, run: &NewRun, max_queued: usize) -> StoreResult<bool> {
        // The count and the insert in one statement; concurrent inserts from several
        // replicas can still pass the count together, so the bound is close, not exact.
        let changed = self.execute(
            "INSERT INTO runs (id, runbook, target, inputs, answers, status, requested_by,
                               created_at, notify)
             SELECT $1, $2, $3, $4, $5, 'queued', $6, $7, $8
             WHERE (SELECT count(*) FROM runs WHERE status = 'queued') < $9",
            &[
                &run.id,
                &run.runbook,
                &run.target,
                &run.inputs.to_string(),
                &run.answers.to_string(),
                &run.requested_by,
                &run.created_at,
                &run.notify,
                &(max_queued as i64),
            ],
        )?;
        Ok(changed == 1)
    }

    fn claim(&self, started_at: &str) -> StoreResult<Option<ClaimedRun>> {
        let rows = self.query(
            "UPDATE runs SET status = 'running', claimed_by = $1, started_at = $2,
                    lease_until = now() + make_interval(secs => $3)
             WHERE seq = (SELECT seq FROM runs WHERE status = 'queued'
                          ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, runbook, target, inputs, answers, notify",
            &[&self.replica, &started_at, &self.lease_seconds()],
        )?;
        Ok(rows.first().map(|row| ClaimedRun {
            id: row.get(0),
            runbook: row.get(1),
            target: row.get(2),
            inputs: json(row.get(3)),
            answers: json(row.get(4)),
            notify: row.get(5),
        }))
    }

    fn first_time(&self, key: &str, until: i64) -> StoreResult<bool> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        // Forget what is stale: the table holds at most the last few minutes' requests.
        self.execute("DELETE FROM seen_requests WHERE until < $1", &[&now])?;
        let inserted = self.execute(
            "INSERT INTO seen_requests (key, until) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &until],
        )?;
        Ok(inserted == 1)
    }

    fn queued(&self) -> StoreResult<i64> {
        Ok(self.query("SELECT count(*) FROM runs WHERE status = 'queued'", &[])?[0].get(0))
    }

    fn renew(&self) -> StoreResult<Vec<String>> {
        let rows = self.query(
            "UPDATE runs SET lease_until = now() + make_interval(secs => $2)
             WHERE claimed_by = $1 AND status = 'running' RETURNING id",
            &[&self.replica, &self.lease_seconds()],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn reap(&self, finished_at: &str) -> StoreResult<Vec<InterruptedRun>> {
        let rows = self.query(
            "UPDATE runs SET status = 'interrupted', finished_at = $1, lease_until = NULL,
                    error = 'the server running it stopped (its lease ran out); run it again'
             WHERE seq IN (SELECT seq FROM runs WHERE status = 'running' AND lease_until < now()
                           FOR UPDATE SKIP LOCKED)
             RETURNING id, runbook, target, notify",
            &[&finished_at],
        )?;
        Ok(rows
            .iter()
            .map(|r| InterruptedRun {
                id: r.get(0),
                runbook: r.get(1),
                target: r.get(2),
                notify: r.get(3),
            })
            .collect())
    }
}

fn json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn record(row: &Row) -> RunRecord {
    RunRecord {
        id: row.get(0),
        seq: row.get(1),
        runbook: row.get(2),
        target: row.get(3),
        inputs: json(row.get(4)),
        answers: json(row.get(5)),
        status: row.get(6),
        requested_by: row.get(7),
        created_at: row.get(8),
        started_at: row.get(9),
        finished_at: row.get(10),
        exit_code: row.get::<_, Option<i32>>(11).map(i64::from),
        error: row.get(12),
        report: None,
        markdown: None,
    }
}

/// The machine's name, so an operator reading `claimed_by` knows where a run ran.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string())
}

fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness; enough to tell two processes apart
    // that share a host name and a pid (containers).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url =
            PgUrl::parse("postgres://triage:hunter2-very-secret@db.internal:5432/triage").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://triage:***@db.internal:5432/triage"
        );
        assert!(!format!("{url} {url:?}").contains("hunter2"));
        let plain = PgUrl::parse("postgresql://db.internal/triage").unwrap();
        assert_eq!(plain.redacted(), "postgresql://db.internal/triage");
        // A URL the parser refuses still hides what follows the scheme.
        let odd = PgUrl::parse("postgres://u:p@[bad/x").unwrap();
        assert_eq!(odd.redacted(), "postgres://…");
        assert!(PgUrl::parse("/var/lib/triage/runs.sqlite3").is_none());
    }

    #[test]
    fn a_db_that_is_neither_a_file_nor_postgres_is_refused_without_its_secret() {
        let base = std::path::Path::new("/etc/triage");
        for text in [
            "mysql://root:hunter2@db/triage",
            "host=db user=triage password=hunter2",
            "pg\u{1b}[31m://x:hunter2@db/triage",
        ] {
            let e = super::super::Db::parse(text, base).unwrap_err();
            assert!(!e.contains("hunter2") && !e.contains('\u{1b}'), "{e}");
        }
        assert_eq!(
            super::super::Db::parse("runs.sqlite3", base),
            Ok(super::super::Db::Sqlite(base.join("runs.sqlite3")))
        );
    }
}
