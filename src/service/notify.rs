//! The notify protocol of sd_notify(3), the manager's side: one datagram per message on
//! an AF_UNIX socket named by `$NOTIFY_SOCKET`, newline-separated `KEY=VALUE` fields, the
//! sender's credentials attached by the kernel (SO_PASSCRED) and, for FDSTORE=1,
//! descriptors passed with SCM_RIGHTS. Parsing is ours and stays visible: what arrived is
//! shown field by field, and a message is judged by the PID the kernel names, never by
//! what it says about itself.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg, setsockopt, sockopt,
};
use serde::Serialize;

/// Largest datagram read whole; a longer one is cut and says so.
pub const MAX_DATAGRAM: usize = 16 * 1024;

/// One message as it arrived.
#[derive(Debug, Serialize)]
pub struct Message {
    /// The sender, from the kernel (SCM_CREDENTIALS); `None` if none came with it.
    pub pid: Option<i32>,
    /// The fields in the order sent; a line without `=` is kept with an empty key.
    pub fields: Vec<(String, String)>,
    /// Descriptors passed with it (FDSTORE=1), as received here.
    #[serde(skip)]
    pub fds: Vec<OwnedFd>,
    /// The datagram was longer than [`MAX_DATAGRAM`] and was cut.
    pub truncated: bool,
}

impl Message {
    /// The value of `key`, the last one when sent twice.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The fields as a JSON object (a key sent twice keeps its last value).
    pub fn fields_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.fields {
            map.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(map)
    }

    /// The fields as one line for a person: `READY=1 STATUS="serving"`.
    pub fn words(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| {
                if v.contains(' ') || v.is_empty() {
                    format!("{k}={v:?}")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Split a datagram into its fields: newline-separated `KEY=VALUE`, a trailing newline
/// or none; empty lines ignored; bytes that are not UTF-8 replaced (shown, not dropped).
pub fn parse(datagram: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(datagram)
        .split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (String::new(), line.to_string()),
        })
        .collect()
}

/// A microsecond count as sd_notify(3) sends them (`EXTEND_TIMEOUT_USEC=`,
/// `WATCHDOG_USEC=`, `MONOTONIC_USEC=`): decimal digits only.
pub fn usec(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The manager's notify socket, bound at `path` with SO_PASSCRED.
pub struct NotifySocket {
    socket: UnixDatagram,
}

impl NotifySocket {
    pub fn bind(path: &Path) -> std::io::Result<NotifySocket> {
        let socket = UnixDatagram::bind(path)?;
        setsockopt(&socket, sockopt::PassCred, &true).map_err(std::io::Error::from)?;
        Ok(NotifySocket { socket })
    }

    /// Never wait: [`NotifySocket::try_receive`] then returns `None` when nothing is queued.
    pub fn set_nonblocking(&self) -> std::io::Result<()> {
        self.socket.set_nonblocking(true)
    }

    /// The next queued message, if any (on a non-blocking socket).
    pub fn try_receive(&self) -> std::io::Result<Option<Message>> {
        match self.receive() {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Wait for the next message.
    pub fn receive(&self) -> std::io::Result<Message> {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let mut space = nix::cmsg_space!(UnixCredentials, [std::os::fd::RawFd; 16]);
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let msg = recvmsg::<()>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        let mut pid = None;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
            match cmsg {
                ControlMessageOwned::ScmCredentials(creds) => pid = Some(creds.pid()),
                ControlMessageOwned::ScmRights(raw) => {
                    // SAFETY: descriptors the kernel has just installed for us.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    )
                }
                _ => {}
            }
        }
        let len = msg.bytes;
        Ok(Message {
            pid,
            fields: parse(&buffer[..len.min(MAX_DATAGRAM)]),
            fds,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_newlines_and_the_first_equals_sign() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=a=b c\n"),
            vec![
                ("READY".to_string(), "1".to_string()),
                ("STATUS".to_string(), "a=b c".to_string()),
            ]
        );
        assert_eq!(parse(b""), vec![]);
        assert_eq!(
            parse(b"\n\nWATCHDOG=1"),
            vec![("WATCHDOG".into(), "1".into())]
        );
        assert_eq!(parse(b"junk"), vec![(String::new(), "junk".to_string())]);
        // Not UTF-8: replaced, not lost.
        assert_eq!(parse(b"STATUS=\xff")[0].1, "\u{fffd}");
    }

    #[test]
    fn microseconds_are_digits_only() {
        assert_eq!(usec("1500000"), Some(1_500_000));
        assert_eq!(usec(""), None);
        assert_eq!(usec("-1"), None);
        assert_eq!(usec("1e6"), None);
        assert_eq!(usec(" 5"), None);
    }

    #[test]
    fn a_real_datagram_carries_the_senders_pid_from_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = NotifySocket::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1\nSTATUS=up", &path).unwrap();
        let m = socket.receive().unwrap();
        assert_eq!(m.pid, Some(std::process::id() as i32));
        assert_eq!(m.get("READY"), Some("1"));
        assert_eq!(m.words(), "READY=1 STATUS=up");
        assert!(!m.truncated);
    }
}
