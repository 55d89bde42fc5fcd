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
        matches!(ok.status.code(), Some(0 | 3)),
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

    // PID 1 may fail no rule or one; either way it was inspected (0 or 3, never 1).
    let text = run(&["inspect", "1"]);
    assert!(matches!(text.status.code(), Some(0 | 3)), "{text:?}");
    assert!(String::from_utf8_lossy(&text.stdout).contains("verdict"));

    for (pid, says) in [
        ("0", "not a process ID"),
        ("-5", "not a process ID"),
        ("abc", "not a process ID"),
    ] {
        // A PID that is not one is a usage error, refused by clap's value parser.
        let bad = run(&["inspect", "--", pid]);
        assert_eq!(bad.status.code(), Some(2), "{pid}");
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
            "PPID", "PID", "PGID", "SID", "TTY", "TPGID", "STAT", "UID", "TIME", "ROLE", "COMMAND"
        ]
    );
    // The marks are in the text too: kthreadd's row says kernel_thread.
    let kthreadd = String::from_utf8_lossy(&text.stdout)
        .lines()
        .find(|l| l.ends_with("[kthreadd]"))
        .map(str::to_owned);
    if let Some(line) = kthreadd {
        assert!(line.contains(" kernel_thread "), "{line}");
    }
    let daemons = run(&["ps", "--daemons", "--format", "json"]);
    let daemons: Vec<serde_json::Value> = serde_json::from_slice(&daemons.stdout).unwrap();
    assert!(
        daemons
            .iter()
            .all(|r| r["role"] == "daemon" || r["role"] == "service"),
        "{daemons:?}"
    );
    // This test is not a daemon — unless its runner is the PID namespace's init (as in
    // `unshare --pid --fork bash -c 'cargo test'`, where bash execs cargo as PID 1) and its
    // session was made outside the namespace: a child of init with no session leader in
    // sight is daemon-shaped, and then the list is right to show it.
    let me = std::process::id();
    let under_init = nix::unistd::getppid().as_raw() == 1;
    if !under_init {
        assert!(daemons.iter().all(|r| r["pid"] != me));
    }
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

#[test]
fn lessons_check_names_each_broken_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("01-no-front-matter.md"), "just text\n").unwrap();
    std::fs::write(
        dir.path().join("02-bad-utf8.md"),
        b"+++\nid = \"x\"\n\xff\xfe\n+++\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("03-huge.md"), "x".repeat(300 * 1024)).unwrap();
    std::fs::write(
        dir.path().join("04-bad-step.md"),
        "+++\nid = \"y\"\ntitle = \"t\"\nsection = \"13.3\"\nstep = \"nope\"\n+++\nbody\n",
    )
    .unwrap();
    let output = run(&["lessons", "check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "01-no-front-matter.md:1",
        "02-bad-utf8.md",
        "03-huge.md",
        "04-bad-step.md:5",
    ] {
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    let missing = run(&["lessons", "check", "/nonexistent/lessons"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/lessons"));
}

#[test]
fn inspect_as_another_user_reports_what_it_can_and_marks_the_rest_unknown() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run inspect as another user");
        return;
    }
    let exe = exe();
    let output = Command::new(&exe)
        .args([
            "inspect",
            &std::process::id().to_string(),
            "--format",
            "json",
        ])
        .uid(65534)
        .gid(65534)
        .output();
    let output = match output {
        Ok(o) if o.status.code() != Some(126) => o,
        _ => {
            eprintln!("SKIPPED: user 65534 cannot execute {}", exe.display());
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = json["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["status"] == "unknown"
                && c["detail"].as_str().unwrap().contains("owner or root")),
        "unreadable parts are marked unknown with the next step: {checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "controlling_tty" && c["status"] != "unknown"),
        "stat is still read"
    );
}

#[test]
fn inspect_exits_3_on_a_failed_rule_prints_json_errors_on_stdout_and_markdown_tables() {
    // A zombie child of ours fails the state rule: exit 3.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_default()
        .contains(") Z ")
    {
        assert!(std::time::Instant::now() < deadline, "no zombie");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let zombie = run(&["inspect", &pid.to_string(), "--format", "json"]);
    child.wait().unwrap();
    assert_eq!(zombie.status.code(), Some(3), "{zombie:?}");
    let json: serde_json::Value = serde_json::from_slice(&zombie.stdout).unwrap();
    assert_eq!(json["role"], "zombie");

    // A kernel thread cannot be inspected: exit 1, and JSON on stdout says why.
    let err = run(&["inspect", "2", "--format", "json"]);
    if std::fs::read_to_string("/proc/2/comm")
        .unwrap_or_default()
        .trim()
        == "kthreadd"
    {
        assert_eq!(err.status.code(), Some(1));
        let json: serde_json::Value = serde_json::from_slice(&err.stdout).unwrap();
        assert_eq!(json["pid"], 2);
        assert_eq!(json["role"], "kernel_thread");
        assert!(json["error"].as_str().unwrap().contains("kernel thread"));
        assert!(String::from_utf8_lossy(&err.stderr).contains("kernel thread"));
    } else {
        eprintln!("SKIPPED: PID 2 is not kthreadd here");
    }

    let md = run(&["inspect", "1", "--format", "markdown"]);
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(text.contains("| check | status | detail |"), "{text}");
    assert!(text.contains("| `session` |"), "{text}");
    let ps_md = run(&["ps", "--format", "markdown"]);
    assert!(String::from_utf8_lossy(&ps_md.stdout).starts_with("| PPID | PID |"));

    // A reader that stops after one line is a normal end, not a panic.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' inspect 1 | head -1 >/dev/null",
            exe().display()
        ))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&piped.stderr).contains("panicked"),
        "{piped:?}"
    );
}
