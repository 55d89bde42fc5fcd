//! `daemonlab trace` on programs whose shape we know: tests/c/tsubject.c, compiled here
//! with `cc`, daemonizes by the book, as glibc's daemon(3) does, or with one classic
//! mistake each. The oracle is the kernel (what the calls returned, what /proc says) and
//! glibc. Each case checks the rules in the order they happened, the findings, the exit
//! code, and that no process of the program outlives the trace.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::inspect::nginx_conf;
use common::tsubject::{noptrace, survivors, tsubject};

/// The rules of APUE 13.3's daemonize() and 13.5's lock, in the book's order.
const BOOK: [&str; 11] = [
    "start",
    "umask",
    "fork",
    "setsid",
    "ignore_sighup",
    "second_fork",
    "chdir",
    "getrlimit",
    "close_fds",
    "dev_null",
    "lock",
];

fn wait_gone(dir: &Path) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = survivors(dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Traced {
    events: Vec<Value>,
    code: Option<i32>,
}

impl Traced {
    fn rules(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e["event"] == "syscall")
            .filter_map(|e| e["rule"].as_str())
            .collect()
    }

    fn verdict(&self) -> &Value {
        let last = self.events.last().expect("some output");
        assert_eq!(last["event"], "verdict", "{last:#}");
        last
    }

    fn findings(&self) -> Vec<&str> {
        self.verdict()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect()
    }

    fn check(&self, id: &str) -> &str {
        self.verdict()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .and_then(|c| c["status"].as_str())
            .unwrap_or_else(|| panic!("no check {id}"))
    }
}

fn trace(mode: &str) -> Option<Traced> {
    let program = tsubject()?;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args([
            "trace",
            "--format",
            "json",
            "--settle",
            "300",
            "--timeout",
            "20",
            "--",
        ])
        .arg(program)
        .arg(mode)
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let left = wait_gone(dir.path());
    assert!(
        left.is_empty(),
        "{mode}: processes outlived the trace: {left:?}"
    );
    assert!(
        out.status.code().is_some(),
        "{mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Traced {
        events,
        code: out.status.code(),
    })
}

/// `rules` holds `wanted` in this order (other rules may come between).
fn in_order(rules: &[&str], wanted: &[&str]) -> bool {
    let mut it = rules.iter();
    wanted.iter().all(|w| it.any(|r| r == w))
}

#[test]
fn by_the_book_every_rule_in_order_and_daemonized() {
    let Some(t) = trace("apue") else { return };
    let rules = t.rules();
    assert!(in_order(&rules, &BOOK), "{rules:?}");
    assert!(rules.contains(&"pidfile_write"), "{rules:?}");
    // One event for the close loop, not a thousand.
    assert_eq!(rules.iter().filter(|r| **r == "close_fds").count(), 1);
    let v = t.verdict();
    assert_eq!(v["daemonized"], true, "{v:#}");
    assert!(t.findings().is_empty(), "{:?}", t.findings());
    assert_eq!(t.check("session"), "pass");
    assert_eq!(t.check("pidfile_lock"), "pass");
    assert_eq!(t.code, Some(0));
    // The kernel's view after setsid: a new session, led by the caller, no terminal.
    let setsid = t.events.iter().find(|e| e["rule"] == "setsid").unwrap();
    let p = &setsid["process"];
    assert_eq!(p["sid"], setsid["pid"]);
    assert_eq!(p["tty"], Value::Null);
    // The daemon is the second fork's child, and the pid file names it.
    let second = t
        .events
        .iter()
        .find(|e| e["rule"] == "second_fork")
        .unwrap();
    assert_eq!(v["main_pid"], second["result"]);
}

#[test]
fn glibc_daemon_forks_once_and_reopens_dev_null() {
    let Some(t) = trace("daemon3") else { return };
    let rules = t.rules();
    assert!(
        in_order(&rules, &["start", "fork", "setsid", "chdir", "dev_null"]),
        "{rules:?}"
    );
    assert!(!rules.contains(&"second_fork"), "{rules:?}");
    assert_eq!(t.verdict()["daemonized"], true);
    assert_eq!(t.check("session"), "warn");
}

#[test]
fn setsid_before_fork_fails_with_eperm() {
    let Some(t) = trace("setsid-first") else {
        return;
    };
    let setsid = t.events.iter().find(|e| e["rule"] == "setsid").unwrap();
    assert_eq!(setsid["errno"], "EPERM", "{setsid:#}");
    assert!(
        t.findings().contains(&"setsid_failed"),
        "{:?}",
        t.findings()
    );
    assert_eq!(t.verdict()["daemonized"], false);
    assert_eq!(t.code, Some(3));
}

#[test]
fn a_pid_written_before_the_fork_names_the_wrong_process() {
    let Some(t) = trace("pidfile-before-fork") else {
        return;
    };
    assert!(
        t.findings().contains(&"pidfile_before_fork"),
        "{:?}",
        t.findings()
    );
    assert_eq!(t.code, Some(3));
}

#[test]
fn a_lock_taken_before_the_fork_is_lost() {
    let Some(t) = trace("lock-before-fork") else {
        return;
    };
    let f = t.findings();
    assert!(f.contains(&"lock_before_fork"), "{f:?}");
    assert!(f.contains(&"pidfile_before_fork"), "{f:?}");
}

#[test]
fn closing_every_descriptor_drops_the_lock() {
    let Some(t) = trace("closed-lock") else {
        return;
    };
    assert!(
        t.findings().contains(&"closed_lock_fd"),
        "{:?}",
        t.findings()
    );
    assert_eq!(t.check("pidfile_lock"), "warn");
}

#[test]
fn a_session_leader_opening_a_terminal_acquires_it() {
    let Some(t) = trace("acquire-tty") else {
        return;
    };
    assert!(t.rules().contains(&"acquire_tty"), "{:?}", t.rules());
    assert!(t.findings().contains(&"acquired_tty"), "{:?}", t.findings());
    assert_eq!(t.check("controlling_tty"), "fail");
}

#[test]
fn a_log_file_opened_into_a_closed_stdio_slot() {
    let Some(t) = trace("stdio") else { return };
    assert!(
        t.findings().contains(&"stdio_not_reopened"),
        "{:?}",
        t.findings()
    );
}

#[test]
fn a_program_that_exits_is_not_a_daemon() {
    let Some(t) = trace("exit") else { return };
    let v = t.verdict();
    assert_eq!(v["main_pid"], Value::Null);
    assert_eq!(v["daemonized"], false);
    assert_eq!(t.code, Some(3));
}

#[test]
fn a_foreground_program_is_called_a_new_style_service_not_a_failure() {
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args(["trace", "--timeout", "1", "--"])
        .arg(program)
        .arg("foreground")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("never daemonized by itself"), "{text}");
    assert!(text.contains("new-style service"), "{text}");
    assert!(wait_gone(dir.path()).is_empty());
}

#[test]
fn unrelated_calls_are_not_stopped() {
    // 200 000 getppid() calls before daemonizing would take half a minute at one ptrace
    // stop each (~150 µs here), past the 20 s timeout; the filter lets them through, so
    // the trace sees only the rules and the program daemonizes in time.
    let Some(t) = trace("busy") else { return };
    assert_eq!(t.verdict()["daemonized"], true, "{:#}", t.verdict());
    let calls: u64 = t
        .events
        .iter()
        .filter(|e| e["event"] == "syscall")
        .map(|e| e["calls"].as_u64().unwrap_or(1))
        .sum();
    assert!(calls < 2000, "{calls} calls reported");
}

#[test]
fn nothing_outlives_kill_9_of_the_tracer() {
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args(["trace", "--format", "json", "--timeout", "60", "--"])
        .arg(program)
        .arg("apue")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon exists (its pid file is written), then kill -9 the front-end.
    let pidfile = dir.path().join("tsubject.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&pidfile).map_or(true, |t| t.trim().is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the daemon never wrote its pid file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!survivors(dir.path()).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    let left = wait_gone(dir.path());
    assert!(left.is_empty(), "outlived kill -9 of the tracer: {left:?}");
}

#[test]
fn keep_leaves_the_daemon_running_until_it_exits() {
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args([
            "trace", "--keep", "--settle", "200", "--format", "json", "--",
        ])
        .arg(program)
        .arg("apue")
        .arg(dir.path())
        .output()
        .unwrap();
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let main = last["main_pid"].as_i64().unwrap() as i32;
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        survivors(dir.path()).contains(&main),
        "kept daemon {main} is gone"
    );
    // Its watched calls still work (a tracer serves them): ask it to end, politely.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(main), nix::sys::signal::SIGTERM).unwrap();
    let left = wait_gone(dir.path());
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_missing_program_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args(["trace", "--", "no-such-program-here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-program-here: not found"), "{err}");
}

/// Whether a daemon with a fixed pid file may be started here, saying loudly why not.
fn may_start(case: &str, binary: &str, pidfile: &str) -> bool {
    if !Path::new(binary).exists() {
        eprintln!("SKIPPED {case}: {binary} is not installed");
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {case}: needs root (it writes {pidfile})");
        return false;
    }
    let running = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .is_some_and(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == Path::new(binary))
        });
    if running {
        eprintln!("SKIPPED {case}: {binary} already runs ({pidfile}); not fighting it");
    }
    !running
}

fn trace_real(args: &[&str]) -> Traced {
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args([
            "trace",
            "--format",
            "json",
            "--settle",
            "500",
            "--timeout",
            "20",
            "--",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Traced {
        events,
        code: out.status.code(),
    }
}

/// Every traced PID of `t` is gone (not even a zombie's living copy).
fn assert_traced_gone(t: &Traced) {
    let pids: Vec<i64> = t.events.iter().filter_map(|e| e["pid"].as_i64()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i64> = pids
            .iter()
            .copied()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit(')').next().map(|r| r.trim().starts_with('Z')))
                    == Some(false)
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "outlived the trace: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cron_forks_once_takes_its_lock_and_rewrites_its_pid_file() {
    const CASE: &str = "cron_forks_once_takes_its_lock_and_rewrites_its_pid_file";
    if !may_start(CASE, "/usr/sbin/cron", "/run/crond.pid") {
        return;
    }
    let t = trace_real(&["/usr/sbin/cron"]);
    assert_traced_gone(&t);
    let rules = t.rules();
    // Debian's cron: flock on /run/crond.pid, one fork (the parent exits), setsid in the
    // child, /dev/null on 0/1/2, and the PID written again by the child.
    assert!(
        in_order(&rules, &["start", "lock", "fork", "setsid", "dev_null",]),
        "{rules:?}"
    );
    // write() is not watched: a pid file's new content is seen at the next stop of any
    // traced process, so where it shows up is not an order of the program's own.
    assert!(rules.contains(&"pidfile_write"), "{rules:?}");
    assert!(!rules.contains(&"second_fork"), "{rules:?}");
    let v = t.verdict();
    assert_eq!(v["daemonized"], true, "{v:#}");
    // flock belongs to the open file, which the child inherited: not lost in the fork.
    assert!(t.findings().is_empty(), "{:?}", t.findings());
    assert_eq!(t.check("pidfile_lock"), "pass");
    // The stale pid file EXITKILL left behind names a dead PID; remove it as cron would.
    let _ = std::fs::remove_file("/run/crond.pid");
}

#[test]
fn nginx_master_forks_workers_that_are_not_a_second_fork() {
    const CASE: &str = "nginx_master_forks_workers_that_are_not_a_second_fork";
    if !Path::new("/usr/sbin/nginx").exists() {
        eprintln!("SKIPPED {CASE}: /usr/sbin/nginx is not installed");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {CASE}: needs root (nginx's workers switch user)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = nginx_conf(dir.path(), 2, port);
    let globals = format!("pid {d}/nginx.pid; error_log {d}/error.log;");
    let t = trace_real(&[
        "/usr/sbin/nginx",
        "-c",
        conf.to_str().unwrap(),
        "-p",
        d,
        "-g",
        &globals,
    ]);
    assert_traced_gone(&t);
    let rules = t.rules();
    assert!(in_order(&rules, &["start", "fork", "setsid"]), "{rules:?}");
    assert!(rules.contains(&"pidfile_write"), "{rules:?}");
    assert!(
        !rules.contains(&"second_fork"),
        "workers are not a second fork: {rules:?}"
    );
    let forks = t.events.iter().filter(|e| e["event"] == "fork").count();
    assert!(forks >= 3, "one daemon fork and two workers: {forks}");
    let v = t.verdict();
    assert_eq!(v["daemonized"], true, "{v:#}");
    // The master (setsid's caller) is the daemon, not a worker.
    let setsid = t.events.iter().find(|e| e["rule"] == "setsid").unwrap();
    assert_eq!(v["main_pid"], setsid["pid"]);
    assert_eq!(t.code, Some(0));
}

#[test]
fn without_the_filter_every_call_stops_and_the_rules_are_the_same() {
    let Some(program) = tsubject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_daemonlab"))
        .args([
            "trace",
            "--no-filter",
            "--settle",
            "300",
            "--timeout",
            "60",
            "--",
        ])
        .arg(program)
        .arg("apue")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("as asked (--no-filter)"), "{text}");
    // The rule column of each "#N  T ms  pid P  RULE  call" line.
    let rules: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.get(2) == Some(&"ms")).then(|| t[5])
        })
        .collect();
    assert!(in_order(&rules, &BOOK), "{rules:?}\n{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(wait_gone(dir.path()).is_empty());
}

/// A seccomp profile that refuses ptrace (as a container's may): the trace says so, names
/// the fix, exits 1, and leaves nothing running.
#[test]
fn a_seccomp_filter_that_refuses_ptrace_is_named_with_its_fix() {
    let (Some(program), Some(wrapper)) = (tsubject(), noptrace()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(wrapper)
        .arg(env!("CARGO_BIN_EXE_daemonlab"))
        .args(["trace", "--settle", "300", "--timeout", "20", "--"])
        .arg(program)
        .arg("apue")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ptrace refused"), "{stderr}");
    assert!(stderr.contains("seccomp filter"), "{stderr}");
    assert!(stderr.contains("seccomp=unconfined"), "{stderr}");
    let left = wait_gone(dir.path());
    assert!(left.is_empty(), "outlived a refused trace: {left:?}");
}
