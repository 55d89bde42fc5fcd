//! The lab's syslogd: a Unix datagram socket in the lab's private runtime directory.
//! It asks the kernel for each sender's credentials (SO_PASSCRED, as journald does), so a
//! message is tied to the PID that really sent it, not to what the text claims.
//!
//! Like a classic syslogd it also listens on UDP when asked (APUE 13.4's network path),
//! reads the kernel's log from /dev/kmsg when asked, folds identical consecutive messages
//! into "last message repeated N times", and counts what arrived, what was malformed and
//! what was lost. One thread waits in poll(2) on every source plus a wake-up socket for
//! commands: idle costs nothing, and stop/start can close and rebind the socket under
//! running clients, which is how LOG_CONS and glibc's reconnection are shown.

mod kmsg;
mod udp;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, MultiHeaders, Shutdown, SockFlag, SockType,
    UnixAddr, bind, recvmmsg, setsockopt, shutdown, socket, sockopt,
};
use serde::{Serialize, Serializer};

use super::parse::{self, Parsed, escape_bytes};
use super::tally::Cursor;
use super::{Facility, Severity};
use crate::probe::Pid;

/// Largest datagram kept whole; longer ones are kept cut and flagged.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// How many messages the ring keeps before dropping the oldest.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How many bytes of messages the ring keeps: a flood of 64 KiB garbage must not take
/// gigabytes just because the count is below the capacity. 16 MiB keeps the explorer well
/// under 64 MiB whatever arrives.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long a run of repeats may stay unreported, as classic syslogd's first interval.
pub const DEFAULT_FOLD_FLUSH: Duration = Duration::from_secs(30);

/// Where a message came from: the three inputs of APUE 13.4's syslogd figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The Unix datagram socket (the lab's /dev/log).
    Unix,
    /// A UDP datagram, with the sender's address.
    Udp(SocketAddr),
    /// A /dev/kmsg record: the kernel's own log.
    Kernel,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Unix => f.write_str("unix"),
            Source::Udp(addr) => write!(f, "udp:{addr}"),
            Source::Kernel => f.write_str("kernel"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One datagram as it arrived, with what the kernel and the PRI say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Arrival order, from 1: the number of datagrams received up to this one, so
    /// `wait_for(receiver.received(), …)` sees exactly what arrives next. Absorbed repeats
    /// use numbers too; a "repeated" entry carries the number of the last repeat.
    pub seq: u64,
    /// The sender's PID from SCM_CREDENTIALS; `None` if the kernel sent none (UDP, kmsg).
    pub sender_pid: Option<Pid>,
    /// When the receiver read it (or, for a "repeated" entry, when it was reported).
    #[serde(serialize_with = "unix_seconds")]
    pub received_at: SystemTime,
    /// From PRI, as in `parsed`; kept here for existing callers.
    pub facility: Option<Facility>,
    /// From PRI, as in `parsed`.
    pub severity: Option<Severity>,
    /// The datagram as text (lossy UTF-8), trailing NUL and newline removed.
    pub text: String,
    /// The datagram was longer than [`MAX_DATAGRAM`] and was cut.
    pub truncated: bool,
    /// The datagram decoded field by field.
    pub parsed: Parsed,
    /// The bytes as received, at most [`MAX_DATAGRAM`]; empty for a "repeated" entry.
    #[serde(serialize_with = "escaped")]
    pub raw: Vec<u8>,
    /// Which input it came in on.
    pub source: Source,
    /// 0 for a real message; N for the synthetic "last message repeated N times".
    pub repeats: u32,
    /// How many real (not "repeated") messages the ring had stored up to and including
    /// this entry: a reader that sees it jump knows how many it missed.
    #[serde(skip)]
    pub stored: u64,
}

fn unix_seconds<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}

fn escaped<S: Serializer>(raw: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape_bytes(raw))
}

impl Message {
    /// A message as the receiver would store it for `bytes` arriving on `source`, with
    /// `seq` 0 and the time now: for fixtures, tests and lessons that show a datagram
    /// without sending it. Bytes beyond [`MAX_DATAGRAM`] are cut and flagged.
    pub fn from_datagram(source: Source, sender_pid: Option<Pid>, bytes: &[u8]) -> Message {
        let kept = &bytes[..bytes.len().min(MAX_DATAGRAM)];
        Message::new(source, sender_pid, kept.to_vec(), kept.len() < bytes.len())
    }

    fn new(source: Source, sender_pid: Option<Pid>, raw: Vec<u8>, truncated: bool) -> Message {
        let text = parse::datagram_text(&raw);
        let parsed = parse::parse_text(&text);
        let text = text.into_owned();
        Message::with_parsed(source, sender_pid, raw, text, truncated, parsed)
    }

    fn with_parsed(
        source: Source,
        sender_pid: Option<Pid>,
        raw: Vec<u8>,
        text: String,
        truncated: bool,
        parsed: Parsed,
    ) -> Message {
        Message {
            seq: 0,
            sender_pid,
            received_at: SystemTime::now(),
            facility: parsed.facility,
            severity: parsed.severity,
            text,
            truncated,
            parsed,
            raw,
            source,
            repeats: 0,
            stored: 0,
        }
    }

    /// What the ring's byte budget charges for this message; views that keep copies
    /// use it for their own budget.
    pub fn cost(&self) -> usize {
        std::mem::size_of::<Message>()
            + self.raw.len()
            + self.text.len()
            + self.parsed.message.len()
    }
}

/// What the receiver has counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Datagrams (and kernel records) read, including folded, malformed and evicted ones.
    pub received: u64,
    /// Of those, how many had no valid PRI or could not be parsed.
    pub malformed: u64,
    /// Repeats absorbed into a "last message repeated N times" entry.
    pub folded: u64,
    /// Messages dropped from the full ring to make room.
    pub evicted: u64,
    /// Datagrams longer than [`MAX_DATAGRAM`], kept cut.
    pub truncated: u64,
    /// Messages the kernel dropped before we could read them: UDP receive-queue overflows
    /// and overwritten /dev/kmsg records. A Unix datagram socket never drops silently (a
    /// sender blocks or gets EAGAIN), so it adds nothing. `None` when it cannot be known.
    pub kernel_drops: Option<u64>,
}

/// How a receiver keeps and folds what it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// Most messages the ring keeps (at least 1).
    pub capacity: usize,
    /// Most bytes the ring keeps; the newest message is always kept.
    pub max_bytes: usize,
    /// Fold identical consecutive messages, as classic syslogd does.
    pub fold: bool,
    /// Report pending repeats after this long even if no other message comes.
    pub fold_flush: Duration,
}

impl Default for ReceiverOptions {
    fn default() -> ReceiverOptions {
        ReceiverOptions {
            capacity: DEFAULT_CAPACITY,
            max_bytes: DEFAULT_MAX_BYTES,
            fold: true,
            fold_flush: DEFAULT_FOLD_FLUSH,
        }
    }
}

/// Called on the receiver's thread for each message stored; keep it short (send to a
/// channel) and do not call back into the receiver's stop, start, add_* or set_listener.
pub type Listener = Box<dyn Fn(&Message) + Send>;

/// Called on the receiver's thread once per batch that changed the ring or the counts;
/// the same rules as [`Listener`].
pub type Notify = Box<dyn Fn() + Send>;

/// A view's handle on a receiver: reads the ring and the counters from any thread.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

impl Feed {
    /// What arrived since `cursor` last read (at most the newest `max` entries), oldest
    /// first; the cursor's tally is brought up to date under the same lock, so it always
    /// balances. Entries left out by `max` count as dropped.
    pub fn read(&self, cursor: &mut Cursor, max: usize) -> Vec<Message> {
        let mut messages = Vec::new();
        self.read_each(cursor, max, |m| {
            messages.push(m.clone());
            true
        });
        messages
    }

    /// [`Feed::read`] without the copies: `each` sees the new messages in place, under
    /// the ring's lock, so it must be quick (format into a buffer; no I/O, no calls back
    /// into the receiver). For a printer that keeps up with a flood. When `each` returns
    /// false the read stops after that message and the rest stay new for the next read;
    /// until a read goes to the end, the tally counts them as received but not yet shown.
    /// Returns whether this read went to the end.
    pub fn read_each(
        &self,
        cursor: &mut Cursor,
        max: usize,
        each: impl FnMut(&Message) -> bool,
    ) -> bool {
        let done = self.shared.inbox().visit(cursor, max, each);
        cursor.tally.kernel_dropped = self.kernel_drops();
        done
    }

    /// Everything counted so far; see [`Counters`].
    pub fn counters(&self) -> Counters {
        let mut counters = self.shared.inbox().counters();
        counters.kernel_drops = self.kernel_drops();
        counters
    }

    /// [`Receiver::set_notify`], from the view's side.
    pub fn set_notify(&self, notify: Notify) {
        *lock(&self.shared.notify) = Some(notify);
    }

    /// UDP receive-queue overflows (from /proc/net/udp) plus overwritten kmsg records.
    fn kernel_drops(&self) -> Option<u64> {
        let kmsg = self.shared.inbox().kmsg_lost;
        let inodes = lock(&self.shared.udp_inodes).clone();
        udp::drops(&inodes).map(|udp| udp + kmsg)
    }
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

/// A bound receiver with its thread; dropping it stops the thread and removes the socket.
pub struct Receiver {
    path: PathBuf,
    shared: Arc<Shared>,
    control: Control,
    /// Held while stopping, starting or adding an input, so that two callers cannot
    /// both bind the path or both open /dev/kmsg.
    lifecycle: Mutex<()>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Bind `path` and start receiving. Fails if the path exists or its directory is
    /// not writable; the error names the path.
    pub fn bind(path: &Path, capacity: usize) -> io::Result<Receiver> {
        Receiver::with_options(
            path,
            ReceiverOptions {
                capacity,
                ..ReceiverOptions::default()
            },
        )
    }

    /// [`Receiver::bind`] with every option.
    pub fn with_options(path: &Path, options: ReceiverOptions) -> io::Result<Receiver> {
        let unix = bind_unix(path)?;
        let id = unix.1;
        Receiver::spawn(path, options, unix).inspect_err(|_| {
            // Nobody will read the socket we bound: leave no name behind.
            remove_socket(path, id);
        })
    }

    fn spawn(
        path: &Path,
        options: ReceiverOptions,
        unix: (OwnedFd, FileId),
    ) -> io::Result<Receiver> {
        let (wake_tx, wake_rx) = UnixDatagram::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let (commands, inbox) = mpsc::channel();
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::new(&options)),
            ready: Condvar::new(),
            listener: Mutex::new(None),
            has_listener: AtomicBool::new(false),
            running: AtomicBool::new(true),
            kmsg: AtomicBool::new(false),
            udp_inodes: Mutex::new(Vec::new()),
            notify: Mutex::new(None),
            bound: Mutex::new(Some(unix.1)),
            removal: Mutex::new(None),
        });
        let worker_shared = Arc::clone(&shared);
        let worker_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("syslog-receiver".into())
            .spawn(move || {
                // Built on its own thread: recvmmsg's headers hold raw pointers (not Send).
                Worker {
                    shared: worker_shared,
                    commands: inbox,
                    wake: wake_rx,
                    path: worker_path,
                    inputs: vec![Input::Unix(unix.0)],
                    buffer: vec![0; MAX_DATAGRAM],
                    slots: UnixSlots::new(),
                    batch: Vec::with_capacity(BATCH),
                }
                .run()
            })?;
        Ok(Receiver {
            path: path.to_path_buf(),
            shared,
            control: Control {
                commands,
                wake: wake_tx,
            },
            lifecycle: Mutex::new(()),
            thread: Some(thread),
        })
    }

    /// Where clients send: `logger -u PATH …` works too.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many datagrams arrived in all, including ones the ring has dropped.
    pub fn received(&self) -> u64 {
        self.shared.inbox().received
    }

    /// Everything counted so far; see [`Counters`].
    pub fn counters(&self) -> Counters {
        self.feed().counters()
    }

    /// A handle for a view on another thread (the explorer's screen): it reads the ring
    /// and the counters, and outlives nothing (the receiver still stops on drop).
    pub fn feed(&self) -> Feed {
        Feed {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Call `notify` on the receiver's thread once for every batch stored from now on:
    /// a cheap "something is new" for a view that reads the ring itself with a
    /// [`Feed`], instead of one event per message. Keep it short; replaces any previous.
    pub fn set_notify(&self, notify: Notify) {
        *lock(&self.shared.notify) = Some(notify);
    }

    /// What the receiver found at its path the last time it let go of the socket
    /// (stop or drop): removed, already gone, or something else left untouched.
    pub fn last_removal(&self) -> Option<Removal> {
        lock(&self.shared.removal).clone()
    }

    /// The messages still in the ring, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.inbox().messages.iter().cloned().collect()
    }

    /// The messages in the ring with `seq > after`, oldest first, without scanning the
    /// older ones: for a view that fetches what is new after each listener call.
    pub fn messages_after(&self, after: u64) -> Vec<Message> {
        let inbox = self.shared.inbox();
        let start = inbox.messages.partition_point(|m| m.seq <= after);
        inbox.messages.range(start..).cloned().collect()
    }

    /// Messages with `seq > after`, waiting up to `timeout` for the first one that
    /// `wanted` accepts. Returns everything newer than `after` that is in the ring.
    pub fn wait_for(
        &self,
        after: u64,
        timeout: Duration,
        wanted: impl Fn(&Message) -> bool,
    ) -> Vec<Message> {
        self.wait_until(timeout, |inbox| {
            let start = inbox.messages.partition_point(|m| m.seq <= after);
            let newer: Vec<Message> = inbox.messages.range(start..).cloned().collect();
            let found = newer.iter().any(&wanted);
            (newer, found)
        })
    }

    /// Wait up to `timeout` until `count` datagrams have arrived in all, and return how
    /// many have. Unlike [`Receiver::wait_for`] this also sees a folded repeat, which is
    /// counted but not stored: "did my message arrive?" is `wait_received(before + 1, …)`.
    pub fn wait_received(&self, count: u64, timeout: Duration) -> u64 {
        self.wait_until(timeout, |inbox| (inbox.received, inbox.received >= count))
    }

    /// Look at the inbox until `look` says it is done, or `timeout` passes; returns what
    /// `look` saw last. Sleeps on the condition variable in between: no polling.
    fn wait_until<T>(&self, timeout: Duration, look: impl Fn(&Inbox) -> (T, bool)) -> T {
        let deadline = Instant::now() + timeout;
        let mut inbox = self.shared.inbox();
        loop {
            let (seen, done) = look(&inbox);
            let now = Instant::now();
            if done || now >= deadline {
                return seen;
            }
            inbox.waiters += 1;
            inbox = self
                .shared
                .ready
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            inbox.waiters -= 1;
        }
    }

    /// Store `bytes` as if they had arrived on `source` now: the parse, fold and store path
    /// without a socket, for lessons that replay a datagram and for benchmarks.
    pub fn inject(&self, source: Source, sender_pid: Option<Pid>, bytes: &[u8]) {
        let message = Message::from_datagram(source, sender_pid, bytes);
        self.shared.update(|inbox| inbox.accept(message));
    }

    /// Turn folding of identical consecutive messages on or off (on by default). Turning
    /// it off reports any pending repeats first.
    pub fn set_folding(&self, fold: bool) {
        self.shared.update(|inbox| {
            if !fold {
                inbox.report_repeats();
                inbox.last = None;
            }
            inbox.fold = fold;
        });
    }

    /// Store the pending "last message repeated N times" now, as a syslogd does before
    /// it exits, instead of waiting for another message or the flush interval.
    pub fn flush(&self) {
        self.shared.update(Inbox::report_repeats);
    }

    /// Call `listener` for each message stored from now on (the TUI turns it into a
    /// redraw). Replaces any previous listener. See [`Listener`] for what it may do.
    pub fn set_listener(&self, listener: Listener) {
        *lock(&self.shared.listener) = Some(listener);
        self.shared.has_listener.store(true, Ordering::Release);
    }

    /// Close and unlink the Unix socket, as if syslogd died: senders now get ENOENT (by
    /// path) or ECONNREFUSED (connected), which is when LOG_CONS writes to the console.
    /// Datagrams already queued are read first. UDP and kmsg inputs keep running.
    pub fn stop(&self) {
        let _lifecycle = lock(&self.lifecycle);
        if self.is_running() && !self.control.call(Command::StopUnix) {
            // The thread is gone; the socket closed with it, only the name is left.
            self.shared.let_go(&self.path);
            self.shared.running.store(false, Ordering::SeqCst);
        }
    }

    /// Bind the same path again after [`Receiver::stop`]; clients that reconnect (glibc
    /// does on its next syslog call) are heard again. Does nothing if already running.
    pub fn start(&self) -> io::Result<()> {
        let _lifecycle = lock(&self.lifecycle);
        if self.is_running() {
            return Ok(());
        }
        let (unix, id) = bind_unix(&self.path)?;
        *lock(&self.shared.bound) = Some(id);
        self.control
            .attach(Input::Unix(unix), &self.path)
            .inspect_err(|_| self.shared.let_go(&self.path))
    }

    /// Whether the Unix socket is bound and read.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }

    /// Also receive syslog over UDP on `addr` (port 0 picks a free one); returns the bound
    /// address. Messages are marked [`Source::Udp`] with the sender's address.
    pub fn add_udp(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let _lifecycle = lock(&self.lifecycle);
        let (socket, inode) = udp::bind(addr)?;
        let bound = socket.local_addr()?;
        self.control.attach(Input::Udp(socket), &self.path)?;
        lock(&self.shared.udp_inodes).push(inode);
        Ok(bound)
    }

    /// Also read the kernel's log from /dev/kmsg, from its current end: messages marked
    /// [`Source::Kernel`]. Off unless called; calling it again does nothing. The error
    /// says why /dev/kmsg cannot be read (usually: not root while dmesg_restrict=1).
    pub fn add_kmsg(&self) -> io::Result<()> {
        let _lifecycle = lock(&self.lifecycle);
        if self.shared.kmsg.load(Ordering::SeqCst) {
            return Ok(());
        }
        let kmsg = kmsg::Kmsg::open()?;
        self.control.attach(Input::Kmsg(kmsg), &self.path)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.control.call(Command::Quit);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Still marked running only if the thread died before closing the socket.
        if self.is_running() {
            self.shared.let_go(&self.path);
        }
    }
}

/// A socket bound at `path`, non-blocking, asking for senders' credentials, with the
/// identity of the file the bind created.
fn bind_unix(path: &Path) -> io::Result<(OwnedFd, FileId)> {
    let named = |e: Errno| {
        let hint = match e {
            Errno::EADDRINUSE => {
                " — another receiver has it, or a stale socket file is left: remove it or pick another path"
            }
            Errno::EACCES | Errno::EPERM => " — pick a directory you can write to",
            Errno::ENOENT => " — its directory does not exist",
            _ => "",
        };
        io::Error::new(
            io::Error::from(e).kind(),
            format!("syslog socket {}: {e}{hint}", path.display()),
        )
    };
    let socket = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(named)?;
    // Before bind, so that a failure leaves no socket file behind.
    setsockopt(&socket, sockopt::PassCred, &true).map_err(named)?;
    bind(socket.as_raw_fd(), &UnixAddr::new(path).map_err(named)?).map_err(named)?;
    // The socket's own fstat names sockfs, not the file: ask the path, without following.
    let stat = nix::sys::stat::lstat(path).map_err(named)?;
    Ok((
        socket,
        FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        },
    ))
}

/// Which file a path named: device and inode, as lstat(2) gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: libc::dev_t,
    ino: libc::ino_t,
}

/// What the receiver found at its path when it let go of its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// It was still the socket this receiver bound: removed.
    Removed,
    /// Nothing was there any more.
    AlreadyGone,
    /// Something else was there (another receiver's socket, a user's file): left as it
    /// was. The text says what, in words.
    NotTouched(String),
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::Removed => f.write_str("socket removed"),
            Removal::AlreadyGone => f.write_str("socket already gone"),
            Removal::NotTouched(why) => f.write_str(why),
        }
    }
}

/// Remove `path` only if it is still the socket `id` (never following a symlink); say
/// what was done. Someone may have removed it and bound their own since: that one lives.
fn remove_socket(path: &Path, id: FileId) -> Removal {
    use nix::sys::stat::SFlag;
    let stat = match nix::sys::stat::lstat(path) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Removal::AlreadyGone,
        Err(e) => {
            return Removal::NotTouched(format!(
                "cannot check {}: {e}: not touched",
                path.display()
            ));
        }
    };
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let same = stat.st_dev == id.dev && stat.st_ino == id.ino;
    let why = if kind == SFlag::S_IFSOCK && same {
        return match std::fs::remove_file(path) {
            Ok(()) => Removal::Removed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Removal::AlreadyGone,
            Err(e) => Removal::NotTouched(format!("cannot remove {}: {e}", path.display())),
        };
    } else if kind == SFlag::S_IFREG {
        "a regular file, not a stale socket"
    } else if kind == SFlag::S_IFSOCK {
        "another socket, not the one this receiver bound"
    } else if kind == SFlag::S_IFLNK {
        "a symbolic link, not the socket this receiver bound"
    } else {
        "not the socket this receiver bound"
    };
    Removal::NotTouched(format!("{} is {why}: not touched", path.display()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // One panic (a failed assertion in a test's listener, say) must not make every later
    // call panic too; the data behind these locks stays consistent between statements.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by the receiver's handle and its thread.
struct Shared {
    inbox: Mutex<Inbox>,
    ready: Condvar,
    listener: Mutex<Option<Listener>>,
    /// Lets the hot path skip copying messages when nobody listens.
    has_listener: AtomicBool,
    /// The Unix socket is attached to the thread (set and cleared by the thread).
    running: AtomicBool,
    /// /dev/kmsg is attached to the thread.
    kmsg: AtomicBool,
    udp_inodes: Mutex<Vec<u64>>,
    /// Called once per stored batch; see [`Receiver::set_notify`].
    notify: Mutex<Option<Notify>>,
    /// The file the Unix socket was bound as, while it is bound: the only thing at the
    /// path the receiver will ever remove.
    bound: Mutex<Option<FileId>>,
    /// What happened at the path the last time the receiver let go of it.
    removal: Mutex<Option<Removal>>,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        lock(&self.inbox)
    }

    /// The socket is closed or about to be: remove its name if it is still ours.
    fn let_go(&self, path: &Path) {
        let Some(id) = lock(&self.bound).take() else {
            return;
        };
        let removal = remove_socket(path, id);
        if let Removal::NotTouched(why) = &removal {
            tracing::warn!(%why, "the syslog socket's path holds something else");
        }
        *lock(&self.removal) = Some(removal);
    }

    /// Change the inbox under its lock; then, outside it (so that a listener may read
    /// the ring), wake waiters and tell the listener what was stored.
    fn update(&self, change: impl FnOnce(&mut Inbox)) {
        let (stored, waiters, changed) = {
            let mut inbox = self.inbox();
            inbox.copies = self.has_listener.load(Ordering::Acquire);
            let before = (inbox.received, inbox.pushed);
            change(&mut inbox);
            let changed = before != (inbox.received, inbox.pushed);
            (std::mem::take(&mut inbox.stored), inbox.waiters, changed)
        };
        // A futex wake-up per batch is measurable at flood rates: only when someone waits.
        if waiters > 0 {
            self.ready.notify_all();
        }
        if stored.is_empty() && !changed {
            return;
        }
        if let Some(notify) = lock(&self.notify).as_ref() {
            notify();
        }
        if stored.is_empty() {
            return;
        }
        let mut slot = lock(&self.listener);
        let panicked = slot.as_ref().is_some_and(|listener| {
            stored
                .iter()
                .any(|m| panic::catch_unwind(AssertUnwindSafe(|| listener(m))).is_err())
        });
        if panicked {
            // A listener that panics (say, on a closed channel) must not end reception
            // for everyone: it is dropped, and the receiver carries on.
            *slot = None;
            self.has_listener.store(false, Ordering::Release);
        }
    }
}

/// The ring and the counters.
struct Inbox {
    messages: VecDeque<Message>,
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
    fold: bool,
    fold_flush: Duration,
    /// The last real message stored: what a repeat must equal.
    last: Option<Original>,
    pending: Option<Pending>,
    /// Threads in `wait_for`, to skip futex wake-ups when there are none.
    waiters: usize,
    /// Whether to copy stored messages into `stored` for the listener.
    copies: bool,
    stored: Vec<Message>,
    received: u64,
    malformed: u64,
    folded: u64,
    evicted: u64,
    truncated: u64,
    kmsg_lost: u64,
    /// Entries ever pushed, real or "repeated": changes when the ring does.
    pushed: u64,
    /// Real (not "repeated") messages ever pushed; see [`Message::stored`].
    stored_real: u64,
}

/// The fields of a stored message that a repeat must match and that its "repeated"
/// entry copies; not the whole message, whose raw bytes would be copied for nothing.
struct Original {
    source: Source,
    sender_pid: Option<Pid>,
    parsed: Parsed,
}

/// Repeats of `Inbox::last` not yet reported.
struct Pending {
    count: u32,
    last_seq: u64,
    /// `None` when the flush interval is too long to represent: never by timer.
    due: Option<Instant>,
}

impl Inbox {
    fn new(options: &ReceiverOptions) -> Inbox {
        Inbox {
            messages: VecDeque::new(),
            bytes: 0,
            capacity: options.capacity.max(1),
            max_bytes: options.max_bytes,
            fold: options.fold,
            fold_flush: options.fold_flush,
            last: None,
            pending: None,
            waiters: 0,
            copies: false,
            stored: Vec::new(),
            received: 0,
            malformed: 0,
            folded: 0,
            evicted: 0,
            truncated: 0,
            kmsg_lost: 0,
            pushed: 0,
            stored_real: 0,
        }
    }

    fn counters(&self) -> Counters {
        Counters {
            received: self.received,
            malformed: self.malformed,
            folded: self.folded,
            evicted: self.evicted,
            truncated: self.truncated,
            kernel_drops: Some(self.kmsg_lost),
        }
    }

    /// Count one arrival and store it, or fold it into the pending repeats.
    fn accept(&mut self, mut message: Message) {
        self.received += 1;
        message.seq = self.received;
        self.malformed += u64::from(message.parsed.malformed);
        if message.parsed.malformed || message.truncated {
            tracing::debug!(
                seq = message.seq,
                sender = message.sender_pid,
                bytes = message.raw.len(),
                truncated = message.truncated,
                "kept a datagram that is not valid syslog"
            );
        }
        self.truncated += u64::from(message.truncated);
        if self.fold
            && self
                .last
                .as_ref()
                .is_some_and(|last| same_message(last, &message))
        {
            self.folded += 1;
            let fold_flush = self.fold_flush;
            let pending = self.pending.get_or_insert_with(|| Pending {
                count: 0,
                last_seq: 0,
                due: Instant::now().checked_add(fold_flush),
            });
            pending.count = pending.count.saturating_add(1);
            pending.last_seq = message.seq;
            return;
        }
        self.report_repeats();
        if self.fold {
            self.last = Some(Original {
                source: message.source,
                sender_pid: message.sender_pid,
                parsed: message.parsed.clone(),
            });
        }
        self.push(message);
    }

    /// Store "last message repeated N times" for the pending repeats, if any.
    fn report_repeats(&mut self) {
        let (Some(pending), Some(last)) = (self.pending.take(), self.last.as_ref()) else {
            return;
        };
        let text = format!("last message repeated {} times", pending.count);
        let mut parsed = last.parsed.clone();
        parsed.message = text.clone();
        // The entry is syslogd's own words, written now, not the sender's first copy.
        parsed.timestamp = None;
        let mut entry = Message::with_parsed(
            last.source,
            last.sender_pid,
            Vec::new(),
            text,
            false,
            parsed,
        );
        entry.seq = pending.last_seq;
        entry.repeats = pending.count;
        self.push(entry);
    }

    fn push(&mut self, mut message: Message) {
        self.pushed += 1;
        self.stored_real += u64::from(message.repeats == 0);
        message.stored = self.stored_real;
        if self.copies {
            self.stored.push(message.clone());
        }
        self.bytes += message.cost();
        self.messages.push_back(message);
        while self.messages.len() > self.capacity
            || (self.bytes > self.max_bytes && self.messages.len() > 1)
        {
            if let Some(old) = self.messages.pop_front() {
                self.bytes -= old.cost();
                self.evicted += 1;
            }
        }
    }

    /// Everything after `cursor` (at most the newest `max` entries), moving it on and
    /// bringing its tally up to date: entries the ring no longer holds, or that `max`
    /// leaves out, count as dropped.
    fn visit(
        &self,
        cursor: &mut Cursor,
        max: usize,
        mut each: impl FnMut(&Message) -> bool,
    ) -> bool {
        let start = self.messages.partition_point(|m| m.seq <= cursor.seq);
        let new = self.messages.len() - start;
        let skip = new.saturating_sub(max);
        let tally = &mut cursor.tally;
        let mut done = true;
        for (i, message) in self.messages.range(start..).enumerate() {
            let real = u64::from(message.repeats == 0);
            // Real messages stored between the last one read and this one were evicted.
            tally.dropped += message.stored.saturating_sub(cursor.stored + real);
            cursor.stored = message.stored;
            cursor.seq = message.seq;
            if i < skip {
                tally.dropped += real;
            } else {
                tally.shown += real;
                if !each(message) {
                    done = false;
                    break;
                }
            }
        }
        if done {
            // Stored since, and already evicted: the ring keeps its newest, so only when
            // it was emptied some other way.
            tally.dropped += self.stored_real.saturating_sub(cursor.stored);
            cursor.stored = self.stored_real;
        }
        tally.received = self.received;
        tally.folded = self.folded;
        tally.malformed = self.malformed;
        tally.truncated = self.truncated;
        done
    }

    fn repeats_due(&self) -> Option<Instant> {
        self.pending.as_ref().and_then(|p| p.due)
    }
}

/// Classic syslogd's test for a repeat: same sender, same priority, same words.
fn same_message(a: &Original, b: &Message) -> bool {
    a.source == b.source
        && a.sender_pid == b.sender_pid
        && a.parsed.pri == b.parsed.pri
        && a.parsed.ident == b.parsed.ident
        && a.parsed.message == b.parsed.message
}

/// Requests from the handle to the thread, each answered when done.
enum Command {
    Attach(Input),
    StopUnix,
    Quit,
}

/// The handle's side of the command channel.
struct Control {
    commands: mpsc::Sender<(Command, mpsc::SyncSender<()>)>,
    wake: UnixDatagram,
}

impl Control {
    /// Send `command`, wake the thread and wait until it is done; false if the thread is
    /// gone.
    fn call(&self, command: Command) -> bool {
        let (done, finished) = mpsc::sync_channel(1);
        if self.commands.send((command, done)).is_err() {
            return false;
        }
        // A full wake-up queue already guarantees a wake-up.
        let _ = self.wake.send(&[1]);
        finished.recv().is_ok()
    }

    fn attach(&self, input: Input, path: &Path) -> io::Result<()> {
        if self.call(Command::Attach(input)) {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "the syslog receiver for {} has stopped: create a new one",
            path.display()
        )))
    }
}

/// One source the thread reads.
enum Input {
    Unix(OwnedFd),
    Udp(UdpSocket),
    Kmsg(kmsg::Kmsg),
}

impl Input {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Input::Unix(fd) => fd.as_fd(),
            Input::Udp(socket) => socket.as_fd(),
            Input::Kmsg(kmsg) => kmsg.as_fd(),
        }
    }
}

/// What one non-blocking read gave.
// A return value that lives for one call: boxing the message would cost an allocation
// per datagram to save stack bytes.
#[allow(clippy::large_enum_variant)]
enum Read {
    /// A message, and how many records the kernel overwrote just before it (kmsg).
    Message(Message, u64),
    /// This many messages (at least one) appended to the batch by one recvmmsg(2).
    Batch(usize),
    /// Interrupted by a signal: read again.
    Retry,
    /// Nothing queued.
    Empty,
    /// The input is broken for good; stop polling it.
    Failed,
}

/// What a burst of reads from one input gave.
struct Drained {
    read: usize,
    failed: bool,
}

/// Reads before going back to poll, so that one busy input cannot starve the others or
/// the commands.
const BURST: usize = 256;
/// Messages stored under one lock and announced with one wake-up.
const BATCH: usize = 64;
/// Datagrams one recvmmsg(2) may return. A flood from one sender arrives in queue-sized
/// runs (net.unix.max_dgram_qlen, 10 by default, 512 under systemd): one call takes a run.
const SLOTS: usize = 16;

/// recvmmsg(2)'s headers and buffers for the Unix socket, reused for every call. Each
/// slot holds a whole [`MAX_DATAGRAM`]; the pages of the one allocation are only touched
/// (made resident) as far as datagrams reach into them.
struct UnixSlots {
    headers: MultiHeaders<()>,
    buffers: Pages,
}

impl UnixSlots {
    fn new() -> UnixSlots {
        UnixSlots {
            headers: MultiHeaders::preallocate(SLOTS, Some(nix::cmsg_space!(libc::ucred))),
            buffers: Pages::new(SLOTS * MAX_DATAGRAM),
        }
    }
}

/// Zeroed memory straight from the kernel (an anonymous mapping): resident only where
/// written, and given back whole on drop. A `Vec` this size may come from malloc's
/// arena instead — glibc raises its mmap threshold after the first free — which zeroes,
/// so touches, all of it and keeps it after the free: a megabyte of resident memory for
/// every receiver a process ever started (tests/soak.rs saw it).
struct Pages {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    /// When the kernel refused the mapping: an ordinary allocation.
    fallback: Vec<u8>,
}

impl Pages {
    fn new(len: usize) -> Pages {
        // SAFETY: a fresh private anonymous mapping; no file, no fixed address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match std::ptr::NonNull::new(ptr.cast::<u8>()).filter(|_| ptr != libc::MAP_FAILED) {
            Some(ptr) => Pages {
                ptr,
                len,
                fallback: Vec::new(),
            },
            None => {
                let mut fallback = vec![0; len];
                Pages {
                    ptr: std::ptr::NonNull::new(fallback.as_mut_ptr()).expect("a Vec's pointer"),
                    len,
                    fallback,
                }
            }
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        if !self.fallback.is_empty() {
            return &mut self.fallback;
        }
        // SAFETY: `len` bytes mapped read-write by `new`, owned by this value alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if self.fallback.is_empty() {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

/// The receiving thread.
struct Worker {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<(Command, mpsc::SyncSender<()>)>,
    wake: UnixDatagram,
    path: PathBuf,
    inputs: Vec<Input>,
    /// For UDP and kmsg, one record at a time.
    buffer: Vec<u8>,
    /// For the Unix socket, many datagrams per system call.
    slots: UnixSlots,
    batch: Vec<Message>,
}

impl Worker {
    /// Serve until told to quit (or until poll fails), then close the Unix socket the way
    /// `stop` does, so its name never outlives the thread.
    fn run(mut self) {
        self.serve();
        self.stop_unix();
    }

    fn serve(&mut self) {
        loop {
            let due = self.shared.inbox().repeats_due();
            let timeout = match due {
                // Round up, so that we never wake just before the deadline and spin.
                Some(due) => PollTimeout::try_from(
                    due.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
                )
                .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut ready = vec![false; 1 + self.inputs.len()];
            {
                let mut fds = Vec::with_capacity(ready.len());
                fds.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
                fds.extend(
                    self.inputs
                        .iter()
                        .map(|input| PollFd::new(input.fd(), PollFlags::POLLIN)),
                );
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    // poll itself failing (ENOMEM) leaves nothing sensible to do.
                    Err(_) => return,
                }
                for (flag, fd) in ready.iter_mut().zip(&fds) {
                    *flag = fd.any().unwrap_or(false);
                }
            }
            let mut failed = Vec::new();
            for (index, _) in ready[1..].iter().enumerate().filter(|(_, r)| **r) {
                if self.drain(index, false).failed {
                    failed.push(index);
                }
            }
            for index in failed.into_iter().rev() {
                // A broken Unix socket also loses its name, so that clients see the
                // receiver gone rather than a socket nobody reads.
                if matches!(self.inputs[index], Input::Unix(_)) {
                    self.shared.let_go(&self.path);
                }
                self.detach(index);
            }
            if ready[0] && !self.obey() {
                return;
            }
            if due.is_some_and(|due| Instant::now() >= due) {
                self.shared.update(Inbox::report_repeats);
            }
        }
    }

    /// Run the queued commands; false when told to quit.
    fn obey(&mut self) -> bool {
        let mut byte = [0u8; 16];
        while self.wake.recv(&mut byte).is_ok() {}
        while let Ok((command, done)) = self.commands.try_recv() {
            match command {
                Command::Attach(input) => self.attach(input),
                Command::StopUnix => self.stop_unix(),
                // `Receiver::drop` joins the thread, which closes the socket on its way out.
                Command::Quit => return false,
            }
            let _ = done.send(());
        }
        true
    }

    fn attach(&mut self, input: Input) {
        match input {
            Input::Unix(_) => self.shared.running.store(true, Ordering::SeqCst),
            Input::Kmsg(_) => self.shared.kmsg.store(true, Ordering::SeqCst),
            Input::Udp(_) => {}
        }
        self.inputs.push(input);
    }

    /// Stop polling input `index` and close it.
    fn detach(&mut self, index: usize) {
        match self.inputs.remove(index) {
            Input::Unix(_) => self.shared.running.store(false, Ordering::SeqCst),
            Input::Kmsg(_) => self.shared.kmsg.store(false, Ordering::SeqCst),
            Input::Udp(_) => {}
        }
    }

    /// Unlink, refuse new datagrams, read those already queued, close.
    fn stop_unix(&mut self) {
        let Some(index) = self.inputs.iter().position(|i| matches!(i, Input::Unix(_))) else {
            return;
        };
        self.shared.let_go(&self.path);
        // After SHUT_RD the kernel refuses new datagrams but still hands out queued ones.
        let _ = shutdown(self.inputs[index].fd().as_raw_fd(), Shutdown::Read);
        loop {
            let drained = self.drain(index, true);
            if drained.failed || drained.read < BURST {
                break;
            }
        }
        self.detach(index);
    }

    /// Read up to [`BURST`] messages from input `index` and store them. When `closing`,
    /// an empty read without credentials ends the queue.
    fn drain(&mut self, index: usize, closing: bool) -> Drained {
        let mut lost = 0;
        let mut drained = Drained {
            read: 0,
            failed: false,
        };
        while drained.read < BURST {
            match self.read(index, closing) {
                Read::Message(message, overwritten) => {
                    drained.read += 1;
                    lost += overwritten;
                    self.batch.push(message);
                }
                Read::Batch(n) => drained.read += n,
                Read::Retry => {}
                Read::Empty => break,
                Read::Failed => {
                    drained.failed = true;
                    break;
                }
            }
            if self.batch.len() >= BATCH {
                self.commit(lost);
                lost = 0;
            }
        }
        self.commit(lost);
        drained
    }

    fn read(&mut self, index: usize, closing: bool) -> Read {
        let buffer = &mut self.buffer;
        match &mut self.inputs[index] {
            Input::Unix(fd) => read_unix(fd, &mut self.slots, closing, &mut self.batch),
            Input::Udp(socket) => match socket.recv_from(buffer) {
                // UDP payloads stop at 65507 bytes, so the buffer always holds one whole.
                Ok((n, from)) => Read::Message(
                    Message::new(Source::Udp(from), None, buffer[..n].to_vec(), false),
                    0,
                ),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Empty,
                // ICMP errors from earlier sends can surface here; they are not fatal.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    Read::Retry
                }
                Err(_) => Read::Failed,
            },
            Input::Kmsg(kmsg) => match kmsg.read(buffer) {
                Ok(kmsg::Record::Message(parsed, raw, lost)) => {
                    let text = parse::datagram_text(&raw).into_owned();
                    let message =
                        Message::with_parsed(Source::Kernel, None, raw, text, false, parsed);
                    Read::Message(message, lost)
                }
                Ok(kmsg::Record::Empty) => Read::Empty,
                Err(_) => Read::Failed,
            },
        }
    }

    /// Store the batch under one lock, then wake waiters and the listener.
    fn commit(&mut self, lost: u64) {
        if self.batch.is_empty() && lost == 0 {
            return;
        }
        let batch = &mut self.batch;
        self.shared.update(|inbox| {
            inbox.kmsg_lost += lost;
            for message in batch.drain(..) {
                inbox.accept(message);
            }
        });
    }
}

/// The datagrams queued on the Unix socket (up to [`SLOTS`], one recvmmsg(2)), each with
/// its sender's PID from SCM_CREDENTIALS, appended to `batch`.
fn read_unix(fd: &OwnedFd, slots: &mut UnixSlots, closing: bool, batch: &mut Vec<Message>) -> Read {
    let mut buffers = slots.buffers.as_mut_slice().chunks_mut(MAX_DATAGRAM);
    let mut iovs: [[IoSliceMut<'_>; 1]; SLOTS] = std::array::from_fn(|_| {
        [IoSliceMut::new(
            buffers.next().expect("UnixSlots holds SLOTS buffers"),
        )]
    });
    let received = match recvmmsg(
        fd.as_raw_fd(),
        &mut slots.headers,
        iovs.iter_mut(),
        MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
        None,
    ) {
        Ok(received) => received,
        Err(Errno::EAGAIN) => return Read::Empty,
        Err(Errno::EINTR) => return Read::Retry,
        Err(_) => return Read::Failed,
    };
    let mut count = 0;
    for msg in received {
        let sender = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|c| match c {
                ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                _ => None,
            })
        });
        // Every datagram carries credentials (SO_PASSCRED); an empty read without them is
        // the end of a socket shut down for reading (and the kernel repeats it to fill
        // the remaining slots).
        if closing && msg.bytes == 0 && sender.is_none() {
            break;
        }
        // With MSG_TRUNC `bytes` is the datagram's real length; the slot kept the start.
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        let raw = msg.iovs().next().unwrap_or_default().to_vec();
        batch.push(Message::new(Source::Unix, sender, raw, truncated));
        count += 1;
    }
    if count == 0 {
        Read::Empty
    } else {
        Read::Batch(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_with_sender_pid_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 3).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client
            .send_to(b"<30>Nov 25 18:00:00 t[1]: hello\0", &path)
            .unwrap();
        let got = receiver.wait_for(0, Duration::from_secs(2), |m| m.text.contains("hello"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].sender_pid, Some(std::process::id() as Pid));
        assert_eq!(got[0].facility, Some(Facility::Daemon));
        assert_eq!(got[0].severity, Some(Severity::Info));
        assert!(got[0].text.ends_with("hello"), "{:?}", got[0].text);
        for i in 0..5 {
            client
                .send_to(format!("garbage {i}").as_bytes(), &path)
                .unwrap();
        }
        receiver.wait_for(0, Duration::from_secs(2), |m| m.seq == 6);
        assert_eq!(receiver.received(), 6);
        let kept = receiver.messages();
        assert_eq!(kept.len(), 3, "ring is bounded");
        assert_eq!(kept[2].facility, None, "no PRI, no facility");
        drop(receiver);
        assert!(!path.exists(), "socket file removed on drop");
    }

    #[test]
    fn drop_removes_only_the_socket_it_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 3).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "a user's file").unwrap();
        drop(receiver);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a user's file");
        std::fs::remove_file(&path).unwrap();
        let first = Receiver::bind(&path, 3).unwrap();
        std::fs::remove_file(&path).unwrap();
        let second = Receiver::bind(&path, 3).unwrap();
        first.stop();
        assert!(
            matches!(first.last_removal(), Some(Removal::NotTouched(why)) if why.contains("another socket"))
        );
        drop(first);
        assert!(path.exists(), "the second receiver's socket lives on");
        drop(second);
        assert!(!path.exists());
    }

    #[test]
    fn oversized_datagram_is_kept_cut_and_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 10).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let big = vec![b'x'; MAX_DATAGRAM + 100];
        if client.send_to(&big, &path).is_err() {
            eprintln!("SKIPPED: this kernel refuses datagrams over {MAX_DATAGRAM} bytes");
            return;
        }
        let got = receiver.wait_for(0, Duration::from_secs(2), |_| true);
        assert!(got[0].truncated);
        assert_eq!(got[0].text.len(), MAX_DATAGRAM);
        assert_eq!(got[0].raw.len(), MAX_DATAGRAM);
        assert_eq!(receiver.counters().truncated, 1);
    }

    #[test]
    fn a_burst_is_read_many_at_a_time_and_every_datagram_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::with_options(
            &path,
            ReceiverOptions {
                fold: false,
                ..ReceiverOptions::default()
            },
        )
        .unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let big = vec![b'y'; MAX_DATAGRAM + 10];
        let oversized = client.send(&big).is_ok();
        let total = 5 * SLOTS as u64;
        let mut garbage = 0;
        for i in 0..total {
            if i % 7 == 3 {
                client.send(b"\xff\xfe no pri").unwrap();
                garbage += 1;
            } else {
                client.send(format!("<30>t[1]: n {i}").as_bytes()).unwrap();
            }
        }
        let expected = total + u64::from(oversized);
        assert_eq!(
            receiver.wait_received(expected, Duration::from_secs(5)),
            expected
        );
        let counters = receiver.counters();
        assert_eq!(counters.malformed, garbage + u64::from(oversized));
        assert_eq!(counters.truncated, u64::from(oversized));
        let kept = receiver.messages();
        assert_eq!(kept.len() as u64, expected);
        // In order, one seq each, every one tied to this process by the kernel.
        for (n, m) in kept.iter().enumerate() {
            assert_eq!(m.seq, n as u64 + 1);
            assert_eq!(m.sender_pid, Some(std::process::id() as Pid));
        }
        let texts: Vec<&str> = kept.iter().map(|m| m.text.as_str()).collect();
        let last = format!("<30>t[1]: n {}", total - 1);
        assert_eq!(texts.last(), Some(&last.as_str()));
    }

    #[test]
    fn a_read_stopped_early_leaves_the_rest_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::bind(&dir.path().join("log"), 100).unwrap();
        for i in 0..5 {
            receiver.inject(Source::Unix, Some(i), format!("<30>x: {i}").as_bytes());
        }
        let feed = receiver.feed();
        let mut cursor = Cursor::new();
        let mut seen = Vec::new();
        let done = feed.read_each(&mut cursor, usize::MAX, |m| {
            seen.push(m.seq);
            seen.len() < 2
        });
        assert!(!done);
        assert_eq!(seen, [1, 2]);
        assert!(feed.read_each(&mut cursor, usize::MAX, |m| {
            seen.push(m.seq);
            true
        }));
        assert_eq!(seen, [1, 2, 3, 4, 5]);
        assert!(cursor.tally.balanced(), "{:?}", cursor.tally);
        assert_eq!(cursor.tally.shown, 5);
    }

    fn message(text: &str) -> Message {
        Message::new(Source::Unix, Some(7), text.as_bytes().to_vec(), false)
    }

    #[test]
    fn repeats_fold_into_one_entry_with_its_own_seq() {
        let mut inbox = Inbox::new(&ReceiverOptions::default());
        for _ in 0..4 {
            inbox.accept(message("<30>Nov  5 09:04:01 d: same"));
        }
        inbox.accept(message("<30>Nov  5 09:04:02 d: other"));
        let seqs: Vec<(u64, u32, &str)> = inbox
            .messages
            .iter()
            .map(|m| (m.seq, m.repeats, m.parsed.message.as_str()))
            .collect();
        assert_eq!(
            seqs,
            [
                (1, 0, "same"),
                (4, 3, "last message repeated 3 times"),
                (5, 0, "other")
            ]
        );
        assert_eq!(inbox.messages[1].parsed.ident.as_deref(), Some("d"));
        assert_eq!((inbox.received, inbox.folded), (5, 3));
    }

    #[test]
    fn different_sender_or_priority_is_not_a_repeat() {
        let mut inbox = Inbox::new(&ReceiverOptions::default());
        inbox.accept(message("<30>Nov  5 09:04:01 d: same"));
        let mut other_pid = message("<30>Nov  5 09:04:01 d: same");
        other_pid.sender_pid = Some(8);
        inbox.accept(other_pid);
        inbox.accept(message("<31>Nov  5 09:04:01 d: same"));
        assert_eq!((inbox.messages.len(), inbox.folded), (3, 0));
    }

    #[test]
    fn byte_budget_evicts_but_keeps_the_newest() {
        let mut inbox = Inbox::new(&ReceiverOptions {
            max_bytes: 1000,
            fold: false,
            ..ReceiverOptions::default()
        });
        for i in 0..3 {
            inbox.accept(message(&format!("{i}{}", "x".repeat(2000))));
        }
        assert_eq!(inbox.messages.len(), 1);
        assert_eq!(inbox.messages[0].seq, 3);
        assert_eq!(inbox.evicted, 2);
    }

    #[test]
    fn source_serializes_as_a_word() {
        let addr: SocketAddr = "127.0.0.1:514".parse().unwrap();
        let json = serde_json::to_string(&[Source::Unix, Source::Udp(addr), Source::Kernel]);
        assert_eq!(json.unwrap(), r#"["unix","udp:127.0.0.1:514","kernel"]"#);
    }

    #[test]
    fn a_panicking_listener_is_dropped_and_reception_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 10).unwrap();
        receiver.set_listener(Box::new(|_| panic!("a listener with a bug")));
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"<30>first", &path).unwrap();
        receiver.wait_for(0, Duration::from_secs(2), |_| true);
        client.send_to(b"<30>second", &path).unwrap();
        let got = receiver.wait_for(0, Duration::from_secs(2), |m| m.seq == 2);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(receiver.is_running());
    }

    #[test]
    fn receiver_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Receiver>();
    }
}
