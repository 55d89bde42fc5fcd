//! `__session --trace`: the shell stand-in, tracing its job. It is the job's parent (so the
//! program's step 0 is a job typed at a prompt) and its tracer, and it stays one thread:
//! ptrace belongs to the thread that attached, and this process forks.
//!
//! Descriptors on entry: 0 = commands from the front-end, 1 = reports to it (both a
//! stream socket; EOF means the front-end has gone, and then so do we — PTRACE_O_EXITKILL
//! takes every tracee with us), 2 = the pty slave.
//!
//! The program runs under a seccomp-bpf filter (see `filter`): only the calls the rules
//! are about stop it. At a stop (PTRACE_EVENT_SECCOMP, before the call) the tracer reads
//! the arguments, lets the call run to its exit (PTRACE_SYSCALL), reports it and waits for
//! `Resume`, then lets the program run freely (PTRACE_CONT).

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{self, ForkResult, Pid};

use super::filter;
use super::protocol::{Call, Extra, TracerCommand, TracerMessage};
use crate::lab::protocol as wire;
use crate::lab::session::{become_shell, borrow, set};

/// Arguments of `daemonlab __session --trace`.
#[derive(Debug, Clone)]
pub struct TracerArgs {
    pub pty: PathBuf,
    /// The program, as an absolute path (resolved by the front-end), and its argv.
    pub program: PathBuf,
    pub argv: Vec<String>,
    /// Install the seccomp filter (false: PTRACE_SYSCALL on every call, asked for).
    pub filter: bool,
}

/// Entry point; returns the exit status.
pub fn main(args: TracerArgs) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("daemonlab tracer: {message}");
            1
        }
    }
}

static CHLD_PIPE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
static HUP_PIPE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn note_chld(_: libc::c_int) {
    let fd = CHLD_PIPE_FD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) of one byte to our non-blocking pipe; async-signal-safe.
    unsafe { libc::write(fd, b"c".as_ptr().cast(), 1) };
}

extern "C" fn note_hup(_: libc::c_int) {
    let fd = HUP_PIPE_FD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as above.
    unsafe { libc::write(fd, b"h".as_ptr().cast(), 1) };
}

/// A self-pipe whose write end a signal handler writes to.
fn self_pipe(slot: &std::sync::atomic::AtomicI32) -> Result<OwnedFd, String> {
    let (r, w) =
        unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| format!("pipe: {e}"))?;
    slot.store(
        std::os::fd::IntoRawFd::into_raw_fd(w),
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(r)
}

fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    while matches!(unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

const OPTIONS: Options = Options::PTRACE_O_TRACESYSGOOD
    .union(Options::PTRACE_O_TRACEFORK)
    .union(Options::PTRACE_O_TRACEVFORK)
    .union(Options::PTRACE_O_TRACECLONE)
    .union(Options::PTRACE_O_TRACEEXEC)
    .union(Options::PTRACE_O_TRACEEXIT)
    .union(Options::PTRACE_O_TRACESECCOMP)
    .union(Options::PTRACE_O_EXITKILL);

fn run(args: TracerArgs) -> Result<(), String> {
    let commands = fcntl(borrow(0), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| format!("moving the command channel: {e}"))?;
    let reports = fcntl(borrow(1), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| format!("moving the report channel: {e}"))?;
    // SAFETY: fresh descriptors from F_DUPFD_CLOEXEC; we are their only owner.
    let (commands, reports) = unsafe {
        (
            UnixStream::from_raw_fd(commands),
            UnixStream::from_raw_fd(reports),
        )
    };
    become_shell(&args.pty)?;

    let mut watches = filter::WATCHED.to_vec();
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        watches.push(filter::NOTIFY);
    }
    let resolved = filter::resolve(&watches);
    let program = filter::program(&resolved);
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    let exe = CString::new(args.program.as_os_str().as_encoded_bytes())
        .map_err(|_| "the program's path holds a NUL byte".to_string())?;
    let argv: Vec<CString> = args
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| "an argument holds a NUL byte".to_string())?;
    let use_filter = args.filter;
    let (go_read, go_write) = unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (say_read, say_write) =
        unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;

    // SAFETY: one thread. Between fork and exec the child makes only async-signal-safe
    // calls (setpgid, read, sigaction, prctl, seccomp, write, raise, execv, _exit) on data
    // prepared before the fork.
    let job = match unsafe { unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let _ = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let mut byte = [0u8];
            let _ = unistd::read(&go_read, &mut byte);
            for signal in [Signal::SIGTTOU, Signal::SIGTTIN, Signal::SIGTSTP] {
                set(signal, SigHandler::SigDfl);
            }
            let install = || {
                // SAFETY: seccomp(2) with a filter program that lives until exec copies it.
                unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        1, // SECCOMP_SET_MODE_FILTER
                        0,
                        &fprog as *const libc::sock_fprog,
                    )
                }
            };
            let mut rc = if filter::SUPPORTED && use_filter {
                install()
            } else {
                -1
            };
            if use_filter && rc != 0 && Errno::last() == Errno::EACCES {
                // Without CAP_SYS_ADMIN the kernel asks for no_new_privs first. Under
                // ptrace a set-user-ID program gains nothing anyway.
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                rc = install();
            }
            if rc == 0 {
                let _ = unistd::write(&say_write, b"S");
            } else {
                let _ = unistd::write(&say_write, b"P");
                // Stop so the tracer can switch us to PTRACE_SYSCALL before the exec.
                let _ = nix::sys::signal::raise(Signal::SIGSTOP);
            }
            let _ = unistd::execv(&exe, &argv);
            let errno = Errno::last_raw();
            let _ = unistd::write(&say_write, &errno.to_ne_bytes());
            // SAFETY: _exit is async-signal-safe; the exec failed and this copy must go.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((go_read, say_write));
    let _ = unistd::setpgid(job, job);
    unistd::tcsetpgrp(borrow(0), job).map_err(|e| format!("tcsetpgrp: {e}"))?;
    let chld = self_pipe(&CHLD_PIPE_FD)?;
    set(Signal::SIGCHLD, SigHandler::Handler(note_chld));
    let hup = self_pipe(&HUP_PIPE_FD)?;
    set(Signal::SIGHUP, SigHandler::Handler(note_hup));
    ptrace::seize(job, OPTIONS)
        .map_err(|e| format!("ptrace refused ({e}): {}", super::ptrace_refusal_hint()))?;
    unistd::write(&go_write, b"g").map_err(|e| format!("waking the job: {e}"))?;
    drop(go_write);
    let mut mode = [0u8];
    let seccomp = matches!((&say_read_file(&say_read)).read(&mut mode), Ok(1) if mode[0] == b'S');
    let note = match (seccomp, args.filter) {
        (true, _) => None,
        (false, true) => Some(
            "the kernel refused the seccomp filter, so every system call stops the program \
             (PTRACE_SYSCALL): it runs much slower than untraced"
                .to_string(),
        ),
        (false, false) => Some(
            "no seccomp filter, as asked (--no-filter): every system call stops the program \
             (PTRACE_SYSCALL), so it runs much slower than untraced"
                .to_string(),
        ),
    };

    let mut tracer = Tracer {
        reports,
        commands: BufReader::new(commands),
        tracees: HashMap::new(),
        job,
        seccomp,
        resolved,
        keeping: false,
        held: HashMap::new(),
        last_busy: std::time::Instant::now(),
    };
    tracer.tracees.insert(job.as_raw(), Tracee::default());
    tracer.send(&TracerMessage::Started {
        session: unistd::getpid().as_raw(),
        job: job.as_raw(),
        tty: args.pty.display().to_string(),
        seccomp,
        note,
    })?;
    tracer.serve(&chld, &hup, say_read)
}

/// A `Read` view of the child's report pipe.
fn say_read_file(fd: &OwnedFd) -> std::fs::File {
    std::fs::File::from(fd.try_clone().expect("dup of a pipe"))
}

#[derive(Default)]
struct Tracee {
    /// Seen its first stop (a new child starts with PTRACE_EVENT_STOP).
    started: bool,
    /// Between a watched call's entry and its exit.
    pending: Option<Entry>,
    /// Stopped at its first stop, waiting for its parent's fork event.
    parked: bool,
}

/// How a held tracee goes on when the front-end resumes it.
enum After {
    /// From a watched call's exit: run on.
    GoOn,
    /// From its exit stop: let it exit.
    Cont,
    /// From its fork event: the parent returns from fork; a child parked at its first
    /// stop starts too.
    Forked { parked_child: Option<i32> },
}

struct Entry {
    nr: i64,
    args: [u64; 6],
    extra: Extra,
}

struct Tracer {
    reports: UnixStream,
    commands: BufReader<UnixStream>,
    tracees: HashMap<i32, Tracee>,
    job: Pid,
    seccomp: bool,
    resolved: Vec<(syscalls::Sysno, filter::When)>,
    /// After `Keep`: no more reports, and the front-end's going does not end us.
    keeping: bool,
    /// Tracees stopped until the front-end resumes them.
    held: HashMap<i32, After>,
    /// When the last `Busy` went out.
    last_busy: std::time::Instant,
}

/// Why the loop ended.
enum End {
    FrontEndGone,
}

impl Tracer {
    fn send(&mut self, message: &TracerMessage) -> Result<(), String> {
        if self.keeping {
            return Ok(());
        }
        wire::send(&mut self.reports, message).map_err(|e| format!("report channel: {e}"))
    }

    /// Keep `pid` stopped until the front-end's `Resume` for it (at once after `Keep`).
    /// Other tracees carry on meanwhile: a parent can exit while its child is held.
    fn hold(&mut self, pid: Pid, after: After) {
        if self.keeping {
            self.release(pid, after);
        } else {
            self.held.insert(pid.as_raw(), after);
        }
    }

    fn release(&mut self, pid: Pid, after: After) {
        match after {
            After::GoOn => self.go_on(pid, None),
            After::Cont => {
                let _ = ptrace::cont(pid, None);
            }
            After::Forked { parked_child } => {
                if let Some(child) = parked_child {
                    if let Some(t) = self.tracees.get_mut(&child) {
                        t.parked = false;
                    }
                    self.go_on(Pid::from_raw(child), None);
                }
                self.go_on(pid, None);
            }
        }
    }

    /// Act on what the front-end said; Err when it has gone.
    fn read_commands(&mut self) -> Result<(), End> {
        loop {
            let mut line = String::new();
            match self.commands.read_line(&mut line) {
                Ok(0) | Err(_) => return Err(End::FrontEndGone),
                Ok(_) => match serde_json::from_str::<TracerCommand>(line.trim()) {
                    Ok(TracerCommand::Resume { pid }) => {
                        if let Some(after) = self.held.remove(&pid) {
                            self.release(Pid::from_raw(pid), after);
                        }
                    }
                    Ok(TracerCommand::Keep) => {
                        self.keeping = true;
                        for (pid, after) in std::mem::take(&mut self.held) {
                            self.release(Pid::from_raw(pid), after);
                        }
                    }
                    Err(_) => {}
                },
            }
            if self.commands.buffer().is_empty() {
                return Ok(());
            }
        }
    }

    fn serve(&mut self, chld: &OwnedFd, hup: &OwnedFd, say: OwnedFd) -> Result<(), String> {
        let mut say = Some(say);
        loop {
            if self.keeping && self.tracees.is_empty() {
                return Ok(());
            }
            let commands_fd = self
                .commands
                .get_ref()
                .try_clone()
                .map_err(|e| e.to_string())?;
            let mut fds = vec![
                PollFd::new(chld.as_fd(), PollFlags::POLLIN),
                PollFd::new(hup.as_fd(), PollFlags::POLLIN),
            ];
            if !self.keeping {
                fds.push(PollFd::new(commands_fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(s) = &say {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            let ready = |i: usize| fds.get(i).and_then(|f| f.any()).unwrap_or(false);
            let (hup_ready, cmd_ready) = (ready(1), !self.keeping && ready(2));
            let say_ready = say.is_some() && ready(if self.keeping { 2 } else { 3 });
            drop(fds);
            if hup_ready {
                drain(hup);
                if !self.keeping {
                    // The terminal hung up: a shell would leave. Its job's descendants
                    // are the lab's; they go with us (EXITKILL).
                    return Ok(());
                }
            }
            if say_ready {
                let mut errno = [0u8; 4];
                let got = (&say_read_file(say.as_ref().unwrap())).read(&mut errno);
                if let Ok(4) = got {
                    let e = Errno::from_raw(i32::from_ne_bytes(errno));
                    let message = format!("cannot execute the program: {e}");
                    let _ = self.send(&TracerMessage::Failed { message });
                }
                say = None;
            }
            if cmd_ready && self.read_commands().is_err() {
                return Ok(());
            }
            drain(chld);
            loop {
                let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
                match waitpid(None::<Pid>, Some(flags)) {
                    Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(format!("waitpid: {e}")),
                    Ok(status) => {
                        if let Err(End::FrontEndGone) = self.handle(status) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Let `pid` run on: freely under seccomp, to its next call otherwise (or when a
    /// watched call is still to return).
    fn go_on(&self, pid: Pid, signal: Option<Signal>) {
        let in_call = self
            .tracees
            .get(&pid.as_raw())
            .is_some_and(|t| t.pending.is_some());
        let _ = if self.seccomp && !in_call {
            ptrace::cont(pid, signal)
        } else {
            ptrace::syscall(pid, signal)
        };
    }

    fn handle(&mut self, status: WaitStatus) -> Result<(), End> {
        match status {
            WaitStatus::PtraceEvent(pid, _, event) => self.event(pid, event),
            WaitStatus::PtraceSyscall(pid) => self.syscall_stop(pid),
            WaitStatus::Stopped(pid, signal) => {
                let tracee = self.tracees.entry(pid.as_raw()).or_default();
                if !tracee.started && pid == self.job && signal == Signal::SIGSTOP {
                    // The job's own stop before exec in PTRACE_SYSCALL mode: swallow it.
                    tracee.started = true;
                    let _ = ptrace::syscall(pid, None);
                } else {
                    tracee.started = true;
                    self.go_on(pid, Some(signal));
                }
                Ok(())
            }
            WaitStatus::Exited(pid, code) => {
                self.gone(pid, format!("exited with status {code}"));
                Ok(())
            }
            WaitStatus::Signaled(pid, signal, _) => {
                self.gone(pid, format!("killed by {signal}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn gone(&mut self, pid: Pid, status: String) {
        self.tracees.remove(&pid.as_raw());
        if pid == self.job {
            // The job ended: a shell takes its terminal back.
            let _ = unistd::tcsetpgrp(borrow(0), unistd::getpgrp());
        }
        let _ = self.send(&TracerMessage::Exited {
            pid: pid.as_raw(),
            status,
        });
    }

    fn event(&mut self, pid: Pid, event: i32) -> Result<(), End> {
        match event {
            libc::PTRACE_EVENT_SECCOMP => {
                if let Some(info) = syscall_info(pid) {
                    let extra = read_entry_extra(pid, info.nr, &info.args);
                    self.tracees.entry(pid.as_raw()).or_default().pending = Some(Entry {
                        nr: info.nr,
                        args: info.args,
                        extra,
                    });
                }
                let _ = ptrace::syscall(pid, None);
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = ptrace::getevent(pid) {
                    let child = child as i32;
                    // The child may have reported its first stop already; it was parked
                    // there so that nothing it does is seen before its own fork.
                    let parked = self.tracees.get(&child).is_some_and(|t| t.parked);
                    self.tracees.entry(child).or_default();
                    let thread = event == libc::PTRACE_EVENT_CLONE && is_thread(child);
                    let how = match event {
                        libc::PTRACE_EVENT_FORK => "fork",
                        libc::PTRACE_EVENT_VFORK => "vfork",
                        _ => "clone",
                    };
                    let message = TracerMessage::Forked {
                        pid: pid.as_raw(),
                        child,
                        thread,
                        how: how.into(),
                    };
                    if self.send(&message).is_err() {
                        return Err(End::FrontEndGone);
                    }
                    let after = After::Forked {
                        parked_child: parked.then_some(child),
                    };
                    if thread {
                        self.release(pid, after);
                    } else {
                        // Held: the front-end looks at the new child before it moves.
                        self.hold(pid, after);
                    }
                } else {
                    self.go_on(pid, None);
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                let path = std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let message = TracerMessage::Exec {
                    pid: pid.as_raw(),
                    path,
                };
                if self.send(&message).is_err() {
                    return Err(End::FrontEndGone);
                }
                self.go_on(pid, None);
            }
            libc::PTRACE_EVENT_EXIT => {
                let raw = ptrace::getevent(pid).unwrap_or(0) as i32;
                let status = describe_wait(raw);
                let message = TracerMessage::Exiting {
                    pid: pid.as_raw(),
                    status,
                };
                if self.send(&message).is_err() {
                    return Err(End::FrontEndGone);
                }
                self.hold(pid, After::Cont);
            }
            libc::PTRACE_EVENT_STOP => {
                let known = self.tracees.contains_key(&pid.as_raw());
                let tracee = self.tracees.entry(pid.as_raw()).or_default();
                if !known {
                    // A new child whose parent's fork event is still to come: park it.
                    tracee.started = true;
                    tracee.parked = true;
                } else if tracee.started {
                    // A group-stop (SIGSTOP, SIGTSTP…): stay stopped, as untraced.
                    // SAFETY: PTRACE_LISTEN takes no data.
                    unsafe {
                        libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0);
                    }
                } else {
                    tracee.started = true;
                    self.go_on(pid, None);
                }
            }
            _ => self.go_on(pid, None),
        }
        Ok(())
    }

    fn syscall_stop(&mut self, pid: Pid) -> Result<(), End> {
        let Some(info) = syscall_info(pid) else {
            self.go_on(pid, None);
            return Ok(());
        };
        match info.op {
            OP_ENTRY => {
                // PTRACE_SYSCALL mode: every call stops at entry; keep the watched ones.
                if filter::wants(&self.resolved, info.nr, &info.args) {
                    let extra = read_entry_extra(pid, info.nr, &info.args);
                    self.tracees.entry(pid.as_raw()).or_default().pending = Some(Entry {
                        nr: info.nr,
                        args: info.args,
                        extra,
                    });
                } else {
                    self.tracees.entry(pid.as_raw()).or_default().pending = None;
                    if self.last_busy.elapsed() >= std::time::Duration::from_millis(100) {
                        self.last_busy = std::time::Instant::now();
                        if self
                            .send(&TracerMessage::Busy { pid: pid.as_raw() })
                            .is_err()
                        {
                            return Err(End::FrontEndGone);
                        }
                    }
                }
                let _ = ptrace::syscall(pid, None);
                Ok(())
            }
            OP_EXIT => {
                let entry = self
                    .tracees
                    .get_mut(&pid.as_raw())
                    .and_then(|t| t.pending.take());
                let Some(mut entry) = entry else {
                    self.go_on(pid, None);
                    return Ok(());
                };
                let (result, errno) = if info.is_error {
                    (-1, Some(-info.rval as i32))
                } else {
                    (info.rval, None)
                };
                read_exit_extra(pid, entry.nr, &entry.args, result, &mut entry.extra);
                let name = syscalls::Sysno::new(entry.nr as usize)
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| format!("syscall {}", entry.nr));
                let held =
                    !(entry.nr == syscalls::Sysno::close.id() as i64 && errno == Some(libc::EBADF));
                let call = Call {
                    pid: pid.as_raw(),
                    nr: entry.nr,
                    name,
                    args: entry.args,
                    result,
                    errno,
                    extra: entry.extra,
                    held,
                };
                if self.send(&TracerMessage::Call(call)).is_err() {
                    return Err(End::FrontEndGone);
                }
                if held {
                    self.hold(pid, After::GoOn);
                } else {
                    self.go_on(pid, None);
                }
                Ok(())
            }
            _ => {
                self.go_on(pid, None);
                Ok(())
            }
        }
    }
}

fn is_thread(tid: i32) -> bool {
    crate::audit::proc_extra_tgid(tid).is_some_and(|tgid| tgid != tid)
}

fn describe_wait(raw: i32) -> String {
    if libc::WIFSIGNALED(raw) {
        match Signal::try_from(libc::WTERMSIG(raw)) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {}", libc::WTERMSIG(raw)),
        }
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(raw))
    }
}

const OP_ENTRY: u8 = 1;
const OP_EXIT: u8 = 2;
const OP_SECCOMP: u8 = 3;

/// struct ptrace_syscall_info (linux/ptrace.h), as PTRACE_GET_SYSCALL_INFO fills it.
#[repr(C)]
#[derive(Default)]
struct RawInfo {
    op: u8,
    pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    /// The union: entry {nr, args[6]}, exit {rval, is_error}, seccomp {nr, args[6], ret_data}.
    data: [u64; 8],
}

struct Info {
    op: u8,
    nr: i64,
    args: [u64; 6],
    rval: i64,
    is_error: bool,
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;

/// The kernel's account of the stop (Linux 5.3+), the same on every architecture.
fn syscall_info(pid: Pid) -> Option<Info> {
    let mut raw = RawInfo::default();
    // SAFETY: the kernel writes at most the size we pass into `raw`.
    let n = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            std::mem::size_of::<RawInfo>(),
            &mut raw as *mut RawInfo,
        )
    };
    if n <= 0 {
        return None;
    }
    let args = [
        raw.data[1],
        raw.data[2],
        raw.data[3],
        raw.data[4],
        raw.data[5],
        raw.data[6],
    ];
    Some(match raw.op {
        OP_ENTRY | OP_SECCOMP => Info {
            op: if raw.op == OP_SECCOMP {
                OP_SECCOMP
            } else {
                OP_ENTRY
            },
            nr: raw.data[0] as i64,
            args,
            rval: 0,
            is_error: false,
        },
        OP_EXIT => Info {
            op: OP_EXIT,
            nr: -1,
            args: [0; 6],
            rval: raw.data[0] as i64,
            is_error: raw.data[1] & 0xff != 0,
        },
        op => Info {
            op,
            nr: -1,
            args: [0; 6],
            rval: 0,
            is_error: false,
        },
    })
}

/// Bytes of the tracee's memory, a word at a time (PTRACE_PEEKDATA needs no permission
/// beyond being the tracer, unlike process_vm_readv under Yama).
fn peek(pid: Pid, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let word = std::mem::size_of::<libc::c_long>();
    let mut out = Vec::with_capacity(len + word);
    let mut at = addr;
    while out.len() < len {
        let value = ptrace::read(pid, at as ptrace::AddressType).ok()?;
        out.extend_from_slice(&value.to_ne_bytes());
        at += word as u64;
    }
    out.truncate(len);
    Some(out)
}

/// A NUL-terminated string of the tracee's, up to 4096 bytes.
fn peek_string(pid: Pid, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let word = std::mem::size_of::<libc::c_long>();
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let value = ptrace::read(pid, at as ptrace::AddressType).ok()?;
        let bytes = value.to_ne_bytes();
        if let Some(end) = bytes.iter().position(|&b| b == 0) {
            out.extend_from_slice(&bytes[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&bytes);
        at += word as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn peek_u64(pid: Pid, addr: u64) -> Option<u64> {
    peek(pid, addr, 8).map(|b| u64::from_ne_bytes(b[..8].try_into().unwrap()))
}

/// A socket address in words: a Unix path, `@name` for the abstract namespace.
fn peek_sockaddr(pid: Pid, addr: u64, len: u64) -> Option<String> {
    let len = (len as usize).min(128);
    if len < 2 {
        return None;
    }
    let bytes = peek(pid, addr, len)?;
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]) as i32;
    if family != libc::AF_UNIX {
        return Some(format!("family {family}"));
    }
    let path = &bytes[2..];
    if path.first() == Some(&0) {
        let name: Vec<u8> = path[1..].to_vec();
        return Some(format!("@{}", String::from_utf8_lossy(&name)));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Some(String::from_utf8_lossy(&path[..end]).into_owned())
}

/// What descriptor `fd` of `pid` is, before the call changes it.
fn fd_path(pid: Pid, fd: u64) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{}", fd as i32))
        .ok()
        .map(|p| p.display().to_string())
}

fn name_of(nr: i64) -> &'static str {
    syscalls::Sysno::new(nr as usize)
        .map(|s| s.name())
        .unwrap_or("")
}

/// What lies behind a call's pointers, read before the call runs (execve's memory is gone
/// after it).
fn read_entry_extra(pid: Pid, nr: i64, a: &[u64; 6]) -> Extra {
    let mut x = Extra::default();
    match name_of(nr) {
        "open" | "creat" | "chdir" | "chroot" | "execve" => x.path = peek_string(pid, a[0]),
        "openat" | "openat2" | "execveat" => x.path = peek_string(pid, a[1]),
        "connect" => x.addr = peek_sockaddr(pid, a[1], a[2]),
        "sendto" => {
            x.addr = peek_sockaddr(pid, a[4], a[5]);
            x.payload = peek(pid, a[1], (a[2] as usize).min(256))
                .map(|b| String::from_utf8_lossy(&b).into_owned());
        }
        "sendmsg" => {
            // struct msghdr: msg_name, msg_namelen, msg_iov, msg_iovlen, …
            if let Some(h) = peek(pid, a[1], 32) {
                let word = |i: usize| u64::from_ne_bytes(h[i * 8..i * 8 + 8].try_into().unwrap());
                x.addr = peek_sockaddr(pid, word(0), word(1) & 0xffff_ffff);
                if word(3) > 0
                    && let Some(iov) = peek(pid, word(2), 16)
                {
                    let base = u64::from_ne_bytes(iov[..8].try_into().unwrap());
                    let len = u64::from_ne_bytes(iov[8..16].try_into().unwrap());
                    x.payload = peek(pid, base, (len as usize).min(256))
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                }
            }
        }
        "close" | "dup" | "dup2" | "dup3" | "fchdir" | "flock" => x.path = fd_path(pid, a[0]),
        "rt_sigaction" => x.handler = peek_u64(pid, a[1]),
        "rt_sigprocmask" => x.mask = peek_u64(pid, a[1]),
        "fcntl" => {
            x.path = fd_path(pid, a[0]);
            x.lock_type = peek(pid, a[2], 2).map(|b| i16::from_ne_bytes([b[0], b[1]]));
        }
        "clone3" => x.clone_flags = peek_u64(pid, a[0]),
        _ => {}
    }
    x
}

/// What a call wrote back: the limits getrlimit and prlimit64 return.
fn read_exit_extra(pid: Pid, nr: i64, a: &[u64; 6], result: i64, x: &mut Extra) {
    if result != 0 {
        return;
    }
    let at = match name_of(nr) {
        "getrlimit" => a[1],
        "prlimit64" => a[3],
        _ => return,
    };
    if let Some(b) = peek(pid, at, 16) {
        x.limit = Some([
            u64::from_ne_bytes(b[..8].try_into().unwrap()),
            u64::from_ne_bytes(b[8..16].try_into().unwrap()),
        ]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wait_statuses_read_as_words() {
        assert_eq!(super::describe_wait(3 << 8), "exited with status 3");
        assert_eq!(super::describe_wait(9), "killed by SIGKILL");
    }
}
