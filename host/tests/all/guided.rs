//! Guided mode, driven as a person would: the real binary in a terminal (tmux), keys sent,
//! the screen read back, and the saved report checked.

use super::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(tag: &str, shell_command: &str) -> Option<Tmux> {
        Self::start_sized(tag, shell_command, 200)
    }

    /// A pane `columns` wide (80 rows).
    fn start_sized(tag: &str, shell_command: &str, columns: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("this test needs tmux (.ci/run installs it)");
            }
            eprintln!("skipped: needs tmux");
            return None;
        }
        let session = format!("triage-{tag}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &columns.to_string(),
                "-y",
                "80",
                shell_command,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Some(Tmux { session })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "capture-pane",
                "-p",
                "-J",
                "-S",
                "-200",
                "-t",
                &self.session,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times (or fails with the screen).
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} ×{times}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the terminal's cursor is visible (a prompt or spinner hides it while it runs).
    fn cursor_visible(&self) -> bool {
        let out = Command::new("tmux")
            .args([
                "display-message",
                "-p",
                "-t",
                &self.session,
                "#{cursor_flag}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The shell command that runs `triage ARGS` in the pane with the tests' environment.
fn in_pane(args: &str) -> String {
    let cmd = triage();
    let mut env = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            env.push_str(&format!(
                "{}='{}' ",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
    }
    format!(
        "cd '{}' && env {env} '{}' {args}; echo \"EXIT=$?\"; sleep 600",
        root().display(),
        env!("CARGO_BIN_EXE_triage")
    )
}

#[test]
fn guided_walk_through_a_bundle_with_run_and_skip() {
    let save = tempfile::tempdir().unwrap();
    let args = format!(
        "guide service-unreachable --bundle examples/service-unreachable/interception-missing --input vip=10.0.0.1 --save-dir '{}'",
        save.path().display()
    );
    let Some(t) = Tmux::start("walk", &in_pane(&args)) else {
        return;
    };
    // The plan, then the first step with why it matters and what it will touch.
    let screen = t.wait_for("Run this step?", 1);
    assert!(
        screen.contains(
            "Guide section: Service configured with Traffic Director is not reachable (No se puede acceder al servicio configurado con Traffic Director)"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("Plan:") && screen.contains("4. vip-interception"),
        "{screen}"
    );
    assert!(
        screen.contains("exec ps -eo pid=,uid=,user=,args="),
        "{screen}"
    );
    t.keys(&["Enter"]); // run envoy-process
    let screen = t.wait_for("Run this step?", 2);
    assert!(screen.contains("✓ holds [envoy-process]"), "{screen}");
    assert!(screen.contains("facts: envoy_running=true"), "{screen}");
    assert!(screen.contains("exec iptables -t nat -S"), "{screen}");
    t.keys(&["Enter"]); // run interception: the finding and its fix show at once
    let screen = t.wait_for("Run this step?", 3);
    assert!(
        screen.contains(
            "ERROR interception-missing [TRG0403]: No traffic interception in the nat table"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("fix: Set up traffic interception again"),
        "{screen}"
    );
    t.keys(&["Down", "Enter"]); // skip dynamic-config
    let screen = t.wait_for("EXIT=", 1);
    assert!(
        screen.contains("skipped: skipped by the user [dynamic-config]"),
        "{screen}"
    );
    assert!(screen.contains("EXIT=1"), "{screen}");

    // The session is saved as JSON and Markdown.
    let mut saved: Vec<_> = std::fs::read_dir(save.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    saved.sort();
    assert_eq!(saved.len(), 2, "{saved:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved[0]).unwrap()).unwrap();
    assert_eq!(finding_ids(&json), vec!["interception-missing"]);
    assert_eq!(
        step(&json, "dynamic-config")["reason"],
        "skipped by the user"
    );
    assert!(
        std::fs::read_to_string(&saved[1])
            .unwrap()
            .contains("`interception-missing`")
    );
}

#[test]
fn guided_ask_step_is_a_real_prompt() {
    let save = tempfile::tempdir().unwrap();
    let args = format!(
        "guide ipv6-modules-missing --bundle runbooks/ipv6-modules-missing/tests/console-vm-modules-missing --save-dir '{}'",
        save.path().display()
    );
    let Some(t) = Tmux::start("ask", &in_pane(&args)) else {
        return;
    };
    // Run the probes until the question comes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = t.screen();
        if screen.contains("Was the VM created in the Cloud Console?") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no prompt; the screen:\n{screen}"
        );
        if screen.trim_end().ends_with("quit") {
            t.keys(&["Enter"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    t.keys(&["Enter"]); // "yes", the first choice
    t.wait_for("Was the VM created in the Cloud Console? · yes", 1);
    let screen = t.wait_for("EXIT=", 1);
    let json_path = std::fs::read_dir(save.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no saved report; screen:\n{screen}"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    assert_eq!(
        step(&json, "created-from-console")["status"],
        "passed",
        "{json:#}"
    );
    assert_eq!(
        finding_ids(&json),
        vec!["ip6tables-unavailable"],
        "the answer reached the findings"
    );
}

#[test]
fn guided_quit_ends_the_session_incomplete_naming_what_was_not_checked() {
    let save = tempfile::tempdir().unwrap();
    let args = format!(
        "guide service-unreachable --bundle examples/service-unreachable/interception-in-place --save-dir '{}'",
        save.path().display()
    );
    let Some(t) = Tmux::start("quit", &in_pane(&args)) else {
        return;
    };
    // `vip` is optional but gates the VIP check, so it is asked for; Enter leaves it out.
    t.wait_for("vip (the service's virtual IP (VIP)", 1);
    t.keys(&["Enter"]);
    t.wait_for("Run this step?", 1);
    t.keys(&["Down", "Down", "Enter"]); // quit at the first step
    let screen = t.wait_for("EXIT=", 1);
    assert!(
        screen.contains("not run: the session was ended [envoy-process]"),
        "{screen}"
    );
    assert!(
        screen.contains("not run: the session was ended [interception]"),
        "{screen}"
    );
    assert_eq!(
        screen.matches("Run this step?").count(),
        1,
        "asked again after quit:\n{screen}"
    );
    // Nothing fired, but nothing was checked either: incomplete, and it says what.
    assert!(screen.contains("EXIT=3"), "{screen}");
    assert!(
        screen.contains(
            "Not checked (the session was ended): envoy-process, dynamic-config, interception"
        ),
        "{screen}"
    );
    let saved = std::fs::read_dir(save.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a saved session");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(json["summary"]["complete"], false, "{json:#}");
}

/// `q` and Esc quit at the step prompt, like the menu's quit.
#[test]
fn guided_q_and_esc_quit() {
    for (tag, key) in [("q", "q"), ("esc", "Escape")] {
        let save = tempfile::tempdir().unwrap();
        let args = format!(
            "guide service-unreachable --bundle examples/service-unreachable/interception-in-place --input vip=10.0.0.1 --save-dir '{}'",
            save.path().display()
        );
        let Some(t) = Tmux::start(tag, &in_pane(&args)) else {
            return;
        };
        t.wait_for("Run this step?", 1);
        t.keys(&["Enter"]); // run envoy-process
        t.wait_for("Run this step?", 2);
        t.keys(&[key]);
        let screen = t.wait_for("EXIT=", 1);
        assert!(screen.contains("EXIT=3"), "{key}:\n{screen}");
        assert!(
            screen.contains("Not checked (the session was ended): dynamic-config, interception, vip-interception"),
            "{key}:\n{screen}"
        );
        assert!(t.cursor_visible(), "{key} left the cursor hidden");
    }
}

/// Skipping a step that decides the diagnosis (here the interception check, on a healthy
/// VM) leaves it unchecked: exit 3, not a clean 0.
#[test]
fn guided_skipping_a_deciding_step_is_incomplete() {
    let save = tempfile::tempdir().unwrap();
    let args = format!(
        "guide service-unreachable --bundle examples/service-unreachable/interception-in-place --input vip=10.0.0.1 --save-dir '{}'",
        save.path().display()
    );
    let Some(t) = Tmux::start("skip", &in_pane(&args)) else {
        return;
    };
    t.wait_for("Run this step?", 1);
    t.keys(&["Enter"]); // envoy-process
    t.wait_for("Run this step?", 2);
    t.keys(&["Down", "Enter"]); // skip interception (vip-interception needs it)
    t.wait_for("Run this step?", 3);
    t.keys(&["Enter"]); // dynamic-config
    let screen = t.wait_for("EXIT=", 1);
    assert!(screen.contains("EXIT=3"), "{screen}");
    assert!(
        screen.contains("Not checked (they were skipped): interception, vip-interception"),
        "{screen}"
    );
}

/// Ctrl-C at a prompt (which hides the cursor) ends the session with the cursor shown again.
#[test]
fn guided_ctrl_c_restores_the_terminal() {
    let args = "guide service-unreachable --bundle examples/service-unreachable/interception-in-place --input vip=10.0.0.1 --save-dir /tmp";
    let Some(t) = Tmux::start("ctrlc", &in_pane(args)) else {
        return;
    };
    t.wait_for("Run this step?", 1);
    assert!(
        !t.cursor_visible(),
        "the prompt was expected to hide the cursor"
    );
    t.keys(&["C-c"]);
    let screen = t.wait_for("EXIT=", 1);
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert!(screen.contains("interrupted"), "{screen}");
    assert!(
        t.cursor_visible(),
        "Ctrl-C left the cursor hidden:\n{screen}"
    );
}

/// In a narrow terminal, text wraps between words (the terminal would cut words in two),
/// and what a step may touch is the URL it will fetch, not the policy pattern.
#[test]
fn guided_text_wraps_at_words_and_shows_concrete_calls() {
    let args = "guide service-unreachable --bundle examples/service-unreachable/interception-in-place --input vip=10.0.0.1 --save-dir /tmp";
    let Some(t) = Tmux::start_sized("wrap", &in_pane(args), 60) else {
        return;
    };
    t.wait_for("Run this step?", 1);
    t.keys(&["Enter"]); // envoy-process
    t.wait_for("Run this step?", 2);
    t.keys(&["Enter"]); // interception
    let screen = t.wait_for("Run this step?", 3); // dynamic-config, which reads config_dump
    // capture-pane -J joins the lines the terminal wrapped: a line longer than the pane
    // is one triage did not wrap.
    let long: Vec<&str> = screen
        .lines()
        .filter(|l| l.chars().count() > 60 && l.contains(' '))
        .collect();
    assert!(
        long.is_empty(),
        "lines not wrapped:\n{}\n---\n{screen}",
        long.join("\n")
    );
    assert!(
        screen.contains("Why: The guide's second check,"),
        "{screen}"
    );
    assert!(
        screen.contains("http GET http://localhost:15000/config_dump\n"),
        "{screen}"
    );
    assert!(!screen.contains("config_dump**"), "{screen}");
    // After it runs, the calls it made.
    t.keys(&["Enter"]);
    let screen = t.wait_for("dynamic-config] in", 1);
    assert!(
        screen.contains("did: http GET http://localhost:15000/config_dump (ok)"),
        "{screen}"
    );
}

#[test]
fn guided_mode_needs_a_terminal() {
    let out = run(triage().args([
        "guide",
        "service-unreachable",
        "--bundle",
        "examples/service-unreachable/interception-missing",
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("guided mode needs a terminal"),
        "{}",
        out.stderr
    );
}

#[test]
fn guided_asks_for_a_missing_input_and_records_a_bundle_that_replays() {
    // A copy of service-unreachable whose `vip` is required, so guided mode must ask for it.
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read_to_string(root().join("runbooks/service-unreachable/runbook.yaml")).unwrap();
    let required = original.replacen(
        "  vip:\n    description:",
        "  vip:\n    required: true\n    description:",
        1,
    );
    assert_ne!(required, original, "the runbook's vip input moved");
    let runbook = dir.path().join("runbook.yaml");
    std::fs::write(&runbook, required).unwrap();
    let recorded = dir.path().join("recorded");
    let args = format!(
        "guide '{}' --bundle examples/service-unreachable/interception-missing --record '{}' --save-dir '{}'",
        runbook.display(),
        recorded.display(),
        dir.path().display()
    );
    let Some(t) = Tmux::start("record", &in_pane(&args)) else {
        return;
    };
    t.wait_for("vip (the service's virtual IP (VIP), e.g. 10.0.0.1)", 1);
    t.keys(&["10.0.0.1", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = t.screen();
        if screen.contains("EXIT=") {
            assert!(screen.contains("EXIT=1"), "{screen}");
            assert!(screen.contains("recorded "), "{screen}");
            break;
        }
        assert!(Instant::now() < deadline, "the walk did not end:\n{screen}");
        if screen.trim_end().ends_with("quit") {
            t.keys(&["Enter"]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The value typed at the prompt is the run's input.
    let saved = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a saved session");
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(session["inputs"]["vip"], "10.0.0.1");
    assert_eq!(finding_ids(&session), vec!["interception-missing"]);
    // The recorded bundle replays to the same diagnosis.
    assert!(recorded.join("bundle.yaml").is_file());
    let replay = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--input",
            "vip=10.0.0.1",
            "--bundle",
        ])
        .arg(&recorded));
    assert_eq!(replay.code, 1, "{}", replay.stderr);
    let json = replay.json();
    assert_eq!(finding_ids(&json), vec!["interception-missing"]);
    assert_eq!(json["inputs"]["vip"], "10.0.0.1");
}
