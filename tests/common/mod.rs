//! Helpers shared by the integration tests: start labs on the built binary, and check
//! that nothing a test started is still running.

#![allow(dead_code)]

pub mod cc;
pub mod explorer;
pub mod inspect;
pub mod pty;
pub mod sessions;
pub mod tsubject;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use daemonlab::lab::{Lab, LabOptions};

/// The binary cargo built for these tests.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_daemonlab"))
}

/// A lab on the built binary. The test process is made a subreaper so the subject's
/// orphans are reaped here even where PID 1 does not reap (as on some CI machines).
pub fn start_lab() -> Lab {
    let options = LabOptions {
        subreaper: true,
        ..LabOptions::with_exe(exe())
    };
    Lab::start(options).expect("the lab starts")
}

/// True if `pid` is a running (not zombie) process.
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

/// Make this test process a child subreaper, so orphans of the processes a test starts
/// come to it (and are reaped by [`assert_all_gone`]) rather than to PID 1, which does not
/// reap on every machine.
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
}

/// Fail the test if any of `pids` is still running after a short grace period. Those that
/// were adopted by this process are reaped, so they do not linger as zombies.
pub fn assert_all_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        for &pid in pids {
            // SAFETY: waitpid on a PID this test started (directly or through the lab);
            // it is ECHILD unless that process is our child, which is the case we want.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        let left: Vec<i32> = pids.iter().copied().filter(|&p| running(p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Running daemonlab processes whose environment names `tmp` as TMPDIR: with a private
/// TMPDIR per run, exactly the processes that run started (helpers inherit the
/// environment), and nothing of another test's or user's.
pub fn started_with_tmpdir(tmp: &std::path::Path) -> Vec<i32> {
    let marker = format!("TMPDIR={}", tmp.display());
    let exe = exe();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
        })
        .filter(|pid| running(*pid))
        .collect()
}

/// Lines of this process's mountinfo that mention `dir`.
pub fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// The number just before `word` in `line` ("10 received" -> 10); panics naming both.
pub fn number_before(line: &str, word: &str) -> u64 {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("{word} in {line:?}"));
    line[..at]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("a number before {word} in {line:?}"))
}

/// The number after `label` on a screen, e.g. `subject 1234`.
pub fn number_after(text: &str, label: &str) -> Option<i32> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}
