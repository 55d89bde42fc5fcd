//! `kill -9` of the lab while the orphaned-group demo's member is stopped: the one lab
//! process with no lifeline of its own must still be gone within a second.

mod common;

use std::time::{Duration, Instant};

use common::{become_subreaper, exe, running};

/// Running processes of the daemonlab binary (we are their subreaper).
fn lab_processes() -> Vec<i32> {
    let exe = exe();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .filter(|pid| running(*pid))
        .collect()
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn kill_9_while_the_group_member_is_stopped_leaves_nothing_after_a_second() {
    become_subreaper();
    let before = lab_processes();
    let mut tour = std::process::Command::new(exe())
        .args(["tour", "--experiment", "sighup-not-ignored"])
        .env(daemonlab::lab::experiments::PAUSE_FOR_TESTS, "5000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let member = loop {
        let stopped = lab_processes()
            .into_iter()
            .find(|p| !before.contains(p) && state(*p) == Some('T'));
        if let Some(pid) = stopped {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the experiment never stopped a member"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = tour.kill();
    let _ = tour.wait();
    let deadline = Instant::now() + Duration::from_secs(1);
    let left = loop {
        for pid in lab_processes() {
            // SAFETY: waitpid on processes that are ours as their subreaper (ECHILD otherwise).
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
        let left: Vec<i32> = lab_processes()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        left.is_empty(),
        "1 s after kill -9 (member {member} stopped), still running: {left:?}"
    );
}
