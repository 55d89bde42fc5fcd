//! `daemonlab trace -- PROGRAM`: any program followed through its own daemonization.
//!
//! The program is started as the lab starts its subject — a job of the shell stand-in on a
//! fresh pty — but the stand-in (`__session --trace`, see `tracer`) also traces it and its
//! descendants with ptrace, stopping them only on the calls the daemon rules are about
//! (`filter`). At every such stop the program is still, so the front-end here reads /proc
//! for it (the same `ProcSnapshot` the lab shows), maps the call to a rule (`rules`), and
//! only then lets it go on. This process never ptraces and never forks.

pub mod filter;
pub mod protocol;
pub mod rules;
pub mod syslog;
pub mod tracer;

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::lab::protocol as wire;
use crate::lab::terminal::{Pty, Terminal};
use crate::process::Guard;
use protocol::{TracerCommand, TracerMessage};

/// How to run a trace.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The daemonlab binary to re-execute as `__session --trace`.
    pub exe: PathBuf,
    /// The program as typed and its arguments.
    pub program: String,
    pub args: Vec<String>,
    /// How long the processes left after the original one exits must stay quiet.
    pub settle: Duration,
    /// The whole run's bound.
    pub timeout: Duration,
    /// Stop only on the rules' calls (seccomp-bpf); false stops on every call.
    pub filter: bool,
}

/// Why a program could not be traced at all.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0}: not found (looked in PATH: {1}) — give a path such as ./a.out")]
    NotFound(String, String),
    #[error("{0}: no such file — check the path")]
    NoSuchFile(String),
    #[error("{0}: not an executable file — check it with ls -l, or chmod +x it")]
    NotExecutable(String),
    #[error("cannot start the tracer {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open a pty for the program: {0}")]
    Pty(nix::Error),
    #[error("the tracer did not start the program: {0}")]
    NoStart(String),
    #[error("ptrace is not available on this architecture")]
    Unsupported,
}

/// The cause and fix when the kernel refuses ptrace, in words: Yama's setting, a missing
/// CAP_SYS_PTRACE where Yama asks for it, or a seccomp filter on the tracer (docker's
/// default profile refuses ptrace on older kernels), read from /proc for this process.
pub fn ptrace_refusal_hint() -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    refusal_hint(scope, &status)
}

/// [`ptrace_refusal_hint`] from Yama's `ptrace_scope` and this process's
/// /proc/self/status.
fn refusal_hint(scope: Option<u8>, status: &str) -> String {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    // CAP_SYS_PTRACE is capability 19.
    let cap_sys_ptrace = field("CapEff:")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .is_some_and(|caps| caps & (1 << 19) != 0);
    let seccomp_filter = field("Seccomp:") == Some("2");
    match scope {
        Some(3) => "Yama's ptrace_scope is 3 (ptrace disabled until reboot); nothing but a reboot with a lower kernel.yama.ptrace_scope allows tracing".into(),
        Some(2) if !cap_sys_ptrace => "Yama's ptrace_scope is 2 (only CAP_SYS_PTRACE may trace); run as root, or lower it: sysctl kernel.yama.ptrace_scope=1".into(),
        _ if seccomp_filter => "daemonlab runs under a seccomp filter (Seccomp: 2 in /proc/self/status) that refuses ptrace, as a container's default profile may; run it with a profile that allows ptrace (docker run --security-opt seccomp=unconfined, or --cap-add SYS_PTRACE on Docker 19.03 and later)".into(),
        _ => "in a container this needs CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE) and a seccomp profile that allows ptrace".into(),
    }
}

/// The program's path, found as a shell would (a name with a `/` as given, else PATH).
pub fn resolve_program(program: &str) -> Result<PathBuf, TraceError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        if !path.exists() {
            return Err(TraceError::NotFound(
                program.into(),
                "not searched: it names a path".into(),
            ));
        }
        if !executable(&path) {
            return Err(TraceError::NotExecutable(program.into()));
        }
        return Ok(std::fs::canonicalize(&path).unwrap_or(path));
    }
    let search = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(TraceError::NotFound(program.into(), search))
}

/// A traced program: the tracer, its pty, and the reports coming from it.
pub struct Traced {
    commands: UnixStream,
    reports: mpsc::Receiver<TracerMessage>,
    terminal: Arc<Terminal>,
    guard: Arc<Guard>,
    pub pty_name: String,
    pub session_pid: i32,
    pub job: i32,
    pub seccomp: bool,
    pub note: Option<String>,
    pub path: PathBuf,
}

impl Traced {
    /// Start `options.program` as a traced job and wait until it runs.
    pub fn start(options: &TraceOptions) -> Result<Traced, TraceError> {
        if !filter::SUPPORTED {
            return Err(TraceError::Unsupported);
        }
        let path = resolve_program(&options.program)?;
        let pty = Pty::open().map_err(TraceError::Pty)?;
        let pty_name = pty.short_name();
        let (commands, tracer_commands) =
            UnixStream::pair().map_err(|source| spawn(options, source))?;
        let (reports, tracer_reports) =
            UnixStream::pair().map_err(|source| spawn(options, source))?;
        let slave = pty
            .slave
            .try_clone()
            .map_err(|source| spawn(options, source))?;
        let child = Command::new(&options.exe)
            .arg("__session")
            .arg("--pty")
            .arg(&pty.path)
            .arg("--trace")
            .arg(&path)
            .args((!options.filter).then_some("--no-filter"))
            .arg("--")
            .arg(&options.program)
            .args(&options.args)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(tracer_commands)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(tracer_reports)))
            .stderr(Stdio::from(slave))
            .spawn()
            .map_err(|source| spawn(options, source))?;
        let session_pid = child.id() as i32;
        let guard = Arc::new(Guard::default());
        guard
            .set_session(child)
            .map_err(|source| spawn(options, source))?;
        guard.add_channel(
            commands
                .try_clone()
                .map_err(|source| spawn(options, source))?,
        );
        drop(pty.slave);
        let terminal =
            Terminal::spawn_reader(pty.master).map_err(|source| spawn(options, source))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tracer reports".into())
            .spawn(move || {
                let mut input = BufReader::new(reports);
                while let Ok(Some(message)) = wire::receive::<TracerMessage>(&mut input) {
                    if tx.send(message).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| spawn(options, source))?;
        let first = rx.recv_timeout(Duration::from_secs(10));
        let (job, seccomp, note) = match first {
            Ok(TracerMessage::Started {
                job, seccomp, note, ..
            }) => (job, seccomp, note),
            other => {
                std::thread::sleep(Duration::from_millis(50));
                let said = terminal.lines_since(0).join(" / ");
                let what = match other {
                    Ok(TracerMessage::Failed { message }) => message,
                    Ok(m) => format!("unexpected report {m:?}"),
                    Err(_) => "no word from it".into(),
                };
                return Err(TraceError::NoStart(format!(
                    "{what}; its terminal said: {}",
                    if said.trim().is_empty() {
                        "nothing"
                    } else {
                        said.trim()
                    }
                )));
            }
        };
        if let Ok(fd) = crate::process::pidfd_open(job) {
            guard.add_process(job, fd);
        }
        Ok(Traced {
            commands,
            reports: rx,
            terminal,
            guard,
            pty_name,
            session_pid,
            job,
            seccomp,
            note,
            path,
        })
    }

    /// The next report, waiting at most `timeout`. `Err(Disconnected)` once the tracer
    /// has gone.
    pub fn next(&self, timeout: Duration) -> Result<TracerMessage, mpsc::RecvTimeoutError> {
        self.reports.recv_timeout(timeout)
    }

    /// Let the held process `pid` go on.
    pub fn resume(&self, pid: i32) {
        let _ = wire::send(&self.commands, &TracerCommand::Resume { pid });
    }

    /// Leave the program running under a quiet tracer; see [`TracerCommand::Keep`].
    pub fn keep(&self) {
        let _ = wire::send(&self.commands, &TracerCommand::Keep);
    }

    /// What the program wrote to its terminal, from line `from` on.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }

    /// What ends the tracer (and with it every tracee), for a panic hook to hold.
    pub fn guard(&self) -> Arc<Guard> {
        Arc::clone(&self.guard)
    }

    /// End the tracer now: with it, every tracee (PTRACE_O_EXITKILL).
    pub fn shutdown(&self) {
        self.guard.shutdown();
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.commands.shutdown(std::net::Shutdown::Both);
        self.guard.shutdown();
    }
}

fn spawn(options: &TraceOptions, source: std::io::Error) -> TraceError {
    TraceError::Spawn {
        exe: options.exe.clone(),
        source,
    }
}

/// The process a report holds stopped until `resume`, if any.
pub fn held_pid(message: &TracerMessage) -> Option<i32> {
    match message {
        TracerMessage::Call(call) => call.held.then_some(call.pid),
        TracerMessage::Exiting { pid, .. } => Some(*pid),
        TracerMessage::Forked { pid, thread, .. } => (!thread).then_some(*pid),
        _ => None,
    }
}

/// How a trace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every traced process exited.
    AllExited,
    /// The original process exited and the rest stayed quiet for the settle time.
    Settled,
    /// `--timeout` passed.
    TimedOut,
    /// The tracer went away.
    TracerGone,
}

impl Ending {
    pub fn words(self, settle: Duration, timeout: Duration) -> String {
        match self {
            Ending::AllExited => "every traced process has exited".into(),
            Ending::Settled => format!(
                "the original process exited and the rest made no rule call for {} ms",
                settle.as_millis()
            ),
            Ending::TimedOut => format!("the timeout of {} s passed", timeout.as_secs()),
            Ending::TracerGone => "the tracer ended".into(),
        }
    }
}

/// Drive a trace to its end, handing every report to `on_report` (which feeds the
/// tracker and prints what it has ready) while the program is held, and resuming it
/// afterwards; `None` means only "print what is ready" (a held fork was settled).
pub fn follow(
    traced: &Traced,
    options: &TraceOptions,
    mut on_report: impl FnMut(Option<&TracerMessage>, &mut rules::Tracker),
    tracker: &mut rules::Tracker,
) -> Ending {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut quiet_since = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ending::TimedOut;
        }
        let original_gone = tracker.original_exited();
        if original_gone && tracker.alive_count() == 0 {
            return Ending::AllExited;
        }
        if tracker.waiting() {
            tracker.tick();
            on_report(None, tracker);
        }
        let mut wait = deadline - now;
        if tracker.waiting() {
            wait = wait.min(Duration::from_millis(50));
        }
        if original_gone {
            let settled_at = quiet_since + options.settle;
            if now >= settled_at {
                return Ending::Settled;
            }
            wait = wait.min(settled_at - now);
        }
        match traced.next(wait) {
            Ok(message) => {
                let held = held_pid(&message);
                let rules_before = tracker.rule_count();
                on_report(Some(&message), tracker);
                // Any watched call is rule-relevant (a close loop's calls are not rules
                // one by one, but the loop is), as are forks and execs.
                if tracker.rule_count() != rules_before
                    || matches!(
                        message,
                        TracerMessage::Call(_)
                            | TracerMessage::Forked { .. }
                            | TracerMessage::Exec { .. }
                            | TracerMessage::Busy { .. }
                    )
                {
                    quiet_since = Instant::now();
                }
                if let Some(pid) = held {
                    traced.resume(pid);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ending::TracerGone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::refusal_hint;

    const CAPS_ROOT: &str = "CapEff:\t000001ffffffffff\nSeccomp:\t0\n";
    const CAPS_NONE: &str = "CapEff:\t0000000000000000\nSeccomp:\t0\n";
    const FILTERED: &str = "CapEff:\t000001ffffffffff\nSeccomp:\t2\n";

    #[test]
    fn a_ptrace_refusal_names_its_cause_and_the_fix() {
        assert!(refusal_hint(Some(3), CAPS_ROOT).contains("reboot"));
        assert!(refusal_hint(Some(2), CAPS_NONE).contains("ptrace_scope=1"));
        // With CAP_SYS_PTRACE, Yama 2 is not the cause: look further.
        assert!(!refusal_hint(Some(2), CAPS_ROOT).contains("ptrace_scope is 2"));
        assert!(refusal_hint(Some(1), FILTERED).contains("seccomp filter"));
        assert!(refusal_hint(None, FILTERED).contains("seccomp=unconfined"));
        assert!(refusal_hint(None, CAPS_ROOT).contains("CAP_SYS_PTRACE"));
    }
}
