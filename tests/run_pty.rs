//! `daemonlab run -- PROGRAM` in a real pty: the explorer holds a traced C daemon
//! (tests/c/tsubject.c) at every rule until Space, shows the kernel's view at each, and
//! ends it on q. Checked with a terminal emulator (vt100) and /proc.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use portable_pty::CommandBuilder;

use common::exe;
use common::pty::PtyApp;
use common::tsubject::{survivors, tsubject};

/// The rule the program is held at: the timeline row marked ▶.
fn picked_rule(screen: &str) -> Option<String> {
    let row = screen.lines().find(|l| l.contains('▶'))?;
    let row = &row[row.find('▶')? + '▶'.len_utf8()..];
    // "#12  4220   fork again  if ((pid = …": the label follows the PID, padded.
    let pid = row.split_whitespace().nth(1)?;
    let after = row[row.find(&format!(" {pid} "))? + pid.len() + 2..].trim_start();
    Some(after.split("  ").next()?.trim().to_owned())
}

/// One run at a time: each may bind /dev/log for its program.
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn space_steps_a_real_daemon_rule_by_rule_and_q_ends_it() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut command = CommandBuilder::new(exe());
    command.args(["run", "--settle", "300", "--"]);
    command.arg(program);
    command.args(["logs", dir.path().to_str().unwrap()]);
    command.env("TERM", "xterm-256color");
    // As root with no system logger, the lab binds /dev/log for the run.
    let dev_log_was_free =
        nix::unistd::geteuid().is_root() && std::fs::symlink_metadata("/dev/log").is_err();
    let mut app = PtyApp::spawn(command, 40, 120);
    app.wait("the first rule, held", |s| s.contains("held at this rule"));
    // Every Space moves the highlight to the next rule, in the book's order, and the
    // program stays held in between.
    let mut seen = Vec::new();
    let expected = [
        "start",
        "umask",
        "fork",
        "setsid",
        "ignore HUP",
        "fork again",
    ];
    for _ in 0..expected.len() {
        let screen = app.wait("a held rule", |s| s.contains("held at this rule"));
        let rule = picked_rule(&screen).expect("a highlighted row");
        if seen.last() != Some(&rule) {
            seen.push(rule.clone());
        }
        if rule == "setsid" {
            // The kernel's view while held: its own session, no terminal.
            assert!(screen.contains("TTY ?"), "{screen}");
            // s: the same moment as the chapter's figure, the new session beside the old.
            app.press(b"s");
            let picture = app.wait("the session picture", |s| s.contains("Sessions ⊃ groups"));
            assert!(picture.contains("no terminal"), "{picture}");
            app.press(b"s");
            app.wait("History again", |s| s.contains("History (ps -axj"));
            // The Process pane's view was read in the tracing stop, at this row.
            assert!(screen.contains(", while held"), "{screen}");
            // The lesson follows the rule on screen.
            assert!(screen.contains("Start a new session"), "{screen}");
        }
        app.press(b" ");
        let deadline = Instant::now() + Duration::from_secs(10);
        while picked_rule(&app.text()).as_deref() == Some(rule.as_str()) {
            assert!(
                Instant::now() < deadline,
                "Space did not move on:\n{}",
                app.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(seen, expected, "rules in the order they were held");
    // Run freely to the end: the verdict, and the daemon still there until q.
    app.press(b"c");
    // Both in one wait: a screen read mid-frame can hold the new Verdict pane before
    // the footer line below it has been redrawn.
    let screen = app.wait("the verdict", |s| {
        s.contains("carries on as a daemon") && s.contains("the trace has ended")
    });
    assert!(screen.contains("Verdict"), "{screen}");
    // Its syslog(3) message reaches the Syslog pane when the lab could take /dev/log.
    if dev_log_was_free {
        app.wait("the program's syslog message", |s| {
            s.contains("daemon.notice tsubject[")
        });
    } else {
        eprintln!(
            "SKIPPED the Syslog pane check: /dev/log is taken or may not be created here (the pane says where the messages go)"
        );
    }
    assert!(
        !survivors(dir.path()).is_empty(),
        "the daemon is kept until q"
    );
    app.press(b"q");
    let (code, _) = app.finish();
    assert_eq!(code, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !survivors(dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "outlived q: {:?}",
            survivors(dir.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_without_a_terminal_points_to_trace() {
    let out = Command::new(exe())
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemonlab trace"));
}

#[test]
fn kill_9_of_run_ends_the_program_and_gives_back_dev_log() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dev_log_was_free =
        nix::unistd::geteuid().is_root() && std::fs::symlink_metadata("/dev/log").is_err();
    let mut command = CommandBuilder::new(exe());
    command.args(["run", "--"]);
    command.arg(program);
    command.args(["logs", dir.path().to_str().unwrap()]);
    command.env("TERM", "xterm-256color");
    let mut app = PtyApp::spawn(command, 40, 120);
    app.wait("the first rule, held", |s| s.contains("held at this rule"));
    // Let it daemonize freely, so the survivor is a real daemon with no terminal.
    app.press(b"c");
    app.wait("the openlog rule", |s| s.contains("openlog"));
    assert!(!survivors(dir.path()).is_empty());
    if dev_log_was_free {
        assert!(
            std::fs::symlink_metadata("/dev/log").is_ok(),
            "bound for the run"
        );
    }
    // Our own child, not yet waited for: its PID is still its own.
    let pid = app.child.process_id().expect("the app's pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let _ = app.finish();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !survivors(dir.path()).is_empty()
        || (dev_log_was_free && std::fs::symlink_metadata("/dev/log").is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "after kill -9: survivors {:?}, /dev/log left: {}",
            survivors(dir.path()),
            std::fs::symlink_metadata("/dev/log").is_ok()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if !dev_log_was_free {
        eprintln!(
            "SKIPPED the /dev/log half: the lab could not bind /dev/log here (not root, or a logger owns it)"
        );
    }
}

/// `daemonlab run --service`: the lab as the service manager of its own new-style daemon,
/// in the explorer: active at READY=1, r reloads, e stops, and nothing is left.
#[test]
fn run_service_shows_a_new_style_daemon_start_reload_and_stop() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let mut command = CommandBuilder::new(exe());
    // No program: the lab's own new-style daemon, as Type=notify-reload.
    command.args(["run", "--service"]);
    command.env("TERM", "xterm-256color");
    let mut app = PtyApp::spawn(command, 40, 120);
    let screen = app.wait("active", |s| s.contains("Type=notify-reload · active"));
    // The manager's part, before the program ran: the prepared process in the timeline.
    assert!(screen.contains("prepared"), "{screen}");
    let main: i32 = screen
        .split("main pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the main pid in the header");
    assert!(std::path::Path::new(&format!("/proc/{main}")).exists());
    app.press(b"r");
    app.wait("the reload", |s| s.contains("reloaded 1×"));
    app.press(b"e");
    app.wait("the end", |s| s.contains("the manager has ended: inactive"));
    app.press(b"q");
    let (code, _) = app.finish();
    assert_eq!(code, 0);
    let stat = std::fs::read_to_string(format!("/proc/{main}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim().starts_with('Z')),
        "the service outlived the explorer: {stat}"
    );
}
