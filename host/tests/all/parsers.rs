//! YAML that others write, nested 100,000 levels deep (200 KB): refused in well under a
//! second with where the limit was crossed, in bundles, runbooks, test cases and the
//! server's config. Before, such a bundle cost 27 s of CPU.

use super::{root, run, triage};
use std::path::Path;
use std::time::{Duration, Instant};

fn deep(key: &str) -> String {
    format!("{key}: {}{}\n", "[".repeat(100_000), "]".repeat(100_000))
}

/// The run is quick and says where: `FILE:LINE:COLUMN: …`, the column inside the nesting.
fn refused(out: &super::Run, took: Duration, at: &str) {
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(10), "{took:?}");
    let line = all
        .lines()
        .find(|l| l.contains(at))
        .unwrap_or_else(|| panic!("no {at} in:\n{all}"));
    let rest = &line[line.find(at).unwrap() + at.len()..];
    let (column, message) = rest.split_once(": ").unwrap();
    assert!(column.parse::<usize>().unwrap() > 64, "{line}");
    assert_eq!(message, "YAML nested more than 64 levels deep", "{line}");
    assert_ne!(out.code, 0);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

fn timed(cmd: &mut std::process::Command) -> (super::Run, Duration) {
    let started = Instant::now();
    let out = run(cmd);
    (out, started.elapsed())
}

#[test]
fn deeply_nested_yaml_is_refused_quickly_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A bundle.
    std::fs::create_dir_all(d.join("bundle")).unwrap();
    std::fs::write(d.join("bundle/bundle.yaml"), deep("calls")).unwrap();
    let (out, took) = timed(
        triage()
            .args(["run", "service-unreachable", "--bundle"])
            .arg(d.join("bundle")),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    refused(
        &out,
        took,
        &format!("{}:1:", d.join("bundle/bundle.yaml").display()),
    );

    // A runbook.
    let runbook = d.join("deep.yaml");
    std::fs::write(
        &runbook,
        format!(
            "apiVersion: triage/v1\nid: deep\ntitle: Deep\n{}",
            deep("steps")
        ),
    )
    .unwrap();
    let (out, took) = timed(triage().arg("lint").arg(&runbook));
    refused(&out, took, &format!("{}:4:", runbook.display()));

    // A scenario test case beside a runbook that is fine.
    let rb = d.join("rb");
    std::fs::create_dir_all(rb.join("tests/deep")).unwrap();
    std::fs::copy(
        root().join("runbooks/traffic-loop/runbook.yaml"),
        rb.join("runbook.yaml"),
    )
    .unwrap();
    std::fs::write(rb.join("tests/deep/case.yaml"), deep("findings")).unwrap();
    let (out, took) = timed(triage().arg("test").arg(rb.join("runbook.yaml")));
    refused(
        &out,
        took,
        &format!("{}:1:", rb.join("tests/deep/case.yaml").display()),
    );

    // The server's config.
    let config = d.join("server.yaml");
    std::fs::write(&config, deep("targets")).unwrap();
    let (out, took) = timed(
        triage()
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .arg("--db")
            .arg(d.join("runs.sqlite3")),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    refused(&out, took, &format!("{}:1:", config.display()));
    assert!(!Path::new(&d.join("runs.sqlite3")).exists());
}
