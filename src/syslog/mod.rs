//! Syslog, as APUE 13.4 describes it: the wire format, the lab's own receiver (the part
//! syslogd or journald plays at /dev/log) and the subject's syslog(3) client.

pub mod client;
pub mod journal;
pub mod parse;
pub mod receiver;
pub mod sink;
pub mod tally;

use serde::{Deserialize, Serialize};

/// `openlog` option: log the PID with each message.
pub const LOG_PID: u32 = 0x01;
/// `openlog` option: write to the console when the log cannot be reached.
pub const LOG_CONS: u32 = 0x02;
/// `openlog` option: connect on first message (the default).
pub const LOG_ODELAY: u32 = 0x04;
/// `openlog` option: connect at once, in `openlog`.
pub const LOG_NDELAY: u32 = 0x08;
/// `openlog` option: also write to stderr.
pub const LOG_PERROR: u32 = 0x20;

/// Who is logging: the facility half of PRI (RFC 5424 §6.2.1 numbering, as glibc uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Authpriv = 10,
    Ftp = 11,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

/// How bad it is: the severity half of PRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

const FACILITIES: [Facility; 20] = [
    Facility::Kern,
    Facility::User,
    Facility::Mail,
    Facility::Daemon,
    Facility::Auth,
    Facility::Syslog,
    Facility::Lpr,
    Facility::News,
    Facility::Uucp,
    Facility::Cron,
    Facility::Authpriv,
    Facility::Ftp,
    Facility::Local0,
    Facility::Local1,
    Facility::Local2,
    Facility::Local3,
    Facility::Local4,
    Facility::Local5,
    Facility::Local6,
    Facility::Local7,
];

/// Every severity, most severe first.
pub const SEVERITIES: [Severity; 8] = [
    Severity::Emerg,
    Severity::Alert,
    Severity::Crit,
    Severity::Err,
    Severity::Warning,
    Severity::Notice,
    Severity::Info,
    Severity::Debug,
];

impl Severity {
    /// The name `syslog.conf` and `logger -p` use: `err`, `warning`, …
    pub fn name(self) -> &'static str {
        [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ][self as usize]
    }
}

impl Facility {
    /// The name `syslog.conf` and `logger -p` use: `daemon`, `local0`, …
    pub fn name(self) -> &'static str {
        match self {
            Facility::Kern => "kern",
            Facility::User => "user",
            Facility::Mail => "mail",
            Facility::Daemon => "daemon",
            Facility::Auth => "auth",
            Facility::Syslog => "syslog",
            Facility::Lpr => "lpr",
            Facility::News => "news",
            Facility::Uucp => "uucp",
            Facility::Cron => "cron",
            Facility::Authpriv => "authpriv",
            Facility::Ftp => "ftp",
            Facility::Local0 => "local0",
            Facility::Local1 => "local1",
            Facility::Local2 => "local2",
            Facility::Local3 => "local3",
            Facility::Local4 => "local4",
            Facility::Local5 => "local5",
            Facility::Local6 => "local6",
            Facility::Local7 => "local7",
        }
    }
}

/// The broken-down local time of `t`, as syslog timestamps and the pane's clock need it.
pub fn local_time(t: std::time::SystemTime) -> libc::tm {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // SAFETY: localtime_r fills a zeroed struct we own from a plain integer.
    unsafe {
        let t = secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    }
}

/// `hh:mm:ss` of `t` in local time.
pub fn local_clock(t: std::time::SystemTime) -> String {
    let tm = local_time(t);
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// PRI = facility * 8 + severity, the number between `<` and `>`.
pub fn pri(facility: Facility, severity: Severity) -> u8 {
    (facility as u8) * 8 + severity as u8
}

/// Split a PRI value into names; `None` for numbers no facility uses (12–15, > 191).
pub fn decode_pri(value: u32) -> Option<(Facility, Severity)> {
    let facility = FACILITIES
        .iter()
        .copied()
        .find(|f| *f as u32 == value / 8)?;
    Some((facility, SEVERITIES[(value % 8) as usize]))
}

/// The datagram glibc's syslog(3) sends to a local socket:
/// `<PRI>Mmm dd hh:mm:ss ident[pid]: message` — no hostname, local time.
pub fn format_local(
    pri: u8,
    timestamp: &str,
    ident: &str,
    pid: Option<u32>,
    message: &str,
) -> String {
    match pid {
        Some(pid) => format!("<{pri}>{timestamp} {ident}[{pid}]: {message}"),
        None => format!("<{pri}>{timestamp} {ident}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_round_trips_and_rejects_unused_numbers() {
        assert_eq!(pri(Facility::Daemon, Severity::Info), 30);
        assert_eq!(decode_pri(30), Some((Facility::Daemon, Severity::Info)));
        assert_eq!(decode_pri(3), Some((Facility::Kern, Severity::Err)));
        assert_eq!(decode_pri(191), Some((Facility::Local7, Severity::Debug)));
        assert_eq!(decode_pri(12 * 8), None);
        assert_eq!(decode_pri(192), None);
    }

    #[test]
    fn local_format_matches_glibc_layout() {
        let line = format_local(30, "Nov  5 09:04:01", "daemonlab", Some(42), "hi");
        assert_eq!(line, "<30>Nov  5 09:04:01 daemonlab[42]: hi");
        assert_eq!(
            format_local(30, "Nov  5 09:04:01", "d", None, "x"),
            "<30>Nov  5 09:04:01 d: x"
        );
    }
}
