//! Ending what daemonlab started, and only that: the one low module that `lab`, `locks`
//! and `trace` all use. Every process is tracked by a pidfd opened while we knew it to be
//! our own, so a signal can never reach a recycled PID.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::probe::Pid;

/// Open a pidfd for `pid` (Linux 5.3+).
pub fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: plain system call; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor (with close-on-exec set).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// True once the process behind `pidfd` has exited (the pidfd polls readable).
pub fn has_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(pidfd),
        PollFlags::POLLIN,
    )];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1..))
}

/// Collect the exit status if the process is our child and has exited; ECHILD otherwise.
fn reap(pidfd: &OwnedFd) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let _ = waitid(
        Id::PIDFd(std::os::fd::AsFd::as_fd(pidfd)),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
    );
}

/// Send `signal` through a pidfd: it reaches exactly the process the pidfd was opened
/// for, never a recycled PID. The one place the lab calls pidfd_send_signal.
pub fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal on a pidfd we own; no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[derive(Default)]
struct Tracked {
    /// Control channel and lifeline: shutting them down is the polite request to go.
    channels: Vec<UnixStream>,
    processes: Vec<(Pid, OwnedFd)>,
    session: Option<Child>,
    /// Helpers with no channel to close (journalctl): ended at once, then reaped.
    helpers: Vec<Child>,
    done: bool,
}

/// Shared by the lab and anything that may need to end it early (a signal thread).
#[derive(Default)]
pub struct Guard {
    tracked: Mutex<Tracked>,
}

/// How long processes get to leave on their own after their channel closes.
const GRACE: Duration = Duration::from_millis(500);

impl Guard {
    /// Remember a channel whose end-of-file tells a lab process to leave.
    pub fn add_channel(&self, channel: UnixStream) {
        self.lock().channels.push(channel);
    }

    /// Track a process the lab started (directly or through its subject).
    pub fn add_process(&self, pid: Pid, pidfd: OwnedFd) {
        self.lock().processes.push((pid, pidfd));
    }

    /// Track the session stand-in, the lab's only direct child, so it is reaped too.
    pub fn set_session(&self, child: Child) -> std::io::Result<()> {
        let pidfd = pidfd_open(child.id() as Pid)?;
        let mut tracked = self.lock();
        tracked.processes.push((child.id() as Pid, pidfd));
        tracked.session = Some(child);
        Ok(())
    }

    /// Reap every tracked process that has exited and is our child (the lab as a
    /// subreaper adopts the subject's orphans); others are left to their own parent.
    pub fn reap_exited(&self) {
        for (_, pidfd) in &self.lock().processes {
            reap(pidfd);
        }
    }

    /// Track a helper the lab started that only ends when told (e.g. `journalctl -f`).
    pub fn add_helper(&self, child: Child) {
        self.lock().helpers.push(child);
    }

    /// Send `signal` to the tracked process `pid` through the pidfd opened while it was
    /// surely ours; an untracked PID is refused, never signalled by number.
    pub fn signal(&self, pid: Pid, signal: i32) -> std::io::Result<()> {
        let tracked = self.lock();
        let Some((_, pidfd)) = tracked.processes.iter().find(|(p, _)| *p == pid) else {
            return Err(std::io::Error::other(format!(
                "pid {pid} is not a process this lab started"
            )));
        };
        pidfd_signal(pidfd, signal)
    }

    /// PIDs of tracked processes that are still alive.
    pub fn alive(&self) -> Vec<Pid> {
        self.lock()
            .processes
            .iter()
            .filter(|(_, fd)| !has_exited(fd))
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Ask politely (close the channels), wait a moment, then SIGKILL whatever is left
    /// and reap the stand-in. Safe to call more than once and from any thread.
    pub fn shutdown(&self) {
        let mut tracked = self.lock();
        if tracked.done {
            return;
        }
        for mut helper in tracked.helpers.drain(..) {
            let _ = helper.kill();
            let _ = helper.wait();
        }
        for channel in tracked.channels.drain(..) {
            let _ = channel.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + GRACE;
        while tracked.processes.iter().any(|(_, fd)| !has_exited(fd)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        for (pid, pidfd) in &tracked.processes {
            if !has_exited(pidfd) {
                tracing::warn!(pid, "still running after its channel closed: SIGKILL");
                let _ = pidfd_signal(pidfd, libc::SIGKILL);
            }
        }
        if let Some(mut session) = tracked.session.take() {
            let _ = session.wait();
        }
        let deadline = Instant::now() + GRACE;
        while tracked.processes.iter().any(|(_, fd)| !has_exited(fd)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for (_, pidfd) in &tracked.processes {
            reap(pidfd);
        }
        tracked.done = true;
        tracing::info!(processes = tracked.processes.len(), "lab ended");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner())
    }
}
