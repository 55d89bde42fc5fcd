//! The headless commands end cleanly on SIGINT, SIGTERM, SIGHUP and `timeout`, and even
//! kill -9 leaves nothing on disk: each run gets a private TMPDIR, and within 2 s of the
//! signal no process it started is running, nothing is left in that TMPDIR, nothing is
//! mounted under it, and a socket it was given is gone.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    tmp: tempfile::TempDir,
    child: Child,
    label: String,
    /// What the command wrote to stderr so far (read on a thread).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

fn start(args: &[&str], label: &str) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::exe())
        .args(args)
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env(daemonlab::lab::experiments::PAUSE_FOR_TESTS, "6000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (mut pipe, sink) = (child.stderr.take().unwrap(), std::sync::Arc::clone(&stderr));
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Run {
        tmp,
        child,
        label: label.to_string(),
        stderr,
    }
}

impl Run {
    /// Wait until `ready` holds, or fail after 20 s.
    fn wait(&mut self, what: &str, ready: impl Fn(&Path) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(self.tmp.path()) {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "{}: exited before {what}",
                self.label
            );
            assert!(Instant::now() < deadline, "{}: never {what}", self.label);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send `signal`, then check that everything is gone within 2 s.
    fn end_with(mut self, signal: i32, extra: &[PathBuf]) {
        let pid = self.child.id() as i32;
        // SAFETY: a signal to the child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let sent = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "{}: still running 5 s after signal {signal}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let (mut procs, mut files, mut mounted, mut sockets);
        loop {
            procs = common::started_with_tmpdir(self.tmp.path());
            for &p in &procs {
                // SAFETY: waitpid on what this run started; ECHILD unless we adopted it.
                unsafe { libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG) };
            }
            files = std::fs::read_dir(self.tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect::<Vec<_>>();
            mounted = !common::mounts_under(self.tmp.path()).is_empty();
            sockets = extra
                .iter()
                .filter(|p| std::fs::symlink_metadata(p).is_ok())
                .cloned()
                .collect::<Vec<_>>();
            let clean = procs.is_empty() && files.is_empty() && !mounted && sockets.is_empty();
            if clean || sent.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let stderr = self.stderr.lock().unwrap().clone();
        let label = format!("{} after signal {signal} ({status:?})", self.label);
        assert!(procs.is_empty(), "{label}: processes left: {procs:?}");
        assert!(files.is_empty(), "{label}: left in TMPDIR: {files:?}");
        assert!(!mounted, "{label}: a mount is left under TMPDIR");
        assert!(sockets.is_empty(), "{label}: left: {sockets:?}");
        assert!(!stderr.contains("panicked"), "{label}: {stderr}");
    }
}

const SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGKILL];

fn has_runtime_dir(tmp: &Path) -> bool {
    std::fs::read_dir(tmp).is_ok_and(|mut d| d.next().is_some())
}

#[test]
fn tour_pause_waiting_at_a_prompt() {
    common::become_subreaper();
    for signal in SIGNALS {
        let mut run = start(&["tour", "--pause"], "tour --pause");
        run.wait("started its lab", |tmp| {
            common::started_with_tmpdir(tmp).len() >= 3 && has_runtime_dir(tmp)
        });
        run.end_with(signal, &[]);
    }
}

#[test]
fn tour_experiment_with_its_tmpfs_mounted_or_its_lab_running() {
    common::become_subreaper();
    let root = nix::unistd::geteuid().is_root();
    for signal in SIGNALS {
        let mut run = start(
            &["tour", "--experiment", "no-chdir"],
            "tour --experiment no-chdir",
        );
        run.wait("mounted its tmpfs", |tmp| {
            if root {
                !common::mounts_under(tmp).is_empty()
            } else {
                common::started_with_tmpdir(tmp).len() >= 4
            }
        });
        run.end_with(signal, &[]);
    }
}

#[test]
fn locks_race_ended_early_as_timeout_does() {
    common::become_subreaper();
    for signal in SIGNALS {
        for delay in [5, 25, 45] {
            let run = start(
                &["locks", "race", "--contenders", "10", "--mode", "wait"],
                &format!("locks race, signalled after {delay} ms"),
            );
            std::thread::sleep(Duration::from_millis(delay));
            run.end_with(signal, &[]);
        }
    }
}

#[test]
fn locks_hold_holding_its_pid_file() {
    common::become_subreaper();
    for signal in SIGNALS {
        let mut run = start(&["locks", "hold"], "locks hold");
        run.wait("wrote its pid file", |tmp| {
            std::fs::read_dir(tmp)
                .into_iter()
                .flatten()
                .flatten()
                .any(|d| d.path().join("daemonlab.pid").exists())
        });
        run.end_with(signal, &[]);
    }
}

#[test]
fn syslogd_removes_its_socket_on_every_signal_even_kill_9() {
    common::become_subreaper();
    for signal in SIGNALS {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log");
        let s = socket.to_str().unwrap().to_string();
        let mut run = start(&["syslogd", "--socket", &s], "syslogd");
        // It says so once the socket is bound and in its janitor's hands.
        let said = std::sync::Arc::clone(&run.stderr);
        run.wait("bound its socket", |_| {
            said.lock().unwrap().contains("listening on")
        });
        assert!(socket.exists());
        run.end_with(signal, std::slice::from_ref(&socket));
    }
}

#[test]
fn system_mode_leaves_no_stale_dev_log_after_kill_9() {
    let dev_log = Path::new("/dev/log");
    if std::fs::symlink_metadata(dev_log).is_ok() || !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIPPED system_mode_leaves_no_stale_dev_log_after_kill_9: /dev/log exists or we are not root, \
             so the lab would not bind it"
        );
        return;
    }
    common::become_subreaper();
    let mut run = start(
        &["tour", "--pause", "--syslog", "system"],
        "tour --syslog system",
    );
    run.wait("bound /dev/log", |_| {
        std::fs::symlink_metadata(dev_log).is_ok()
    });
    run.end_with(libc::SIGKILL, &[dev_log.to_path_buf()]);
}

#[test]
fn a_umask_of_777_still_gives_a_working_0700_runtime_directory() {
    common::become_subreaper();
    let tmp = tempfile::tempdir().unwrap();
    let script = "umask 777; \"$0\" tour >/dev/null && \"$0\" locks race --contenders 5";
    let out = Command::new("sh")
        .args(["-c", script])
        .arg(common::exe())
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("exactly one contender holds the lock"),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left: {left:?}");

    // Its mode, while a holder keeps it (root would not notice a 0000 directory otherwise).
    let mut hold = Command::new("sh")
        .args(["-c", "umask 777; exec \"$0\" locks hold"])
        .arg(common::exe())
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let dir = loop {
        if let Some(d) = std::fs::read_dir(tmp.path()).unwrap().flatten().next() {
            break d.path();
        }
        assert!(Instant::now() < deadline, "locks hold made no directory");
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(&dir)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    drop(hold.stdin.take());
    let _ = hold.wait();
    assert_eq!(mode, 0o700, "{} under umask 777", dir.display());
}

#[test]
fn an_empty_tmpdir_counts_as_unset_and_never_means_the_current_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(common::exe())
        .args(["locks", "race", "--contenders", "3"])
        .current_dir(cwd.path())
        .env("TMPDIR", "")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("/tmp/daemonlab-"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "made in the current directory: {left:?}");
}
