//! The subject's syslog(3), done in the open so the lab can show each effect: when the
//! socket appears in the descriptor list (LOG_NDELAY or the first message), what the
//! datagram holds, what a mask filters, where LOG_CONS and LOG_PERROR write.
//! It follows glibc's behaviour, written afresh.

use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, connect, send, socket,
};
use serde::Serialize;

use super::{Facility, LOG_CONS, LOG_NDELAY, LOG_PERROR, LOG_PID, Severity, format_local, pri};

/// `openlog` option: do not wait for children forked to write to the console. glibc
/// accepts it and does nothing with it on Linux.
pub const LOG_NOWAIT: u32 = 0x10;

/// `LOG_MASK(pri)`: the mask bit of one severity.
pub fn log_mask(severity: Severity) -> u8 {
    1 << severity as u8
}

/// `LOG_UPTO(pri)`: every severity from emerg down to `severity`.
pub fn log_upto(severity: Severity) -> u8 {
    ((1u16 << (severity as u16 + 1)) - 1) as u8
}

/// The names of the options set in `option`, as a C programmer would write them.
pub fn option_names(option: u32) -> String {
    let names: Vec<&str> = [
        (LOG_PID, "LOG_PID"),
        (LOG_CONS, "LOG_CONS"),
        (super::LOG_ODELAY, "LOG_ODELAY"),
        (LOG_NDELAY, "LOG_NDELAY"),
        (LOG_NOWAIT, "LOG_NOWAIT"),
        (LOG_PERROR, "LOG_PERROR"),
    ]
    .iter()
    .filter(|(bit, _)| option & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    if names.is_empty() {
        "0".to_string()
    } else {
        names.join("|")
    }
}

/// What became of one `syslog()` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "delivery", rename_all = "snake_case")]
pub enum Delivery {
    /// Sent as one datagram of `bytes` bytes.
    Sent { bytes: usize },
    /// Dropped by `setlogmask` before anything was sent.
    Masked,
    /// The log could not be reached; LOG_CONS wrote it to the console instead.
    Console { console: String, errno: i32 },
}

/// Counts kept by the client, so the lab can account for every message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClientStats {
    pub sent: u64,
    pub masked: u64,
    pub to_console: u64,
    pub failed: u64,
}

/// State that `openlog` sets up and `syslog` uses, as in glibc.
#[derive(Debug)]
pub struct Client {
    ident: String,
    option: u32,
    facility: Facility,
    path: PathBuf,
    /// Where LOG_CONS writes: /dev/console on a real system, the subject's pty in the lab.
    console: Option<PathBuf>,
    mask: u8,
    socket: Option<OwnedFd>,
    stats: ClientStats,
}

impl Client {
    /// `openlog(ident, option, facility)`: connects at once only with LOG_NDELAY (a failure
    /// there is silent, as in glibc; the first `syslog` tries again).
    pub fn openlog(
        ident: &str,
        option: u32,
        facility: Facility,
        path: PathBuf,
        console: Option<PathBuf>,
    ) -> Client {
        let mut client = Client {
            ident: ident.to_string(),
            option,
            facility,
            path,
            console,
            mask: 0xff,
            socket: None,
            stats: ClientStats::default(),
        };
        if option & LOG_NDELAY != 0 {
            let _ = client.connect();
        }
        client
    }

    /// `syslog(priority, format)`: `%m` becomes the text of errno as it was on entry, `%%`
    /// a percent sign. Masked severities are counted and dropped. On a send failure the
    /// client reconnects once and retries, then falls back to the console with LOG_CONS.
    pub fn syslog(&mut self, severity: Severity, format: &str) -> Result<Delivery, Errno> {
        let saved = Errno::last();
        if self.mask & log_mask(severity) == 0 {
            self.stats.masked += 1;
            return Ok(Delivery::Masked);
        }
        let message = expand(format, saved);
        let pid = (self.option & LOG_PID != 0).then(std::process::id);
        let line = format_local(
            pri(self.facility, severity),
            &local_timestamp(),
            &self.ident,
            pid,
            &message,
        );
        if self.option & LOG_PERROR != 0 {
            let tag = match pid {
                Some(pid) => format!("{}[{pid}]", self.ident),
                None => self.ident.clone(),
            };
            let _ = writeln!(std::io::stderr(), "{tag}: {message}");
        }
        // The receiver may have restarted: glibc closes, reconnects and tries once more.
        let sent = self.send(&line).or_else(|_| {
            self.closelog();
            self.send(&line)
        });
        let error = match sent {
            Ok(bytes) => {
                self.stats.sent += 1;
                return Ok(Delivery::Sent { bytes });
            }
            Err(error) => error,
        };
        if self.option & LOG_CONS != 0
            && let Some(console) = &self.console
        {
            // glibc writes the part after the timestamp, ending in CR LF.
            let text = match pid {
                Some(pid) => format!("{}[{pid}]: {message}\r\n", self.ident),
                None => format!("{}: {message}\r\n", self.ident),
            };
            let written = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags_noctty()
                .open(console)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if written.is_ok() {
                self.stats.to_console += 1;
                return Ok(Delivery::Console {
                    console: console.display().to_string(),
                    errno: error as i32,
                });
            }
        }
        self.stats.failed += 1;
        Err(error)
    }

    /// `setlogmask(mask)`: returns the previous mask; 0 only asks, as in libc.
    pub fn setlogmask(&mut self, mask: u8) -> u8 {
        let old = self.mask;
        if mask != 0 {
            self.mask = mask;
        }
        old
    }

    /// `closelog()`: close the socket; the next `syslog` connects again.
    pub fn closelog(&mut self) {
        self.socket = None;
    }

    /// Drop the socket without closing its number: used when the process has just
    /// closed every descriptor itself, so the number may already belong to something else.
    pub fn forget_socket(&mut self) {
        if let Some(fd) = self.socket.take() {
            let _ = fd.into_raw_fd();
        }
    }

    /// The socket's descriptor while connected.
    pub fn socket_fd(&self) -> Option<RawFd> {
        self.socket.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// What happened to every message so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The options `openlog` was given.
    pub fn option(&self) -> u32 {
        self.option
    }

    /// The current `setlogmask` mask.
    pub fn mask(&self) -> u8 {
        self.mask
    }

    fn send(&mut self, line: &str) -> Result<usize, Errno> {
        if self.socket.is_none() {
            self.connect()?;
        }
        let fd = self.socket_fd().ok_or(Errno::ENOTCONN)?;
        send(fd, line.as_bytes(), MsgFlags::MSG_NOSIGNAL)
    }

    fn connect(&mut self) -> Result<(), Errno> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        connect(fd.as_raw_fd(), &UnixAddr::new(&self.path)?)?;
        self.socket = Some(fd);
        Ok(())
    }
}

/// O_NOCTTY on the console open, so logging never gives a daemon a terminal.
trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NOCTTY)
    }
}

/// `%m` -> the text of `errno`, `%%` -> `%`; anything else is left as written.
fn expand(format: &str, errno: Errno) -> String {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('m')) => {
                chars.next();
                out.push_str(errno.desc());
            }
            ('%', Some('%')) => {
                chars.next();
                out.push('%');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `Mmm dd hh:mm:ss` in local time, the RFC 3164 timestamp glibc writes.
fn local_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let tm = super::local_time(std::time::SystemTime::now());
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::receiver::Receiver;
    use std::time::Duration;

    #[test]
    fn timestamp_has_rfc3164_shape() {
        let ts = local_timestamp();
        assert_eq!(ts.len(), 15, "{ts:?}");
        assert_eq!(&ts[9..10], ":", "{ts:?}");
    }

    #[test]
    fn percent_m_is_errno_text_and_percent_percent_is_a_percent() {
        assert_eq!(
            expand("open: %m (100%%)", Errno::ENOENT),
            "open: No such file or directory (100%)"
        );
        assert_eq!(expand("50% done %", Errno::ENOENT), "50% done %");
    }

    #[test]
    fn masks_follow_the_c_macros() {
        assert_eq!(log_mask(Severity::Emerg), 0x01);
        assert_eq!(log_mask(Severity::Debug), 0x80);
        assert_eq!(log_upto(Severity::Err), 0x0f);
        assert_eq!(log_upto(Severity::Debug), 0xff);
        assert_eq!(option_names(LOG_PID | LOG_CONS), "LOG_PID|LOG_CONS");
        assert_eq!(option_names(0), "0");
    }

    fn receiver() -> (tempfile::TempDir, Receiver) {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::bind(&dir.path().join("log"), 100).unwrap();
        (dir, receiver)
    }

    #[test]
    fn every_severity_arrives_with_its_pri_and_ident() {
        let (_dir, receiver) = receiver();
        let mut client = Client::openlog(
            "lab",
            LOG_PID,
            Facility::Local3,
            receiver.path().to_path_buf(),
            None,
        );
        let severities = crate::syslog::SEVERITIES;
        for severity in severities {
            assert!(matches!(
                client.syslog(severity, "hello"),
                Ok(Delivery::Sent { .. })
            ));
        }
        let got = receiver.wait_for(0, Duration::from_secs(2), |m| m.seq == 8);
        assert_eq!(got.len(), 8);
        for (message, severity) in got.iter().zip(severities) {
            assert_eq!(message.severity, Some(severity));
            assert_eq!(message.facility, Some(Facility::Local3));
            assert!(
                message
                    .text
                    .contains(&format!("lab[{}]: hello", std::process::id())),
                "{}",
                message.text
            );
        }
        assert_eq!(client.stats().sent, 8);
    }

    #[test]
    fn without_log_pid_there_is_no_pid_and_ndelay_connects_at_openlog() {
        let (_dir, receiver) = receiver();
        let mut lazy = Client::openlog(
            "lab",
            LOG_CONS,
            Facility::Daemon,
            receiver.path().to_path_buf(),
            None,
        );
        assert_eq!(
            lazy.socket_fd(),
            None,
            "LOG_ODELAY is the default: no socket yet"
        );
        lazy.syslog(Severity::Info, "x").unwrap();
        assert!(lazy.socket_fd().is_some(), "connected by the first message");
        let eager = Client::openlog(
            "lab",
            LOG_NDELAY,
            Facility::Daemon,
            receiver.path().to_path_buf(),
            None,
        );
        assert!(
            eager.socket_fd().is_some(),
            "LOG_NDELAY connects in openlog"
        );
        let got = receiver.wait_for(0, Duration::from_secs(2), |_| true);
        assert!(got[0].text.ends_with(" lab: x"), "{}", got[0].text);
    }

    #[test]
    fn setlogmask_drops_and_counts() {
        let (_dir, receiver) = receiver();
        let mut client = Client::openlog(
            "lab",
            0,
            Facility::Daemon,
            receiver.path().to_path_buf(),
            None,
        );
        assert_eq!(client.setlogmask(log_upto(Severity::Err)), 0xff);
        assert_eq!(client.setlogmask(0), log_upto(Severity::Err), "0 only asks");
        assert_eq!(client.syslog(Severity::Info, "quiet"), Ok(Delivery::Masked));
        assert!(matches!(
            client.syslog(Severity::Crit, "loud"),
            Ok(Delivery::Sent { .. })
        ));
        let got = receiver.wait_for(0, Duration::from_secs(2), |m| m.text.contains("loud"));
        assert_eq!(got.len(), 1);
        assert_eq!(
            client.stats(),
            ClientStats {
                sent: 1,
                masked: 1,
                to_console: 0,
                failed: 0
            }
        );
    }

    #[test]
    fn reconnects_after_the_receiver_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let first = Receiver::bind(&path, 10).unwrap();
        let mut client = Client::openlog("lab", LOG_NDELAY, Facility::Daemon, path.clone(), None);
        client.syslog(Severity::Info, "one").unwrap();
        drop(first);
        let second = Receiver::bind(&path, 10).unwrap();
        assert!(matches!(
            client.syslog(Severity::Info, "two"),
            Ok(Delivery::Sent { .. })
        ));
        let got = second.wait_for(0, Duration::from_secs(2), |m| m.text.contains("two"));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn log_cons_writes_to_the_console_when_the_log_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console");
        std::fs::write(&console, b"").unwrap();
        let mut client = Client::openlog(
            "lab",
            LOG_CONS,
            Facility::Daemon,
            dir.path().join("absent"),
            Some(console.clone()),
        );
        let delivery = client.syslog(Severity::Err, "disk full").unwrap();
        assert!(
            matches!(delivery, Delivery::Console { errno, .. } if errno == Errno::ENOENT as i32)
        );
        assert_eq!(
            std::fs::read_to_string(&console).unwrap(),
            "lab: disk full\r\n"
        );
        let mut silent = Client::openlog(
            "lab",
            0,
            Facility::Daemon,
            dir.path().join("absent"),
            Some(console),
        );
        assert_eq!(
            silent.syslog(Severity::Err, "lost"),
            Err(Errno::ENOENT),
            "no LOG_CONS: an error, never silence"
        );
        assert_eq!(silent.stats().failed, 1);
    }
}
