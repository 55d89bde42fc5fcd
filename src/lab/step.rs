//! The daemonization rules as data: one table that the lab, the tour, the TUI, the lessons
//! and the tests all read, so the order and the wording live in exactly one place.

use serde::{Deserialize, Serialize};

/// One rule of APUE 13.3, named as the book would name it. The serialized form
/// (`"setsid"`, `"second_fork"`, …) is the id lessons and JSON output use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    Start,
    Umask,
    Getrlimit,
    Fork,
    Setsid,
    IgnoreSighup,
    SecondFork,
    Chdir,
    CloseFds,
    DevNull,
    Openlog,
}

/// Everything the views need to describe one step without knowing how it is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepInfo {
    pub id: StepId,
    /// Position in the book's order; other issues and checks rely on these numbers.
    pub index: u8,
    pub title: &'static str,
    /// A label that fits a narrow step list.
    pub short: &'static str,
    /// APUE section that states the rule.
    pub section: &'static str,
    /// The C call a daemon written after the book makes.
    pub c_call: &'static str,
    /// What the lab's subject really runs for this step (Rust / nix / libc).
    pub action: &'static str,
    /// Snapshot fields the step is expected to change; the kernel has the last word.
    pub expect: &'static [&'static str],
}

/// The steps in the book's order; `STEPS[i].index == i`.
pub const STEPS: [StepInfo; 11] = [
    StepInfo {
        id: StepId::Start,
        index: 0,
        title: "start as a shell job",
        short: "start (a shell job)",
        section: "13.3",
        c_call: "./a.out typed at a prompt",
        action: "the shell stand-in forks, setpgid()s and tcsetpgrp()s the subject, then execs it",
        expect: &[],
    },
    StepInfo {
        id: StepId::Umask,
        index: 1,
        title: "clear the file mode creation mask",
        short: "umask(0)",
        section: "13.3",
        c_call: "umask(0)",
        action: "nix::sys::stat::umask(Mode::empty())",
        expect: &["umask"],
    },
    StepInfo {
        id: StepId::Getrlimit,
        index: 2,
        title: "find the descriptor limit",
        short: "getrlimit(NOFILE)",
        section: "13.3",
        c_call: "getrlimit(RLIMIT_NOFILE, &rl)",
        action: "nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)",
        expect: &[],
    },
    StepInfo {
        id: StepId::Fork,
        index: 3,
        title: "fork, and the parent exits",
        short: "fork, parent exits",
        section: "13.3",
        c_call: "if ((pid = fork()) != 0) exit(0);",
        action: "unsafe { nix::unistd::fork() }; the parent reports the child and exits",
        expect: &["pid", "ppid", "group_leader", "adopted_by"],
    },
    StepInfo {
        id: StepId::Setsid,
        index: 4,
        title: "start a new session",
        short: "setsid()",
        section: "13.3",
        c_call: "setsid()",
        action: "nix::unistd::setsid()",
        expect: &[
            "pgid",
            "sid",
            "tty",
            "tpgid",
            "session_leader",
            "group_leader",
        ],
    },
    StepInfo {
        id: StepId::IgnoreSighup,
        index: 5,
        title: "ignore SIGHUP",
        short: "ignore SIGHUP",
        section: "13.3",
        c_call: "sa.sa_handler = SIG_IGN; sigaction(SIGHUP, &sa, NULL)",
        action: "nix::sys::signal::sigaction(SIGHUP, SigHandler::SigIgn)",
        expect: &["sighup", "signals"],
    },
    StepInfo {
        id: StepId::SecondFork,
        index: 6,
        title: "fork again, and the parent exits",
        short: "fork again",
        section: "13.3",
        c_call: "if ((pid = fork()) != 0) exit(0);",
        action: "unsafe { nix::unistd::fork() }; the parent reports the child and exits",
        expect: &["pid", "session_leader", "group_leader", "adopted_by"],
    },
    StepInfo {
        id: StepId::Chdir,
        index: 7,
        title: "change to the root directory",
        short: "chdir(\"/\")",
        section: "13.3",
        c_call: "chdir(\"/\")",
        action: "nix::unistd::chdir(\"/\")",
        expect: &["cwd"],
    },
    StepInfo {
        id: StepId::CloseFds,
        index: 8,
        title: "close every descriptor",
        short: "close all fds",
        section: "13.3",
        c_call: "for (i = 0; i < rl.rlim_max; i++) close(i);",
        action: "close_range(2) around the control channel (or close() up to the limit)",
        expect: &["fds"],
    },
    StepInfo {
        id: StepId::DevNull,
        index: 9,
        title: "attach 0, 1 and 2 to /dev/null",
        short: "/dev/null on 0 1 2",
        section: "13.3",
        c_call: "fd0 = open(\"/dev/null\", O_RDWR); fd1 = dup(0); fd2 = dup(0);",
        action: "nix::fcntl::open(\"/dev/null\", O_RDWR) then nix::unistd::dup twice",
        expect: &["fds"],
    },
    StepInfo {
        id: StepId::Openlog,
        index: 10,
        title: "open the system log",
        short: "openlog()",
        section: "13.4",
        c_call: "openlog(ident, LOG_CONS, LOG_DAEMON); syslog(LOG_INFO, ...)",
        action: "daemonlab's syslog(3) client: one datagram to the lab's receiver",
        expect: &["fds"],
    },
];

impl StepId {
    /// The table row for this step.
    pub fn info(self) -> &'static StepInfo {
        &STEPS[self as usize]
    }

    /// A few words for a table column or a sentence, never the code's id
    /// (`"fork again"`, not `second_fork`).
    pub fn label(self) -> &'static str {
        match self {
            StepId::Start => "start",
            StepId::Umask => "umask",
            StepId::Getrlimit => "getrlimit",
            StepId::Fork => "fork",
            StepId::Setsid => "setsid",
            StepId::IgnoreSighup => "ignore HUP",
            StepId::SecondFork => "fork again",
            StepId::Chdir => "chdir",
            StepId::CloseFds => "close fds",
            StepId::DevNull => "/dev/null",
            StepId::Openlog => "openlog",
        }
    }

    /// The id as lessons and JSON spell it (`"second_fork"`).
    pub fn name(self) -> &'static str {
        match self {
            StepId::Start => "start",
            StepId::Umask => "umask",
            StepId::Getrlimit => "getrlimit",
            StepId::Fork => "fork",
            StepId::Setsid => "setsid",
            StepId::IgnoreSighup => "ignore_sighup",
            StepId::SecondFork => "second_fork",
            StepId::Chdir => "chdir",
            StepId::CloseFds => "close_fds",
            StepId::DevNull => "dev_null",
            StepId::Openlog => "openlog",
        }
    }

    /// Parse the id as lessons and the CLI spell it; also accepts the index.
    pub fn parse(text: &str) -> Option<StepId> {
        STEPS
            .iter()
            .find(|s| s.id.name() == text || s.index.to_string() == text)
            .map(|s| s.id)
    }

    /// The step that follows this one in the book's order.
    pub fn next(self) -> Option<StepId> {
        STEPS.get(self as usize + 1).map(|s| s.id)
    }

    /// Steps that create a new process: the lab follows the child afterwards.
    pub fn forks(self) -> bool {
        matches!(self, StepId::Fork | StepId::SecondFork)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_index_order_and_ids_round_trip() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(step.index as usize, i, "{:?}", step.id);
            assert_eq!(step.id as usize, i);
            assert_eq!(StepId::parse(step.id.name()), Some(step.id));
            let json = serde_json::to_string(&step.id).unwrap();
            assert_eq!(json, format!("\"{}\"", step.id.name()));
        }
        assert_eq!(StepId::parse("4"), Some(StepId::Setsid));
        assert_eq!(StepId::parse("nope"), None);
        assert_eq!(StepId::Openlog.next(), None);
        assert_eq!(StepId::Start.next(), Some(StepId::Umask));
    }
}
