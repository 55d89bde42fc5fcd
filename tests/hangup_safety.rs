//! The stand-in signals a process group by number only while that group still holds an
//! unreaped child of its own. Here the job's group empties (fork, then setsid), an
//! unrelated process is planted at the same number through ns_last_pid, and the terminal
//! is hung up: the planted process must receive nothing.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemonlab::lab::StepId;
use daemonlab::lab::session::SessionEvent;

const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// Start `sleep` as the leader of a new process group whose number is `pid`, or `None`
/// after a few tries (another process took the number first).
fn plant_at(pid: i32) -> Option<Child> {
    for _ in 0..50 {
        let mut last = std::fs::OpenOptions::new()
            .write(true)
            .open(NS_LAST_PID)
            .ok()?;
        last.write_all(format!("{}", pid - 1).as_bytes()).ok()?;
        drop(last);
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        if child.id() as i32 == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

#[test]
fn hang_up_never_signals_a_recycled_process_group() {
    if !nix::unistd::geteuid().is_root()
        || std::fs::OpenOptions::new()
            .write(true)
            .open(NS_LAST_PID)
            .is_err()
    {
        eprintln!(
            "SKIPPED hang_up_never_signals_a_recycled_process_group: writing {NS_LAST_PID} needs root \
             (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)"
        );
        return;
    }
    common::become_subreaper();
    let mut lab = common::start_lab();
    let job = lab.subject_pid();
    let stand_in = lab.session_pid();
    lab.run(StepId::Fork).expect("fork");
    lab.run(StepId::Setsid).expect("setsid");
    let daemon = lab.subject_pid();
    // The job's leader is reaped and its child left the group: the number `job` is free.
    assert!(!common::running(job));
    let Some(mut planted) = plant_at(job) else {
        eprintln!(
            "SKIPPED hang_up_never_signals_a_recycled_process_group: could not get PID {job} \
             (the machine is busy)"
        );
        return;
    };
    assert_eq!(
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(job)))
            .unwrap()
            .as_raw(),
        job,
        "the planted sleep leads a group with the job's old number"
    );
    lab.hang_up().expect("hang up");
    let deadline = Instant::now() + Duration::from_secs(3);
    while common::running(stand_in) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = planted.try_wait().expect("try_wait");
    let events = lab.session_events();
    let _ = planted.kill();
    let _ = planted.wait();
    assert!(
        status.is_none(),
        "the planted process in the recycled group {job} was hit: {status:?}; stand-in said {events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            SessionEvent::HungUp {
                signalled: None,
                ..
            }
        )),
        "the stand-in should say it signalled no group: {events:?}"
    );
    drop(lab);
    common::assert_all_gone(&[job, daemon, stand_in]);
}
