//! `daemonlab __service-exec -- PROGRAM [ARGS…]`: the service manager's part, done in the
//! process that becomes the service — a single-threaded helper of our own (the manager
//! never forks), which then execs PROGRAM and keeps its PID.
//!
//! Standard input is the manager's setup socket. Over it come the listening sockets
//! (SCM_RIGHTS) and the word to go; back go "ready" (everything done, about to exec: the
//! manager reads /proc now, while this process waits), and "failed …" if the exec fails.
//! The socket is close-on-exec, so a successful exec shows as end of file.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::{Mode, umask};

/// Where the setup socket is moved, far from 0, 1, 2 and the listeners' 3, 4, ….
const SETUP_FD: RawFd = 1000;

/// Most listening sockets one service gets.
pub const MAX_LISTENERS: usize = 64;

/// The manager's side: send the listeners, in order, with the setup message.
pub fn send_listeners(setup: &UnixStream, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let text = format!("listeners {}\n", raw.len());
    let iov = [IoSlice::new(text.as_bytes())];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(setup.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)
        .map_err(std::io::Error::from)?;
    Ok(())
}

/// Entry point; returns only on failure (the exit status).
pub fn main(command: &[String]) -> i32 {
    match prepare_and_exec(command) {
        Ok(never) => match never {},
        Err((mut setup, message)) => {
            if let Some(s) = setup.as_mut() {
                let _ = writeln!(s, "failed {message}");
            }
            eprintln!("daemonlab __service-exec: {message}");
            127
        }
    }
}

enum Never {}

type Failure = (Option<UnixStream>, String);

fn prepare_and_exec(command: &[String]) -> Result<Never, Failure> {
    let fail = |setup: &Option<UnixStream>, what: String| -> Failure {
        (setup.as_ref().and_then(|s| s.try_clone().ok()), what)
    };
    if command.is_empty() {
        return Err((None, "no program given".into()));
    }
    // SAFETY: fd 0 is the setup socket the manager gave us; nothing else owns it.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let setup_fd = fcntl(stdin, FcntlArg::F_DUPFD_CLOEXEC(SETUP_FD))
        .map_err(|e| (None, format!("cannot move the setup socket: {e}")))?;
    // SAFETY: a fresh descriptor from F_DUPFD_CLOEXEC.
    let setup = Some(unsafe { UnixStream::from_raw_fd(setup_fd) });
    let socket = setup.as_ref().expect("just made");

    // 1. The listeners, received as they were bound, placed at 3, 4, … without
    //    close-on-exec (sd_listen_fds(3): the first passed descriptor is 3).
    let mut buffer = [0u8; 64];
    let mut space = nix::cmsg_space!([RawFd; MAX_LISTENERS]);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| fail(&setup, format!("no setup from the manager: {e}")))?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg
        .cmsgs()
        .map_err(|e| fail(&setup, format!("setup: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: descriptors the kernel has just installed for us.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    // Move them out of the way first: one may already sit where another must go.
    let high: Vec<OwnedFd> = received
        .iter()
        .map(|fd| {
            fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(SETUP_FD + 1))
                // SAFETY: a fresh descriptor from F_DUPFD_CLOEXEC.
                .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&setup, format!("moving a listener: {e}")))?;
    drop(received);
    for (i, fd) in high.iter().enumerate() {
        // dup2 leaves the new descriptor without close-on-exec: it is passed.
        // SAFETY: plain dup2 onto a number we mean to replace.
        if unsafe { libc::dup2(fd.as_raw_fd(), 3 + i as RawFd) } < 0 {
            return Err(fail(
                &setup,
                format!("dup2 onto {}: {}", 3 + i, std::io::Error::last_os_error()),
            ));
        }
    }
    let listeners = high.len();
    drop(high);

    // 2. Standard input on /dev/null (stdout and stderr are the manager's log pipes).
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())
        .map_err(|e| fail(&setup, format!("open /dev/null: {e}")))?;
    // SAFETY: dup2 onto 0, which we mean to replace.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(fail(&setup, "dup2 /dev/null onto 0".into()));
    }
    drop(null);

    // 3. Every other descriptor this process inherited goes at the exec: marked
    //    close-on-exec from the last listener up (the setup socket included).
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let first = 3 + listeners as libc::c_uint;
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } < 0
    {
        // Before Linux 5.11: one by one.
        for fd in first as RawFd..SETUP_FD {
            // SAFETY: F_SETFD on a number that may not be open; errors are ignored.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }

    // 4. Default dispositions for every signal and an empty mask: whatever the manager's
    //    own parent ignored or blocked must not reach the service.
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL runs no code of ours.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    }
    // The real-time signals by number, glibc's own two (32, 33) included: its wrapper
    // refuses those, so the kernel is asked directly. A zeroed kernel sigaction is
    // SIG_DFL with no flags and an empty mask.
    for number in 32..=libc::SIGRTMAX() {
        let action = [0u64; 4];
        // SAFETY: rt_sigaction reads `action` (handler, flags, restorer, mask) and writes
        // nothing (old action NULL); sigsetsize is the kernel's 8 bytes.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                number,
                action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);

    // 5. umask 0022, cwd /, a session and process group of its own.
    umask(Mode::from_bits_truncate(0o022));
    std::env::set_current_dir("/").map_err(|e| fail(&setup, format!("chdir /: {e}")))?;
    nix::unistd::setsid().map_err(|e| fail(&setup, format!("setsid: {e}")))?;

    // 6. The variables that name this process: only now is its PID final.
    let pid = std::process::id().to_string();
    // SAFETY: single-threaded (a helper of our own), so nothing reads the environment
    // concurrently.
    unsafe {
        if listeners > 0 {
            std::env::set_var("LISTEN_PID", &pid);
        }
        if std::env::var_os("WATCHDOG_USEC").is_some() {
            std::env::set_var("WATCHDOG_PID", &pid);
        }
    }

    // 7. Tell the manager, wait for its word, exec.
    let mut tell = socket;
    tell.write_all(b"ready\n")
        .map_err(|e| fail(&setup, format!("telling the manager: {e}")))?;
    let mut go = [0u8; 1];
    match std::io::Read::read(&mut tell, &mut go) {
        Ok(1) => {}
        _ => {
            return Err(fail(
                &setup,
                "the manager went away before the start".into(),
            ));
        }
    }
    let argv: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| fail(&setup, "an argument holds a NUL byte".into()))?;
    let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    Err(fail(
        &setup,
        format!("{}: {} ({})", command[0], e.desc(), e),
    ))
}
