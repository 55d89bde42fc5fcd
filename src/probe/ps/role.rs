//! What a process *is* in the chapter's terms — daemon, service, worker, job, … — from
//! the facts of the process table, never from its PPID alone.
//!
//! A PPID of 1 says who holds the process now, not who started it: an orphan is adopted
//! by init or by the nearest child subreaper (APUE 9.10, 13.3), so "parent is init" is as
//! true of a shell's `daemon &` as of a service systemd started. The role is therefore
//! decided by what the table shows: the controlling terminal, whether the process leads
//! its session, whether its session's leader is still alive, and which of its ancestors
//! is a daemon. `daemonlab inspect` refines [`Role::Service`] against [`Role::Daemon`]
//! with the descriptors (a supervised service's stdio is its manager's pipes); the table
//! alone only knows the parent's name.

use super::PsRow;
use crate::probe::Pid;

/// The role of one process, for `inspect` and `ps`.
///
/// Exists so every view says the same word for the same process, and so the audit can
/// skip the rules that do not apply (a worker's pid file is its daemon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No terminal and detached from its launcher: it leads its own session (setsid), or
    /// its session's leader has exited (the second fork of APUE 13.3).
    Daemon,
    /// A supervised new-style service: its parent is a service manager by name (systemd,
    /// s6-supervise, runsv, supervisord, tini, …) and, when the descriptors are known,
    /// its stdio is on that manager's pipes or sockets.
    Service,
    /// A child or descendant of a daemon or service, in its session (or the same program
    /// forked per connection): nginx's workers, sshd's per-connection children.
    Worker,
    /// A thread ID that is not a thread-group ID: one thread of a process.
    Thread,
    /// Still part of the session it was launched in: a terminal's session, or a
    /// launcher's session whose leader is alive (`nohup cmd &`, a script's children).
    Job,
    /// A kernel thread (PF_KTHREAD): kthreadd and its children, shown in brackets.
    KernelThread,
    /// Exited and not yet waited for.
    Zombie,
    /// PID 1 of this PID namespace.
    Init,
    /// Anything else: a login shell, a terminal's first process.
    Process,
}

impl Role {
    /// The role as JSON spells it ("kernel_thread").
    ///
    /// Exists for the text and Markdown views, which print the same word as JSON.
    pub fn name(self) -> &'static str {
        match self {
            Role::Daemon => "daemon",
            Role::Service => "service",
            Role::Worker => "worker",
            Role::Thread => "thread",
            Role::Job => "job",
            Role::KernelThread => "kernel_thread",
            Role::Zombie => "zombie",
            Role::Init => "init",
            Role::Process => "process",
        }
    }
}

/// Service managers and supervisors, by command name: a parent is called one only by what
/// it is, never because of its PID. Plain "init" (sysvinit, busybox) is left out: what
/// it mostly holds are orphans it adopted. In the table alone, an orphan adopted by
/// systemd still shows as a service; `inspect` looks at its stdio to tell them apart.
pub const SERVICE_MANAGERS: &[&str] = &[
    "systemd",
    "s6-supervise",
    "runsv",
    "supervise",
    "supervise-daemon",
    "supervisord",
    "tini",
    "docker-init",
    "dumb-init",
    "catatonit",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "conmon",
    "openrc-run",
    // libslack's daemon(1): it keeps its client's pid file, pipes its output and respawns it.
    "daemon",
];

/// Shells: a session they lead without a terminal is a script's, and its members are its
/// jobs, not a daemon's workers.
pub const SHELLS: &[&str] = &[
    "bash", "zsh", "sh", "fish", "dash", "ksh", "tcsh", "csh", "busybox",
];

/// Shell applets of a multi-call binary: `busybox sh` is a shell, `busybox syslogd` is not.
const SHELL_APPLETS: &[&str] = &["sh", "ash", "hush", "bash"];

/// The applet a multi-call binary runs, when `comm` is one (`busybox syslogd -n` →
/// `syslogd`): the kernel names the process after the binary, not the applet.
pub fn busybox_applet<'a>(comm: &str, argv: &'a [String]) -> Option<&'a str> {
    if comm != "busybox" {
        return None;
    }
    let first = argv.first()?;
    let name = first.rsplit('/').next().unwrap_or(first);
    if name == "busybox" {
        argv.get(1).map(|a| a.rsplit('/').next().unwrap_or(a))
    } else {
        Some(name)
    }
}

/// Whether the row is a shell's: by command name, and for busybox by its applet.
fn is_shell(row: &PsRow) -> bool {
    if row.comm == "busybox" {
        let argv: Vec<String> = row.command.split_whitespace().map(String::from).collect();
        // Without a command line (another user's, or unreadable) keep the name's word.
        return busybox_applet(&row.comm, &argv).is_none_or(|a| SHELL_APPLETS.contains(&a));
    }
    SHELLS.contains(&row.comm.as_str())
}

/// Whether a command name is a service manager's.
///
/// Exists so `ps` and `inspect` share one list.
pub fn is_service_manager(comm: &str) -> bool {
    SERVICE_MANAGERS.contains(&comm)
}

/// The row with this PID in a table sorted by PID.
fn find(rows: &[PsRow], pid: Pid) -> Option<&PsRow> {
    rows.binary_search_by_key(&pid, |r| r.pid)
        .ok()
        .map(|i| &rows[i])
}

/// The same program forked per connection (sshd → sshd-session) keeps its name, or the
/// parent's as a prefix.
fn same_program(child: &str, parent: &str) -> bool {
    !parent.is_empty() && (child == parent || child.starts_with(&format!("{parent}-")))
}

/// The role of `row` and the PID it refers to (a worker's daemon; the process itself
/// otherwise), given the whole table sorted by PID.
///
/// Exists as the one rule for `ps` and `inspect`; pure, so it is tested on made-up tables.
pub fn classify(rows: &[PsRow], row: &PsRow) -> (Role, Pid) {
    classify_depth(rows, row, 0)
}

fn classify_depth(rows: &[PsRow], row: &PsRow, depth: usize) -> (Role, Pid) {
    if row.kernel_thread {
        return (Role::KernelThread, row.pid);
    }
    if row.stat.starts_with('Z') {
        return (Role::Zombie, row.pid);
    }
    if row.pid == 1 {
        return (Role::Init, row.pid);
    }
    if row.tty.is_some() {
        let role = if row.sid == row.pid {
            Role::Process
        } else {
            Role::Job
        };
        return (role, row.pid);
    }
    // A worker: the nearest ancestor that is a daemon or service, in the same session
    // (or the same program), before the chain reaches init or a service manager.
    if depth < 64
        && let Some(parent) = find(rows, row.ppid)
        && parent.pid > 1
        && !is_service_manager(&parent.comm)
        && !is_shell(parent)
        && parent.tty.is_none()
        && (parent.sid == row.sid
            // A per-connection child that made its own session (sshd's) is still the
            // daemon's; a double-forked child of the same binary is not a session leader.
            || (row.sid == row.pid && same_program(&row.comm, &parent.comm)))
    {
        match classify_depth(rows, parent, depth + 1) {
            (Role::Daemon | Role::Service, main) => {
                // Only a child in the daemon's session, or a copy of it, works for it.
                return (
                    Role::Worker,
                    if main == parent.pid { parent.pid } else { main },
                );
            }
            (Role::Worker, main) => return (Role::Worker, main),
            _ => {}
        }
    }
    let managed = find(rows, row.ppid).is_some_and(|p| is_service_manager(&p.comm));
    if row.sid == row.pid && is_shell(row) {
        // A script's shell in a session of its own: its children are its jobs.
        return (Role::Process, row.pid);
    }
    if row.sid == row.pid {
        return (if managed { Role::Service } else { Role::Daemon }, row.pid);
    }
    // A program a supervisor forked without setsid() (supervisord's) lives in its
    // manager's session: the live leader is the manager, not a launching shell.
    if managed && row.sid == row.ppid {
        return (Role::Service, row.pid);
    }
    // Not a session leader: is the session's leader still alive? sid 0 means it lives
    // outside this PID namespace, which from here is as good as gone.
    match find(rows, row.sid) {
        Some(leader) if row.sid != 0 && !leader.stat.starts_with('Z') => (Role::Job, row.pid),
        _ => (if managed { Role::Service } else { Role::Daemon }, row.pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: Pid, ppid: Pid, sid: Pid, tty: bool, comm: &str) -> PsRow {
        PsRow {
            pid,
            ppid,
            pgid: sid,
            sid,
            tty: tty.then(|| "pts/0".into()),
            tpgid: -1,
            stat: "S".into(),
            uid: 0,
            time: "0:00".into(),
            command: comm.into(),
            comm: comm.into(),
            kernel_thread: false,
            daemon_like: false,
            role: Role::Process,
            main_pid: pid,
        }
    }

    fn table(mut rows: Vec<PsRow>) -> Vec<PsRow> {
        rows.sort_by_key(|r| r.pid);
        rows
    }

    fn role_of(rows: &[PsRow], pid: Pid) -> (Role, Pid) {
        classify(rows, find(rows, pid).unwrap())
    }

    #[test]
    fn adoption_by_init_or_a_subreaper_gives_the_same_role() {
        let by_init = table(vec![
            row(1, 0, 0, false, "init"),
            row(50, 1, 50, false, "food"),
        ]);
        let by_reaper = table(vec![
            row(1, 0, 0, false, "init"),
            row(40, 1, 40, false, "reaper"),
            row(50, 40, 50, false, "food"),
        ]);
        assert_eq!(role_of(&by_init, 50), (Role::Daemon, 50));
        assert_eq!(role_of(&by_reaper, 50), (Role::Daemon, 50));
    }

    #[test]
    fn a_process_still_in_its_launchers_session_is_a_job() {
        let rows = table(vec![
            row(1, 0, 0, false, "init"),
            row(10, 1, 10, false, "bash"),
            row(11, 10, 10, false, "sleep"),
        ]);
        assert_eq!(role_of(&rows, 11), (Role::Job, 11));
        assert_eq!(role_of(&rows, 10), (Role::Process, 10));
        // Once the leader is gone, the same process is what the second fork makes.
        let rows = table(vec![
            row(1, 0, 0, false, "init"),
            row(11, 1, 10, false, "sleep"),
        ]);
        assert_eq!(role_of(&rows, 11), (Role::Daemon, 11));
    }

    #[test]
    fn workers_point_at_their_daemon() {
        let rows = table(vec![
            row(1, 0, 0, false, "systemd"),
            row(100, 1, 100, false, "nginx"),
            row(101, 100, 100, false, "nginx"),
            row(200, 1, 200, false, "sshd"),
            row(201, 200, 201, false, "sshd-session"),
            row(202, 201, 201, false, "sshd-session"),
        ]);
        assert_eq!(role_of(&rows, 100), (Role::Service, 100));
        assert_eq!(role_of(&rows, 101), (Role::Worker, 100));
        assert_eq!(role_of(&rows, 201), (Role::Worker, 200));
        assert_eq!(role_of(&rows, 202), (Role::Worker, 200));
        // A double-forked child of the same binary, whose session leader has exited,
        // is a daemon of its own (the lab's subject under the lab as subreaper).
        let rows = table(vec![
            row(1, 0, 0, false, "init"),
            row(300, 1, 300, false, "daemonlab"),
            row(310, 300, 305, false, "daemonlab"),
        ]);
        assert_eq!(role_of(&rows, 310), (Role::Daemon, 310));
    }

    #[test]
    fn a_program_in_its_supervisors_session_is_a_service_not_a_job() {
        let rows = table(vec![
            row(1, 0, 0, false, "init"),
            row(70, 1, 70, false, "supervisord"),
            row(71, 70, 70, false, "sleep"),
        ]);
        assert_eq!(role_of(&rows, 70), (Role::Daemon, 70));
        assert_eq!(role_of(&rows, 71), (Role::Service, 71));
    }

    #[test]
    fn busybox_is_a_shell_only_when_it_runs_one() {
        let mut syslogd = row(80, 1, 80, false, "busybox");
        syslogd.command = "busybox syslogd -O /tmp/m".into();
        let mut sh = row(90, 1, 90, false, "busybox");
        sh.command = "/bin/busybox sh -c sleep".into();
        let rows = table(vec![row(1, 0, 0, false, "init"), syslogd, sh]);
        assert_eq!(role_of(&rows, 80), (Role::Daemon, 80));
        assert_eq!(role_of(&rows, 90), (Role::Process, 90));
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            busybox_applet("busybox", &argv("busybox syslogd -n")),
            Some("syslogd")
        );
        assert_eq!(
            busybox_applet("busybox", &argv("/sbin/syslogd -n")),
            Some("syslogd")
        );
        assert_eq!(busybox_applet("sleep", &argv("sleep 1")), None);
    }

    #[test]
    fn terminals_kernel_threads_and_init() {
        let mut k = row(3, 2, 0, false, "kworker");
        k.kernel_thread = true;
        let mut z = row(60, 1, 60, false, "dead");
        z.stat = "Z".into();
        let rows = table(vec![
            row(1, 0, 0, false, "init"),
            k,
            row(20, 1, 20, true, "bash"),
            row(21, 20, 20, true, "vim"),
            z,
        ]);
        assert_eq!(role_of(&rows, 1).0, Role::Init);
        assert_eq!(role_of(&rows, 3).0, Role::KernelThread);
        assert_eq!(role_of(&rows, 20).0, Role::Process);
        assert_eq!(role_of(&rows, 21).0, Role::Job);
        assert_eq!(role_of(&rows, 60).0, Role::Zombie);
    }
}
