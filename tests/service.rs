//! `daemonlab service`: the lab as a new-style service manager, judged on Python services
//! written from sd_notify(3) and sd_listen_fds(3) with no library (tests/py/
//! notify_service.py): readiness, reload, stop, timeouts, the watchdog, socket
//! activation, NotifyAccess=main, MAINPID=, a forking service with a pid file — and no
//! process outliving any of it, even kill -9 of the manager.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::tsubject::survivors;

/// /usr/bin/python3 or whichever python3 is first in PATH; `None` (a loud skip) without.
/// The system's first: a version manager's shim may need variables the manager's clean
/// environment does not pass.
fn python(case: &str) -> Option<PathBuf> {
    let system = Path::new("/usr/bin/python3");
    let found = std::iter::once(system.to_path_buf())
        .chain(
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| Path::new(d).join("python3")),
        )
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIPPED {case}: no python3 to write the test services in");
    }
    found
}

/// A running `daemonlab service --format json` and the events it has printed.
struct Service {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    /// The test's own directory: the script is copied there, so every process of the
    /// service names it on its command line.
    dir: tempfile::TempDir,
}

impl Service {
    fn start(case: &str, flags: &[&str], mode: &[&str]) -> Option<Service> {
        let python = python(case)?;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("notify_service.py");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/notify_service.py"),
            &script,
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
            .args(["service", "--format", "json"])
            .args(
                flags
                    .iter()
                    .map(|f| f.replace("{dir}", dir.path().to_str().unwrap())),
            )
            .arg("--")
            .arg(&python)
            .arg(&script)
            .args(
                mode.iter()
                    .map(|m| m.replace("{dir}", dir.path().to_str().unwrap())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Some(Service {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            dir,
        })
    }

    /// The first event from now on that satisfies `want`.
    fn wait(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if want(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what}; saw:\n{}", self.dump()),
            }
        }
    }

    fn state(&mut self, state: &str) -> Value {
        self.wait(&format!("state {state}"), |v| {
            v["event"] == "state" && v["state"] == state
        })
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Close its input (a stop) and wait for it: its exit status and every event.
    fn finish(mut self) -> (i32, Vec<Value>, tempfile::TempDir) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the manager did not end:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(v) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(v);
        }
        let left = gone(self.dir.path());
        assert!(
            left.is_empty(),
            "outlived the manager: {left:?}\n{}",
            self.dump()
        );
        (status.code().unwrap_or(-1), self.seen, self.dir)
    }

    fn dump(&self) -> String {
        self.seen
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Wait (up to 5 s) until nothing that names `dir` runs; what is left.
fn gone(dir: &Path) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = survivors(dir);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|v| v["event"] == "state")
        .map(|v| v["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_notify_service_gets_a_clean_start_and_is_active_at_ready() {
    let Some(mut s) = Service::start("notify_ready", &["--type", "notify"], &["ready"]) else {
        return;
    };
    // The manager's part, read from /proc before the program's first instruction.
    let prepared = s.wait("the prepared process", |v| v["event"] == "prepared");
    let p = &prepared["process"];
    let pid = prepared["pid"].as_i64().unwrap();
    assert_eq!(p["sid"].as_i64(), Some(pid), "its own session: {p}");
    assert_eq!(p["pgid"].as_i64(), Some(pid), "its own group: {p}");
    assert!(p["tty"].is_null(), "no terminal: {p}");
    assert_eq!(p["umask"], "0022");
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["signals"]["ignored"], serde_json::json!([]), "{p}");
    assert_eq!(p["signals"]["blocked"], serde_json::json!([]), "{p}");
    let fds = p["fds"].as_array().unwrap();
    assert_eq!(fds[0]["target"], "/dev/null");
    // What this machine hands every process (fd 10, 251…) is marked to close at the exec.
    for fd in fds.iter().filter(|f| f["fd"].as_i64().unwrap() > 2) {
        assert_eq!(fd["cloexec"], true, "{fd}");
    }
    let env: Vec<&str> = prepared["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.iter().any(|e| e.starts_with("NOTIFY_SOCKET=")),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("HOME=")),
        "a clean environment: {env:?}"
    );
    // Activating until READY=1, whose sender the kernel names.
    let ready = s.wait("READY=1", |v| {
        v["event"] == "notify" && v["fields"]["READY"] == "1"
    });
    assert_eq!(ready["pid"].as_i64(), Some(pid));
    assert_eq!(ready["accepted"], true);
    let active = s.state("active");
    assert_eq!(active["status"], "serving");
    assert_eq!(active["main_pid"].as_i64(), Some(pid));
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 0, "stopped cleanly");
    assert_eq!(
        states(&events),
        ["activating", "active", "deactivating", "inactive"]
    );
    assert!(
        events
            .iter()
            .any(|v| v["event"] == "notify" && v["fields"]["STOPPING"] == "1")
    );
}

#[test]
fn notify_reload_is_sighup_then_reloading_then_ready() {
    let Some(mut s) = Service::start("reload", &["--type", "notify-reload"], &["ready"]) else {
        return;
    };
    s.state("active");
    s.send("reload");
    let hup = s.wait("SIGHUP", |v| v["event"] == "signal");
    assert_eq!(hup["signal"], "SIGHUP");
    s.state("reloading");
    let reloading = s.wait("RELOADING=1", |v| {
        v["event"] == "notify" && v["fields"]["RELOADING"] == "1"
    });
    assert!(
        reloading["fields"]["MONOTONIC_USEC"]
            .as_str()
            .is_some_and(|u| u.parse::<u64>().is_ok()),
        "{reloading}"
    );
    let back = s.state("active");
    assert_eq!(back["status"], "serving (reloaded)");
    s.send("stop");
    s.state("inactive");
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 0);
}

#[test]
fn a_start_that_never_says_ready_fails_on_the_timeout_and_is_stopped() {
    let Some(mut s) = Service::start(
        "start_timeout",
        &["--type", "notify", "--timeout", "1"],
        &["never-ready"],
    ) else {
        return;
    };
    let failed = s.state("failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("no READY=1 within 1.0 s"),
        "{failed}"
    );
    s.wait("SIGTERM", |v| {
        v["event"] == "signal" && v["signal"] == "SIGTERM"
    });
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 3);
}

#[test]
fn extend_timeout_usec_lets_a_slow_start_finish() {
    let Some(mut s) = Service::start(
        "extend_timeout",
        &["--type", "notify", "--timeout", "1"],
        &["slow-ready", "2"],
    ) else {
        return;
    };
    let active = s.state("active");
    assert!(active["reason"].as_str().unwrap().contains("READY=1"));
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 0);
    assert!(
        !states(&events).contains(&"failed".to_string()),
        "{events:?}"
    );
}

#[test]
fn a_missed_watchdog_ping_fails_the_service() {
    let Some(mut s) = Service::start(
        "watchdog",
        &["--type", "notify", "--watchdog", "1"],
        &["watchdog", "3"],
    ) else {
        return;
    };
    s.state("active");
    let failed = s.state("failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("no WATCHDOG=1"),
        "{failed}"
    );
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 3);
    let pings = events
        .iter()
        .filter(|v| v["event"] == "notify" && v["fields"]["WATCHDOG"] == "1")
        .count();
    assert!(pings >= 3, "three pings came first: {pings}");
    assert!(
        events
            .iter()
            .any(|v| v["event"] == "signal" && v["signal"] == "SIGABRT")
    );
}

#[test]
fn watchdog_trigger_fails_at_once() {
    let Some(mut s) = Service::start("trigger", &["--type", "notify"], &["trigger"]) else {
        return;
    };
    let failed = s.state("failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("WATCHDOG=trigger")
    );
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 3);
}

#[test]
fn a_ready_from_a_child_is_rejected_until_the_main_process_says_it() {
    let Some(mut s) = Service::start("child_ready", &["--type", "notify"], &["child-ready"]) else {
        return;
    };
    let main = s.wait("prepared", |v| v["event"] == "prepared")["pid"]
        .as_i64()
        .unwrap();
    let rejected = s.wait("the child's READY=1", |v| {
        v["event"] == "notify" && v["accepted"] == false
    });
    assert_ne!(rejected["pid"].as_i64(), Some(main));
    assert!(
        rejected["note"]
            .as_str()
            .unwrap()
            .contains("NotifyAccess=main")
    );
    let active = s.state("active");
    assert_eq!(active["status"], "from the main process");
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 0);
    // Not active before the main process's own READY=1.
    let rejected_at = events.iter().position(|v| v["accepted"] == false).unwrap();
    let active_at = events
        .iter()
        .position(|v| v["event"] == "state" && v["state"] == "active")
        .unwrap();
    assert!(rejected_at < active_at);
}

#[test]
fn mainpid_moves_the_main_process_to_the_child() {
    let Some(mut s) = Service::start("mainpid", &["--type", "notify"], &["mainpid"]) else {
        return;
    };
    let first = s.wait("prepared", |v| v["event"] == "prepared")["pid"]
        .as_i64()
        .unwrap();
    let moved = s.wait("MAINPID=", |v| {
        v["event"] == "notify" && v["fields"]["MAINPID"].is_string()
    });
    let child: i64 = moved["fields"]["MAINPID"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(child, first);
    let active = s.state("active");
    assert_eq!(active["main_pid"].as_i64(), Some(child));
    // The first process exits, and that is not the service's end.
    s.wait("the first process's exit", |v| {
        v["event"] == "exit" && v["pid"].as_i64() == Some(first)
    });
    s.send("stop");
    s.state("inactive");
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 0);
    assert_eq!(
        states(&events),
        ["activating", "active", "deactivating", "inactive"]
    );
}

#[test]
fn socket_activation_passes_a_tcp_and_a_unix_listener_bound_before_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("svc.sock");
    let unix_arg = unix.to_str().unwrap().to_string();
    let Some(mut s) = Service::start(
        "listen",
        &["--type", "notify", "--listen", ":0", "--listen", &unix_arg],
        &["listen"],
    ) else {
        return;
    };
    let tcp = s.wait("the TCP listener", |v| {
        v["event"] == "listening" && v["fd"] == 3
    });
    let port: u16 = tcp["address"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let un = s.wait("the Unix listener", |v| {
        v["event"] == "listening" && v["fd"] == 4
    });
    assert_eq!(un["name"], "svc.sock");
    // Connect before the service is ready: the lab holds the socket, nothing is lost.
    let mut early = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let prepared = s.wait("prepared", |v| v["event"] == "prepared");
    let fds = prepared["process"]["fds"].as_array().unwrap();
    for n in [3, 4] {
        let fd = fds
            .iter()
            .find(|f| f["fd"] == n)
            .expect("a passed listener");
        assert_eq!(fd["cloexec"], false, "passed across exec: {fd}");
        assert!(fd["target"].as_str().unwrap().starts_with("socket:"));
    }
    assert!(
        prepared["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "LISTEN_FDS=2"),
        "{prepared}"
    );
    s.state("active");
    let pid = prepared["pid"].as_i64().unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut early, &mut answer).unwrap();
    assert_eq!(answer, format!("hello from {pid} via tcp-{port}\n"));
    let mut u = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut u, &mut answer).unwrap();
    assert_eq!(answer, format!("hello from {pid} via svc.sock\n"));
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 0);
    assert!(!unix.exists(), "the lab removed the socket it bound");
}

#[test]
fn a_forking_service_is_active_when_its_first_process_exits_and_the_pid_file_names_the_daemon() {
    let Some(mut s) = Service::start(
        "forking",
        &["--type", "forking", "--pidfile", "{dir}/d.pid"],
        &["forking", "{dir}/d.pid"],
    ) else {
        return;
    };
    let pidfile = s.dir.path().join("d.pid");
    let first = s.wait("prepared", |v| v["event"] == "prepared")["pid"]
        .as_i64()
        .unwrap();
    let active = s.state("active");
    let main = active["main_pid"].as_i64().unwrap();
    assert_ne!(main, first, "the daemon the first process left");
    let written: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(written, main);
    assert!(
        s.seen
            .iter()
            .any(|v| v["event"] == "exit" && v["pid"].as_i64() == Some(first))
    );
    s.send("stop");
    s.state("inactive");
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 0);
}

#[test]
fn a_forking_service_whose_pid_file_is_missing_fails_and_is_ended() {
    let Some(mut s) = Service::start(
        "forking_no_pidfile",
        &["--type", "forking", "--pidfile", "{dir}/elsewhere.pid"],
        &["forking", "{dir}/d.pid"],
    ) else {
        return;
    };
    let failed = s.state("failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{failed}"
    );
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 3);
}

#[test]
fn an_exit_status_and_errno_fail_the_service_with_the_reason() {
    let Some(mut s) = Service::start("errno", &["--type", "notify"], &["errno"]) else {
        return;
    };
    let errno = s.wait("ERRNO=", |v| {
        v["event"] == "notify" && v["fields"]["ERRNO"] == "2"
    });
    assert!(
        errno["note"].as_str().unwrap().contains("errno 2"),
        "{errno}"
    );
    let failed = s.state("failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 1"),
        "{failed}"
    );
    let (code, events, _dir) = s.finish();
    assert_eq!(code, 3);
    // What it wrote to stderr reached the manager's log, as journald would keep it.
    assert!(
        events.iter().any(|v| v["event"] == "log"
            && v["stream"] == "stderr"
            && v["line"] == "config missing"),
        "{events:?}"
    );
}

#[test]
fn a_program_that_cannot_be_executed_fails_the_start_with_the_reason() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args([
            "service",
            "--format",
            "json",
            "--type",
            "exec",
            "--",
            "/nonexistent/daemon",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        let mut text = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
        text
    };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("No such file or directory"), "{out}");
    assert!(out.contains("\"state\":\"failed\""), "{out}");
}

#[test]
fn kill_9_of_the_manager_still_ends_every_process_of_the_service() {
    let Some(mut s) = Service::start("kill9", &["--type", "notify"], &["mainpid"]) else {
        return;
    };
    s.state("active");
    // Give the janitor a look at the processes (it is told every 100 ms).
    std::thread::sleep(Duration::from_millis(300));
    assert!(!survivors(s.dir.path()).is_empty());
    // Our own child, not yet waited for: its PID is still its own.
    let pid = nix::unistd::Pid::from_raw(s.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL).unwrap();
    let _ = s.child.wait();
    let left = gone(s.dir.path());
    assert!(left.is_empty(), "outlived kill -9 of the manager: {left:?}");
}

/// `daemonlab newstyle`, the lab's own new-style daemon (sd-notify crate for its side):
/// nothing of APUE 13.3 done by itself, READY=1, a reload, a stop — all accepted.
#[test]
fn the_labs_own_new_style_daemon_starts_reloads_and_stops_under_the_manager() {
    let exe = env!("CARGO_BIN_EXE_daemonlab");
    let mut child = Command::new(exe)
        .args([
            "service",
            "--format",
            "json",
            "--type",
            "notify-reload",
            "--",
            exe,
            "newstyle",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut until = |want: &dyn Fn(&Value) -> bool, seen: &mut Vec<Value>| loop {
        let line = lines.next().expect("the manager ended early").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        seen.push(v.clone());
        if want(&v) {
            return v;
        }
    };
    let active = until(
        &|v| v["event"] == "state" && v["state"] == "active",
        &mut seen,
    );
    let main = active["main_pid"].as_i64().unwrap();
    // It says the manager did the rules: its own session, no terminal, cwd /, umask 0022.
    // (Its stdout and the notify socket are two channels: the line may come later.)
    let said = match seen.iter().find(|v| v["event"] == "log") {
        Some(v) => v.clone(),
        None => until(&|v| v["event"] == "log", &mut seen),
    }["line"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        said.contains(&format!("sid {main} pgid {main} tty none cwd / umask 0022")),
        "{said}"
    );
    writeln!(stdin, "reload").unwrap();
    until(
        &|v| v["event"] == "state" && v["state"] == "reloading",
        &mut seen,
    );
    let back = until(
        &|v| v["event"] == "state" && v["state"] == "active",
        &mut seen,
    );
    assert_eq!(back["status"], "serving (reloaded 1×)");
    drop(stdin);
    until(
        &|v| v["event"] == "state" && v["state"] == "inactive",
        &mut seen,
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(seen.iter().all(|v| v["accepted"] != false), "{seen:?}");
    assert!(seen.iter().any(|v| v["fields"]["STOPPING"] == "1"));
}

#[test]
fn fdstore_keeps_the_descriptor_the_service_hands_over() {
    let Some(mut s) = Service::start("fdstore", &["--type", "notify"], &["fdstore"]) else {
        return;
    };
    s.state("active");
    let stored = s.wait("FDSTORE=1", |v| {
        v["event"] == "notify" && v["fields"]["FDSTORE"] == "1"
    });
    assert_eq!(stored["accepted"], true);
    assert!(
        stored["note"]
            .as_str()
            .unwrap()
            .contains("1 descriptor(s) kept for it as \"mypipe\""),
        "{stored}"
    );
    let (code, _, _dir) = s.finish();
    assert_eq!(code, 0);
}
