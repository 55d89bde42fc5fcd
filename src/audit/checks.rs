//! The daemon rules of APUE chapter 13, each judged from what the kernel reports.
//!
//! Every check is a pure function of [`Facts`], so the wording can be tested on made-up
//! processes; only [`Facts::gather`] touches /proc.

use std::collections::HashMap;

use super::pidfile::{self, Found, FoundBy};
use super::proc_extra::{self, StatExtra};
use super::sockets::{Channels, DevLog, SocketInfo, SocketTable};
use super::{Check, Status};
use crate::locks::proc_locks::LockEntry;
use crate::probe::ps::{PsRow, Role, is_service_manager, role::SHELLS};
use crate::probe::{Disposition, FdEntry, ProcSnapshot, format_umask};

/// What to say when /proc refuses us a part of another user's process.
pub(crate) const NOT_READABLE: &str = "not readable as this user: run as its owner or root";

/// Everything the checks look at, gathered once.
pub(crate) struct Facts {
    pub snap: ProcSnapshot,
    pub extra: Option<StatExtra>,
    /// The fd table exists but /proc denied it to us.
    pub fds_denied: bool,
    /// /proc/locks lines naming the PID (POSIX and FLOCK record the locker's pid).
    pub pid_locks: Vec<LockEntry>,
    /// What the process is, and the process that role refers to.
    pub role: Role,
    pub main_pid: i32,
    /// Rows of the process table, sorted by PID: the process, every process its role
    /// depends on (parents, session and group leaders, transitively) and the other
    /// holders of its pipes and sockets — the rows the checks look up, not the machine.
    pub table: Vec<PsRow>,
    /// Its sockets, described.
    pub sockets: SocketTable,
    /// The other holders of its pipes and sockets, by fd target.
    pub holders: HashMap<String, Vec<(i32, String)>>,
    /// Its pid file and any lock file without a PID.
    pub pidfile: Option<Found>,
    pub lock_file: Option<Found>,
    /// /proc/PID/status through procfs: ids, capabilities, NoNewPrivs, seccomp.
    pub status: Option<procfs::process::Status>,
    /// Threads other than the main one whose blocked mask lacks SIGTERM.
    pub sigterm_open_in_thread: Option<i32>,
    /// supervisord's control socket path (`[unix_http_server] file=` of its
    /// configuration), to name the listener for what it is.
    pub control_socket: Option<String>,
}

/// What the audit reads of a process that depends on neither its snapshot nor the peer
/// scan: read on the scan's thread once the scan is done, beside the snapshot, instead
/// of after both (`cargo bench --bench inspect`).
pub(crate) struct Aside {
    /// The command name the pid-file search went by.
    comm: String,
    /// `pidfile::search` of the process under that name.
    search: Option<Found>,
    /// `read_related` of the process alone; the holders of its pipes are added later.
    related: Vec<PsRow>,
    status: Option<procfs::process::Status>,
    sigterm_open_in_thread: Option<i32>,
    control_socket: Option<String>,
}

impl Aside {
    pub(crate) fn read(pid: i32) -> Aside {
        let comm = crate::locks::comm(pid).unwrap_or_default();
        Aside {
            search: pidfile::search(pid, &comm),
            related: crate::probe::ps::read_related(&[pid]).unwrap_or_default(),
            status: procfs::process::Process::new(pid)
                .and_then(|p| p.status())
                .ok(),
            sigterm_open_in_thread: thread_without_blocked(pid, 15),
            control_socket: (comm == "supervisord")
                .then(|| pidfile::supervisord_control_socket(pid))
                .flatten(),
            comm,
        }
    }
}

impl Facts {
    /// Read what the snapshot lacks: stat flags, sockets, locks. `aside` gives the scan's
    /// findings and what was read beside it.
    pub(crate) fn gather(
        snap: ProcSnapshot,
        extra: Option<StatExtra>,
        aside: impl FnOnce() -> (Channels, Aside),
    ) -> Facts {
        let pid = snap.pid;
        let fds_denied = snap.fds.is_none() && proc_extra::fd_table_denied(pid);
        let fd_locks: Vec<(FdEntry, Vec<LockEntry>)> = snap
            .fds
            .iter()
            .flatten()
            .filter_map(|fd| {
                // The snapshot's own fdinfo read kept the `lock:` lines.
                let locks = crate::locks::proc_locks::parse(fd.lock_lines.as_deref()?);
                (!locks.is_empty()).then(|| (fd.clone(), locks))
            })
            .collect();
        let mut fd_locks: Vec<(FdEntry, Vec<LockEntry>)> = fd_locks;
        // Since Linux 4.5 fdinfo lists the locks held through each descriptor, which the
        // snapshot read: /proc/locks (slow to read: see `pidfile`) is only needed before.
        let pid_locks: Vec<LockEntry> = if proc_extra::fdinfo_lists_locks() {
            Vec::new()
        } else {
            crate::locks::proc_locks::read()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.pid == pid && !e.waiter)
                .collect()
        };
        if fd_locks.is_empty() && !pid_locks.is_empty() {
            // Kernels before 4.5 print no `lock:` lines in fdinfo: find the locked file
            // among the descriptors by device and inode instead (only when /proc/locks
            // has a lock of this process to find: otherwise a stat per fd buys nothing).
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
        let socket_inodes: Vec<u64> = snap
            .fds
            .iter()
            .flatten()
            .filter_map(|fd| proc_extra::socket_inode(&fd.target))
            .collect();
        let mut sockets = if socket_inodes.is_empty() {
            SocketTable::default()
        } else {
            SocketTable::read(pid)
        };
        sockets.follow_paths(pid, &socket_inodes);
        // The other end of its pipes, and of sockets with a Unix peer.
        let mut wanted: Vec<String> = Vec::new();
        for fd in snap.fds.iter().flatten() {
            if fd.target.starts_with("pipe:") && !wanted.contains(&fd.target) {
                wanted.push(fd.target.clone());
            }
            if let Some(inode) = proc_extra::socket_inode(&fd.target)
                && let Some(peer) = sockets.by_inode.get(&inode).and_then(|s| s.peer_inode)
                && sockets
                    .by_inode
                    .get(&inode)
                    .is_some_and(|s| s.peer.is_none())
            {
                wanted.push(format!("socket:[{peer}]"));
            }
        }
        let (channels, aside) = aside();
        let Aside {
            comm: aside_comm,
            search,
            related,
            status,
            sigterm_open_in_thread,
            control_socket,
        } = aside;
        // The rows the checks look up: this process, what its role depends on (parents,
        // session and group leaders), and the other holders of its pipes and sockets.
        let seeds: Vec<i32> = std::iter::once(pid)
            .chain(channels.holder_pids(&wanted))
            .collect();
        let table = crate::probe::ps::read_more_related(related, &seeds).unwrap_or_default();
        // Their names from the rows just read: the comm the kernel shows, as a read of
        // /proc/PID/comm would give it.
        let holders = channels.holders(&wanted, |p| {
            table
                .binary_search_by_key(&p, |r| r.pid)
                .ok()
                .map(|i| table[i].comm.clone())
        });
        let (mut role, main_pid) = table
            .binary_search_by_key(&pid, |r| r.pid)
            .ok()
            .map_or((Role::Process, pid), |i| (table[i].role, table[i].main_pid));
        // A "service" by parent name is one only if its stdio is the manager's pipes;
        // a double-forked daemon adopted by systemd has /dev/null there.
        if role == Role::Service {
            let on_pipes = snap.fds.iter().flatten().any(|fd| {
                fd.fd <= 2 && (fd.target.starts_with("pipe:") || fd.target.starts_with("socket:"))
            });
            if snap.fds.is_some() && !on_pipes {
                role = Role::Daemon;
            }
        }
        let (pidfile, lock_file) = if role == Role::Worker {
            let comm = crate::locks::comm(main_pid).unwrap_or_default();
            (pidfile::find(main_pid, &comm, &[]).0, None)
        } else {
            match pidfile::find_locked(pid, &fd_locks) {
                (Some(found), lock_file) => (Some(found), lock_file),
                // Searched under the name the snapshot saw, should the process have
                // renamed itself in between.
                (None, lock_file) if aside_comm == snap.comm => (search, lock_file),
                (None, lock_file) => (pidfile::search(pid, &snap.comm), lock_file),
            }
        };
        Facts {
            snap,
            extra,
            fds_denied,
            pid_locks,
            role,
            main_pid,
            table,
            sockets,
            holders,
            pidfile,
            lock_file,
            status,
            sigterm_open_in_thread,
            control_socket,
        }
    }

    fn row(&self, pid: i32) -> Option<&PsRow> {
        self.table
            .binary_search_by_key(&pid, |r| r.pid)
            .ok()
            .map(|i| &self.table[i])
    }

    fn socket(&self, target: &str) -> Option<&SocketInfo> {
        self.sockets
            .by_inode
            .get(&proc_extra::socket_inode(target)?)
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
}

fn check(id: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        id,
        status,
        detail: detail.into(),
    }
}

/// The blocked mask of each thread of `pid` (from /proc/PID/task/*/status, through
/// procfs): the first thread that does *not* block `signal`, if any thread does not.
fn thread_without_blocked(pid: i32, signal: u32) -> Option<i32> {
    let process = procfs::process::Process::new(pid).ok()?;
    for task in process.tasks().ok()?.flatten() {
        if task.tid == pid {
            continue;
        }
        if let Ok(status) = task.status()
            && status.sigblk & (1u64 << (signal - 1)) == 0
        {
            return Some(task.tid);
        }
    }
    None
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
        signal_mask(f),
        pidfile_lock(f),
        syslog(f),
        credentials(f),
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

fn leader_name(f: &Facts, pid: i32) -> String {
    // An exited leader may linger as a zombie until its new parent reaps it.
    match f.row(pid) {
        Some(r) if !r.stat.starts_with('Z') => format!("{}, pid {pid}", r.comm),
        _ => format!("pid {pid}, which has exited"),
    }
}

/// ID 0 for a session or group: it was made outside this PID namespace (a container's
/// init), so there is nothing here to lead it.
const OUTSIDE_NAMESPACE: &str =
    "was created outside this PID namespace (shown as 0, as for a container's init)";

/// "nginx (pid 100)" for the role's main process.
fn main_name(f: &Facts) -> String {
    let comm = f
        .row(f.main_pid)
        .map(|r| r.comm.clone())
        .or_else(|| crate::locks::comm(f.main_pid))
        .unwrap_or_else(|| "?".into());
    format!("{comm} (pid {})", f.main_pid)
}

fn session(f: &Facts) -> Check {
    let s = &f.snap;
    if s.pid == 1 && s.sid == 0 {
        return check(
            "session",
            Status::Pass,
            "the init of this PID namespace: it never called setsid(), so it is still in the session it was started in, whose leader lives outside the namespace (hence sid 0); no terminal",
        );
    }
    if s.sid == 0 && s.tty.is_none() {
        return check(
            "session",
            Status::Pass,
            format!("its session {OUTSIDE_NAMESPACE}: not a session leader here and no terminal"),
        );
    }
    match (s.session_leader, &s.tty) {
        (true, None) if f.role == Role::Worker => check(
            "session",
            Status::Warn,
            format!(
                "a worker that leads its own session {} with no terminal: it called setsid() after {} forked it, leaving its daemon's session (so a signal to that session or group misses it); as a session leader it acquires a controlling terminal if it opens one without O_NOCTTY",
                s.sid,
                main_name(f)
            ),
        ),
        (true, None) => {
            let how = if f.role == Role::Service {
                format!(
                    "its service manager {} started it this way (daemon(7)'s new-style daemons skip the second fork)",
                    s.parent_comm.as_deref().unwrap_or("?")
                )
            } else {
                "setsid() without APUE 13.3's second fork".to_owned()
            };
            check(
                "session",
                Status::Warn,
                format!(
                    "leads its own session {} with no terminal ({how}): a session leader acquires a controlling terminal when it opens one without O_NOCTTY, whoever its parent is",
                    s.sid
                ),
            )
        }
        (false, None) => {
            let leader = f.row(s.sid).filter(|r| !r.stat.starts_with('Z'));
            match leader {
                Some(l) if f.role == Role::Worker => check(
                    "session",
                    Status::Pass,
                    format!(
                        "a worker in session {} of {} (pid {}): not a session leader, so it cannot acquire a terminal",
                        s.sid, l.comm, l.pid
                    ),
                ),
                None if f.role == Role::Worker => check(
                    "session",
                    Status::Pass,
                    format!(
                        "a worker of {} in session {}, whose leader has exited: not a session leader, so it can never acquire a terminal",
                        main_name(f),
                        s.sid
                    ),
                ),
                None if f.role == Role::Service => check(
                    "session",
                    Status::Pass,
                    format!(
                        "in session {} with its service manager {}; the session's leader has exited and this is not a session leader, so it can never acquire a terminal; a supervised program needs no setsid() of its own",
                        s.sid,
                        parent_name(f)
                    ),
                ),
                Some(l) if f.role == Role::Service && l.pid == s.ppid => check(
                    "session",
                    Status::Pass,
                    format!(
                        "in session {} of its service manager {} (pid {}), which has no terminal: a supervised program needs no setsid() of its own",
                        s.sid, l.comm, l.pid
                    ),
                ),
                Some(l) => check(
                    "session",
                    Status::Warn,
                    format!(
                        "still in session {} of its launcher {} (pid {}), which is alive: it never called setsid(), so it stays part of that session (APUE 13.3: fork, then setsid)",
                        s.sid, l.comm, l.pid
                    ),
                ),
                // The second fork leaves the daemon in the group its setsid() made
                // (pgid = sid); a process left in another group of a leaderless session
                // was only abandoned there.
                None if s.pgid == s.sid => check(
                    "session",
                    Status::Pass,
                    format!(
                        "not a session leader, and the leader of its session {} has exited: it can never acquire a terminal — what APUE 13.3's second fork achieves",
                        s.sid
                    ),
                ),
                None => check(
                    "session",
                    Status::Pass,
                    format!(
                        "not a session leader, and the leader of its session {} has exited, so it can never acquire a terminal; but it is in process group {} of that session, not the group a setsid() made, so it was left behind in its launcher's session rather than detached by a second fork",
                        s.sid, s.pgid
                    ),
                ),
            }
        }
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
                leader_name(f, s.sid)
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
            leader_name(f, s.pgid)
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
        let what = if s.pid == 1 {
            "no parent: it is PID 1, the init of this PID namespace"
        } else {
            "no parent in this PID namespace: started by the kernel or from outside the namespace"
        };
        return check("parent", Status::Pass, what);
    }
    let name = s.parent_comm.as_deref().unwrap_or("?");
    if f.role == Role::Worker {
        let detail = if s.ppid == f.main_pid {
            format!(
                "parent is its daemon {name} (pid {}), which forked it",
                s.ppid
            )
        } else {
            format!(
                "parent is {name} (pid {}), itself a worker of {}",
                s.ppid,
                main_name(f)
            )
        };
        return check("parent", Status::Pass, detail);
    }
    if SHELLS.contains(&name) {
        return check(
            "parent",
            Status::Warn,
            format!(
                "parent is the shell {name} (pid {}): started from a shell and not yet detached from it",
                s.ppid
            ),
        );
    }
    if is_service_manager(name) {
        let tail = if f.role == Role::Service {
            "; its stdio is on pipes or sockets, as a supervised service's is"
        } else {
            "; its stdio is not the manager's, so it may as well be an orphan it adopted — who adopted a process says nothing of who started it"
        };
        return check(
            "parent",
            Status::Pass,
            format!("parent is {name} (pid {}), a service manager{tail}", s.ppid),
        );
    }
    if s.ppid == 1 {
        return check(
            "parent",
            Status::Pass,
            format!(
                "parent is {name} (pid 1), this namespace's init: it started this process, or adopted it as an orphan; /proc does not record which"
            ),
        );
    }
    check(
        "parent",
        Status::Pass,
        format!(
            "parent is {name} (pid {}), not init: it started this process, or it adopted it as a child subreaper (PR_SET_CHILD_SUBREAPER); /proc shows neither",
            s.ppid
        ),
    )
}

fn exited(what: &str) -> String {
    format!("{what}: unknown, it has exited (a zombie keeps only its exit status)")
}

fn cwd(f: &Facts) -> Check {
    match f.snap.cwd.as_deref() {
        None if f.zombie() => check("cwd", Status::Unknown, exited("working directory")),
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
        None if f.zombie() => check("root", Status::Unknown, exited("root directory")),
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
        None if f.zombie() => check("umask", Status::Unknown, exited("umask")),
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

/// How `pid` is related to the audited process: its parent, a child, its main process.
fn relation(f: &Facts, pid: i32) -> Option<&'static str> {
    if pid == f.snap.ppid {
        Some("its parent")
    } else if f.row(pid).is_some_and(|r| r.ppid == f.snap.pid) {
        Some("its child")
    } else if pid == f.main_pid && pid != f.snap.pid {
        Some("its main process")
    } else if f.role == Role::Worker
        && f.snap.ppid == f.main_pid
        && f.row(pid).is_some_and(|r| r.ppid == f.main_pid)
    {
        // nginx's workers each inherit the master's socketpairs to all of them.
        Some("a fellow worker")
    } else {
        None
    }
}

/// "bash (pid 12)", "sleep (pid 13, its child)", "bash (pid 12) and 2 more" for the other
/// holders of a target.
fn holder_names(f: &Facts, target: &str) -> Option<String> {
    let list = f.holders.get(target)?;
    let (pid, comm) = list.first()?;
    let how = relation(f, *pid).map_or_else(String::new, |r| format!(", {r}"));
    Some(if list.len() > 1 {
        format!("{comm} (pid {pid}{how}) and {} more", list.len() - 1)
    } else {
        format!("{comm} (pid {pid}{how})")
    })
}

/// The key under which the other end of `target` is looked up: a pipe is itself, a
/// socketpair or connected Unix socket is its peer.
fn other_end(f: &Facts, target: &str) -> Option<String> {
    if target.starts_with("pipe:") {
        return Some(target.to_owned());
    }
    let sock = f.socket(target)?;
    (sock.peer.is_none() && !sock.listening)
        .then_some(sock.peer_inode)
        .flatten()
        .map(|i| format!("socket:[{i}]"))
}

/// Whether the other end of `target` is held only by processes it works with (its
/// parent, its children, its main process): a channel between them, not a stray file.
fn is_channel(f: &Facts, target: &str) -> bool {
    other_end(f, target)
        .and_then(|key| f.holders.get(&key))
        .is_some_and(|list| !list.is_empty() && list.iter().all(|(p, _)| relation(f, *p).is_some()))
}

/// What a listening Unix socket is for, when its configuration says: supervisord's
/// `[unix_http_server]`.
fn control_note(f: &Facts, sock: &SocketInfo) -> &'static str {
    if sock.listening
        && sock.kind.starts_with("Unix")
        && f.control_socket.is_some()
        && sock.path() == f.control_socket.as_deref()
    {
        " — supervisord's control socket (the [unix_http_server] of its configuration), where supervisorctl connects"
    } else {
        ""
    }
}

/// A descriptor target in words: a socket's family, type, state and address; a pipe's
/// other end.
fn describe_target(f: &Facts, target: &str) -> String {
    if let Some(sock) = f.socket(target) {
        if let Some(peer) = &sock.peer
            && is_journal_stream(peer)
        {
            return "a journald stream socket".into();
        }
        let mut text = sock.describe();
        if sock.peer.is_none()
            && !sock.listening
            && let Some(inode) = sock.peer_inode
            && let Some(who) = holder_names(f, &format!("socket:[{inode}]"))
        {
            text.push_str(&format!(", peer held by {who}"));
        }
        text.push_str(control_note(f, sock));
        return text;
    }
    if proc_extra::socket_inode(target).is_some() {
        return "a socket (not TCP, UDP or Unix: netlink or another family)".into();
    }
    if target.starts_with("pipe:") {
        return match holder_names(f, target) {
            Some(who) => format!("a pipe shared with {who}"),
            None => "a pipe (no other process we can see holds its other end)".into(),
        };
    }
    target.to_owned()
}

/// Where a stray write to this target lands, when it is not stdio's.
fn reused_slot(target: &str) -> Option<String> {
    if target == "/dev/null" || target.starts_with("pipe:") || target.starts_with("socket:") {
        return None;
    }
    if is_tty_path(target) {
        return None;
    }
    if target.starts_with("anon_inode:") {
        return Some(format!(
            "{target}, where a write fails or corrupts its state"
        ));
    }
    if target.starts_with("/dev/") {
        return Some(format!("the device {target}"));
    }
    Some(format!("the file {target}"))
}

fn stdio(f: &Facts) -> Check {
    // A zombie's fd directory reads as empty: its descriptors are gone, not closed.
    if f.zombie() {
        return check("stdio", Status::Unknown, exited("descriptors 0, 1, 2"));
    }
    let Some(fds) = &f.snap.fds else {
        return check(
            "stdio",
            Status::Unknown,
            f.unreadable("descriptors 0, 1, 2"),
        );
    };
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    let mut stray = Vec::new();
    let mut closed = Vec::new();
    let mut cloexec = Vec::new();
    for n in 0..=2 {
        match fds.iter().find(|fd| fd.fd == n) {
            None => {
                status = worst(status, Status::Warn);
                parts.push(format!("{n} closed (the next open() gets {n})"));
                closed.push(n);
            }
            Some(fd) if is_tty_path(&fd.target) && f.role == Role::Job => {
                parts.push(format!("{n} → its terminal {}, as a job's is", fd.target));
            }
            Some(fd) if is_tty_path(&fd.target) => {
                status = Status::Fail;
                parts.push(format!("{n} → terminal {}", fd.target));
            }
            Some(fd) => {
                let what = describe_target(f, &fd.target);
                match reused_slot(&fd.target) {
                    Some(lands) => {
                        status = worst(status, Status::Warn);
                        parts.push(format!("{n} → {what}"));
                        stray.push(format!("a stray write to {n} lands in {lands}"));
                    }
                    None if fd.cloexec => {
                        status = worst(status, Status::Warn);
                        parts.push(format!("{n} → {what} with close-on-exec"));
                        cloexec.push(n);
                    }
                    None => parts.push(format!("{n} → {what}")),
                }
            }
        }
    }
    let list = |ns: &[i32]| {
        let words: Vec<String> = ns.iter().map(i32::to_string).collect();
        match words.as_slice() {
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        }
    };
    let mut why = Vec::new();
    if status == Status::Fail {
        why.push(
            "output to a terminal fails with EIO or raises SIGTTOU once it is gone — reopen them on /dev/null".to_owned(),
        );
    }
    if !stray.is_empty() {
        why.push(format!(
            "{} — whether a slot reused after a close or a deliberate redirection, stray output goes there; APUE 13.3 opens /dev/null on 0, 1 and 2 before anything else",
            stray.join("; ")
        ));
    }
    if !closed.is_empty() {
        why.push(format!(
            "with {} closed, a stray print lands in whatever file is opened next — open /dev/null on them",
            list(&closed)
        ));
    }
    if !cloexec.is_empty() {
        let (has, slots) = if cloexec.len() == 1 {
            ("has", "it was opened into a free slot")
        } else {
            ("have", "they were opened into free slots")
        };
        why.push(format!(
            "{} {has} O_CLOEXEC, so {slots} rather than set up as stdio (Python's os.open() makes every descriptor it opens close-on-exec): its own output goes there as intended, but a program it execs without setting up stdio starts with {} closed, and the first files that program opens become its stdio",
            list(&cloexec),
            list(&cloexec)
        ));
    }
    if why.is_empty() {
        why.push(match f.role {
            Role::Service => {
                "a service's stdio on its manager's pipes or sockets is as expected".into()
            }
            Role::Job => "as expected for a job".into(),
            _ => "/dev/null, pipes and sockets are as expected".into(),
        });
    }
    check(
        "stdio",
        status,
        format!("{}; {}", parts.join(", "), why.join("; ")),
    )
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
    if f.zombie() {
        return check("open_fds", Status::Unknown, exited("descriptor table"));
    }
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
    let mut listeners = Vec::new();
    let mut channels = Vec::new();
    let mut leaky = Vec::new();
    for fd in others.iter().filter(|fd| !fd.cloexec) {
        let what = format!("{} → {}", fd.fd, describe_target(f, &fd.target));
        if f.socket(&fd.target).is_some_and(|s| s.listening) {
            listeners.push(what);
        } else if is_channel(f, &fd.target) {
            channels.push(what);
        } else {
            leaky.push(what);
        }
    }
    let mut notes = String::new();
    if !listeners.is_empty() {
        notes.push_str(&format!(
            "; kept open across exec on purpose, as listeners (inherited by a re-exec for a binary upgrade or by socket activation): {}",
            listeners.join(", ")
        ));
    }
    if !channels.is_empty() {
        notes.push_str(&format!(
            "; without close-on-exec but channels to the processes it works with, whose other ends only its parent, children, main process or fellow workers hold (a re-exec'd worker inherits such a channel on purpose): {}",
            channels.join(", ")
        ));
    }
    if leaky.is_empty() {
        check(
            "open_fds",
            Status::Pass,
            format!(
                "{} more descriptor(s); none leaks into a program it execs by accident{notes}",
                others.len()
            ),
        )
    } else {
        check(
            "open_fds",
            Status::Warn,
            format!(
                "{} of its {} descriptor(s) beyond 0, 1 and 2 lack close-on-exec, so any program it execs inherits them: {}{notes}",
                leaky.len(),
                others.len(),
                leaky.join(", ")
            ),
        )
    }
}

/// "supervisord (pid 9)" for the parent.
fn parent_name(f: &Facts) -> String {
    format!(
        "{} (pid {})",
        f.snap.parent_comm.as_deref().unwrap_or("?"),
        f.snap.ppid
    )
}

/// The check a worker leaves to its daemon.
fn skipped(f: &Facts, id: &'static str) -> Option<Check> {
    (f.role == Role::Worker).then(|| {
        check(
            id,
            Status::Pass,
            format!(
                "skipped for a worker: this rule belongs to its main process {} — inspect {}",
                main_name(f),
                f.main_pid
            ),
        )
    })
}

fn sighup(f: &Facts) -> Check {
    if let Some(c) = skipped(f, "sighup") {
        return c;
    }
    if f.zombie() {
        return check("sighup", Status::Unknown, exited("SIGHUP's disposition"));
    }
    let init = f.snap.pid == 1;
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
        Disposition::Default if init => check(
            "sighup",
            Status::Pass,
            "SIGHUP has its default action, but this is PID 1: the kernel never delivers a signal whose action is the default to its namespace's init, so `kill -HUP 1` does nothing",
        ),
        Disposition::Default if f.snap.tty.is_none() => check(
            "sighup",
            Status::Warn,
            "SIGHUP has its default action: with no terminal no hangup reaches it, but `kill -HUP` (the 13.6 way to ask a daemon to reload) terminates it",
        ),
        Disposition::Default => check(
            "sighup",
            Status::Warn,
            "SIGHUP has its default action: it terminates on a hangup, and `kill -HUP` kills it instead of asking it to reload",
        ),
    }
}

fn signal_mask(f: &Facts) -> Check {
    if f.zombie() {
        return check("signal_mask", Status::Unknown, exited("signal mask"));
    }
    let sets = &f.snap.signals;
    let blocked: Vec<&str> = ["SIGTERM", "SIGHUP", "SIGINT"]
        .into_iter()
        .filter(|s| sets.blocked.iter().any(|b| b == s))
        .collect();
    let signalfd = f
        .snap
        .fds
        .iter()
        .flatten()
        .any(|fd| fd.target == "anon_inode:[signalfd]");
    let mut status = Status::Pass;
    let mut parts = Vec::new();
    if blocked.is_empty() {
        parts.push("SIGTERM, SIGHUP and SIGINT are not blocked".to_owned());
    } else if signalfd {
        parts.push(format!(
            "{} blocked, and it holds a signalfd: it takes them by reading it",
            blocked.join(", ")
        ));
    } else if blocked.contains(&"SIGTERM")
        && let Some(tid) = f.sigterm_open_in_thread
    {
        parts.push(format!(
            "{} blocked in the main thread, but thread {tid} accepts SIGTERM, so `kill PID` reaches it there",
            blocked.join(", ")
        ));
    } else {
        status = Status::Warn;
        let term = if blocked.contains(&"SIGTERM") {
            ": `kill PID` stays pending and does nothing"
        } else {
            ": they stay pending and do nothing"
        };
        parts.push(format!(
            "{} blocked in every thread and no signalfd open{term}, unless a thread waits for them with sigwait() as APUE 13.6's daemon does",
            blocked.join(", ")
        ));
    }
    if sets.ignored.iter().any(|s| s == "SIGTERM") {
        status = Status::Warn;
        parts.push("SIGTERM is ignored: only SIGKILL stops it".into());
    }
    let inherited: Vec<&str> = sets
        .ignored
        .iter()
        .map(String::as_str)
        .filter(|s| matches!(*s, "SIGINT" | "SIGQUIT"))
        .collect();
    let stops: Vec<&str> = sets
        .ignored
        .iter()
        .map(String::as_str)
        .filter(|s| matches!(*s, "SIGTSTP" | "SIGTTIN" | "SIGTTOU"))
        .collect();
    if sets.ignored.iter().any(|s| s == "SIGHUP") {
        parts.push(if f.role == Role::Job {
            "ignores SIGHUP, as what nohup runs does".to_owned()
        } else {
            "ignores SIGHUP: a daemon may set that itself (APUE 13.3's daemonize() does, before its second fork) or inherit it from nohup; /proc does not say which".to_owned()
        });
    }
    if !inherited.is_empty() {
        parts.push(format!(
            "ignores {} — dispositions set to ignore survive fork and exec, so these may be inherited from its launcher (a shell ignores SIGINT and SIGQUIT for `&` jobs without job control)",
            inherited.join(", ")
        ));
    }
    if !stops.is_empty() {
        parts.push(format!(
            "ignores {}, the terminal's job-control stops: daemonizing code often ignores them itself (python-daemon's default signal map does), and a launcher may have passed them on; harmless without a terminal",
            stops.join(", ")
        ));
    }
    if sets.ignored.iter().any(|s| s == "SIGPIPE") {
        parts.push("ignores SIGPIPE, usual for a server (a write to a closed peer fails with EPIPE instead)".into());
    }
    if f.snap.pid == 1 {
        parts.push("as PID 1 it never receives a signal whose action is the default".into());
    }
    check("signal_mask", status, parts.join("; "))
}

/// The note for a pid file's suffix.
fn suffix_note(content: &str) -> String {
    match pidfile::suffix(content) {
        "" | "\n" if !content.is_empty() => String::new(),
        "\0" => "; the NUL after the number is harmless: `pgrep -F`, start-stop-daemon and $(cat) read the number".into(),
        "\n\0" | "\0\n" => "; the bytes after the number are harmless: readers take the number".into(),
        _ => String::new(),
    }
}

/// What a daemon's listening sockets do against a second instance.
struct ListenGuard {
    /// What it holds and what a second instance meets there, as a clause.
    text: String,
    /// Whether a second instance is refused for certain: a TCP or UDP address, or a Unix
    /// path whose program is known to check it before binding.
    stops: bool,
}

/// Programs known to check, or not, a Unix path before binding it, with how we know
/// (each checked by starting a second instance in tests/inspect_debian.rs).
fn unix_path_policy(comm: &str) -> Option<(bool, &'static str)> {
    match comm {
        "supervisord" => Some((
            true,
            "supervisord, finding its socket's path taken at start, connects to it and exits if something answers (\"Another program is already listening…\"), so a second supervisord with the same configuration refuses to start",
        )),
        "dbus-daemon" => Some((
            false,
            "dbus-daemon removes a socket file it finds at its address before binding, so a second bus with the same address starts and takes the path over",
        )),
        _ => None,
    }
}

/// The listening sockets as a guard, if it has any.
fn listening_guard(f: &Facts) -> Option<ListenGuard> {
    let fds = f.snap.fds.as_ref()?;
    let listeners: Vec<&SocketInfo> = fds
        .iter()
        .filter_map(|fd| f.socket(&fd.target).filter(|s| s.listening))
        .filter(|s| s.local.is_some())
        .collect();
    let (inet, unix): (Vec<&SocketInfo>, Vec<&SocketInfo>) = listeners
        .into_iter()
        .partition(|s| s.kind.starts_with("TCP") || s.kind.starts_with("UDP"));
    let names = |list: &[&SocketInfo]| {
        list.iter()
            .map(|s| format!("{}{}", s.describe(), control_note(f, s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !inet.is_empty() {
        return Some(ListenGuard {
            text: format!(
                "it holds {}, and a second instance configured with the same address fails to bind it (EADDRINUSE, unless both set SO_REUSEPORT)",
                names(&inet)
            ),
            stops: true,
        });
    }
    if unix.is_empty() {
        return None;
    }
    let reachable: Vec<&SocketInfo> = unix
        .iter()
        .copied()
        .filter(|s| s.path().is_some())
        .collect();
    if reachable.is_empty() {
        return Some(ListenGuard {
            text: format!("it holds {}, so it stops no second instance", names(&unix)),
            stops: false,
        });
    }
    Some(match unix_path_policy(&f.snap.comm) {
        Some((true, how)) => ListenGuard {
            text: format!("it holds {}: {how}", names(&reachable)),
            stops: true,
        },
        Some((false, how)) => ListenGuard {
            text: format!("it holds {}, but {how}", names(&reachable)),
            stops: false,
        },
        None => ListenGuard {
            text: format!(
                "it holds {}: a second instance is refused only if it checks that path first — bind() on an existing path fails with EADDRINUSE, but a daemon that removes a socket file before binding (many do, to clear one a crash left) takes the path over",
                names(&reachable)
            ),
            stops: false,
        },
    })
}

fn pidfile_lock(f: &Facts) -> Check {
    if let Some(c) = skipped(f, "pidfile_lock") {
        return c;
    }
    if f.zombie() {
        return check(
            "pidfile_lock",
            Status::Unknown,
            exited("its pid file and locks"),
        );
    }
    let pid = f.snap.pid;
    if let Some(found) = &f.pidfile {
        let file = &found.file;
        let names = pidfile::named_pid(&file.content);
        let note = suffix_note(&file.content);
        let mut how = match found.by {
            FoundBy::LockedFd(fd) => format!("fd {fd}"),
            FoundBy::CommandLine => "named on its command line".into(),
            FoundBy::Configuration => {
                "named in the configuration file its command line gives".into()
            }
            FoundBy::UsualPlace => "in the usual place".into(),
        };
        if !matches!(found.by, FoundBy::LockedFd(_)) && proc_extra::other_mount_namespace(pid) {
            how.push_str(", as it sees that path from its own mount namespace");
        }
        return match (file.locked_by, names) {
            (Some(holder), Some(n)) if n == pid && holder == pid => check(
                "pidfile_lock",
                Status::Pass,
                format!(
                    "holds a {} lock on its pid file {} ({how}), which says {pid}: a second instance finds it locked (APUE 13.5){note}",
                    found.lock.as_deref().unwrap_or("?"),
                    file.path
                ),
            ),
            (Some(holder), Some(n)) if n == pid => check(
                "pidfile_lock",
                Status::Warn,
                format!(
                    "its pid file {} ({how}) says {pid}, but the lock on it was taken by pid {holder}: if that process exits, the lock goes with it{note}",
                    file.path
                ),
            ),
            (_, Some(n)) if n != pid => check(
                "pidfile_lock",
                Status::Warn,
                format!(
                    "its pid file {} ({how}) says {n}, not {pid}: tools reading it get the wrong process",
                    file.path
                ),
            ),
            (None, Some(_)) => match listening_guard(f) {
                Some(guard) if guard.stops => check(
                    "pidfile_lock",
                    Status::Pass,
                    format!(
                        "pid file {} ({how}) says {pid} but is not locked, so it goes stale after a crash; the guard is elsewhere: {}{note}",
                        file.path, guard.text
                    ),
                ),
                other => check(
                    "pidfile_lock",
                    Status::Warn,
                    format!(
                        "pid file {} ({how}) says {pid} but is not locked: it stops a second start only if that start checks it (or creates it with O_EXCL), and it goes stale after a crash — APUE 13.5 keeps it locked{}{note}",
                        file.path,
                        other.map_or_else(String::new, |g| format!("; {}", g.text))
                    ),
                ),
            },
            _ => check(
                "pidfile_lock",
                Status::Warn,
                format!(
                    "{} ({how}) holds {:?}, not a process ID",
                    file.path, file.content
                ),
            ),
        };
    }
    if let Some(lock) = &f.lock_file {
        return check(
            "pidfile_lock",
            Status::Pass,
            format!(
                "holds a {} lock on {} (a lock file with no PID in it, not a broken pid file): a second instance finds it locked",
                lock.lock.as_deref().unwrap_or("?"),
                lock.file.path
            ),
        );
    }
    let guard = listening_guard(f);
    if let Some(g) = guard.as_ref().filter(|g| g.stops) {
        return check(
            "pidfile_lock",
            Status::Pass,
            format!("no pid file found, but {}", g.text),
        );
    }
    if f.role == Role::Service {
        let manager = parent_name(f);
        return check(
            "pidfile_lock",
            Status::Pass,
            format!(
                "no pid file of its own, and a supervised service needs none: its manager {manager} started it and tracks it by PID, so refusing a second copy is the manager's job (daemon(7) leaves pid files to the manager for new-style daemons)"
            ),
        );
    }
    if let Some(g) = guard {
        return check(
            "pidfile_lock",
            Status::Warn,
            format!("no pid file found; {}", g.text),
        );
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
            "no guard found: no locked file, no pid file naming it (on its command line or in /run), no listening socket — nothing visible stops a second instance (a launcher's pid file kept elsewhere, such as start-stop-daemon --pidfile's, or one created with O_EXCL and since removed, leaves no trace here)",
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

/// Programs known to call openlog() and closelog() around every message, so no log
/// socket stays open between messages, with how we know.
fn per_message_syslog(comm: &str) -> Option<&'static str> {
    match comm {
        "sshd" | "sshd-session" | "sshd-auth" => Some(
            "OpenSSH's do_log() calls openlog() before and closelog() after each message, so sshd holds no log socket between messages",
        ),
        _ => None,
    }
}

/// A bound datagram socket named like a syslog receiver's (`/dev/log`, `…/log`,
/// `…/dev-log`, `…/syslog`), wherever it is: rsyslogd's imuxsock at a private path.
fn is_log_socket_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(name, "log" | "dev-log" | "syslog" | "log.sock")
}

/// A log file among its descriptors, beyond stdio (nginx's error_log, or an access log).
fn own_log_file(fds: &[FdEntry]) -> Option<String> {
    fds.iter()
        .filter(|fd| fd.fd >= 2)
        .map(|fd| fd.target.as_str())
        .find(|t| t.starts_with('/') && (t.ends_with(".log") || t.starts_with("/var/log/")))
        .map(str::to_owned)
}

/// The lab's receiver: `<runtime>/daemonlab-XXXX/log`.
fn is_lab_log(path: &str) -> bool {
    path.strip_suffix("/log")
        .and_then(|dir| dir.rsplit('/').next())
        .is_some_and(|name| name.starts_with("daemonlab-"))
}

fn syslog(f: &Facts) -> Check {
    if let Some(c) = skipped(f, "syslog") {
        return c;
    }
    if f.zombie() {
        return check("syslog", Status::Unknown, exited("sockets"));
    }
    let Some(fds) = &f.snap.fds else {
        return check("syslog", Status::Unknown, f.unreadable("sockets"));
    };
    let sockets: Vec<(i32, &str)> = fds
        .iter()
        .filter(|fd| fd.target.starts_with("socket:"))
        .map(|fd| (fd.fd, fd.target.as_str()))
        .collect();
    if let Some(how) = per_message_syslog(&f.snap.comm) {
        return check(
            "syslog",
            Status::Pass,
            format!("no log socket needs to stay open: {how}"),
        );
    }
    if let Some(own) = sockets
        .iter()
        .filter_map(|(_, t)| f.socket(t))
        .find(|s| {
            s.kind == "Unix datagram"
                && s.peer.is_none()
                && s.local.as_deref().is_some_and(is_log_socket_name)
        })
        .and_then(|s| s.local.clone())
    {
        return check(
            "syslog",
            Status::Pass,
            format!("it is a log receiver itself: a Unix datagram socket bound to {own}"),
        );
    }
    if sockets.is_empty()
        && let Some(file) = own_log_file(fds)
    {
        return check(
            "syslog",
            Status::Pass,
            format!(
                "no log socket, but it writes its own log file {file}: daemon(7) allows a log file instead of syslog"
            ),
        );
    }
    if sockets.is_empty() {
        return service_log(f).unwrap_or_else(|| not_logged_yet(f, None));
    }
    for &(fd, target) in &sockets {
        let Some(sock) = f.socket(target) else {
            continue;
        };
        match (&sock.peer, &sock.local) {
            (Some(peer), _) if is_syslog_path(peer) => {
                return check(
                    "syslog",
                    Status::Pass,
                    format!("fd {fd} is connected to the log socket {peer}"),
                );
            }
            (_, Some(own)) if is_syslog_path(own) => {
                return check(
                    "syslog",
                    Status::Pass,
                    format!("fd {fd} is bound to {own}: it is a log receiver itself"),
                );
            }
            _ => {}
        }
    }
    let gone: Vec<i32> = sockets
        .iter()
        .filter(|(_, t)| {
            f.socket(t)
                .is_some_and(|s| s.peer_gone && s.kind == "Unix datagram")
        })
        .map(|(fd, _)| *fd)
        .collect();
    if let Some(fd) = gone.first() {
        let now = match f.sockets.dev_log(f.snap.pid) {
            DevLog::Bound => {
                "a logger is bound at /dev/log again, so glibc's syslog(3) reconnects there at its next message and sends it"
            }
            DevLog::Stale => {
                "the socket file at /dev/log is stale (no socket is bound to it), so glibc's syslog(3) tries to reconnect at each message, is refused and drops it (to the console with LOG_CONS) until a logger binds /dev/log again"
            }
            DevLog::Missing => {
                "nothing is at /dev/log now, so glibc's syslog(3) tries to reconnect at each message and drops it (to the console with LOG_CONS) until a logger binds /dev/log again"
            }
        };
        return check(
            "syslog",
            Status::Pass,
            format!(
                "fd {fd} is a Unix datagram socket whose peer has closed — the shape of a syslog(3) client whose syslogd restarted or stopped: {now}"
            ),
        );
    }
    if let Some(problem) = &f.sockets.problem
        && sockets.iter().all(|(_, t)| f.socket(t).is_none())
    {
        return check(
            "syslog",
            Status::Unknown,
            format!(
                "{} socket(s), but they cannot be described ({problem})",
                sockets.len()
            ),
        );
    }
    if let Some(file) = own_log_file(fds) {
        let which = if sockets.len() <= 3 {
            let list: Vec<String> = sockets
                .iter()
                .map(|(fd, t)| format!("{fd} → {}", describe_target(f, t)))
                .collect();
            format!(": {}", list.join("; "))
        } else {
            String::new()
        };
        return check(
            "syslog",
            Status::Pass,
            format!(
                "it writes its own log file {file}, which daemon(7) allows instead of syslog; none of its {} socket(s) is a log socket{which}",
                sockets.len()
            ),
        );
    }
    service_log(f).unwrap_or_else(|| not_logged_yet(f, Some(sockets.len())))
}

/// A supervised service's log: its stdout and stderr, when its manager holds them.
fn service_log(f: &Facts) -> Option<Check> {
    if f.role != Role::Service {
        return None;
    }
    let fds = f.snap.fds.as_ref()?;
    let managers: Vec<String> = [1, 2]
        .iter()
        .filter_map(|&n| fds.iter().find(|fd| fd.fd == n))
        .filter_map(|fd| {
            if f.socket(&fd.target)
                .and_then(|s| s.peer.as_deref())
                .is_some_and(is_journal_stream)
            {
                return Some("journald".to_owned());
            }
            let key = other_end(f, &fd.target)?;
            f.holders
                .get(&key)?
                .iter()
                .find(|(p, _)| *p == f.snap.ppid)
                .map(|(p, c)| format!("{c} (pid {p})"))
        })
        .collect();
    let manager = managers.first()?;
    Some(check(
        "syslog",
        Status::Pass,
        format!(
            "its stdout and stderr go to {manager}, which collects what it writes: a supervised service may log there instead of to syslog, as daemon(7) has new-style daemons do"
        ),
    ))
}

/// No log socket yet, and nothing wrong in that: syslog(3) connects lazily.
fn not_logged_yet(f: &Facts, sockets: Option<usize>) -> Check {
    let what = match sockets {
        None => "no log socket open".to_owned(),
        Some(n) => format!(
            "none of its {n} socket(s) is connected to a syslog path (/dev/log, the journal's sockets)"
        ),
    };
    check(
        "syslog",
        Status::Pass,
        format!(
            "{what}, which is no fault: glibc's syslog(3) connects to /dev/log at the first message (at openlog() only with LOG_NDELAY) and gives the socket up when nothing listens there, so holding none means it has not logged since it started, or found no logger when it did; {}",
            match f.sockets.dev_log(f.snap.pid) {
                DevLog::Bound =>
                    "a logger is bound at /dev/log, so its next message connects there",
                DevLog::Stale => {
                    "the socket file at /dev/log is stale (no socket is bound to it), so what it sends to syslog now is lost (or goes to the console with LOG_CONS) until a logger binds /dev/log again"
                }
                DevLog::Missing => {
                    "nothing is at /dev/log as it sees it, so what it sends to syslog now is lost (or goes to the console with LOG_CONS) until a logger binds /dev/log"
                }
            }
        ),
    )
}

/// The names of the capability bits set in `mask`, for the few a daemon keeps.
fn cap_summary(eff: u64, bounding: Option<u64>) -> String {
    if eff == 0 {
        return "no capabilities".into();
    }
    if bounding.is_some_and(|b| eff == b) {
        return "every capability in its bounding set".into();
    }
    format!("{} capabilities (CapEff {eff:016x})", eff.count_ones())
}

fn credentials(f: &Facts) -> Check {
    let Some(st) = &f.status else {
        return check("credentials", Status::Unknown, f.unreadable("status"));
    };
    let mut parts = vec![format!(
        "uid {} (effective {}), gid {} (effective {})",
        st.ruid, st.euid, st.rgid, st.egid
    )];
    parts.push(cap_summary(st.capeff, st.capbnd));
    parts.push(match st.nonewprivs {
        Some(1) => "NoNewPrivs set: exec cannot gain privileges".into(),
        Some(_) => "NoNewPrivs not set".into(),
        None => "NoNewPrivs not reported (Linux < 4.10)".into(),
    });
    parts.push(match st.seccomp {
        Some(0) => "no seccomp filter".into(),
        Some(1) => "seccomp strict mode".into(),
        Some(2) => "a seccomp filter confines its system calls".into(),
        Some(n) => format!("seccomp mode {n}"),
        None => "seccomp not reported".into(),
    });
    let status = if st.ruid == 0 && st.euid != 0 {
        parts.push(format!(
            "a deliberate seteuid(): real uid 0, so it acts as uid {} but can switch back to root when it needs to (atd does, to run each job as its owner) — bracketing privileges, not a set-user-ID program that forgot to drop them",
            st.euid
        ));
        Status::Pass
    } else if st.ruid != st.euid || st.rgid != st.egid {
        parts.push(
            "real and effective IDs differ, as in a set-user-ID program that has not dropped them"
                .into(),
        );
        Status::Warn
    } else {
        Status::Pass
    };
    check("credentials", status, parts.join("; "))
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
            pid_locks: Vec::new(),
            role: Role::Daemon,
            main_pid: 500,
            table: Vec::new(),
            sockets: SocketTable::default(),
            holders: HashMap::new(),
            pidfile: None,
            lock_file: None,
            status: None,
            sigterm_open_in_thread: None,
            control_socket: None,
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
    fn an_ignored_sighup_is_not_called_only_inherited() {
        let mut f = facts();
        f.snap.signals.ignored = vec!["SIGHUP".into(), "SIGINT".into()];
        let c = signal_mask(&f);
        assert!(
            c.detail
                .contains("may set that itself (APUE 13.3's daemonize() does"),
            "{c:?}"
        );
        assert!(
            c.detail.contains("ignores SIGINT — ") && !c.detail.contains("SIGINT, SIGHUP"),
            "{c:?}"
        );
        f.role = Role::Job;
        assert!(signal_mask(&f).detail.contains("as what nohup runs does"));
    }

    /// `facts()` with its descriptors readable: 0, 1 and 2 on /dev/null.
    fn readable() -> Facts {
        let mut f = facts();
        f.fds_denied = false;
        f.snap.cwd = Some("/".into());
        f.snap.root = Some("/".into());
        f.snap.fds = Some(
            (0..=2)
                .map(|fd| FdEntry {
                    fd,
                    target: "/dev/null".into(),
                    cloexec: false,
                    lock_lines: None,
                })
                .collect(),
        );
        f
    }

    #[test]
    fn no_log_socket_before_the_first_message_is_no_fault() {
        let c = syslog(&readable());
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(
            c.detail.contains("first message") && c.detail.contains("LOG_NDELAY"),
            "{c:?}"
        );
    }

    #[test]
    fn dev_null_opened_with_cloexec_names_what_an_exec_would_lose() {
        let mut f = readable();
        for fd in f.snap.fds.as_mut().unwrap() {
            fd.cloexec = true;
        }
        let c = stdio(&f);
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.detail.contains("0, 1 and 2 have O_CLOEXEC")
                && c.detail.contains("starts with 0, 1 and 2 closed")
                && !c.detail.contains("stray write"),
            "{c:?}"
        );
        f.snap.fds.as_mut().unwrap().retain(|fd| fd.fd != 1);
        let c = stdio(&f);
        assert!(
            c.detail.contains("with 1 closed") && c.detail.contains("0 and 2 have O_CLOEXEC"),
            "{c:?}"
        );
    }

    #[test]
    fn a_leaderless_session_is_a_second_forks_work_only_in_the_group_setsid_made() {
        let mut f = readable();
        // The leader (499) is not in the (empty) table: it has exited.
        f.snap.pgid = 499;
        let c = session(&f);
        assert!(c.detail.contains("second fork achieves"), "{c:?}");
        // Left in its launcher's group: no second fork made that.
        f.snap.pgid = 480;
        let c = session(&f);
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(
            c.detail.contains("left behind") && !c.detail.contains("second fork achieves"),
            "{c:?}"
        );
    }

    #[test]
    fn a_worker_with_its_own_session_is_called_a_worker() {
        let mut f = readable();
        f.role = Role::Worker;
        f.main_pid = 1;
        f.snap.sid = f.snap.pid;
        f.snap.session_leader = true;
        let c = session(&f);
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.detail.contains("a worker that leads its own session")
                && !c.detail.contains("second fork"),
            "{c:?}"
        );
    }

    #[test]
    fn a_supervised_service_leaves_the_single_instance_guard_to_its_manager() {
        let mut f = readable();
        f.role = Role::Service;
        f.snap.parent_comm = Some("supervisord".into());
        f.snap.ppid = 70;
        let c = pidfile_lock(&f);
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.detail.contains("manager supervisord (pid 70)"), "{c:?}");
        f.role = Role::Daemon;
        assert_eq!(pidfile_lock(&f).status, Status::Warn);
    }

    #[test]
    fn worst_status_wins() {
        assert_eq!(worst(Status::Pass, Status::Warn), Status::Warn);
        assert_eq!(worst(Status::Fail, Status::Warn), Status::Fail);
    }
}
