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

/// The rule on the highlighted timeline row.
fn picked_rule(screen: &str) -> Option<String> {
    let row = screen.lines().find(|l| l.contains('▸'))?;
    row.split_whitespace().nth(2).map(str::to_owned)
}

#[test]
fn space_steps_a_real_daemon_rule_by_rule_and_q_ends_it() {
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut command = CommandBuilder::new(exe());
    command.args(["run", "--settle", "300", "--"]);
    command.arg(program);
    command.args(["apue", dir.path().to_str().unwrap()]);
    command.env("TERM", "xterm-256color");
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
        "ignore_sighup",
        "second_fork",
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
            let picture = app.wait("the session picture", |s| {
                s.contains("Sessions and process groups")
            });
            assert!(picture.contains("no terminal"), "{picture}");
            app.press(b"s");
            app.wait("the process again", |s| {
                s.contains("the kernel's view while it was held")
            });
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
    let screen = app.wait("the verdict", |s| s.contains("carries on as a daemon"));
    assert!(screen.contains("the trace has ended"), "{screen}");
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
