//! The lab's side of the contention demo: start contender processes, follow what each
//! reports, end them (and only them) by pidfd, and read the kernel's evidence.
//!
//! Contenders are forked by one single-threaded helper (see `spawner`), started on the
//! first spawn; a binary without that helper gets each contender exec'd as `__contender`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::contender::{ContenderArgs, ContenderEvent, GATE_ENV};
use super::engine::{Held, holders_by_fdinfo};
use super::proc_locks::{self, LockTable};
use super::spawner::{Exits, Spawner};
use super::{LockKind, LockMode, comm};
use crate::process::{has_exited, pidfd_open};

/// Where one contender is in its life, as it reported it (and as the lab saw it end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ContenderState {
    /// Started; has not said anything about the lock yet.
    Starting,
    /// Blocked in the kernel waiting for the lock (wait mode).
    Waiting,
    /// Holds the lock.
    Holding,
    /// Found the lock taken (try mode); `holder` as the kernel named it. Exits 1 next.
    Refused { holder: Option<i32> },
    /// Could not try at all (bad path, no OFD locks...), in its own words.
    Failed { message: String },
    /// Gone and reaped: "exit 1", "killed by SIGKILL".
    Exited { status: String },
}

/// One contender, for a list view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContenderInfo {
    /// Its process ID (the lab started it, so the lab may signal it).
    pub pid: i32,
    /// The lock family it tried.
    pub kind: LockKind,
    /// Try or wait.
    pub mode: LockMode,
    /// Where it is now.
    pub state: ContenderState,
}

/// The kernel's account of the pid file right now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The file the evidence is about.
    pub pidfile: PathBuf,
    /// What the pid file says (`None` when it cannot be read, e.g. not created yet).
    pub content: Option<String>,
    /// /proc/locks lines about this file: holders and `->` waiters.
    pub table: LockTable,
    /// How to read the table: why an OFD lock says pid -1 and how its holder was named, why
    /// a flock line may name a process that no longer holds it.
    pub note: Option<String>,
    /// `comm` of each PID in the table (and of `fd_holders`), where /proc lets us read it.
    pub comms: BTreeMap<i32, String>,
    /// Processes whose open descriptors carry the lock (fdinfo `lock:` lines): the real
    /// owners of flock and OFD locks, which belong to open files, not processes.
    pub fd_holders: Vec<i32>,
}

impl Evidence {
    /// The evidence as lines of text for a report or a pane.
    pub fn lines(&self) -> Vec<String> {
        let name = |pid: i32| match self.comms.get(&pid) {
            Some(comm) => format!("{pid} ({comm})"),
            None => pid.to_string(),
        };
        let mut lines = vec![match &self.content {
            Some(text) => format!(
                "pid file {}: {:?}",
                self.pidfile.display(),
                text.trim_end_matches('\n')
            ),
            None => format!("pid file {}: (cannot be read)", self.pidfile.display()),
        }];
        if self.table.is_empty() {
            lines.push("/proc/locks: no lock on this file".into());
        }
        let roles = (self.table.holders.iter().map(|e| ("holder", e)))
            .chain(self.table.waiters.iter().map(|e| ("waiter", e)));
        for (role, entry) in roles {
            match self.comms.get(&entry.pid) {
                Some(comm) => lines.push(format!("/proc/locks {role}: {entry}   ({comm})")),
                None => lines.push(format!("/proc/locks {role}: {entry}")),
            }
        }
        if !self.fd_holders.is_empty() {
            let pids: Vec<String> = self.fd_holders.iter().map(|&p| name(p)).collect();
            lines.push(format!(
                "fdinfo: lock held through descriptors of {}",
                pids.join(", ")
            ));
        }
        if let Some(note) = &self.note {
            lines.push(format!("note: {note}"));
        }
        lines
    }
}

/// Read the evidence for any pid file: its content, /proc/locks split into holders and
/// waiters, the owners found in fdinfo, and names for every PID.
///
/// This opens the file to read it, and closing that descriptor would drop any fcntl lock
/// the *calling* process holds on the file (pitfall 3). A process holding the lock must use
/// [`evidence_held`] instead.
pub fn evidence_for(pidfile: &Path) -> Evidence {
    // Through the pid-file checks: a FIFO or a device at the path must not hang or be read.
    let content = super::pid_file::open(pidfile, super::pid_file::Access::Read)
        .ok()
        .and_then(|file| read_content(&file));
    evidence_with(pidfile, content)
}

/// The evidence from inside the process that holds the lock: the content is read through
/// the held descriptor (pread), so no other descriptor of the file is opened or closed.
pub fn evidence_held(held: &Held) -> Evidence {
    evidence_with(held.path(), read_content(held.file()))
}

/// The pid file's text, read with pread through a descriptor already open.
fn read_content(file: &std::fs::File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let mut buffer = vec![0u8; meta.len().min(4096) as usize];
    let n = file.read_at(&mut buffer, 0).ok()?;
    buffer.truncate(n);
    String::from_utf8(buffer).ok()
}

fn evidence_with(pidfile: &Path, content: Option<String>) -> Evidence {
    let (table, note) = match proc_locks::read() {
        Ok(entries) => match proc_locks::for_path(&entries, pidfile) {
            Ok(mine) => (LockTable::split(mine), None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                LockTable::default(),
                Some("the pid file does not exist yet: nobody has tried the lock".into()),
            ),
            Err(e) => (
                LockTable::default(),
                Some(format!(
                    "cannot stat the pid file: {}",
                    super::engine::describe(&e)
                )),
            ),
        },
        Err(e) => (
            LockTable::default(),
            Some(format!(
                "cannot read /proc/locks: {} — is /proc mounted?",
                super::engine::describe(&e)
            )),
        ),
    };
    // In a container /proc/locks leaves out a lock whose caller has exited: only the
    // holders' fdinfo shows it then, so look there too (a scan of every process's fds,
    // paid only in that case).
    let hidden =
        table.holders.is_empty() && note.is_none() && proc_locks::hides_locks_of_gone_pids();
    let fd_holders = if table.holders.is_empty() && !hidden {
        vec![]
    } else {
        holders_by_fdinfo(pidfile)
    };
    let note = match note {
        None if hidden && !fd_holders.is_empty() => Some(format!(
            "this is a PID namespace below the initial one, where /proc/locks leaves out a lock whose caller has exited; fdinfo shows it held by pid {}",
            fd_holders
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        note => note,
    };
    let mut comms = BTreeMap::new();
    for pid in table
        .holders
        .iter()
        .chain(&table.waiters)
        .map(|e| e.pid)
        .chain(fd_holders.iter().copied())
        .filter(|&pid| pid > 0)
    {
        if let Some(name) = comm(pid) {
            comms.insert(pid, name);
        }
    }
    let note = note.or_else(|| explain(&table, &fd_holders));
    Evidence {
        pidfile: pidfile.to_path_buf(),
        content,
        table,
        note,
        comms,
        fd_holders,
    }
}

fn explain(table: &LockTable, fd_holders: &[i32]) -> Option<String> {
    let owners = if fd_holders.is_empty() {
        "no readable process shows it in fdinfo".to_string()
    } else {
        format!(
            "fdinfo shows it held by pid {}",
            fd_holders
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut notes = vec![];
    if table.holders.iter().any(|e| e.class == "OFDLCK") {
        notes.push(format!(
            "an OFD lock belongs to an open file description, not a process, so /proc/locks \
             prints pid -1 (and F_OFD_GETLK reports -1); {owners}"
        ));
    }
    if table
        .holders
        .iter()
        .any(|e| e.class == "FLOCK" && !fd_holders.contains(&e.pid))
        && !fd_holders.is_empty()
    {
        notes.push(format!(
            "a flock line names the process that called flock(); the lock belongs to the open \
             file, which a fork shares; {owners}"
        ));
    }
    if !table.waiters.is_empty() {
        notes.push(
            "\"->\" lines are processes asleep in the kernel waiting for this lock; one of \
             them is woken and given it when the holder goes"
                .into(),
        );
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Contenders started by the lab and what each has said. Every one is tracked by a pidfd
/// taken while it was surely ours, reaped as soon as it exits, and ended on `stop_all` or
/// drop. The TUI and the headless `locks race` both use this.
pub struct Contenders {
    exe: PathBuf,
    pidfile: PathBuf,
    syslog_socket: Option<PathBuf>,
    shared: Arc<Shared>,
    spawner: Mutex<SpawnerSlot>,
}

/// The forking helper, once the first spawn has tried to start it.
enum SpawnerSlot {
    Untried,
    Running(Arc<Spawner>),
    /// The binary has no helper: exec each contender.
    Unavailable,
}

type Listener = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Shared {
    entries: Mutex<Vec<Entry>>,
    changed: Condvar,
    listener: Mutex<Option<Listener>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

struct Entry {
    pid: i32,
    kind: LockKind,
    mode: LockMode,
    state: ContenderState,
    /// The last thing it said about the lock, kept after it exits (a refused contender's
    /// state becomes `Exited`, but a report still wants "refused").
    outcome: ContenderState,
    ready: bool,
    /// When `state` last changed, to time a hand-over.
    since: Instant,
    /// Its lifeline: dropping it closes its stdin and the contender exits.
    stdin: Option<Lifeline>,
    pidfd: Option<OwnedFd>,
}

/// The write side of a contender's stdin: the gate byte goes through it, and dropping it
/// is the contender's end-of-file.
enum Lifeline {
    /// An exec'd contender's stdin pipe.
    Pipe(ChildStdin),
    /// A forked contender's socket (its stdin, stdout and stderr). The reader thread keeps
    /// its own descriptor of it, so only shutting down our writing side gives end-of-file.
    Socket(UnixStream),
}

impl Lifeline {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Lifeline::Pipe(pipe) => pipe.write_all(bytes),
            Lifeline::Socket(socket) => socket.write_all(bytes),
        }
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        if let Lifeline::Socket(socket) = self {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// How long contenders get to leave on their own once their stdin closes.
const GRACE: Duration = Duration::from_millis(300);
/// How long to wait for a killed process to be reaped before giving up on it.
const REAP_WAIT: Duration = Duration::from_secs(5);

impl Contenders {
    /// `exe` is the daemonlab binary, re-executed once as the `__spawner` helper that forks
    /// the contenders (or, if it has none, once per contender as `__contender ...`). A
    /// contender's stdin is its lifeline and its stdout carries its events, either way.
    pub fn new(exe: PathBuf, pidfile: PathBuf, syslog_socket: Option<PathBuf>) -> Contenders {
        Contenders {
            exe,
            pidfile,
            syslog_socket,
            shared: Arc::new(Shared::default()),
            spawner: Mutex::new(SpawnerSlot::Untried),
        }
    }

    /// The forking helper, started on first use; `None` when the binary has none.
    fn spawner(&self) -> std::io::Result<Option<Arc<Spawner>>> {
        let mut slot = lock(&self.spawner);
        match &*slot {
            SpawnerSlot::Running(spawner) => return Ok(Some(Arc::clone(spawner))),
            SpawnerSlot::Unavailable => return Ok(None),
            SpawnerSlot::Untried => {}
        }
        Ok(match Spawner::start(&self.exe)? {
            Some(spawner) => {
                let spawner = Arc::new(spawner);
                *slot = SpawnerSlot::Running(Arc::clone(&spawner));
                Some(spawner)
            }
            None => {
                *slot = SpawnerSlot::Unavailable;
                None
            }
        })
    }

    /// Called (from a reader thread) whenever any contender's state changes; the TUI turns
    /// it into a redraw. Called without internal locks held, so it may call `list()`.
    pub fn set_listener(&self, f: Box<dyn Fn() + Send + Sync>) {
        *lock(&self.shared.listener) = Some(Arc::from(f));
    }

    /// Start one contender; it tries the lock as soon as it runs. Returns its PID.
    pub fn spawn(&self, kind: LockKind, mode: LockMode) -> std::io::Result<i32> {
        self.prepare_pid_file()?;
        match self.spawner()? {
            Some(spawner) => Ok(self.start_forked(&spawner, kind, mode, false, 1)?[0]),
            None => self.start(kind, mode, false),
        }
    }

    /// Check (and, if missing, create with mode 0644) the pid file before any contender
    /// runs: a path that is not a usable pid file is refused here, once, with its reason;
    /// and no contender can find a file another one created but has not chmodded yet (with
    /// umask 277 that file is briefly 0400, unopenable for writing by anyone but root).
    fn prepare_pid_file(&self) -> std::io::Result<()> {
        super::pid_file::open(&self.pidfile, super::pid_file::Access::Lock)
            .map(drop)
            .map_err(std::io::Error::other)
    }

    /// Start `n` contenders and release them together: each starts, says `ready` and waits
    /// for one byte on its stdin; once all are ready (or 10 s passed) every one gets its
    /// byte in a tight loop. Returns their PIDs in start order.
    pub fn spawn_many(
        &self,
        n: usize,
        kind: LockKind,
        mode: LockMode,
    ) -> std::io::Result<Vec<i32>> {
        self.prepare_pid_file()?;
        let pids = match self.spawner()? {
            Some(spawner) => {
                let pids = self.start_forked(&spawner, kind, mode, true, n)?;
                if pids.len() < n {
                    self.release(&pids);
                    return Err(std::io::Error::other(format!(
                        "the contender spawner started only {} of {n} contenders — see --log for why",
                        pids.len()
                    )));
                }
                pids
            }
            None => self.exec_many(n, kind, mode)?,
        };
        self.release_when_ready(&pids);
        Ok(pids)
    }

    /// [`Contenders::spawn_many`]'s start for a binary without the forking helper: each
    /// contender exec'd, from a few threads at once; gated, not yet released.
    fn exec_many(&self, n: usize, kind: LockKind, mode: LockMode) -> std::io::Result<Vec<i32>> {
        // Creating a process costs about a millisecond of kernel time, most of it while the
        // spawning thread waits for the exec: a few threads in parallel start a big batch
        // in a fraction of the time.
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8)
            .min(n.max(1));
        let mut started: Vec<i32> = Vec::with_capacity(n);
        let mut failure = None;
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let share = n / workers + usize::from(w < n % workers);
                    scope.spawn(move || {
                        let mut pids = Vec::with_capacity(share);
                        for _ in 0..share {
                            match self.start(kind, mode, true) {
                                Ok(pid) => pids.push(pid),
                                Err(e) => return (pids, Some(e)),
                            }
                        }
                        (pids, None)
                    })
                })
                .collect();
            for handle in handles {
                match handle.join() {
                    Ok((pids, error)) => {
                        started.extend(pids);
                        failure = failure.take().or(error);
                    }
                    Err(_) => {
                        failure = Some(std::io::Error::other("a spawning thread panicked"));
                    }
                }
            }
        });
        // Start order is the order in the shared list.
        let pids: Vec<i32> = lock(&self.shared.entries)
            .iter()
            .map(|e| e.pid)
            .filter(|pid| started.contains(pid))
            .collect();
        if let Some(e) = failure {
            // Release the ones already started rather than leave them gated.
            self.release(&pids);
            return Err(e);
        }
        Ok(pids)
    }

    /// Wait until every one of `pids` has said `ready` (or left, or 10 s passed), then
    /// give each its byte in a tight loop.
    fn release_when_ready(&self, pids: &[i32]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut entries = lock(&self.shared.entries);
        loop {
            let pending = entries
                .iter()
                .filter(|e| pids.contains(&e.pid))
                .any(|e| !e.ready && e.state == ContenderState::Starting);
            let now = Instant::now();
            if !pending || now >= deadline {
                break;
            }
            entries = self
                .shared
                .changed
                .wait_timeout(entries, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(entries);
        self.release(pids);
    }

    /// Fork `n` contenders through the helper and follow each; returns their PIDs in start
    /// order (fewer than `n` if the helper could not fork them all).
    fn start_forked(
        &self,
        spawner: &Spawner,
        kind: LockKind,
        mode: LockMode,
        gated: bool,
        n: usize,
    ) -> std::io::Result<Vec<i32>> {
        let args = ContenderArgs {
            pidfile: self.pidfile.clone(),
            kind,
            mode,
            syslog_socket: self.syslog_socket.clone(),
            gated,
        };
        let forked = spawner.spawn(&args, n)?;
        let mut pids = Vec::with_capacity(forked.len());
        let mut followed = Vec::with_capacity(forked.len());
        {
            let mut entries = lock(&self.shared.entries);
            for contender in forked {
                tracing::debug!(pid = contender.pid, ?kind, ?mode, pidfile = %self.pidfile.display(), "contender forked");
                let events = contender.stream.try_clone();
                pids.push(contender.pid);
                entries.push(Entry {
                    pid: contender.pid,
                    kind,
                    mode,
                    state: ContenderState::Starting,
                    outcome: ContenderState::Starting,
                    ready: false,
                    since: Instant::now(),
                    stdin: Some(Lifeline::Socket(contender.stream)),
                    pidfd: Some(contender.pidfd),
                });
                followed.push((contender.pid, events));
            }
        }
        let mut failure = None;
        for (pid, events) in followed {
            let shared = Arc::clone(&self.shared);
            let exits = spawner.exits();
            let reader = events.and_then(|events| {
                std::thread::Builder::new()
                    .name(format!("contender-{pid}"))
                    .spawn(move || follow_forked(shared, pid, events, exits))
            });
            match reader {
                Ok(handle) => lock(&self.shared.readers).push(handle),
                Err(e) => {
                    // Without a reader nobody would see it end: end it now.
                    self.kill(pid);
                    failure = Some(e);
                }
            }
        }
        self.notify();
        match failure {
            Some(e) => {
                self.release(&pids);
                Err(e)
            }
            None => Ok(pids),
        }
    }

    fn release(&self, pids: &[i32]) {
        let mut entries = lock(&self.shared.entries);
        for entry in entries.iter_mut().filter(|e| pids.contains(&e.pid)) {
            if let Some(stdin) = entry.stdin.as_mut() {
                let _ = stdin.write_all(b"g");
            }
        }
    }

    fn start(&self, kind: LockKind, mode: LockMode, gated: bool) -> std::io::Result<i32> {
        let mut command = Command::new(&self.exe);
        command
            .arg("__contender")
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("--kind")
            .arg(kind.name())
            .arg("--mode")
            .arg(mode.name());
        if let Some(socket) = &self.syslog_socket {
            command.arg("--syslog-socket").arg(socket);
        }
        if gated {
            command.env(GATE_ENV, "1");
        } else {
            command.env_remove(GATE_ENV);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start contender {}: {} — check that the daemonlab binary exists",
                        self.exe.display(),
                        super::engine::describe(&e)
                    ),
                )
            })?;
        let pid = child.id() as i32;
        tracing::debug!(pid, ?kind, ?mode, pidfile = %self.pidfile.display(), "contender started");
        // Not reaped yet (only the reader thread below waits for it), so the PID is surely
        // this child's and the pidfd can never name a recycled process.
        let pidfd = pidfd_open(pid).ok();
        let stdin = child.stdin.take().map(Lifeline::Pipe);
        lock(&self.shared.entries).push(Entry {
            pid,
            kind,
            mode,
            state: ContenderState::Starting,
            outcome: ContenderState::Starting,
            ready: false,
            since: Instant::now(),
            stdin,
            pidfd,
        });
        let shared = Arc::clone(&self.shared);
        let reader = std::thread::Builder::new()
            .name(format!("contender-{pid}"))
            .spawn(move || follow(shared, pid, child));
        match reader {
            Ok(handle) => lock(&self.shared.readers).push(handle),
            Err(e) => {
                // Without a reader nobody would reap it: end it now.
                self.kill(pid);
                return Err(e);
            }
        }
        self.notify();
        Ok(pid)
    }

    /// Every contender, in start order.
    pub fn list(&self) -> Vec<ContenderInfo> {
        self.infos(|e| e.state.clone())
    }

    /// Like `list()`, but with the last thing each contender said about the lock (Holding,
    /// Waiting, Refused, Failed) instead of `Exited`: the result of a race, even after the
    /// losers have left. `Starting` for one that never said anything.
    pub fn outcomes(&self) -> Vec<ContenderInfo> {
        self.infos(|e| match (&e.outcome, &e.state) {
            (ContenderState::Starting, state) => state.clone(),
            (outcome, _) => outcome.clone(),
        })
    }

    /// Every contender, in start order, with the state `state` picks from its entry.
    fn infos(&self, state: impl Fn(&Entry) -> ContenderState) -> Vec<ContenderInfo> {
        lock(&self.shared.entries)
            .iter()
            .map(|e| ContenderInfo {
                pid: e.pid,
                kind: e.kind,
                mode: e.mode,
                state: state(e),
            })
            .collect()
    }

    /// When the contender's state last changed (for timing a hand-over).
    pub fn since(&self, pid: i32) -> Option<Instant> {
        lock(&self.shared.entries)
            .iter()
            .find(|e| e.pid == pid)
            .map(|e| e.since)
    }

    /// Wait until `pid`'s state satisfies `test`, or `timeout`; returns whether it did.
    pub fn wait_for(
        &self,
        pid: i32,
        timeout: Duration,
        test: impl Fn(&ContenderState) -> bool,
    ) -> bool {
        self.wait_until(timeout, |entries| {
            entries.iter().any(|e| e.pid == pid && test(&e.state))
        })
    }

    /// SIGKILL the current holder (one we started; by pidfd), reap it; returns its pid.
    /// Waiters then race for the lock.
    pub fn kill_holder(&self) -> Option<i32> {
        let pid = lock(&self.shared.entries)
            .iter()
            .find(|e| e.state == ContenderState::Holding)
            .map(|e| e.pid)?;
        self.kill(pid);
        self.wait_for(pid, REAP_WAIT, |s| {
            matches!(s, ContenderState::Exited { .. })
        });
        Some(pid)
    }

    fn kill(&self, pid: i32) {
        let entries = lock(&self.shared.entries);
        if let Some(pidfd) = entries
            .iter()
            .find(|e| e.pid == pid)
            .and_then(|e| e.pidfd.as_ref())
            && !has_exited(pidfd)
        {
            send_sigkill(pidfd);
        }
    }

    /// End every contender (close stdin, brief grace, then SIGKILL by pidfd) and reap them;
    /// also on Drop. Safe to call more than once.
    pub fn stop_all(&self) {
        for entry in lock(&self.shared.entries).iter_mut() {
            entry.stdin = None;
        }
        let all_gone = |entries: &[Entry]| {
            entries
                .iter()
                .all(|e| matches!(e.state, ContenderState::Exited { .. }))
        };
        if !self.wait_until(GRACE, all_gone) {
            for entry in lock(&self.shared.entries).iter() {
                if let Some(pidfd) = &entry.pidfd
                    && !has_exited(pidfd)
                {
                    send_sigkill(pidfd);
                }
            }
            self.wait_until(REAP_WAIT, all_gone);
        }
        let readers: Vec<JoinHandle<()>> = lock(&self.shared.readers).drain(..).collect();
        for reader in readers {
            let _ = reader.join();
        }
    }

    /// The pid file every contender fights over.
    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// The kernel's evidence now: pid file content, and /proc/locks entries for it split
    /// into holders/waiters, with each PID's comm where readable.
    pub fn evidence(&self) -> Evidence {
        evidence_for(&self.pidfile)
    }

    /// Wait until no contender is Starting (all outcomes known) or timeout; returns whether
    /// they all settled.
    pub fn wait_settled(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |entries| {
            entries.iter().all(|e| e.state != ContenderState::Starting)
        })
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&[Entry]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut entries = lock(&self.shared.entries);
        loop {
            if done(&entries) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            entries = self
                .shared
                .changed
                .wait_timeout(entries, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn notify(&self) {
        self.shared.notify();
    }
}

impl Drop for Contenders {
    fn drop(&mut self) {
        self.stop_all();
        // Then the helper: end-of-file on its stdin, and it is reaped.
        let slot = std::mem::replace(&mut *lock(&self.spawner), SpawnerSlot::Unavailable);
        drop(slot);
    }
}

impl Shared {
    fn update(&self, pid: i32, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = lock(&self.entries).iter_mut().find(|e| e.pid == pid) {
            change(entry);
            entry.since = Instant::now();
        }
        self.notify();
    }

    fn notify(&self) {
        self.changed.notify_all();
        let listener = lock(&self.listener).clone();
        if let Some(listener) = listener {
            listener();
        }
    }
}

/// The reader thread of one exec'd contender: turn its event lines into states, and reap
/// it the moment its stdout closes (which only happens when it exits).
fn follow(shared: Arc<Shared>, pid: i32, mut child: Child) {
    let said = child
        .stdout
        .take()
        .and_then(|stdout| read_events(&shared, pid, stdout));
    let status = child.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = match &status {
        Ok(status) => describe_status(*status),
        Err(e) => format!("cannot be waited for: {e}"),
    };
    let said = stderr.lines().next().map(str::to_string).or(said);
    finish(&shared, pid, status, said);
}

/// The reader thread of one forked contender: its events come on its socket (its stdout
/// and stderr both); end-of-file there means it has exited, and the helper, its parent,
/// reports how once it has reaped it.
fn follow_forked(shared: Arc<Shared>, pid: i32, events: UnixStream, exits: Arc<Exits>) {
    let said = read_events(&shared, pid, events);
    let status = match exits.wait(pid, REAP_WAIT) {
        Some(raw) => describe_status(ExitStatus::from_raw(raw)),
        None => "cannot be waited for: the contender spawner is gone".into(),
    };
    finish(&shared, pid, status, said);
}

/// Apply each event line to `pid`'s entry until end-of-file; returns the first line that
/// is not an event (an error message on stderr), if any.
fn read_events(shared: &Shared, pid: i32, events: impl Read) -> Option<String> {
    let mut said = None;
    for line in BufReader::new(events).lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<ContenderEvent>(&line) else {
            if said.is_none() && !line.trim().is_empty() {
                said = Some(line);
            }
            continue;
        };
        shared.update(pid, |entry| match event {
            ContenderEvent::Ready => entry.ready = true,
            ContenderEvent::Waiting { .. } => set(entry, ContenderState::Waiting),
            ContenderEvent::Holding => set(entry, ContenderState::Holding),
            ContenderEvent::Refused { holder } => set(entry, ContenderState::Refused { holder }),
            ContenderEvent::Error { message } => set(entry, ContenderState::Failed { message }),
        });
    }
    said
}

/// The contender is gone and reaped: record how it ended.
fn finish(shared: &Shared, pid: i32, status: String, said: Option<String>) {
    shared.update(pid, |entry| {
        if entry.outcome == ContenderState::Starting {
            // It never said anything: most likely the binary does not know `__contender`.
            let said = said.unwrap_or_else(|| "no output".into());
            entry.outcome = ContenderState::Failed {
                message: format!("{status} before reporting: {said}"),
            };
        }
        entry.state = ContenderState::Exited { status };
        entry.stdin = None;
    });
}

fn set(entry: &mut Entry, state: ContenderState) {
    entry.outcome = state.clone();
    entry.state = state;
}

/// "exit 1", "killed by SIGKILL": how a contender ended, in the words of a shell.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit {code}");
    }
    match status.signal() {
        Some(signal) => match nix::sys::signal::Signal::try_from(signal) {
            Ok(signal) => format!("killed by {}", signal.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        None => format!("{status}"),
    }
}

/// SIGKILL through a pidfd: reaches exactly the process we started, never a recycled PID.
pub(crate) fn send_sigkill(pidfd: &OwnedFd) {
    let _ = crate::process::pidfd_signal(pidfd, libc::SIGKILL);
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
