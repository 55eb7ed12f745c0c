//! `triage serve` on a shared PostgreSQL history: a real PostgreSQL from the distribution's
//! packages, started by the test (initdb in a temporary directory, the server on a loopback
//! port, as an unprivileged user since initdb refuses root), and real `triage serve`
//! replicas on it.

use super::serve::{NARROW_TOKEN, Server, TOKEN, client, get_json, rt, setup};
use super::triage;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "pg-secret-d2f81c0a";

/// The newest PostgreSQL's binaries (`/usr/lib/postgresql/<version>/bin`, Debian's layout).
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster in a temporary directory, stopped when dropped.
pub(super) struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The user the cluster runs as: initdb and postgres refuse to run as root.
const NOBODY: (u32, u32) = (65534, 65534);

impl Postgres {
    pub(super) fn start(bin: &Path) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(NOBODY.0), Some(NOBODY.1)).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        std::os::unix::fs::chown(&pwfile, Some(NOBODY.0), Some(NOBODY.1)).unwrap();
        let data = dir.path().join("data");
        let out = Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "triage",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .uid(NOBODY.0)
            .gid(NOBODY.1)
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=100"])
            .uid(NOBODY.0)
            .gid(NOBODY.1)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pg = Postgres {
            child,
            port,
            _dir: dir,
        };
        // Ready when a login works (the port opens before recovery ends).
        let start = Instant::now();
        rt().block_on(async {
            loop {
                match tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(
                            start.elapsed() < Duration::from_secs(30),
                            "PostgreSQL did not start: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        pg
    }

    pub(super) fn url(&self) -> String {
        format!(
            "postgres://triage:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGTERM: a smart shutdown would wait for the replicas' connections; SIGINT is fast.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// PostgreSQL's binaries, or `None` with the reason printed; under CI they must be there
/// (`.ci/run` installs them).
pub(super) fn postgres_or_skip() -> Option<PathBuf> {
    match postgres_bin() {
        Some(bin) => Some(bin),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("no PostgreSQL under /usr/lib/postgresql/*/bin; .ci/run installs `postgresql`")
        }
        None => {
            eprintln!(
                "skipped: no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
            );
            None
        }
    }
}

/// Submits `per_client` runs from each of `clients` clients, spread over `servers` (a
/// client whose server is gone moves to the next); every 25th run goes to `hangs` (an ssh
/// target that never answers, so it runs until the deadline) when `slow` is set. Returns
/// the ids accepted.
fn submit(servers: &[String], clients: usize, per_client: usize, slow: bool) -> Vec<String> {
    let c = client();
    rt().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..clients {
            let (c, servers) = (c.clone(), servers.to_vec());
            tasks.spawn(async move {
                let mut ids = Vec::new();
                for i in 0..per_client {
                    let k = n * per_client + i;
                    let target = if slow && k.is_multiple_of(25) {
                        "hangs"
                    } else if k.is_multiple_of(2) {
                        "healthy"
                    } else {
                        "broken"
                    };
                    let body = json!({"runbook": "service-unreachable", "target": target,
                                      "inputs": {"vip": "10.0.0.1"}});
                    for attempt in 0..servers.len() {
                        let base = &servers[(k + attempt) % servers.len()];
                        let Ok(r) = c
                            .post(format!("{base}/v1/runs"))
                            .bearer_auth(TOKEN)
                            .json(&body)
                            .send()
                            .await
                        else {
                            continue;
                        };
                        assert_eq!(r.status().as_u16(), 202);
                        let v: Value = r.json().await.unwrap();
                        ids.push(v["id"].as_str().unwrap().to_string());
                        break;
                    }
                }
                ids
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.unwrap());
        }
        all
    })
}

/// Pages through the whole history on `server` (100 a page); every run by id.
fn history(server: &Server) -> HashMap<String, Value> {
    let c = client();
    rt().block_on(async {
        let mut seen = HashMap::new();
        let mut next = Some("/v1/runs?limit=100".to_string());
        while let Some(path) = next {
            let (status, page) = get_json(&c, server, &path).await;
            assert_eq!(status, 200, "{page}");
            for r in page["runs"].as_array().unwrap() {
                let id = r["id"].as_str().unwrap().to_string();
                assert!(seen.insert(id, r.clone()).is_none(), "{r} listed twice");
            }
            next = page["next"].as_str().map(str::to_string);
        }
        seen
    })
}

/// Waits until no run of the history is queued or running; the history then.
fn settled(server: &Server, limit: Duration) -> HashMap<String, Value> {
    let start = Instant::now();
    loop {
        let runs = history(server);
        let open = runs
            .values()
            .filter(|r| r["status"] == "queued" || r["status"] == "running")
            .count();
        if open == 0 {
            return runs;
        }
        assert!(
            start.elapsed() < limit,
            "{open} runs still queued or running"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ids a replica's log says it started.
fn started(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("run started"))
        .filter_map(|l| {
            let at = l.find("run=")? + 4;
            Some(l[at..].split_whitespace().next()?.to_string())
        })
        .collect()
}

/// One replica, then two, on one database (runs per second through the shared queue); then
/// 500 runs from 50 clients over two replicas, one of them SIGKILLed in the middle: every
/// run ends exactly once, none is started twice, and the history pages through them all.
/// The figures: `cargo test -p triage --test all serve_pg -- --nocapture` (with
/// `TRIAGE_BIN=…/release/triage` for a release build).
#[test]
fn replicas_share_one_postgres_and_survive_a_sigkill() {
    let Some(bin) = postgres_or_skip() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let limits = "  max_concurrent_runs: 4\n  max_queued_runs: 1000\n  run_deadline: 3s\n  run_lease: 2s\n  shutdown_grace: 1s\n";
    let s = setup(limits, "http://127.0.0.1:9");
    let db = PathBuf::from(pg.url());

    // The URL's password stays out of what the server prints.
    let check = triage()
        .args(["serve", "--check", "--config"])
        .arg(&s.config)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{printed}");
    assert!(printed.contains("triage:***@127.0.0.1"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");

    // A wrong password: one line, without the password tried.
    let wrong = pg.url().replace(PASSWORD, "wrong-pass-5e1f0c");
    let out = super::run(
        triage()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&s.config)
            .args(["--db", &wrong]),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-pass-5e1f0c"), "{}", out.stderr);

    // One replica.
    let a = Server::start(&s.config, &db);
    let t = Instant::now();
    let ids = submit(std::slice::from_ref(&a.base), 50, 4, false);
    let runs = settled(&a, Duration::from_secs(120));
    let one = ids.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(runs.len(), 200);

    // Two replicas, clients alternating between them.
    let mut b = Server::start(&s.config, &db);
    let t = Instant::now();
    let ids = submit(&[a.base.clone(), b.base.clone()], 50, 4, false);
    let runs = settled(&a, Duration::from_secs(120));
    let two = ids.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(runs.len(), 400);
    let (on_a, on_b) = (started(&a.stderr()), started(&b.stderr()));
    assert!(
        !on_b.is_empty(),
        "the second replica claimed no run ({} on the first)",
        on_a.len()
    );

    // 500 runs from 50 clients; the second replica is killed while runs are in flight.
    let servers = [a.base.clone(), b.base.clone()];
    let t = Instant::now();
    let killer = std::thread::spawn({
        let pid = b.child.id();
        move || {
            std::thread::sleep(Duration::from_millis(1500));
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        }
    });
    let ids = submit(&servers, 50, 10, true);
    killer.join().unwrap();
    assert_eq!(ids.len(), 500, "every run was accepted by one replica");
    let runs = settled(&a, Duration::from_secs(180));
    let elapsed = t.elapsed();
    assert_eq!(runs.len(), 900, "the history pages through every run");
    let b_log = b.stderr();
    let _ = b.child.wait();
    let (on_a, on_b) = (started(&a.stderr()), started(&b_log));
    // Never run twice: no run started on both replicas or twice on one.
    let mut once = HashSet::new();
    for id in on_a.iter().chain(&on_b) {
        assert!(once.insert(id), "run {id} started twice");
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        let r = &runs[id];
        let status = r["status"].as_str().unwrap();
        *counts.entry(status).or_default() += 1;
        assert!(
            ["ok", "failing", "timed-out", "unreachable", "interrupted"].contains(&status),
            "{r}"
        );
        // An interrupted run is one the killed replica had started.
        if status == "interrupted" {
            assert!(
                on_b.contains(id),
                "{r} was interrupted but not started by the killed replica"
            );
            assert!(r["error"].as_str().unwrap().contains("lease"), "{r}");
        }
    }
    for id in ids.iter().filter(|id| runs[*id]["status"] != "interrupted") {
        assert!(once.contains(id), "run {id} ended without being started");
    }
    // Nor in what callers read: /metrics, /healthz, a report in JSON and Markdown.
    let c = client();
    let served = rt().block_on(async {
        let mut all = String::new();
        let some = &ids[0];
        for path in [
            "/metrics".to_string(),
            "/healthz".to_string(),
            format!("/v1/runs/{some}"),
            format!("/v1/runs/{some}?format=markdown"),
            format!("/v1/runs/{some}/events"),
        ] {
            let r = c.get(a.url(&path)).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
            all.push_str(&r.text().await.unwrap());
        }
        all
    });
    assert!(served.contains("triage_runs_ended_total"), "{served}");
    assert!(!served.contains(PASSWORD), "{served}");
    for log in [a.stderr(), b_log] {
        assert!(
            !log.contains(PASSWORD),
            "the password is in a replica's log"
        );
    }
    println!(
        "serve on PostgreSQL: 1 replica {one:.0} runs/s, 2 replicas {two:.0} runs/s \
         (200 runs from 50 clients each); kill: 500 runs from 50 clients in {:.1} s, \
         {} started on the killed replica, ended {counts:?}",
        elapsed.as_secs_f64(),
        on_b.len()
    );
}

/// What replicas share and what each keeps to itself, as docs/serve.md says: a scoped token
/// is scoped on every replica (the config is the same), including runs another replica
/// took; a caller's run rate is per replica (each holds its buckets in memory), so behind a
/// balancer two replicas let a caller start twice its rate; `/metrics` counts what the
/// replica that answers did.
#[test]
fn scopes_hold_on_every_replica_rates_and_metrics_are_per_replica() {
    let Some(bin) = postgres_or_skip() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let s = setup(
        "  max_concurrent_runs: 1\n  run_deadline: 10s\n  run_lease: 5s\n",
        "http://127.0.0.1:9",
    );
    // `narrow` (healthy only, service-unreachable only) gets a rate of its own: 2 a minute.
    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "    runbooks: [service-unreachable]\n",
        "    runbooks: [service-unreachable]\n    runs_per_minute: 2\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let db = PathBuf::from(pg.url());
    let (a, b) = (Server::start(&s.config, &db), Server::start(&s.config, &db));
    let c = client();
    let gauge = |server: &Server, series: &str| -> u64 {
        rt().block_on(async {
            let r = c
                .get(server.url("/metrics"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let text = r.text().await.unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        })
    };
    rt().block_on(async {
        let post = |server: &Server, token: &'static str, target: &str| {
            c.post(server.url("/v1/runs"))
                .bearer_auth(token)
                .json(&json!({"runbook": "service-unreachable", "target": target,
                              "inputs": {"vip": "10.0.0.1"}}))
                .send()
        };
        // The queue is the database's: four runs that hang until the deadline, posted to a,
        // fill both replicas' one slot and leave two queued, which both replicas report.
        for _ in 0..4 {
            assert_eq!(
                post(&a, TOKEN, "hangs").await.unwrap().status().as_u16(),
                202
            );
        }
    });
    let start = Instant::now();
    while [&a, &b]
        .iter()
        .any(|s| gauge(s, "triage_runs_queued ") != 2)
    {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "queued: a {}, b {}",
            gauge(&a, "triage_runs_queued "),
            gauge(&b, "triage_runs_queued ")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        gauge(&a, "triage_runs_running ") + gauge(&b, "triage_runs_running "),
        2
    );
    rt().block_on(async {
        let post = |server: &Server, token: &'static str, target: &str| {
            c.post(server.url("/v1/runs"))
                .bearer_auth(token)
                .json(&json!({"runbook": "service-unreachable", "target": target,
                              "inputs": {"vip": "10.0.0.1"}}))
                .send()
        };
        let get = |server: &Server, token: &'static str, path: String| {
            c.get(server.url(&path)).bearer_auth(token).send()
        };
        // A run on `broken`, outside narrow's scope, started on replica a.
        let r = post(&a, TOKEN, "broken").await.unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let theirs = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Scope: refused on both replicas, and the other team's run is not found on either,
        // whichever replica ran it; the full token reads it on both.
        for server in [&a, &b] {
            assert_eq!(
                post(server, NARROW_TOKEN, "broken")
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
                403
            );
            let r = get(server, NARROW_TOKEN, format!("/v1/runs/{theirs}"))
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 404);
            let r = get(server, TOKEN, format!("/v1/runs/{theirs}"))
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let list: Value = get(server, NARROW_TOKEN, "/v1/runs".into())
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(!list.to_string().contains(&theirs), "{list}");
        }
        // Rate: 2 a minute on a, then refused there; b has a bucket of its own.
        for _ in 0..2 {
            assert_eq!(
                post(&a, NARROW_TOKEN, "healthy")
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
                202
            );
        }
        assert_eq!(
            post(&a, NARROW_TOKEN, "healthy")
                .await
                .unwrap()
                .status()
                .as_u16(),
            429
        );
        for _ in 0..2 {
            assert_eq!(
                post(&b, NARROW_TOKEN, "healthy")
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
                202
            );
        }
        assert_eq!(
            post(&b, NARROW_TOKEN, "healthy")
                .await
                .unwrap()
                .status()
                .as_u16(),
            429
        );
    });
    // Every run ends; the shared history shows the nine (4 + 1 + 2 + 2) on either replica.
    let runs = settled(&b, Duration::from_secs(90));
    assert_eq!(runs.len(), 9);
    let metrics = |server: &Server| {
        rt().block_on(async {
            let r = c
                .get(server.url("/metrics"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        })
    };
    let value = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    let (ma, mb) = (metrics(&a), metrics(&b));
    // Each replica counts its own refusals (2 forbidden, 1 rate-limited each)…
    for m in [&ma, &mb] {
        assert_eq!(
            value(m, "triage_runs_refused_total{reason=\"forbidden\"}"),
            1,
            "{m}"
        );
        assert_eq!(
            value(m, "triage_runs_refused_total{reason=\"rate-limited\"}"),
            1,
            "{m}"
        );
    }
    // …and the ends of the runs it ran; together, every run once.
    let ended = |m: &str| {
        ["ok", "failing", "timed-out"]
            .iter()
            .map(|s| value(m, &format!("triage_runs_ended_total{{status=\"{s}\"}}")))
            .sum::<u64>()
    };
    assert_eq!(ended(&ma) + ended(&mb), 9, "{ma}\n{mb}");
    for m in [&ma, &mb] {
        assert!(!m.contains(PASSWORD), "{m}");
    }
}

/// The database's password never reaches what the server prints: not a refused URL of
/// another kind, not a libpq key=value string, not a failed connection's error.
#[test]
fn a_database_password_is_never_printed() {
    let s = setup("", "http://127.0.0.1:9");
    let secret = "hunter2-db-secret";
    let refused_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cases: [(String, &str); 4] = [
        (
            format!("mysql://root:{secret}@127.0.0.1/triage"),
            "`mysql://…` is not a history",
        ),
        (
            format!("host=127.0.0.1 user=triage password={secret} dbname=triage"),
            "key=value",
        ),
        (
            format!("postgres://triage:{secret}@127.0.0.1:{refused_port}/triage"),
            "postgres://triage:***@127.0.0.1",
        ),
        (
            format!("postgresql://triage:{secret}@[::1/triage"),
            "postgresql://…",
        ),
    ];
    for (url, says) in &cases {
        // On the command line, and in the config file.
        let out = super::run(
            triage()
                .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .arg(&s.config)
                .args(["--db", url]),
        );
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{url}: {}", out.stderr);
        assert!(
            !format!("{}{}", out.stdout, out.stderr).contains(secret),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        let config = s.config.with_file_name("with-db.yaml");
        let text = std::fs::read_to_string(&s.config).unwrap();
        std::fs::write(&config, format!("{text}db: \"{url}\"\n")).unwrap();
        let out = super::run(
            triage()
                .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .arg(&config),
        );
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        assert!(
            !format!("{}{}", out.stdout, out.stderr).contains(secret),
            "{}",
            out.stderr
        );
    }
}

/// The figures in BENCHMARKS.md: the SQLite server's load (500 runs from 50 clients, each
/// client posting its next run once its last one finished) on one PostgreSQL replica, then
/// on two (clients alternating between them), each on a fresh database. Latency is what a
/// caller sees: POST answered with 202, and the `finished` event on the replica it posted
/// to (which follows a run through the history, every 250 ms, when the run is queued in the
/// database). Not a timed assertion; run it with
/// `cargo test -p triage --test all serve_pg::bench -- --ignored --nocapture`
/// (with `TRIAGE_BIN=…/release/triage` for a release build).
#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn bench_500_runs_from_50_clients_on_one_and_two_replicas() {
    let Some(bin) = postgres_or_skip() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let s = setup(
        "  max_concurrent_runs: 4\n  max_queued_runs: 64\n  run_deadline: 60s\n",
        "http://127.0.0.1:9",
    );
    for replicas in [1, 2] {
        let database = format!("bench{replicas}");
        rt().block_on(async {
            let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await
                .unwrap();
        });
        let db = PathBuf::from(pg.url().replace("/postgres", &format!("/{database}")));
        let servers: Vec<Server> = (0..replicas)
            .map(|_| Server::start(&s.config, &db))
            .collect();
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let (clients, per_client) = (50, 10);
        let c = client();
        let started = Instant::now();
        let latencies: Vec<(Duration, Duration)> = rt().block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..clients {
                let (c, bases) = (c.clone(), bases.clone());
                tasks.spawn(async move {
                    let mut lat = Vec::new();
                    for i in 0..per_client {
                        let base = &bases[(n + i) % bases.len()];
                        let target = if (n + i) % 2 == 0 {
                            "healthy"
                        } else {
                            "broken"
                        };
                        let t = Instant::now();
                        let r = c
                            .post(format!("{base}/v1/runs"))
                            .bearer_auth(TOKEN)
                            .json(&json!({"runbook": "service-unreachable", "target": target,
                                          "inputs": {"vip": "10.0.0.1"}}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 202);
                        let accepted = t.elapsed();
                        let id = r.json::<Value>().await.unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_string();
                        let events = super::serve::follow_at(&c, base, &id).await;
                        assert!(events.contains("event: finished"), "{events}");
                        lat.push((accepted, t.elapsed()));
                    }
                    lat
                });
            }
            let mut all = Vec::new();
            while let Some(done) = tasks.join_next().await {
                all.extend(done.unwrap());
            }
            all
        });
        let elapsed = started.elapsed();
        let runs = settled(&servers[0], Duration::from_secs(60));
        assert_eq!(runs.len(), clients * per_client);
        assert!(
            runs.values()
                .all(|r| r["status"] == "ok" || r["status"] == "failing"),
            "every run ended ok or failing"
        );
        let percentiles = |mut d: Vec<Duration>| {
            d.sort();
            let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)].as_millis();
            format!("p50 {} ms, p99 {} ms", at(0.50), at(0.99))
        };
        println!(
            "serve on PostgreSQL, {replicas} replica(s): {} runs from {clients} clients in {:.2} s \
             = {:.0} runs/s; POST to 202 {}; POST to finished {}",
            latencies.len(),
            elapsed.as_secs_f64(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentiles(latencies.iter().map(|l| l.0).collect()),
            percentiles(latencies.iter().map(|l| l.1).collect()),
        );
    }
}

/// Chat results are posted once with two replicas: the replica that records a run's end
/// posts it, whichever replica the chat asked; and a chat run whose replica is SIGKILLed is
/// posted `interrupted` once, by the survivor, when its lease runs out.
#[test]
fn chat_results_are_posted_once_across_replicas() {
    let Some(bin) = postgres_or_skip() else {
        return;
    };
    let pg = Postgres::start(&bin);
    let (port, posted) = super::serve::response_url_server();
    let s = setup(
        "  max_concurrent_runs: 2\n  run_deadline: 60s\n  run_lease: 2s\n",
        &format!("http://127.0.0.1:{port}/"),
    );
    let db = PathBuf::from(pg.url());
    let (a, b) = (Server::start(&s.config, &db), Server::start(&s.config, &db));
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
    let slack = |server: &Server, text: &str, n: usize| {
        let form = format!(
            "{}&trigger_id={n}",
            super::serve::slack_form(text, &response_url)
        );
        rt().block_on(async {
            let r = super::serve::signed_slack(&c, server, "/slack/commands", form)
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        });
    };
    // A signed command taken by one replica and replayed, byte for byte, to the other is
    // refused there: the signatures taken are remembered in the database.
    let form = super::serve::slack_form("service-unreachable healthy vip=10.0.0.1", &response_url);
    let ts = super::serve::now().to_string();
    let sig = triage::serve::chat::slack::signature(super::serve::SECRET, &ts, form.as_bytes());
    let send = |server: &Server| {
        rt().block_on(async {
            let r = c
                .post(server.url("/slack/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", &ts)
                .header("x-slack-signature", &sig)
                .body(form.clone())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(send(&a).0, 200);
    let (status, said) = send(&b);
    assert_eq!(status, 401, "{said}");
    assert!(said.contains("a replay"), "{said}");
    // Five more commands, alternating replicas: six runs in all.
    for n in 1..6_usize {
        let server = if n.is_multiple_of(2) { &a } else { &b };
        let target = if n.is_multiple_of(3) {
            "broken"
        } else {
            "healthy"
        };
        slack(
            server,
            &format!("service-unreachable {target} vip=10.0.0.1"),
            n,
        );
    }
    let runs = settled(&a, Duration::from_secs(60));
    assert_eq!(runs.len(), 6);
    let mut posts = Vec::new();
    while let Ok(post) =
        posted.recv_timeout(Duration::from_secs(if posts.len() < 6 { 30 } else { 2 }))
    {
        posts.push(post);
    }
    assert_eq!(posts.len(), 6, "{posts:#?}");
    for id in runs.keys() {
        let naming = posts.iter().filter(|p| p.contains(id.as_str())).count();
        assert_eq!(naming, 1, "run {id} posted {naming} times: {posts:#?}");
    }

    // A chat run on the target that hangs; the replica running it is killed.
    slack(&a, "service-unreachable hangs vip=10.0.0.1", 100);
    let start = Instant::now();
    let (id, victim, survivor) = loop {
        let runs = history(&a);
        if let Some(r) = runs
            .values()
            .find(|r| r["target"] == "hangs" && r["status"] == "running")
        {
            let id = r["id"].as_str().unwrap().to_string();
            // The replica whose log says it started the run.
            let on_a = started(&a.stderr()).contains(&id);
            let on_b = started(&b.stderr()).contains(&id);
            if on_a || on_b {
                break if on_a { (id, &a, &b) } else { (id, &b, &a) };
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    Command::new("kill")
        .args(["-KILL", &victim.child.id().to_string()])
        .status()
        .unwrap();
    let post = posted
        .recv_timeout(Duration::from_secs(30))
        .expect("the survivor posts the interruption");
    assert!(
        post.contains(&id) && post.contains("ended interrupted") && post.contains("lease"),
        "{post}"
    );
    let runs = settled(survivor, Duration::from_secs(30));
    assert_eq!(runs[&id]["status"], "interrupted");
    assert!(
        posted.recv_timeout(Duration::from_secs(3)).is_err(),
        "a second post"
    );
}
