//! The whole system in `ps -axj` columns: the engine of `daemonlab ps` and of the
//! Processes tab.
//!
//! APUE 13.2 introduces daemons by reading `ps -axj` output: no controlling terminal
//! (TTY "?"), session leaders, parent init, kernel threads in brackets. This module
//! produces the same table from /proc so the learner can find their own daemon in it,
//! filter it down to [`daemons_only`], or see it in the [`tree`].
//!
//! Cost: one readdir pass over /proc, then per process an `O_PATH` open of `/proc/PID`
//! relative to one /proc fd, an `fstat` of it (the UID), and one open+read+close each
//! of `stat`, `cmdline` and `status` (the last two skipped for kernel threads) relative
//! to that, into one reused buffer; `status` only for procps's `L` (VmLck > 0). The directory fd costs the same
//! as naming "PID/stat" from /proc (measured) and pins the process, like `probe::read`.
//! Nearly all of the cost per process is the kernel formatting stat and copying cmdline
//! out of another address space; `cargo bench --bench ps` measures the table beside
//! procps `ps -axj` in the same run.

mod format;
mod order;
mod parse;
pub mod role;

pub use role::{Role, classify, is_service_manager};

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{SysconfVar, sysconf};

use super::{Pid, tty_name};
use crate::probe::stat::PF_KTHREAD;

/// One line of `ps -axj`, plus two judgements the raw columns leave to the reader.
///
/// Exists as an owned, serializable value so the CLI's text and JSON output and the
/// Processes tab all show the same data from one /proc pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PsRow {
    /// Process ID.
    pub pid: Pid,
    /// Parent process ID; 0 for init and kthreadd (and for any process whose parent is
    /// outside our PID namespace).
    pub ppid: Pid,
    /// Process group ID.
    pub pgid: Pid,
    /// Session ID; 0 when the session leader is outside our PID namespace.
    pub sid: Pid,
    /// Controlling terminal by name ("pts/3"); `None` (JSON null, text "?") without one.
    pub tty: Option<String>,
    /// Foreground process group of the controlling terminal; -1 without one.
    pub tpgid: Pid,
    /// procps's STAT: the state letter, then '<' (nice < 0), 'N' (nice > 0), 'L' (pages
    /// locked in memory, VmLck > 0), 's' (session leader), 'l' (multi-threaded), '+' (in its terminal's foreground group).
    pub stat: String,
    /// Owner of `/proc/PID`, which the kernel sets to the process's *effective* UID
    /// (the directory keeps it even for non-dumpable processes). That is what
    /// `ps -axj` prints as UID; the real UID would cost a `status` read per process.
    pub uid: u32,
    /// CPU time (user + system) as `ps j` prints it: minutes, colon, two-digit seconds
    /// ("0:02", "754:07").
    pub time: String,
    /// The argument vector joined by spaces; "[comm]" when there is none (kernel
    /// threads, zombies — which also get " <defunct>").
    pub command: String,
    /// The kernel flags the task as a kernel thread (`PF_KTHREAD`): kthreadd and its
    /// children. APUE's `ps` listing shows them in brackets; they are not daemons in the
    /// book's sense even though they have no terminal.
    pub kernel_thread: bool,
    /// Looks like a daemon from the kernel's point of view; see [`is_daemon_like`] for
    /// the rule.
    pub daemon_like: bool,
    /// The command name the kernel keeps (stat's second field, at most 15 bytes).
    pub comm: String,
    /// What the process is, from the whole table; see [`role::classify`].
    pub role: Role,
    /// The process the role refers to: a worker's daemon, otherwise the process itself.
    pub main_pid: Pid,
}

/// A column to sort the table by, for the Processes tab's sort key.
///
/// Exists so the UI can cycle through orderings without knowing how each compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Ascending PID: `ps`'s own order, and creation order until PIDs wrap.
    Pid,
    /// Ascending parent, then PID: siblings together.
    Ppid,
    /// Ascending session, then PID: each session (a login, a daemon) together.
    Sid,
    /// Command line as text, then PID.
    Command,
    /// Most CPU time first, then PID: what someone sorting by time wants to see.
    Time,
}

/// Read every process on the system, as `ps -axj` does.
///
/// Processes that exit while the table is read are left out, never reported as errors;
/// so are processes /proc will not show us (`hidepid`). Fails only when /proc itself
/// cannot be opened or listed. Rows come in ascending PID order.
pub fn read_table() -> io::Result<Vec<PsRow>> {
    TableReader::default().read()
}

/// The rows of `seeds` and of every process their roles depend on: each row's parent,
/// session leader and group leader, and theirs in turn, up to init. Rows come in
/// ascending PID order, roles marked as [`read_table`] would mark them (the role of a row
/// only ever looks at rows of that closure).
///
/// Exists for `inspect`, which judges one process: this reads a handful of processes
/// instead of the whole machine (`cargo bench --bench inspect`).
pub fn read_related(seeds: &[Pid]) -> io::Result<Vec<PsRow>> {
    read_more_related(Vec::new(), seeds)
}

/// [`read_related`] of `seeds` added to `known`, rows an earlier call returned: only
/// the processes not among them are read, and the roles are marked again over the whole.
///
/// Exists so `inspect` can read its process's own closure beside the snapshot and add
/// the holders of its pipes, known only once the peer scan is done, afterwards.
pub fn read_more_related(known: Vec<PsRow>, seeds: &[Pid]) -> io::Result<Vec<PsRow>> {
    // Every seed already known (its closure with it): the rows and their roles stand.
    if !known.is_empty()
        && seeds
            .iter()
            .all(|p| known.binary_search_by_key(p, |r| r.pid).is_ok())
    {
        return Ok(known);
    }
    let proc_dir = open_proc()?;
    let ticks_per_second = ticks_per_second();
    let mut buf = vec![0; 4096];
    let mut path = ProcPath::default();
    let mut ttys = TtyNames::default();
    let mut seen: std::collections::HashSet<Pid> = known.iter().map(|r| r.pid).collect();
    let mut queue: Vec<Pid> = seeds.to_vec();
    let mut rows = known;
    while let Some(pid) = queue.pop() {
        // 0 is "outside this PID namespace" (or no parent at all): nothing to read.
        if pid <= 0 || !seen.insert(pid) {
            continue;
        }
        let read = read_new_row(
            proc_dir.as_fd(),
            pid,
            &mut path,
            &mut buf,
            &mut ttys,
            ticks_per_second,
        );
        if let Some((row, _)) = read {
            queue.extend([row.ppid, row.sid, row.pgid]);
            rows.push(row);
        }
    }
    rows.sort_unstable_by_key(|r| r.pid);
    mark_daemons(&mut rows);
    Ok(rows)
}

/// How many passes a known process's command line and locked-memory flag are reused
/// before they are read again (in turn, by PID): a title set by setproctitle shows
/// within this many refreshes.
const REREAD_EVERY: u64 = 8;

/// What a pass keeps of a process for the next: the parts of a row that only change
/// rarely, which cost two more files (cmdline, and status, the dearest) to read.
struct Known {
    start_time: u64,
    cmdline: Vec<u8>,
    locked: bool,
}

/// The process table read again and again, as the Processes tab does once a second:
/// a process seen before, with the same start time (so the same process, not a reused
/// PID), costs one open and read of its stat — what every refresh must read anyway —
/// and its command line and locked-memory flag are read again only every
/// [`REREAD_EVERY`]th pass. New processes are read whole.
#[derive(Default)]
pub struct TableReader {
    known: std::collections::HashMap<Pid, Known>,
    pass: u64,
    buf: Vec<u8>,
    ttys: TtyNames,
}

impl TableReader {
    /// One pass over /proc; see [`read_table`].
    pub fn read(&mut self) -> io::Result<Vec<PsRow>> {
        // An O_PATH fd for the relative lookups; listing needs its own stream.
        let proc_dir = open_proc()?;
        let pids = list_pids()?;
        let proc_fd = proc_dir.as_fd();
        let ticks_per_second = ticks_per_second();
        if self.buf.len() < 4096 {
            self.buf.resize(4096, 0);
        }
        self.pass += 1;
        let mut rows = Vec::with_capacity(pids.len());
        let mut path = ProcPath::default();
        let mut known = std::collections::HashMap::with_capacity(pids.len());
        for pid in pids {
            let turn = (pid as u64).wrapping_add(self.pass) % REREAD_EVERY == 0;
            let before = self.known.remove(&pid).filter(|_| !turn);
            if let Some((row, keep)) = read_row(
                proc_fd,
                pid,
                &mut path,
                &mut self.buf,
                &mut self.ttys,
                ticks_per_second,
                before,
            ) {
                rows.push(row);
                known.insert(pid, keep);
            }
        }
        // Whatever was not seen this pass has exited: forgotten.
        self.known = known;
        mark_daemons(&mut rows);
        Ok(rows)
    }
}

/// An `O_PATH` fd for /proc, for lookups relative to it.
fn open_proc() -> io::Result<OwnedFd> {
    nix::fcntl::open(
        c"/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| with_context(io::Error::from(e), "cannot open /proc"))
}

/// Clock ticks per second, the unit of stat's times.
fn ticks_per_second() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as u64,
        _ => 100, // USER_HZ on every Linux architecture.
    }
}

/// The numeric entries of /proc, sorted (readdir already yields them in order; sorting
/// makes the binary search in [`mark_daemons`] independent of that).
fn list_pids() -> io::Result<Vec<Pid>> {
    let listing = |e| with_context(e, "cannot list /proc — is procfs mounted?");
    let mut pids = Vec::with_capacity(1024);
    for entry in std::fs::read_dir("/proc").map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.first().is_some_and(u8::is_ascii_digit)
            && let Some(pid) = crate::probe::stat::parse_int(name)
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// One process, or `None` if it vanished or cannot be read; with what to keep of it.
/// `before` is what an earlier pass kept: used when the start time still matches.
fn read_row(
    proc_fd: BorrowedFd<'_>,
    pid: Pid,
    path: &mut ProcPath,
    buf: &mut Vec<u8>,
    ttys: &mut TtyNames,
    ticks_per_second: u64,
    before: Option<Known>,
) -> Option<(PsRow, Known)> {
    if let Some(before) = before {
        // One file: PID/stat, straight from the /proc fd; its owner is the process's
        // effective UID, as the directory's is.
        let fd: OwnedFd = openat(
            proc_fd,
            path.set_stat(pid),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let uid = fstat(&fd).ok()?.st_uid;
        let mut file = File::from(fd);
        let n = read_whole(&mut file, buf, 0).ok()?;
        let st = parse::parse(&buf[..n]).filter(|st| st.pid == pid)?;
        if st.start_time == before.start_time {
            let row = build_row(
                &st,
                uid,
                &before.cmdline,
                buf,
                ttys,
                ticks_per_second,
                before.locked,
            );
            return Some((row, before));
        }
        // Another process under the same PID: read it whole, as a new one.
    }
    read_new_row(proc_fd, pid, path, buf, ttys, ticks_per_second)
}

/// A process not seen before (or due to be read again): stat, cmdline and status.
fn read_new_row(
    proc_fd: BorrowedFd<'_>,
    pid: Pid,
    path: &mut ProcPath,
    buf: &mut Vec<u8>,
    ttys: &mut TtyNames,
    ticks_per_second: u64,
) -> Option<(PsRow, Known)> {
    // One lookup of the PID, then short lookups below it; the fd also pins the process,
    // so a PID reused mid-read fails with ESRCH instead of mixing in a stranger's files.
    let dir = openat(
        proc_fd,
        path.set(pid),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let uid = fstat(&dir).ok()?.st_uid;

    let stat_len = read_file(dir.as_fd(), c"stat", buf, 0).ok()?;
    let st = parse::parse(&buf[..stat_len]).filter(|st| st.pid == pid)?;
    let kernel_thread = st.flags & PF_KTHREAD != 0;

    // cmdline goes after stat in the same buffer; kernel threads have none to read.
    let cmd_len = if kernel_thread {
        0
    } else {
        match read_file(dir.as_fd(), c"cmdline", buf, stat_len) {
            Ok(n) => n,
            // Gone between the two reads: leave it out like any vanished process.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {
                return None;
            }
            // Unreadable (hidepid, a process stuck mid-exec): show its comm like ps.
            Err(_) => 0,
        }
    };
    // procps's `L`: pages locked in memory (VmLck > 0), which only `status` shows. It
    // goes after cmdline in the same buffer; kernel threads have no memory to lock.
    let locked = !kernel_thread
        && read_file(dir.as_fd(), c"status", buf, stat_len + cmd_len)
            .ok()
            .is_some_and(|n| vm_locked(&buf[stat_len + cmd_len..stat_len + cmd_len + n]));
    let cmdline = buf[stat_len..stat_len + cmd_len].to_vec();
    let row = build_row(&st, uid, &cmdline, buf, ttys, ticks_per_second, locked);
    Some((
        row,
        Known {
            start_time: st.start_time,
            cmdline,
            locked,
        },
    ))
}

/// A row from a parsed stat line (whose comm is in `buf`) and the rest.
fn build_row(
    st: &parse::StatLine,
    uid: u32,
    cmdline: &[u8],
    buf: &[u8],
    ttys: &mut TtyNames,
    ticks_per_second: u64,
    locked: bool,
) -> PsRow {
    let comm = &buf[st.comm.clone()];
    PsRow {
        pid: st.pid,
        ppid: st.ppid,
        pgid: st.pgid,
        sid: st.sid,
        tty: ttys.name(st.tty_nr),
        tpgid: st.tpgid,
        stat: format::stat_column(st, locked),
        uid,
        time: format::cpu_time(st.cpu_ticks, ticks_per_second),
        command: format::command(cmdline, comm, st.state),
        kernel_thread: st.flags & PF_KTHREAD != 0,
        daemon_like: false,
        comm: String::from_utf8_lossy(comm).into_owned(),
        role: Role::Process,
        main_pid: st.pid,
    }
}

/// Read a whole /proc file into `buf[start..]`, growing it as needed; returns the length.
///
/// stat is a single seq_file record and cmdline is copied out in full up to the size
/// asked for, so a read that leaves room in the buffer has returned everything; skipping
/// the final zero-length read saves a syscall per file.
fn read_file(
    dir: BorrowedFd<'_>,
    path: &CStr,
    buf: &mut Vec<u8>,
    start: usize,
) -> io::Result<usize> {
    let fd: OwnedFd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_whole(&mut File::from(fd), buf, start)
}

/// Read what is left of `file` into `buf[start..]`, growing it; see [`read_file`].
fn read_whole(file: &mut File, buf: &mut Vec<u8>, start: usize) -> io::Result<usize> {
    let mut end = start;
    loop {
        if end == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[end..]) {
            Ok(0) => break,
            Ok(n) => {
                end += n;
                if end < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(end - start)
}

/// Whether a status file's `VmLck:` line is above 0 kB.
fn vm_locked(status: &[u8]) -> bool {
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"VmLck:"))
        .is_some_and(|rest| rest.iter().any(|b| (b'1'..=b'9').contains(b)))
}

/// A reusable "PID" C string relative to the /proc fd, so no path is allocated.
#[derive(Default)]
struct ProcPath {
    bytes: [u8; PROC_PATH],
}

/// "2147483647/stat" and its NUL fit.
const PROC_PATH: usize = 24;

impl ProcPath {
    /// `PID/stat`, for a read straight from the /proc fd.
    fn set_stat(&mut self, pid: Pid) -> &CStr {
        self.write(format_args!("{pid}/stat"))
    }

    fn set(&mut self, pid: Pid) -> &CStr {
        self.write(format_args!("{pid}"))
    }

    /// `text` and a NUL in the buffer (an i32 and "/stat" are at most 16 bytes: fits).
    fn write(&mut self, text: std::fmt::Arguments<'_>) -> &CStr {
        let mut cursor = &mut self.bytes[..];
        cursor.write_fmt(text).expect("fits in the path buffer");
        cursor.write_all(&[0]).expect("NUL fits in the path buffer");
        let len = PROC_PATH - cursor.len();
        CStr::from_bytes_with_nul(&self.bytes[..len]).expect("one NUL, at the end")
    }
}

/// Terminal names by `tty_nr`, so a session of many processes decodes its terminal once
/// (and an unusual terminal's /dev search happens once per table).
#[derive(Default)]
struct TtyNames {
    known: Vec<(i32, Option<String>)>,
}

impl TtyNames {
    fn name(&mut self, tty_nr: i32) -> Option<String> {
        if tty_nr == 0 {
            return None;
        }
        if let Some((_, name)) = self.known.iter().find(|(nr, _)| *nr == tty_nr) {
            return name.clone();
        }
        let name = tty_name(tty_nr);
        self.known.push((tty_nr, name.clone()));
        name
    }
}

/// The rule behind [`PsRow::daemon_like`], given the row and whether its session leader
/// has a controlling terminal (`None` when the leader is not in the table: it exited, or
/// lives outside our PID namespace, as sid 0 says).
///
/// A process is daemon-like when it is not a kernel thread, has no controlling terminal,
/// and its session has none either: it leads its own session (`setsid()` was called, as
/// APUE's rule 3 requires), or its session leader is gone or also terminal-less (the
/// second fork of the System V recipe, a daemon's workers). A process that merely
/// dropped its terminal (`TIOCNOTTY`) inside a login session whose leader still has one
/// is *not* daemon-like: it is still part of that login.
///
/// This is the kernel's view only, so everything run without a terminal (cron jobs,
/// systemd services, CI runners) qualifies too — just as in the book's `ps` listing.
pub fn is_daemon_like(row: &PsRow, leader_has_tty: Option<bool>) -> bool {
    !row.kernel_thread && row.tty.is_none() && (row.sid == row.pid || leader_has_tty != Some(true))
}

/// Fill in `daemon_like` once every row (and so every session leader) is known.
/// Rows must be sorted by PID.
fn mark_daemons(rows: &mut [PsRow]) {
    for i in 0..rows.len() {
        let sid = rows[i].sid;
        let leader_has_tty = rows
            .binary_search_by_key(&sid, |r| r.pid)
            .ok()
            .map(|j| rows[j].tty.is_some());
        rows[i].daemon_like = is_daemon_like(&rows[i], leader_has_tty);
    }
    mark_roles(rows);
}

/// Fill in `role` and `main_pid` once every row is known. Rows must be sorted by PID.
///
/// Exists apart from [`read_table`] so hand-made tables (the UI's fixtures, tests) get
/// the same roles.
pub fn mark_roles(rows: &mut [PsRow]) {
    let roles: Vec<(Role, Pid)> = rows.iter().map(|r| role::classify(rows, r)).collect();
    for (row, (role, main)) in rows.iter_mut().zip(roles) {
        row.role = role;
        row.main_pid = main;
    }
}

/// The table as `ps -axj` prints it: header "PPID PID PGID SID TTY TPGID STAT UID TIME
/// COMMAND", procps's column widths (wider when a value needs it), "?" for no terminal.
///
/// Exists so `daemonlab ps` output can be compared line by line with the real `ps`.
pub fn text_table(rows: &[PsRow]) -> String {
    format::text(rows, false)
}

/// [`text_table`] with a ROLE column before COMMAND (daemon, service, worker, job,
/// kernel_thread, zombie, init, process): the marks `daemonlab ps` prints.
///
/// Exists so the marks are visible without JSON, while [`text_table`] stays
/// comparable with `ps -axj` line by line.
pub fn marked_text_table(rows: &[PsRow]) -> String {
    format::text(rows, true)
}

/// The table as Markdown: one row per process, the role included.
///
/// Exists for `daemonlab ps --format markdown`: a handout of a system's daemons.
pub fn markdown_table(rows: &[PsRow]) -> String {
    format::markdown(rows)
}

/// The table as a JSON array of objects with the [`PsRow`] field names as keys; `tty`
/// is null without a terminal.
///
/// Exists for `daemonlab ps --format json`, so scripts and tests need not parse columns.
pub fn json_table(rows: &[PsRow]) -> String {
    serde_json::to_string(rows).expect("a PsRow holds only strings, integers and booleans")
}

/// Only the rows whose role is daemon or service, order kept, without this process
/// itself (zombies, jobs, workers and kernel threads have other roles).
///
/// Exists for `daemonlab ps --daemons`: the list APUE 13.2 asks the reader to study.
pub fn daemons_only(rows: Vec<PsRow>) -> Vec<PsRow> {
    let me = std::process::id() as Pid;
    rows.into_iter()
        .filter(|r| r.pid != me && matches!(r.role, Role::Daemon | Role::Service))
        .collect()
}

/// Sort the table by `key`; ties always fall back to ascending PID, so the order is
/// stable across refreshes and the selected row does not jump around.
pub fn sort(rows: &mut [PsRow], key: SortKey) {
    order::sort(rows, key);
}

/// Rows in tree order (children under parents, depth-first by pid), with each row's depth, for a tree view.
///
/// Roots are rows whose parent is not in the table: init and kthreadd (ppid 0), and
/// orphans whose adopter is outside our PID namespace or exited mid-read. Every row
/// appears exactly once, even given hand-made rows with a parent cycle.
pub fn tree(rows: &[PsRow]) -> Vec<(usize, PsRow)> {
    order::tree(rows)
}

fn with_context(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    fn row(rows: &[PsRow], pid: Pid) -> Option<&PsRow> {
        rows.iter().find(|r| r.pid == pid)
    }

    #[test]
    fn a_reader_gives_the_rows_a_fresh_read_gives_and_sees_an_exec_within_its_reread_turns() {
        // A child that execs a new program later: same PID, same start time, new cmdline.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line; exec sleep 31"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        // spawn() returns once the child is past the point of no return of its exec,
        // which is before the kernel has set up the new command line: until then
        // /proc/PID/cmdline reads empty ("[sh]" in the table).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            != b"sh\0-c\0read line; exec sleep 31\0"
        {
            assert!(std::time::Instant::now() < deadline, "sh never started");
            std::thread::yield_now();
        }
        let mut reader = TableReader::default();
        let first = reader.read().unwrap();
        let second = reader.read().unwrap();
        let fresh = read_table().unwrap();
        // Every column a cache could get wrong (state and CPU time move on their own).
        let lasting = |r: &PsRow| {
            (
                r.ppid,
                r.pgid,
                r.sid,
                r.tty.clone(),
                r.uid,
                r.command.clone(),
                r.comm.clone(),
            )
        };
        let fresh_row = lasting(row(&fresh, pid).expect("our child"));
        for r in [&first, &second] {
            let mine = row(r, pid).expect("our child");
            assert_eq!(mine.command, "sh -c read line; exec sleep 31");
            assert_eq!(lasting(mine), fresh_row, "cached and fresh agree");
        }
        // Our own row, from the cache: every column but CPU time as fresh.
        let me = std::process::id() as Pid;
        let (a, b) = (row(&second, me).unwrap(), row(&fresh, me).unwrap());
        assert_eq!(
            (a.ppid, a.pgid, a.sid, &a.tty, a.uid, &a.command),
            (b.ppid, b.pgid, b.sid, &b.tty, b.uid, &b.command)
        );
        // The exec: within REREAD_EVERY passes the new command line shows.
        use std::io::Write;
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while read_table()
            .unwrap()
            .iter()
            .find(|r| r.pid == pid)
            .map(|r| r.command.as_str())
            != Some("sleep 31")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the exec never happened"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut shown = None;
        for _ in 0..REREAD_EVERY {
            shown = row(&reader.read().unwrap(), pid).map(|r| r.command.clone());
            if shown.as_deref() == Some("sleep 31") {
                break;
            }
        }
        assert_eq!(shown.as_deref(), Some("sleep 31"));
        let _ = child.kill();
        let _ = child.wait();
        // Gone: no longer in the table, nor kept.
        let after = reader.read().unwrap();
        assert!(row(&after, pid).is_none());
        assert!(!reader.known.contains_key(&pid));
    }
}
