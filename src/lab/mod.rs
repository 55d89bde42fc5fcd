//! The live subject: a real process, in a real terminal session, stepped through the
//! daemonization rules one request at a time. See DESIGN.md, "Process model".
//!
//! The lab itself never forks: it starts `daemonlab __session` with `std::process::Command`,
//! and only that single-threaded stand-in and the subject call `fork()`.

pub mod experiments;
use crate::process as guard;
pub mod protocol;
pub mod session;
pub mod signals;
pub mod step;
pub mod subject;
pub mod terminal;

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use serde::Serialize;
use tempfile::TempDir;

use crate::janitor::{self, Janitor};
use crate::probe::sessions::{self, Interest, SessionPicture};
use crate::probe::{self, Pid, ProbeError, ProcSnapshot};
use crate::syslog::receiver::{self, Message, Receiver};
use guard::Guard;
use protocol::{Reply, Request, SelfIds};
use session::SessionEvent;
pub use step::{STEPS, StepId, StepInfo};
use terminal::{Pty, Terminal};

/// Why the lab could not do what was asked. Each message names the thing and what to try.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "cannot create the lab's runtime directory in {dir}: {source} — set XDG_RUNTIME_DIR or TMPDIR to a directory you can write"
    )]
    RuntimeDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the lab's syslog receiver: {0}")]
    Syslog(std::io::Error),
    #[error("cannot open a pseudo-terminal for the subject: {0} — is /dev/pts mounted?")]
    Pty(nix::Error),
    #[error("cannot start {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the subject did not start: {0}")]
    NoHello(String),
    #[error("the subject stopped answering during {step}: {reason}")]
    Lost { step: &'static str, reason: String },
    #[error("{request} was refused by the subject: {reason}")]
    Refused {
        request: &'static str,
        reason: String,
    },
    #[error("control channel: {0}")]
    Channel(std::io::Error),
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The daemonlab binary to re-execute for `__session` and `__subject`.
    pub exe: PathBuf,
    /// Where the private runtime directory goes; default `$XDG_RUNTIME_DIR`, else the temp dir.
    pub runtime_base: Option<PathBuf>,
    /// How long to wait for the subject to answer one request.
    pub reply_timeout: Duration,
    /// `openlog` ident for step 10.
    pub ident: String,
    /// Have the subject use the C library's syslog(3), which writes to /dev/log. Where
    /// /dev/log does not exist and the lab may create it (root in a container), the lab's
    /// receiver binds /dev/log for its lifetime.
    pub system_syslog: bool,
    /// How many messages the syslog receiver keeps (`--syslog-buffer`).
    pub syslog_buffer: usize,
    /// Bind the lab's receiver here instead of in its runtime directory: the explorer
    /// keeps one path for its whole run, so a `logger -u PATH` typed elsewhere survives r.
    pub syslog_path: Option<PathBuf>,
    /// Also listen for syslog over UDP here (APUE's network path); off by default.
    pub syslog_udp: Option<std::net::SocketAddr>,
    /// Also show kernel messages from /dev/kmsg, where readable.
    pub kmsg: bool,
    /// Make the lab a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans of the
    /// subject are adopted, and reaped, by the lab instead of the nearest subreaper or
    /// PID 1. Shows the difference, and avoids zombies where PID 1 does not reap.
    pub subreaper: bool,
}

impl LabOptions {
    /// Options that re-execute the running binary.
    pub fn for_current_exe() -> std::io::Result<LabOptions> {
        Ok(LabOptions::with_exe(std::env::current_exe()?))
    }

    /// Options that run `exe` (tests pass the built `daemonlab` binary).
    pub fn with_exe(exe: PathBuf) -> LabOptions {
        LabOptions {
            exe,
            runtime_base: None,
            reply_timeout: Duration::from_secs(10),
            ident: "daemonlab".into(),
            subreaper: false,
            system_syslog: false,
            syslog_buffer: receiver::DEFAULT_CAPACITY,
            syslog_udp: None,
            syslog_path: None,
            kmsg: false,
        }
    }
}

/// An error from a step, as the subject's system call reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// errno number, when a system call failed.
    pub errno: Option<i32>,
    /// Symbolic name, e.g. `EPERM`.
    pub name: Option<String>,
    pub message: String,
}

impl StepError {
    /// An error as the subject reported it, with the errno's symbolic name added.
    pub fn new(errno: Option<i32>, message: String) -> StepError {
        let name = errno.map(|n| format!("{:?}", Errno::from_raw(n)));
        StepError {
            errno,
            name,
            message,
        }
    }
}

/// The result of one step: what the subject said, and what the kernel says afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub step: StepId,
    pub ok: bool,
    pub error: Option<StepError>,
    /// What the call returned, in the subject's words.
    pub detail: String,
    /// `(parent, child)` when the step forked; the lab now follows the child.
    pub forked: Option<Forked>,
    /// The subject's own getpid/getppid/getpgrp/getsid answers.
    pub self_ids: SelfIds,
    /// The kernel's view after the step, read from /proc.
    pub process: ProcSnapshot,
    /// Snapshot fields that differ from the previous step.
    pub changed: Vec<&'static str>,
    /// Set when the subject's own answers disagree with /proc.
    pub cross_check: Option<String>,
    /// Datagrams the lab's receiver got from the subject during this step.
    pub syslog: Vec<Message>,
    /// Every session holding the stand-in or the subject, read from /proc after the step.
    pub sessions: Vec<SessionPicture>,
}

/// The result of a syslog request that is not a step.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub ok: bool,
    pub detail: String,
    pub error: Option<StepError>,
    pub syslog: Option<protocol::SyslogState>,
    pub process: ProcSnapshot,
    pub changed: Vec<&'static str>,
    /// What the lab's receiver got from the subject in reply to a `Log`.
    pub received: Vec<Message>,
}

/// What a hang-up did, as the kernel and the stand-in tell it.
#[derive(Debug, Clone, Serialize)]
pub struct HangUpOutcome {
    /// The shell stand-in, the session leader the kernel sent SIGHUP to.
    pub stand_in: Pid,
    /// How it ended ("exited with status 129 (waitid)"), if known.
    pub stand_in_status: Option<String>,
    /// What the stand-in said it signalled: `Some(Some(group))` its job's group, still in
    /// its table; `Some(None)` nothing, the job was already reaped; `None` it said nothing.
    pub signalled: Option<Option<Pid>>,
    /// The subject at the time of the hang-up.
    pub subject: Pid,
    /// How the subject ended, when it did.
    pub ended: Option<String>,
    /// The kernel's view of the subject afterwards, when it lives.
    pub process: Option<ProcSnapshot>,
    /// Whether its process group is now orphaned (POSIX: no member has a parent in
    /// another group of the same session).
    pub orphaned: Option<bool>,
    /// What a read from its fd 0 and a write to its fd 1 gave afterwards.
    pub stdio: Option<String>,
    /// The session picture after the hang-up (the stand-in's session gone or emptied).
    pub sessions: Vec<SessionPicture>,
}

impl HangUpOutcome {
    /// The stand-in's part, in one sentence.
    pub fn shell_part(&self) -> String {
        let how = self
            .stand_in_status
            .as_deref()
            .map(|s| format!(" and {s}"))
            .unwrap_or_default();
        match self.signalled {
            Some(Some(group)) => format!(
                "the lab closed the pty master; the kernel sent SIGHUP and SIGCONT to the stand-in {}, whose job \
                 was still in its table, so like bash it sent SIGHUP and SIGCONT to group {group}, then left{how}",
                self.stand_in
            ),
            Some(None) => format!(
                "the lab closed the pty master; the kernel sent SIGHUP and SIGCONT to the stand-in {}, whose job \
                 had ended and been reaped, so like bash it signalled no one, then left{how}",
                self.stand_in
            ),
            None => format!(
                "the lab closed the pty master; the stand-in {} did not say what it did{how}",
                self.stand_in
            ),
        }
    }

    /// The outcome in a few words, as /proc shows it: "killed by SIGHUP", or how it
    /// survived.
    pub fn headline(&self) -> String {
        match (&self.ended, &self.process) {
            (Some(how), _) => format!("pid {}: {how}", self.subject),
            (None, Some(p)) if p.sid == self.stand_in => format!(
                "pid {} survived — the hang-up took the terminal from its session: TTY {}, 0/1/2 now on a \
                 dead terminal",
                p.pid,
                p.tty.as_deref().unwrap_or("?")
            ),
            (None, Some(p)) => format!(
                "pid {} survived — in a session of its own (SID {}), so nothing signalled it",
                p.pid, p.sid
            ),
            (None, None) => format!("pid {}: no longer visible", self.subject),
        }
    }

    /// The subject's part, in one sentence.
    pub fn subject_part(&self) -> String {
        match (&self.ended, &self.process) {
            (Some(how), _) => format!("pid {}: {how}", self.subject),
            (None, Some(p)) => {
                let group = match self.orphaned {
                    Some(true) => format!("in orphaned group {}", p.pgid),
                    Some(false) => format!("in group {}", p.pgid),
                    None => format!("in group {}", p.pgid),
                };
                format!(
                    "pid {} alive: TTY {}, TPGID {}, session {}, {group}; {}",
                    p.pid,
                    p.tty.as_deref().unwrap_or("?"),
                    p.tpgid,
                    p.sid,
                    self.stdio.as_deref().unwrap_or("stdio not tried")
                )
            }
            (None, None) => format!("pid {}: no longer visible", self.subject),
        }
    }
}

/// A fork as the parent reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Forked {
    pub parent: Pid,
    pub child: Pid,
}

/// A running lab: the session stand-in, the subject, its terminal and syslog receiver.
/// Dropping it ends every process it started.
pub struct Lab {
    options: LabOptions,
    control: UnixStream,
    /// The lab's end of the stand-in's lifeline: it closing tells the stand-in to go.
    _lifeline: UnixStream,
    replies: BufReader<UnixStream>,
    guard: Arc<Guard>,
    session_pid: Pid,
    subject: Pid,
    /// Who created the current subject process: the stand-in, or the parent of a fork.
    birth_parent: Pid,
    pty_name: String,
    control_fd: i32,
    terminal: Arc<Terminal>,
    session_events: Arc<SessionLog>,
    syslog: Arc<Receiver>,
    /// Where the subject's syslog messages go, in words for the UI.
    syslog_note: String,
    last: ProcSnapshot,
    /// The subject's /proc files, kept open from snapshot to snapshot (`probe::Watch`).
    subject_files: Mutex<Option<probe::Watch>>,
    /// The session picture after the last step (or at start), to tell who exited since.
    last_sessions: Vec<SessionPicture>,
    // After the receiver, so the socket file is gone before the directory is removed.
    runtime: TempDir,
    /// Removes the runtime directory (and /dev/log, mounts) if the lab dies before `Drop`
    /// can; last, so it only exits after the lab's own cleanup.
    janitor: Arc<Janitor>,
}

impl Lab {
    /// Start a subject as a shell job in a fresh pty session and wait until it runs.
    pub fn start(options: LabOptions) -> Result<Lab, LabError> {
        let janitor = Arc::new(
            Janitor::start(&options.exe).map_err(|source| LabError::Spawn {
                exe: options.exe.clone(),
                source,
            })?,
        );
        let runtime = janitor::making(|| {
            let runtime = private_runtime_dir(options.runtime_base.clone())?;
            watch(&janitor, janitor::Entry::dir(runtime.path()));
            Ok::<_, LabError>(runtime)
        })?;
        let (syslog, mut syslog_note, follow_journal) =
            janitor::making(|| bind_receiver(&options, runtime.path(), &janitor))?;
        let syslog = Arc::new(syslog);
        if let Some(addr) = options.syslog_udp {
            match syslog.add_udp(addr) {
                Ok(bound) => syslog_note.push_str(&format!(
                    "; also UDP {bound} (logger -n 127.0.0.1 -P {})",
                    bound.port()
                )),
                Err(e) => {
                    return Err(LabError::Syslog(std::io::Error::new(
                        e.kind(),
                        format!("UDP {addr}: {e} — ports below 1024 need root; try 127.0.0.1:5514"),
                    )));
                }
            }
        }
        if options.kmsg {
            match syslog.add_kmsg() {
                Ok(()) => syslog_note.push_str("; kernel messages from /dev/kmsg"),
                Err(e) => syslog_note.push_str(&format!("; /dev/kmsg not shown: {e}")),
            }
        }
        let pty = Pty::open().map_err(LabError::Pty)?;
        if options.subreaper {
            nix::sys::prctl::set_child_subreaper(true).map_err(|e| LabError::Spawn {
                exe: options.exe.clone(),
                source: e.into(),
            })?;
        }
        let pty_name = pty.short_name();

        let (control, subject_end) = UnixStream::pair().map_err(LabError::Channel)?;
        let (lifeline, session_end) = UnixStream::pair().map_err(LabError::Channel)?;
        let spawn_error = |source| LabError::Spawn {
            exe: options.exe.clone(),
            source,
        };
        let slave = pty.slave.try_clone().map_err(spawn_error)?;
        let child = Command::new(&options.exe)
            .arg("__session")
            .arg("--pty")
            .arg(&pty.path)
            .arg("--")
            .arg("--syslog-socket")
            .arg(syslog.path())
            .arg("--ident")
            .arg(&options.ident)
            .arg("--console")
            .arg(&pty.path)
            .args(options.system_syslog.then_some("--system-syslog"))
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(subject_end)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(session_end)))
            .stderr(Stdio::from(slave))
            .spawn()
            .map_err(spawn_error)?;
        let session_pid = child.id() as Pid;
        let guard = Arc::new(Guard::default());
        // Any early return from here on ends what was started so far.
        let mut cleanup = CleanupOnError(Some(Arc::clone(&guard)));
        guard.set_session(child).map_err(spawn_error)?;
        guard.add_channel(control.try_clone().map_err(LabError::Channel)?);
        guard.add_channel(lifeline.try_clone().map_err(LabError::Channel)?);
        if follow_journal {
            match crate::syslog::journal::follow(&options.ident, Arc::clone(&syslog)) {
                Ok(child) => guard.add_helper(child),
                Err(e) => syslog_note.push_str(&format!(" (but journalctl could not start: {e})")),
            }
        }
        drop(pty.slave);
        let terminal = Terminal::spawn_reader(pty.master).map_err(LabError::Channel)?;
        let session_events = Arc::new(SessionLog::default());
        let lifeline_writer = lifeline.try_clone().map_err(LabError::Channel)?;
        spawn_lifeline_reader(lifeline, Arc::clone(&session_events))?;

        let replies = control.try_clone().map_err(LabError::Channel)?;
        replies
            .set_read_timeout(Some(options.reply_timeout))
            .map_err(LabError::Channel)?;
        let mut replies = BufReader::new(replies);
        let ids = match protocol::receive::<Reply>(&mut replies) {
            Ok(Some(Reply::Hello { ids })) => ids,
            other => {
                std::thread::sleep(Duration::from_millis(50));
                let said = terminal.lines_since(0).join(" / ");
                return Err(LabError::NoHello(format!(
                    "expected a hello on the control channel, got {other:?}; its terminal said: {}",
                    if said.is_empty() { "nothing" } else { &said }
                )));
            }
        };
        if let Ok(fd) = guard::pidfd_open(ids.pid) {
            guard.add_process(ids.pid, fd);
        }
        let subject_files = Mutex::new(None);
        let last = settled_snapshot(&subject_files, ids.pid, session_pid)?;
        let control_fd = last
            .fds
            .iter()
            .flatten()
            .find(|fd| fd.fd >= protocol::CONTROL_FD_MIN && fd.target.starts_with("socket:"))
            .map(|fd| fd.fd)
            .unwrap_or(protocol::CONTROL_FD_MIN);
        let last_sessions = scan_sessions(session_pid, ids.pid, session_pid, &[]);
        cleanup.0 = None;
        tracing::info!(
            session = session_pid,
            subject = ids.pid,
            pty = %pty_name,
            control_fd,
            syslog = %syslog.path().display(),
            runtime = %runtime.path().display(),
            "lab started"
        );
        Ok(Lab {
            options,
            control,
            _lifeline: lifeline_writer,
            replies,
            guard,
            session_pid,
            subject: ids.pid,
            birth_parent: session_pid,
            pty_name,
            control_fd,
            terminal,
            session_events,
            syslog,
            syslog_note,
            last,
            subject_files,
            last_sessions,
            runtime,
            janitor,
        })
    }

    /// Ask the subject to carry out `step` (any step, in any order), then read /proc.
    pub fn run(&mut self, step: StepId) -> Result<StepOutcome, LabError> {
        let syslog_before = self.syslog.received();
        tracing::debug!(?step, subject = self.subject, "step requested");
        protocol::send(&self.control, &Request::Step { step })
            .map_err(|e| self.lost(step, e.to_string()))?;
        let mut forked = None;
        let (ids, result) = loop {
            match protocol::receive::<Reply>(&mut self.replies) {
                Ok(Some(Reply::Forked { parent, child, .. })) => {
                    if let Ok(fd) = guard::pidfd_open(child) {
                        self.guard.add_process(child, fd);
                    }
                    forked = Some(Forked { parent, child });
                }
                Ok(Some(Reply::Done { ids, detail, .. })) => break (ids, Ok(detail)),
                Ok(Some(Reply::Failed {
                    ids,
                    errno,
                    message,
                    ..
                })) => break (ids, Err((errno, message))),
                Ok(Some(Reply::Hello { .. } | Reply::Did { .. } | Reply::Refused { .. })) => {}
                Ok(None) => return Err(self.lost(step, "it closed the control channel".into())),
                Err(e) => return Err(self.lost(step, e.to_string())),
            }
        };
        if let Some(f) = forked {
            // When the stand-in's own job exits, it reaps it and takes the terminal back,
            // as a shell does. Wait for that, so the snapshot does not race the shell.
            if self.birth_parent == self.session_pid {
                self.session_events.wait_for(
                    Duration::from_secs(1),
                    |e| matches!(e, SessionEvent::Reaped { pid, .. } if *pid == f.parent),
                );
            }
            self.subject = f.child;
            self.birth_parent = f.parent;
            if self.options.subreaper {
                self.guard.reap_exited();
            }
        }
        let syslog = if step == StepId::Openlog && result.is_ok() {
            // Delivered means our receiver has it, not that send() returned.
            let subject = self.subject;
            let got = self
                .syslog
                .wait_for(syslog_before, Duration::from_secs(1), |m| {
                    m.sender_pid == Some(subject)
                });
            got.into_iter()
                .filter(|m| m.sender_pid == Some(subject))
                .collect()
        } else {
            Vec::new()
        };
        let process = settled_snapshot(&self.subject_files, self.subject, self.birth_parent)?;
        let changed = process.changed_fields(&self.last);
        let cross_check = cross_check(&ids, &process);
        self.last = process.clone();
        let sessions = scan_sessions(
            self.session_pid,
            self.subject,
            self.birth_parent,
            &self.last_sessions,
        );
        self.last_sessions = sessions.clone();
        let (ok, detail, error) = match result {
            Ok(detail) => (true, detail, None),
            Err((errno, message)) => (false, String::new(), Some(StepError::new(errno, message))),
        };
        tracing::info!(
            ?step,
            ok,
            error = error.as_ref().map(|e| e.message.as_str()),
            forked = forked.as_ref().map(|f| f.child),
            pid = process.pid,
            ppid = process.ppid,
            pgid = process.pgid,
            sid = process.sid,
            tty = process.tty.as_deref().unwrap_or("?"),
            changed = ?changed,
            "step done"
        );
        Ok(StepOutcome {
            step,
            ok,
            error,
            detail,
            forked,
            self_ids: ids,
            process,
            changed,
            cross_check,
            syslog,
            sessions,
        })
    }

    /// The session picture after the last step, or at start before any.
    pub fn sessions(&self) -> &[SessionPicture] {
        &self.last_sessions
    }

    /// Read /proc for the subject now (the TUI's periodic refresh).
    pub fn snapshot(&self) -> Result<ProcSnapshot, ProbeError> {
        let mut files = self.subject_files.lock().unwrap_or_else(|e| e.into_inner());
        watched(&mut files, self.subject)?.snapshot(Some(self.birth_parent))
    }

    /// The snapshot taken after the last step (or at start).
    pub fn last_snapshot(&self) -> &ProcSnapshot {
        &self.last
    }

    /// PID of the process the lab is following now.
    pub fn subject_pid(&self) -> Pid {
        self.subject
    }

    /// PID of the shell stand-in (the session leader of the pty).
    pub fn session_pid(&self) -> Pid {
        self.session_pid
    }

    /// `pts/N` of the subject's terminal.
    pub fn pty_name(&self) -> &str {
        &self.pty_name
    }

    /// Descriptor number of the control channel inside the subject.
    pub fn control_fd(&self) -> i32 {
        self.control_fd
    }

    /// What the subject printed to its terminal.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }

    /// What the shell stand-in reported (jobs reaped, terminal taken back).
    pub fn session_events(&self) -> Vec<SessionEvent> {
        self.session_events
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where the subject's syslog messages go, for people.
    pub fn syslog_note(&self) -> &str {
        &self.syslog_note
    }

    /// Ask the subject for a syslog(3) call that is not a step: a message, a mask, or
    /// `openlog` with other options. Waits briefly for the receiver to get what was sent.
    pub fn syslog_request(&mut self, request: Request) -> Result<ActionOutcome, LabError> {
        let name = match &request {
            Request::Log { .. } => "syslog",
            Request::SetLogMask { .. } => "setlogmask",
            Request::Openlog { .. } => "openlog",
            Request::Lock { .. } => "already_running",
            _ => {
                return Err(self.lost(StepId::Openlog, "not a syslog request".into()));
            }
        };
        let before = self.syslog.received();
        protocol::send(&self.control, &request).map_err(|e| LabError::Lost {
            step: name,
            reason: e.to_string(),
        })?;
        let (ok, detail, error, state) = loop {
            match protocol::receive::<Reply>(&mut self.replies) {
                Ok(Some(Reply::Did { detail, syslog, .. })) => break (true, detail, None, syslog),
                Ok(Some(Reply::Refused { errno, message, .. })) => {
                    break (
                        false,
                        String::new(),
                        Some(StepError::new(errno, message)),
                        None,
                    );
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(LabError::Lost {
                        step: name,
                        reason: "it closed the control channel".into(),
                    });
                }
                Err(e) => {
                    return Err(LabError::Lost {
                        step: name,
                        reason: e.to_string(),
                    });
                }
            }
        };
        let subject = self.subject;
        let mut detail = detail;
        let received = if matches!(request, Request::Log { .. }) && detail.contains("sent ") {
            // A datagram counts on arrival even when folding absorbs it into a repeat.
            let count = self
                .syslog
                .wait_received(before + 1, Duration::from_millis(500));
            let got: Vec<Message> = self
                .syslog
                .messages_after(before)
                .into_iter()
                .filter(|m| m.sender_pid == Some(subject))
                .collect();
            if got.is_empty() && count > before {
                detail.push_str(" — received, and folded into \"last message repeated\" (press U to stop folding)");
            }
            got
        } else {
            Vec::new()
        };
        let process = settled_snapshot(&self.subject_files, self.subject, self.birth_parent)?;
        let changed = process.changed_fields(&self.last);
        self.last = process.clone();
        Ok(ActionOutcome {
            ok,
            detail,
            error,
            syslog: state,
            process,
            changed,
            received,
        })
    }

    /// How the subject ended, when it is gone: the stand-in's wait status if it was the
    /// stand-in's own child, else what the kernel still shows (see experiments::exit_status).
    pub fn how_it_ended(&self) -> String {
        let pid = self.subject;
        let reaped = self.session_events().into_iter().find_map(|e| match e {
            SessionEvent::Reaped { pid: p, status, .. } if p == pid => Some(status),
            _ => None,
        });
        reaped.unwrap_or_else(|| experiments::describe_exit(pid))
    }

    /// Hang up the subject's terminal as a closed terminal window does: the lab closes
    /// its pty master, and the kernel does the rest for any user — SIGHUP and SIGCONT to
    /// the session leader (the stand-in), the terminal taken from every process of the
    /// session. The stand-in then does what bash does (SIGHUP to the jobs still in its
    /// table) and exits. Returns what the kernel shows afterwards.
    pub fn hang_up(&mut self) -> Result<HangUpOutcome, LabError> {
        let subject = self.subject;
        let subject_fd = guard::pidfd_open(subject).ok();
        let stand_in_fd = guard::pidfd_open(self.session_pid).ok();
        self.terminal.hang_up();
        if !self.terminal.is_hung_up() {
            return Err(LabError::Lost {
                step: "hangup",
                reason: "the terminal's reader had already ended (the session was gone)".into(),
            });
        }
        // The stand-in reports, then exits; a signalled subject dies at once.
        if let Some(fd) = &stand_in_fd {
            experiments::wait_exit(fd, Duration::from_secs(3));
        }
        let signalled = self.session_events().into_iter().find_map(|e| match e {
            SessionEvent::HungUp { signalled } => Some(signalled),
            _ => None,
        });
        if signalled.flatten().is_some()
            && let Some(fd) = &subject_fd
        {
            experiments::wait_exit(fd, Duration::from_secs(1));
        }
        // The kernel's part may still be on its way to the other members: let it settle.
        std::thread::sleep(Duration::from_millis(20));
        let stand_in_status = experiments::exit_status(self.session_pid);
        // Read, so reap it: the stand-in is gone, not a zombie, from here on.
        self.guard.reap_exited();
        let alive = subject_fd.as_ref().is_some_and(|fd| !guard::has_exited(fd));
        let sessions = scan_sessions(
            self.session_pid,
            subject,
            self.birth_parent,
            &self.last_sessions,
        );
        self.last_sessions = sessions.clone();
        let (process, orphaned, stdio, ended) = if alive {
            let process = settled_snapshot(&self.subject_files, subject, self.birth_parent)?;
            // The session picture's verdict: one rule for "orphaned" in the whole lab.
            let orphaned = sessions
                .iter()
                .flat_map(|s| &s.groups)
                .find(|g| g.pgid == process.pgid)
                .map(|g| g.orphaned);
            let stdio = match self.ask(Request::TryStdio) {
                Ok(answer) => Some(answer.detail),
                Err(e) => Some(format!("could not ask: {e}")),
            };
            self.last = process.clone();
            (Some(process), orphaned, stdio, None)
        } else {
            (None, None, None, Some(self.how_it_ended()))
        };
        Ok(HangUpOutcome {
            sessions,
            stand_in: self.session_pid,
            stand_in_status,
            signalled,
            subject,
            ended,
            process,
            orphaned,
            stdio,
        })
    }

    /// SIGKILL the subject, by the pidfd the lab opened when it started or forked it.
    pub fn kill_subject(&self) -> Result<(), LabError> {
        self.guard
            .signal(self.subject, libc::SIGKILL)
            .map_err(LabError::Channel)
    }

    /// Send a request that is not a step and wait for its Did/Refused; a refusal is an
    /// error naming the request and its errno.
    pub(crate) fn ask(&mut self, request: Request) -> Result<Answer, LabError> {
        let name = request_name(&request);
        let lost = |reason: String| LabError::Lost { step: name, reason };
        protocol::send(&self.control, &request).map_err(|e| lost(e.to_string()))?;
        loop {
            match protocol::receive::<Reply>(&mut self.replies) {
                Ok(Some(Reply::Did { detail, made, .. })) => return Ok(Answer { detail, made }),
                Ok(Some(Reply::Refused { errno, message, .. })) => {
                    // The message usually names the errno already ("EPERM: …").
                    let errno = errno
                        .map(|n| format!("{:?}", Errno::from_raw(n)))
                        .filter(|name| !message.starts_with(name.as_str()))
                        .map(|name| format!("{name}: "));
                    return Err(LabError::Refused {
                        request: name,
                        reason: format!("{}{message}", errno.unwrap_or_default()),
                    });
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(lost("it closed the control channel".into())),
                Err(e) => return Err(lost(e.to_string())),
            }
        }
    }

    /// The lab's syslog receiver.
    pub fn syslog(&self) -> &Receiver {
        &self.syslog
    }

    /// The private runtime directory (mode 0700).
    pub fn runtime_dir(&self) -> &Path {
        self.runtime.path()
    }

    /// A handle that can end every lab process from another thread (signal handling).
    pub fn guard(&self) -> Arc<Guard> {
        Arc::clone(&self.guard)
    }

    /// Removes what this lab leaves on disk if the lab dies first (experiments register
    /// their mounts here).
    pub fn janitor(&self) -> &Janitor {
        &self.janitor
    }

    /// The options this lab was started with.
    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// End the subject and the stand-in now.
    pub fn shutdown(self) {
        drop(self)
    }

    fn lost(&self, step: StepId, reason: String) -> LabError {
        LabError::Lost {
            step: step.info().short,
            reason,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = protocol::send(&self.control, &Request::Exit);
        self.guard.shutdown();
    }
}

/// Ends the lab's processes if `Lab::start` fails half-way.
struct CleanupOnError(Option<Arc<Guard>>);

impl Drop for CleanupOnError {
    fn drop(&mut self) {
        if let Some(guard) = &self.0 {
            guard.shutdown();
        }
    }
}

/// Events from the stand-in, with a way to wait for one.
#[derive(Default)]
struct SessionLog {
    events: Mutex<Vec<SessionEvent>>,
    arrived: Condvar,
}

impl SessionLog {
    fn push(&self, event: SessionEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
        self.arrived.notify_all();
    }

    fn wait_for(&self, timeout: Duration, wanted: impl Fn(&SessionEvent) -> bool) -> bool {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let (events, _) = self
            .arrived
            .wait_timeout_while(events, timeout, |events| !events.iter().any(&wanted))
            .unwrap_or_else(|e| e.into_inner());
        events.iter().any(wanted)
    }
}

fn spawn_lifeline_reader(lifeline: UnixStream, log: Arc<SessionLog>) -> Result<(), LabError> {
    std::thread::Builder::new()
        .name("session-lifeline".into())
        .spawn(move || {
            let mut reader = BufReader::new(&lifeline);
            while let Ok(Some(event)) = protocol::receive::<SessionEvent>(&mut reader) {
                log.push(event);
            }
        })
        .map(|_| ())
        .map_err(LabError::Channel)
}

/// The sessions holding the stand-in and the subject; an unreadable /proc gives none,
/// which the picture shows as empty rather than failing the step.
fn scan_sessions(
    stand_in: Pid,
    subject: Pid,
    birth_parent: Pid,
    previous: &[SessionPicture],
) -> Vec<SessionPicture> {
    let interest = [
        Interest {
            pid: stand_in,
            birth_parent: None,
        },
        Interest {
            pid: subject,
            birth_parent: Some(birth_parent),
        },
    ];
    sessions::scan(&interest, previous).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot scan /proc for the session picture");
        Vec::new()
    })
}

/// A snapshot once the subject is back to waiting for a request: right after its reply it
/// may still be running for a few microseconds, and "R" then "S" is not a change any step
/// made. Watched by its stat line alone (a few µs a read, where a snapshot costs tens),
/// yielding the core in between in case the subject waits for it; gives up after 2 ms
/// and shows what the kernel says then.
fn settled_snapshot(
    files: &Mutex<Option<probe::Watch>>,
    pid: Pid,
    birth_parent: Pid,
) -> Result<ProcSnapshot, ProbeError> {
    const LIMIT: Duration = Duration::from_millis(2);
    let since = std::time::Instant::now();
    let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
    let watch = watched(&mut files, pid)?;
    loop {
        while since.elapsed() < LIMIT {
            match watch.stat() {
                Ok(stat) if stat.state == 'R' => std::thread::yield_now(),
                _ => break,
            }
        }
        let process = watch.snapshot(Some(birth_parent))?;
        if process.state != 'R' || since.elapsed() >= LIMIT {
            return Ok(process);
        }
    }
}

/// The subject's /proc files, opened again when the subject is a new process (a fork).
fn watched(files: &mut Option<probe::Watch>, pid: Pid) -> Result<&mut probe::Watch, ProbeError> {
    if files.as_ref().is_none_or(|w| w.pid() != pid) {
        *files = None;
        *files = Some(probe::Watch::open(pid)?);
    }
    Ok(files.as_mut().expect("just set"))
}

/// The receiver, and a sentence saying where the subject's messages go. In system mode
/// the lab takes /dev/log when it is free and it may; otherwise the messages go to the
/// system's logger, and the lab says so rather than pretend to show them.
fn bind_receiver(
    options: &LabOptions,
    runtime: &Path,
    janitor: &Janitor,
) -> Result<(Receiver, String, bool), LabError> {
    let private = runtime.join("log");
    if options.system_syslog {
        let dev_log = Path::new("/dev/log");
        // A stale /dev/log would break every later logger on the machine: the janitor has
        // it from before the bind.
        if std::fs::symlink_metadata(dev_log).is_err()
            && let Ok(receiver) =
                janitor.bind_socket(dev_log, || Receiver::bind(dev_log, options.syslog_buffer))
        {
            let note = "system mode: the subject uses libc's syslog(3); /dev/log was free, so the lab bound it \
                        for its lifetime (and removes it on exit)"
                .to_string();
            return Ok((receiver, note, false));
        }
        let receiver = Receiver::bind(&private, options.syslog_buffer).map_err(LabError::Syslog)?;
        if crate::syslog::journal::available() {
            let note = format!(
                "system mode: /dev/log belongs to the system logger; the lab follows `journalctl -f -t {}` \
                 to show what reached the journal",
                options.ident
            );
            return Ok((receiver, note, true));
        }
        let note = "system mode: the subject's messages go to the system logger at /dev/log, which the lab \
                    cannot read back here — look in /var/log/syslog or your logger's files"
            .to_string();
        return Ok((receiver, note, false));
    }
    let private = options.syslog_path.clone().unwrap_or(private);
    let bind = || Receiver::bind(&private, options.syslog_buffer);
    // A path of the user's choosing outlives the runtime directory: the janitor has it.
    let receiver = if options.syslog_path.is_some() {
        janitor.bind_socket(&private, bind)
    } else {
        bind()
    }
    .map_err(LabError::Syslog)?;
    let note = format!(
        "the lab's own syslogd at {} (try: logger -u {} hello)",
        private.display(),
        private.display()
    );
    Ok((receiver, note, false))
}

/// Tell the janitor about something the lab just made; a failure only costs the cleanup
/// after a crash, so it is logged, not fatal.
fn watch(janitor: &Janitor, entry: std::io::Result<janitor::Entry>) {
    match entry {
        Ok(entry) => janitor.add(&entry),
        Err(e) => tracing::warn!(error = %e, "cannot describe a lab file to the janitor"),
    }
}

/// A new directory only we can enter (0700 whatever the umask, unique random name, never a
/// path that already exists: mkdir does not follow a planted symlink), under `base` or
/// `$XDG_RUNTIME_DIR` or the temp dir. It is removed when the value is dropped.
pub fn private_runtime_dir(base: Option<PathBuf>) -> Result<TempDir, LabError> {
    use std::os::unix::fs::PermissionsExt;
    let base = base.unwrap_or_else(default_runtime_base);
    let dir = tempfile::Builder::new()
        .prefix("daemonlab-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|source| LabError::RuntimeDir {
            dir: base.clone(),
            source,
        })?;
    // mkdir's mode passes through the umask (077 leaves 0700, 777 leaves 0000): set it on
    // the directory we opened, not on a path that could have been swapped.
    std::fs::File::open(dir.path())
        .and_then(|d| d.set_permissions(std::fs::Permissions::from_mode(0o700)))
        .map_err(|source| LabError::RuntimeDir { dir: base, source })?;
    Ok(dir)
}

/// `$XDG_RUNTIME_DIR` when it names a directory, else `$TMPDIR` when set and not empty,
/// else /tmp (an empty variable counts as unset, as in POSIX's confstr rules).
fn default_runtime_base() -> PathBuf {
    let nonempty = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    nonempty("XDG_RUNTIME_DIR")
        .filter(|p| p.is_dir())
        .or_else(|| nonempty("TMPDIR"))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Compare the subject's own answers with /proc; `Some(text)` names every mismatch.
fn cross_check(ids: &SelfIds, process: &ProcSnapshot) -> Option<String> {
    let pairs = [
        ("pid", ids.pid, process.pid),
        ("ppid", ids.ppid, process.ppid),
        ("pgid", ids.pgid, process.pgid),
        ("sid", ids.sid, process.sid),
    ];
    let mismatches: Vec<String> = pairs
        .iter()
        .filter(|(_, said, kernel)| said != kernel)
        .map(|(name, said, kernel)| format!("{name}: the subject says {said}, /proc says {kernel}"))
        .collect();
    (!mismatches.is_empty()).then(|| mismatches.join("; "))
}

/// What the subject answered to a request that is not a step.
pub(crate) struct Answer {
    pub(crate) detail: String,
    pub(crate) made: Option<i32>,
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::OpenTty { .. } => "open a terminal",
        Request::Open { .. } => "open",
        Request::Mkdir { .. } => "mkdir",
        Request::Print { .. } => "print",
        Request::Chdir { .. } => "chdir",
        Request::SetCloexec { .. } => "fcntl(F_SETFD)",
        Request::SpawnHelper { .. } => "fork and exec a helper",
        Request::SpawnStoppedMember { .. } => "fork a stopped group member",
        Request::ServeConfig { .. } => "serve a config file",
        Request::Lock { .. } => "already_running",
        Request::Openlog { .. } => "openlog",
        Request::Chroot { .. } => "chroot",
        Request::Getlogin => "getlogin",
        Request::TryStdio => "a read and a write on 0 and 1",
        _ => "request",
    }
}
