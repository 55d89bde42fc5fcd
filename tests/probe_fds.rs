//! The descriptor table of a snapshot against the process's own word for it: a C program
//! compiled here (cc is there wherever cargo links; skipped loudly if not) opens files,
//! pipes and a locked file, some with close-on-exec and some without, and reports what
//! fcntl(F_GETFD) says of every descriptor it has. Small tables are read by one thread and
//! large ones by several; both must give the same, complete, ordered table. Every process
//! started here is ended by its PID.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use daemonlab::probe::{FdEntry, snapshot};

const HOLDER: &str = r#"
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

/* Usage: holder N DIR [holes]. Opens about N descriptors: /dev/null, files of DIR (one of
   them flock()ed), pipes; every third with O_CLOEXEC. With "holes", then closes every
   descriptor whose number ends in 42 modulo 100. Then prints "fd cloexec" for each open
   descriptor as fcntl(F_GETFD) reports it, "ready", and waits for its stdin to close. */
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    char path[4096];
    for (int i = 0; i < n; i++) {
        int flags = (i % 3 == 0) ? O_CLOEXEC : 0;
        int fd;
        if (i % 50 == 7) {
            int p[2];
            if (pipe2(p, flags) != 0) return 2;
            i++;
            continue;
        } else if (i % 10 == 3) {
            snprintf(path, sizeof path, "%s/file-%d", argv[2], i);
            fd = open(path, O_RDWR | O_CREAT | flags, 0600);
            if (i == 3 && flock(fd, LOCK_EX) != 0) return 3;
        } else {
            fd = open("/dev/null", O_RDONLY | flags);
        }
        if (fd < 0) return 4;
    }
    if (argc > 3)
        for (int fd = 42; fd < n; fd += 100) close(fd);
    for (int fd = 0; fd < 65536; fd++) {
        int got = fcntl(fd, F_GETFD);
        if (got >= 0) printf("%d %d\n", fd, (got & FD_CLOEXEC) ? 1 : 0);
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {}
    return 0;
}
"#;

/// The compiled holder, or `None` (and a loud skip) without a C compiler.
fn holder_exe() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| common::cc::build("fdh", HOLDER))
        .as_deref()
}

/// A running holder, killed by its PID when dropped.
struct Holder {
    child: Child,
    /// (fd, close-on-exec) as the holder's own fcntl(F_GETFD) saw them.
    own_view: Vec<(i32, bool)>,
    _dir: tempfile::TempDir,
}

impl Holder {
    fn start(n: usize, holes: bool) -> Option<Holder> {
        let exe = holder_exe()?;
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(exe)
            .arg(n.to_string())
            .arg(dir.path())
            .args(holes.then_some("holes"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut own_view = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines.next().expect("the holder reports").unwrap();
            if line == "ready" {
                break;
            }
            let (fd, cloexec) = line.split_once(' ').unwrap();
            own_view.push((fd.parse().unwrap(), cloexec == "1"));
        }
        Some(Holder {
            child,
            own_view,
            _dir: dir,
        })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A snapshot's table matches the holder's own view and readlink of each descriptor.
fn check_table(n: usize, holes: bool) {
    let Some(holder) = Holder::start(n, holes) else {
        return;
    };
    let closed = if holes { n / 100 } else { 0 };
    assert!(
        holder.own_view.len() >= n - closed,
        "{} fds",
        holder.own_view.len()
    );
    let snap = snapshot(holder.pid(), None).unwrap();
    let fds: &[FdEntry] = snap.fds.as_deref().expect("the table is readable");
    let seen: Vec<(i32, bool)> = fds.iter().map(|f| (f.fd, f.cloexec)).collect();
    assert_eq!(
        seen, holder.own_view,
        "fd numbers and close-on-exec, in order"
    );
    for fd in fds {
        let link = std::fs::read_link(format!("/proc/{}/fd/{}", holder.pid(), fd.fd)).unwrap();
        assert_eq!(fd.target, link.to_string_lossy(), "target of fd {}", fd.fd);
    }
    let locked: Vec<i32> = fds
        .iter()
        .filter(|f| f.lock_lines.as_deref().is_some_and(|l| l.contains("FLOCK")))
        .map(|f| f.fd)
        .collect();
    assert_eq!(locked.len(), 1, "exactly the flock()ed file: {locked:?}");
    assert!(fds[locked[0] as usize].target.ends_with("/file-3"));
}

#[test]
fn a_table_of_a_few_descriptors_is_read_whole() {
    // Below a dozen descriptors the fdinfo files are opened as "fdinfo/N" below
    // /proc/PID rather than below an fdinfo directory fd.
    check_table(4, false);
}

#[test]
fn a_small_table_is_read_whole() {
    check_table(40, false);
}

#[test]
fn a_large_table_shared_among_threads_is_read_whole_and_in_order() {
    check_table(1500, false);
}

#[test]
fn a_nearly_full_table_is_read_by_number_holes_left_out() {
    // About 1 000 descriptors in a table with room for 1 024: the numbers are looked up
    // one by one instead of listed, and the closed ones (42, 142, …) must be left out
    // without ending the read.
    check_table(1000, true);
    check_table(1000, false);
}

#[test]
fn the_other_end_of_a_pipe_is_named_by_pid() {
    let Some(exe) = holder_exe() else {
        return;
    };
    // b writes into a pipe that a reads; the test keeps no end of it, so a and b are its
    // only holders. b's stdin is a pipe of ours, which keeps it waiting.
    let (reader, writer) = std::io::pipe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spawn = |stdin: Stdio, stdout: Stdio| {
        Command::new(exe)
            .arg("5")
            .arg(dir.path())
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .unwrap()
    };
    let mut a = spawn(reader.into(), Stdio::null());
    let mut b = spawn(Stdio::piped(), writer.into());
    let (pa, pb) = (a.id() as i32, b.id() as i32);
    for (me, fd, other) in [(pa, 0, pb), (pb, 1, pa)] {
        let audit = daemonlab::audit::inspect(me).unwrap();
        let text = daemonlab::audit::text_report(&audit);
        // "(pid N)", or "(pid N, a fellow worker)" where the test's own session lies
        // outside the PID namespace and its children count as a daemon's workers.
        let said = format!(
            "{fd} → a pipe shared with fdh-{} (pid {other}",
            std::process::id()
        );
        assert!(
            text.contains(&said),
            "{me} names {other}: {said:?} in\n{text}"
        );
    }
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
