//! The seccomp-bpf filter a traced program runs under: the system calls the daemon rules
//! are about stop the program (SECCOMP_RET_TRACE, seen by the tracer as a
//! PTRACE_EVENT_SECCOMP stop); every other call runs at full speed (SECCOMP_RET_ALLOW).
//! This is the technique of `strace --seccomp-bpf`, written here from the kernel's
//! documentation (Documentation/userspace-api/seccomp_filter.rst and seccomp(2)).
//!
//! Syscall numbers come from the `syscalls` crate for the architecture we are built for, so
//! a call that does not exist there (fork, open and dup2 on aarch64) is simply not in the
//! filter.

// libc's constant types differ between architectures: the casts are for the others.
#![allow(clippy::unnecessary_cast)]

use std::str::FromStr;

use syscalls::Sysno;

/// When a watched call stops the program, by its arguments. Filtering on arguments keeps
/// hot calls (close of every fd up to a huge RLIMIT_NOFILE, fcntl F_GETFL, ioctl) cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// Argument `arg` (its low 32 bits) is one of these values.
    OneOf(usize, &'static [u32]),
    /// Argument `arg` (its low 32 bits, unsigned) is below this bound.
    Below(usize, u32),
    /// Argument `arg` (all 64 bits) is not zero: a pointer that was given.
    NonZero(usize),
}

/// The first descriptor whose close() no longer stops the program. A close-everything
/// loop up to RLIMIT_NOFILE's hard limit (a million on some machines) would otherwise stop
/// a million times; the descriptors above this are rarely open, and the next snapshot
/// shows the state after the loop anyway.
pub const CLOSE_WATCH_LIMIT: u32 = 1024;

/// One watched system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub name: &'static str,
    pub when: When,
}

const fn w(name: &'static str, when: When) -> Watch {
    Watch { name, when }
}

const SIGHUP_TERM: &[u32] = &[libc::SIGHUP as u32, libc::SIGTERM as u32];
const NOFILE: &[u32] = &[libc::RLIMIT_NOFILE as u32];
const LOCKS: &[u32] = &[
    libc::F_SETLK as u32,
    libc::F_SETLKW as u32,
    libc::F_OFD_SETLK as u32,
    libc::F_OFD_SETLKW as u32,
];
const TTY_IOCTLS: &[u32] = &[libc::TIOCSCTTY as u32, libc::TIOCNOTTY as u32];
const PRCTLS: &[u32] = &[
    libc::PR_SET_CHILD_SUBREAPER as u32,
    libc::PR_SET_PDEATHSIG as u32,
];

/// Every call the rules are about, with the argument test that makes it relevant.
pub const WATCHED: &[Watch] = &[
    w("umask", When::Always),
    w("getrlimit", When::OneOf(0, NOFILE)),
    w("prlimit64", When::OneOf(1, NOFILE)),
    w("fork", When::Always),
    w("vfork", When::Always),
    w("clone", When::Always),
    w("clone3", When::Always),
    w("setsid", When::Always),
    w("setpgid", When::Always),
    w("rt_sigaction", When::OneOf(0, SIGHUP_TERM)),
    w("rt_sigprocmask", When::Always),
    w("chdir", When::Always),
    w("fchdir", When::Always),
    w("chroot", When::Always),
    w("close", When::Below(0, CLOSE_WATCH_LIMIT)),
    w("close_range", When::Always),
    w("open", When::Always),
    w("openat", When::Always),
    w("openat2", When::Always),
    w("creat", When::Always),
    w("dup", When::Always),
    w("dup2", When::Below(1, 3)),
    w("dup3", When::Below(1, 3)),
    w("connect", When::Always),
    w("sendto", When::NonZero(4)),
    w("fcntl", When::OneOf(1, LOCKS)),
    w("flock", When::Always),
    w("ioctl", When::OneOf(1, TTY_IOCTLS)),
    w("prctl", When::OneOf(0, PRCTLS)),
    w("setuid", When::Always),
    w("setgid", When::Always),
    w("setgroups", When::Always),
    w("setresuid", When::Always),
    w("setresgid", When::Always),
    w("setreuid", When::Always),
    w("setregid", When::Always),
    w("execve", When::Always),
    w("execveat", When::Always),
];

/// Watched only when the program has a `NOTIFY_SOCKET` to report to (sd_notify(3) uses
/// sendmsg, which busy servers call often).
pub const NOTIFY: Watch = w("sendmsg", When::Always);

/// The calls of `watches` that exist on this architecture, with their numbers.
pub fn resolve(watches: &[Watch]) -> Vec<(Sysno, When)> {
    watches
        .iter()
        .filter_map(|watch| Sysno::from_str(watch.name).ok().map(|s| (s, watch.when)))
        .collect()
}

/// Whether the filter stops a call (`nr` with `args`): the same decision in user space,
/// for the PTRACE_SYSCALL fallback, where every call stops and the tracer must pick.
pub fn wants(watches: &[(Sysno, When)], nr: i64, args: &[u64; 6]) -> bool {
    let low = |i: usize| args[i] as u32;
    watches
        .iter()
        .filter(|(s, _)| i64::from(s.id()) == nr)
        .any(|(_, when)| match *when {
            When::Always => true,
            When::OneOf(i, values) => values.contains(&low(i)),
            When::Below(i, bound) => low(i) < bound,
            When::NonZero(i) => args[i] != 0,
        })
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;

/// Whether this architecture is one the filter knows.
pub const SUPPORTED: bool = AUDIT_ARCH != 0;

// Classic BPF, as the kernel's filter.h spells it.
const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// What a call of another ABI (x32 on x86_64, or an unknown architecture) gets: allowed,
/// unwatched. A daemon does not switch ABIs halfway.
const X32_BIT: u32 = 0x4000_0000;

// Offsets into struct seccomp_data: nr, arch, instruction_pointer, args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_low(arg: usize) -> u32 {
    16 + 8 * arg as u32
}
fn off_arg_high(arg: usize) -> u32 {
    off_arg_low(arg) + 4
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program for `watches`: check the architecture, then one small,
/// self-contained block per call (each ends in its own return, so no jump is long).
pub fn program(watches: &[(Sysno, When)]) -> Vec<libc::sock_filter> {
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR),
        // x32 calls carry a high bit; let them through unwatched.
        jump(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, 0, 1),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ];
    for &(sysno, when) in watches {
        let block = block(when);
        // If nr matches, fall into the block; otherwise jump over it.
        p.push(jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            sysno.id() as u32,
            0,
            block.len() as u8,
        ));
        p.extend(block);
    }
    p.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    p
}

/// The instructions after a matching nr: decide on the arguments and return. Blocks that
/// load an argument leave the accumulator changed, so each one returns rather than falling
/// through to the next call's test.
fn block(when: When) -> Vec<libc::sock_filter> {
    let trace = stmt(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    let allow = stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    match when {
        When::Always => vec![trace],
        When::OneOf(arg, values) => {
            let mut b = vec![stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_low(arg))];
            let n = values.len();
            for (i, &v) in values.iter().enumerate() {
                // Jump to `trace` (after the remaining tests and the `allow`) on a match.
                let to_trace = (n - i - 1) as u8 + 1;
                b.push(jump(BPF_JMP | BPF_JEQ | BPF_K, v, to_trace, 0));
            }
            b.push(allow);
            b.push(trace);
            b
        }
        When::Below(arg, bound) => vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_low(arg)),
            jump(BPF_JMP | BPF_JGE | BPF_K, bound, 0, 1),
            allow,
            trace,
        ],
        When::NonZero(arg) => vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_low(arg)),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
            stmt(BPF_LD | BPF_W | BPF_ABS, off_arg_high(arg)),
            jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
            allow,
            trace,
        ],
    }
}

/// Run `program` the way the kernel's classic-BPF interpreter would on one call, for the
/// tests: what the filter answers for `nr` with `args`.
#[cfg(test)]
fn evaluate(program: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        let off = 16 + 8 * i;
        data[off..off + 8].copy_from_slice(&a.to_ne_bytes());
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let ins = program[pc];
        match ins.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                let k = ins.k as usize;
                acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                pc += 1;
            }
            c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                pc += 1 + if acc == ins.k { ins.jt } else { ins.jf } as usize;
            }
            c if c == BPF_JMP | BPF_JGE | BPF_K => {
                pc += 1 + if acc >= ins.k { ins.jt } else { ins.jf } as usize;
            }
            c if c == BPF_RET | BPF_K => return ins.k,
            other => panic!("unexpected instruction {other:#x}"),
        }
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    fn answer(name: &str, args: [u64; 6]) -> u32 {
        let prog = program(&resolve(WATCHED));
        let nr = Sysno::from_str(name).unwrap().id() as u32;
        evaluate(&prog, AUDIT_ARCH, nr, args)
    }

    #[test]
    fn rule_calls_stop_and_others_run() {
        assert_eq!(answer("setsid", [0; 6]), SECCOMP_RET_TRACE);
        assert_eq!(answer("umask", [0; 6]), SECCOMP_RET_TRACE);
        assert_eq!(answer("getppid", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(answer("read", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(answer("write", [1, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn arguments_decide() {
        let hup = libc::SIGHUP as u64;
        assert_eq!(
            answer("rt_sigaction", [hup, 1, 0, 8, 0, 0]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(
            answer("rt_sigaction", [15, 1, 0, 8, 0, 0]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(
            answer("rt_sigaction", [17, 1, 0, 8, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(answer("close", [3, 0, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(answer("close", [1023, 0, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(answer("close", [1024, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(answer("dup3", [5, 2, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        assert_eq!(answer("dup3", [5, 7, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        let setlk = libc::F_SETLK as u64;
        assert_eq!(answer("fcntl", [3, setlk, 0, 0, 0, 0]), SECCOMP_RET_TRACE);
        let getfl = libc::F_GETFL as u64;
        assert_eq!(answer("fcntl", [3, getfl, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(answer("sendto", [3, 1, 2, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(
            answer("sendto", [3, 1, 2, 0, 0x7fff_0000_0000, 0]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(answer("sendto", [3, 1, 2, 0, 0x1000, 0]), SECCOMP_RET_TRACE);
        assert_eq!(
            answer("prlimit64", [0, libc::RLIMIT_NOFILE as u64, 0, 0, 0, 0]),
            SECCOMP_RET_TRACE
        );
        assert_eq!(
            answer("prlimit64", [0, libc::RLIMIT_STACK as u64, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn user_space_agrees_with_the_program() {
        let watches = resolve(WATCHED);
        let prog = program(&watches);
        for name in [
            "setsid",
            "close",
            "dup3",
            "fcntl",
            "read",
            "rt_sigaction",
            "sendto",
        ] {
            let nr = Sysno::from_str(name).unwrap().id();
            for args in [[0u64; 6], [1, 2, 3, 4, 5, 6], [2000, 1, 7, 0, 0x1000, 0]] {
                let bpf = evaluate(&prog, AUDIT_ARCH, nr as u32, args) == SECCOMP_RET_TRACE;
                assert_eq!(wants(&watches, nr.into(), &args), bpf, "{name} {args:?}");
            }
        }
    }

    #[test]
    fn another_abi_runs_unwatched() {
        let prog = program(&resolve(WATCHED));
        let setsid = Sysno::setsid.id() as u32;
        assert_eq!(
            evaluate(&prog, 0x4000_0003, setsid, [0; 6]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            evaluate(&prog, AUDIT_ARCH, setsid | X32_BIT, [0; 6]),
            SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let prog = program(&resolve(WATCHED));
        for (pc, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == BPF_JMP {
                assert!(pc + 1 + (ins.jt as usize) < prog.len());
                assert!(pc + 1 + (ins.jf as usize) < prog.len());
            }
        }
        assert!(prog.len() < 4096, "BPF_MAXINSNS");
    }
}
