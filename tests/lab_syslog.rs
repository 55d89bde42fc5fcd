//! The subject's syslog(3) against the lab's receiver: options, masks, LOG_PERROR, and
//! system mode through the C library.

mod common;

use std::time::Duration;

use daemonlab::lab::protocol::Request;
use daemonlab::lab::{Lab, LabOptions, StepId};
use daemonlab::syslog::client::{LOG_NOWAIT, log_upto};
use daemonlab::syslog::{
    Facility, LOG_CONS, LOG_NDELAY, LOG_PERROR, LOG_PID, SEVERITIES, Severity,
};

use common::{assert_all_gone, exe, start_lab};

fn log(lab: &mut Lab, severity: Severity, message: &str) -> daemonlab::lab::ActionOutcome {
    lab.syslog_request(Request::Log {
        severity,
        message: message.into(),
        errno: None,
    })
    .unwrap()
}

fn openlog(lab: &mut Lab, option: u32) -> daemonlab::lab::ActionOutcome {
    lab.syslog_request(Request::Openlog {
        option,
        facility: Facility::Daemon,
    })
    .unwrap()
}

fn socket_fds(outcome: &daemonlab::lab::ActionOutcome, control_fd: i32) -> Vec<i32> {
    let fds = outcome.process.fds.as_ref().unwrap();
    fds.iter()
        .filter(|f| f.target.starts_with("socket:") && f.fd != control_fd)
        .map(|f| f.fd)
        .collect()
}

#[test]
fn every_severity_arrives_from_the_subject_with_its_pid() {
    let mut lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    openlog(&mut lab, LOG_PID);
    for severity in SEVERITIES {
        let outcome = log(&mut lab, severity, "hello %m");
        assert!(outcome.ok, "{:?}", outcome.error);
        assert_eq!(
            outcome.received.len(),
            1,
            "{severity:?}: {}",
            outcome.detail
        );
        let message = &outcome.received[0];
        assert_eq!(message.severity, Some(severity));
        assert_eq!(message.facility, Some(Facility::Daemon));
        assert_eq!(message.sender_pid, Some(lab.subject_pid()));
        assert!(
            message
                .text
                .contains(&format!("daemonlab[{}]: hello ", lab.subject_pid())),
            "{}",
            message.text
        );
    }
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn ndelay_opens_the_socket_at_openlog_and_odelay_at_the_first_message() {
    let mut lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    let control = lab.control_fd();
    let eager = openlog(&mut lab, LOG_NDELAY | LOG_NOWAIT);
    assert_eq!(
        socket_fds(&eager, control).len(),
        1,
        "LOG_NDELAY: connected in openlog ({})",
        eager.detail
    );
    assert!(eager.changed.contains(&"fds"));
    assert!(
        eager
            .syslog
            .as_ref()
            .unwrap()
            .options
            .contains("LOG_NDELAY|LOG_NOWAIT")
    );
    let lazy = openlog(&mut lab, LOG_CONS);
    assert!(
        socket_fds(&lazy, control).is_empty(),
        "closelog closed it; LOG_ODELAY waits ({})",
        lazy.detail
    );
    let first = log(&mut lab, Severity::Notice, "now");
    assert_eq!(
        socket_fds(&first, control).len(),
        1,
        "connected by the first message"
    );
    assert!(
        !first.received[0].text.contains('['),
        "no LOG_PID, no [pid]: {}",
        first.received[0].text
    );
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn setlogmask_drops_and_log_perror_copies_to_the_terminal() {
    let mut lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    openlog(&mut lab, LOG_PID | LOG_PERROR);
    let mask = lab
        .syslog_request(Request::SetLogMask {
            mask: log_upto(Severity::Err),
        })
        .unwrap();
    assert!(mask.detail.contains("LOG_UPTO(LOG_ERR)"), "{}", mask.detail);
    let quiet = log(&mut lab, Severity::Info, "quiet");
    assert!(quiet.detail.contains("setlogmask"), "{}", quiet.detail);
    assert!(quiet.received.is_empty());
    assert_eq!(quiet.syslog.as_ref().unwrap().stats.unwrap().masked, 1);
    let lines_before = lab.terminal().line_count();
    let loud = log(&mut lab, Severity::Crit, "loud");
    assert_eq!(loud.received.len(), 1);
    let tag = format!("daemonlab[{}]: loud", lab.subject_pid());
    assert!(
        lab.terminal()
            .wait_for_line(lines_before, Duration::from_secs(2), |l| l == tag),
        "LOG_PERROR copies to stderr, the pty: {:?}",
        lab.terminal().lines_since(lines_before)
    );
    drop(lab);
    assert_all_gone(&seen);
}

#[test]
fn system_mode_uses_libc_syslog_and_reads_it_back_where_it_may() {
    if std::path::Path::new("/dev/log").exists() {
        eprintln!(
            "SKIPPED: /dev/log belongs to this system's logger; the lab cannot read it back here"
        );
        return;
    }
    let options = LabOptions {
        subreaper: true,
        system_syslog: true,
        ..LabOptions::with_exe(exe())
    };
    let mut lab = Lab::start(options).unwrap();
    let mut seen = vec![lab.session_pid(), lab.subject_pid()];
    if lab.syslog().path() != std::path::Path::new("/dev/log") {
        eprintln!(
            "SKIPPED: cannot bind /dev/log here (not root?): {}",
            lab.syslog_note()
        );
        return;
    }
    assert!(lab.syslog_note().contains("/dev/log"));
    for step in [StepId::Start, StepId::Openlog] {
        let outcome = lab.run(step).unwrap();
        seen.push(outcome.process.pid);
        if step == StepId::Openlog {
            assert!(outcome.ok, "{:?}", outcome.error);
            assert_eq!(
                outcome.syslog.len(),
                1,
                "libc's datagram reached the lab at /dev/log"
            );
            assert!(
                outcome.syslog[0].text.starts_with("<30>"),
                "{}",
                outcome.syslog[0].text
            );
        }
    }
    drop(lab);
    assert!(
        !std::path::Path::new("/dev/log").exists(),
        "the lab removes /dev/log on exit"
    );
    assert_all_gone(&seen);
}

#[test]
fn with_the_receiver_stopped_log_cons_writes_to_the_terminal_then_it_reconnects() {
    let mut lab = start_lab();
    let seen = vec![lab.session_pid(), lab.subject_pid()];
    openlog(&mut lab, LOG_PID | LOG_CONS | LOG_NDELAY);
    assert_eq!(log(&mut lab, Severity::Info, "before").received.len(), 1);
    lab.syslog().stop();
    assert!(!lab.syslog().is_running());
    let lines_before = lab.terminal().line_count();
    let down = log(&mut lab, Severity::Err, "while down");
    assert!(down.ok, "{:?}", down.error);
    assert!(
        down.detail.contains("LOG_CONS wrote it to the console"),
        "{}",
        down.detail
    );
    assert_eq!(down.syslog.as_ref().unwrap().stats.unwrap().to_console, 1);
    let tag = format!("daemonlab[{}]: while down", lab.subject_pid());
    assert!(
        lab.terminal()
            .wait_for_line(lines_before, Duration::from_secs(2), |l| l == tag),
        "the console in the lab is the subject's terminal: {:?}",
        lab.terminal().lines_since(lines_before)
    );
    openlog(&mut lab, LOG_PID);
    let lost = log(&mut lab, Severity::Err, "lost");
    assert!(
        !lost.ok,
        "without LOG_CONS the failure is reported, never silent"
    );
    assert!(lost.error.unwrap().message.contains("not delivered"));
    lab.syslog().start().unwrap();
    let back = log(&mut lab, Severity::Info, "after");
    assert_eq!(back.received.len(), 1, "reconnected: {}", back.detail);
    drop(lab);
    assert_all_gone(&seen);
}
