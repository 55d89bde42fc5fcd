//! The subject's syslog(3): what glibc does, in the open, so the lab can show each
//! effect (when the socket appears in the descriptor list, what the datagram holds).
//! The full option set, `%m`, setlogmask and reconnection grow with the syslog issue.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, connect, send, socket,
};

use super::{Facility, LOG_NDELAY, LOG_PID, Severity, format_local, pri};

/// State that `openlog` sets up and `syslog` uses, as in glibc.
#[derive(Debug)]
pub struct Client {
    ident: String,
    option: u32,
    facility: Facility,
    path: PathBuf,
    socket: Option<OwnedFd>,
}

impl Client {
    /// `openlog(ident, option, facility)`: connects at once only with LOG_NDELAY.
    pub fn openlog(ident: &str, option: u32, facility: Facility, path: PathBuf) -> Client {
        let mut client = Client {
            ident: ident.to_string(),
            option,
            facility,
            path,
            socket: None,
        };
        if option & LOG_NDELAY != 0 {
            let _ = client.connect();
        }
        client
    }

    /// `syslog(priority, "%s", message)`: one datagram; returns the bytes sent.
    pub fn syslog(&mut self, severity: Severity, message: &str) -> Result<usize, Errno> {
        let pid = (self.option & LOG_PID != 0).then(std::process::id);
        let line = format_local(
            pri(self.facility, severity),
            &local_timestamp(),
            &self.ident,
            pid,
            message,
        );
        if self.socket.is_none() {
            self.connect()?;
        }
        let fd = self
            .socket
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .ok_or(Errno::ENOTCONN)?;
        send(fd, line.as_bytes(), MsgFlags::MSG_NOSIGNAL)
    }

    /// Drop the socket without closing its number: used when the process has just
    /// closed every descriptor itself, so the number may already belong to something else.
    pub fn forget_socket(&mut self) {
        if let Some(fd) = self.socket.take() {
            let _ = fd.into_raw_fd();
        }
    }

    fn connect(&mut self) -> Result<(), Errno> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let addr = UnixAddr::new(&self.path)?;
        connect(fd.as_raw_fd(), &addr)?;
        self.socket = Some(fd);
        Ok(())
    }
}

/// `Mmm dd hh:mm:ss` in local time, the RFC 3164 timestamp glibc writes.
fn local_timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) and localtime_r with a zeroed out-parameter we own.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_rfc3164_shape() {
        let ts = local_timestamp();
        assert_eq!(ts.len(), 15, "{ts:?}");
        assert_eq!(&ts[9..10], ":", "{ts:?}");
    }

    #[test]
    fn sending_to_a_missing_socket_is_an_error_not_a_silent_success() {
        let dir = tempfile::tempdir().unwrap();
        let mut client = Client::openlog(
            "t",
            super::super::LOG_CONS,
            Facility::Daemon,
            dir.path().join("absent"),
        );
        assert_eq!(client.syslog(Severity::Info, "x"), Err(Errno::ENOENT));
    }
}
