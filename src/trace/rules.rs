//! From raw system calls to the daemon rules, and what only the order of events shows.
//!
//! The tracker is fed the tracer's reports in order. For a call that is one of the rules
//! it reads /proc while the program is still held (so the snapshot is exact) and emits an
//! event with the rule id — the lab's step ids (`umask`, `getrlimit`, `fork`, `setsid`,
//! `ignore_sighup`, `second_fork`, `chdir`, `close_fds`, `dev_null`, `openlog`) plus
//! `start`, `lock`, `pidfile_write`, `chroot`, `drop_privileges`, `notify`, `acquire_tty`
//! and `exec`. A close-everything loop is one `close_fds` event, not a thousand.

// libc's constant types differ between architectures: the casts are for the others.
#![allow(clippy::unnecessary_cast)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use serde::Serialize;

use super::protocol::{Call, TracerMessage};
use crate::audit::{Audit, Status};
use crate::probe::{self, ProcSnapshot};

/// One line of the trace.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // few, short-lived, and printed at once
pub enum Event {
    /// A watched call (or a run of the same rule's calls) and the kernel's view after it.
    Syscall {
        seq: u64,
        t_ms: f64,
        pid: i32,
        /// The call; null for `pidfile_write`, which is read from the file, not traced.
        syscall: Option<String>,
        args: [u64; 6],
        result: i64,
        errno: Option<String>,
        rule: Option<&'static str>,
        /// The call in words: `setsid() = 812`, `close() ×1021, 3 of them open`.
        what: String,
        /// How many calls this event stands for (a close loop).
        calls: usize,
        process: Option<ProcSnapshot>,
        changed: Vec<&'static str>,
        /// The sessions and process groups around the stand-in and this process, drawn
        /// from /proc when the event is told (rule events only), as the tour's `sessions`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        sessions: Vec<crate::probe::sessions::SessionPicture>,
    },
    Fork {
        seq: u64,
        pid: i32,
        child: i32,
    },
    Exec {
        seq: u64,
        pid: i32,
        path: String,
    },
    Exit {
        seq: u64,
        pid: i32,
        status: String,
    },
}

impl Event {
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Event::Syscall { rule, .. } => *rule,
            _ => None,
        }
    }
}

/// Something only a trace can see, with the event that shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub status: Status,
    pub detail: String,
    pub seq: Option<u64>,
}

/// The end of a trace: the daemon it left, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub event: &'static str,
    pub main_pid: Option<i32>,
    pub daemonized: bool,
    /// One line: what happened, in words.
    pub summary: String,
    pub checks: Vec<crate::audit::Check>,
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub audit: Option<Audit>,
}

impl Verdict {
    /// 0 daemonized with no failing check or finding, 3 otherwise.
    pub fn exit_code(&self) -> u8 {
        let failed = self.checks.iter().any(|c| c.status == Status::Fail)
            || self.findings.iter().any(|f| f.status == Status::Fail);
        if self.daemonized && !failed { 0 } else { 3 }
    }
}

#[derive(Debug, Default, Clone)]
struct Proc {
    parent: Option<i32>,
    alive: bool,
    thread: bool,
    /// This process or an ancestor called setsid() successfully.
    setsid: bool,
    /// The directory it chroot()ed into, if it did (or an ancestor did).
    chroot: Option<String>,
    last: Option<ProcSnapshot>,
    /// Which of 0, 1, 2 it closed and has not reopened on /dev/null.
    closed_stdio: [bool; 3],
    /// It closed a descriptor of the lock file.
    closed_lock: Option<u64>,
    execs: usize,
}

struct Lock {
    pid: i32,
    path: String,
    seq: u64,
    flock: bool,
}

/// How long a fork waits for its parent to exit before it counts as carrying on.
const FORK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// A fork whose parent's fate is not known yet.
struct HeldFork {
    parent: i32,
    /// Where its `Fork` event is in `events` (the rule event follows it).
    index: usize,
    since: Instant,
}

/// At most this many processes' /proc files are kept open at once, each up to a few
/// dozen descriptors of ours: a daemonization has two or three processes, and a program
/// that forks many is looked at the one-off way beyond them, well inside a 1 024
/// descriptor limit.
const WATCHED_AT_ONCE: usize = 4;

/// A run of one rule's calls by one process, merged into one event when it ends.
struct Run {
    event: Event,
    opened: usize,
}

/// Follows the reports of one trace.
pub struct Tracker {
    started: Instant,
    seq: u64,
    job: i32,
    stand_in: i32,
    procs: HashMap<i32, Proc>,
    run: Option<Run>,
    events: Vec<Event>,
    findings: Vec<Finding>,
    locks: Vec<Lock>,
    /// Pid files seen (locked, or created with a .pid name) and the PID last read in each.
    pidfiles: Vec<(String, Option<i32>)>,
    rules: usize,
    held_fork: Option<HeldFork>,
    /// The session picture of the last rule event, to show who has gone since.
    last_sessions: Vec<crate::probe::sessions::SessionPicture>,
    /// Findings waiting for the number of the event that shows them.
    unresolved: Vec<usize>,
    notify_socket: Option<String>,
    /// The /proc files of each live process looked at, kept open from event to event
    /// (`probe::Watch`); closed when it exits.
    watches: HashMap<i32, probe::Watch>,
}

fn errno_name(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{e:?}")
}

fn is_syslog_path(path: &str) -> bool {
    path == "/dev/log"
        || path.ends_with("/log")
        || path == "/run/systemd/journal/syslog"
        || path.ends_with("/syslog")
}

fn is_terminal_path(path: &str) -> bool {
    path.starts_with("/dev/tty") || path.starts_with("/dev/pts/") || path == "/dev/console"
}

impl Tracker {
    pub fn new(job: i32, stand_in: i32) -> Tracker {
        let mut procs = HashMap::new();
        procs.insert(
            job,
            Proc {
                parent: Some(stand_in),
                alive: true,
                ..Proc::default()
            },
        );
        Tracker {
            started: Instant::now(),
            seq: 0,
            job,
            stand_in,
            procs,
            run: None,
            events: Vec::new(),
            findings: Vec::new(),
            locks: Vec::new(),
            pidfiles: Vec::new(),
            rules: 0,
            held_fork: None,
            last_sessions: Vec::new(),
            unresolved: Vec::new(),
            notify_socket: std::env::var("NOTIFY_SOCKET").ok(),
            watches: HashMap::new(),
        }
    }

    pub fn original_exited(&self) -> bool {
        !self.procs.get(&self.job).is_some_and(|p| p.alive)
    }

    /// Traced processes (not threads) still alive.
    pub fn alive_count(&self) -> usize {
        self.procs.values().filter(|p| p.alive && !p.thread).count()
    }

    /// Rule events so far (the settle clock restarts on each).
    pub fn rule_count(&self) -> usize {
        self.rules
    }

    /// Events ready to print, in order; each is handed out once.
    ///
    /// A fork is held back (with everything after it) until its parent's fate is known:
    /// a parent that exits makes it the rule (`fork`, or `second_fork` after setsid); a
    /// parent that carries on (nginx's master forking workers) makes it a plain fork.
    pub fn take_events(&mut self) -> Vec<Event> {
        match &mut self.held_fork {
            Some(held) => {
                let ready = self.events.drain(..held.index).collect();
                held.index = 0;
                ready
            }
            None => std::mem::take(&mut self.events),
        }
    }

    /// Settle a held fork whose parent has neither exited nor done anything else for a
    /// while: it carries on.
    pub fn tick(&mut self) {
        if self
            .held_fork
            .as_ref()
            .is_some_and(|h| h.since.elapsed() >= FORK_PATIENCE)
        {
            self.settle_fork(false);
        }
    }

    /// Whether a fork waits for its parent's fate (the caller should `tick` soon).
    pub fn waiting(&self) -> bool {
        self.held_fork.is_some()
    }

    /// The parent of the fork that waits for its fate, if one does.
    pub fn waiting_on(&self) -> Option<i32> {
        self.held_fork.as_ref().map(|h| h.parent)
    }

    /// Start a held fork's patience again: the program was held (by a person) meanwhile.
    pub fn restart_patience(&mut self) {
        if let Some(h) = &mut self.held_fork {
            h.since = Instant::now();
        }
    }

    /// Decide the held fork: `parent_exited` makes it the daemonization rule.
    fn settle_fork(&mut self, parent_exited: bool) {
        let Some(held) = self.held_fork.take() else {
            return;
        };
        let setsid = self.procs.get(&held.parent).is_some_and(|p| p.setsid);
        if let Some(Event::Syscall { rule, what, .. }) = self.events.get_mut(held.index + 1) {
            if parent_exited {
                *rule = Some(if setsid { "second_fork" } else { "fork" });
                what.push_str(", and the parent exits");
            } else if setsid {
                // A daemon forking a worker or a helper: not a daemonization step.
                *rule = None;
                self.rules -= 1;
                what.push_str(", and the parent carries on (a worker or helper)");
            } else {
                what.push_str(", and the parent carries on");
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn t_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1e4).round() / 10.0
    }

    /// Number `event` in order of output and hand it out; findings noted since the last
    /// event point at this one.
    fn push(&mut self, mut event: Event) {
        if event.rule().is_some() {
            self.rules += 1;
        }
        let seq = self.next_seq();
        match &mut event {
            Event::Syscall { seq: s, .. }
            | Event::Fork { seq: s, .. }
            | Event::Exec { seq: s, .. }
            | Event::Exit { seq: s, .. } => *s = seq,
        }
        for i in std::mem::take(&mut self.unresolved) {
            self.findings[i].seq = Some(seq);
        }
        if let Event::Syscall {
            rule: Some(_),
            pid,
            sessions,
            ..
        } = &mut event
        {
            let interest = [
                crate::probe::sessions::Interest {
                    pid: self.stand_in,
                    birth_parent: None,
                },
                crate::probe::sessions::Interest {
                    pid: *pid,
                    birth_parent: self.procs.get(pid).and_then(|p| p.parent),
                },
            ];
            *sessions =
                crate::probe::sessions::scan(&interest, &self.last_sessions).unwrap_or_default();
            self.last_sessions = sessions.clone();
        }
        self.events.push(event);
    }

    /// A finding shown by the event this call is about to produce.
    fn find(&mut self, id: &'static str, status: Status, detail: String) {
        self.unresolved.push(self.findings.len());
        self.findings.push(Finding {
            id,
            status,
            detail,
            seq: None,
        });
    }

    /// End a pending run: a close loop of fewer than three calls is not the rule.
    fn flush(&mut self) {
        if let Some(run) = self.run.take() {
            let Event::Syscall {
                rule,
                calls,
                ref syscall,
                ..
            } = run.event
            else {
                return;
            };
            let loop_of_closes = rule != Some("close_fds")
                || calls >= 3
                || syscall.as_deref() == Some("close_range");
            if loop_of_closes {
                let mut event = run.event;
                if let Event::Syscall {
                    what,
                    syscall,
                    calls,
                    ..
                } = &mut event
                    && *calls > 1
                {
                    *what = if syscall.as_deref() == Some("close") {
                        format!("close() ×{calls}, {} of them open", run.opened)
                    } else {
                        format!("{what} (and {} more)", *calls - 1)
                    };
                }
                self.push(event);
            }
        }
    }

    /// Snapshot `pid` while it is held, and what changed since its last (or its
    /// parent's) snapshot.
    fn look(&mut self, pid: i32) -> (Option<ProcSnapshot>, Vec<&'static str>) {
        let parent = self.procs.get(&pid).and_then(|p| p.parent);
        let snap = if self.watches.contains_key(&pid) || self.watches.len() < WATCHED_AT_ONCE {
            let watch = match self.watches.entry(pid) {
                Entry::Occupied(kept) => Some(kept.into_mut()),
                Entry::Vacant(new) => probe::Watch::open(pid).ok().map(|w| new.insert(w)),
            };
            let snap = watch.and_then(|w| w.snapshot(parent).ok());
            if snap.is_none() {
                // Gone, or its files refused: opened afresh if it is looked at again.
                self.watches.remove(&pid);
            }
            snap
        } else {
            probe::snapshot(pid, parent).ok()
        };
        let before = self
            .procs
            .get(&pid)
            .and_then(|p| p.last.clone())
            .or_else(|| {
                parent
                    .and_then(|pp| self.procs.get(&pp))
                    .and_then(|p| p.last.clone())
            });
        let changed = match (&snap, &before) {
            (Some(now), Some(before)) => now.changed_fields(before),
            _ => Vec::new(),
        };
        if let Some(s) = &snap
            && let Some(p) = self.procs.get_mut(&pid)
        {
            p.last = Some(s.clone());
        }
        (snap, changed)
    }

    /// Feed one report.
    pub fn handle(&mut self, message: &TracerMessage) {
        match message {
            TracerMessage::Call(call) => self.call(call),
            TracerMessage::Forked {
                pid,
                child,
                thread,
                how,
            } => {
                let parent = self.procs.get(pid).cloned().unwrap_or_default();
                let entry = self.procs.entry(*child).or_default();
                entry.parent = Some(*pid);
                entry.alive = true;
                entry.thread = *thread;
                entry.setsid = parent.setsid;
                entry.chroot = parent.chroot.clone();
                entry.closed_stdio = parent.closed_stdio;
                if !thread {
                    self.flush();
                    // One fork held at a time: a second one settles the first.
                    self.settle_fork(false);
                    self.held_fork = Some(HeldFork {
                        parent: *pid,
                        index: self.events.len(),
                        since: Instant::now(),
                    });
                    self.push(Event::Fork {
                        seq: 0,
                        pid: *pid,
                        child: *child,
                    });
                    // The rule, with the kernel's view of the child before it runs.
                    let (process, changed) = self.look(*child);
                    let t_ms = self.t_ms();
                    self.push(Event::Syscall {
                        seq: 0,
                        t_ms,
                        pid: *pid,
                        syscall: Some(how.clone()),
                        args: [0; 6],
                        result: i64::from(*child),
                        errno: None,
                        rule: Some(if parent.setsid { "second_fork" } else { "fork" }),
                        what: format!("{how}() = {child} (the child's PID)"),
                        calls: 1,
                        process,
                        changed,
                        sessions: Vec::new(),
                    });
                }
            }
            TracerMessage::Exec { pid, path } => {
                self.flush();
                let seq = 0;
                self.push(Event::Exec {
                    seq,
                    pid: *pid,
                    path: path.clone(),
                });
            }
            TracerMessage::Exiting { pid, .. } => {
                if self.held_fork.as_ref().is_some_and(|h| h.parent == *pid) {
                    self.settle_fork(true);
                }
                self.check_pidfiles(*pid);
            }
            TracerMessage::Exited { pid, status } => {
                if self.held_fork.as_ref().is_some_and(|h| h.parent == *pid) {
                    self.settle_fork(true);
                }
                let thread = self.procs.get(pid).is_some_and(|p| p.thread);
                if let Some(p) = self.procs.get_mut(pid) {
                    p.alive = false;
                }
                self.watches.remove(pid);
                if !thread {
                    if self
                        .run
                        .as_ref()
                        .is_some_and(|r| event_pid(&r.event) == *pid)
                    {
                        self.flush();
                    }
                    let seq = 0;
                    self.push(Event::Exit {
                        seq,
                        pid: *pid,
                        status: status.clone(),
                    });
                }
            }
            TracerMessage::Started { .. }
            | TracerMessage::Failed { .. }
            | TracerMessage::Busy { .. } => {}
        }
    }

    fn check_pidfiles(&mut self, pid: i32) {
        for i in 0..self.pidfiles.len() {
            let (path, seen) = self.pidfiles[i].clone();
            let now = read_pid(&path);
            if let Some(held) = now
                && now != seen
            {
                self.pidfiles[i].1 = now;
                self.flush();
                // Told as the act of the process it names when that is one of ours (a
                // daemon writes its own PID); otherwise of the process that was stopped.
                let pid = if self.procs.get(&held).is_some_and(|p| p.alive) {
                    held
                } else {
                    pid
                };
                let (process, changed) = self.look(pid);
                let seq = 0;
                let t_ms = self.t_ms();
                self.push(Event::Syscall {
                    seq,
                    t_ms,
                    pid,
                    syscall: None,
                    args: [0; 6],
                    result: 0,
                    errno: None,
                    rule: Some("pidfile_write"),
                    what: format!(
                        "{path} now holds PID {} (read from the file: write() is not watched)",
                        held
                    ),
                    calls: 1,
                    process,
                    changed,
                    sessions: Vec::new(),
                });
            }
        }
    }

    /// Watch `path` as a pid file; what it holds now (a previous run's PID) is the
    /// baseline, not a write.
    fn note_pidfile(&mut self, path: &str) {
        if !self.pidfiles.iter().any(|(p, _)| p == path) {
            let now = read_pid(path);
            self.pidfiles.push((path.to_string(), now));
        }
    }

    fn call(&mut self, c: &Call) {
        let locks_before = self.locks.len();
        self.call_inner(c);
        let seq = self.seq;
        for lock in &mut self.locks[locks_before..] {
            lock.seq = seq;
        }
    }

    fn call_inner(&mut self, c: &Call) {
        // Any other watched call of the same process ends its run: ld.so's open/close of
        // each library is not a close-everything loop.
        let run_goes_on = self.run.as_ref().is_none_or(|run| {
            event_pid(&run.event) != c.pid
                || match run.event.rule() {
                    Some("close_fds") => matches!(c.name.as_str(), "close" | "close_range"),
                    Some("dev_null") => {
                        matches!(c.name.as_str(), "open" | "openat" | "dup" | "dup2" | "dup3")
                    }
                    _ => false,
                }
        });
        if !run_goes_on {
            self.flush();
        }
        let ok = c.errno.is_none();
        let path = c.extra.path.clone().unwrap_or_default();
        let fd_target = |fd: i64| {
            std::fs::read_link(format!("/proc/{}/fd/{fd}", c.pid))
                .ok()
                .map(|p| p.display().to_string())
        };
        let proc_ = self.procs.entry(c.pid).or_default().clone();
        let outcome = match c.errno {
            Some(e) => format!(" = -1 {}", errno_name(e)),
            None => format!(" = {}", c.result),
        };
        let name = c.name.as_str();
        let mut rule: Option<&'static str> = None;
        let mut what = format!("{name}(){outcome}");
        match name {
            "execve" | "execveat" if ok => {
                let first = proc_.execs == 0 && c.pid == self.job;
                rule = Some(if first { "start" } else { "exec" });
                what = format!("{name}(\"{path}\"){outcome}");
                self.procs.get_mut(&c.pid).unwrap().execs += 1;
            }
            "umask" => {
                rule = Some("umask");
                what = format!("umask({:04o}) = {:04o} (the old mask)", c.args[0], c.result);
            }
            "getrlimit" | "prlimit64" => {
                rule = Some("getrlimit");
                let set = name == "prlimit64" && c.args[2] != 0;
                what = match c.extra.limit {
                    Some([soft, hard]) => format!(
                        "{name}(RLIMIT_NOFILE){outcome}: soft {}, hard {}",
                        limit(soft),
                        limit(hard)
                    ),
                    None if set => format!("{name}(RLIMIT_NOFILE, new limit){outcome}"),
                    None => format!("{name}(RLIMIT_NOFILE){outcome}"),
                };
            }
            // A successful fork is the rule at its fork event (above), before the child
            // runs; only a failure is told here.
            "fork" | "vfork" | "clone" | "clone3" => {
                if ok {
                    return;
                }
                rule = Some(if proc_.setsid { "second_fork" } else { "fork" });
            }
            "setsid" => {
                rule = Some("setsid");
                if ok {
                    self.procs.get_mut(&c.pid).unwrap().setsid = true;
                    what = format!("setsid() = {} (a new session, led by {})", c.result, c.pid);
                } else {
                    self.find("setsid_failed", Status::Fail, format!(
                            "pid {} called setsid() and got {}{}, then carried on as if detached",
                            c.pid,
                            errno_name(c.errno.unwrap()),
                            if c.errno == Some(libc::EPERM) {
                                " — it leads its process group (a job does), so setsid() must come after a fork (APUE 13.3)"
                            } else {
                                ""
                            }
                        ));
                }
            }
            "setpgid" => what = format!("setpgid({}, {}){outcome}", c.args[0], c.args[1]),
            "rt_sigaction" => {
                let signal = if c.args[0] == libc::SIGHUP as u64 {
                    "SIGHUP"
                } else {
                    "SIGTERM"
                };
                match c.extra.handler {
                    Some(1) if signal == "SIGHUP" => {
                        rule = Some("ignore_sighup");
                        what = format!("sigaction(SIGHUP, SIG_IGN){outcome}");
                    }
                    Some(h) if h > 1 => {
                        rule = (signal == "SIGHUP").then_some("ignore_sighup");
                        what = format!("sigaction({signal}, a handler){outcome}: caught");
                    }
                    Some(0) => what = format!("sigaction({signal}, SIG_DFL){outcome}"),
                    Some(_) => what = format!("sigaction({signal}, SIG_IGN){outcome}"),
                    None => return, // a query
                }
            }
            "chdir" | "fchdir" => {
                rule = Some("chdir");
                what = format!("{name}(\"{path}\"){outcome}");
            }
            "chroot" => {
                rule = Some("chroot");
                what = format!("chroot(\"{path}\"){outcome}");
                if ok {
                    self.procs.get_mut(&c.pid).unwrap().chroot = Some(path.clone());
                }
            }
            "close" | "close_range" => {
                let fd = c.args[0] as i64;
                if name == "close" && ok {
                    if (0..3).contains(&fd) {
                        self.procs.get_mut(&c.pid).unwrap().closed_stdio[fd as usize] = true;
                    }
                    if self
                        .locks
                        .iter()
                        .any(|l| l.path == path && (!l.flock || l.pid == c.pid))
                    {
                        self.procs.get_mut(&c.pid).unwrap().closed_lock = Some(self.seq + 1);
                    }
                }
                if name == "close_range" && ok && c.args[0] <= 2 {
                    let p = self.procs.get_mut(&c.pid).unwrap();
                    for i in c.args[0]..=c.args[1].min(2) {
                        p.closed_stdio[i as usize] = true;
                    }
                }
                rule = Some("close_fds");
                what = if name == "close" {
                    format!("close({fd}){outcome}")
                } else {
                    format!("close_range({}, {}){outcome}", c.args[0], c.args[1] as u32)
                };
            }
            "open" | "openat" | "openat2" | "creat" => {
                let flags = match name {
                    "open" => c.args[1],
                    "openat" => c.args[2],
                    "creat" => libc::O_CREAT as u64,
                    _ => 0,
                };
                let target = if ok { fd_target(c.result) } else { None };
                let real = target.clone().unwrap_or(path.clone());
                if ok && flags & libc::O_CREAT as u64 != 0 && real.ends_with(".pid") {
                    self.note_pidfile(&real);
                }
                if ok && (0..3).contains(&c.result) {
                    let fd = c.result as usize;
                    let closed = self.procs.get(&c.pid).is_some_and(|p| p.closed_stdio[fd]);
                    self.procs.get_mut(&c.pid).unwrap().closed_stdio[fd] = false;
                    if real == "/dev/null" {
                        rule = Some("dev_null");
                    } else if closed {
                        self.find("stdio_not_reopened", Status::Fail, format!(
                                "pid {} closed fd {fd} and open(\"{real}\") took its place: a stray printf or perror now goes into {real}",
                                c.pid
                            ));
                    }
                } else if real == "/dev/null" {
                    rule = Some("dev_null");
                }
                if is_terminal_path(&real) && flags & libc::O_NOCTTY as u64 == 0 {
                    let before = proc_.last.as_ref().and_then(|s| s.tty.clone());
                    let (snap, _) = self.look(c.pid);
                    let after = snap.as_ref().and_then(|s| s.tty.clone());
                    if before.is_none() && after.is_some() {
                        rule = Some("acquire_tty");
                        self.find("acquired_tty", Status::Fail, format!(
                                "pid {}, a session leader, opened {real} without O_NOCTTY and it became its controlling terminal — fork again after setsid(), or open terminals with O_NOCTTY (APUE 13.3, 9.6)",
                                c.pid
                            ));
                    }
                }
                if rule.is_none() && self.unresolved.is_empty() {
                    return;
                }
                what = format!("{name}(\"{real}\"){outcome}");
            }
            "dup" | "dup2" | "dup3" => {
                let onto = if name == "dup" {
                    c.result
                } else {
                    c.args[1] as i64
                };
                if ok && (0..3).contains(&onto) {
                    let p = self.procs.get_mut(&c.pid).unwrap();
                    p.closed_stdio[onto as usize] = false;
                    if path == "/dev/null" {
                        rule = Some("dev_null");
                    }
                }
                if rule.is_none() {
                    return;
                }
                what = format!("{name}({} → \"{path}\", {onto}){outcome}", c.args[0]);
            }
            "connect" | "sendto" | "sendmsg" => {
                let addr = c.extra.addr.clone().unwrap_or_default();
                let notify = self.notify_socket.as_deref().is_some_and(|n| {
                    n == addr || n.strip_prefix('@').is_some_and(|a| addr == format!("@{a}"))
                });
                if notify {
                    rule = Some("notify");
                    let text = c.extra.payload.clone().unwrap_or_default();
                    what = format!("{name}(NOTIFY_SOCKET, \"{}\"){outcome}", text.trim());
                } else if is_syslog_path(&addr) && name != "sendmsg" {
                    rule = Some("openlog");
                    what = format!("{name}(\"{addr}\"){outcome}");
                    if let Some(root) = &proc_.chroot {
                        self.find("log_after_chroot", if ok { Status::Warn } else { Status::Fail }, format!(
                                "pid {} reached for {addr} after chroot(\"{root}\"){}: inside the new root that path is {root}{addr} — openlog(…, LOG_NDELAY, …) before chroot() keeps the connection",
                                c.pid,
                                if ok { "" } else { " and it failed" }
                            ));
                    }
                } else {
                    return;
                }
            }
            "fcntl" | "flock" => {
                let (locking, kind) = if name == "fcntl" {
                    let set = match c.args[1] as i32 {
                        libc::F_SETLK => "F_SETLK",
                        libc::F_SETLKW => "F_SETLKW",
                        libc::F_OFD_SETLK => "F_OFD_SETLK",
                        _ => "F_OFD_SETLKW",
                    };
                    let kind = match c.extra.lock_type.map(i32::from) {
                        Some(libc::F_WRLCK) => "F_WRLCK",
                        Some(libc::F_RDLCK) => "F_RDLCK",
                        Some(libc::F_UNLCK) => "F_UNLCK",
                        _ => "?",
                    };
                    (kind != "F_UNLCK", format!("{set}, {kind}"))
                } else {
                    let op = c.args[1] as i32;
                    let kind = match op & !libc::LOCK_NB {
                        libc::LOCK_EX => "LOCK_EX",
                        libc::LOCK_SH => "LOCK_SH",
                        _ => "LOCK_UN",
                    };
                    let nb = if op & libc::LOCK_NB != 0 {
                        "|LOCK_NB"
                    } else {
                        ""
                    };
                    (kind != "LOCK_UN", format!("{kind}{nb}"))
                };
                rule = Some("lock");
                what = format!("{name}({} \"{path}\", {kind}){outcome}", c.args[0]);
                if ok && locking {
                    self.locks.push(Lock {
                        pid: c.pid,
                        path: path.clone(),
                        seq: 0,
                        flock: name == "flock",
                    });
                    self.note_pidfile(&path);
                }
            }
            "ioctl" => {
                if c.args[1] == libc::TIOCSCTTY as u64 {
                    rule = Some("acquire_tty");
                    what = format!("ioctl(TIOCSCTTY){outcome}");
                } else {
                    what = format!("ioctl(TIOCNOTTY){outcome}: gave up its controlling terminal");
                }
            }
            "prctl" => {
                what = if c.args[0] == libc::PR_SET_CHILD_SUBREAPER as u64 {
                    format!("prctl(PR_SET_CHILD_SUBREAPER, {}){outcome}", c.args[1])
                } else {
                    format!("prctl(PR_SET_PDEATHSIG, {}){outcome}", c.args[1])
                };
            }
            "setuid" | "setgid" | "setgroups" | "setresuid" | "setresgid" | "setreuid"
            | "setregid" => {
                rule = Some("drop_privileges");
                what = format!("{name}({}){outcome}", c.args[0] as u32 as i32);
            }
            "rt_sigprocmask" => {
                let Some(mask) = c.extra.mask else { return };
                let bit = |s: i32| mask & (1u64 << (s - 1)) != 0;
                let named: Vec<&str> = [(libc::SIGHUP, "SIGHUP"), (libc::SIGTERM, "SIGTERM")]
                    .iter()
                    .filter(|(s, _)| bit(*s))
                    .map(|(_, n)| *n)
                    .collect();
                if named.is_empty() {
                    return;
                }
                let how = match c.args[0] as i32 {
                    libc::SIG_BLOCK => "SIG_BLOCK",
                    libc::SIG_UNBLOCK => "SIG_UNBLOCK",
                    _ => "SIG_SETMASK",
                };
                what = format!("sigprocmask({how}, {}){outcome}", named.join(" "));
            }
            _ => return,
        }

        // Merge a run of one rule's calls by one process.
        let mergeable = matches!(rule, Some("close_fds" | "dev_null"));
        let opened = usize::from(name == "close" && ok);
        if mergeable
            && let Some(run) = &mut self.run
            && let Event::Syscall {
                pid,
                rule: r,
                calls,
                ..
            } = &mut run.event
            && *pid == c.pid
            && *r == rule
        {
            *calls += 1;
            run.opened += opened;
            if ok {
                let (snap, changed) = self.look(c.pid);
                if let Some(Run {
                    event:
                        Event::Syscall {
                            process,
                            changed: ch,
                            result,
                            ..
                        },
                    ..
                }) = &mut self.run
                {
                    *process = snap;
                    ch.extend(changed);
                    ch.sort();
                    ch.dedup();
                    *result = c.result;
                }
            }
            return;
        }
        self.flush();
        let (process, changed) = if rule.is_some() {
            self.look(c.pid)
        } else {
            (None, Vec::new())
        };
        let seq = 0;
        let t_ms = self.t_ms();
        let event = Event::Syscall {
            seq,
            t_ms,
            pid: c.pid,
            syscall: Some(c.name.clone()),
            args: c.args,
            result: c.result,
            errno: c.errno.map(errno_name),
            rule,
            what,
            calls: 1,
            process,
            changed,
            sessions: Vec::new(),
        };
        if mergeable {
            self.run = Some(Run { event, opened });
        } else {
            self.push(event);
        }
        self.check_pidfiles(c.pid);
    }

    /// The daemon the trace left, and the verdict: `inspect`'s checks on it plus the
    /// findings only the order of events shows.
    pub fn finish(&mut self) -> Verdict {
        self.flush();
        let parent_gone = self
            .held_fork
            .as_ref()
            .is_some_and(|h| !self.procs.get(&h.parent).is_some_and(|p| p.alive));
        self.settle_fork(parent_gone);
        // A PID written after the last stop (write() is not watched) shows now.
        let holders: Vec<i32> = self
            .procs
            .iter()
            .filter(|(_, p)| p.alive && !p.thread)
            .map(|(pid, _)| *pid)
            .collect();
        if let Some(&pid) = holders.iter().max() {
            self.check_pidfiles(pid);
        }
        let alive: Vec<i32> = {
            let mut v: Vec<i32> = self
                .procs
                .iter()
                .filter(|(pid, p)| {
                    p.alive && !p.thread && std::path::Path::new(&format!("/proc/{pid}")).exists()
                })
                .map(|(pid, _)| *pid)
                .collect();
            v.sort();
            v
        };
        // The daemon: a survivor whose parent did not survive (nginx's master, not its
        // workers); of several, the last one created.
        let roots: Vec<i32> = alive
            .iter()
            .copied()
            .filter(|pid| {
                self.procs
                    .get(pid)
                    .and_then(|p| p.parent)
                    .is_none_or(|parent| !alive.contains(&parent))
            })
            .collect();
        let main = roots.last().copied();
        let audit = main.and_then(|pid| crate::audit::inspect(pid).ok());
        let mut findings = std::mem::take(&mut self.findings);
        if let Some(pid) = main {
            self.end_findings(pid, &mut findings);
        }
        let role = audit.as_ref().map(|a| a.role);
        let tty = audit
            .as_ref()
            .and_then(|a| a.process.as_ref())
            .and_then(|p| p.tty.clone());
        let daemonized = role == Some(crate::audit::Role::Daemon) && tty.is_none();
        let summary = match (main, &audit) {
            (None, _) => {
                "every process of the program exited: nothing was left running, so it did not daemonize (or failed before it could)".to_string()
            }
            (Some(pid), Some(a)) if daemonized => format!(
                "pid {pid} ({}) carries on as a daemon: no terminal, {}",
                a.process.as_ref().map(|p| p.comm.as_str()).unwrap_or("?"),
                if a.process.as_ref().is_some_and(|p| p.session_leader) {
                    "leads its own session"
                } else {
                    "in a session whose leader has gone"
                }
            ),
            (Some(pid), _) if pid == self.job => format!(
                "pid {pid}, the program as started, still runs in the foreground of its terminal: it never daemonized by itself — that is how a new-style service runs under a service manager (daemon(7)), not a failure in itself"
            ),
            (Some(pid), Some(a)) => format!(
                "pid {pid} carries on, but as a {} (terminal {})",
                role_word(a.role),
                tty.as_deref().unwrap_or("none")
            ),
            (Some(pid), None) => format!("pid {pid} carries on, but could not be inspected"),
        };
        Verdict {
            event: "verdict",
            main_pid: main,
            daemonized,
            summary,
            checks: audit.as_ref().map(|a| a.checks.clone()).unwrap_or_default(),
            findings,
            audit,
        }
    }

    fn end_findings(&self, main: i32, findings: &mut Vec<Finding>) {
        for (path, pid) in &self.pidfiles {
            let Some(pid) = pid else { continue };
            if *pid != main {
                findings.push(Finding {
                    id: "pidfile_before_fork",
                    status: Status::Fail,
                    detail: format!(
                        "{path} holds PID {pid}, but the daemon is pid {main}: the PID was written before the last fork{} — write it after daemonizing",
                        if self.procs.get(pid).is_some_and(|p| !p.alive) {
                            format!(", and {pid} has exited")
                        } else {
                            String::new()
                        }
                    ),
                    seq: None,
                });
            }
        }
        let table = crate::locks::proc_locks::read().unwrap_or_default();
        for lock in &self.locks {
            if holds_lock(&table, main, lock) {
                continue;
            }
            if lock.pid != main && self.procs.get(&lock.pid).is_some_and(|p| !p.alive) {
                findings.push(Finding {
                    id: "lock_before_fork",
                    status: Status::Fail,
                    detail: format!(
                        "pid {} locked {} and then exited; the daemon (pid {main}) holds no lock on it, so a second instance would start — take the lock after the last fork (APUE 13.5)",
                        lock.pid, lock.path
                    ),
                    seq: Some(lock.seq),
                });
            } else if let Some(seq) = self.procs.get(&main).and_then(|p| p.closed_lock) {
                findings.push(Finding {
                    id: "closed_lock_fd",
                    status: Status::Fail,
                    detail: format!(
                        "the daemon (pid {main}) closed a descriptor of {} while it held the lock there: closing it released the lock — take the lock after closing descriptors, or keep its fd open",
                        lock.path
                    ),
                    seq: Some(seq),
                });
            }
        }
    }

    /// The stand-in's PID (the shell the program was typed at).
    pub fn stand_in(&self) -> i32 {
        self.stand_in
    }
}

/// Whether `main` holds `lock` now: a POSIX record lock in its own name; a flock or OFD
/// lock (owned by the open file, whoever took it) while a descriptor of `main` is on it.
fn holds_lock(table: &[crate::locks::proc_locks::LockEntry], main: i32, lock: &Lock) -> bool {
    let path = std::path::Path::new(&lock.path);
    let Ok(entries) = crate::locks::proc_locks::for_path(table, path) else {
        return false;
    };
    if entries.iter().any(|e| !e.waiter && e.pid == main) {
        return true;
    }
    // A flock or OFD lock belongs to the open file (whoever called flock()), and in a
    // container /proc/locks leaves out a lock whose caller has exited: the daemon's own
    // fdinfo says whether a lock is held through its descriptors.
    crate::locks::pid_holds_path(main, path)
}

fn event_pid(event: &Event) -> i32 {
    match event {
        Event::Syscall { pid, .. }
        | Event::Fork { pid, .. }
        | Event::Exec { pid, .. }
        | Event::Exit { pid, .. } => *pid,
    }
}

/// The PID a pid file holds (a trailing newline or NUL is fine), if any.
fn read_pid(path: &str) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim_end_matches(['\n', '\0']).trim().parse().ok()
}

fn limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

fn role_word(role: crate::audit::Role) -> &'static str {
    match serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .as_deref()
    {
        Some("job") => "job of its terminal's session",
        Some("service") => "service",
        Some("worker") => "worker",
        Some("zombie") => "zombie",
        _ => "process that is not detached",
    }
}
