//! "Is this PID a well-formed daemon?" — the checklist, for any process.
//!
//! The lab shows one process becoming a daemon; `daemonlab inspect PID` turns the same
//! rules on processes the learner did not make (sshd, cron, their own server) and says,
//! rule by rule, what the kernel reports and what it means. The engine is UI-free:
//! [`inspect`] gathers, [`text_report`] and [`json_report`] are two views of one [`Audit`].

mod checks;
mod pidfile;
mod proc_extra;
pub(crate) use proc_extra::tgid as proc_extra_tgid;
mod report;
mod sockets;
mod unix_diag;

pub use pidfile::PidFile;
pub use report::{error_json, json_report, markdown_report, text_report};

pub use crate::probe::ps::Role;
use crate::probe::{ProbeError, ProcSnapshot};

/// The outcome of one rule.
///
/// Exists so scripts can filter on a closed set of words ("pass", "warn", "fail",
/// "unknown") rather than parse sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The process follows the rule (or a legitimate variant of it).
    Pass,
    /// Not wrong for every program, but worth a look.
    Warn,
    /// Breaks the rule: not detached as a daemon should be.
    Fail,
    /// /proc would not tell us (another user's process, a zombie).
    Unknown,
}

/// One rule applied to one process.
///
/// Exists so every view (text, JSON, a future TUI pane) shows the same verdicts in the
/// same words; `id` is stable for scripts, `detail` is one plain-English line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Stable name of the rule: `controlling_tty`, `session`, `process_group`, `parent`,
    /// `cwd`, `root`, `umask`, `stdio`, `open_fds`, `sighup`, `signal_mask`,
    /// `pidfile_lock` (any single-instance guard), `syslog`, `credentials`, `state`.
    pub id: &'static str,
    /// How the process fared.
    pub status: Status,
    /// Why, in one line that names the thing (the tty, the directory, the fd).
    pub detail: String,
}

/// The full audit of one process.
///
/// Exists as an owned, serializable value so the CLI can print it in any format and tests
/// can assert on it without parsing text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Audit {
    /// The PID asked for (a thread's TID stays as given).
    pub pid: i32,
    /// What it is: daemon, service, worker, thread, job, kernel_thread, zombie, init,
    /// process.
    pub role: Role,
    /// The process the role refers to: a worker's daemon, a thread's process, otherwise
    /// the process itself. `process` and `checks` are this process's, except that a
    /// worker is audited as itself with its daemon's rules skipped.
    pub main_pid: i32,
    /// Its pid file, if one was found (through a locked descriptor, the command line or
    /// the usual places); a worker's is its daemon's.
    pub pidfile: Option<PidFile>,
    /// The kernel's view of it, the same object the tour prints; `None` is reserved for
    /// audits that could not snapshot the process (never produced by [`inspect`] today).
    pub process: Option<ProcSnapshot>,
    /// Every rule, in a fixed order.
    pub checks: Vec<Check>,
    /// One line summing up the checks.
    pub verdict: String,
}

impl Audit {
    /// The check with this id, if it was run.
    ///
    /// Exists for callers (tests, a UI) that care about one rule.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Why a process could not be audited at all.
///
/// Exists so the CLI can name the PID and tell the user what to do next; a partly
/// readable process is not an error (its unreadable checks are [`Status::Unknown`]).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No /proc entry: never existed, exited, or hidden by `hidepid`.
    #[error("process {0} does not exist (it may have exited) — check the PID with `ps -e`")]
    NoSuchProcess(i32),
    /// A kernel thread: it has no user-space side, so the rules do not apply.
    #[error(
        "process {0} is a kernel thread (child of kthreadd, no user-space daemon to audit) — pick a user-space process"
    )]
    KernelThread(i32),
    /// Even the basic files (stat, status) were denied.
    #[error("process {pid}: {what} is not readable (permission: run as its owner or root)")]
    NotReadable {
        /// The process.
        pid: i32,
        /// The /proc path that was denied.
        what: String,
    },
    /// The text given as a PID is not one.
    #[error("{0}")]
    BadPid(String),
    /// A PID no process can have: the highest is pid_max − 1.
    #[error(
        "{pid} is not a valid process ID on this kernel: the highest is pid_max − 1 = {} (/proc/sys/kernel/pid_max is {max})",
        max - 1
    )]
    BeyondPidMax {
        /// The PID asked for.
        pid: i64,
        /// The kernel's pid_max.
        max: i64,
    },
    /// /proc answered with something unexpected (an I/O error or an unknown format).
    #[error(transparent)]
    Probe(ProbeError),
}

impl From<ProbeError> for InspectError {
    fn from(err: ProbeError) -> Self {
        match err {
            ProbeError::NoSuchProcess(pid) => InspectError::NoSuchProcess(pid),
            ProbeError::PermissionDenied { pid, what } => InspectError::NotReadable { pid, what },
            other => InspectError::Probe(other),
        }
    }
}

/// Parse a PID typed by a user.
///
/// Exists because `kill(2)` gives 0 and negative numbers other meanings (the caller's
/// group, a group by ID, every process), so a typo must be refused with a reason rather
/// than looked up.
pub fn parse_pid(text: &str) -> Result<i32, InspectError> {
    let trimmed = text.trim();
    let bad = |why: String| InspectError::BadPid(format!("{trimmed:?} is not a process ID: {why}"));
    let value: i128 = trimmed
        .parse()
        .map_err(|_| bad("expected a positive whole number such as 1234".into()))?;
    if value <= 0 {
        return Err(bad(
            "process IDs are positive (0 and negative numbers name process groups in kill(2))"
                .into(),
        ));
    }
    let max = proc_extra::pid_max();
    if value >= i128::from(max) {
        // alloc_pid() hands out 1 .. pid_max − 1: pid_max itself is never a PID.
        return Err(InspectError::BeyondPidMax {
            pid: i64::try_from(value).unwrap_or(i64::MAX),
            max,
        });
    }
    i32::try_from(value).map_err(|_| bad("too large".into()))
}

/// Audit `pid` against the daemon rules of APUE chapter 13.
///
/// Exists as the engine of `daemonlab inspect`: it reads /proc once, refuses kernel
/// threads (they have no terminal, session or descriptors to judge), and degrades parts
/// it may not read to [`Status::Unknown`] instead of failing.
pub fn inspect(pid: i32) -> Result<Audit, InspectError> {
    if pid <= 0 {
        return Err(InspectError::NoSuchProcess(pid));
    }
    // A thread ID has a /proc entry of its own (hidden from readdir): audit its process.
    let tgid = proc_extra::tgid(pid).unwrap_or(pid);
    let thread = tgid != pid;
    let audited = tgid;
    // The scan for the other ends of its pipes and sockets reads every other process,
    // the snapshot only this one: they run side by side, and the process's own tables
    // (its sockets above all) are read right after its snapshot, not after the scan, so
    // a short-lived descriptor has as little time as before to change in between. The
    // scan's side then reads what needs neither (`checks::Aside`: the pid-file search,
    // status, the threads' masks, its related rows). Either side that finishes first takes a hand in what
    // is left of the other (see `probe::help_others`), so neither core waits while the
    // other works.
    let board = crate::probe::Board::new();
    let facts = std::thread::scope(|scope| {
        // Counted as the board's before it starts: the caller, if done first, waits for
        // its work even when the scheduler has not run it yet.
        let member = board.member();
        let scan = scope.spawn(move || {
            member.enter(|| {
                let channels = sockets::Channels::scan(audited);
                let aside = checks::Aside::read(audited);
                crate::probe::help_others();
                (channels, aside)
            })
        });
        board.enter(|| {
            let aside = || {
                crate::probe::help_others();
                scan.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            };
            let extra = proc_extra::stat_extra(audited);
            let snap = crate::probe::snapshot(audited, None)?;
            let kernel_thread = match extra {
                Some(e) => e.flags & proc_extra::PF_KTHREAD != 0,
                // Without the flags, fall back on kthreadd's family (PID 2 and its children).
                None => audited == 2 || snap.ppid == 2,
            };
            if kernel_thread {
                return Err(InspectError::KernelThread(pid));
            }
            Ok(checks::Facts::gather(snap, extra, aside))
        })
    })?;
    let mut checks = checks::all(&facts);
    let (role, main_pid) = if thread {
        (Role::Thread, tgid)
    } else {
        (facts.role, facts.main_pid)
    };
    if thread {
        let name = crate::locks::comm(pid).unwrap_or_else(|| "?".into());
        let process = format!("{} (pid {tgid})", facts.snap.comm);
        checks.insert(
            0,
            Check {
                id: "thread",
                status: Status::Pass,
                detail: format!(
                    "{pid} is thread {name:?} of process {process}, not a process of its own: this is the audit of {process}"
                ),
            },
        );
    }
    let verdict = report::verdict(&facts.snap, role, main_pid, &checks);
    Ok(Audit {
        pid,
        role,
        main_pid,
        pidfile: facts.pidfile.as_ref().map(|f| f.file.clone()),
        process: Some(facts.snap),
        checks,
        verdict,
    })
}

impl InspectError {
    /// The role this error says the PID has, when it says one (a kernel thread).
    ///
    /// Exists for the JSON error object, so scripts learn the role even when the rules
    /// do not apply.
    pub fn role(&self) -> Option<Role> {
        matches!(self, InspectError::KernelThread(_)).then_some(Role::KernelThread)
    }
}
