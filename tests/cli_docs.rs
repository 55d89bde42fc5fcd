//! The packager's side: completions and the man page generate, usage errors exit 2, and
//! the environment variables users expect are honoured.

mod common;

use std::process::Command;

use common::exe;

#[test]
fn completions_and_man_page_generate() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(exe())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("daemonlab") && text.contains("tour"),
            "{shell} completion names the commands"
        );
    }
    // --dir: one page per visible subcommand, each with its examples.
    let dir = tempfile::tempdir().unwrap();
    let pages = Command::new(exe())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(pages.status.success(), "{pages:?}");
    for page in [
        "daemonlab.1",
        "daemonlab-tour.1",
        "daemonlab-locks-race.1",
        "daemonlab-inspect.1",
    ] {
        let roff = std::fs::read_to_string(dir.path().join(page)).unwrap_or_default();
        // The examples are a section of their own, one command per line (no-fill).
        let examples = roff.split(".SH EXAMPLES\n.nf\n").nth(1).unwrap_or_default();
        let first = examples.lines().next().unwrap_or_default();
        assert!(first.starts_with("daemonlab "), "{page}: {roff:.300}");
    }
    assert!(
        !dir.path().join("daemonlab-__subject.1").exists(),
        "hidden commands have no page"
    );
    let missing = Command::new(exe())
        .args(["man", "--dir", "/nonexistent/man1"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/man1"));
    let man = Command::new(exe()).arg("man").output().unwrap();
    assert!(man.status.success());
    let roff = String::from_utf8_lossy(&man.stdout);
    assert!(
        roff.contains(".TH daemonlab 1") && roff.contains("inspect"),
        "{}",
        &roff[..roff.len().min(300)]
    );
}

#[test]
fn usage_errors_exit_2_and_env_vars_are_read() {
    let bad = Command::new(exe()).arg("--no-such-flag").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"));
    // DAEMONLAB_LESSONS is read like --lessons: a missing directory is reported by name.
    let lessons = Command::new(exe())
        .env("DAEMONLAB_LESSONS", "/nonexistent/lessons-dir")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(lessons.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&lessons.stderr).contains("/nonexistent/lessons-dir"));
    let theme = Command::new(exe())
        .env("DAEMONLAB_THEME", "nonsense")
        .arg("ps")
        .output()
        .unwrap();
    assert_eq!(
        theme.status.code(),
        Some(2),
        "a bad DAEMONLAB_THEME is a usage error"
    );
    assert!(String::from_utf8_lossy(&theme.stderr).contains("nonsense"));
}

#[test]
fn log_writes_every_step_to_the_file_and_nothing_to_the_output() {
    common::become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tour.log");
    let plain = Command::new(exe())
        .args(["tour", "--format", "json", "--subreaper"])
        .output()
        .unwrap();
    let logged = Command::new(exe())
        .args(["tour", "--format", "json", "--subreaper", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(logged.status.success());
    // Same number of JSON lines and no log text on stdout or stderr.
    assert_eq!(plain.stdout.iter().filter(|b| **b == b'\n').count(), 11);
    assert_eq!(logged.stdout.iter().filter(|b| **b == b'\n').count(), 11);
    let out = String::from_utf8_lossy(&logged.stdout);
    assert!(
        !out.contains("step done") && logged.stderr.is_empty(),
        "{out}"
    );
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(written.matches("step done").count(), 11, "{written}");
    let subject_pids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split("\"pid\":").nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .collect();
    assert!(
        subject_pids
            .iter()
            .all(|pid| written.contains(&format!("pid={pid} "))),
        "the log names the PIDs the tour printed: {subject_pids:?}\n{written}"
    );
    // A file that cannot be written is a runtime error that names it.
    let bad = Command::new(exe())
        .args(["--log", "/nonexistent/dir/x.log", "ps"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("/nonexistent/dir/x.log") && err.contains("--log"),
        "{err}"
    );
}
