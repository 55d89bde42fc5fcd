//! The control channel between the lab and its subject: small serde enums, one JSON
//! object per line, over a Unix stream socketpair. The subject's end survives the
//! "close every descriptor" step on purpose: it is the lab's own channel, not part of
//! the daemon (daemon(7)'s notification pipe is created only after that step).

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

use super::step::StepId;
use crate::probe::Pid;
use crate::syslog::client::ClientStats;
use crate::syslog::{Facility, Severity};

/// Lowest descriptor number the control channel is moved to in the subject, so that
/// closing and reopening 0, 1 and 2 never touches it.
pub const CONTROL_FD_MIN: i32 = 100;

/// Lab -> subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Request {
    /// Carry out one step, whatever the current state (free order is allowed).
    Step { step: StepId },
    /// `syslog(severity, message)`; an implicit `openlog` first if there was none, as in libc.
    Log {
        severity: Severity,
        message: String,
        /// errno to set just before the call, so `%m` shows a chosen, known error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errno: Option<i32>,
    },
    /// `setlogmask(mask)`.
    SetLogMask { mask: u8 },
    /// `closelog(); openlog(ident, option, facility)`, to try the options one by one.
    Openlog { option: u32, facility: Facility },
    /// The book's `already_running()` on `path`: become a single-instance daemon.
    Lock {
        path: std::path::PathBuf,
        kind: crate::locks::LockKind,
    },
    /// `open(path, O_RDWR)` *without* O_NOCTTY: on a terminal, a session leader with no
    /// controlling terminal acquires it (the reason for the second fork).
    OpenTty { path: std::path::PathBuf },
    /// `open(path, O_RDWR | O_CREAT [| O_CLOEXEC], mode)`: a file the subject holds open;
    /// the reply's `made` is the descriptor the kernel chose (the lowest free one).
    Open {
        path: std::path::PathBuf,
        mode: u32,
        cloexec: bool,
    },
    /// `mkdir(path, mode)`: the mode is filtered through the umask, as any creation is.
    Mkdir { path: std::path::PathBuf, mode: u32 },
    /// A stray `printf` to stdout, whatever descriptor 1 is now.
    Print { text: String },
    /// `chdir(path)`: where the job was started from, before the daemon steps.
    Chdir { path: std::path::PathBuf },
    /// Set or clear FD_CLOEXEC on one of the subject's descriptors.
    SetCloexec { fd: i32, on: bool },
    /// fork and exec `argv` as a helper; `made` is the helper's PID. It inherits every
    /// descriptor without FD_CLOEXEC.
    SpawnHelper { argv: Vec<String> },
    /// fork a child that stays in the subject's process group, catches SIGHUP and SIGCONT
    /// (appending their names to `log`), and stops itself; `made` is its PID.
    SpawnStoppedMember { log: std::path::PathBuf },
    /// Become a daemon that reads `config` now, re-reads it on SIGHUP and logs and exits
    /// on SIGTERM (APUE 13.6). With a thread the subject stops being single-threaded, so
    /// it refuses to fork afterwards.
    ServeConfig {
        config: std::path::PathBuf,
        style: SignalStyle,
    },
    /// chroot(2) into `path`, then chdir("/") inside it (APUE 13's exercise on chroot).
    Chroot { path: std::path::PathBuf },
    /// Call getlogin(3) and say what it answered.
    Getlogin,
    /// Try a read from 0 and a write to 1 and say what came back: after a hang-up they
    /// show descriptors on a dead terminal (EOF, EIO).
    TryStdio,
    /// Leave now.
    Exit,
}

/// How a daemon waits for SIGHUP and SIGTERM (APUE figures 13.7 and 13.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalStyle {
    /// Block both in every thread and take them with sigwait(3) in a dedicated thread.
    SigwaitThread,
    /// sigaction handlers, each blocking the other while it runs.
    Handlers,
}

/// The subject's own view of its ids: a cross-check on /proc, never the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfIds {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
}

/// Subject -> lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Reply {
    /// Sent once the subject runs, before any step.
    Hello { ids: SelfIds },
    /// Sent by the parent of a fork just before it exits; the child carries on.
    Forked {
        step: StepId,
        parent: Pid,
        child: Pid,
    },
    /// The step succeeded; `detail` says what the call returned.
    Done {
        step: StepId,
        ids: SelfIds,
        detail: String,
    },
    /// The step failed. `errno` is set when a system call failed.
    Failed {
        step: StepId,
        ids: SelfIds,
        errno: Option<i32>,
        message: String,
    },
    /// A request that is not a step (Log, SetLogMask, Openlog) was carried out.
    Did {
        ids: SelfIds,
        detail: String,
        syslog: Option<SyslogState>,
        /// A descriptor or PID the request created, when it created one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made: Option<i32>,
    },
    /// A request that is not a step failed.
    Refused {
        ids: SelfIds,
        errno: Option<i32>,
        message: String,
    },
}

/// The subject's syslog(3) state, reported after every syslog request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogState {
    /// `LOG_PID|LOG_CONS`, as written in C.
    pub options: String,
    pub mask: u8,
    /// The client's socket while connected (LOG_NDELAY or after the first message).
    pub socket_fd: Option<i32>,
    /// `None` in system mode: libc's syslog(3) does not say what became of a message.
    pub stats: Option<ClientStats>,
}

/// Write one message as a single JSON line. One `write` call per message keeps lines
/// whole even when a forked parent and child share the socket.
pub fn send<T: Serialize>(mut out: impl Write, message: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)
}

/// Read one message; `Ok(None)` on end of file.
pub fn receive<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> io::Result<Option<T>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(line.trim_end())
        .map(Some)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad control message {line:?}: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_line_each() {
        let ids = SelfIds {
            pid: 5,
            ppid: 1,
            pgid: 5,
            sid: 5,
        };
        let mut buf = Vec::new();
        send(
            &mut buf,
            &Reply::Forked {
                step: StepId::Fork,
                parent: 5,
                child: 6,
            },
        )
        .unwrap();
        send(
            &mut buf,
            &Reply::Failed {
                step: StepId::Setsid,
                ids,
                errno: Some(1),
                message: "EPERM".into(),
            },
        )
        .unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"type":"Forked","step":"fork","parent":5,"child":6}"#));
        let mut input = &buf[..];
        let first: Reply = receive(&mut input).unwrap().unwrap();
        assert_eq!(
            first,
            Reply::Forked {
                step: StepId::Fork,
                parent: 5,
                child: 6
            }
        );
        let second: Reply = receive(&mut input).unwrap().unwrap();
        assert!(matches!(second, Reply::Failed { errno: Some(1), .. }));
        assert_eq!(receive::<Reply>(&mut input).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let mut input = &b"not json\n"[..];
        let err = receive::<Request>(&mut input).unwrap_err();
        assert!(err.to_string().contains("not json"));
    }
}
