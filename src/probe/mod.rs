//! /proc snapshots of one process, diffs between snapshots, tty names.
//!
//! The kernel is the source of truth for what a daemonization step did, so after every
//! step the lab takes a [`ProcSnapshot`] of its subject and shows what
//! [`ProcSnapshot::changed_fields`] reports. A snapshot is an owned, serializable value:
//! the TUI and the headless reports are two views of the same data.
//!
//! Nearly all the cost is in the kernel, and a snapshot already makes the minimum of
//! syscalls (one open of /proc/PID, then one per file or link, plus one readlink and one
//! fdinfo read per fd, which also keeps any `lock:` lines for the audit). What that costs
//! is measured by `cargo bench --bench probe` (a whole snapshot, stat alone) and, per
//! descriptor, `cargo bench --bench inspect`: take snapshots on events, not in a busy
//! loop, and use [`read_stat`] when only the IDs are needed. Most of it is the opens'
//! lookups: a process snapshotted again and again is best followed by a [`Watch`],
//! which keeps its files open and reads them again.

mod diff;
mod fds;
pub mod ps;
mod read;
pub mod sessions;
mod shares;
mod signals;
pub(crate) mod stat;
mod status;
mod tty;
mod watch;

use serde::Serializer;

pub(crate) use read::{LinkBuf, NumberName, fd_dir_known_empty, list_numbers};
pub(crate) use shares::{Board, help_others, in_shares};
pub use signals::{mask_names, signal_name};
pub use stat::{ProcStat, parse_stat, read_stat, state_name};
pub use tty::{tty_major_minor, tty_name};
pub use watch::Watch;

use read::{ProcDir, Scratch};

/// A process ID as the kernel and `libc::pid_t` spell it, so values pass to nix/libc as-is.
pub type Pid = i32;

/// Everything daemonization changes about one process, as the kernel reported it at one
/// moment.
///
/// Exists as an owned value so it can be kept, diffed against the next one, sent to the
/// UI thread and serialized for the headless reports without touching /proc again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcSnapshot {
    /// The process ID (from stat).
    pub pid: Pid,
    /// The parent as the kernel sees it now: after an orphaning, the adopter.
    pub ppid: Pid,
    /// Process group ID; equals `pid` after `setsid()` or `setpgid(0, 0)`.
    pub pgid: Pid,
    /// Session ID; equals `pid` for a session leader.
    pub sid: Pid,
    /// Controlling terminal by name ("pts/3"); `None` once the session has none.
    pub tty: Option<String>,
    /// The raw packed device of the controlling terminal, field 7 of stat.
    pub tty_nr: i32,
    /// Foreground process group of the controlling terminal; -1 without one.
    pub tpgid: Pid,
    /// The one-letter scheduler state ('S', 'Z', ...).
    pub state: char,
    /// The state in words ("sleeping", "zombie"), see [`state_name`].
    pub state_name: &'static str,
    /// The command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// The file-mode creation mask; serialized as four octal digits ("0022").
    #[serde(serialize_with = "serialize_umask")]
    pub umask: Option<u32>,
    /// Current working directory; `None` if unreadable (another user's process, a zombie).
    pub cwd: Option<String>,
    /// Root directory (differs from "/" in a chroot or container).
    pub root: Option<String>,
    /// Open descriptors sorted by fd; `None` if the fd table is unreadable.
    pub fds: Option<Vec<FdEntry>>,
    /// What SIGHUP would do: the signal a daemon must survive when its terminal goes away.
    pub sighup: Disposition,
    /// Every ignored, caught and blocked signal, by name.
    pub signals: SignalSets,
    /// `sid == pid`: a session leader can acquire a controlling terminal again.
    pub session_leader: bool,
    /// `pgid == pid`: a group leader cannot call `setsid()`.
    pub group_leader: bool,
    /// Command name of `ppid`; `None` if ppid is 0 or the parent is gone or unreadable.
    pub parent_comm: Option<String>,
    /// Set when the caller said who created the process and that is no longer its parent.
    pub adopted_by: Option<Adopter>,
}

/// One open file descriptor.
///
/// Exists because "close all open descriptors" is a daemonization rule, and whether an fd
/// is close-on-exec decides whether it leaks into whatever the daemon execs next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FdEntry {
    /// The descriptor number.
    pub fd: i32,
    /// Where it points, as readlink of /proc/PID/fd/N: a path, `pipe:[123]`, `socket:[45]`...
    pub target: String,
    /// Whether `FD_CLOEXEC` is set.
    pub cloexec: bool,
    /// The `lock:` lines of its fdinfo (Linux 4.5+), kept from the same read that gave
    /// `cloexec`, so an audit need not open fdinfo a second time; `None` when it had none.
    #[serde(skip)]
    pub lock_lines: Option<Box<str>>,
}

/// What a process does on receipt of one signal.
///
/// Exists to answer the question the daemon lessons ask of SIGHUP: will losing the
/// terminal kill it (default), be shrugged off (ignored), or reach a handler (caught)?
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// The kernel's default action (for SIGHUP: terminate).
    Default,
    /// `SIG_IGN`: the signal is discarded.
    Ignored,
    /// A handler is installed.
    Caught,
}

/// Signal masks by name.
///
/// Exists because inherited dispositions and masks survive `fork` and `exec`; a daemon
/// should know what it started with.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SignalSets {
    /// Signals set to `SIG_IGN`.
    pub ignored: Vec<String>,
    /// Signals with a handler installed.
    pub caught: Vec<String>,
    /// Signals in the (main thread's) blocked mask.
    pub blocked: Vec<String>,
}

/// The process that took over an orphan.
///
/// Exists because the adopter is not always PID 1: the nearest subreaper
/// (`systemd --user`, a container's init) wins, and the UI names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Adopter {
    /// The adopter's PID (the orphan's current ppid).
    pub pid: Pid,
    /// The adopter's command name, or "?" if it could not be read.
    pub comm: String,
}

/// Why a snapshot could not be taken.
///
/// Exists so the UI and the CLI can tell the user what happened to which process and
/// what to do about it, rather than print a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// There is no /proc entry for the PID: it never existed, exited, or is hidden by
    /// `hidepid` (which looks identical from here).
    #[error("process {0} does not exist (it may have exited) — check the PID with `ps -axj`")]
    NoSuchProcess(Pid),
    /// The kernel refused to let us read `what`.
    #[error("cannot read {what}: permission denied — run as the process's owner or root")]
    PermissionDenied {
        /// The process being probed.
        pid: Pid,
        /// The /proc path that could not be read.
        what: String,
    },
    /// Any other I/O failure while reading `what`.
    #[error(
        "cannot read {what}: {source} — check that /proc is mounted and that process {pid} still exists"
    )]
    Io {
        /// The process being probed.
        pid: Pid,
        /// The /proc path that could not be read.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `what` was read but its contents are not in the format this code knows.
    #[error(
        "unexpected contents in {what} (process {pid}): {detail} — please report this with the output of `uname -r`"
    )]
    Parse {
        /// The process being probed.
        pid: Pid,
        /// The /proc path whose contents did not parse.
        what: String,
        /// What exactly was wrong.
        detail: String,
    },
}

/// Format a umask the way `umask(1)` prints it: four octal digits, "0022".
///
/// Exists so the UI, the reports and the JSON all show the mask the same way; in decimal
/// (18) a umask is unrecognisable.
pub fn format_umask(mask: u32) -> String {
    format!("{mask:04o}")
}

fn serialize_umask<S: Serializer>(umask: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match umask {
        Some(mask) => s.serialize_str(&format_umask(*mask)),
        None => s.serialize_none(),
    }
}

/// SIGHUP's number; the same on every Linux architecture.
const SIGHUP: u32 = 1;

/// Read one process from /proc: stat, status, cwd, root, the fd table and the parent's
/// name.
///
/// `birth_parent` is the PID that created the process, when the caller knows it (the lab
/// knows who forked its subject). If the kernel's ppid differs from it, the process was
/// orphaned and adopted, and `adopted_by` names the adopter; with `None`, `adopted_by`
/// is `None` too, since without a birth parent there is nothing to compare against.
///
/// Fails only when stat or status cannot be read; cwd, root and fds degrade to `None`
/// (they need ptrace-level access, which another user's process does not grant).
pub fn snapshot(pid: Pid, birth_parent: Option<Pid>) -> Result<ProcSnapshot, ProbeError> {
    let dir = ProcDir::open(pid)?;
    let mut scratch = Scratch::new();

    let stat = parse_stat(pid, dir.read_file(c"stat", &mut scratch)?)?;
    let status = status::parse_status(pid, dir.read_file(c"status", &mut scratch)?)?;
    let (cwd, root) = (link_text(&dir, b"cwd"), link_text(&dir, b"root"));
    let fds = fds::read_fds(&dir, status.fd_size);
    let parent_comm = read_comm(stat.ppid, &mut scratch);
    Ok(assemble(
        stat,
        status,
        [cwd, root],
        fds,
        parent_comm,
        birth_parent,
    ))
}

/// The target of the link `name` of `dir` ("cwd", "root"); `None` when it is refused
/// (another user's process) or gone (a zombie's).
fn link_text(dir: &ProcDir, name: &[u8]) -> Option<String> {
    dir.readlink(name)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// A snapshot from what was read: the one place that derives its fields, for
/// [`snapshot`] and [`Watch::snapshot`] alike.
fn assemble(
    stat: ProcStat,
    status: status::StatusFields,
    [cwd, root]: [Option<String>; 2],
    fds: Option<Vec<FdEntry>>,
    parent_comm: Option<String>,
    birth_parent: Option<Pid>,
) -> ProcSnapshot {
    let adopted_by = match birth_parent {
        Some(parent) if parent != stat.ppid => Some(Adopter {
            pid: stat.ppid,
            comm: parent_comm.clone().unwrap_or_else(|| "?".to_owned()),
        }),
        _ => None,
    };
    ProcSnapshot {
        pid: stat.pid,
        ppid: stat.ppid,
        pgid: stat.pgid,
        sid: stat.sid,
        tty: tty_name(stat.tty_nr),
        tty_nr: stat.tty_nr,
        tpgid: stat.tpgid,
        state: stat.state,
        state_name: state_name(stat.state),
        comm: stat.comm,
        umask: status.umask,
        cwd,
        root,
        fds,
        sighup: status.masks.disposition(SIGHUP),
        signals: status.masks.named(),
        session_leader: stat.sid == stat.pid,
        group_leader: stat.pgid == stat.pid,
        parent_comm,
        adopted_by,
    }
}

/// The thread-group ID of task `tid` (a thread's process; a process's own PID), from
/// `/proc/TID/status`; `None` if the task is gone or the line is missing.
pub(crate) fn read_tgid(tid: Pid) -> Option<Pid> {
    read_proc_file(&format!("/proc/{tid}/status"), status::parse_tgid)?
}

/// `parse` of a small file of /proc read by absolute path (one open, one read, into a
/// buffer of the probe's); `None` if it cannot be read.
pub(crate) fn read_proc_file<R>(path: &str, parse: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let mut scratch = Scratch::new();
    Some(parse(read::read_path(path.as_bytes(), &mut scratch).ok()?))
}

/// `/proc/PPID/comm` without its newline; the parent is a different process, so this is
/// the one read not pinned by the subject's directory fd.
fn read_comm(pid: Pid, scratch: &mut Scratch) -> Option<String> {
    let bytes = read::read_path(comm_path(pid)?.as_bytes(), scratch).ok()?;
    Some(comm_text(bytes))
}

/// "/proc/PID/comm" for a PID that can have one (a ppid of 0 has none).
fn comm_path(pid: Pid) -> Option<String> {
    (pid > 0).then(|| format!("/proc/{pid}/comm"))
}

/// The text of a comm file, without its newline.
fn comm_text(bytes: &[u8]) -> String {
    let name = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests;
