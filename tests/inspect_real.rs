//! `inspect` on real programs whose shape we know: C daemons compiled here with `cc`
//! (tests/c/dsubject.c) and, where installed, real Debian daemons. The oracle is the
//! kernel and software nobody here wrote: glibc's daemon(3), fcntl locks, sh's `&`.
//! Every test ends only the processes it started, by PID.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use daemonlab::audit::{Audit, Role, Status, inspect, text_report};

/// The compiled subject, or `None` (and a loud skip) without a C compiler.
fn subject() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // In target/tmp (cargo clean removes it), not the machine's /tmp.
            let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("dsubject-{}", std::process::id()));
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/dsubject.c");
            match Command::new("cc")
                .arg("-o")
                .arg(&out)
                .arg(&src)
                .arg("-lpthread")
                .status()
            {
                Ok(s) if s.success() => Some(out),
                other => {
                    eprintln!("SKIPPED: no working C compiler (cc): {other:?}");
                    None
                }
            }
        })
        .as_deref()
}

/// Wait for a report file and read the PIDs in it.
fn pids_in(path: &Path) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read(path) {
            let text = String::from_utf8_lossy(&text);
            let pids: Vec<i32> = text
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            if !pids.is_empty() {
                return pids;
            }
        }
        assert!(Instant::now() < deadline, "no report at {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the PIDs it was given when dropped, so a failed assertion leaves nothing behind.
struct Started(Vec<i32>);

impl Drop for Started {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new(subject().unwrap())
        .args(args)
        .status()
        .expect("the subject starts");
    assert!(status.success(), "{args:?}: {status}");
}

fn status_of<'a>(audit: &'a Audit, id: &str) -> (&'a Status, &'a str) {
    let c = audit
        .check(id)
        .unwrap_or_else(|| panic!("no check {id}:\n{}", text_report(audit)));
    (&c.status, &c.detail)
}

/// Inspect, retrying briefly while a just-started daemon finishes detaching.
fn audit_of(pid: i32) -> Audit {
    std::thread::sleep(Duration::from_millis(50));
    inspect(pid).unwrap_or_else(|e| panic!("inspect {pid}: {e}"))
}

#[test]
fn apue_daemonize_with_already_running_holds_a_locked_pid_file_ending_in_nul() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("apue.pid");
    run(&["apue", pidfile.to_str().unwrap()]);
    // The file holds "PID\0": read the number before the NUL.
    let pid = pids_in(&pidfile)[0];
    let _guard = Started(vec![pid]);
    let audit = audit_of(pid);
    let report = text_report(&audit);
    assert_eq!(audit.role, Role::Daemon, "{report}");
    assert_eq!(audit.main_pid, pid);
    let file = audit
        .pidfile
        .as_ref()
        .expect("the locked pid file is found");
    assert_eq!(file.path, pidfile.to_str().unwrap());
    assert_eq!(file.content, format!("{pid}\0"));
    assert_eq!(file.locked_by, Some(pid));
    let (status, detail) = status_of(&audit, "pidfile_lock");
    assert_eq!(*status, Status::Pass, "{report}");
    assert!(
        detail.contains("NUL") && detail.contains("harmless"),
        "{detail}"
    );
    // Two forks: its session's leader has exited.
    let (status, detail) = status_of(&audit, "session");
    assert_eq!(*status, Status::Pass, "{report}");
    assert!(detail.contains("has exited"), "{detail}");
    assert_eq!(*status_of(&audit, "stdio").0, Status::Pass, "{report}");
}

#[test]
fn glibc_daemon_gets_the_same_session_verdict_whoever_adopted_it() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Adopted by PID 1 (nothing between us and init is a subreaper here, or the nearest
    // one adopts it: either way the verdict must not depend on it).
    let report1 = dir.path().join("by-init");
    run(&["daemon3", report1.to_str().unwrap()]);
    let by_init = pids_in(&report1)[0];
    let _g1 = Started(vec![by_init]);
    // Adopted by a subreaper of ours.
    let report2 = dir.path().join("by-reaper");
    let reaper = Command::new(subject().unwrap())
        .args(["reaper", report2.to_str().unwrap()])
        .spawn()
        .unwrap();
    let reaper_pid = reaper.id() as i32;
    let by_reaper = pids_in(&report2)[0];
    let _g2 = Started(vec![by_reaper, reaper_pid]);
    let a = audit_of(by_init);
    let b = audit_of(by_reaper);
    assert_eq!(
        b.process.as_ref().unwrap().ppid,
        reaper_pid,
        "{}",
        text_report(&b)
    );
    for audit in [&a, &b] {
        let report = text_report(audit);
        assert_eq!(audit.role, Role::Daemon, "{report}");
        let (status, detail) = status_of(audit, "session");
        // daemon(3) forks once and calls setsid(): a session leader, which can acquire
        // a terminal — whoever adopted it.
        assert_eq!(*status, Status::Warn, "{report}");
        assert!(detail.contains("whoever its parent is"), "{detail}");
        assert!(!detail.contains("init system"), "{detail}");
    }
    let strip = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "");
    assert_eq!(
        strip(status_of(&a, "session").1),
        strip(status_of(&b, "session").1)
    );
    // The subreaper is not called one: /proc does not show it.
    let (_, parent) = status_of(&b, "parent");
    assert!(parent.contains("/proc shows neither"), "{parent}");
    drop(reaper);
}

#[test]
fn a_log_file_on_fd_2_is_a_reused_slot_and_names_where_writes_land() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let log = dir.path().join("daemon.log");
    run(&["logfd2", out.to_str().unwrap(), log.to_str().unwrap()]);
    let pid = pids_in(&out)[0];
    let _g = Started(vec![pid]);
    let audit = audit_of(pid);
    let (status, detail) = status_of(&audit, "stdio");
    assert_eq!(*status, Status::Warn, "{}", text_report(&audit));
    assert!(
        detail.contains("stray write to 2") && detail.contains(log.to_str().unwrap()),
        "{detail}"
    );
    assert!(audit.pidfile.is_none());
}

#[test]
fn a_blocked_sigterm_is_named() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&["sigterm", out.to_str().unwrap()]);
    let pid = pids_in(&out)[0];
    let _g = Started(vec![pid]);
    let audit = audit_of(pid);
    let (status, detail) = status_of(&audit, "signal_mask");
    assert_eq!(*status, Status::Warn, "{}", text_report(&audit));
    assert!(
        detail.contains("SIGTERM") && detail.contains("pending"),
        "{detail}"
    );
    assert_eq!(audit.role, Role::Daemon);
}

#[test]
fn a_worker_points_at_its_daemon_and_skips_the_daemons_rules() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&["worker", out.to_str().unwrap()]);
    let pids = pids_in(&out);
    let (main, worker) = (pids[0], pids[1]);
    let _g = Started(vec![worker, main]);
    let daemon = audit_of(main);
    assert_eq!(daemon.role, Role::Daemon, "{}", text_report(&daemon));
    let audit = audit_of(worker);
    let report = text_report(&audit);
    assert_eq!(audit.role, Role::Worker, "{report}");
    assert_eq!(audit.main_pid, main, "{report}");
    for id in ["pidfile_lock", "sighup", "syslog"] {
        let (status, detail) = status_of(&audit, id);
        assert_eq!(*status, Status::Pass, "{report}");
        assert!(
            detail.starts_with("skipped") && detail.contains(&format!("inspect {main}")),
            "{detail}"
        );
    }
    assert_eq!(*status_of(&audit, "session").0, Status::Pass, "{report}");
    assert!(audit.pidfile.is_none());
}

#[test]
fn an_unlocked_pid_file_named_on_the_command_line_is_found_and_warned_about() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("food.pid");
    run(&["--pidfile", pidfile.to_str().unwrap()]);
    let pid = pids_in(&pidfile)[0];
    let _g = Started(vec![pid]);
    let audit = audit_of(pid);
    let report = text_report(&audit);
    let file = audit.pidfile.as_ref().expect("found through --pidfile");
    assert_eq!(file.path, pidfile.to_str().unwrap());
    assert_eq!(file.content, format!("{pid}\n"));
    assert_eq!(file.locked_by, None);
    let (status, detail) = status_of(&audit, "pidfile_lock");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains("not locked"), "{detail}");
    assert!(!detail.contains("nothing"), "{detail}");
}

#[test]
fn a_listening_socket_is_a_guard_and_a_named_listener() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&["listener", out.to_str().unwrap()]);
    let pid = pids_in(&out)[0];
    let _g = Started(vec![pid]);
    let audit = audit_of(pid);
    let report = text_report(&audit);
    let (status, detail) = status_of(&audit, "pidfile_lock");
    assert_eq!(*status, Status::Pass, "{report}");
    assert!(
        detail.contains("TCP listening on 127.0.0.1:") && detail.contains("EADDRINUSE"),
        "{detail}"
    );
    let (status, detail) = status_of(&audit, "open_fds");
    assert_eq!(*status, Status::Pass, "{report}");
    assert!(detail.contains("as listeners"), "{detail}");
}

#[test]
fn a_thread_is_audited_as_its_process() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let mut child = Command::new(subject().unwrap())
        .args(["thread", out.to_str().unwrap()])
        .spawn()
        .unwrap();
    let pid = pids_in(&out)[0];
    let _g = Started(vec![pid]);
    let tid: i32 = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .find(|&t| t != pid)
        .expect("a second thread");
    let audit = audit_of(tid);
    let report = text_report(&audit);
    assert_eq!(audit.pid, tid);
    assert_eq!(audit.role, Role::Thread, "{report}");
    assert_eq!(audit.main_pid, pid);
    assert_eq!(audit.process.as_ref().unwrap().pid, pid);
    let (_, detail) = status_of(&audit, "thread");
    assert!(detail.contains(&format!("pid {pid}")), "{detail}");
    drop(_g);
    let _ = child.wait();
}

#[test]
fn a_background_job_whose_session_leader_is_alive_is_a_job() {
    let Some(_) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run(&["job", out.to_str().unwrap()]);
    let pids = pids_in(&out);
    let (pid, leader) = (pids[0], pids[1]);
    let _g = Started(vec![pid, leader]);
    let audit = audit_of(pid);
    let report = text_report(&audit);
    assert_eq!(audit.role, Role::Job, "{report}");
    assert_eq!(audit.main_pid, pid);
    let (status, detail) = status_of(&audit, "session");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(
        detail.contains("still in session") && detail.contains(&format!("pid {leader}")),
        "{detail}"
    );
    assert!(audit.pidfile.is_none());
}

#[test]
fn a_deliberately_bad_daemon_gets_every_warning_it_earns() {
    let Some(subject) = subject() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let pidfile = dir.path().join("bad.pid");
    let log = dir.path().join("launcher.log");
    // Its launcher: a script with no terminal that leads its own session and stays, as a
    // boot script waiting on something would; the daemon's stdout goes to its log.
    let script = format!(
        "'{}' bad '{}' --pidfile '{}' >'{}' 2>&1; exec sleep 300",
        subject.display(),
        out.display(),
        pidfile.display(),
        log.display()
    );
    let mut launcher = Command::new("setsid")
        .args(["sh", "-c", &script])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let sh = launcher.id() as i32;
    let pid = pids_in(&out)[0];
    let _g = Started(vec![pid, sh]);
    let audit = audit_of(pid);
    let report = text_report(&audit);
    // One fork, no setsid(): still a job of its launcher's session.
    assert_eq!(audit.role, Role::Job, "{report}");
    let (status, detail) = status_of(&audit, "session");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(
        detail.contains("still in session") && !detail.contains("second fork achieves"),
        "{detail}"
    );
    // The pid file was written before the fork: it names the parent, which has exited.
    let file = audit.pidfile.as_ref().expect("found through --pidfile");
    assert_ne!(file.content.trim(), pid.to_string());
    let (status, detail) = status_of(&audit, "pidfile_lock");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains("wrong process"), "{detail}");
    let (status, detail) = status_of(&audit, "stdio");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains(log.to_str().unwrap()), "{detail}");
    let (status, detail) = status_of(&audit, "cwd");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains(dir.path().to_str().unwrap()), "{detail}");
    let (status, detail) = status_of(&audit, "open_fds");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains(pidfile.to_str().unwrap()), "{detail}");
    let (status, detail) = status_of(&audit, "signal_mask");
    assert_eq!(*status, Status::Warn, "{report}");
    assert!(detail.contains("SIGTERM is ignored"), "{detail}");
    assert_eq!(*status_of(&audit, "umask").0, Status::Warn, "{report}");
    assert_eq!(*status_of(&audit, "sighup").0, Status::Warn, "{report}");
    assert!(audit.verdict.contains("not detached"), "{}", audit.verdict);
    drop(_g);
    let _ = launcher.wait();
}
