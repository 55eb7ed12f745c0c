//! `triage serve` on a shared PostgreSQL history: a real PostgreSQL from the distribution's
//! packages, started by the test (initdb in a temporary directory, the server on a loopback
//! port, as an unprivileged user since initdb refuses root), and real `triage serve`
//! replicas on it.

use super::serve::{Server, TOKEN, client, get_json, rt, setup};
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
struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The user the cluster runs as: initdb and postgres refuse to run as root.
const NOBODY: (u32, u32) = (65534, 65534);

impl Postgres {
    fn start(bin: &Path) -> Postgres {
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

    fn url(&self) -> String {
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
fn postgres_or_skip() -> Option<PathBuf> {
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
                    let target = if slow && k % 25 == 0 {
                        "hangs"
                    } else if k % 2 == 0 {
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
