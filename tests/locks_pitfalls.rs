//! Each pitfall's kernel behaviour, for each lock kind, on the real binary.

mod common;

use daemonlab::locks::LockKind;
use daemonlab::locks::pitfalls::{Pitfall, PitfallReport, run};

/// One scenario at a time: each checks that it leaves no child of this process behind,
/// which only means something while no other test is starting children.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(pitfall: Pitfall, kind: LockKind) -> PitfallReport {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let before = children();
    let report = run(pitfall, kind, &common::exe(), dir.path());
    let text = report.evidence.join("\n");
    assert_eq!(report.pitfall, pitfall);
    assert_eq!(report.kind, kind);
    assert!(report.holds, "{pitfall:?} with {kind}:\n{text}");
    assert!(text.starts_with("claim: "), "{text}");
    assert_eq!(
        children(),
        before,
        "{pitfall:?} with {kind} left a child behind"
    );
    report
}

/// Our direct children, zombies included: a scenario must leave none.
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<i32>()
                        .ok()
                })
                == Some(me)
        })
        .collect();
    pids.sort_unstable();
    pids
}

#[test]

fn a_stale_pid_file_does_not_stop_a_new_instance() {
    for kind in LockKind::ALL {
        let report = check(Pitfall::StalePidFile, kind);
        let text = report.evidence.join("\n");
        assert!(text.contains("ESRCH"), "{text}");
        assert!(text.contains("no lock on this file"), "{text}");
    }
}

#[test]

fn a_lock_before_fork_stays_with_the_parent_for_fcntl_only() {
    let report = check(Pitfall::LockBeforeFork, LockKind::Fcntl);
    let text = report.evidence.join("\n");
    assert!(text.contains("EAGAIN") || text.contains("EACCES"), "{text}");
    assert!(text.contains("F_GETLK from the child names pid"), "{text}");
    for kind in [LockKind::Flock, LockKind::Ofd] {
        let report = check(Pitfall::LockBeforeFork, kind);
        let text = report.evidence.join("\n");
        assert!(text.contains("inherited descriptor: succeeded"), "{text}");
    }
}

#[test]

fn closing_another_descriptor_drops_only_the_fcntl_lock() {
    let report = check(Pitfall::CloseDropsLock, LockKind::Fcntl);
    let text = report.evidence.join("\n");
    assert!(
        text.contains("F_GETLK says the file is not locked"),
        "{text}"
    );
    for kind in [LockKind::Flock, LockKind::Ofd] {
        let report = check(Pitfall::CloseDropsLock, kind);
        let text = report.evidence.join("\n");
        assert!(!text.contains("not locked"), "{text}");
    }
}

#[test]

fn a_waiter_takes_over_when_the_holder_dies() {
    for kind in LockKind::ALL {
        let report = check(Pitfall::WaiterTakesOver, kind);
        let text = report.evidence.join("\n");
        assert!(text.contains("ms after the SIGKILL"), "{text}");
        assert!(text.contains("waiter:"), "{text}");
    }
}

#[test]

fn the_helper_subcommand_prints_one_json_report() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(common::exe())
        .args(["__pitfall", "close-drops-lock", "ofd"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let report: PitfallReport = serde_json::from_str(text.trim()).unwrap();
    assert!(report.holds, "{report:?}");
    let bad = std::process::Command::new(common::exe())
        .args(["__pitfall", "no-such-pitfall", "ofd", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
