//! The real binary: `daemonlab tour` in every format, --pause, and every way the tour can
//! be ended, checking that nothing it started outlives it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

use common::{assert_all_gone, exe};

fn tour(args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .arg("tour")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("tour runs")
}

fn spawn_paused_json_tour() -> (Child, BufReader<ChildStdout>) {
    common::become_subreaper();
    let mut child = Command::new(exe())
        .args(["tour", "--pause", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

fn next_record(stdout: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

#[test]
fn json_tour_is_one_object_per_step_with_stable_keys() {
    let output = tour(&["--format", "json", "--subreaper"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 11);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["index"], i, "{record}");
        assert_eq!(record["ok"], true, "{record}");
        assert!(record["error"].is_null());
        assert!(record["step"].is_string() && record["changed"].is_array());
        let process = &record["process"];
        for key in [
            "pid",
            "ppid",
            "pgid",
            "sid",
            "tpgid",
            "session_leader",
            "group_leader",
        ] {
            assert!(
                !process[key].is_null(),
                "process.{key} missing in {process}"
            );
        }
        for key in ["tty", "adopted_by", "umask", "cwd", "fds", "sighup"] {
            assert!(
                process.get(key).is_some(),
                "process.{key} missing in {process}"
            );
        }
    }
    let first = &records[0]["process"];
    assert!(first["tty"].as_str().unwrap().starts_with("pts/"));
    assert!(first["adopted_by"].is_null());
    assert_eq!(first["sighup"], "default");
    assert_eq!(records[1]["process"]["umask"], "0000");
    assert_eq!(records[3]["step"], "fork");
    assert!(records[3]["process"]["adopted_by"]["pid"].is_i64());
    assert!(records[4]["process"]["tty"].is_null());
    assert_eq!(records[4]["process"]["tpgid"], -1);
    assert_eq!(records[5]["process"]["sighup"], "ignored");
    assert_eq!(records[7]["process"]["cwd"], "/");
    let fd0 = &records[9]["process"]["fds"][0];
    assert_eq!(fd0["fd"], 0);
    assert_eq!(fd0["target"], "/dev/null");
    assert!(fd0["cloexec"].is_boolean());
    assert_eq!(
        records[10]["syslog"].as_array().unwrap().len(),
        1,
        "{}",
        records[10]
    );
    let pids: Vec<i32> = records
        .iter()
        .map(|r| r["process"]["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_all_gone(&pids);
}

#[test]
fn text_and_markdown_tours_tell_the_whole_story() {
    let text = tour(&["--subreaper"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("── step 0 · start"), "{text}");
    assert!(text.contains("── step 10 · openlog"), "{text}");
    assert!(text.contains("control channel"), "{text}");
    assert!(text.contains("daemon(7)"));
    assert!(
        text.contains("TTY ?*"),
        "setsid drops the terminal, marked as changed"
    );

    let markdown = tour(&["--format", "markdown", "--subreaper"]);
    assert!(markdown.status.success());
    let markdown = String::from_utf8(markdown.stdout).unwrap();
    assert!(markdown.starts_with("# daemonlab tour"));
    assert_eq!(
        markdown
            .matches("| PID | PPID | PGID | SID | TTY | TPGID |")
            .count(),
        11
    );
    assert!(markdown.contains("| **?** |"), "changed TTY is bold");

    // The session picture after every step: boxes in text, a code block in Markdown.
    assert_eq!(
        text.matches("  sessions session ⊃ process group").count(),
        11
    );
    assert!(
        text.contains("    ╔═ session") && text.contains("· ORPHANED"),
        "{text}"
    );
    assert_eq!(markdown.matches("```text\n╔═ session").count(), 11);
}

#[test]
fn pause_waits_for_enter_and_eof_ends_cleanly() {
    let (mut child, mut stdout) = spawn_paused_json_tour();
    let first = next_record(&mut stdout);
    assert_eq!(first["step"], "start");
    let subject = first["process"]["pid"].as_i64().unwrap() as i32;
    let session = first["process"]["ppid"].as_i64().unwrap() as i32;
    assert!(
        common::running(subject),
        "the subject waits alive while the tour pauses"
    );
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert_eq!(next_record(&mut stdout)["step"], "umask");
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "EOF on stdin ends the tour cleanly: {status}"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "no step after EOF");
    assert_all_gone(&[subject, session]);
}

/// Advance a paused tour to just after SIGHUP is ignored in a new session, so only the
/// control channel's end of file can end the subject.
/// Returns the tour, the subject's current PID, and every PID the tour reported.
fn tour_at_ignored_sighup() -> (Child, i32, Vec<i32>) {
    let (mut child, mut stdout) = spawn_paused_json_tour();
    let first = next_record(&mut stdout);
    let pid = |record: &Value, key: &str| record["process"][key].as_i64().unwrap() as i32;
    let mut seen = vec![pid(&first, "ppid"), pid(&first, "pid")];
    let mut last = Value::Null;
    for _ in 1..=5 {
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
        last = next_record(&mut stdout);
        seen.push(pid(&last, "pid"));
    }
    assert_eq!(last["step"], "ignore_sighup");
    assert_eq!(last["process"]["sighup"], "ignored");
    assert!(last["process"]["tty"].is_null());
    (child, pid(&last, "pid"), seen)
}

#[test]
fn kill_9_of_the_tour_leaves_nothing_behind() {
    let (mut child, subject, seen) = tour_at_ignored_sighup();
    assert!(common::running(subject));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_all_gone(&seen);
}

#[test]
fn sigterm_and_sigint_end_the_tour_and_everything_it_started() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let (mut child, _, seen) = tour_at_ignored_sighup();
        // SAFETY: signalling our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        // Not `wait()`: it closes the tour's stdin first, and end of input would end the
        // tour too. The signal alone must do it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the tour ignored signal {signal}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(
            std::os::unix::process::ExitStatusExt::into_raw(status) >> 8,
            128 + signal,
            "{status}"
        );
        assert_all_gone(&seen);
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_tour_quietly() {
    common::become_subreaper();
    // `daemonlab tour | head -1`: read one line, then close the pipe.
    let mut child = Command::new(exe())
        .args(["tour", "--subreaper", "--pause"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("daemonlab tour"), "{first}");
    drop(stdout);
    // Enter through every step: the writes now hit a closed pipe.
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&[b'\n'; 12]);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    // The --pause prompts may be there, depending on when the pipe closed; an error not.
    assert!(
        !stderr.contains("daemonlab:") && !stderr.contains("Broken pipe"),
        "no error for a closed pipe: {stderr}"
    );
}

#[test]
fn pause_keeps_the_finished_daemon_alive_for_inspect() {
    let (mut child, mut stdout) = spawn_paused_json_tour();
    let mut last = next_record(&mut stdout);
    for _ in 1..=10 {
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
        last = next_record(&mut stdout);
    }
    assert_eq!(last["step"], "openlog");
    let daemon = last["process"]["pid"].as_i64().unwrap() as i32;
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        common::running(daemon),
        "the daemon waits for the last Enter"
    );
    let inspect = Command::new(exe())
        .args(["inspect", &daemon.to_string(), "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let status_of = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap().to_string())
    };
    assert_eq!(
        status_of("controlling_tty").as_deref(),
        Some("pass"),
        "{report}"
    );
    assert_eq!(status_of("state").as_deref(), Some("pass"), "{report}");
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_all_gone(&[daemon]);
}
