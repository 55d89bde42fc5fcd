//! Single-instance daemons (APUE 13.5): pid-file locks, contenders, /proc/locks.
//!
//! A daemon that must run once per machine takes a write lock on its pid file and keeps the
//! file open for its whole life. The lock, not the file, is the proof: the kernel drops it
//! when the process dies, however it dies. This module runs that logic with the three lock
//! families Linux offers, starts competing processes ("contenders") to show who wins, and
//! reads the kernel's own account of it in /proc/locks.

pub mod cli;
mod contender;
mod contenders;
mod engine;
mod pid_file;
pub mod pitfalls;
pub mod proc_locks;
mod spawner;

pub use contender::{ContenderArgs, ContenderEvent, GATE_ENV, contender_main};
pub use contenders::{
    ContenderInfo, ContenderState, Contenders, Evidence, evidence_for, evidence_held,
};
pub use engine::{
    Held, LockError, Outcome, Probe, already_running, already_running_notify, holders_by_fdinfo,
    pid_holds_path, probe,
};
pub use proc_locks::{LockEntry, LockTable};
pub use spawner::spawner_main;

use serde::{Deserialize, Serialize};

/// Which of Linux's three lock families guards the pid file. They differ in who owns a
/// lock, and so in what fork(), close() and exit do to it: the heart of the pitfalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// POSIX record lock through `fcntl(F_SETLK)`: the book's choice. Owned by the process;
    /// not inherited by a child; dropped when the process closes *any* descriptor of the file.
    Fcntl,
    /// BSD `flock(2)`: owned by the open file description, so shared with a forked child.
    Flock,
    /// Open-file-description lock, `fcntl(F_OFD_SETLK)` (Linux 3.15+): fcntl's byte ranges
    /// with flock's ownership. /proc/locks shows its PID as -1.
    Ofd,
}

impl LockKind {
    /// Every kind, in cycle order, for tests and menus.
    pub const ALL: [LockKind; 3] = [LockKind::Fcntl, LockKind::Flock, LockKind::Ofd];

    /// The next kind in the cycle fcntl -> flock -> ofd -> fcntl (a TUI key steps through them).
    pub fn next(self) -> Self {
        match self {
            LockKind::Fcntl => LockKind::Flock,
            LockKind::Flock => LockKind::Ofd,
            LockKind::Ofd => LockKind::Fcntl,
        }
    }

    /// The name used on the command line, in events and in messages.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Fcntl => "fcntl",
            LockKind::Flock => "flock",
            LockKind::Ofd => "ofd",
        }
    }

    /// The kind as a noun phrase with its article, for sentences: "an fcntl (POSIX) lock".
    pub fn lock_noun(self) -> &'static str {
        match self {
            LockKind::Fcntl => "an fcntl (POSIX record) lock",
            LockKind::Flock => "a flock lock",
            LockKind::Ofd => "an OFD lock",
        }
    }

    /// The class /proc/locks prints for this kind.
    pub fn proc_class(self) -> &'static str {
        match self {
            LockKind::Fcntl => "POSIX",
            LockKind::Flock => "FLOCK",
            LockKind::Ofd => "OFDLCK",
        }
    }
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a second instance does when the lock is taken: give up at once (the book's
/// `already_running`) or queue in the kernel until the holder goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// `F_SETLK` / `F_OFD_SETLK` / `LOCK_NB`: fail with EAGAIN (EWOULDBLOCK) if held.
    Try,
    /// `F_SETLKW` / `F_OFD_SETLKW` / blocking `flock`: sleep until the lock is granted.
    Wait,
}

impl LockMode {
    /// The other mode (a TUI key flips it).
    pub fn toggle(self) -> Self {
        match self {
            LockMode::Try => LockMode::Wait,
            LockMode::Wait => LockMode::Try,
        }
    }

    /// The name used on the command line, in events and in messages.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Try => "try",
            LockMode::Wait => "wait",
        }
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Short name of a process from /proc/PID/comm, when it can be read.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_cycle_through_all_three() {
        let mut kind = LockKind::Fcntl;
        let mut seen = vec![];
        for _ in 0..3 {
            seen.push(kind);
            kind = kind.next();
        }
        assert_eq!(seen, LockKind::ALL);
        assert_eq!(kind, LockKind::Fcntl);
    }

    #[test]
    fn modes_toggle_and_names_round_trip_through_serde() {
        assert_eq!(LockMode::Try.toggle(), LockMode::Wait);
        assert_eq!(LockMode::Wait.toggle(), LockMode::Try);
        for kind in LockKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: LockKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
            use clap::ValueEnum;
            assert_eq!(LockKind::from_str(kind.name(), false).unwrap(), kind);
        }
        assert_eq!(serde_json::to_string(&LockMode::Wait).unwrap(), "\"wait\"");
    }
}
