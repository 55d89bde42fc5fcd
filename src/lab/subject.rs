//! `__subject`: the live process that is stepped through the daemonization rules.
//!
//! It is single-threaded for its whole life, so a `fork()` here is as safe as in C.
//! It obeys one request at a time from the control channel and exits the moment that
//! channel reports end of file: if the lab dies, even by SIGKILL, the subject follows.

use std::io::{BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::{Resource, getrlimit};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{self, ForkResult};

use super::protocol::{self, Reply, Request, SelfIds, SignalStyle, SyslogState};
use super::step::StepId;
use crate::syslog::client::{Client, Delivery, option_names};
use crate::syslog::{self, Facility, Severity};

/// What the session stand-in passes on the subject's command line.
#[derive(Debug, Clone)]
pub struct SubjectArgs {
    /// Descriptor number of the control channel, inherited from the stand-in.
    pub control_fd: RawFd,
    /// Datagram socket of the lab's syslog receiver.
    pub syslog_socket: Option<PathBuf>,
    /// `openlog` ident.
    pub ident: String,
    /// Where LOG_CONS writes: the subject's pty in the lab (a real system uses /dev/console).
    pub console: Option<PathBuf>,
    /// Use the C library's syslog(3), which writes to /dev/log, instead of the lab's client.
    pub system_syslog: bool,
}

/// Why a step failed: the errno when a system call said no, and a sentence for people.
struct Failure {
    errno: Option<Errno>,
    message: String,
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Self {
        Failure {
            errno: Some(errno),
            message: describe_errno(errno),
        }
    }
}

/// `EPERM: Operation not permitted`, the way a learner would look it up.
pub fn describe_errno(errno: Errno) -> String {
    format!("{errno:?}: {}", errno.desc())
}

struct Subject {
    control: UnixStream,
    args: SubjectArgs,
    /// RLIMIT_NOFILE (soft, hard) once step 2 has asked for it.
    fd_limit: Option<(u64, u64)>,
    syslog: Option<Logger>,
    /// The pid-file lock once `already_running()` took it: held as long as this is open.
    lock: Option<crate::locks::Held>,
    /// Set once a sigwait thread runs: from then on a fork would copy one thread of two.
    threaded: bool,
    /// Read end of the self-pipe the SIGHUP/SIGTERM handlers write to (handler style).
    signal_pipe: Option<std::os::fd::OwnedFd>,
    /// The config file a 13.6-style daemon re-reads on SIGHUP.
    config: Option<PathBuf>,
}

/// The subject's syslog(3): the lab's client (shows every effect) or the C library's.
enum Logger {
    Lab(Client),
    /// libc keeps its own state; we remember what we told it.
    System {
        option: u32,
        mask: u8,
    },
}

/// Entry point of `daemonlab __subject`; never returns.
pub fn main(args: SubjectArgs) -> ! {
    // SAFETY: the stand-in put our end of the socketpair at exactly this number and
    // nothing else in this process owns it.
    let control = unsafe { UnixStream::from_raw_fd(args.control_fd) };
    super::signals::reset_all_to_default();
    let mut subject = Subject {
        control,
        args,
        fd_limit: None,
        syslog: None,
        lock: None,
        threaded: false,
        signal_pipe: None,
        config: None,
    };
    let hello = Reply::Hello {
        ids: SelfIds::now(),
    };
    if protocol::send(&subject.control, &hello).is_err() {
        std::process::exit(1);
    }
    print_line(&format!(
        "pid {}: started as a shell job",
        std::process::id()
    ));
    loop {
        subject.reap_helpers();
        subject.wait_for_request_or_signal();
        // A fresh reader per request: nothing is ever buffered across a fork.
        let request = {
            let mut reader = BufReader::with_capacity(256, &subject.control);
            protocol::receive::<Request>(&mut reader)
        };
        match request {
            Ok(Some(Request::Step { step })) => subject.run(step),
            Ok(Some(
                request @ (Request::Log { .. }
                | Request::SetLogMask { .. }
                | Request::Openlog { .. }
                | Request::Lock { .. }),
            )) => subject.syslog_request(request),
            Ok(Some(Request::Exit)) | Ok(None) => std::process::exit(0),
            Ok(Some(request)) => subject.experiment_request(request),
            Err(_) => std::process::exit(2),
        }
    }
}

/// Write one line to our stdout, whatever it is now (the pty, /dev/null, or closed).
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl SelfIds {
    /// The subject's own answers to getpid/getppid/getpgrp/getsid.
    pub fn now() -> SelfIds {
        SelfIds {
            pid: unistd::getpid().as_raw(),
            ppid: unistd::getppid().as_raw(),
            pgid: unistd::getpgrp().as_raw(),
            sid: unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(-1),
        }
    }
}

impl Subject {
    fn run(&mut self, step: StepId) {
        let result = match step {
            StepId::Start => Ok("running as a job of the shell stand-in".to_string()),
            StepId::Umask => Ok(self.umask()),
            StepId::Getrlimit => self.getrlimit(),
            StepId::Fork | StepId::SecondFork if self.threaded => Err(Failure {
                errno: None,
                message:
                    "refused: a sigwait thread runs now, and fork() would copy only the calling \
                          thread; fork before starting threads"
                        .into(),
            }),
            StepId::Fork | StepId::SecondFork => self.fork(step),
            StepId::Setsid => self.setsid(),
            StepId::IgnoreSighup => self.ignore_sighup(),
            StepId::Chdir => unistd::chdir("/")
                .map(|()| "cwd is now /".to_string())
                .map_err(Failure::from),
            StepId::CloseFds => self.close_fds(),
            StepId::DevNull => self.dev_null(),
            StepId::Openlog => self.openlog(),
        };
        let info = step.info();
        let pid = std::process::id();
        let reply = match result {
            Ok(detail) => {
                print_line(&format!(
                    "pid {pid}: [{} {}] {detail}",
                    info.index,
                    step.label()
                ));
                Reply::Done {
                    step,
                    ids: SelfIds::now(),
                    detail,
                }
            }
            Err(failure) => {
                print_line(&format!(
                    "pid {pid}: [{} {}] failed: {}",
                    info.index,
                    step.label(),
                    failure.message
                ));
                Reply::Failed {
                    step,
                    ids: SelfIds::now(),
                    errno: failure.errno.map(|e| e as i32),
                    message: failure.message,
                }
            }
        };
        if protocol::send(&self.control, &reply).is_err() {
            std::process::exit(1);
        }
    }

    fn umask(&self) -> String {
        let old = umask(Mode::empty());
        format!("umask was {:04o}, now 0000", old.bits())
    }

    fn getrlimit(&mut self) -> Result<String, Failure> {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        self.fd_limit = Some((soft, hard));
        Ok(format!(
            "RLIMIT_NOFILE soft {}, hard {}",
            show_limit(soft),
            show_limit(hard)
        ))
    }

    fn fork(&mut self, step: StepId) -> Result<String, Failure> {
        let parent = unistd::getpid();
        // SAFETY: the subject never starts a thread, so the child is a full copy of a
        // single-threaded process and may run any code, as after fork() in C.
        match unsafe { unistd::fork() }? {
            ForkResult::Parent { child } => {
                print_line(&format!(
                    "pid {parent}: fork() returned {child}; the parent exits"
                ));
                let forked = Reply::Forked {
                    step,
                    parent: parent.as_raw(),
                    child: child.as_raw(),
                };
                let _ = protocol::send(&self.control, &forked);
                std::process::exit(0);
            }
            ForkResult::Child => {
                // Report only once the kernel has handed us to an adopter, so the lab's
                // next look at /proc shows the orphan, not a parent on its way out.
                let deadline = Instant::now() + Duration::from_secs(2);
                while unistd::getppid() == parent && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(50));
                }
                Ok(format!(
                    "child of {parent}, which has exited; adopted by {}",
                    unistd::getppid()
                ))
            }
        }
    }

    fn setsid(&self) -> Result<String, Failure> {
        match unistd::setsid() {
            Ok(sid) => Ok(format!("new session {sid}, no controlling terminal")),
            Err(Errno::EPERM) if unistd::getpgrp() == unistd::getpid() => Err(Failure {
                errno: Some(Errno::EPERM),
                message: format!(
                    "{} — this process leads its process group (PGID = PID {}), and a group leader \
                     may not start a session; fork first",
                    describe_errno(Errno::EPERM),
                    unistd::getpid()
                ),
            }),
            Err(errno) => Err(errno.into()),
        }
    }

    fn ignore_sighup(&self) -> Result<String, Failure> {
        let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_IGN installs no handler code, so no signal-safety rule can be broken.
        let old = unsafe { sigaction(Signal::SIGHUP, &action) }?;
        let was = match old.handler() {
            SigHandler::SigDfl => "default",
            SigHandler::SigIgn => "ignored",
            _ => "caught",
        };
        Ok(format!("SIGHUP was {was}, now ignored"))
    }

    fn close_fds(&mut self) -> Result<String, Failure> {
        let (_, hard) = match self.fd_limit {
            Some(limit) => limit,
            None => getrlimit(Resource::RLIMIT_NOFILE)?,
        };
        // Like the book: an unlimited hard limit is capped at a guess of 1024.
        let limit = if hard == libc::RLIM_INFINITY {
            1024
        } else {
            hard
        };
        let keep = self.args.control_fd as u64;
        // Our syslog socket is about to be closed behind its owner's back: forget it
        // without closing, so a later reuse of the number is never closed by mistake.
        if let Some(Logger::Lab(client)) = self.syslog.as_mut() {
            client.forget_socket();
        }
        let last = limit.saturating_sub(1);
        let method = match close_range(0, keep.saturating_sub(1))
            .and_then(|()| close_range(keep + 1, last))
        {
            Ok(()) => "close_range(2)",
            Err(Errno::ENOSYS) | Err(Errno::EINVAL) => {
                for fd in (0..limit).filter(|&fd| fd != keep) {
                    // SAFETY: closing a number we do not own is the point of this rule;
                    // nothing in this single-threaded process uses those numbers afterwards.
                    unsafe { libc::close(fd as RawFd) };
                }
                "close() in a loop"
            }
            Err(e) => return Err(e.into()),
        };
        Ok(format!(
            "closed descriptors 0 to {last} except {keep} with {method} (limit {}); kept {keep}, the lab's own control \
             channel, on purpose (a real daemon closes everything; daemon(7)'s notification pipe comes after)",
            show_limit(hard)
        ))
    }

    fn dev_null(&mut self) -> Result<String, Failure> {
        let fd0 = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
        let fd1 = unistd::dup(&fd0)?;
        let fd2 = unistd::dup(&fd0)?;
        let got = [fd0, fd1, fd2].map(IntoRawFd::into_raw_fd);
        if got == [0, 1, 2] {
            return Ok("open(\"/dev/null\") gave 0, dup gave 1 and 2".to_string());
        }
        for fd in got {
            // SAFETY: these three descriptors were opened just above and are ours.
            unsafe { libc::close(fd) };
        }
        Err(Failure {
            errno: None,
            message: format!(
                "open and dup gave descriptors {}, {}, {} instead of 0, 1, 2: some of 0-2 were still open \
                 (close every descriptor first, step 8); closed them again",
                got[0], got[1], got[2]
            ),
        })
    }

    fn openlog(&mut self) -> Result<String, Failure> {
        self.open_logger(syslog::LOG_CONS, Facility::Daemon)?;
        let text = format!(
            "daemonized: pid {}, no controlling terminal expected",
            std::process::id()
        );
        let result = self.log(Severity::Info, &text)?;
        Ok(format!(
            "openlog(\"{}\", LOG_CONS, LOG_DAEMON); syslog(LOG_INFO, …): {result}",
            self.args.ident
        ))
    }

    /// `closelog()` then `openlog(ident, option, facility)`.
    fn open_logger(&mut self, option: u32, facility: Facility) -> Result<(), Failure> {
        if self.args.system_syslog {
            // libc keeps a pointer to the ident: it must live for the rest of the process.
            let ident: &'static std::ffi::CStr = Box::leak(
                std::ffi::CString::new(self.args.ident.clone())
                    .unwrap_or_default()
                    .into_boxed_c_str(),
            );
            nix::syslog::closelog();
            let flags = nix::syslog::LogFlags::from_bits_truncate(option as libc::c_int);
            nix::syslog::openlog(Some(ident), flags, system_facility(facility))?;
            let mask = match self.syslog.take() {
                Some(Logger::System { mask, .. }) => mask,
                _ => 0xff,
            };
            self.syslog = Some(Logger::System { option, mask });
            return Ok(());
        }
        let Some(path) = self.args.syslog_socket.clone() else {
            return Err(Failure {
                errno: None,
                message: "no syslog socket was given to the subject".into(),
            });
        };
        let mask = match self.syslog.take() {
            Some(Logger::Lab(mut old)) => {
                old.closelog();
                old.mask()
            }
            _ => 0xff,
        };
        let mut client = Client::openlog(
            &self.args.ident,
            option,
            facility,
            path,
            self.args.console.clone(),
        );
        client.setlogmask(mask);
        self.syslog = Some(Logger::Lab(client));
        Ok(())
    }

    /// `syslog(severity, text)`; says what became of the message.
    fn log(&mut self, severity: Severity, text: &str) -> Result<String, Failure> {
        if self.syslog.is_none() {
            // Like libc: syslog() before openlog() opens with defaults (no options, LOG_USER).
            self.open_logger(0, Facility::User)?;
        }
        let path = self.args.syslog_socket.clone().unwrap_or_default();
        match self.syslog.as_mut() {
            Some(Logger::Lab(client)) => match client.syslog(severity, text) {
                Ok(Delivery::Sent { bytes }) => {
                    Ok(format!("sent {bytes} bytes to {}", path.display()))
                }
                Ok(Delivery::Masked) => Ok("dropped by setlogmask: nothing was sent".to_string()),
                Ok(Delivery::Console { console, errno }) => Ok(format!(
                    "the log could not be reached ({}); LOG_CONS wrote it to the console — in the lab, the \
                     subject's terminal {console}",
                    describe_errno(Errno::from_raw(errno))
                )),
                Err(errno) => Err(Failure {
                    errno: Some(errno),
                    message: format!(
                        "syslog could not reach {}: {} — the message was not delivered",
                        path.display(),
                        describe_errno(errno)
                    ),
                }),
            },
            Some(Logger::System { mask, .. }) => {
                if *mask & crate::syslog::client::log_mask(severity) == 0 {
                    return Ok("dropped by setlogmask: nothing was sent".to_string());
                }
                // A bare severity, as C code writes `syslog(LOG_INFO, ...)`: libc adds the
                // facility given to openlog.
                let text = std::ffi::CString::new(text.replace('\0', " ")).unwrap_or_default();
                // SAFETY: a constant "%s" format with one NUL-terminated string argument.
                unsafe { libc::syslog(severity as libc::c_int, c"%s".as_ptr(), text.as_ptr()) };
                Ok("handed to the C library's syslog(3) for /dev/log; libc does not say whether it arrived".into())
            }
            None => Err(Failure {
                errno: None,
                message: "openlog did not happen".into(),
            }),
        }
    }

    fn syslog_request(&mut self, request: Request) {
        let result = match request {
            Request::Log {
                severity,
                message,
                errno,
            } => {
                if let Some(errno) = errno {
                    // Open first (as syslog() would), so nothing between here and the
                    // call can change errno.
                    if self.syslog.is_none() {
                        let _ = self.open_logger(0, Facility::User);
                    }
                    Errno::set_raw(errno);
                }
                self.log(severity, &message)
            }
            .map(|r| {
                format!(
                    "syslog(LOG_{}, \"{message}\"): {r}",
                    severity.name().to_uppercase()
                )
            }),
            Request::SetLogMask { mask } => Ok(self.set_log_mask(mask)),
            Request::Lock { path, kind } => self.take_lock(&path, kind),
            Request::Openlog { option, facility } => self.open_logger(option, facility).map(|()| {
                let socket = match self.syslog_state().and_then(|s| s.socket_fd) {
                    Some(fd) => format!("socket already open at fd {fd} (LOG_NDELAY)"),
                    None => "no socket until the first message".to_string(),
                };
                format!(
                    "closelog(); openlog(\"{}\", {}, LOG_{}): {socket}",
                    self.args.ident,
                    option_names(option),
                    facility.name().to_uppercase()
                )
            }),
            _ => return,
        };
        let pid = std::process::id();
        let reply = match result {
            Ok(detail) => {
                print_line(&format!("pid {pid}: {detail}"));
                Reply::Did {
                    ids: SelfIds::now(),
                    detail,
                    syslog: self.syslog_state(),
                    made: None,
                }
            }
            Err(failure) => {
                print_line(&format!("pid {pid}: failed: {}", failure.message));
                Reply::Refused {
                    ids: SelfIds::now(),
                    errno: failure.errno.map(|e| e as i32),
                    message: failure.message,
                }
            }
        };
        if protocol::send(&self.control, &reply).is_err() {
            std::process::exit(1);
        }
    }

    /// The book's `already_running()`: lock the pid file or learn who holds it.
    fn take_lock(
        &mut self,
        path: &std::path::Path,
        kind: crate::locks::LockKind,
    ) -> Result<String, Failure> {
        use crate::locks::{LockMode, Outcome, already_running};
        match already_running(path, kind, LockMode::Try) {
            Ok(Outcome::Acquired(held)) => {
                let fd = held.fd();
                self.lock = Some(held);
                Ok(format!(
                    "locked {} ({}) at fd {fd} and wrote our PID into it: a single-instance daemon",
                    path.display(),
                    kind.name()
                ))
            }
            Ok(Outcome::AlreadyRunning { holder }) => Err(Failure {
                errno: Some(Errno::EAGAIN),
                message: match holder {
                    Some(pid) => format!(
                        "already running: pid {pid} holds the lock on {}",
                        path.display()
                    ),
                    None => format!(
                        "already running: another process holds the lock on {}",
                        path.display()
                    ),
                },
            }),
            Err(e) => Err(Failure {
                errno: None,
                message: e.to_string(),
            }),
        }
    }

    fn set_log_mask(&mut self, mask: u8) -> String {
        if self.syslog.is_none() && self.open_logger(0, Facility::User).is_err() {
            return "no logger to mask".into();
        }
        let old = match self.syslog.as_mut() {
            Some(Logger::Lab(client)) => client.setlogmask(mask),
            Some(Logger::System { mask: current, .. }) => {
                let old = *current;
                *current = mask;
                // SAFETY: setlogmask only stores an int in libc's logging state.
                unsafe { libc::setlogmask(i32::from(mask)) };
                old
            }
            None => 0xff,
        };
        format!("setlogmask({}): was {}", mask_name(mask), mask_name(old))
    }

    fn syslog_state(&self) -> Option<SyslogState> {
        match self.syslog.as_ref()? {
            Logger::Lab(client) => Some(SyslogState {
                options: option_names(client.option()),
                mask: client.mask(),
                socket_fd: client.socket_fd(),
                stats: Some(client.stats()),
            }),
            Logger::System { option, mask } => Some(SyslogState {
                options: option_names(*option),
                mask: *mask,
                socket_fd: None,
                stats: None,
            }),
        }
    }
}

/// `LOG_UPTO(LOG_ERR)` and the like, for a mask value.
pub fn mask_name(mask: u8) -> String {
    match crate::syslog::SEVERITIES
        .iter()
        .find(|s| crate::syslog::client::log_upto(**s) == mask)
    {
        Some(s) => format!("LOG_UPTO(LOG_{})", s.name().to_uppercase()),
        None => format!("{mask:#04x}"),
    }
}

fn system_facility(facility: Facility) -> nix::syslog::Facility {
    use nix::syslog::Facility as F;
    match facility {
        Facility::User => F::LOG_USER,
        Facility::Local0 => F::LOG_LOCAL0,
        Facility::Local7 => F::LOG_LOCAL7,
        _ => F::LOG_DAEMON,
    }
}

fn show_limit(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

/// close_range(2) on an inclusive range; an empty range is a no-op.
fn close_range(first: u64, last: u64) -> Result<(), Errno> {
    if first > last || first > u32::MAX as u64 {
        return Ok(());
    }
    let last = last.min(u32::MAX as u64);
    // SAFETY: plain system call on descriptor numbers; see close_fds for why closing
    // numbers we do not own is intended here.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0,
        )
    };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// Descriptor the stopped group member's signal handlers append to.
static MEMBER_LOG_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
/// Write end of the self-pipe for the SIGHUP/SIGTERM handlers (handler style).
static SIGNAL_PIPE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The stopped member's handler: only write(2), which is async-signal-safe.
extern "C" fn note_member_signal(signal: libc::c_int) {
    let text: &[u8] = match signal {
        libc::SIGHUP => b"SIGHUP\n",
        libc::SIGCONT => b"SIGCONT\n",
        _ => b"other\n",
    };
    let fd = MEMBER_LOG_FD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) on a descriptor opened before the handler was installed; a failed
    // write is harmless here.
    unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
}

/// The 13.6 daemon's handler: one byte, the signal number, into the self-pipe; the real
/// work (re-reading, logging) happens outside the handler, in the main loop.
extern "C" fn note_daemon_signal(signal: libc::c_int) {
    let byte = signal as u8;
    let fd = SIGNAL_PIPE_FD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) of one byte to a non-blocking pipe we created; async-signal-safe.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Install `handler` for `signal` with `mask` blocked while it runs.
fn catch(signal: Signal, handler: extern "C" fn(libc::c_int), mask: SigSet) -> Result<(), Errno> {
    let action = SigAction::new(SigHandler::Handler(handler), SaFlags::SA_RESTART, mask);
    // SAFETY: the handlers above only call write(2), which is async-signal-safe.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

fn c_string(text: &str) -> Result<std::ffi::CString, Failure> {
    std::ffi::CString::new(text).map_err(|_| Failure {
        errno: None,
        message: format!("{text:?} contains a NUL byte"),
    })
}

fn disposition_name(handler: SigHandler) -> &'static str {
    match handler {
        SigHandler::SigDfl => "default",
        SigHandler::SigIgn => "ignored",
        _ => "caught",
    }
}

/// A syslog(3) connection for the sigwait thread, which must not share the main
/// thread's client.
struct ThreadLog {
    client: Option<Client>,
}

impl ThreadLog {
    fn open(args: &SubjectArgs) -> ThreadLog {
        let client = (!args.system_syslog).then(|| {
            Client::openlog(
                &args.ident,
                syslog::LOG_PID,
                Facility::Daemon,
                args.syslog_socket.clone().unwrap_or_default(),
                None,
            )
        });
        ThreadLog { client }
    }

    fn log(&mut self, text: &str) {
        match self.client.as_mut() {
            Some(client) => {
                let _ = client.syslog(Severity::Info, text);
            }
            None => {
                let text = std::ffi::CString::new(text.replace('\0', " ")).unwrap_or_default();
                // SAFETY: a constant "%s" format with one NUL-terminated string argument;
                // glibc's syslog(3) is thread-safe.
                unsafe {
                    libc::syslog(Severity::Info as libc::c_int, c"%s".as_ptr(), text.as_ptr())
                };
            }
        }
    }
}

/// The config file as one line, for the log: `key=value, key=value`.
fn read_config(path: &std::path::Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("cannot read {}: {e}", path.display()),
    }
}

impl Subject {
    /// Requests the "what if you skip this rule?" experiments use.
    fn experiment_request(&mut self, request: Request) {
        let result = match request {
            Request::OpenTty { path } => self.open_tty(&path),
            Request::Open {
                path,
                mode,
                cloexec,
            } => self.open_file(&path, mode, cloexec),
            Request::Mkdir { path, mode } => {
                unistd::mkdir(&path, Mode::from_bits_truncate(mode as libc::mode_t))
                    .map(|()| (format!("mkdir(\"{}\", {mode:04o})", path.display()), None))
                    .map_err(Failure::from)
            }
            Request::Print { text } => Ok((stray_print(&text), None)),
            Request::Chdir { path } => unistd::chdir(&path)
                .map(|()| (format!("cwd is now {}", path.display()), None))
                .map_err(Failure::from),
            Request::SetCloexec { fd, on } => set_cloexec(fd, on).map(|()| {
                let what = if on { "set" } else { "cleared" };
                (format!("FD_CLOEXEC {what} on fd {fd}"), None)
            }),
            Request::SpawnHelper { argv } => self.spawn_helper(&argv),
            Request::SpawnStoppedMember { log } => self.spawn_stopped_member(&log),
            Request::ServeConfig { config, style } => self.serve_config(config, style),
            Request::TryStdio => Ok((try_stdio(), None)),
            Request::Chroot { path } => unistd::chroot(&path)
                .and_then(|()| unistd::chdir("/"))
                .map(|()| {
                    (
                        format!("chroot(\"{}\") and chdir(\"/\") inside it", path.display()),
                        None,
                    )
                })
                .map_err(Failure::from),
            Request::Getlogin => Ok((getlogin(), None)),
            _ => Err(Failure {
                errno: None,
                message: "not an experiment request".into(),
            }),
        };
        let reply = match result {
            Ok((detail, made)) => {
                if self.still_has_terminal_output() {
                    print_line(&format!("pid {}: {detail}", std::process::id()));
                }
                Reply::Did {
                    ids: SelfIds::now(),
                    detail,
                    syslog: None,
                    made,
                }
            }
            Err(failure) => Reply::Refused {
                ids: SelfIds::now(),
                errno: failure.errno.map(|e| e as i32),
                message: failure.message,
            },
        };
        if protocol::send(&self.control, &reply).is_err() {
            std::process::exit(1);
        }
    }

    /// Whether fd 1 is still a terminal: once 0-2 are closed, a print would land in
    /// whatever file took number 1, and the experiments must not add to that by accident.
    fn still_has_terminal_output(&self) -> bool {
        // SAFETY: isatty only inspects descriptor 1, open or not.
        unsafe { libc::isatty(1) == 1 }
    }

    fn open_tty(&mut self, path: &std::path::Path) -> Result<(String, Option<i32>), Failure> {
        // No O_NOCTTY on purpose: that is the experiment.
        let fd = nix::fcntl::open(path, OFlag::O_RDWR, Mode::empty())?.into_raw_fd();
        // SAFETY: TIOCGPGRP stores the terminal's foreground group in an int we own; it
        // fails with ENOTTY unless `fd` is our controlling terminal.
        let mut pgrp: libc::pid_t = 0;
        let controlling = unsafe { libc::ioctl(fd, libc::TIOCGPGRP, &mut pgrp) } == 0;
        let what = if controlling {
            format!("it is now our controlling terminal (foreground group {pgrp})")
        } else {
            "it did not become our controlling terminal".to_string()
        };
        Ok((
            format!("open(\"{}\", O_RDWR) = fd {fd}; {what}", path.display()),
            Some(fd),
        ))
    }

    fn open_file(
        &mut self,
        path: &std::path::Path,
        mode: u32,
        cloexec: bool,
    ) -> Result<(String, Option<i32>), Failure> {
        let mut flags = OFlag::O_RDWR | OFlag::O_CREAT;
        if cloexec {
            flags |= OFlag::O_CLOEXEC;
        }
        let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(mode as libc::mode_t))?
            .into_raw_fd();
        let how = if cloexec { "|O_CLOEXEC" } else { "" };
        Ok((
            format!(
                "open(\"{}\", O_RDWR|O_CREAT{how}, {mode:04o}) = fd {fd}",
                path.display()
            ),
            Some(fd),
        ))
    }

    fn spawn_helper(&mut self, argv: &[String]) -> Result<(String, Option<i32>), Failure> {
        let args = argv
            .iter()
            .map(|a| c_string(a))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(program) = args.first() else {
            return Err(Failure {
                errno: None,
                message: "no helper program given".into(),
            });
        };
        let control = self.args.control_fd;
        if self.threaded {
            return Err(Failure {
                errno: None,
                message: "refused: a sigwait thread runs; fork before starting threads".into(),
            });
        }
        // SAFETY: the subject is single-threaded here (checked just above), so the child
        // may run any code; it only calls fcntl, execvp and _exit.
        match unsafe { unistd::fork() }? {
            ForkResult::Child => {
                // The control channel is the lab's machinery, not the daemon's: it must
                // not outlive the subject in the helper.
                let _ = set_cloexec(control, true);
                // Tie the helper to the daemon that made it: when the subject goes (and it
                // goes with the lab), the helper is killed too, even after a kill -9.
                // SAFETY: prctl with integer arguments only.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                let _ = unistd::execvp(program, &args);
                // SAFETY: the exec failed; leave without running the parent's exit code.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => Ok((
                format!("fork() and execvp({}) = helper pid {child}", argv.join(" ")),
                Some(child.as_raw()),
            )),
        }
    }

    fn spawn_stopped_member(
        &mut self,
        log: &std::path::Path,
    ) -> Result<(String, Option<i32>), Failure> {
        if self.threaded {
            return Err(Failure {
                errno: None,
                message: "refused: a sigwait thread runs; fork before starting threads".into(),
            });
        }
        let log_fd = nix::fcntl::open(
            log,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        let control = self.args.control_fd;
        // SAFETY: the subject is single-threaded, so the child is a full copy and may run
        // any code; it installs write-only handlers, stops, and later _exits.
        match unsafe { unistd::fork() }? {
            ForkResult::Child => {
                // The member keeps (but never reads) the subject's end of the control channel:
                // the lab's end closing is how it learns the lab is gone.
                MEMBER_LOG_FD.store(log_fd.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
                // Each handler blocks the other, so the log shows the delivery order
                // rather than one handler's frame stacked on top of the other's.
                let mut cont = SigSet::empty();
                cont.add(Signal::SIGCONT);
                let mut hup = SigSet::empty();
                hup.add(Signal::SIGHUP);
                let _ = catch(Signal::SIGHUP, note_member_signal, cont);
                let _ = catch(Signal::SIGCONT, note_member_signal, hup);
                let _ = nix::sys::signal::raise(Signal::SIGSTOP);
                // Continued: stay a little while so the lab can look, then go — at once if
                // the lab's end of the channel closes (the lab died), without reading it.
                // SAFETY: `control` is open in this process for as long as this call runs.
                let channel = unsafe { std::os::fd::BorrowedFd::borrow_raw(control) };
                let mut fds = [nix::poll::PollFd::new(
                    channel,
                    nix::poll::PollFlags::from_bits_retain(libc::POLLRDHUP),
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(3000u16));
                // SAFETY: leave without running the subject's exit paths in this copy.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(log_fd);
                let status =
                    nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WUNTRACED))?;
                Ok((
                    format!(
                        "forked {child} into our process group {}; it catches SIGHUP and SIGCONT and stopped itself: {status:?}",
                        unistd::getpgrp()
                    ),
                    Some(child.as_raw()),
                ))
            }
        }
    }

    /// Collect helpers and members that have exited, as any parent should.
    fn reap_helpers(&self) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if matches!(status, WaitStatus::StillAlive) {
                break;
            }
        }
    }

    fn serve_config(
        &mut self,
        config: PathBuf,
        style: SignalStyle,
    ) -> Result<(String, Option<i32>), Failure> {
        let first = read_config(&config);
        let hup_was = {
            let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            // SAFETY: installs SIG_DFL, no handler code.
            let old = unsafe { sigaction(Signal::SIGHUP, &default) }?;
            disposition_name(old.handler())
        };
        let mut both = SigSet::empty();
        both.add(Signal::SIGHUP);
        both.add(Signal::SIGTERM);
        let how = match style {
            SignalStyle::SigwaitThread => {
                both.thread_block()?;
                let args = self.args.clone();
                let path = config.clone();
                std::thread::Builder::new()
                    .name("sigwait".into())
                    .spawn(move || sigwait_loop(both, args, path))
                    .map_err(|e| Failure {
                        errno: e.raw_os_error().map(Errno::from_raw),
                        message: format!("cannot start the sigwait thread: {e}"),
                    })?;
                self.threaded = true;
                "SIGHUP and SIGTERM blocked; a thread takes them with sigwait() (started after the last fork: \
                 the subject refuses to fork from now on)"
            }
            SignalStyle::Handlers => {
                let (read, write) = unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
                SIGNAL_PIPE_FD.store(write.into_raw_fd(), std::sync::atomic::Ordering::Relaxed);
                self.signal_pipe = Some(read);
                let mut only_term = SigSet::empty();
                only_term.add(Signal::SIGTERM);
                let mut only_hup = SigSet::empty();
                only_hup.add(Signal::SIGHUP);
                catch(Signal::SIGHUP, note_daemon_signal, only_term)?;
                catch(Signal::SIGTERM, note_daemon_signal, only_hup)?;
                "sigaction handlers for SIGHUP (blocking SIGTERM) and SIGTERM (blocking SIGHUP); they write to \
                 a self-pipe and the main loop does the work"
            }
        };
        self.config = Some(config.clone());
        let text = format!("read {}: {first}", config.display());
        let logged = self.log(Severity::Info, &text)?;
        Ok((
            format!("SIGHUP was {hup_was}, set to default first; {how}; syslog: {logged}"),
            None,
        ))
    }

    /// Block until a request arrives; with the handler style, also act on SIGHUP and
    /// SIGTERM as they come.
    fn wait_for_request_or_signal(&mut self) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let Some(pipe) = self.signal_pipe.as_ref().map(|p| p.as_raw_fd()) else {
            return;
        };
        loop {
            // SAFETY: the pipe's read end lives in self.signal_pipe for the whole loop.
            let pipe_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(pipe) };
            let mut fds = [
                PollFd::new(self.control.as_fd(), PollFlags::POLLIN),
                PollFd::new(pipe_fd, PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
            let signalled = fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
            let request = fds[0].revents().is_some_and(|r| !r.is_empty());
            if signalled {
                let mut bytes = [0u8; 16];
                let n = unistd::read(pipe_fd, &mut bytes).unwrap_or(0);
                for &signal in &bytes[..n] {
                    self.on_daemon_signal(i32::from(signal));
                }
            }
            if request {
                return;
            }
        }
    }

    fn on_daemon_signal(&mut self, signal: i32) {
        let config = self.config.clone().unwrap_or_default();
        if signal == libc::SIGTERM {
            let _ = self.log(Severity::Info, "got SIGTERM; exiting");
            std::process::exit(0);
        }
        let text = format!(
            "re-reading configuration file {}: {}",
            config.display(),
            read_config(&config)
        );
        let _ = self.log(Severity::Info, &text);
    }
}

/// The sigwait thread of APUE figure 13.7.
fn sigwait_loop(set: SigSet, args: SubjectArgs, config: PathBuf) {
    let mut log = ThreadLog::open(&args);
    loop {
        match set.wait() {
            Ok(Signal::SIGHUP) => log.log(&format!(
                "re-reading configuration file {}: {}",
                config.display(),
                read_config(&config)
            )),
            Ok(Signal::SIGTERM) => {
                log.log("got SIGTERM; exiting");
                std::process::exit(0);
            }
            Ok(other) => log.log(&format!("unexpected signal {other}")),
            Err(_) => return,
        }
    }
}

/// A stray `printf` to stdout: write(2) on descriptor 1, whatever it is now.
/// getlogin(3)'s answer, or its errno, in words.
fn getlogin() -> String {
    Errno::clear();
    // SAFETY: getlogin returns NULL or a pointer to a static NUL-terminated name, which we
    // copy at once; this process is single-threaded here.
    let name = unsafe { libc::getlogin() };
    if name.is_null() {
        format!(
            "getlogin() returned NULL: {}",
            describe_errno(Errno::last())
        )
    } else {
        // SAFETY: non-NULL, so a valid C string owned by the C library.
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        format!("getlogin() returned \"{}\"", name.to_string_lossy())
    }
}

/// A read from 0 (only if poll says it would not wait) and a write to 1, in the words of
/// their results. On a hung-up terminal: EOF and EIO.
fn try_stdio() -> String {
    let mut fds = [libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: poll on one pollfd we own, without waiting.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    let read = if ready < 0 {
        format!("poll failed: {}", describe_errno(Errno::last()))
    } else if fds[0].revents & libc::POLLNVAL != 0 {
        "EBADF (fd 0 is closed)".to_string()
    } else if ready == 0 {
        "nothing to read yet (it would wait for input)".to_string()
    } else {
        let mut byte = [0u8; 1];
        // SAFETY: read(2) of at most one byte into a buffer we own.
        match unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) } {
            0 => "EOF (0 bytes)".to_string(),
            n if n > 0 => format!("{n} byte read"),
            _ => describe_errno(Errno::last()),
        }
    };
    let line = b"daemonlab subject: a stray write to fd 1\n";
    // SAFETY: write(2) on descriptor number 1, open or not.
    let n = unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
    let write = if n < 0 {
        describe_errno(Errno::last())
    } else {
        format!("wrote {n} bytes")
    };
    format!("read(0): {read}; write(1): {write}")
}

fn stray_print(text: &str) -> String {
    let line = format!("{text}\n");
    // SAFETY: write(2) on descriptor number 1, open or not; EBADF when it is closed.
    let n = unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
    if n < 0 {
        format!("write(1, …) failed: {}", describe_errno(Errno::last()))
    } else {
        format!("write(1, \"{text}\\n\") wrote {n} bytes to whatever fd 1 is")
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> Result<(), Failure> {
    // SAFETY: F_GETFD/F_SETFD only read and change one flag of descriptor `fd`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Errno::last().into());
    }
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, new) } < 0 {
        return Err(Errno::last().into());
    }
    Ok(())
}
