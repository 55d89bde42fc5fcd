//! The kernel's answer after every step of the tour, on a real subject.

mod common;

use daemonlab::lab::{STEPS, StepId};
use daemonlab::probe::Disposition;

use common::{assert_all_gone, running, start_lab};

#[test]
fn every_step_changes_what_the_book_says_it_changes() {
    let mut lab = start_lab();
    let session = lab.session_pid();
    let pty = lab.pty_name().to_string();
    let control_fd = lab.control_fd();
    let mut seen = vec![session, lab.subject_pid()];

    // Step 0: a shell job. Own group, the stand-in's session, the pty, foreground.
    let start = lab.run(StepId::Start).unwrap();
    let p = &start.process;
    assert!(start.ok);
    assert_eq!(p.pgid, p.pid, "the job leads its own process group");
    assert_eq!(p.sid, session, "the job is in the shell's session");
    assert_eq!(p.ppid, session);
    assert_eq!(p.tty.as_deref(), Some(pty.as_str()));
    assert!(pty.starts_with("pts/"), "{pty}");
    assert_eq!(p.tpgid, p.pgid, "the job is the foreground group");
    assert!(p.group_leader && !p.session_leader);
    assert_eq!(p.sighup, Disposition::Default);
    assert_eq!(start.cross_check, None);
    assert!(
        control_fd >= 3,
        "control channel at a high fd, got {control_fd}"
    );

    let umask = lab.run(StepId::Umask).unwrap();
    assert_eq!(umask.process.umask, Some(0));

    let rlimit = lab.run(StepId::Getrlimit).unwrap();
    assert!(
        rlimit.ok && rlimit.detail.contains("RLIMIT_NOFILE soft"),
        "{}",
        rlimit.detail
    );

    let before = lab.last_snapshot().clone();
    let fork = lab.run(StepId::Fork).unwrap();
    let p = &fork.process;
    seen.push(p.pid);
    let forked = fork.forked.expect("the fork is reported");
    assert_eq!(forked.parent, before.pid);
    assert_eq!(forked.child, p.pid);
    assert_ne!(p.pid, before.pid, "a new process");
    assert_eq!(p.pgid, before.pgid, "still in the old process group");
    assert!(
        !p.group_leader,
        "no longer a group leader: setsid can now work"
    );
    assert_ne!(
        p.ppid, session,
        "the parent exited; the stand-in is not the parent"
    );
    let adopter = p.adopted_by.as_ref().expect("adopted");
    assert_eq!(adopter.pid, p.ppid);
    assert_eq!(
        adopter.pid,
        std::process::id() as i32,
        "the test process is the subreaper"
    );
    assert!(!running(before.pid), "the parent exited");
    assert!(
        fork.changed.contains(&"pid") && fork.changed.contains(&"adopted_by"),
        "{:?}",
        fork.changed
    );
    assert_eq!(fork.cross_check, None);

    let setsid = lab.run(StepId::Setsid).unwrap();
    let p = &setsid.process;
    assert!(setsid.ok, "{:?}", setsid.error);
    assert_eq!(p.sid, p.pid);
    assert_eq!(p.pgid, p.pid);
    assert_eq!(p.tty, None, "no controlling terminal");
    assert_eq!(p.tpgid, -1);
    assert!(p.session_leader);
    for field in ["sid", "pgid", "tty", "tpgid", "session_leader"] {
        assert!(
            setsid.changed.contains(&field),
            "{field} not in {:?}",
            setsid.changed
        );
    }

    let sighup = lab.run(StepId::IgnoreSighup).unwrap();
    assert_eq!(sighup.process.sighup, Disposition::Ignored);
    assert!(
        sighup
            .process
            .signals
            .ignored
            .contains(&"SIGHUP".to_string())
    );

    let leader = lab.last_snapshot().pid;
    let second = lab.run(StepId::SecondFork).unwrap();
    let p = &second.process;
    seen.push(p.pid);
    assert_ne!(p.pid, leader);
    assert!(
        !p.session_leader,
        "not a session leader: it can never acquire a terminal"
    );
    assert_eq!(p.sid, leader);
    assert_eq!(p.sighup, Disposition::Ignored, "dispositions survive fork");

    let chdir = lab.run(StepId::Chdir).unwrap();
    assert_eq!(chdir.process.cwd.as_deref(), Some("/"));

    let close = lab.run(StepId::CloseFds).unwrap();
    let fds: Vec<i32> = close
        .process
        .fds
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.fd)
        .collect();
    assert_eq!(fds, [control_fd], "only the control channel is left");
    assert!(
        close.detail.contains("the lab's own control"),
        "{}",
        close.detail
    );

    let dev_null = lab.run(StepId::DevNull).unwrap();
    let fds = dev_null.process.fds.as_ref().unwrap();
    for n in 0..3 {
        let fd = fds
            .iter()
            .find(|f| f.fd == n)
            .unwrap_or_else(|| panic!("fd {n} open"));
        assert_eq!(fd.target, "/dev/null");
    }

    let openlog = lab.run(StepId::Openlog).unwrap();
    assert!(openlog.ok, "{:?}", openlog.error);
    assert_eq!(
        openlog.syslog.len(),
        1,
        "the receiver got exactly the one message"
    );
    assert_eq!(openlog.syslog[0].sender_pid, Some(openlog.process.pid));
    assert!(
        openlog.syslog[0].text.starts_with("<30>"),
        "LOG_DAEMON|LOG_INFO: {}",
        openlog.syslog[0].text
    );
    let socket = openlog
        .process
        .fds
        .as_ref()
        .unwrap()
        .iter()
        .find(|f| f.fd == 3);
    assert!(
        socket.is_some_and(|f| f.target.starts_with("socket:")),
        "syslog socket at fd 3"
    );

    // The terminal saw the early steps and nothing after the descriptors were closed.
    let lines = lab.terminal().lines_since(0);
    assert!(lines.iter().any(|l| l.contains("[1 umask]")), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("[9 /dev/null]") || l.contains("[10 openlog]")),
        "{lines:?}"
    );

    assert_eq!(STEPS.len(), 11);
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn setsid_as_a_group_leader_is_eperm_and_fork_fixes_it() {
    let mut lab = start_lab();
    let mut seen = vec![lab.session_pid(), lab.subject_pid()];
    let failed = lab.run(StepId::Setsid).unwrap();
    assert!(!failed.ok);
    let error = failed.error.expect("an error");
    assert_eq!(error.errno, Some(libc::EPERM));
    assert_eq!(error.name.as_deref(), Some("EPERM"));
    assert!(
        failed.changed.is_empty(),
        "a failed step changes nothing: {:?}",
        failed.changed
    );
    assert!(failed.process.tty.is_some());

    let fork = lab.run(StepId::Fork).unwrap();
    seen.push(fork.process.pid);
    let setsid = lab.run(StepId::Setsid).unwrap();
    assert!(setsid.ok, "{:?}", setsid.error);
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn dev_null_with_0_1_2_still_open_fails_and_leaves_them_alone() {
    let mut lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    let before = lab.last_snapshot().fds.clone();
    let outcome = lab.run(StepId::DevNull).unwrap();
    assert!(!outcome.ok);
    let error = outcome.error.unwrap();
    assert_eq!(error.errno, None);
    assert!(
        error.message.contains("instead of 0, 1, 2"),
        "{}",
        error.message
    );
    assert_eq!(outcome.process.fds, before);
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn steps_can_repeat_and_run_in_any_order() {
    let mut lab = start_lab();
    let mut seen = vec![lab.session_pid(), lab.subject_pid()];
    for step in [
        StepId::Chdir,
        StepId::Umask,
        StepId::Umask,
        StepId::Fork,
        StepId::Fork,
        StepId::Openlog,
    ] {
        let outcome = lab.run(step).unwrap();
        assert!(outcome.ok, "{step:?}: {:?}", outcome.error);
        seen.push(outcome.process.pid);
    }
    assert_eq!(lab.last_snapshot().cwd.as_deref(), Some("/"));
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn the_runtime_directory_is_private_and_removed_and_a_bad_one_is_a_clear_error() {
    use std::os::unix::fs::MetadataExt;
    let lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    let dir = lab.runtime_dir().to_path_buf();
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert_eq!(meta.mode() & 0o777, 0o700, "private: mode 0700");
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw(), "owned by us");
    assert!(
        lab.syslog().path().starts_with(&dir),
        "the syslog socket lives inside it"
    );
    drop(lab);
    assert!(!dir.exists(), "removed on exit");
    assert_all_gone(&seen);

    let options = daemonlab::lab::LabOptions {
        runtime_base: Some("/proc/1".into()),
        ..daemonlab::lab::LabOptions::with_exe(common::exe())
    };
    let error = daemonlab::lab::Lab::start(options)
        .err()
        .expect("cannot create a directory in /proc/1");
    let text = error.to_string();
    assert!(
        text.contains("/proc/1") && text.contains("XDG_RUNTIME_DIR"),
        "{text}"
    );
}
