//! `daemonlab inspect`'s engine on real processes: a daemon the lab made, a job still in
//! its terminal session, a `setsid -f` process, PID 1, a kernel thread, a zombie, a PID
//! that does not exist, and PIDs that are not PIDs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemonlab::audit::{Audit, InspectError, Status, inspect, json_report, parse_pid, text_report};
use daemonlab::lab::STEPS;
use daemonlab::lab::protocol::Request;
use daemonlab::locks::LockKind;

fn status_of(audit: &Audit, id: &str) -> Status {
    audit
        .check(id)
        .unwrap_or_else(|| panic!("no check {id} in {audit:#?}"))
        .status
}

fn assert_pass(audit: &Audit, ids: &[&str]) {
    for id in ids {
        assert_eq!(
            status_of(audit, id),
            Status::Pass,
            "{id} should pass:\n{}",
            text_report(audit)
        );
    }
}

/// State letter of `pid` from stat, or None once it is gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_lab_daemon_passes_every_rule() {
    let mut lab = common::start_lab();
    for info in STEPS {
        let outcome = lab.run(info.id).expect("the step runs");
        assert!(outcome.ok, "step {} failed: {outcome:?}", info.id.name());
    }
    let pidfile = lab.runtime_dir().join("x.pid");
    let locked = lab
        .syslog_request(Request::Lock {
            path: pidfile.clone(),
            kind: LockKind::Fcntl,
        })
        .expect("the lock request is answered");
    assert!(locked.ok, "{locked:?}");

    let pid = lab.subject_pid();
    let audit = inspect(pid).expect("the daemon can be inspected");
    let report = text_report(&audit);
    assert_pass(
        &audit,
        &[
            "controlling_tty",
            "session",
            "cwd",
            "root",
            "stdio",
            "sighup",
            "pidfile_lock",
            "syslog",
            "state",
        ],
    );
    let lock = audit.check("pidfile_lock").unwrap();
    assert!(lock.detail.contains(pidfile.to_str().unwrap()), "{report}");
    assert!(
        !audit.checks.iter().any(|c| c.status == Status::Fail),
        "{report}"
    );
    assert!(!audit.verdict.starts_with("not a daemon"), "{report}");

    let session = lab.session_pid();
    lab.shutdown();
    common::assert_all_gone(&[pid, session]);
}

#[test]
fn a_job_in_the_labs_terminal_fails_the_tty_check_and_names_the_tty() {
    let mut lab = common::start_lab();
    lab.run(STEPS[0].id).expect("step 0 runs");
    let pid = lab.subject_pid();
    let audit = inspect(pid).expect("the subject can be inspected");
    let tty = audit
        .checks
        .iter()
        .find(|c| c.id.contains("tty"))
        .expect("a tty check");
    assert_eq!(tty.status, Status::Fail, "{}", text_report(&audit));
    assert!(tty.detail.contains(lab.pty_name()), "{}", tty.detail);
    // A job's stdio on its terminal is what a job has; the tty rule is what fails.
    assert_eq!(
        audit.role,
        daemonlab::audit::Role::Job,
        "{}",
        text_report(&audit)
    );
    assert_eq!(audit.main_pid, pid);
    assert_eq!(
        status_of(&audit, "stdio"),
        Status::Pass,
        "{}",
        text_report(&audit)
    );
    assert!(
        audit.verdict.contains("not a well-formed daemon"),
        "{}",
        audit.verdict
    );

    let session = lab.session_pid();
    lab.shutdown();
    common::assert_all_gone(&[pid, session]);
}

/// PIDs whose /proc/PID/cmdline is exactly `argv`.
fn find_by_cmdline(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .as_deref()
                == Some(&want[..])
        })
        .collect()
}

#[test]
fn a_setsid_process_is_a_session_leader_without_a_terminal() {
    if Command::new("setsid").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux `setsid` is not installed");
        return;
    }
    common::become_subreaper();
    // A duration no other process on the machine will have, to find the sleep by argv.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("30.{}{nanos}", std::process::id());
    let status = Command::new("setsid")
        .args(["-f", "sleep", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("setsid runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(3);
    let pid = loop {
        if let [pid] = find_by_cmdline(&["sleep", &marker])[..] {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the setsid'd sleep never showed up"
        );
        std::thread::sleep(Duration::from_millis(10));
    };

    let audit = inspect(pid);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    common::assert_all_gone(&[pid]);

    let audit = audit.expect("the sleep can be inspected");
    let process = audit.process.as_ref().unwrap();
    assert!(process.session_leader, "{}", text_report(&audit));
    assert_eq!(process.tty, None);
    assert_eq!(status_of(&audit, "controlling_tty"), Status::Pass);
    let session = audit.check("session").unwrap();
    assert!(
        session.detail.contains("leads its own session"),
        "{}",
        session.detail
    );
    assert!(session.detail.contains("O_NOCTTY"), "{}", session.detail);
}

#[test]
fn pid_1_can_be_inspected_whatever_it_is() {
    let audit = inspect(1).expect("PID 1 is always there");
    assert_eq!(audit.pid, 1);
    assert!(audit.check("parent").unwrap().detail.contains("no parent"));
    assert!(text_report(&audit).contains("verdict: "));
}

#[test]
fn a_kernel_thread_is_refused() {
    // PID 2 is kthreadd on the host; in a PID namespace look for any kernel thread.
    let kthread = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let flags: u64 = s
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(6)?
                        .parse()
                        .ok()?;
                    Some(flags & 0x0020_0000 != 0)
                })
                .unwrap_or(false)
        });
    let Some(pid) = kthread else {
        eprintln!("SKIPPED: no kernel thread is visible in this PID namespace");
        return;
    };
    let err = inspect(pid).expect_err("a kernel thread is not audited");
    assert!(
        matches!(err, InspectError::KernelThread(p) if p == pid),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&pid.to_string()) && msg.contains("kernel thread"),
        "{msg}"
    );
}

#[test]
fn a_zombie_is_reported_as_a_zombie() {
    let mut child = Command::new("true").spawn().expect("true runs");
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(3);
    while state(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "the child never became a zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    let audit = inspect(pid);
    child.wait().expect("the zombie is reaped");

    let audit = audit.expect("a zombie can be inspected");
    let state = audit.check("state").unwrap();
    assert_eq!(state.status, Status::Fail);
    assert!(state.detail.starts_with("zombie"), "{}", state.detail);
    assert_eq!(audit.process.as_ref().unwrap().state_name, "zombie");
    assert!(
        audit.verdict.contains("zombie: it has exited"),
        "{}",
        audit.verdict
    );
    assert_eq!(audit.role, daemonlab::audit::Role::Zombie);
    assert_eq!(status_of(&audit, "cwd"), Status::Unknown);
    // Unknown because it has exited, not "closed" and not "this kernel lacks Umask:".
    for id in ["stdio", "umask", "open_fds"] {
        let c = audit.check(id).unwrap();
        assert_eq!(c.status, Status::Unknown, "{c:?}");
        assert!(c.detail.contains("it has exited"), "{c:?}");
    }
}

#[test]
fn a_missing_pid_is_no_such_process() {
    let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse::<i32>()
        .unwrap();
    let free = (2..max)
        .rev()
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("some PID is free");
    let err = inspect(free).expect_err("nothing to inspect");
    assert!(
        matches!(err, InspectError::NoSuchProcess(p) if p == free),
        "{err:?}"
    );
    assert!(err.to_string().contains(&free.to_string()));
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn text_that_is_not_a_pid_is_refused_with_a_reason() {
    for text in ["0", "-3", "abc", "", "12x"] {
        match parse_pid(text) {
            Err(InspectError::BadPid(msg)) => {
                assert!(msg.contains(&format!("{:?}", text.trim())), "{msg}");
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    assert!(parse_pid("0").unwrap_err().to_string().contains("positive"));
    assert!(
        parse_pid("99999999999")
            .unwrap_err()
            .to_string()
            .contains("pid_max")
    );
    // The highest PID is pid_max − 1: pid_max itself is invalid, not "may have exited".
    let max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match parse_pid(&max.to_string()) {
        Err(e @ InspectError::BeyondPidMax { .. }) => {
            assert!(e.to_string().contains(&(max - 1).to_string()), "{e}");
        }
        other => panic!("pid_max gave {other:?}"),
    }
    assert!(parse_pid(&(max - 1).to_string()).is_ok());
    assert_eq!(parse_pid(" 1 ").unwrap(), 1);
}

#[test]
fn json_has_the_stable_keys() {
    let audit = inspect(std::process::id() as i32).expect("we can inspect ourselves");
    let value: serde_json::Value = serde_json::from_str(&json_report(&audit)).unwrap();
    let object = value.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "checks", "main_pid", "pid", "pidfile", "process", "role", "verdict"
        ]
    );
    assert_eq!(
        serde_json::to_value(audit.process.as_ref().unwrap()).unwrap(),
        value["process"]
    );
    for check in value["checks"].as_array().unwrap() {
        let mut keys: Vec<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["detail", "id", "status"]);
        assert!(["pass", "warn", "fail", "unknown"].contains(&check["status"].as_str().unwrap()));
    }
}
