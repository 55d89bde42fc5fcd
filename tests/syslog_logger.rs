//! util-linux `logger -u PATH` against the lab's receiver: the client a reader would use
//! by hand, in both wire formats it speaks.

use std::process::Command;
use std::time::Duration;

use daemonlab::syslog::parse::WireFormat;
use daemonlab::syslog::receiver::{Message, Receiver};
use daemonlab::syslog::{Facility, Severity};

/// Run `logger -u path args…` and return what the receiver got, or `None` (after saying
/// so) when logger(1) is not installed.
fn logger(args: &[&str]) -> Option<Message> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let receiver = Receiver::bind(&path, 10).unwrap();
    let output = match Command::new("logger")
        .arg("-u")
        .arg(&path)
        .args(args)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: logger(1) not installed");
            return None;
        }
        Err(e) => panic!("cannot run logger: {e}"),
    };
    assert!(
        output.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got = receiver.wait_for(0, Duration::from_secs(5), |_| true);
    assert_eq!(got.len(), 1, "{got:?}");
    Some(got.into_iter().next().unwrap())
}

/// The host's name up to the first dot: logger cuts the domain in RFC 3164 and may keep
/// it in RFC 5424.
fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    name.trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn assert_host(m: &Message) {
    let host = m.parsed.hostname.as_deref().unwrap_or_default();
    assert_eq!(
        host.split('.').next(),
        Some(short_hostname().as_str()),
        "{m:?}"
    );
}

fn assert_sent_by_logger(m: &Message) {
    // -i makes logger write its own PID; the kernel's credentials must agree.
    assert!(m.parsed.pid.is_some(), "{m:?}");
    assert_eq!(
        m.parsed.pid, m.sender_pid,
        "the PID in the text is the sender's"
    );
}

#[test]
fn logger_rfc3164_round_trip() {
    let Some(m) = logger(&[
        "--rfc3164",
        "-i",
        "-t",
        "daemonlab-test",
        "-p",
        "local3.warning",
        "hello from logger",
    ]) else {
        return;
    };
    let p = &m.parsed;
    assert_eq!(p.format, WireFormat::Rfc3164, "{m:?}");
    assert_eq!(
        (p.facility, p.severity),
        (Some(Facility::Local3), Some(Severity::Warning))
    );
    assert_host(&m);
    assert_eq!(p.ident.as_deref(), Some("daemonlab-test"));
    assert_eq!(p.message, "hello from logger");
    assert_eq!(
        p.timestamp.as_ref().map(String::len),
        Some(15),
        "Mmm dd hh:mm:ss"
    );
    assert_sent_by_logger(&m);
}

#[test]
fn logger_rfc5424_round_trip() {
    let Some(m) = logger(&[
        "--rfc5424",
        "-i",
        "-t",
        "daemonlab-test",
        "--msgid",
        "ID47",
        "--sd-id",
        "zoo@123",
        "--sd-param",
        "tiger=\"hungry\"",
        "hello in 5424",
    ]) else {
        return;
    };
    let p = &m.parsed;
    assert_eq!(p.format, WireFormat::Rfc5424, "{m:?}");
    assert_eq!(
        (p.facility, p.severity),
        (Some(Facility::User), Some(Severity::Notice))
    );
    assert_host(&m);
    assert_eq!(p.ident.as_deref(), Some("daemonlab-test"));
    assert_eq!(p.msgid.as_deref(), Some("ID47"));
    let sd = p.structured_data.as_deref().unwrap_or_default();
    assert!(sd.contains("[zoo@123 tiger=\"hungry\"]"), "{sd}");
    assert!(
        p.timestamp.as_deref().is_some_and(|t| t.contains('T')),
        "RFC 3339"
    );
    assert_eq!(p.message, "hello in 5424");
    assert_sent_by_logger(&m);
}

#[test]
fn logger_default_local_format_has_no_hostname() {
    let Some(m) = logger(&["-i", "-t", "daemonlab-test", "local format"]) else {
        return;
    };
    // logger writes glibc's local form to a Unix socket unless told otherwise.
    assert_eq!(m.parsed.format, WireFormat::Local, "{m:?}");
    assert_eq!(m.parsed.hostname, None);
    assert_eq!(m.parsed.ident.as_deref(), Some("daemonlab-test"));
    assert_eq!(m.parsed.message, "local format");
    assert_sent_by_logger(&m);
}
