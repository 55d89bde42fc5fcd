//! Real bash is the oracle for the stand-in's hang-up. An interactive bash on a pty this
//! test owns starts three processes, as a user would type them; the test then closes the
//! pty's master (a terminal window closing) and reads /proc. The lab's `no-setsid`
//! experiment hangs up its three cases the same way; the outcomes must agree.
//!
//! - `sleep … &`: a job bash still tracks — bash resends it SIGHUP: gone.
//! - `sh -c 'sleep … &'`: forked, its parent exited, bash reaped and forgot it — alive,
//!   without a controlling terminal.
//! - `setsid sh -c 'exec sleep …' &`: a session of its own — alive, no terminal.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemonlab::lab::LabOptions;
use daemonlab::lab::experiments::{self, Experiment};

/// Running processes whose command line is exactly `sleep ARG`.
fn sleeping(arg: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c == format!("sleep\0{arg}\0").as_bytes())
        })
        .filter(|pid| common::running(*pid))
        .collect()
}

/// tty_nr from /proc/PID/stat (0: no controlling terminal).
fn tty_nr(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(4)?
        .parse()
        .ok()
}

#[derive(Debug, PartialEq)]
struct Outcome {
    alive: bool,
    has_tty: bool,
}

fn bash_outcomes(bash: &Path) -> [Outcome; 3] {
    let mut command = Command::new(bash);
    command
        .args(["--norc", "--noprofile", "-i"])
        .env("PS1", "$ ");
    let master = common::pty::attach_new_pty(&mut command, 24, 80);
    let mut shell = command.spawn().expect("start bash");
    drop(command);
    // Unique arguments, so the test finds its own sleeps and nothing else.
    let tag = std::process::id();
    let args = [
        format!("301.{tag}"),
        format!("302.{tag}"),
        format!("303.{tag}"),
    ];
    let typed = format!(
        "sleep {} &\nsh -c 'sleep {} &'\nsetsid sh -c 'exec sleep {}' &\n",
        args[0], args[1], args[2]
    );
    // A reader keeps the master's output moving so bash never blocks writing its prompt.
    let reader = master.try_clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let drain = std::thread::spawn(move || {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut buf = [0u8; 4096];
        while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
            let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
            if matches!(poll(&mut fds, PollTimeout::from(20u8)), Ok(1..))
                && !matches!(nix::unistd::read(&reader, &mut buf), Ok(1..))
            {
                break;
            }
        }
    });
    std::fs::File::from(master.try_clone().unwrap())
        .write_all(typed.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids: Vec<i32> = loop {
        let found: Vec<Vec<i32>> = args.iter().map(|a| sleeping(a)).collect();
        if found.iter().all(|f| f.len() == 1) {
            break found.into_iter().map(|f| f[0]).collect();
        }
        assert!(
            Instant::now() < deadline,
            "bash did not start the three sleeps"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let bash notice the forked job's exit and forget it, as it does at its next prompt.
    std::thread::sleep(Duration::from_millis(300));
    // The job and the forked one start on the terminal; setsid's never had it.
    for pid in &pids[..2] {
        assert_ne!(tty_nr(*pid), Some(0), "{pid} starts on the terminal");
    }
    assert_eq!(tty_nr(pids[2]), Some(0), "setsid leaves the terminal");
    // The hang-up: the last descriptor of the master closes (the reader's copy first).
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = drain.join();
    drop(master);
    let exit = shell.wait().expect("bash exits on the hang-up");
    std::thread::sleep(Duration::from_millis(300));
    let outcomes = pids.map_outcomes();
    // Clean up what survived: orphans of bash, adopted by this test as their subreaper.
    for &pid in &pids {
        if common::running(pid) {
            // SAFETY: SIGKILL to a sleep this test started through bash and adopted.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    common::assert_all_gone(&pids);
    eprintln!("bash exited {exit:?}; outcomes {outcomes:?}");
    outcomes
}

trait MapOutcomes {
    fn map_outcomes(&self) -> [Outcome; 3];
}

impl MapOutcomes for Vec<i32> {
    fn map_outcomes(&self) -> [Outcome; 3] {
        [0, 1, 2].map(|i| {
            let pid = self[i];
            Outcome {
                alive: common::running(pid),
                has_tty: common::running(pid) && tty_nr(pid) != Some(0),
            }
        })
    }
}

#[test]
fn the_lab_hangs_up_as_real_bash_does() {
    let Some(bash) = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("SKIPPED the_lab_hangs_up_as_real_bash_does: bash is not installed");
        return;
    };
    common::become_subreaper();
    let bash = bash_outcomes(bash);
    assert_eq!(
        bash,
        [
            Outcome {
                alive: false,
                has_tty: false
            },
            Outcome {
                alive: true,
                has_tty: false
            },
            Outcome {
                alive: true,
                has_tty: false
            },
        ],
        "real bash: the job dies, the forked and the setsid ones live without a terminal"
    );

    let options = LabOptions {
        subreaper: true,
        ..LabOptions::with_exe(common::exe())
    };
    let report = experiments::run(Experiment::NoSetsid, &options).expect("no-setsid runs");
    let lab: Vec<Outcome> = report
        .cases
        .iter()
        .map(|c| Outcome {
            alive: c.outcome == "alive",
            has_tty: c.tty_after.is_some(),
        })
        .collect();
    assert_eq!(lab, bash, "the lab's three cases: {:#?}", report.cases);
    assert_eq!(report.cases[0].signal.as_deref(), Some("SIGHUP"));
}
