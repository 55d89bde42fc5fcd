//! Every way the explorer can end, in every awkward moment, leaves nothing behind.
//!
//! Exit paths: q, Ctrl-C, SIGTERM, SIGHUP, the terminal going away (its pty master
//! closed, as when a window is closed), the same under a parent shell that ignores SIGHUP,
//! a panic, and kill -9. Moments: mid-step, right after a fork step, ten contenders
//! blocked in F_SETLKW, an experiment running (no-chdir, with its tmpfs mounted and busy).
//! After each: within 2 s, no process the run started (found by the private TMPDIR in its
//! environment), nothing in that TMPDIR (runtime directory, sockets, pid files) and no
//! mount under it.
//!
//! The pty is opened here rather than through portable-pty so that the test can close
//! every descriptor of the master at a moment of its choosing: that is what a terminal
//! emulator's window closing does.

mod common;

use std::io::Write;
use std::num::NonZeroU16;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// The app (or its wrapper shell) on a pty this test owns.
struct Term {
    master: Option<OwnedFd>,
    child: Child,
    screen: Arc<Mutex<vt100::Parser>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Term {
    fn spawn(mut command: Command) -> Term {
        let master = common::pty::attach_new_pty(&mut command, ROWS, COLS);
        let child = command.spawn().expect("start the program on the pty");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(ROWS).unwrap(),
            NonZeroU16::new(COLS).unwrap(),
            0,
        )));
        let stop = Arc::new(AtomicBool::new(false));
        let reader_fd = master.try_clone().unwrap();
        let (sink, stopped) = (Arc::clone(&screen), Arc::clone(&stop));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while !stopped.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(reader_fd.as_fd(), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, PollTimeout::from(20u8)), Ok(1..)) {
                    continue;
                }
                match nix::unistd::read(&reader_fd, &mut buf) {
                    Ok(n @ 1..) => sink.lock().unwrap().process(&buf[..n]),
                    _ => break,
                }
            }
        });
        Term {
            master: Some(master),
            child,
            screen,
            stop,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait(&mut self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while !ready(&self.text()) {
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                panic!("timed out waiting for {what}; screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn press(&mut self, keys: &[u8]) {
        let master = self.master.as_ref().expect("the terminal is open");
        let mut file = std::fs::File::from(master.try_clone().unwrap());
        file.write_all(keys).unwrap();
    }

    /// Close every descriptor of the master, as a closed terminal window does.
    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        drop(self.master.take());
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.close();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    MidStep,
    AfterFork,
    TenWaiters,
    Experiment,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ExitPath {
    Quit,
    CtrlC,
    Sigterm,
    Sighup,
    TerminalClosed,
    TerminalClosedParentIgnoresHup,
    Panic,
    Kill9,
}

const MOMENTS: [Moment; 4] = [
    Moment::MidStep,
    Moment::AfterFork,
    Moment::TenWaiters,
    Moment::Experiment,
];

/// The app itself: the child, or the wrapper shell's daemonlab child.
fn app_pid(term: &Term, tmp: &Path, wrapped: bool) -> i32 {
    let shell = term.child.id() as i32;
    if !wrapped {
        return shell;
    }
    common::started_with_tmpdir(tmp)
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(shell)
            })
        })
        .expect("the shell started the app")
}

fn run(moment: Moment, path: ExitPath) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("daemonlab.log");
    let wrapped = path == ExitPath::TerminalClosedParentIgnoresHup;
    let mut command = if wrapped {
        let shell = ["/bin/bash", "/usr/bin/bash", "/bin/sh"]
            .into_iter()
            .find(|s| Path::new(s).exists())
            .expect("a shell");
        let mut c = Command::new(shell);
        // The shell stays the session leader and ignores the hangup; the app is its job.
        c.args(["-c", "trap '' HUP; \"$0\" \"$@\"; true"])
            .arg(common::exe());
        c
    } else {
        Command::new(common::exe())
    };
    command
        .arg("--log")
        .arg(&log)
        .arg("--log-level")
        .arg("debug")
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env("TERM", "xterm-256color")
        .env(daemonlab::lab::experiments::PAUSE_FOR_TESTS, "6000")
        .env("RUST_BACKTRACE", "0");
    if path == ExitPath::Panic {
        command.env(daemonlab::ui::PANIC_FOR_TESTS, "on-key");
    }
    let label = format!("{moment:?} then {path:?}");
    let mut term = Term::spawn(command);
    let long = Duration::from_secs(20);
    term.wait(&format!("{label}: first snapshot"), long, |t| {
        common::number_after(t, "subject ").is_some_and(|pid| t.contains(&format!("PID {pid} ")))
    });
    match moment {
        Moment::MidStep => term.press(b" "),
        Moment::AfterFork => {
            for done in 1..=4 {
                term.press(b" ");
                term.wait(&format!("{label}: {done} steps"), long, |t| {
                    t.matches('✓').count() == done
                });
            }
        }
        Moment::TenWaiters => {
            term.press(b"2");
            term.press(b"w");
            term.press(b"C");
            let deadline = Instant::now() + long;
            // The subject, the stand-in, the janitor, and ten contenders.
            while common::started_with_tmpdir(tmp.path()).len() < 13 {
                assert!(
                    Instant::now() < deadline,
                    "{label}: ten contenders never ran"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Moment::Experiment => {
            term.press(b"x");
            term.press(b"jjj");
            term.press(b"\r");
            let deadline = Instant::now() + long;
            let root = nix::unistd::geteuid().is_root();
            // Root: wait for the tmpfs; otherwise for the experiment's own lab.
            while if root {
                common::mounts_under(tmp.path()).is_empty()
            } else {
                common::started_with_tmpdir(tmp.path()).len() < 6
            } {
                assert!(
                    Instant::now() < deadline,
                    "{label}: the experiment never got going"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let app = app_pid(&term, tmp.path(), wrapped);
    let signal = |s| {
        // SAFETY: a signal to the app this test started; it cannot have been reaped, as
        // its parent (this test, or the wrapper shell that waits for it) has not waited.
        assert_eq!(unsafe { libc::kill(app, s) }, 0, "{label}: kill");
    };
    let started = Instant::now();
    match path {
        ExitPath::Quit => term.press(b"q"),
        ExitPath::CtrlC => term.press(b"\x03"),
        ExitPath::Sigterm => signal(libc::SIGTERM),
        ExitPath::Sighup => signal(libc::SIGHUP),
        ExitPath::TerminalClosed | ExitPath::TerminalClosedParentIgnoresHup => term.close(),
        ExitPath::Panic => term.press(b"\x1b[24~"),
        ExitPath::Kill9 => signal(libc::SIGKILL),
    }
    // The app (or the wrapper) ends; a hung one fails the test rather than hanging it.
    let status = loop {
        if let Some(status) = term.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{label}: still running 10 s later; screen:\n{}",
            term.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let exited_after = started.elapsed();
    // Within 2 s of the exit action, nothing is left.
    let (mut procs, mut files, mut mounts);
    loop {
        procs = common::started_with_tmpdir(tmp.path());
        for &pid in &procs {
            // SAFETY: waitpid on processes this run started; only orphans this test
            // adopted as their subreaper are reaped, the others give ECHILD.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        files = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<PathBuf>>();
        mounts = common::mounts_under(tmp.path());
        if (procs.is_empty() && files.is_empty() && mounts.is_empty())
            || started.elapsed() > Duration::from_secs(2)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "{label}: exit {:?} signal {:?} after {exited_after:?}; clean after {:?}",
        status.code(),
        status.signal(),
        started.elapsed()
    );
    // The explorer answers at once whatever it is doing: q is not queued behind an
    // experiment, a signal not behind a lab that is still starting.
    assert!(
        exited_after < Duration::from_secs(2),
        "{label}: the app took {exited_after:?} to exit"
    );
    assert!(
        procs.is_empty(),
        "{label}: processes left after 2 s: {procs:?}"
    );
    assert!(
        files.is_empty(),
        "{label}: left on disk after 2 s: {files:?}"
    );
    assert!(
        mounts.is_empty(),
        "{label}: still mounted after 2 s: {mounts:?}"
    );
    assert_ne!(status.signal(), Some(libc::SIGABRT), "{label}: aborted");
    assert!(
        !logged.contains("panicked") || path == ExitPath::Panic,
        "{label}: a panic in the log:\n{logged}"
    );
    match path {
        ExitPath::Quit | ExitPath::CtrlC => assert_eq!(status.code(), Some(0), "{label}"),
        ExitPath::Sigterm => assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{label}"),
        ExitPath::Sighup => assert_eq!(status.code(), Some(128 + libc::SIGHUP), "{label}"),
        ExitPath::Kill9 => assert_eq!(status.signal(), Some(libc::SIGKILL), "{label}"),
        ExitPath::Panic => assert_ne!(status.code(), Some(0), "{label}: a panic is a failure"),
        ExitPath::TerminalClosed | ExitPath::TerminalClosedParentIgnoresHup => {
            assert!(
                !matches!(status.code(), Some(101 | 134)),
                "{label}: {status:?}"
            );
        }
    }
}

fn every_moment(path: ExitPath) {
    common::become_subreaper();
    for moment in MOMENTS {
        run(moment, path);
    }
}

#[test]
fn q_leaves_nothing() {
    every_moment(ExitPath::Quit);
}

#[test]
fn ctrl_c_leaves_nothing() {
    every_moment(ExitPath::CtrlC);
}

#[test]
fn sigterm_leaves_nothing() {
    every_moment(ExitPath::Sigterm);
}

#[test]
fn sighup_leaves_nothing() {
    every_moment(ExitPath::Sighup);
}

#[test]
fn a_closed_terminal_leaves_nothing() {
    every_moment(ExitPath::TerminalClosed);
}

#[test]
fn a_closed_terminal_under_a_shell_that_ignores_sighup_leaves_nothing() {
    every_moment(ExitPath::TerminalClosedParentIgnoresHup);
}

#[test]
fn a_panic_leaves_nothing() {
    every_moment(ExitPath::Panic);
}

#[test]
fn kill_9_leaves_nothing() {
    every_moment(ExitPath::Kill9);
}
