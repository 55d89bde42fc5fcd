//! `probe::Watch`, which keeps a process's /proc files open between snapshots, against
//! a fresh one-off `probe::snapshot` of the same moment and against what the process
//! itself did. The process is a C program compiled here (cc is there wherever cargo
//! links; skipped loudly if not) that changes itself on command: opens, closes and
//! re-uses descriptor numbers, flips close-on-exec, sets its umask, changes directory,
//! ignores SIGHUP, calls setsid. A kept file that went stale would show the old state.
//! Every process started here is ended by its PID.

mod common;

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use daemonlab::probe::{Disposition, ProbeError, ProcSnapshot, Watch, read_stat, snapshot};

const CHANGER: &str = r#"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads one command a line from stdin, carries it out, answers "ok" (or "err") on
   stdout:  open PATH FD | close FD | cloexec FD 0|1 | many N | umask OCTAL | chdir PATH |
   sighup ign|dfl | setsid | nop */
int main(void) {
    char line[4096], a[4096];
    int n, m;
    setvbuf(stdout, NULL, _IONBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        int ok = 1;
        if (sscanf(line, "open %4095s %d", a, &n) == 2) {
            int fd = open(a, O_RDONLY);
            ok = fd >= 0 && dup2(fd, n) == n;
            if (fd != n) close(fd);
        } else if (sscanf(line, "close %d", &n) == 1) {
            ok = close(n) == 0;
        } else if (sscanf(line, "cloexec %d %d", &n, &m) == 2) {
            ok = fcntl(n, F_SETFD, m ? FD_CLOEXEC : 0) == 0;
        } else if (sscanf(line, "many %d", &n) == 1) {
            for (int i = 0; i < n && ok; i++) ok = dup2(0, 100 + i) == 100 + i;
        } else if (sscanf(line, "unmany %d", &n) == 1) {
            for (int i = 0; i < n; i++) close(100 + i);
        } else if (sscanf(line, "umask %o", (unsigned *)&n) == 1) {
            umask(n);
        } else if (sscanf(line, "chdir %4095s", a) == 1) {
            ok = chdir(a) == 0;
        } else if (strncmp(line, "sighup ign", 10) == 0) {
            signal(SIGHUP, SIG_IGN);
        } else if (strncmp(line, "sighup dfl", 10) == 0) {
            signal(SIGHUP, SIG_DFL);
        } else if (strncmp(line, "nop", 3) == 0) {
        } else if (strncmp(line, "setsid", 6) == 0) {
            ok = setsid() == getpid();
        } else {
            ok = 0;
        }
        fputs(ok ? "ok\n" : "err\n", stdout);
    }
    return 0;
}
"#;

/// The compiled changer, or `None` (and a loud skip) without a C compiler.
fn changer_exe() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| common::cc::build("watch-changer", CHANGER))
        .as_deref()
}

/// A running changer, killed and reaped by its PID when dropped.
struct Changer {
    child: Child,
    input: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
}

impl Changer {
    fn start() -> Option<Changer> {
        let mut child = Command::new(changer_exe()?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let answers = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut changer = Changer {
            child,
            input,
            answers,
        };
        // Its first answer says it is in its loop, past the start-up of the program.
        changer.run("nop");
        Some(changer)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Carry out `command`, and wait until the changer sleeps in its next read, so that
    /// two snapshots in a row see the same process.
    fn run(&mut self, command: &str) {
        writeln!(self.input, "{command}").unwrap();
        let answer = self.answers.next().expect("the changer answers").unwrap();
        assert_eq!(answer, "ok", "{command}");
        self.settle();
    }

    /// Wait until it sleeps, waiting for its next command.
    fn settle(&self) {
        let since = Instant::now();
        while read_stat(self.pid()).unwrap().state == 'R' {
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "changer never sleeps"
            );
            std::thread::yield_now();
        }
    }
}

impl Drop for Changer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The watched snapshot, checked equal to a fresh one-off snapshot taken right after.
fn both(watch: &mut Watch, pid: i32) -> ProcSnapshot {
    let watched = watch.snapshot(Some(std::process::id() as i32)).unwrap();
    let fresh = snapshot(pid, Some(std::process::id() as i32)).unwrap();
    assert_eq!(watched, fresh, "kept files against a fresh read");
    watched
}

fn fd_of(snap: &ProcSnapshot, fd: i32) -> Option<(&str, bool)> {
    snap.fds
        .as_deref()
        .unwrap()
        .iter()
        .find(|f| f.fd == fd)
        .map(|f| (f.target.as_str(), f.cloexec))
}

#[test]
fn a_watched_process_shows_every_change_as_a_fresh_read_does() {
    let Some(mut changer) = Changer::start() else {
        return;
    };
    let pid = changer.pid();
    let mut watch = Watch::open(pid).unwrap();
    assert_eq!(watch.pid(), pid);
    let first = both(&mut watch, pid);
    assert_eq!(fd_of(&first, 7), None);

    // A new descriptor, then its number re-used for another file with other flags: the
    // fdinfo file kept for number 7 must show the new file's flags.
    changer.run("open /etc/passwd 7");
    assert_eq!(
        fd_of(&both(&mut watch, pid), 7),
        Some(("/etc/passwd", false))
    );
    changer.run("cloexec 7 1");
    assert_eq!(
        fd_of(&both(&mut watch, pid), 7),
        Some(("/etc/passwd", true))
    );
    changer.run("close 7");
    assert_eq!(fd_of(&both(&mut watch, pid), 7), None);
    changer.run("open /dev/null 7");
    assert_eq!(fd_of(&both(&mut watch, pid), 7), Some(("/dev/null", false)));
    changer.run("cloexec 7 1");
    changer.run("close 7");
    changer.run("open /etc/hostname 7");
    assert_eq!(
        fd_of(&both(&mut watch, pid), 7),
        Some(("/etc/hostname", false))
    );

    // More descriptors than are kept open, and back.
    changer.run("many 100");
    let many = both(&mut watch, pid);
    assert!(many.fds.as_ref().unwrap().len() >= 100);
    assert_eq!(fd_of(&many, 150).map(|f| f.0), fd_of(&many, 0).map(|f| f.0));
    changer.run("unmany 100");
    assert_eq!(fd_of(&both(&mut watch, pid), 150), None);

    // What status, the links and stat say.
    changer.run("umask 027");
    assert_eq!(both(&mut watch, pid).umask, Some(0o027));
    changer.run("chdir /");
    assert_eq!(both(&mut watch, pid).cwd.as_deref(), Some("/"));
    changer.run("sighup ign");
    assert_eq!(both(&mut watch, pid).sighup, Disposition::Ignored);
    changer.run("sighup dfl");
    assert_eq!(both(&mut watch, pid).sighup, Disposition::Default);
    changer.run("setsid");
    let leader = both(&mut watch, pid);
    assert!(leader.session_leader && leader.sid == pid, "{leader:?}");
    assert_eq!(leader.tty, None);
    assert!(watch.stat().unwrap().sid == pid);
}

#[test]
fn a_watched_process_that_dies_is_shown_a_zombie_then_gone() {
    let Some(mut changer) = Changer::start() else {
        return;
    };
    let pid = changer.pid();
    let mut watch = Watch::open(pid).unwrap();
    both(&mut watch, pid);
    changer.child.kill().unwrap();
    // Dead but not reaped: a zombie, shown as a fresh read shows it.
    let since = Instant::now();
    while read_stat(pid).unwrap().state != 'Z' {
        assert!(since.elapsed() < Duration::from_secs(5), "never a zombie");
        std::thread::yield_now();
    }
    let zombie = both(&mut watch, pid);
    assert_eq!(zombie.state, 'Z');
    changer.child.wait().unwrap();
    // Reaped: the kept files now belong to no process, whoever gets the PID next.
    let err = watch.snapshot(None).unwrap_err();
    assert!(
        matches!(err, ProbeError::NoSuchProcess(p) if p == pid),
        "{err}"
    );
    assert!(matches!(watch.stat(), Err(ProbeError::NoSuchProcess(_))));
    assert!(matches!(
        Watch::open(pid),
        Err(ProbeError::NoSuchProcess(_))
    ));
}
