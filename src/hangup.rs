//! Noticing that the user's own terminal has gone away (the window closed, `tmux
//! kill-server`, the pty master dropped), whether or not a SIGHUP comes with it: a parent
//! that ignores SIGHUP keeps it from us, and then only the tty itself can tell.
//!
//! A hung-up tty reads as EOF or EIO for ever, which would make a reader spin, and
//! writing to it fails with EIO, which makes `eprintln!` panic (and a panic inside the
//! panic hook aborts). So once the terminal is gone, [`detach`] puts harmless files in
//! its place: fd 0 becomes a pipe that never has data (a reader blocked on it sleeps) and
//! fds 1 and 2 become /dev/null (every later write, a restore, a panic message, succeeds
//! and goes nowhere). The explorer is the only user; its core stays free of the UI crates.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

static GONE: AtomicBool = AtomicBool::new(false);
static DETACH: Once = Once::new();

/// Call `on_hangup` (once, on a thread of its own) when standard input, the terminal,
/// hangs up. Costs nothing while it does not: the thread sleeps in poll(2) asking for no
/// event at all, which still wakes on POLLHUP and POLLERR.
pub fn watch(on_hangup: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name("tty-hangup".into())
        .spawn(move || {
            loop {
                let stdin = io::stdin();
                let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::empty())];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) if hung_up(&fds[0]) => break,
                    Ok(_) | Err(Errno::EINTR) => continue,
                    // poll itself failing leaves nothing to watch with.
                    Err(_) => return,
                }
            }
            detach();
            on_hangup();
        })?;
    Ok(())
}

fn hung_up(fd: &PollFd) -> bool {
    fd.revents().is_some_and(|r| {
        r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
    })
}

/// Whether the terminal on standard input has hung up (asked now, without waiting);
/// if so, it is also [`detach`]ed, so the caller may write freely.
pub fn terminal_gone() -> bool {
    if GONE.load(Ordering::SeqCst) {
        return true;
    }
    let stdin = io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::empty())];
    let gone = poll(&mut fds, PollTimeout::ZERO).is_ok() && hung_up(&fds[0]);
    if gone {
        detach();
    }
    gone
}

/// Put a pipe that never has data on fd 0 and /dev/null on fds 1 and 2, once. Only for a
/// terminal that is gone: nothing written afterwards can be seen.
pub fn detach() {
    DETACH.call_once(|| {
        GONE.store(true, Ordering::SeqCst);
        if let Ok((never, writer)) = nix::unistd::pipe() {
            let _ = nix::unistd::dup2_stdin(&never);
            // The write end stays open for the life of the process: a read on fd 0 then
            // blocks instead of returning EOF.
            std::mem::forget::<OwnedFd>(writer);
        }
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    });
}
