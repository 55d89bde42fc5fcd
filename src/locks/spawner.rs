//! The contender spawner: one single-threaded helper (`daemonlab __spawner`, the binary
//! re-executed once) that forks contenders on the lab's request. Exec of the whole binary,
//! its relocation and clap's set-up cost far more than the race itself; a fork of a small
//! process that is already running costs a fraction of it, and the multi-threaded lab
//! still never forks.
//!
//! The lab and the helper talk over a SOCK_SEQPACKET socketpair (the helper's stdin), one
//! JSON object per packet:
//!
//! - lab -> helper: `Spawn { id, .. count }` with `count` descriptors (SCM_RIGHTS), one
//!   end of a fresh socketpair per contender. Each contender gets its end as stdin, stdout
//!   and stderr: events go out on it, the gate byte comes in on it, and end-of-file on it
//!   is the contender's lifeline, exactly as with the pipes of an exec'd `__contender`.
//! - helper -> lab: `Hello` once; `Started { id, pids }` with one pidfd per contender,
//!   opened by the helper before it could possibly reap the child, so the PID is surely
//!   the contender's; `Exited { pid, status }` when the helper has reaped one.
//!
//! End-of-file on the helper's stdin (the lab dropped its manager, or died) makes it
//! SIGKILL what is left of its contenders (through its pidfds), reap them and exit; the
//! contenders see end-of-file on their own sockets at the same moment anyway.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::ForkResult;
use serde::{Deserialize, Serialize};

use super::contender::{ContenderArgs, contender_main};
use super::{LockKind, LockMode};
use crate::process::{pidfd_open, pidfd_signal};

/// Most descriptors in one packet (the kernel allows 253).
const MAX_FDS: usize = 64;
/// Room for one packet's JSON.
const PACKET: usize = 64 * 1024;
/// How long a helper gets to say hello before the lab gives up on it.
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// How long a spawn request may take.
const REPLY_WAIT: Duration = Duration::from_secs(10);
/// How long the helper's contenders get to leave on their own once the lab is gone.
const GRACE: Duration = Duration::from_millis(300);

/// What the lab asks the helper for.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Fork `count` contenders, one per descriptor sent with the packet; `id` comes back
    /// with the reply.
    Spawn {
        id: u64,
        pidfile: PathBuf,
        kind: LockKind,
        mode: LockMode,
        syslog_socket: Option<PathBuf>,
        gated: bool,
        count: usize,
    },
}

/// What the helper tells the lab.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// Running and single-threaded: ready to fork.
    Hello { pid: i32 },
    /// Forked these for request `id`, in the order of the descriptors (one pidfd each
    /// comes with the packet); `error` says why the rest could not be.
    Started {
        id: u64,
        pids: Vec<i32>,
        error: Option<String>,
    },
    /// Reaped, with the raw wait status.
    Exited { pid: i32, status: i32 },
}

/// One contender the helper forked, as the lab receives it.
pub(super) struct Forked {
    pub pid: i32,
    /// Opened by the helper while the process was surely its unreaped child.
    pub pidfd: OwnedFd,
    /// The lab's end of the contender's stdin/stdout/stderr.
    pub stream: UnixStream,
}

/// Exit statuses the helper reported, until each contender's reader takes its own. Each
/// reader that asks before its status came waits on a channel of its own: one report
/// wakes one reader, not all of them.
#[derive(Default)]
pub(super) struct Exits {
    book: Mutex<ExitBook>,
}

#[derive(Default)]
struct ExitBook {
    /// Statuses nobody has asked for yet.
    reaped: Vec<(i32, i32)>,
    /// Readers waiting for their contender's status.
    waiting: Vec<(i32, mpsc::Sender<i32>)>,
    /// The helper is gone: nothing more will be reported.
    closed: bool,
}

impl Exits {
    /// Wait up to `timeout` for `pid`'s raw wait status; `None` if the helper went away
    /// (or the time ran out) without reporting it.
    pub fn wait(&self, pid: i32, timeout: Duration) -> Option<i32> {
        let status = {
            let mut book = lock(&self.book);
            if let Some(at) = book.reaped.iter().position(|(p, _)| *p == pid) {
                return Some(book.reaped.swap_remove(at).1);
            }
            if book.closed {
                return None;
            }
            let (tell, status) = mpsc::channel();
            book.waiting.push((pid, tell));
            status
        };
        status.recv_timeout(timeout).ok()
    }

    fn record(&self, pid: i32, status: i32) {
        let mut book = lock(&self.book);
        match book.waiting.iter().position(|(p, _)| *p == pid) {
            Some(at) => {
                // A reader that gave up has dropped its end: nothing to do then.
                let _ = book.waiting.swap_remove(at).1.send(status);
            }
            None => book.reaped.push((pid, status)),
        }
    }

    fn close(&self) {
        let mut book = lock(&self.book);
        book.closed = true;
        // Dropping the senders ends every wait at once.
        book.waiting.clear();
    }
}

/// The lab's handle on a running helper. Dropping it ends the helper (end-of-file on its
/// stdin), waits for it and reaps it.
pub(super) struct Spawner {
    control: OwnedFd,
    /// Serialises requests: one at a time on the channel, one reply each; the number of
    /// the last request sent, so that a reply that came too late is told apart.
    requests: Mutex<(u64, mpsc::Receiver<Started>)>,
    exits: Arc<Exits>,
    helper: Option<Child>,
    reader: Option<JoinHandle<()>>,
}

/// A `Started` reply with its pidfds.
struct Started {
    id: u64,
    pids: Vec<i32>,
    pidfds: Vec<OwnedFd>,
    error: Option<String>,
}

impl Spawner {
    /// Start `exe __spawner` and wait for its hello. `Ok(None)` when the binary runs but
    /// does not speak the protocol (an older daemonlab, or not daemonlab at all): the
    /// caller then execs each contender itself. An error when it cannot be started.
    pub fn start(exe: &Path) -> io::Result<Option<Spawner>> {
        let (lab_end, helper_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let mut helper = Command::new(exe)
            .arg("__spawner")
            .stdin(Stdio::from(helper_end))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start contender {}: {} — check that the daemonlab binary exists",
                        exe.display(),
                        super::engine::describe(&e)
                    ),
                )
            })?;
        let hello = wait_readable(lab_end.as_fd(), HELLO_WAIT)
            .then(|| receive(lab_end.as_fd()).ok())
            .flatten();
        if !matches!(hello, Some((Reply::Hello { .. }, _))) {
            tracing::debug!(exe = %exe.display(), "no contender spawner: exec each contender");
            // Our own unreaped child: its PID cannot have been recycled.
            let _ = helper.kill();
            let _ = helper.wait();
            return Ok(None);
        }
        let (started_tx, started_rx) = mpsc::channel();
        let exits = Arc::new(Exits::default());
        let reader_exits = Arc::clone(&exits);
        let reader_end = lab_end.try_clone()?;
        let reader = std::thread::Builder::new()
            .name("contender-spawner".into())
            .spawn(move || read_replies(reader_end, started_tx, reader_exits));
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                let _ = helper.kill();
                let _ = helper.wait();
                return Err(e);
            }
        };
        Ok(Some(Spawner {
            control: lab_end,
            requests: Mutex::new((0, started_rx)),
            exits,
            helper: Some(helper),
            reader: Some(reader),
        }))
    }

    /// Where the contenders' exit statuses arrive.
    pub fn exits(&self) -> Arc<Exits> {
        Arc::clone(&self.exits)
    }

    /// Fork `count` contenders for `args` (its `gated` applies to all). Returns those
    /// started, in order; an error only if none could be.
    pub fn spawn(&self, args: &ContenderArgs, count: usize) -> io::Result<Vec<Forked>> {
        let mut requests = lock(&self.requests);
        let (last_id, replies) = &mut *requests;
        let mut forked = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let chunk = left.min(MAX_FDS);
            *last_id += 1;
            match self.spawn_chunk(*last_id, replies, args, chunk) {
                Ok(mut some) => {
                    let short = some.len() < chunk;
                    forked.append(&mut some);
                    if short {
                        break;
                    }
                }
                Err(e) if forked.is_empty() => return Err(e),
                Err(_) => break,
            }
            left -= chunk;
        }
        Ok(forked)
    }

    fn spawn_chunk(
        &self,
        id: u64,
        replies: &mpsc::Receiver<Started>,
        args: &ContenderArgs,
        count: usize,
    ) -> io::Result<Vec<Forked>> {
        let mut lab_ends = Vec::with_capacity(count);
        let mut their_ends = Vec::with_capacity(count);
        for _ in 0..count {
            // std makes both ends close-on-exec: nothing else this lab starts inherits them.
            let (ours, theirs) = UnixStream::pair()?;
            lab_ends.push(ours);
            their_ends.push(theirs);
        }
        let request = Request::Spawn {
            id,
            pidfile: args.pidfile.clone(),
            kind: args.kind,
            mode: args.mode,
            syslog_socket: args.syslog_socket.clone(),
            gated: args.gated,
            count,
        };
        let fds: Vec<RawFd> = their_ends.iter().map(|s| s.as_raw_fd()).collect();
        send(self.control.as_fd(), &request, &fds)?;
        // The helper holds its copies now (and closes them once forked).
        drop(their_ends);
        let deadline = Instant::now() + REPLY_WAIT;
        let started = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = replies.recv_timeout(left).map_err(|_| {
                io::Error::other("the contender spawner stopped answering — restart the race")
            })?;
            // A reply to an earlier request that timed out: its contenders have already
            // seen end-of-file on their sockets (dropped then) and are leaving.
            if reply.id == id {
                break reply;
            }
        };
        if started.pids.is_empty() {
            return Err(io::Error::other(format!(
                "the contender spawner could not fork: {}",
                started.error.as_deref().unwrap_or("no reason given")
            )));
        }
        if let Some(error) = &started.error {
            tracing::warn!(%error, started = started.pids.len(), count, "fewer contenders than asked");
        }
        Ok(started
            .pids
            .into_iter()
            .zip(started.pidfds)
            .zip(lab_ends)
            .map(|((pid, pidfd), stream)| Forked { pid, pidfd, stream })
            .collect())
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // End-of-file on the helper's stdin: it ends its contenders, reaps them and exits.
        let _ =
            nix::sys::socket::shutdown(self.control.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(mut helper) = self.helper.take() {
            let deadline = Instant::now() + GRACE * 4;
            while matches!(helper.try_wait(), Ok(None)) {
                if Instant::now() >= deadline {
                    // Our own unreaped child: its PID cannot have been recycled.
                    let _ = helper.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = helper.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The lab's reader of the helper's packets: hands `Started` to the waiting request and
/// books `Exited`; on end-of-file, tells every waiter nothing more will come.
fn read_replies(control: OwnedFd, started: mpsc::Sender<Started>, exits: Arc<Exits>) {
    while let Ok((reply, fds)) = receive(control.as_fd()) {
        match reply {
            Reply::Started { id, pids, error } => {
                let _ = started.send(Started {
                    id,
                    pids,
                    pidfds: fds,
                    error,
                });
            }
            Reply::Exited { pid, status } => exits.record(pid, status),
            Reply::Hello { .. } => {}
        }
    }
    exits.close();
}

/// One packet and the descriptors that came with it (close-on-exec in this process).
fn receive<T: for<'de> Deserialize<'de>>(fd: BorrowedFd<'_>) -> io::Result<(T, Vec<OwnedFd>)> {
    let mut buffer = vec![0u8; PACKET];
    let mut control = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (bytes, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        match recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: the kernel just installed these descriptors in this
                        // process for us; nothing else owns them.
                        fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                    }
                }
                break (msg.bytes, fds);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if bytes == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let value = serde_json::from_slice(&buffer[..bytes]).map_err(io::Error::other)?;
    Ok((value, fds))
}

/// One packet, with `fds` passed along.
fn send<T: Serialize>(fd: BorrowedFd<'_>, value: &T, fds: &[RawFd]) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(
            fd.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` has something to read (or hung up) within `timeout`.
fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- The helper's side ------------------------------------------------------------

/// A contender the helper forked and has not reaped yet.
struct Own {
    pid: i32,
    pidfd: OwnedFd,
}

/// The body of `daemonlab __spawner`: serve the lab on stdin until end-of-file, then end
/// what is left. Returns the exit status.
pub fn spawner_main() -> i32 {
    // fork() below is only sound in a process with one thread.
    if super::pitfalls::threads() != Some(1) {
        eprintln!("daemonlab __spawner: must run single-threaded");
        return 2;
    }
    // Contenders are tracked by pidfd (Linux 5.3+): without them, let the lab exec each.
    if pidfd_open(std::process::id() as i32).is_err() {
        eprintln!("daemonlab __spawner: no pidfd_open on this kernel");
        return 2;
    }
    // SAFETY: fd 0 is the lab's socketpair end, given to this process as stdin; nothing
    // else here owns it.
    let control = unsafe { OwnedFd::from_raw_fd(0) };
    let hello = Reply::Hello {
        pid: std::process::id() as i32,
    };
    if send(control.as_fd(), &hello, &[]).is_err() {
        return 1;
    }
    let mut own: Vec<Own> = Vec::new();
    // Until end-of-file (the lab is gone) or a broken channel.
    'serve: loop {
        let (lab_ready, exited) = {
            let mut fds = Vec::with_capacity(1 + own.len());
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
            fds.extend(
                own.iter()
                    .map(|o| PollFd::new(o.pidfd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => break 'serve,
            }
            let ready = |fd: &PollFd| fd.any().unwrap_or(true);
            let exited: Vec<usize> = fds[1..]
                .iter()
                .enumerate()
                .filter(|(_, fd)| ready(fd))
                .map(|(i, _)| i)
                .collect();
            (ready(&fds[0]), exited)
        };
        for index in exited.into_iter().rev() {
            if let Some(status) = reap(&own[index].pidfd, false) {
                let gone = own.swap_remove(index);
                let reply = Reply::Exited {
                    pid: gone.pid,
                    status,
                };
                if send(control.as_fd(), &reply, &[]).is_err() {
                    break 'serve;
                }
            }
        }
        if lab_ready {
            let Ok((request, fds)) = receive::<Request>(control.as_fd()) else {
                break 'serve;
            };
            let (reply, started) = serve(request, fds, control.as_raw_fd(), &mut own);
            // The new ones are the last `started` entries.
            let pidfds: Vec<RawFd> = own[own.len() - started..]
                .iter()
                .map(|o| o.pidfd.as_raw_fd())
                .collect();
            if send(control.as_fd(), &reply, &pidfds).is_err() {
                break 'serve;
            }
        }
    }
    end_all(own);
    0
}

/// Fork one contender per descriptor; the reply and how many were started.
fn serve(
    request: Request,
    fds: Vec<OwnedFd>,
    control: RawFd,
    own: &mut Vec<Own>,
) -> (Reply, usize) {
    let Request::Spawn {
        id,
        pidfile,
        kind,
        mode,
        syslog_socket,
        gated,
        count: _,
    } = request;
    let args = ContenderArgs {
        pidfile,
        kind,
        mode,
        syslog_socket,
        gated,
    };
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut pids = Vec::with_capacity(fds.len());
    let mut error = None;
    for (index, stream) in fds.into_iter().enumerate() {
        // The descriptors of contenders not forked yet, and ours: the child must not
        // keep them open, or another contender's lifeline would never see end-of-file.
        let others: Vec<RawFd> = raw[index + 1..]
            .iter()
            .copied()
            .chain(own.iter().map(|o| o.pidfd.as_raw_fd()))
            .chain([control])
            .collect();
        // SAFETY: spawner_main checked that this process has a single thread, so the
        // child starts with every lock and allocator state consistent and may run
        // ordinary code; it leaves through `_exit`, never by returning or unwinding.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => become_contender(&args, stream, &others),
            Ok(ForkResult::Parent { child }) => {
                let pid = child.as_raw();
                // Not reaped yet (only this thread reaps), so the PID is surely the child's.
                match pidfd_open(pid) {
                    Ok(pidfd) => {
                        own.push(Own { pid, pidfd });
                        pids.push(pid);
                    }
                    Err(e) => {
                        // Untrackable: end it now by the PID of our unreaped child.
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                        let _ = nix::sys::wait::waitpid(child, None);
                        error = Some(format!("pidfd_open: {e}"));
                        break;
                    }
                }
                // `stream` closes here: only the child holds that end now.
            }
            Err(e) => {
                error = Some(format!("fork: {e}"));
                break;
            }
        }
    }
    let started = pids.len();
    (Reply::Started { id, pids, error }, started)
}

/// The forked child: the contender's socket as stdin, stdout and stderr, nothing else of
/// the helper's, then the contender's own logic. Never returns.
fn become_contender(args: &ContenderArgs, stream: OwnedFd, others: &[RawFd]) -> ! {
    for &fd in others {
        // SAFETY: closing descriptors inherited from the helper that this child must not
        // hold; nothing in the child uses them.
        unsafe { libc::close(fd) };
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors; `stream` stays valid until the
        // loop ends.
        if unsafe { libc::dup2(stream.as_raw_fd(), target) } < 0 {
            // SAFETY: _exit ends the process at once.
            unsafe { libc::_exit(2) };
        }
    }
    drop(stream);
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        contender_main(args.clone())
    }))
    .unwrap_or(101);
    // SAFETY: _exit ends the process at once, without the helper's atexit handlers; the
    // contender has flushed every event it wrote.
    unsafe { libc::_exit(code) }
}

/// The raw wait status if the process behind `pidfd` has exited (reaping it); with
/// `block`, wait for it.
fn reap(pidfd: &OwnedFd, block: bool) -> Option<i32> {
    let flags = if block {
        WaitPidFlag::WEXITED
    } else {
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG
    };
    loop {
        return match waitid(Id::PIDFd(pidfd.as_fd()), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some((code & 0xff) << 8),
            Ok(WaitStatus::Signaled(_, signal, core)) => {
                Some(signal as i32 | if core { 0x80 } else { 0 })
            }
            Ok(_) => None,
            Err(Errno::EINTR) => continue,
            // Not ours any more (ECHILD): nothing to wait for.
            Err(_) => Some(0),
        };
    }
}

/// The lab is gone: give the contenders a moment (their own lifelines have closed too),
/// then SIGKILL the rest through their pidfds, and reap every one.
fn end_all(own: Vec<Own>) {
    let deadline = Instant::now() + GRACE;
    let mut left = own;
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|o| reap(&o.pidfd, false).is_none());
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for o in &left {
        let _ = pidfd_signal(&o.pidfd, libc::SIGKILL);
    }
    for o in &left {
        let _ = reap(&o.pidfd, true);
    }
}
