//! Tests of whole snapshots: serialization, and live processes this test binary creates.
//!
//! The environment is not assumed clean: the test process may have inherited extra fds
//! and ignored signals, so assertions are about things these tests set up themselves.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid as NixPid;

use super::*;

fn our_pid() -> Pid {
    std::process::id() as Pid
}

/// A child that is killed and reaped however the test ends, so no test leaves a
/// process behind even when an assertion fails.
struct Reaped(Child);

impl Reaped {
    fn spawn(cmd: &mut Command) -> Self {
        Reaped(
            cmd.spawn()
                .expect("spawn test child; is /bin/sh or sleep missing?"),
        )
    }
    fn pid(&self) -> Pid {
        self.0.id() as Pid
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `check` until it returns `Some`, or panic after a few seconds: a child's state
/// changes asynchronously to us.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sample() -> ProcSnapshot {
    ProcSnapshot {
        pid: 10,
        ppid: 1,
        pgid: 10,
        sid: 10,
        tty: None,
        tty_nr: 0,
        tpgid: -1,
        state: 'S',
        state_name: "sleeping",
        comm: "d".into(),
        umask: Some(0o022),
        cwd: Some("/".into()),
        root: Some("/".into()),
        fds: Some(vec![FdEntry {
            fd: 3,
            target: "socket:[9]".into(),
            cloexec: true,
            lock_lines: None,
        }]),
        sighup: Disposition::Ignored,
        signals: SignalSets {
            ignored: vec!["SIGHUP".into()],
            caught: vec![],
            blocked: vec!["SIGRTMIN+3".into()],
        },
        session_leader: true,
        group_leader: true,
        parent_comm: Some("init".into()),
        adopted_by: Some(Adopter {
            pid: 1,
            comm: "init".into(),
        }),
    }
}

#[test]
fn serializes_with_the_documented_shapes() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(json["umask"], "0022");
    assert_eq!(json["tty"], serde_json::Value::Null);
    assert_eq!(json["tty_nr"], 0);
    assert_eq!(json["state"], "S");
    assert_eq!(json["state_name"], "sleeping");
    assert_eq!(json["sighup"], "ignored");
    assert_eq!(json["signals"]["blocked"][0], "SIGRTMIN+3");
    assert_eq!(json["fds"][0]["cloexec"], true);
    assert_eq!(json["adopted_by"]["comm"], "init");
}

#[test]
fn umask_serializes_as_four_octal_digits() {
    let mut snap = sample();
    for (mask, text) in [(0, "0000"), (0o022, "0022"), (0o777, "0777")] {
        snap.umask = Some(mask);
        assert_eq!(serde_json::to_value(&snap).unwrap()["umask"], text);
    }
    snap.umask = None;
    assert_eq!(
        serde_json::to_value(&snap).unwrap()["umask"],
        serde_json::Value::Null
    );
}

#[test]
fn snapshot_of_ourselves() {
    let snap = snapshot(our_pid(), None).unwrap();
    assert_eq!(snap.pid, our_pid());
    assert_eq!(snap.ppid, nix::unistd::getppid().as_raw());
    assert_eq!(snap.pgid, nix::unistd::getpgrp().as_raw());
    assert_eq!(snap.sid, nix::unistd::getsid(None).unwrap().as_raw());
    assert_eq!(snap.session_leader, snap.sid == snap.pid);
    assert!(matches!(snap.state, 'R' | 'S'), "state {}", snap.state);
    assert_eq!(snap.adopted_by, None);

    let cwd = std::env::current_dir().unwrap();
    assert_eq!(snap.cwd.as_deref(), Some(cwd.to_str().unwrap()));
    // Usually "/", but not in a chroot; ask the kernel by a second route.
    let root = std::fs::read_link("/proc/self/root").unwrap();
    assert_eq!(snap.root.as_deref(), Some(root.to_str().unwrap()));

    let fds = snap.fds.expect("our own fd table is readable");
    assert!(!fds.is_empty());
    assert!(fds.windows(2).all(|w| w[0].fd < w[1].fd), "sorted: {fds:?}");

    // The umask is process-wide and cannot be read without setting it, so compare with
    // what status says through a second, independent route: parse it ourselves.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    let expected = u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap();
    assert_eq!(snap.umask, Some(expected));
}

#[test]
fn fds_show_targets_and_close_on_exec() {
    // std opens with O_CLOEXEC; nix's open does only what it is told.
    let with = std::fs::File::open("/proc/version").unwrap();
    let without = nix::fcntl::open(
        "/proc/cmdline",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let snap = snapshot(our_pid(), None).unwrap();
    let fds = snap.fds.unwrap();
    let find = |fd: i32| fds.iter().find(|e| e.fd == fd).cloned();

    let with_entry = find(with.as_raw_fd()).expect("cloexec fd listed");
    assert_eq!(with_entry.target, "/proc/version");
    assert!(with_entry.cloexec);

    let without_entry = find(without.as_raw_fd()).expect("inheritable fd listed");
    assert_eq!(without_entry.target, "/proc/cmdline");
    assert!(!without_entry.cloexec);
}

#[test]
fn read_stat_agrees_with_the_syscalls() {
    let st = read_stat(our_pid()).unwrap();
    assert_eq!(st.pid, our_pid());
    assert_eq!(st.ppid, nix::unistd::getppid().as_raw());
    assert_eq!(st.pgid, nix::unistd::getpgrp().as_raw());
    assert_eq!(st.sid, nix::unistd::getsid(None).unwrap().as_raw());
}

#[test]
fn missing_process_is_no_such_process() {
    // Above any possible pid_max (2^22), so it can never exist.
    let err = snapshot(i32::MAX, None).unwrap_err();
    assert!(
        matches!(err, ProbeError::NoSuchProcess(i32::MAX)),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&i32::MAX.to_string()), "{msg}");
    assert!(msg.contains("ps -axj"), "{msg}");

    assert!(matches!(
        snapshot(0, None),
        Err(ProbeError::NoSuchProcess(0))
    ));
    assert!(matches!(read_stat(-5), Err(ProbeError::NoSuchProcess(-5))));
}

#[test]
fn child_we_spawned_is_ours_and_not_adopted() {
    let child = Reaped::spawn(Command::new("sleep").arg("5"));
    let snap = snapshot(child.pid(), Some(our_pid())).unwrap();
    assert_eq!(snap.pid, child.pid());
    assert_eq!(snap.ppid, our_pid());
    assert_eq!(snap.adopted_by, None);
    let our_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(snap.parent_comm.as_deref(), Some(our_comm.trim_end()));
}

#[test]
fn wrong_birth_parent_reports_the_actual_parent_as_adopter() {
    let child = Reaped::spawn(Command::new("sleep").arg("5"));
    // Pretend someone else created it: the probe must name the real parent (us).
    let snap = snapshot(child.pid(), Some(our_pid() + 1)).unwrap();
    let our_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(
        snap.adopted_by,
        Some(Adopter {
            pid: our_pid(),
            comm: our_comm.trim_end().to_owned(),
        })
    );
}

/// Makes this test process a subreaper for the duration of a test and reaps the orphan
/// it adopts, whatever happens.
struct AdoptedOrphan(Option<Pid>);

impl Drop for AdoptedOrphan {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(NixPid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(NixPid::from_raw(pid), None);
        }
        let _ = nix::sys::prctl::set_child_subreaper(false);
    }
}

#[test]
fn real_orphan_is_adopted_by_the_subreaper() {
    // PID 1 of a test machine may not reap, so adopt the orphan ourselves, as the lab's
    // "lab as subreaper" option does.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let mut guard = AdoptedOrphan(None);

    let mut shell = Command::new("sh")
        .args(["-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $!"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shell_pid = shell.id() as Pid;
    let mut out = String::new();
    shell
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    // By the time the shell is reaped, the kernel has already reparented its child.
    shell.wait().unwrap();
    let orphan: Pid = out.trim().parse().unwrap();
    guard.0 = Some(orphan);

    let snap = snapshot(orphan, Some(shell_pid)).unwrap();
    assert_eq!(snap.ppid, our_pid());
    let adopter = snap.adopted_by.expect("orphan must be reported as adopted");
    assert_eq!(adopter.pid, our_pid());
    let our_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(adopter.comm, our_comm.trim_end());
}

#[test]
fn zombie_is_snapshotted_not_an_error() {
    let mut child = Reaped::spawn(Command::new("sleep").arg("5"));
    child.0.kill().unwrap();
    // Not waited for yet: it stays a zombie until Reaped's drop reaps it.
    let snap = wait_for("the child to become a zombie", || {
        snapshot(child.pid(), None).ok().filter(|s| s.state == 'Z')
    });
    assert_eq!(snap.state_name, "zombie");
    assert_eq!(snap.ppid, our_pid());
}

#[test]
fn trapped_signals_show_as_ignored_and_caught() {
    // The shell stays blocked in its `read` builtin, so it has no children to orphan.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' HUP; trap ':' USR1; read line"])
        .stdin(Stdio::piped());
    let child = Reaped::spawn(&mut cmd);
    let snap = wait_for("the shell to install its traps", || {
        snapshot(child.pid(), None)
            .ok()
            .filter(|s| s.signals.caught.iter().any(|n| n == "SIGUSR1"))
    });
    assert_eq!(snap.sighup, Disposition::Ignored);
    assert!(snap.signals.ignored.iter().any(|n| n == "SIGHUP"));
    assert!(!snap.signals.caught.iter().any(|n| n == "SIGHUP"));
}
