//! Signal dispositions for the lab's helper processes.

/// Set every signal (1..=64, but SIGKILL and SIGSTOP) to SIG_DFL.
///
/// The subject is a Rust program, and the Rust runtime ignores SIGPIPE and catches SIGSEGV
/// and SIGBUS before `main`; the lab's environment may also pass down ignored signals,
/// glibc's private 32 and 33 among them. A C `a.out` typed at a prompt starts with defaults,
/// so the subject resets them all, and step 0 shows what the book's reader would see.
/// glibc's `sigaction` refuses 32 and 33, hence the raw system call.
pub fn reset_all_to_default() {
    // The kernel's `struct sigaction` on x86_64 and arm64: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::c_ulong,
        flags: libc::c_ulong,
        restorer: libc::c_ulong,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP) {
        // SAFETY: installs SIG_DFL (handler 0) with a correctly laid out kernel struct and
        // sigsetsize 8; no handler code is involved, and old actions are not read.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}
