//! `envoy-log-location`: where the running Envoy's log is, from its command line and what its
//! stderr is open on, for each shape `readlink /proc/PID/fd/2` can answer with.

use triage_plugin_host::log_location::{LogLocationFacts, fd_target, log_location_facts};
use triage_plugin_host::processes::parse_ps;
use triage_sdk::{CapabilityError, ExecOutput};

fn printed(text: &[u8]) -> Result<ExecOutput, String> {
    Ok(ExecOutput {
        status: 0,
        stdout: text.to_vec(),
        stderr: Vec::new(),
    })
}

/// One Envoy started the way the guide's run.sh starts it (no --log-path), stderr as given.
fn one_envoy(args: &str, stderr: Result<ExecOutput, String>) -> LogLocationFacts {
    let ps = parse_ps(&format!(
        "    1     0 root     /sbin/init\n  891  1337 envoy    {args}\n"
    ))
    .unwrap();
    let mut stderr = Some(stderr);
    log_location_facts(&ps, |pid, fd| {
        assert_eq!((pid, fd), (891, 2));
        Ok(stderr.take().expect("one readlink"))
    })
    .unwrap()
}

const RUN_SH: &str = "/usr/local/bin/envoy --config-path /etc/envoy/bootstrap.yaml";

#[test]
fn stderr_on_a_file_under_log_dir_is_the_log() {
    let facts = one_envoy(RUN_SH, printed(b"/srv/logs/custom/envoy.err.log\n"));
    assert_eq!(
        facts.log_path.as_deref(),
        Some("/srv/logs/custom/envoy.err.log")
    );
    assert_eq!(facts.source.as_deref(), Some("stderr"));
    assert_eq!(facts.pid, Some(891));
    assert_eq!(facts.not_a_file, None);
    assert_eq!(facts.envoys[0].stderr.as_ref().unwrap().kind, "file");
}

#[test]
fn log_path_argument_wins_over_stderr() {
    for args in [
        format!("{RUN_SH} --log-path /var/log/envoy/own.log"),
        format!("{RUN_SH} --log-path=/var/log/envoy/own.log"),
    ] {
        let ps = parse_ps(&format!("  891  1337 envoy    {args}\n")).unwrap();
        // An absolute --log-path says where the log is: stderr is not looked at.
        let facts = log_location_facts(&ps, |_, _| panic!("readlink")).unwrap();
        assert_eq!(facts.log_path.as_deref(), Some("/var/log/envoy/own.log"));
        assert_eq!(facts.source.as_deref(), Some("log-path-argument"));
        assert_eq!(facts.envoys[0].stderr, None);
    }
    // A relative --log-path is relative to Envoy's working directory, which ps does not show.
    let facts = one_envoy(
        &format!("{RUN_SH} --log-path envoy.log"),
        printed(b"/var/log/envoy/envoy.err.log\n"),
    );
    assert_eq!(facts.log_path, None);
    assert_eq!(facts.not_a_file.unwrap().kind, "relative-log-path");
}

#[test]
fn journald_pipe_null_terminal_and_deleted_are_not_log_files() {
    for (link, kind, says) in [
        (
            &b"socket:[48213]\n"[..],
            "socket",
            "sudo journalctl _PID=891",
        ),
        (b"pipe:[9911]\n", "pipe", "ps -o ppid= -p 891"),
        (b"/dev/null\n", "null", "thrown away"),
        (b"/dev/pts/3\n", "terminal", "terminal"),
        (
            b"/var/log/envoy/envoy.err.log (deleted)\n",
            "deleted",
            "sudo tail -n 50 /proc/891/fd/2",
        ),
        (b"anon_inode:[eventfd]\n", "other", "--input log_path="),
    ] {
        let facts = one_envoy(RUN_SH, printed(link));
        assert_eq!(facts.log_path, None, "{kind}");
        let not_a_file = facts.not_a_file.expect(kind);
        assert_eq!(not_a_file.kind, kind);
        assert!(not_a_file.reason.contains(says), "{}", not_a_file.reason);
    }
}

#[test]
fn an_unreadable_link_falls_back_with_the_reason() {
    let denied = Ok(ExecOutput {
        status: 1,
        stdout: Vec::new(),
        stderr: b"readlink: /proc/891/fd/2: Permission denied\n".to_vec(),
    });
    let facts = one_envoy(RUN_SH, denied);
    assert_eq!(
        (facts.log_path.clone(), facts.not_a_file.clone()),
        (None, None)
    );
    let error = facts.lookup_error.unwrap();
    assert!(error.contains("Permission denied"), "{error}");
    assert!(error.starts_with("/proc/891/fd/2: "), "{error}");

    // GNU readlink fails silently: the fact still says why it may have failed.
    let silent = Ok(ExecOutput {
        status: 1,
        stdout: Vec::new(),
        stderr: Vec::new(),
    });
    let error = one_envoy(RUN_SH, silent).lookup_error.unwrap();
    assert!(error.contains("does not run as root"), "{error}");

    let facts = one_envoy(RUN_SH, Err("readlink: not found".into()));
    assert!(facts.lookup_error.unwrap().contains("not found"));
}

#[test]
fn hostile_link_targets_are_shown_escaped_and_never_used() {
    // A newline or an escape sequence in the name: not read, and the report shows it escaped.
    let facts = one_envoy(RUN_SH, printed(b"/var/log/x\n\x1b[2Jfake.log\n"));
    assert_eq!(facts.log_path, None);
    let not_a_file = facts.not_a_file.unwrap();
    assert_eq!(not_a_file.kind, "unsafe-name");
    assert!(!not_a_file.reason.contains('\x1b'), "{}", not_a_file.reason);
    assert!(!not_a_file.reason.contains('\n'), "{}", not_a_file.reason);
    assert!(
        not_a_file.reason.contains(r"\u{1b}"),
        "{}",
        not_a_file.reason
    );

    // A gigabyte-long answer would be cut by the host's output cap; anything past PATH_MAX is
    // not a path, and the fact keeps 200 characters of it.
    let long = vec![b'a'; 1 << 20];
    let target = fd_target(2, printed(&long));
    assert_eq!(target.kind, "too-long");
    assert!(target.target.unwrap().chars().count() <= 201);

    let target = fd_target(2, printed(b"/var/log/\xff\xfe.log\n"));
    assert_eq!(target.kind, "unsafe-name");
}

#[test]
fn a_path_to_a_secret_is_only_a_path() {
    // /etc/shadow is a file like any other here: whether it may be read is the policy's
    // read grant, at the read (tested through the host in host/tests/all/log_location.rs).
    let facts = one_envoy(RUN_SH, printed(b"/etc/shadow\n"));
    assert_eq!(facts.log_path.as_deref(), Some("/etc/shadow"));
}

#[test]
fn first_envoy_with_a_file_wins_and_others_are_listed() {
    let ps = parse_ps(
        "  100     0 root     /usr/local/bin/envoy -c /etc/a.yaml\n  200     0 root     /usr/local/bin/envoy -c /etc/b.yaml\n",
    )
    .unwrap();
    let facts = log_location_facts(&ps, |pid, _| {
        Ok(match pid {
            100 => printed(b"socket:[1]\n"),
            _ => printed(b"/var/log/b/envoy.err.log\n"),
        })
    })
    .unwrap();
    assert_eq!(facts.log_path.as_deref(), Some("/var/log/b/envoy.err.log"));
    assert_eq!(facts.pid, Some(200));
    assert_eq!(facts.envoys.len(), 2);
    assert_eq!(facts.envoys[0].stderr.as_ref().unwrap().kind, "socket");
}

#[test]
fn no_envoy_no_readlink_and_a_denial_is_an_error() {
    let ps = parse_ps("    1     0 root     /sbin/init\n").unwrap();
    let facts = log_location_facts(&ps, |_, _| panic!("readlink without an Envoy")).unwrap();
    assert!(!facts.envoy_running);
    assert_eq!(facts.log_path, None);

    let ps = parse_ps(&format!("  891  1337 envoy    {RUN_SH}\n")).unwrap();
    let err = log_location_facts(&ps, |_, _| {
        Err(CapabilityError::Denied("exec readlink".into()))
    })
    .unwrap_err();
    assert!(matches!(err, CapabilityError::Denied(_)));
}
