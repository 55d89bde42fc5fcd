//! The headless `locks race` and `locks hold` logic, and that a held lock is an ordinary
//! kernel lock other programs see.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daemonlab::locks::cli::{HoldOptions, RaceOptions, StopHandle, hold, race};
use daemonlab::locks::{LockKind, LockMode};

#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Hold the lock on a thread of this process while `check` looks from outside.
fn while_held(kind: LockKind, check: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("held.pid");
    let stop = StopHandle::new();
    let out = Output::default();
    let opts = HoldOptions {
        pidfile: pidfile.clone(),
        kind,
        mode: LockMode::Try,
        json: false,
    };
    let (thread_stop, mut thread_out) = (stop.clone(), out.clone());
    let holder = std::thread::spawn(move || hold(opts, &mut thread_out, &thread_stop).unwrap());
    let text = out.wait_for("releases it");
    assert!(text.contains("holding"), "{text}");
    check(&pidfile);
    stop.stop();
    assert!(holder.join().unwrap());
}

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_held_lock_shows_in_lslocks() {
    if !available("lslocks") {
        eprintln!("skipped: lslocks (util-linux) is not installed");
        return;
    }
    for kind in LockKind::ALL {
        while_held(kind, |pidfile| {
            let out = Command::new("lslocks")
                .args(["--noheadings", "--raw", "--output", "TYPE,PID,INODE,PATH"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(pidfile).unwrap());
            // OFD locks have no owning process: lslocks shows pid -1 and cannot name the
            // path, so match on type and inode.
            let line = text.lines().find(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.first() == Some(&kind.proc_class())
                    && fields.get(2) == Some(&inode.to_string().as_str())
            });
            assert!(line.is_some(), "{kind}: lslocks said:\n{text}");
        });
    }
}

#[test]
fn another_language_fcntl_is_refused_while_held() {
    if !available("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    // POSIX locks of another process and OFD locks conflict with each other, so Python's
    // lockf (F_SETLK) is refused by both.
    for kind in [LockKind::Fcntl, LockKind::Ofd] {
        while_held(kind, |pidfile| {
            let out = Command::new("python3")
                .arg("-c")
                .arg(
                    "import fcntl, sys\n\
                     f = open(sys.argv[1], 'r+')\n\
                     try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('got it')\n\
                     except OSError as e:\n    print('refused', e.errno)\n",
                )
                .arg(pidfile)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.starts_with("refused"), "{kind}: python said {text}");
        });
    }
}

#[test]
fn flock_1_is_refused_while_a_flock_lock_is_held() {
    if !available("flock") {
        eprintln!("skipped: flock(1) from util-linux is not installed");
        return;
    }
    while_held(LockKind::Flock, |pidfile| {
        let status = Command::new("flock")
            .arg("--nonblock")
            .arg("--conflict-exit-code")
            .arg("42")
            .arg(pidfile)
            .arg("true")
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(42));
    });
}

#[test]

fn race_reports_exactly_one_holder_for_each_kind() {
    for kind in LockKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RaceOptions::new(common::exe(), dir.path().join("race.pid"));
        opts.contenders = 50;
        opts.kind = kind;
        let mut out = Vec::new();
        assert!(race(opts, &mut out).unwrap(), "{kind}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("holding the lock").count(), 1, "{text}");
        assert_eq!(
            text.matches("refused: already running as pid").count(),
            49,
            "{text}"
        );
        assert!(
            text.contains("result: exactly one contender holds the lock"),
            "{text}"
        );
        assert!(text.contains("/proc/locks holder:"), "{text}");
    }
}

#[test]

fn race_in_wait_mode_prints_json_with_the_kernel_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = RaceOptions::new(common::exe(), dir.path().join("race.pid"));
    opts.contenders = 4;
    opts.mode = LockMode::Wait;
    opts.json = true;
    let mut out = Vec::new();
    assert!(race(opts, &mut out).unwrap());
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[..4].iter().all(|l| l["type"] == "contender"));
    assert_eq!(
        lines[..4]
            .iter()
            .filter(|l| l["state"] == "Waiting")
            .count(),
        3
    );
    assert_eq!(lines[4]["type"], "evidence");
    assert_eq!(lines[4]["table"]["waiters"].as_array().unwrap().len(), 3);
    assert_eq!(lines[5]["type"], "result");
    assert_eq!(lines[5]["exactly_one"], true);
}

#[test]
fn race_with_a_missing_binary_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RaceOptions::new("/nonexistent/daemonlab".into(), dir.path().join("race.pid"));
    let error = race(opts, &mut Vec::new()).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/daemonlab"),
        "{error}"
    );
}

/// `daemonlab locks hold … &` in a script has /dev/null on stdin: it must keep holding
/// until a signal, not take the empty stdin for Ctrl-D. A pipe still ends it at EOF.
#[test]
fn hold_with_dev_null_stdin_holds_until_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("demo.pid");
    let mut child = Command::new(common::exe())
        .args(["locks", "hold", "--pidfile"])
        .arg(&pidfile)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pidfile).unwrap_or_default().trim() != pid.to_string() {
        assert!(Instant::now() < deadline, "the pid file never named {pid}");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "hold ended although only its /dev/null stdin was at its end"
    );
    // A race against it: every contender is refused, and the result names the holder.
    let race = Command::new(common::exe())
        .args(["locks", "race", "--contenders", "3", "--pidfile"])
        .arg(&pidfile)
        .output()
        .unwrap();
    assert_eq!(race.status.code(), Some(1));
    let text = String::from_utf8_lossy(&race.stdout);
    assert!(
        text.contains(&format!("pid {pid}, not one of them, holds it")),
        "{text}"
    );
    let json = Command::new(common::exe())
        .args([
            "locks",
            "race",
            "--contenders",
            "2",
            "--format",
            "json",
            "--pidfile",
        ])
        .arg(&pidfile)
        .output()
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&json.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["outside_holder"], pid, "{last}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("holding") && text.contains("released"),
        "{text}"
    );

    // A pipe is a lifeline: closing it ends the hold.
    let mut piped = Command::new(common::exe())
        .args(["locks", "hold", "--pidfile"])
        .arg(&pidfile)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(piped.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    while piped.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "hold kept running after its stdin pipe closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
