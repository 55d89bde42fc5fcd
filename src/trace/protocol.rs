//! What the tracer (the stand-in in trace mode) and the front-end say to each other: one
//! JSON object per line, as on the lab's control channel. The tracer reports; a report
//! that holds a process stopped (`Call`, `Exiting`) waits for the front-end's `Resume`, so
//! the front-end reads /proc while nothing moves.

use serde::{Deserialize, Serialize};

/// Tracer → front-end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TracerMessage {
    /// The program's first process is started, in its own group, in the foreground of
    /// `tty`, traced. `seccomp` is false when the kernel refused the filter and every
    /// system call stops (PTRACE_SYSCALL), which is slow.
    Started {
        session: i32,
        job: i32,
        tty: String,
        seccomp: bool,
        note: Option<String>,
    },
    /// A watched system call returned; the process is held until `Resume`.
    Call(Call),
    /// A traced process created another (`how`: fork, vfork or clone); `thread` for
    /// CLONE_THREAD. Held until `Resume` unless a thread, so the front-end sees the new
    /// child before it runs.
    Forked {
        pid: i32,
        child: i32,
        thread: bool,
        how: String,
    },
    /// A traced process replaced its program.
    Exec { pid: i32, path: String },
    /// A traced process is about to exit (its descriptors and locks are still there);
    /// held until `Resume`.
    Exiting { pid: i32, status: String },
    /// A traced process has exited.
    Exited { pid: i32, status: String },
    /// The program could not be started.
    Failed { message: String },
    /// Without the filter (PTRACE_SYSCALL): `pid` is busy with calls no rule is about.
    /// Sent at most every 100 ms, so a slow loop is not taken for a settled program.
    Busy { pid: i32 },
}

/// One watched system call, at its return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub pid: i32,
    pub nr: i64,
    pub name: String,
    pub args: [u64; 6],
    /// The return value (meaningful when `errno` is None).
    pub result: i64,
    /// The error number, when the call failed.
    pub errno: Option<i32>,
    /// What the tracer read from the tracee's memory for this call.
    #[serde(default)]
    pub extra: Extra,
    /// Whether the process waits for `Resume`. A close() that found nothing open
    /// (EBADF) changes nothing to look at, so the tracer lets it go at once: a
    /// close-everything loop then costs one stop per descriptor, not a round trip.
    #[serde(default)]
    pub held: bool,
}

/// Arguments behind pointers, read by the tracer with PTRACE_PEEKDATA while the process
/// was stopped (only the tracer may read them: after an orphaning, nobody else is its
/// ancestor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// A path argument (open, chdir, chroot, execve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A socket address (connect, sendto, sendmsg): a Unix path, `@abstract`, or
    /// `family N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// rt_sigaction: the new handler (0 = SIG_DFL, 1 = SIG_IGN, else a function).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<u64>,
    /// rt_sigprocmask: the set given (bit N-1 = signal N).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
    /// fcntl lock calls: struct flock's l_type (F_RDLCK, F_WRLCK, F_UNLCK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_type: Option<i16>,
    /// clone3: the flags of struct clone_args.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_flags: Option<u64>,
    /// getrlimit/prlimit64: the limit returned (soft, hard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<[u64; 2]>,
    /// sendmsg/sendto: the first bytes sent (for sd_notify's text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// Front-end → tracer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TracerCommand {
    /// Let this held process go on.
    Resume { pid: i32 },
    /// Stop reporting and keep serving the program's stops quietly until it exits, even
    /// after the front-end is gone (its seccomp filter cannot be removed: without a
    /// tracer its watched calls would fail with ENOSYS).
    Keep,
}
