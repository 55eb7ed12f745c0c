//! Install and the ecosystem's conventions: the build script on a toolchain without the
//! plugins' target.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLCHAIN: &str = "triage-no-wasm";

/// The first `program` on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn link_or_copy(from: &Path, to: &Path) {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
    }
}

fn rustc_output(rustc: &Path, args: &[&str]) -> String {
    let out = Command::new(rustc)
        .args(args)
        .current_dir(super::root())
        // cargo test points this at the toolchain's libraries, which would make the copy
        // load the original's librustc_driver and report the original's sysroot.
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", rustc.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A real toolchain that lacks wasm32-wasip2: this machine's own rustc and cargo with the
/// host's standard library and nothing else. rustc finds its sysroot from where its
/// librustc_driver is, so the binaries and libraries are hard links (a symlink would lead
/// it back to the full sysroot); the host's std is a symlink.
fn toolchain_without_wasm(dir: &Path) -> PathBuf {
    let real = PathBuf::from(rustc_output(Path::new("rustc"), &["--print", "sysroot"]));
    let host = rustc_output(Path::new("rustc"), &["-vV"])
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let sysroot = dir.join("sysroot");
    fs::create_dir_all(sysroot.join("bin")).unwrap();
    fs::create_dir_all(sysroot.join("lib/rustlib")).unwrap();
    for bin in ["rustc", "cargo"] {
        link_or_copy(&real.join("bin").join(bin), &sysroot.join("bin").join(bin));
    }
    for lib in fs::read_dir(real.join("lib")).unwrap() {
        let lib = lib.unwrap();
        if lib.file_type().unwrap().is_file() {
            link_or_copy(&lib.path(), &sysroot.join("lib").join(lib.file_name()));
        }
    }
    std::os::unix::fs::symlink(
        real.join("lib/rustlib").join(&host),
        sysroot.join("lib/rustlib").join(&host),
    )
    .unwrap();
    // The precondition the test stands on: the copy is a sysroot of its own, and it really
    // cannot build for the plugins' target.
    assert_eq!(
        rustc_output(&sysroot.join("bin/rustc"), &["--print", "sysroot"]),
        sysroot.display().to_string()
    );
    sysroot
}

/// A crate whose build script is host/build/toolchain.rs driven as host/build.rs drives it.
fn crate_using_the_check(dir: &Path) -> PathBuf {
    let krate = dir.join("probe-build");
    fs::create_dir_all(krate.join("src")).unwrap();
    fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"probe-build\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    fs::write(krate.join("src/main.rs"), "fn main() {}\n").unwrap();
    let module = super::root().join("host/build/toolchain.rs");
    fs::write(
        krate.join("build.rs"),
        format!(
            "#[path = {:?}]\nmod toolchain;\n\nfn main() {{\n    match toolchain::ensure_wasm_target() {{\n        Ok(toolchain::TargetCheck::Present) => {{}}\n        Ok(toolchain::TargetCheck::Added {{ warning }}) => println!(\"cargo::warning={{warning}}\"),\n        Err(e) => println!(\"cargo::error={{e}}\"),\n    }}\n}}\n",
            module.display().to_string()
        ),
    )
    .unwrap();
    krate
}

struct Build {
    ok: bool,
    stderr: String,
}

fn build(krate: &Path, sysroot: &Path, rustup_home: &Path, path: &str) -> Build {
    let out = Command::new(sysroot.join("bin/cargo"))
        .args(["build", "--offline"])
        .current_dir(krate)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("RUSTC", sysroot.join("bin/rustc"))
        .env("RUSTUP_HOME", rustup_home)
        .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    Build {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_one_line_naming_the_command(b: &Build, also: &str) {
    assert!(!b.ok, "the build should fail:\n{}", b.stderr);
    let ours: Vec<&str> = b
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: probe-build"))
        .collect();
    assert_eq!(ours.len(), 1, "{}", b.stderr);
    assert!(
        ours[0].contains(&format!(
            "`rustup target add wasm32-wasip2 --toolchain {TOOLCHAIN}`"
        )),
        "{}",
        ours[0]
    );
    assert!(ours[0].contains(also), "{}", ours[0]);
    for noise in [
        "panicked",
        "backtrace",
        "Backtrace",
        "--- stdout",
        "--- stderr",
    ] {
        assert!(!b.stderr.contains(noise), "{noise}:\n{}", b.stderr);
    }
}

/// The README's first command on a machine whose toolchain lacks wasm32-wasip2: rustup adds
/// it when it can, and otherwise the build stops with one line naming the command.
#[test]
fn build_script_without_the_wasm_target() {
    let Some(rustup) = on_path("rustup") else {
        // The toolchain copy is made from a rustup-managed sysroot's layout.
        eprintln!("skipped: no rustup on PATH");
        return;
    };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sysroot = toolchain_without_wasm(dir.path());
    let krate = crate_using_the_check(dir.path());
    let rustup_home = dir.path().join("rustup-home");
    let link = Command::new(&rustup)
        .args(["toolchain", "link", TOOLCHAIN])
        .arg(&sysroot)
        .env("RUSTUP_HOME", &rustup_home)
        .output()
        .unwrap();
    assert!(
        link.status.success(),
        "{}",
        String::from_utf8_lossy(&link.stderr)
    );
    let system = "/usr/local/bin:/usr/bin:/bin";

    // Real rustup: it cannot add a target to a linked toolchain, and says why in one line
    // among its backtrace; that line is what the user sees.
    let rustup_dir = rustup.parent().unwrap().display().to_string();
    let b = build(
        &krate,
        &sysroot,
        &rustup_home,
        &format!("{rustup_dir}:{system}"),
    );
    assert_one_line_naming_the_command(&b, "does not support components");

    // No rustup at all (a distribution's Rust, say).
    let b = build(&krate, &sysroot, &rustup_home, system);
    assert_one_line_naming_the_command(&b, "rustup is not on PATH");

    // A rustup that can add the target. A stand-in, because the real one would download it:
    // it records its arguments and puts the real wasm32-wasip2 library into the sysroot.
    let real_wasm = PathBuf::from(rustc_output(Path::new("rustc"), &["--print", "sysroot"]))
        .join("lib/rustlib/wasm32-wasip2");
    assert!(real_wasm.is_dir(), "this toolchain has wasm32-wasip2");
    let fake = dir.path().join("fake-rustup");
    fs::create_dir_all(&fake).unwrap();
    let args_file = dir.path().join("rustup-args");
    fs::write(
        fake.join("rustup"),
        format!(
            "#!/bin/sh\necho \"$RUSTUP_TOOLCHAIN $@\" > '{}'\nln -s '{}' '{}'\n",
            args_file.display(),
            real_wasm.display(),
            sysroot.join("lib/rustlib/wasm32-wasip2").display()
        ),
    )
    .unwrap();
    fs::set_permissions(fake.join("rustup"), fs::Permissions::from_mode(0o755)).unwrap();
    let b = build(
        &krate,
        &sysroot,
        &rustup_home,
        &format!("{}:{system}", fake.display()),
    );
    assert!(b.ok, "{}", b.stderr);
    assert_eq!(
        fs::read_to_string(&args_file).unwrap().trim(),
        format!("{TOOLCHAIN} target add wasm32-wasip2")
    );
    assert!(
        b.stderr.contains(&format!(
            "warning: probe-build@0.1.0: the wasm32-wasip2 target was missing from the toolchain at {}: added it with `rustup target add wasm32-wasip2 --toolchain {TOOLCHAIN}`",
            sysroot.display()
        )),
        "{}",
        b.stderr
    );
}

/// `triage ARGS` writing into a pipe whose reader is already gone, as after `| head -1` has
/// read its line; with `merge_stderr`, stderr goes into the same pipe (`2>&1 | head -1`).
/// Closing the reader before the start makes the first write fail every time, whereas a
/// real `head` races with the writer and often reads everything.
fn into_closed_pipe(args: &[&str], merge_stderr: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = super::triage();
    cmd.args(args);
    if merge_stderr {
        cmd.stderr(writer.try_clone().unwrap());
    } else {
        cmd.stderr(std::process::Stdio::piped());
    }
    let out = cmd.stdout(writer).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    for args in [&["plugins"][..], &["list"][..]] {
        let (code, stderr) = into_closed_pipe(args, false);
        assert_eq!(code, Some(0), "triage {args:?} | head -1: {stderr}");
        assert_eq!(stderr, "", "triage {args:?} | head -1");
        // Before, the panic message itself hit the closed pipe and the process aborted (134).
        let (code, _) = into_closed_pipe(args, true);
        assert_eq!(code, Some(0), "triage {args:?} 2>&1 | head -1");
    }
}

/// The same as a user types it, through bash's pipe into the real head (whether the write
/// fails there depends on who is faster; the test above makes it fail every time).
#[test]
fn a_closed_pipe_through_head() {
    let bin = std::env::var("TRIAGE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_triage").into());
    for line in [
        "\"$TRIAGE\" plugins | head -1",
        "\"$TRIAGE\" list 2>&1 | head -1",
    ] {
        let out = Command::new("bash")
            .args(["-c", &format!("set -o pipefail; {line}")])
            .env("TRIAGE", &bin)
            .env(
                "TRIAGE_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
            )
            .env("NO_COLOR", "1")
            .current_dir(super::root())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            1,
            "{line}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{line}");
    }
}

/// The bash completion script loads, and completes a subcommand and a flag's values.
#[test]
fn bash_completes_subcommands_and_values() {
    let script = super::run(super::triage().args(["completions", "bash"]));
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("triage.bash");
    fs::write(&file, &script.stdout).unwrap();
    let complete = |words: &str, cword: usize| -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && COMP_WORDS=({words}) && COMP_CWORD={cword} && COMP_LINE='{words}' && COMP_POINT=${{#COMP_LINE}} && _triage triage \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" && echo \"${{COMPREPLY[@]}}\"",
                file.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let subcommands = complete("triage com", 1);
    assert_eq!(
        subcommands.split_whitespace().collect::<Vec<_>>(),
        ["completions"]
    );
    let formats = complete("triage run x -o ''", 4);
    for format in ["human", "json", "markdown", "sarif", "jsonl"] {
        assert!(formats.split_whitespace().any(|f| f == format), "{formats}");
    }
}

/// Every shell clap_complete knows gets a script; the ones whose shell is installed here
/// must parse in it.
#[test]
fn completions_for_every_shell() {
    for (shell, check) in [
        ("bash", Some(["bash", "-n"])),
        ("zsh", Some(["zsh", "-n"])),
        ("fish", Some(["fish", "--no-execute"])),
        ("powershell", None),
        ("elvish", None),
    ] {
        let out = super::run(super::triage().args(["completions", shell]));
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        // Each shell spells options its own way (fish: `-l format`).
        assert!(
            out.stdout.contains("completions") && out.stdout.contains("format"),
            "{shell}"
        );
        let Some([program, flag]) = check else {
            continue;
        };
        if on_path(program).is_none() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("completion");
        fs::write(&file, &out.stdout).unwrap();
        let parsed = Command::new(program).arg(flag).arg(&file).output().unwrap();
        assert!(
            parsed.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
    let out = super::run(super::triage().args(["completions", "tcsh"]));
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// `triage man` renders with man(1); `--dir` writes a page per subcommand.
#[test]
fn man_pages_render() {
    let out = super::run(super::triage().arg("man"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("triage.1");
    fs::write(&page, &out.stdout).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man(1); .ci/run installs man-db");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for expected in ["NAME", "SYNOPSIS", "triage", "completions", "--color"] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    let pages = dir.path().join("pages");
    let out = super::run(super::triage().arg("man").arg("--dir").arg(&pages));
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in [
        "triage.1",
        "triage-run.1",
        "triage-guide.1",
        "triage-completions.1",
    ] {
        assert!(pages.join(name).is_file(), "{name}");
    }
    let run_page = Command::new("man")
        .arg("-l")
        .arg(pages.join("triage-run.1"))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run_page.stdout);
    assert!(
        text.contains("triage-run") && text.contains("--fail-on"),
        "{text}"
    );
}

/// Every argument of every subcommand says what it is for in `--help`.
#[test]
fn every_argument_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty())
            {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut cmd = triage::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "triage", &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
}

#[test]
fn guide_help_lists_only_what_guided_mode_honours() {
    let out = super::run(super::triage().args(["guide", "--help"]));
    assert_eq!(out.code, 0);
    for honoured in [
        "--save-dir",
        "--bundle",
        "--target",
        "--record",
        "--input",
        "--answer",
    ] {
        assert!(out.stdout.contains(honoured), "{honoured}:\n{}", out.stdout);
    }
    for ignored in ["--targets", "--jobs", "--target-timeout", "--interactive"] {
        assert!(
            !out.stdout.contains(&format!("{ignored} "))
                && !out.stdout.contains(&format!("{ignored}\n")),
            "{ignored}:\n{}",
            out.stdout
        );
    }
    // One target: guided mode never becomes a fleet.
    let out = super::run(super::triage().args([
        "guide",
        "service-unreachable",
        "--bundle",
        "a",
        "--bundle",
        "b",
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

const BUNDLE: &str = "examples/service-unreachable/interception-missing";

#[test]
fn o_is_format_and_color_is_chosen() {
    let run = |extra: &[&str]| {
        super::run(super::triage().args(extra).args([
            "run",
            "service-unreachable",
            "--bundle",
            BUNDLE,
            "--input",
            "vip=10.0.0.1",
        ]))
    };
    let json = run(&[]);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let json = super::run(super::triage().args([
        "run",
        "service-unreachable",
        "--bundle",
        BUNDLE,
        "--input",
        "vip=10.0.0.1",
        "-o",
        "json",
    ]));
    assert_eq!(json.json()["schema"], "triage.report/v2");

    // Output into a pipe, NO_COLOR set by super::triage(): auto means plain, always wins
    // over both, never stays plain.
    assert!(!run(&[]).stdout.contains('\x1b'));
    assert!(run(&["--color", "always"]).stdout.contains("\x1b["));
    assert!(!run(&["--color", "never"]).stdout.contains('\x1b'));
    let graph = super::run(super::triage().args(["graph", "service-unreachable", "-o", "dot"]));
    assert!(graph.stdout.starts_with("digraph"), "{}", graph.stdout);
}

#[test]
fn list_and_plugins_print_json() {
    let list = super::run(super::triage().args(["list", "-o", "json"]));
    assert_eq!(list.code, 0, "{}", list.stderr);
    let list = list.json();
    assert_eq!(list["schema"], "triage.list/v1");
    let su = list["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "service-unreachable")
        .expect("service-unreachable listed");
    assert_eq!(
        su["origin"],
        "built-in:runbooks/service-unreachable/runbook.yaml"
    );
    assert_eq!(su["shadowed"], false);
    assert!(
        su["title"].as_str().unwrap().contains("Traffic Director"),
        "{su}"
    );

    let plugins = super::run(super::triage().args(["plugins", "--format", "json"]));
    assert_eq!(plugins.code, 0, "{}", plugins.stderr);
    let plugins = plugins.json();
    assert_eq!(plugins["schema"], "triage.plugins/v1");
    let iptables = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "iptables")
        .expect("iptables listed");
    assert_eq!(iptables["origin"], "built-in");
    let rules = iptables["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "rules")
        .expect("iptables rules");
    assert!(
        rules["params"]["properties"]["table"].is_object(),
        "{rules:#}"
    );
    assert!(
        rules["capabilities"][0]
            .as_str()
            .unwrap()
            .contains("iptables"),
        "{rules:#}"
    );
}

#[test]
fn verbosity_flags_and_rust_log() {
    use triage::cli::log::directive;
    // Warnings by default, info for the server; -v and -q move one level each.
    assert_eq!(directive(2, 0, 0), "warn,triage=warn");
    assert_eq!(directive(2, 2, 0), "warn,triage=debug");
    assert_eq!(directive(2, 9, 0), "warn,triage=trace");
    assert_eq!(directive(2, 0, 1), "error,triage=error");
    assert_eq!(directive(2, 0, 2), "off,triage=off");
    assert_eq!(directive(3, 0, 0), "warn,triage=info");

    let plugins = |args: &[&str], rust_log: Option<&str>| {
        let mut cmd = super::triage();
        cmd.args(args).arg("plugins");
        match rust_log {
            Some(spec) => cmd.env("RUST_LOG", spec),
            None => cmd.env_remove("RUST_LOG"),
        };
        let out = super::run(&mut cmd);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stderr
    };
    // Loading the plugins logs at debug: from the cache, or compiled into it.
    let says_cache = |log: &str| log.contains("DEBUG") && log.contains("cache");
    assert!(!says_cache(&plugins(&[], None)));
    assert!(says_cache(&plugins(&["-vv"], None)));
    assert!(!says_cache(&plugins(&["-v"], None)));
    assert!(
        says_cache(&plugins(&[], Some("triage=debug"))),
        "RUST_LOG turns it on"
    );
    assert!(
        !says_cache(&plugins(&["-vv"], Some("triage=warn"))),
        "RUST_LOG wins over -v"
    );
    // JSON: every line is an object with a level and a message.
    let json = plugins(&["-vv", "--log-format", "json"], None);
    assert!(!json.is_empty());
    for line in json.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["level"], "DEBUG", "{line}");
        assert!(event["message"].is_string(), "{line}");
    }
    let both = super::run(super::triage().args(["-v", "-q", "list"]));
    assert_eq!(both.code, 2, "{}", both.stderr);
}

/// `triage serve` logs each request, and each run's start and end with its id, as JSON
/// lines when asked.
#[test]
fn serve_logs_requests_and_runs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.yaml");
    let token = "log-test-token-0123456789";
    fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {token}\ntargets:\n  broken: {}\n",
            super::root()
                .join("examples/service-unreachable/interception-missing")
                .display()
        ),
    )
    .unwrap();
    let mut child = super::triage()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&config)
        .arg("--db")
        .arg(dir.path().join("runs.sqlite3"))
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _server = Kill(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    let posted = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}"#)
        .arg(format!("{base}/v1/runs?secret=not-logged"))
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&posted.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&posted.stdout)));
    let id = answer["id"].as_str().expect("a run id").to_string();

    // Read the log until the run's end (bounded: the run replays a bundle).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !events
        .iter()
        .any(|e: &serde_json::Value| e["message"] == "run ended")
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no run end in {events:#?}"));
        events.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {events:#?}"))
    };
    let request = find("request");
    assert_eq!(request["method"], "POST");
    assert_eq!(
        request["path"], "/v1/runs",
        "the query string is never logged"
    );
    assert_eq!(request["status"], 202);
    assert_eq!(request["level"], "INFO");
    let started = find("run started");
    assert_eq!(started["run"], id.as_str());
    assert_eq!(started["runbook"], "service-unreachable");
    let ended = find("run ended");
    assert_eq!(ended["run"], id.as_str());
    assert_eq!(ended["status"], "failing");
    assert!(!events.iter().any(|e| e.to_string().contains("not-logged")));
}
