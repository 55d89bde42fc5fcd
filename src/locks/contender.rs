//! One contender: a process that runs `already_running()` on the lab's pid file and tells
//! the lab what became of it, as JSON lines on stdout and as a syslog message.
//!
//! Its stdin is its lifeline: end of file there ends it at once, even while it sleeps in
//! F_SETLKW, so a lab killed with SIGKILL leaves no contender behind.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::engine::{Outcome, already_running_notify};
use super::{LockKind, LockMode};
use crate::syslog::client::Client;
use crate::syslog::{Facility, LOG_PID, Severity};

/// Set (to any value) in a contender's environment to make it say `ready` and wait for one
/// byte on stdin before it tries the lock, so a batch of contenders can be released at the
/// same instant: a fair race instead of "whoever exec'd first".
pub const GATE_ENV: &str = "DAEMONLAB_CONTENDER_GATE";

/// The arguments of the hidden `__contender` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContenderArgs {
    /// The pid file every contender fights over.
    pub pidfile: PathBuf,
    /// Which lock family to use.
    pub kind: LockKind,
    /// Give up at once, or queue in the kernel.
    pub mode: LockMode,
    /// The lab's syslog socket, to report through syslog(3) as a daemon would.
    pub syslog_socket: Option<PathBuf>,
    /// Say `ready` and wait for one byte on stdin before trying the lock, so that a batch
    /// can be released at the same instant. An exec'd `__contender` takes it from
    /// [`GATE_ENV`]; a forked one from the lab's request.
    pub gated: bool,
}

/// What a contender says on stdout, one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ContenderEvent {
    /// Started and waiting for the gate (only with [`GATE_ENV`]).
    Ready,
    /// The lock is taken; about to block in the kernel until it is granted.
    Waiting {
        #[serde(default)]
        holder: Option<i32>,
    },
    /// The lock is ours; the pid file holds our PID.
    Holding,
    /// Another instance holds the lock (try mode); we exit 1.
    Refused {
        #[serde(default)]
        holder: Option<i32>,
    },
    /// Something other than contention went wrong; we exit 2.
    Error { message: String },
}

/// The body of `daemonlab __contender`. Returns the exit status for a refused (1) or failed
/// (2) contender; a holder never returns: it ends when stdin closes or a signal kills it.
pub fn contender_main(args: ContenderArgs) -> i32 {
    let gated = args.gated;
    let go = watch_lifeline();
    let mut log = args.syslog_socket.clone().map(|socket| {
        // No LOG_CONS: a contender has no console of its own to fall back to.
        Client::openlog("contender", LOG_PID, Facility::Daemon, socket, None)
    });
    let mut report = |severity: Severity, text: String| {
        if let Some(log) = log.as_mut() {
            // syslog() expands %m and %%; a path may contain a percent sign.
            let _ = log.syslog(severity, &text.replace('%', "%%"));
        }
    };
    if gated {
        emit(&ContenderEvent::Ready);
        // The lifeline thread exits the process on EOF, so this only returns on "go".
        let _ = go.recv();
    }
    let pid = std::process::id();
    let path = args.pidfile.display().to_string();
    let kind = args.kind;
    let mut on_wait = |holder: Option<i32>| {
        emit(&ContenderEvent::Waiting { holder });
        let held_by = holder.map_or("another process".to_string(), |h| format!("pid {h}"));
        report(
            Severity::Info,
            format!(
                "pid {pid}: waiting for the lock on {path} held by {held_by} ({kind}, wait mode)"
            ),
        );
    };
    let outcome = already_running_notify(&args.pidfile, kind, args.mode, &mut on_wait);
    match outcome {
        Ok(Outcome::Acquired(held)) => {
            emit(&ContenderEvent::Holding);
            report(
                Severity::Notice,
                format!("pid {pid}: holding the lock on {path} ({kind})"),
            );
            // Holding the lock is all we are for; the lifeline thread ends the process, and
            // the kernel releases the lock as it closes `held`'s descriptor.
            let _held = held;
            loop {
                std::thread::park();
            }
        }
        Ok(Outcome::AlreadyRunning { holder }) => {
            emit(&ContenderEvent::Refused { holder });
            let who = holder.map_or("a process the kernel would not name".to_string(), |h| {
                format!("pid {h}")
            });
            report(
                Severity::Warning,
                format!("refused: already running as {who} ({path}, {kind})"),
            );
            1
        }
        Err(error) => {
            let message = error.to_string();
            emit(&ContenderEvent::Error {
                message: message.clone(),
            });
            report(Severity::Err, format!("pid {pid}: {message}"));
            2
        }
    }
}

/// A thread that blocks reading stdin: each chunk read opens the gate; end of file (or a
/// read error) exits the whole process at once, wherever the main thread is.
fn watch_lifeline() -> mpsc::Receiver<()> {
    let (go, gate) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0u8; 64];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => std::process::exit(0),
                Ok(_) => {
                    let _ = go.send(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => std::process::exit(0),
            }
        }
    });
    gate
}

/// One event line, flushed at once: the lab reads them as they come. A closed stdout means
/// the lab is gone, so we go too.
fn emit(event: &ContenderEvent) {
    let line = serde_json::to_string(event).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_the_lab_reads_them() {
        let cases = [
            (ContenderEvent::Holding, r#"{"event":"holding"}"#),
            (
                ContenderEvent::Refused { holder: Some(123) },
                r#"{"event":"refused","holder":123}"#,
            ),
            (
                ContenderEvent::Waiting { holder: None },
                r#"{"event":"waiting","holder":null}"#,
            ),
            (
                ContenderEvent::Error {
                    message: "x".into(),
                },
                r#"{"event":"error","message":"x"}"#,
            ),
            (ContenderEvent::Ready, r#"{"event":"ready"}"#),
        ];
        for (event, json) in cases {
            assert_eq!(serde_json::to_string(&event).unwrap(), json);
            assert_eq!(serde_json::from_str::<ContenderEvent>(json).unwrap(), event);
        }
        assert_eq!(
            serde_json::from_str::<ContenderEvent>(r#"{"event":"waiting"}"#).unwrap(),
            ContenderEvent::Waiting { holder: None }
        );
    }
}
