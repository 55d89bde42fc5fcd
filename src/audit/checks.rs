//! The daemon rules of APUE chapter 13, each judged from what the kernel reports.
//!
//! Every check is a pure function of [`Facts`], so the wording can be tested on made-up
//! processes; only [`Facts::gather`] touches /proc.

use std::collections::HashMap;

use super::proc_extra::{self, StatExtra};
use super::unix_diag::{self, UnixSocket};
use super::{Check, Status};
use crate::locks::proc_locks::LockEntry;
use crate::probe::{Disposition, FdEntry, ProcSnapshot, format_umask};

/// What to say when /proc refuses us a part of another user's process.
pub(crate) const NOT_READABLE: &str = "not readable as this user: run as its owner or root";

/// Shells: a process whose parent is one of these is still a job of an interactive session.
const SHELLS: &[&str] = &["bash", "zsh", "sh", "fish", "dash", "ksh", "tcsh", "csh"];
/// Init systems and supervisors: a daemon is expected to be their child.
const SERVICE_MANAGERS: &[&str] = &[
    "systemd",
    "init",
    "tini",
    "dumb-init",
    "runit",
    "runsv",
    "s6-supervise",
    "supervisord",
    "launchd",
    "openrc-run",
    "containerd-shim",
    "catatonit",
];

/// Everything the checks look at, gathered once.
pub(crate) struct Facts {
    pub snap: ProcSnapshot,
    pub extra: Option<StatExtra>,
    /// The fd table exists but /proc denied it to us.
    pub fds_denied: bool,
    /// Unix sockets of the namespace by inode, or why they could not be listed.
    pub unix: Result<HashMap<u64, UnixSocket>, String>,
    /// Locks the fd table shows, per fd (from fdinfo `lock:` lines).
    pub fd_locks: Vec<(FdEntry, Vec<LockEntry>)>,
    /// /proc/locks lines naming the PID (POSIX and FLOCK record the locker's pid).
    pub pid_locks: Vec<LockEntry>,
}

impl Facts {
    /// Read what the snapshot lacks: stat flags, sockets, locks.
    pub(crate) fn gather(snap: ProcSnapshot, extra: Option<StatExtra>) -> Facts {
        let pid = snap.pid;
        let fds_denied = snap.fds.is_none() && proc_extra::fd_table_denied(pid);
        let unix = if snap
            .fds
            .iter()
            .flatten()
            .any(|fd| fd.target.starts_with("socket:"))
        {
            unix_diag::dump().map_err(|e| e.to_string())
        } else {
            Ok(HashMap::new())
        };
        let fd_locks: Vec<(FdEntry, Vec<LockEntry>)> = snap
            .fds
            .iter()
            .flatten()
            .filter_map(|fd| {
                let locks = proc_extra::fd_locks(pid, fd.fd)?;
                (!locks.is_empty()).then(|| (fd.clone(), locks))
            })
            .collect();
        let mut fd_locks: Vec<(FdEntry, Vec<LockEntry>)> = fd_locks;
        let pid_locks: Vec<LockEntry> = crate::locks::proc_locks::read()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.pid == pid && !e.waiter)
            .collect();
        if fd_locks.is_empty() {
            // Kernels before 4.5 print no `lock:` lines in fdinfo: find the locked file
            // among the descriptors by device and inode instead.
            for fd in snap.fds.iter().flatten() {
                let Some(id) = proc_extra::fd_file_id(pid, fd.fd) else {
                    continue;
                };
                let held: Vec<LockEntry> = pid_locks
                    .iter()
                    .filter(|l| id.matches(l))
                    .cloned()
                    .collect();
                if !held.is_empty() {
                    fd_locks.push((fd.clone(), held));
                }
            }
        }
        Facts {
            snap,
            extra,
            fds_denied,
            unix,
            fd_locks,
            pid_locks,
        }
    }

    fn zombie(&self) -> bool {
        self.snap.state == 'Z'
    }

    /// Why a part that needs ptrace-level access is missing.
    fn unreadable(&self, what: &str) -> String {
        if self.zombie() {
            format!("{what}: a zombie has already released it")
        } else if self.fds_denied || self.snap.cwd.is_none() {
            if nix::unistd::geteuid().is_root() {
                format!(
                    "{what}: not readable even as root (a ptrace restriction, an LSM, or another user namespace)"
                )
            } else {
                format!("{what}: {NOT_READABLE}")
            }
        } else {
            format!("{what}: could not be read (the process may have just exited)")
        }
    }

    /// The peer path of the socket with this inode, or its own bound path.
    fn socket_paths(&self, inode: u64) -> (Option<&str>, Option<&str>) {
        let Ok(table) = &self.unix else {
            return (None, None);
        };
        let Some(sock) = table.get(&inode) else {
            return (None, None);
        };
        let peer = sock
            .peer
            .and_then(|p| table.get(&p))
            .and_then(|p| p.name.as_deref());
        (sock.name.as_deref(), peer)
    }
}

fn check(id: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        id,
        status,
        detail: detail.into(),
    }
}

/// Run every check, in the order the report shows them.
pub(crate) fn all(f: &Facts) -> Vec<Check> {
    vec![
        controlling_tty(f),
        session(f),
        process_group(f),
        parent(f),
        cwd(f),
        root(f),
        umask(f),
        stdio(f),
        open_fds(f),
        sighup(f),
        pidfile_lock(f),
        syslog(f),
        state(f),
    ]
}

fn controlling_tty(f: &Facts) -> Check {
    match &f.snap.tty {
        None => check(
            "controlling_tty",
            Status::Pass,
            "no controlling terminal: no terminal hangup or Ctrl-C can reach it",
        ),
        Some(tty) => {
            let place = if f.snap.tpgid == f.snap.pgid {
                "in the foreground, so Ctrl-C and Ctrl-Z there reach it too"
            } else {
                "in the background"
            };
            check(
                "controlling_tty",
                Status::Fail,
                format!(
                    "has controlling terminal {tty} ({place}): a hangup there sends SIGHUP to its group"
                ),
            )
        }
    }
}

fn leader_name(pid: i32) -> String {
    crate::locks::comm(pid).map_or_else(
        || format!("pid {pid}, which has exited"),
        |c| format!("{c}, pid {pid}"),
    )
}

/// ID 0 for a session or group: it was made outside this PID namespace (a container's
/// init), so there is nothing here to lead it.
const OUTSIDE_NAMESPACE: &str =
    "was created outside this PID namespace (shown as 0, as for a container's init)";

fn session(f: &Facts) -> Check {
    let s = &f.snap;
    if s.sid == 0 && s.tty.is_none() {
        return check(
            "session",
            Status::Pass,
            format!("its session {OUTSIDE_NAMESPACE}: not a session leader here and no terminal"),
        );
    }
    match (s.session_leader, &s.tty) {
        (false, None) => check(
            "session",
            Status::Pass,
            format!(
                "not a session leader (session {} is led by {}): it cannot acquire a terminal by opening one, as APUE's second fork intends",
                s.sid,
                leader_name(s.sid)
            ),
        ),
        (true, None) if s.ppid == 1 => check(
            "session",
            Status::Pass,
            "leads its own session with no terminal, as a new-style daemon started by an init system does (systemd calls setsid() for it); it must open terminals with O_NOCTTY or it acquires one",
        ),
        (true, None) => check(
            "session",
            Status::Warn,
            "leads its own session with no terminal (setsid() without APUE's second fork): opening a terminal without O_NOCTTY would make it its controlling terminal",
        ),
        (true, Some(tty)) => check(
            "session",
            Status::Warn,
            format!(
                "leads the session that owns {tty}: that is a login shell or a terminal's first process, not a daemon"
            ),
        ),
        (false, Some(tty)) => check(
            "session",
            Status::Warn,
            format!(
                "member of session {} (led by {}), which owns {tty}: still a job of that terminal session — call setsid()",
                s.sid,
                leader_name(s.sid)
            ),
        ),
    }
}

fn process_group(f: &Facts) -> Check {
    let s = &f.snap;
    let foreground = s.tty.is_some() && s.tpgid == s.pgid;
    let status = if foreground {
        Status::Warn
    } else {
        Status::Pass
    };
    let what = if s.pgid == 0 {
        format!("its process group {OUTSIDE_NAMESPACE}")
    } else if s.group_leader {
        format!(
            "leads process group {}: fine for a daemon, though a group leader cannot call setsid()",
            s.pgid
        )
    } else {
        format!(
            "member of process group {} (led by {}), not its leader",
            s.pgid,
            leader_name(s.pgid)
        )
    };
    let tail = if foreground {
        "; it is the terminal's foreground group, so keyboard signals reach it"
    } else {
        ""
    };
    check("process_group", status, format!("{what}{tail}"))
}

fn parent(f: &Facts) -> Check {
    let s = &f.snap;
    if s.ppid == 0 {
        return check(
            "parent",
            Status::Pass,
            "no parent: this is the first process of its PID namespace (init), or was started by the kernel",
        );
    }
    let name = s.parent_comm.as_deref().unwrap_or("?");
    if s.ppid == 1 {
        return check(
            "parent",
            Status::Pass,
            format!(
                "parent is {name} (pid 1), the init process: it was started by, or orphaned to, init, which reaps it"
            ),
        );
    }
    if SHELLS.contains(&name) {
        return check(
            "parent",
            Status::Warn,
            format!(
                "parent is the shell {name} (pid {}): started from a shell; it dies with it unless detached",
                s.ppid
            ),
        );
    }
    if SERVICE_MANAGERS.iter().any(|m| name.starts_with(m)) {
        return check(
            "parent",
            Status::Pass,
            format!(
                "parent is {name} (pid {}), a service manager: it supervises this process (and as a subreaper it adopts the orphans of double-forked daemons)",
                s.ppid
            ),
        );
    }
    check(
        "parent",
        Status::Pass,
        format!(
            "parent is {name} (pid {}), not init: either it started this process and supervises it, or it is a child subreaper (PR_SET_CHILD_SUBREAPER, which /proc does not show) that adopted it after a double fork",
            s.ppid
        ),
    )
}

fn cwd(f: &Facts) -> Check {
    match f.snap.cwd.as_deref() {
        None => check("cwd", Status::Unknown, f.unreadable("working directory")),
        Some("/") => check(
            "cwd",
            Status::Pass,
            "working directory is /: it keeps no file system busy",
        ),
        Some(dir) => check(
            "cwd",
            Status::Warn,
            format!(
                "working directory is {dir}: it keeps that file system busy and blocks its unmount — chdir(\"/\")"
            ),
        ),
    }
}

fn root(f: &Facts) -> Check {
    match f.snap.root.as_deref() {
        None => check("root", Status::Unknown, f.unreadable("root directory")),
        Some("/") => check("root", Status::Pass, "root directory is /"),
        Some(dir) => check(
            "root",
            Status::Pass,
            format!("chrooted to {dir}: fine, a chroot confines a daemon on purpose"),
        ),
    }
}

fn umask(f: &Facts) -> Check {
    match f.snap.umask {
        None => check(
            "umask",
            Status::Unknown,
            "this kernel does not report the umask (Umask: appeared in Linux 4.7)",
        ),
        Some(0) => check(
            "umask",
            Status::Pass,
            "umask 0000, the book's choice: files get exactly the modes asked for, so every open() and mkdir() must ask for safe ones",
        ),
        Some(mask) if mask & 0o022 != 0o022 => check(
            "umask",
            Status::Warn,
            format!(
                "umask {}: files it creates may be writable by {} unless it passes strict modes",
                format_umask(mask),
                match (mask & 0o020 == 0, mask & 0o002 == 0) {
                    (true, true) => "group and others",
                    (true, false) => "the group",
                    _ => "others",
                }
            ),
        ),
        Some(mask) => check(
            "umask",
            Status::Pass,
            format!(
                "umask {}: group and others cannot get write permission on what it creates",
                format_umask(mask)
            ),
        ),
    }
}

fn is_tty_path(target: &str) -> bool {
    target.starts_with("/dev/pts/")
        || target.starts_with("/dev/tty")
        || target == "/dev/console"
        || target == "/dev/ptmx"
}

fn is_journal_stream(path: &str) -> bool {
    path == "/run/systemd/journal/stdout"
}

/// A descriptor target in words, following sockets to their peer.
fn describe_target(f: &Facts, target: &str) -> String {
    if let Some(inode) = proc_extra::socket_inode(target) {
        return match f.socket_paths(inode) {
            (_, Some(peer)) if is_journal_stream(peer) => "a journald stream socket".into(),
            (_, Some(peer)) => format!("a socket connected to {peer}"),
            (Some(own), None) => format!("a socket bound to {own}"),
            (None, None) => "a socket".into(),
        };
    }
    if target.starts_with("pipe:") {
        return "a pipe".into();
    }
    target.to_owned()
}

fn stdio(f: &Facts) -> Check {
    let Some(fds) = &f.snap.fds else {
        return check(
            "stdio",
            Status::Unknown,
            f.unreadable("descriptors 0, 1, 2"),
        );
    };
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    for n in 0..=2 {
        match fds.iter().find(|fd| fd.fd == n) {
            None => {
                status = worst(status, Status::Warn);
                parts.push(format!("{n} closed (the next open() gets {n})"));
            }
            Some(fd) if is_tty_path(&fd.target) => {
                status = Status::Fail;
                parts.push(format!("{n} → terminal {}", fd.target));
            }
            Some(fd) => parts.push(format!("{n} → {}", describe_target(f, &fd.target))),
        }
    }
    let why = match status {
        Status::Fail => {
            "; output to a terminal fails with EIO or raises SIGTTOU once it is gone — reopen them on /dev/null"
        }
        Status::Warn => {
            "; a stray print lands in whatever file is opened next — open /dev/null on them"
        }
        _ => "; /dev/null, files, pipes and sockets are all fine",
    };
    check("stdio", status, format!("{}{why}", parts.join(", ")))
}

fn worst(a: Status, b: Status) -> Status {
    let rank = |s| match s {
        Status::Pass => 0,
        Status::Unknown => 1,
        Status::Warn => 2,
        Status::Fail => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn open_fds(f: &Facts) -> Check {
    let Some(fds) = &f.snap.fds else {
        return check(
            "open_fds",
            Status::Unknown,
            f.unreadable("descriptor table"),
        );
    };
    let others: Vec<&FdEntry> = fds.iter().filter(|fd| fd.fd > 2).collect();
    if others.is_empty() {
        return check("open_fds", Status::Pass, "no descriptors beyond 0, 1 and 2");
    }
    let leaky: Vec<String> = others
        .iter()
        .filter(|fd| !fd.cloexec)
        .map(|fd| format!("{} → {}", fd.fd, describe_target(f, &fd.target)))
        .collect();
    if leaky.is_empty() {
        check(
            "open_fds",
            Status::Pass,
            format!(
                "{} more descriptor(s), all close-on-exec: nothing leaks into a program it execs",
                others.len()
            ),
        )
    } else {
        check(
            "open_fds",
            Status::Warn,
            format!(
                "{} of its {} descriptor(s) beyond 0, 1 and 2 lack close-on-exec, so any program it execs inherits them: {}",
                leaky.len(),
                others.len(),
                leaky.join(", ")
            ),
        )
    }
}

fn sighup(f: &Facts) -> Check {
    match f.snap.sighup {
        Disposition::Caught => check(
            "sighup",
            Status::Pass,
            "SIGHUP caught: the 13.6 convention — it can reread its configuration on `kill -HUP`; a terminal hangup cannot kill it",
        ),
        Disposition::Ignored => check(
            "sighup",
            Status::Pass,
            "SIGHUP ignored: a terminal hangup cannot kill it, but `kill -HUP` will not make it reload its configuration",
        ),
        Disposition::Default => check(
            "sighup",
            Status::Warn,
            "SIGHUP has its default action: it terminates on a hangup, and `kill -HUP` kills it instead of asking it to reload",
        ),
    }
}

fn pidfile_lock(f: &Facts) -> Check {
    let pid = f.snap.pid;
    if let Some((fd, locks)) = f.fd_locks.first() {
        let lock = &locks[0];
        let what = format!(
            "{} {} lock on {} (fd {})",
            lock.class, lock.access, fd.target, fd.fd
        );
        return match proc_extra::fd_first_line(pid, fd.fd) {
            Some(content) if content == pid.to_string() => check(
                "pidfile_lock",
                Status::Pass,
                format!(
                    "holds a {what}, and the file says {pid}: a second instance will find it locked"
                ),
            ),
            Some(content) => check(
                "pidfile_lock",
                Status::Warn,
                format!(
                    "holds a {what}, but the file says {:?}, not {pid}: tools reading the pid file get the wrong process",
                    content
                ),
            ),
            None => check(
                "pidfile_lock",
                Status::Pass,
                format!("holds a {what} (its contents could not be read)"),
            ),
        };
    }
    if f.snap.fds.is_none() {
        return match f.pid_locks.first() {
            Some(lock) => check(
                "pidfile_lock",
                Status::Unknown,
                format!(
                    "/proc/locks shows a {} lock by it on inode {} ({:02x}:{:02x}), but its descriptors are {NOT_READABLE}",
                    lock.class, lock.inode, lock.major, lock.minor
                ),
            ),
            None => check("pidfile_lock", Status::Unknown, f.unreadable("descriptors")),
        };
    }
    match f.pid_locks.first() {
        // A flock() taken before a fork stays with the file; /proc/locks keeps the
        // locker's pid even when this process no longer has the file open.
        Some(lock) => check(
            "pidfile_lock",
            Status::Warn,
            format!(
                "/proc/locks names it as the taker of a {} lock on inode {}, but none of its descriptors holds it now",
                lock.class, lock.inode
            ),
        ),
        None => check(
            "pidfile_lock",
            Status::Warn,
            "no pid-file lock: nothing stops a second instance",
        ),
    }
}

/// Paths a syslog client or a journal client connects to.
fn is_syslog_path(path: &str) -> bool {
    matches!(
        path,
        "/dev/log"
            | "/run/systemd/journal/dev-log"
            | "/run/systemd/journal/socket"
            | "/run/systemd/journal/stdout"
            | "/var/run/syslog"
    ) || is_lab_log(path)
}

/// The lab's receiver: `<runtime>/daemonlab-XXXX/log`.
fn is_lab_log(path: &str) -> bool {
    path.strip_suffix("/log")
        .and_then(|dir| dir.rsplit('/').next())
        .is_some_and(|name| name.starts_with("daemonlab-"))
}

fn syslog(f: &Facts) -> Check {
    let Some(fds) = &f.snap.fds else {
        return check("syslog", Status::Unknown, f.unreadable("sockets"));
    };
    let sockets: Vec<(i32, u64)> = fds
        .iter()
        .filter_map(|fd| Some((fd.fd, proc_extra::socket_inode(&fd.target)?)))
        .collect();
    if sockets.is_empty() {
        return check(
            "syslog",
            Status::Warn,
            "no sockets open, so no syslog connection (syslog(3) connects at the first message unless openlog() had LOG_NDELAY)",
        );
    }
    if let Err(e) = &f.unix {
        return check(
            "syslog",
            Status::Unknown,
            format!(
                "{} socket(s), but their peers cannot be listed (sock_diag: {e}); a client socket has no path of its own",
                sockets.len()
            ),
        );
    }
    for &(fd, inode) in &sockets {
        match f.socket_paths(inode) {
            (_, Some(peer)) if is_syslog_path(peer) => {
                return check(
                    "syslog",
                    Status::Pass,
                    format!("fd {fd} is connected to the log socket {peer}"),
                );
            }
            (Some(own), _) if is_syslog_path(own) => {
                return check(
                    "syslog",
                    Status::Pass,
                    format!("fd {fd} is bound to {own}: it is a log receiver itself"),
                );
            }
            _ => {}
        }
    }
    check(
        "syslog",
        Status::Warn,
        format!(
            "{} socket(s), none connected to a syslog path (/dev/log, the journal's sockets): it may log to files, or not have logged yet",
            sockets.len()
        ),
    )
}

/// "3d 4h", "5m 12s": an age for people.
pub(crate) fn format_age(seconds: f64) -> String {
    let s = seconds as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn state(f: &Facts) -> Check {
    let s = &f.snap;
    let age = f
        .extra
        .and_then(|e| proc_extra::age_seconds(e.start_ticks))
        .map_or_else(String::new, |a| format!(", started {} ago", format_age(a)));
    let parent = s.parent_comm.as_deref().unwrap_or("?");
    match s.state {
        'Z' => check(
            "state",
            Status::Fail,
            format!(
                "zombie{age}: it has exited and waits for its parent {parent} (pid {}) to wait() for it",
                s.ppid
            ),
        ),
        'T' | 't' => check(
            "state",
            Status::Warn,
            format!(
                "{}{age}: frozen by a stop signal or a debugger; SIGCONT resumes it",
                s.state_name
            ),
        ),
        'X' | 'x' => check(
            "state",
            Status::Fail,
            format!("dead{age}: it is being removed"),
        ),
        _ => check("state", Status::Pass, format!("{}{age}", s.state_name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process made up for the wording tests: another user's daemon-like process whose
    /// cwd, root and fds /proc will not show us.
    fn facts() -> Facts {
        let snap = ProcSnapshot {
            pid: 500,
            ppid: 1,
            pgid: 499,
            sid: 499,
            tty: None,
            tty_nr: 0,
            tpgid: -1,
            state: 'S',
            state_name: "sleeping",
            comm: "food".into(),
            umask: Some(0o020),
            cwd: None,
            root: None,
            fds: None,
            sighup: Disposition::Caught,
            signals: Default::default(),
            session_leader: false,
            group_leader: false,
            parent_comm: Some("systemd".into()),
            adopted_by: None,
        };
        Facts {
            snap,
            extra: None,
            fds_denied: true,
            unix: Ok(HashMap::new()),
            fd_locks: Vec::new(),
            pid_locks: Vec::new(),
        }
    }

    #[test]
    fn unreadable_parts_are_unknown_not_errors() {
        let checks = all(&facts());
        for id in ["cwd", "root", "stdio", "open_fds", "pidfile_lock", "syslog"] {
            let c = checks.iter().find(|c| c.id == id).unwrap();
            assert_eq!(c.status, Status::Unknown, "{c:?}");
            assert!(c.detail.contains("not readable"), "{c:?}");
        }
        let umask = checks.iter().find(|c| c.id == "umask").unwrap();
        assert_eq!(umask.status, Status::Warn, "{umask:?}");
        assert!(umask.detail.contains("others"), "{umask:?}");
    }

    #[test]
    fn a_terminal_is_named_and_a_shell_parent_warned_about() {
        let mut f = facts();
        f.snap.tty = Some("pts/3".into());
        f.snap.tpgid = f.snap.pgid;
        f.snap.ppid = 42;
        f.snap.parent_comm = Some("zsh".into());
        let tty = controlling_tty(&f);
        assert_eq!(tty.status, Status::Fail);
        assert!(
            tty.detail.contains("pts/3") && tty.detail.contains("SIGHUP"),
            "{tty:?}"
        );
        let parent = parent(&f);
        assert_eq!(parent.status, Status::Warn);
        assert!(parent.detail.contains("zsh (pid 42)"), "{parent:?}");
    }

    #[test]
    fn lab_log_paths() {
        assert!(is_syslog_path("/run/user/1000/daemonlab-abc123/log"));
        assert!(is_syslog_path("/dev/log"));
        assert!(!is_syslog_path("/tmp/other/log"));
        assert!(!is_syslog_path("/run/daemonlab-x/logs"));
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(5.2), "5s");
        assert_eq!(format_age(125.0), "2m 5s");
        assert_eq!(format_age(3.0 * 3600.0 + 60.0), "3h 1m");
        assert_eq!(format_age(2.0 * 86_400.0 + 7200.0), "2d 2h");
    }

    #[test]
    fn worst_status_wins() {
        assert_eq!(worst(Status::Pass, Status::Warn), Status::Warn);
        assert_eq!(worst(Status::Fail, Status::Warn), Status::Fail);
    }
}
