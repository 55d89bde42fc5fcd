//! The lab's syslogd: a Unix datagram socket in the lab's private runtime directory.
//! It asks the kernel for each sender's credentials (SO_PASSCRED, as journald does), so a
//! message is tied to the PID that really sent it, not to what the text claims.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType, UnixAddr, bind,
    recvmsg, setsockopt, shutdown, socket, sockopt,
};
use serde::Serialize;

use super::{Facility, Severity, decode_pri};
use crate::probe::Pid;

/// Largest datagram kept whole; longer ones are kept cut and flagged.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// How many messages the ring keeps before dropping the oldest.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One datagram as it arrived, with what the kernel and the PRI say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Arrival order, from 1.
    pub seq: u64,
    /// The sender's PID from SCM_CREDENTIALS; `None` if the kernel sent none.
    pub sender_pid: Option<Pid>,
    #[serde(serialize_with = "unix_seconds")]
    pub received_at: SystemTime,
    pub facility: Option<Facility>,
    pub severity: Option<Severity>,
    /// The datagram as text (lossy UTF-8), trailing NUL and newline removed.
    pub text: String,
    /// The datagram was longer than [`MAX_DATAGRAM`] and was cut.
    pub truncated: bool,
}

fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}

impl Message {
    fn parse(seq: u64, sender_pid: Option<Pid>, bytes: &[u8], truncated: bool) -> Message {
        let text = String::from_utf8_lossy(bytes)
            .trim_end_matches(['\0', '\n'])
            .to_string();
        let pri = text
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .and_then(|(digits, _)| digits.parse::<u32>().ok())
            .and_then(decode_pri);
        Message {
            seq,
            sender_pid,
            received_at: SystemTime::now(),
            facility: pri.map(|p| p.0),
            severity: pri.map(|p| p.1),
            text,
            truncated,
        }
    }
}

#[derive(Default)]
struct Inbox {
    messages: VecDeque<Message>,
    received: u64,
}

type Shared = Arc<(Mutex<Inbox>, Condvar)>;

/// A bound receiver with its thread; dropping it stops the thread and removes the socket.
pub struct Receiver {
    path: PathBuf,
    socket: Arc<OwnedFd>,
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Bind `path` and start receiving. Fails if the path exists or its directory is
    /// not writable; the error names the path.
    pub fn bind(path: &Path, capacity: usize) -> io::Result<Receiver> {
        let named = |e: nix::Error| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("syslog socket {}: {e}", path.display()),
            )
        };
        let socket = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(named)?;
        bind(socket.as_raw_fd(), &UnixAddr::new(path).map_err(named)?).map_err(named)?;
        setsockopt(&socket, sockopt::PassCred, &true).map_err(named)?;
        let socket = Arc::new(socket);
        let shared: Shared = Arc::default();
        let thread = {
            let (socket, shared) = (Arc::clone(&socket), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("syslog-receiver".into())
                .spawn(move || receive_loop(&socket, &shared, capacity.max(1)))?
        };
        Ok(Receiver {
            path: path.to_path_buf(),
            socket,
            shared,
            thread: Some(thread),
        })
    }

    /// Where clients send: `logger -u PATH …` works too.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many datagrams arrived in all, including ones the ring has dropped.
    pub fn received(&self) -> u64 {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .received
    }

    /// The messages still in the ring, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .messages
            .iter()
            .cloned()
            .collect()
    }

    /// Messages with `seq > after`, waiting up to `timeout` for the first one that
    /// `wanted` accepts. Returns everything newer than `after` that is in the ring.
    pub fn wait_for(
        &self,
        after: u64,
        timeout: Duration,
        wanted: impl Fn(&Message) -> bool,
    ) -> Vec<Message> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.shared;
        let mut inbox = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let newer: Vec<Message> = inbox
                .messages
                .iter()
                .filter(|m| m.seq > after)
                .cloned()
                .collect();
            let now = Instant::now();
            if newer.iter().any(&wanted) || now >= deadline {
                return newer;
            }
            inbox = ready
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn receive_loop(socket: &OwnedFd, shared: &Shared, capacity: usize) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut control = nix::cmsg_space!(libc::ucred);
    loop {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let (bytes, truncated, sender) = match recvmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_TRUNC,
        ) {
            // Zero bytes with no sender is our own shutdown (an empty datagram still
            // carries credentials).
            Ok(msg) => {
                let sender = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                        _ => None,
                    })
                });
                if msg.bytes == 0 && sender.is_none() {
                    return;
                }
                (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), sender)
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        let kept = bytes.min(buffer.len());
        let (lock, ready) = &**shared;
        let mut inbox = lock.lock().unwrap_or_else(|e| e.into_inner());
        inbox.received += 1;
        let seq = inbox.received;
        if inbox.messages.len() == capacity {
            inbox.messages.pop_front();
        }
        inbox
            .messages
            .push_back(Message::parse(seq, sender, &buffer[..kept], truncated));
        ready.notify_all();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = shutdown(self.socket.as_raw_fd(), Shutdown::Read);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn receives_with_sender_pid_and_stops_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 3).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client
            .send_to(b"<30>Nov 25 18:00:00 t[1]: hello\0", &path)
            .unwrap();
        let got = receiver.wait_for(0, Duration::from_secs(2), |m| m.text.contains("hello"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].sender_pid, Some(std::process::id() as Pid));
        assert_eq!(got[0].facility, Some(Facility::Daemon));
        assert_eq!(got[0].severity, Some(Severity::Info));
        assert!(got[0].text.ends_with("hello"), "{:?}", got[0].text);
        for i in 0..5 {
            client
                .send_to(format!("garbage {i}").as_bytes(), &path)
                .unwrap();
        }
        receiver.wait_for(0, Duration::from_secs(2), |m| m.seq == 6);
        assert_eq!(receiver.received(), 6);
        let kept = receiver.messages();
        assert_eq!(kept.len(), 3, "ring is bounded");
        assert_eq!(kept[2].facility, None, "no PRI, no facility");
        drop(receiver);
        assert!(!path.exists(), "socket file removed on drop");
    }

    #[test]
    fn oversized_datagram_is_kept_cut_and_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = Receiver::bind(&path, 10).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let big = vec![b'x'; MAX_DATAGRAM + 100];
        if client.send_to(&big, &path).is_err() {
            eprintln!("SKIPPED: this kernel refuses datagrams over {MAX_DATAGRAM} bytes");
            return;
        }
        let got = receiver.wait_for(0, Duration::from_secs(2), |_| true);
        assert!(got[0].truncated);
        assert_eq!(got[0].text.len(), MAX_DATAGRAM);
    }
}
