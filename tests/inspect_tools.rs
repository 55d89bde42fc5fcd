//! `daemonlab inspect` on programs made daemons by the usual launchers: libslack's
//! daemon(1), start-stop-daemon, util-linux setsid, nohup and python-daemon. The oracle is
//! what each launcher really does — how many forks, whether setsid() is called, where
//! the pid file goes, whether a second start is refused — so each case also tries the
//! second start where the launcher has an opinion about it.
//!
//! Each case skips loudly when its tool is absent and ends only what it started, by PID.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::inspect::*;

/// A command line no other process has: `sleep` adds its arguments up, so the second
/// one makes it ours without changing how long it sleeps much.
fn unique_sleep() -> (String, String) {
    let tag = format!("0.{}{}", std::process::id(), rand_tag());
    (format!("sleep 300 {tag}"), tag)
}

/// A few digits that differ between calls within one test process.
fn rand_tag() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Wait until `pid` (whose pid file may be written before it execs) runs `command` and
/// is the only process that does.
fn wait_running_alone(pid: i32, command: &str) {
    wait_for(&format!("{pid} running {command:?} alone"), || {
        (pids_running(command) == [pid]).then_some(pid)
    });
}

/// Wait until exactly one process runs `command` (a second start gave up), for up to ten
/// seconds; the PIDs running it then.
fn settle_to_one(command: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = pids_running(command);
        if pids.len() <= 1 || Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn libslack_daemon_and_its_client() {
    const CASE: &str = "libslack_daemon_and_its_client";
    if !installed(CASE, "/usr/bin/daemon") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("dl{}", std::process::id());
    let pidfiles = format!("--pidfiles={}", dir.path().display());
    let args = [
        "--noconfig",
        &format!("--name={name}"),
        &pidfiles,
        "--",
        "/bin/sleep",
        "300",
    ];
    let status = daemon("/usr/bin/daemon")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "daemon: {status}");
    let pidfile = dir.path().join(format!("{name}.pid"));
    let pid = wait_pid_file(&pidfile);
    let _stop = Started::new(pid);
    let client = wait_pid_file(&dir.path().join(format!("{name}.clientpid")));
    assert_eq!(ppid_of(client), Some(pid));

    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    // daemon(1) locks its pid file, as APUE 13.5 does.
    assert_pidfile(&audit, &pidfile, Some(pid));
    assert_check(&audit, "pidfile_lock", "pass", &["lock on its pid file"]);
    // It forks twice: its session's leader has exited.
    assert_check(&audit, "session", "pass", &["has exited", "second fork"]);
    // The pipes it reads its client's output from are channels to its child, not leaks.
    assert_check(&audit, "open_fds", "pass", &["none leaks", "its child"]);
    assert_check(&audit, "syslog", "pass", &["first message"]);

    // Its client: a program daemon(1) supervises, on its pipes.
    let audit = inspect(client);
    assert_role(&audit, "service", client);
    assert_check(
        &audit,
        "session",
        "pass",
        &["with its service manager daemon"],
    );
    assert_check(&audit, "stdio", "pass", &["shared with daemon"]);
    assert_check(&audit, "pidfile_lock", "pass", &["manager daemon"]);
    assert_check(
        &audit,
        "syslog",
        "pass",
        &["stdout and stderr go to daemon"],
    );

    // The oracle: a second start with the same name finds the pid file locked and gives
    // up (after detaching, so its own exit status says nothing).
    let command = std::iter::once("/usr/bin/daemon")
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let second = daemon("/usr/bin/daemon")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(second.success());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(settle_to_one(&command), [pid], "a second daemon(1) stayed");
}

#[test]
fn start_stop_daemon_background_make_pidfile() {
    const CASE: &str = "start_stop_daemon_background_make_pidfile";
    if !installed(CASE, "/usr/sbin/start-stop-daemon")
        || !root(CASE, "its pid file goes in /run, as init scripts put it")
    {
        return;
    }
    // A name of the launcher's choosing, in /run: found because it names the PID.
    let pidfile = format!("/run/daemonlab-ssd-{}.pid", std::process::id());
    let (command, tag) = unique_sleep();
    let start = || {
        daemon("/usr/sbin/start-stop-daemon")
            .args(["--start", "--background", "--make-pidfile", "--pidfile"])
            .arg(&pidfile)
            .args(["--exec", "/bin/sleep", "--", "300", &tag])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap()
    };
    let status = start();
    assert!(status.success(), "start-stop-daemon: {status}");
    let pid = wait_pid_file(Path::new(&pidfile));
    let mut stop = Started::new(pid);
    stop.restore.push((pidfile.clone().into(), None));
    // The pid file is written before the exec.
    wait_running_alone(pid, &command.replacen("sleep", "/bin/sleep", 1));

    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    assert_pidfile(&audit, Path::new(&pidfile), None);
    assert_eq!(audit["pidfile"]["content"], format!("{pid}\n"));
    // It forks, calls setsid() and forks again before exec: the leader has exited.
    assert_check(
        &audit,
        "session",
        "pass",
        &["has exited", "APUE 13.3's second fork achieves"],
    );
    assert_check(&audit, "cwd", "pass", &["/"]);
    assert_check(&audit, "stdio", "pass", &["0 → /dev/null"]);
    // Not locked: only a start that checks it is refused — start-stop-daemon's does.
    assert_check(
        &audit,
        "pidfile_lock",
        "warn",
        &["not locked", "only if that start checks it"],
    );
    // The oracle: a second --start with the same pid file and executable is refused.
    let second = start();
    assert_eq!(second.code(), Some(1), "a second start: {second}");
    assert_eq!(
        pids_running(&command.replacen("sleep", "/bin/sleep", 1)),
        [pid]
    );
}

#[test]
fn setsid_fork_leads_a_session_of_its_own() {
    const CASE: &str = "setsid_fork_leads_a_session_of_its_own";
    if !installed(CASE, "/usr/bin/setsid") {
        return;
    }
    let (command, tag) = unique_sleep();
    let status = daemon("/usr/bin/setsid")
        .args(["-f", "sleep", "300", &tag])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "setsid -f: {status}");
    let pid = wait_for("setsid -f's sleep", || {
        pids_running(&command).first().copied()
    });
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    // One fork and setsid(): detached from the launcher, but a session leader.
    assert_role(&audit, "daemon", pid);
    assert_check(
        &audit,
        "session",
        "warn",
        &["leads its own session", "without APUE 13.3's second fork"],
    );
    assert!(audit["pidfile"].is_null(), "{audit:#}");
    assert_check(&audit, "pidfile_lock", "warn", &["no guard found"]);
    assert_check(&audit, "sighup", "warn", &["default action", "kill -HUP"]);
    assert_check(&audit, "syslog", "pass", &["first message"]);
}

#[test]
fn nohup_stays_in_its_launchers_session() {
    const CASE: &str = "nohup_stays_in_its_launchers_session";
    if !installed(CASE, "/usr/bin/nohup") || !installed(CASE, "/usr/bin/setsid") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (command, tag) = unique_sleep();
    // A script with no terminal that leads its own session and waits for its nohup job,
    // as a boot script or a CI step does.
    let out = dir.path().join("job");
    let script = format!(
        "nohup sleep 300 {tag} >/dev/null 2>&1 & echo $! > {}; wait",
        out.display()
    );
    let mut launcher = daemon("/usr/bin/setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let sh = launcher.id() as i32;
    let guard = Started::new(sh);
    let pid = wait_pid_file(&out);
    wait_running_alone(pid, &command);
    let audit = inspect(pid);
    assert_role(&audit, "job", pid);
    // It never forked twice nor called setsid(): still in the session of its launcher,
    // whose leader is alive.
    assert_check(
        &audit,
        "session",
        "warn",
        &[
            "still in session",
            &format!("sh (pid {sh})"),
            "never called setsid()",
        ],
    );
    let (_, session) = check(&audit, "session");
    assert!(!session.contains("second fork achieves"), "{session}");
    // nohup's one act: SIGHUP ignored.
    assert_check(&audit, "signal_mask", "pass", &["nohup"]);
    assert!(
        audit["verdict"].as_str().unwrap().contains("not detached"),
        "{audit:#}"
    );
    drop(guard);
    let _ = launcher.wait();

    // `sh -c 'nohup cmd &'` whose shell has exited: the job stays in the session sh was
    // in (ours) and in sh's process group.
    let (command, tag) = unique_sleep();
    let out = dir.path().join("job2");
    let status = daemon("/bin/sh")
        .arg("-c")
        .arg(format!(
            "nohup sleep 300 {tag} >/dev/null 2>&1 & echo $! > {}",
            out.display()
        ))
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid = wait_pid_file(&out);
    let _stop = Started::new(pid);
    wait_running_alone(pid, &command);
    let audit = inspect(pid);
    let (status, session) = check(&audit, "session");
    assert!(
        !session.contains("second fork achieves"),
        "nohup never forked twice: {session}"
    );
    let our_sid = nix::unistd::getsid(None).unwrap().as_raw();
    if our_sid > 0 && alive(our_sid) {
        assert_role(&audit, "job", pid);
        assert_eq!(status, "warn", "{session}");
        assert!(session.contains("still in session"), "{session}");
    } else if our_sid == 0 {
        // This test runs in a session made outside its PID namespace (a container's
        // runner): the kernel reports the job's SID as 0 too.
        eprintln!(
            "SKIPPED {CASE} (second half): this test's session was created outside its PID namespace (SID 0)"
        );
        assert!(session.contains("outside this PID namespace"), "{session}");
    } else {
        eprintln!(
            "SKIPPED {CASE} (second half): this test's session leader {our_sid} is gone, so the job is in a leaderless session"
        );
        assert!(session.contains("left behind"), "{session}");
    }
}

/// A python-daemon program: DaemonContext with a PIDLockFile named by `--pidfile`,
/// waiting `timeout` seconds for the lock. When the lock is refused it says why in
/// PIDFILE.refused (its stdio is /dev/null by then).
const NAPD: &str = r#"
import sys, time
import daemon, daemon.pidfile
path = sys.argv[sys.argv.index("--pidfile") + 1]
timeout = float(sys.argv[sys.argv.index("--timeout") + 1])
try:
    with daemon.DaemonContext(pidfile=daemon.pidfile.TimeoutPIDLockFile(path, timeout)):
        time.sleep(300)
except Exception as e:
    with open(path + ".refused", "w") as f:
        f.write(type(e).__name__)
"#;

#[test]
fn python_daemon_with_a_pid_lock_file() {
    const CASE: &str = "python_daemon_with_a_pid_lock_file";
    if !installed(CASE, "/usr/bin/python3") {
        return;
    }
    let has = Command::new("/usr/bin/python3")
        .args(["-c", "import daemon, daemon.pidfile"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        eprintln!("SKIPPED {CASE}: python3-daemon is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("napd.py");
    std::fs::write(&script, NAPD).unwrap();
    let pidfile = dir.path().join("napd.pid");
    let start = |timeout: &str| {
        daemon("/usr/bin/python3")
            .arg(&script)
            .arg("--pidfile")
            .arg(&pidfile)
            .args(["--timeout", timeout])
            .stdin(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(start("5").success());
    let pid = wait_pid_file(&pidfile);
    let _stop = Started::new(pid);
    let audit = inspect(pid);
    assert_role(&audit, "daemon", pid);
    // PIDLockFile: created with O_EXCL, PID and a newline, closed, not locked.
    assert_pidfile(&audit, &pidfile, None);
    assert_eq!(audit["pidfile"]["content"], format!("{pid}\n"));
    assert_check(
        &audit,
        "pidfile_lock",
        "warn",
        &["not locked", "O_EXCL", "stale after a crash"],
    );
    // Two forks around setsid().
    assert_check(&audit, "session", "pass", &["has exited", "second fork"]);
    assert_check(&audit, "cwd", "pass", &["/"]);
    assert_check(&audit, "umask", "pass", &["0000"]);
    // Python opens /dev/null with O_CLOEXEC: a program it execs would start without 0-2.
    assert_check(&audit, "stdio", "warn", &["O_CLOEXEC", "closed"]);
    assert_check(&audit, "syslog", "pass", &["first message"]);
    assert_check(&audit, "signal_mask", "pass", &["SIGTSTP", "python-daemon"]);
    // The oracle: a second instance finds the file there (O_EXCL) and gives up.
    assert!(start("0").success());
    let refused = dir.path().join("napd.pid.refused");
    wait_for("the second instance's refusal", || {
        refused.exists().then_some(0)
    });
    let why = std::fs::read_to_string(&refused).unwrap_or_default();
    assert!(why.contains("Locked"), "refused with {why:?}");
    assert!(alive(pid));
    assert_eq!(wait_pid_file(&pidfile), pid);
}
