//! `__session`: the shell stand-in. It does what a job-control shell does when you type
//! `./a.out` at its prompt — and nothing else — so the subject's step 0 is a real job:
//! its own process group, the foreground group of a real terminal, in the shell's session.
//!
//! Descriptors on entry (set by the lab with `Command`, no pre_exec needed):
//! 0 = the subject's end of the control channel, 1 = this process's lifeline to the lab,
//! 2 = the pty slave (so an early error shows in the lab's terminal view).

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{self, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::protocol::{self, CONTROL_FD_MIN};

/// What the stand-in tells the lab on its lifeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SessionEvent {
    /// The subject is started, in its own group, in the foreground of `tty`.
    Started {
        session: i32,
        subject: i32,
        tty: String,
    },
    /// The stand-in reaped a child, as a shell does when a job ends; when it was the
    /// job, the stand-in takes the terminal back (its own group is foreground again).
    Reaped {
        pid: i32,
        status: String,
        took_terminal_back: bool,
    },
    /// The stand-in was hung up and is leaving. `signalled` is the job's process group
    /// when the job was still in its table (so it got SIGHUP and SIGCONT, as bash sends
    /// them); `None` when the job had already ended and been forgotten — then the stand-in
    /// signalled nothing, because that group number may belong to someone else by now.
    HungUp { signalled: Option<i32> },
}

/// Arguments of `daemonlab __session`.
#[derive(Debug, Clone)]
pub struct SessionArgs {
    /// The pty slave to make our controlling terminal.
    pub pty: PathBuf,
    /// The program to start as the job (this binary) and its arguments after `__subject`.
    pub subject_exe: PathBuf,
    pub subject_args: Vec<String>,
}

/// Entry point of `daemonlab __session`. Returns the exit status.
pub fn main(args: SessionArgs) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("daemonlab session stand-in: {message}");
            1
        }
    }
}

pub(crate) fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only used for 0, 1 and 2, which stay open for the life of this process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn run(args: SessionArgs) -> Result<(), String> {
    // The job must inherit the control channel (no close-on-exec) at a high number.
    let control = fcntl(borrow(0), FcntlArg::F_DUPFD(CONTROL_FD_MIN))
        .map_err(|e| format!("moving the control channel: {e}"))?;
    let lifeline = fcntl(borrow(1), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| format!("moving the lifeline: {e}"))?;
    // SAFETY: F_DUPFD just returned these fresh descriptors; we are their only owner.
    let (control, lifeline) = unsafe {
        (
            OwnedFd::from_raw_fd(control),
            UnixStream::from_raw_fd(lifeline),
        )
    };

    become_shell(&args.pty)?;

    let exe =
        CString::new(args.subject_exe.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let mut argv = vec![exe.clone(), CString::new("__subject").unwrap()];
    argv.push(CString::new("--control-fd").unwrap());
    argv.push(CString::new(control.as_raw_fd().to_string()).unwrap());
    for arg in &args.subject_args {
        argv.push(CString::new(arg.as_str()).map_err(|e| e.to_string())?);
    }
    let (go_read, go_write) = unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;

    // SAFETY: this process has started no thread yet. Between fork and exec the child
    // only makes async-signal-safe calls (setpgid, read, sigaction, execv, _exit).
    let subject = match unsafe { unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let _ = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            // Wait until the parent has made our group the foreground job.
            let mut byte = [0u8];
            let _ = unistd::read(&go_read, &mut byte);
            for signal in [Signal::SIGTTOU, Signal::SIGTTIN, Signal::SIGTSTP] {
                set(signal, SigHandler::SigDfl);
            }
            let _ = unistd::execv(&exe, &argv);
            // SAFETY: _exit is async-signal-safe; the exec failed and this copy must go.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    // Both sides call setpgid, as shells do, so whichever runs first wins the race.
    let _ = unistd::setpgid(subject, subject);
    unistd::tcsetpgrp(borrow(0), subject).map_err(|e| format!("tcsetpgrp: {e}"))?;
    unistd::write(&go_write, b"g").map_err(|e| format!("waking the job: {e}"))?;
    drop((go_read, go_write, control));

    let mut events = lifeline.try_clone().map_err(|e| e.to_string())?;
    let started = SessionEvent::Started {
        session: unistd::getpid().as_raw(),
        subject: subject.as_raw(),
        tty: args.pty.display().to_string(),
    };
    protocol::send(&mut events, &started).map_err(|e| format!("lifeline: {e}"))?;

    // A hangup reaches us as SIGHUP; the handler only writes to a self-pipe, and the main
    // loop below does what bash does then.
    let (hup_read, hup_write) =
        unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| format!("pipe: {e}"))?;
    HUP_PIPE_FD.store(
        std::os::fd::IntoRawFd::into_raw_fd(hup_write),
        std::sync::atomic::Ordering::Relaxed,
    );
    set(Signal::SIGHUP, SigHandler::Handler(note_sighup));

    // The job table: the job stays in it until the shell reaps the process it started.
    *JOB.lock().unwrap_or_else(|e| e.into_inner()) = Some(subject);
    let mut hangup_events = events.try_clone().map_err(|e| e.to_string())?;
    // No more forks from here on, so a second thread is fine: it reaps like a shell.
    std::thread::spawn(move || reap(subject, events));

    // The lifeline closes when the lab ends, however it ends: then we go too.
    loop {
        let mut fds = [
            PollFd::new(lifeline.as_fd(), PollFlags::POLLIN),
            PollFd::new(hup_read.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        if fds[1].any().unwrap_or(false) {
            hang_up(&mut hangup_events, EXIT_SIGHUP);
        }
        if fds[0].any().unwrap_or(false) {
            // The lab sends nothing on the lifeline: readable means it closed, however
            // the lab ended. Then we go too.
            let mut byte = [0u8; 64];
            match (&lifeline).read(&mut byte) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(()),
            }
        }
    }
}

/// What a job-control shell is before it starts a job: the leader of a new session with
/// `pty` as its controlling terminal on 0, 1 and 2, with default signal dispositions
/// except the job-control stops it ignores. Shared by the lab's stand-in and the tracer.
pub(crate) fn become_shell(pty: &std::path::Path) -> Result<(), String> {
    unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let tty = nix::fcntl::open(
        pty,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", pty.display()))?;
    // SAFETY: TIOCSCTTY takes an int argument; we are a session leader without a terminal.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(format!(
            "TIOCSCTTY on {}: {}",
            pty.display(),
            std::io::Error::last_os_error()
        ));
    }
    unistd::dup2_stdin(&tty)
        .and_then(|()| unistd::dup2_stdout(&tty))
        .and_then(|()| unistd::dup2_stderr(&tty))
        .map_err(|e| format!("dup2 of the terminal: {e}"))?;
    drop(tty);

    // Start the job with default dispositions whatever we inherited, then ignore the
    // job-control stops as an interactive shell does.
    set_all(SigHandler::SigDfl);
    for signal in [Signal::SIGTTOU, Signal::SIGTTIN, Signal::SIGTSTP] {
        set(signal, SigHandler::SigIgn);
    }

    Ok(())
}

/// Stand-in exit status after a hangup that arrived as SIGHUP (128 + 1, as bash).
pub const EXIT_SIGHUP: i32 = 129;

static HUP_PIPE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn note_sighup(_: libc::c_int) {
    let fd = HUP_PIPE_FD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) of one byte to our non-blocking pipe; async-signal-safe.
    unsafe { libc::write(fd, b"h".as_ptr().cast(), 1) };
}

/// The job the stand-in still tracks: the process group it started, while the process it
/// forked is unreaped. An unreaped child (even a zombie) pins its PID and so its group
/// number, so signalling `-job` while holding this lock can only reach that job.
static JOB: std::sync::Mutex<Option<Pid>> = std::sync::Mutex::new(None);

/// What bash does on SIGHUP: SIGHUP, then SIGCONT (a stopped job must wake to die), to
/// every job still in its table; then leave. A job the shell already reaped is not in the
/// table and gets nothing from the shell — whatever still lives in that group survives
/// unless the kernel itself signals it. A process that left with setsid() is never reached.
fn hang_up(events: &mut UnixStream, status: i32) -> ! {
    let signalled = {
        let job = JOB.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = *job {
            let group = Pid::from_raw(-job.as_raw());
            let _ = nix::sys::signal::kill(group, Signal::SIGHUP);
            let _ = nix::sys::signal::kill(group, Signal::SIGCONT);
        }
        job.map(Pid::as_raw)
    };
    let _ = protocol::send(events, &SessionEvent::HungUp { signalled });
    // Give the reaper thread a moment to report the job's end on the lifeline.
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::process::exit(status)
}

/// Reap children as a shell does. Each exit is first seen with WNOWAIT, so the child stays
/// a zombie — its PID and group still pinned — until the job table is updated under the
/// lock `hang_up` signals under.
fn reap(job: Pid, mut events: UnixStream) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    loop {
        let status = match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(status) => status,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        let (pid, text) = match status {
            WaitStatus::Exited(pid, code) => (pid, format!("exited with status {code}")),
            WaitStatus::Signaled(pid, signal, _) => (pid, format!("killed by {signal}")),
            _ => continue,
        };
        let took_terminal_back = {
            let mut table = JOB.lock().unwrap_or_else(|e| e.into_inner());
            if *table == Some(pid) {
                *table = None;
            }
            let _ = waitpid(pid, None);
            pid == job && unistd::tcsetpgrp(borrow(0), unistd::getpgrp()).is_ok()
        };
        let event = SessionEvent::Reaped {
            pid: pid.as_raw(),
            status: text,
            took_terminal_back,
        };
        if protocol::send(&mut events, &event).is_err() {
            return;
        }
    }
    let _ = events.flush();
}

pub(crate) fn set(signal: Signal, handler: SigHandler) {
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL, SIG_IGN, or note_sighup, which only calls write(2).
    let _ = unsafe { sigaction(signal, &action) };
}

fn set_all(handler: SigHandler) {
    for signal in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        set(signal, handler);
    }
}
