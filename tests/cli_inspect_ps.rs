//! `daemonlab inspect` and `daemonlab ps` as a user runs them: output shapes and exit codes.

mod common;

use std::process::Command;

use common::exe;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .args(args)
        .output()
        .expect("daemonlab runs")
}

#[test]
fn inspect_exit_codes_and_messages_name_the_pid() {
    let ok = run(&[
        "inspect",
        &std::process::id().to_string(),
        "--format",
        "json",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["pid"], std::process::id());
    assert!(json["process"]["sid"].is_i64());
    let checks = json["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["id"].as_str().unwrap().contains("tty"))
    );
    for check in checks {
        assert!(
            ["pass", "warn", "fail", "unknown"].contains(&check["status"].as_str().unwrap()),
            "{check}"
        );
        assert!(!check["detail"].as_str().unwrap().is_empty());
    }

    let text = run(&["inspect", "1"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("verdict"));

    for (pid, says) in [
        ("0", "not a process ID"),
        ("-5", "not a process ID"),
        ("abc", "not a process ID"),
    ] {
        let bad = run(&["inspect", "--", pid]);
        assert_eq!(bad.status.code(), Some(1), "{pid}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(
            stderr.contains(says) && stderr.contains(pid),
            "{pid}: {stderr}"
        );
    }
    // A PID that does not exist: below pid_max, but nobody has it.
    let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let missing = (2..max)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let gone = run(&["inspect", &missing.to_string()]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains(&missing.to_string()));
}

#[test]
fn ps_json_has_every_key_and_text_has_the_ps_axj_header() {
    let json = run(&["ps", "--format", "json"]);
    assert!(json.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let me = rows
        .iter()
        .find(|r| r["pid"] == std::process::id())
        .expect("our own row");
    for key in [
        "pid",
        "ppid",
        "pgid",
        "sid",
        "tty",
        "tpgid",
        "stat",
        "uid",
        "time",
        "command",
        "kernel_thread",
        "daemon_like",
    ] {
        assert!(me.get(key).is_some(), "{key} missing in {me}");
    }
    let text = run(&["ps"]);
    let header = String::from_utf8_lossy(&text.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "PPID", "PID", "PGID", "SID", "TTY", "TPGID", "STAT", "UID", "TIME", "COMMAND"
        ]
    );
    let daemons = run(&["ps", "--daemons", "--format", "json"]);
    let daemons: Vec<serde_json::Value> = serde_json::from_slice(&daemons.stdout).unwrap();
    assert!(daemons.iter().all(|r| r["daemon_like"] == true));
}

#[test]
fn the_explorer_without_a_terminal_points_to_the_headless_tour() {
    let output = Command::new(exe())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("daemonlab tour"),
        "{stderr}"
    );
}
