//! Who is at the other end of a Unix socket, via the sock_diag netlink interface.
//!
//! /proc/net/unix lists the path a socket is *bound* to, but a syslog client's socket is
//! unbound: only the server side has the path. The kernel's `unix_diag` answers with each
//! socket's peer inode (`UNIX_DIAG_PEER`), so a client can be followed to the path of the
//! socket it is connected to. Unprivileged users may dump their network namespace's Unix
//! sockets, so this works for any process we can see.

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send};

/// `SOCK_DIAG_BY_FAMILY` from linux/sock_diag.h.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP` (NLM_F_ROOT | NLM_F_MATCH).
const REQUEST_DUMP: u16 = 0x1 | 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `udiag_show` bits: the bound name, the socket file's inode and the peer inode.
const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_VFS: u32 = 0x2;
const UDIAG_SHOW_PEER: u32 = 0x4;
/// Attribute types in a `unix_diag_msg` reply.
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
/// Size of `struct nlmsghdr` and of `struct unix_diag_msg`.
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

/// One Unix socket as the kernel describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnixSocket {
    /// The bound path; abstract names are shown with a leading '@', as `ss` does.
    pub name: Option<String>,
    /// Inode of the connected peer, if any; `Some(0)` when the peer has been closed (a
    /// datagram client whose server went away keeps a dangling peer).
    pub peer: Option<u64>,
    /// The socket file a bind() made, as the kernel reports it: the inode number cut to
    /// 32 bits and the device in the kernel's own `dev_t` layout (major << 20 | minor).
    /// A path can be renamed or replaced after bind(); this says which file is really
    /// this socket's (see [`UnixSocket::is_file`]).
    pub vfs: Option<(u32, u32)>,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    pub kind: u8,
    /// The kernel's state: `TCP_LISTEN` (10) for a listening socket, `TCP_ESTABLISHED`
    /// (1) for a connected one, `TCP_CLOSE` (7) otherwise.
    pub state: u8,
}

impl UnixSocket {
    /// Whether the file `meta` describes is this socket's (the one its bind() made).
    pub(crate) fn is_file(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some((ino, kdev)) = self.vfs else {
            return false;
        };
        let (major, minor) = (kdev >> 20, kdev & 0xf_ffff);
        // The kernel sends the inode number cut to 32 bits.
        meta.ino() as u32 == ino
            && libc::major(meta.dev()) == major
            && libc::minor(meta.dev()) == minor
    }
}

/// `TCP_LISTEN`, as unix_diag reports a listening Unix socket.
pub(crate) const UNIX_LISTEN: u8 = 10;

/// Every Unix socket of this network namespace, by inode.
pub(crate) fn dump() -> std::io::Result<HashMap<u64, UnixSocket>> {
    let sock = nix::sys::socket::socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let fd = sock.as_raw_fd();
    send(fd, &request(), MsgFlags::empty())?;

    let mut sockets = HashMap::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let len = recv(fd, &mut buf, MsgFlags::empty())?;
        if len == 0 {
            return Ok(sockets);
        }
        if parse_batch(&buf[..len], &mut sockets)? {
            return Ok(sockets);
        }
    }
}

/// `nlmsghdr` + `unix_diag_req` asking for every state, with names and peers.
fn request() -> Vec<u8> {
    let len = (NLMSG_HDR + 24) as u32;
    let mut msg = Vec::with_capacity(len as usize);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&REQUEST_DUMP.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    msg.push(libc::AF_UNIX as u8); // sdiag_family
    msg.push(0); // sdiag_protocol
    msg.extend_from_slice(&0u16.to_ne_bytes()); // pad
    msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    msg.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino
    msg.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER).to_ne_bytes());
    msg.extend_from_slice(&[0u8; 8]); // udiag_cookie
    msg
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parse one datagram of netlink messages into `out`; `Ok(true)` at the end of the dump.
fn parse_batch(batch: &[u8], out: &mut HashMap<u64, UnixSocket>) -> std::io::Result<bool> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "truncated sock_diag reply");
    let mut at = 0;
    while at + NLMSG_HDR <= batch.len() {
        let len = u32_at(batch, at).ok_or_else(bad)? as usize;
        let kind = u16_at(batch, at + 4).ok_or_else(bad)?;
        if len < NLMSG_HDR || at + len > batch.len() {
            return Err(bad());
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(batch, at + NLMSG_HDR).ok_or_else(bad)? as i32;
                return Err(std::io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                let body = &batch[at + NLMSG_HDR..at + len];
                if let Some((inode, socket)) = parse_socket(body) {
                    out.insert(inode, socket);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(false)
}

/// A `unix_diag_msg` and its attributes.
fn parse_socket(body: &[u8]) -> Option<(u64, UnixSocket)> {
    let inode = u64::from(u32_at(body, 4)?);
    let mut socket = UnixSocket {
        kind: *body.get(1)?,
        state: *body.get(2)?,
        ..UnixSocket::default()
    };
    let mut at = UNIX_DIAG_MSG;
    while at + 4 <= body.len() {
        let len = usize::from(u16_at(body, at)?);
        let kind = u16_at(body, at + 2)?;
        if len < 4 || at + len > body.len() {
            break;
        }
        let value = &body[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME if !value.is_empty() => socket.name = Some(socket_name(value)),
            UNIX_DIAG_PEER => socket.peer = u32_at(value, 0).map(u64::from),
            // struct unix_diag_vfs { u32 udiag_vfs_ino; u32 udiag_vfs_dev; }
            UNIX_DIAG_VFS => {
                socket.vfs = u32_at(value, 0).zip(u32_at(value, 4));
            }
            _ => {}
        }
        at += align4(len);
    }
    Some((inode, socket))
}

/// A `sun_path` as people write it: abstract names start with a NUL, shown as '@'.
fn socket_name(raw: &[u8]) -> String {
    match raw.split_first() {
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        _ => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixDatagram;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn a_connected_client_leads_to_the_bound_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();

        let table = dump().expect("sock_diag dump");
        let client_entry = &table[&inode_of(&client)];
        assert_eq!(client_entry.name, None);
        let peer = client_entry.peer.expect("a connected client has a peer");
        assert_eq!(peer, inode_of(&server));
        assert_eq!(table[&peer].name.as_deref(), path.to_str());
        assert_eq!(client_entry.kind, libc::SOCK_DGRAM as u8);
    }

    #[test]
    fn a_listening_stream_socket_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let table = dump().expect("sock_diag dump");
        let entry = &table[&inode_of(&listener)];
        assert_eq!(entry.state, UNIX_LISTEN);
        let file = std::fs::metadata(dir.path().join("s")).unwrap();
        assert!(entry.is_file(&file), "{entry:?} {file:?}");
        let other = std::fs::metadata(dir.path()).unwrap();
        assert!(!entry.is_file(&other));
        assert_eq!(entry.kind, libc::SOCK_STREAM as u8);
    }

    #[test]
    fn abstract_names_get_an_at_sign() {
        assert_eq!(socket_name(b"\0foo"), "@foo");
        assert_eq!(socket_name(b"/dev/log"), "/dev/log");
    }

    #[test]
    fn garbage_replies_do_not_panic() {
        let mut out = HashMap::new();
        assert!(parse_batch(&[0xff; 20], &mut out).is_err());
        assert_eq!(parse_socket(&[1, 2]), None);
        let mut body = vec![0u8; UNIX_DIAG_MSG];
        body.extend_from_slice(&[200, 0, 0, 0]);
        assert!(parse_socket(&body).is_some());
    }
}
