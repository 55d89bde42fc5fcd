//! What each descriptor of a process is: a socket's family, type, state and address, a
//! pipe's or socketpair's other end.
//!
//! TCP and UDP come from the procfs crate's tables of the process's own network namespace
//! (`/proc/PID/net/tcp`, `tcp6`, `udp`, `udp6`), and Unix sockets' paths and types from
//! its `/proc/PID/net/unix`. Two things procfs cannot give: whether a Unix socket listens
//! (the kernel shows it only in the `Flags` column, `__SO_ACCEPTCON`, which
//! `UnixNetEntry` drops) and who is at the other end (an unbound client has no path of
//! its own). Both come from sock_diag ([`super::unix_diag`]). The other end of a pipe
//! or socketpair is found by scanning the fd tables of /proc for the same inode — the
//! only way there is ([`Channels`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use procfs::net::{TcpState, UdpState};

use crate::probe::{LinkBuf, NumberName, fd_dir_known_empty, in_shares, list_numbers};

use super::unix_diag::{self, UNIX_LISTEN, UnixSocket};

/// One socket, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketInfo {
    /// "TCP", "TCPv6", "UDP", "UDPv6", "Unix stream", "Unix datagram", "Unix seqpacket".
    pub kind: String,
    /// Listening (TCP/Unix stream) or bound with no peer (UDP): a second instance binding
    /// the same address fails with EADDRINUSE.
    pub listening: bool,
    /// The local address ("0.0.0.0:80", "[::]:22") or bound Unix path.
    pub local: Option<String>,
    /// The remote address, or the bound path of the Unix peer.
    pub peer: Option<String>,
    /// A connected Unix socket whose peer has been closed.
    pub peer_gone: bool,
    /// The inode of the Unix peer, to look its holder up.
    pub peer_inode: Option<u64>,
    /// What became of its bound path, once [`SocketTable::follow_paths`] has looked:
    /// `None` while the path still names this socket (or nobody looked).
    pub path_now: Option<PathNow>,
}

/// What became of the path a Unix socket was bound to, when it no longer leads to it.
///
/// Exists because /proc/net/unix keeps the name given to bind() for the socket's life:
/// supervisord binds `sock.PID` and renames it to `sock`; dbus-daemon removes a socket
/// file it finds and binds anew, so the first bus keeps a name that now leads elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathNow {
    /// Renamed (or hard-linked, the old name removed): it is reached at this path now.
    Renamed(String),
    /// The path names another file now: whoever connects there reaches something else.
    Replaced,
    /// Nothing is at the path any more: nothing can connect to it by name.
    Removed,
}

/// Every socket the process's namespace lists, by inode.
#[derive(Debug, Default)]
pub(crate) struct SocketTable {
    pub by_inode: HashMap<u64, SocketInfo>,
    /// Why some part could not be read (shown when a socket is left undescribed).
    pub problem: Option<String>,
    /// sock_diag's view of every Unix socket, kept for [`SocketTable::follow_paths`].
    diag: HashMap<u64, UnixSocket>,
}

fn ip(addr: &SocketAddr) -> String {
    addr.to_string()
}

impl SocketTable {
    /// Read the tables of `pid`'s network namespace (and sock_diag for Unix peers).
    pub(crate) fn read(pid: i32) -> SocketTable {
        let mut table = SocketTable::default();
        let process = match procfs::process::Process::new(pid) {
            Ok(p) => p,
            Err(e) => {
                table.problem = Some(e.to_string());
                return table;
            }
        };
        for (name, entries) in [("TCP", process.tcp()), ("TCPv6", process.tcp6())] {
            match entries {
                Ok(list) => {
                    for e in list {
                        let listening = e.state == TcpState::Listen;
                        table.by_inode.insert(
                            e.inode,
                            SocketInfo {
                                kind: name.into(),
                                listening,
                                local: Some(ip(&e.local_address)),
                                peer: (!listening).then(|| ip(&e.remote_address)),
                                peer_gone: false,
                                peer_inode: None,
                                path_now: None,
                            },
                        );
                    }
                }
                Err(e) => table.problem = Some(format!("{name}: {e}")),
            }
        }
        for (name, entries) in [("UDP", process.udp()), ("UDPv6", process.udp6())] {
            match entries {
                Ok(list) => {
                    for e in list {
                        let connected = e.state == UdpState::Established;
                        table.by_inode.insert(
                            e.inode,
                            SocketInfo {
                                kind: name.into(),
                                listening: !connected && e.local_address.port() != 0,
                                local: Some(ip(&e.local_address)),
                                peer: connected.then(|| ip(&e.remote_address)),
                                peer_gone: false,
                                peer_inode: None,
                                path_now: None,
                            },
                        );
                    }
                }
                Err(e) => table.problem = Some(format!("{name}: {e}")),
            }
        }
        let diag: HashMap<u64, UnixSocket> = match unix_diag::dump() {
            Ok(d) => d,
            Err(e) => {
                table.problem = Some(format!("sock_diag: {e}"));
                HashMap::new()
            }
        };
        match process.unix() {
            Ok(list) => {
                for e in list {
                    let d = diag.get(&e.inode);
                    table
                        .by_inode
                        .insert(e.inode, unix_info(e.socket_type, e.path, d, &diag));
                }
            }
            Err(e) => table.problem = Some(format!("Unix: {e}")),
        }
        table.diag = diag;
        table
    }

    /// For the sockets with these inodes (the process's own), find out whether each bound
    /// path still leads to the socket, looking through `pid`'s root so that a process in
    /// another mount namespace or a chroot is judged by the files it sees.
    pub(crate) fn follow_paths(&mut self, pid: i32, inodes: &[u64]) {
        for inode in inodes {
            let Some(diag) = self.diag.get(inode) else {
                continue;
            };
            let Some(info) = self.by_inode.get_mut(inode) else {
                continue;
            };
            let Some(path) = info.local.clone().filter(|p| p.starts_with('/')) else {
                continue;
            };
            if diag.vfs.is_none() {
                continue;
            }
            let seen = rooted(pid, &path);
            info.path_now = match std::fs::metadata(&seen) {
                Ok(meta) if diag.is_file(&meta) => None,
                found => {
                    let renamed = renamed_to(diag, &path, &seen);
                    match (renamed, found) {
                        (Some(new), _) => Some(PathNow::Renamed(new)),
                        (None, Ok(_)) => Some(PathNow::Replaced),
                        (None, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some(PathNow::Removed)
                        }
                        // Not ours to look at (permissions): say nothing.
                        (None, Err(_)) => None,
                    }
                }
            };
        }
    }
}

/// What is at /dev/log for a process, judged by the kernel: a socket file with a socket
/// bound to it, a socket file nobody is bound to (left by a logger that exited), or
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DevLog {
    /// A socket of this network namespace is bound to the file: a logger listens there.
    Bound,
    /// A socket file no socket here is bound to: stale, so a connect() is refused.
    Stale,
    /// No socket file (nothing, or something else, is there).
    Missing,
}

impl SocketTable {
    /// What is at /dev/log as `pid` sees it.
    pub(crate) fn dev_log(&self, pid: i32) -> DevLog {
        let Ok(meta) = std::fs::metadata(rooted(pid, "/dev/log")) else {
            return DevLog::Missing;
        };
        if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            return DevLog::Missing;
        }
        let fresh;
        let diag = if self.diag.is_empty() {
            fresh = unix_diag::dump().unwrap_or_default();
            &fresh
        } else {
            &self.diag
        };
        if diag.values().any(|d| d.is_file(&meta)) {
            DevLog::Bound
        } else {
            DevLog::Stale
        }
    }
}

/// `path` as `pid` sees it: through /proc/PID/root when we may follow it, else as is.
pub(crate) fn rooted(pid: i32, path: &str) -> std::path::PathBuf {
    let root = format!("/proc/{pid}/root");
    if std::fs::metadata(&root).is_ok() {
        std::path::PathBuf::from(format!("{root}{path}"))
    } else {
        std::path::PathBuf::from(path)
    }
}

/// The path in the same directory that now names this socket's file, if one does (a
/// rename or link() after bind(); supervisord's `sock.PID` → `sock`).
fn renamed_to(diag: &UnixSocket, path: &str, seen: &std::path::Path) -> Option<String> {
    let dir = seen.parent()?;
    let shown_dir = std::path::Path::new(path).parent()?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if diag.is_file(&meta) {
            return Some(
                shown_dir
                    .join(entry.file_name())
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    None
}

fn unix_info(
    socket_type: u16,
    path: Option<std::path::PathBuf>,
    diag: Option<&UnixSocket>,
    all: &HashMap<u64, UnixSocket>,
) -> SocketInfo {
    let kind = match i32::from(socket_type) {
        libc::SOCK_STREAM => "Unix stream",
        libc::SOCK_DGRAM => "Unix datagram",
        libc::SOCK_SEQPACKET => "Unix seqpacket",
        _ => "Unix",
    };
    let local = path.map(|p| p.to_string_lossy().into_owned());
    let peer_inode = diag.and_then(|d| d.peer);
    let peer_gone = peer_inode.is_some_and(|p| p == 0 || !all.contains_key(&p));
    let peer = peer_inode
        .and_then(|p| all.get(&p))
        .and_then(|p| p.name.clone());
    SocketInfo {
        kind: kind.into(),
        listening: diag.is_some_and(|d| d.state == UNIX_LISTEN),
        local,
        peer,
        peer_gone,
        peer_inode: peer_inode.filter(|&p| p != 0),
        path_now: None,
    }
}

/// Every pipe and socket descriptor of every other process we may read: target
/// ("pipe:[123]", "socket:[45]") → the PIDs holding it, ascending, each once.
///
/// Exists to name the other ends of a process's pipes and socketpairs, which only a scan
/// of every fd table can tell (as `ss -p` and `lsof` do). The scan is a readlink per
/// descriptor of the machine, so `inspect` runs it beside its snapshot, shares it out
/// among the cores (in PID order, merged back in that order), looks each link up by
/// number below the process's own fd directory, and gives a process whose links it may
/// not read (another user's, or one that is not dumpable) up at the first refusal.
#[derive(Default)]
pub(crate) struct Channels(HashMap<String, Vec<i32>>);

impl Channels {
    /// Scan every process but `except`.
    ///
    /// Two passes, each shared out among the cores: list every fd table, then read the
    /// links in chunks of descriptors (not of processes: one process may hold most of
    /// the machine's descriptors).
    pub(crate) fn scan(except: i32) -> Channels {
        let mut channels = Channels::default();
        let mut pids = Vec::new();
        let Ok(proc_dir) = list_numbers(nix::fcntl::AT_FDCWD, c"/proc", &mut pids) else {
            return channels;
        };
        pids.retain(|&pid| pid != except);
        pids.sort_unstable();
        let proc_fd = proc_dir.as_fd();
        let tables: Vec<FdTable> = in_shares(&pids, 32, |part| fd_tables(proc_fd, part))
            .into_iter()
            .flatten()
            .collect();
        let fds: Vec<(usize, i32)> = tables
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.fds.iter().map(move |&fd| (i, fd)))
            .collect();
        let links = in_shares(&fds, 64, |part| channel_links(&tables, part))
            .into_iter()
            .flatten();
        for (pid, target) in links {
            let list = channels.0.entry(target).or_default();
            if list.last() != Some(&pid) {
                list.push(pid);
            }
        }
        channels
    }

    /// The PIDs holding any of `targets`, as the scan found them.
    pub(crate) fn holder_pids<'a>(
        &'a self,
        targets: &'a [String],
    ) -> impl Iterator<Item = i32> + 'a {
        targets
            .iter()
            .filter_map(|t| self.0.get(t))
            .flatten()
            .copied()
    }

    /// The holders of each of `targets` found by the scan, with their command names:
    /// from `named` (rows read meanwhile), else read now.
    pub(crate) fn holders(
        &self,
        targets: &[String],
        named: impl Fn(i32) -> Option<String>,
    ) -> HashMap<String, Vec<(i32, String)>> {
        targets
            .iter()
            .filter_map(|t| {
                let pids = self.0.get(t)?;
                let named = pids
                    .iter()
                    .map(|&pid| {
                        let name = named(pid).or_else(|| crate::locks::comm(pid));
                        (pid, name.unwrap_or_else(|| "?".into()))
                    })
                    .collect();
                Some((t.clone(), named))
            })
            .collect()
    }
}

/// The fd table of one process as the peer scan listed it: the listed directory stays
/// open for the link reads below it.
struct FdTable {
    pid: i32,
    dir: OwnedFd,
    fds: Vec<i32>,
}

/// The fd tables of `pids` that we may list and whose links we may read, in order.
fn fd_tables(proc_fd: BorrowedFd<'_>, pids: &[i32]) -> Vec<FdTable> {
    let mut found = Vec::new();
    let mut name = NumberName::new();
    let mut link = LinkBuf::new();
    for &pid in pids {
        if fd_dir_known_empty(proc_fd, name.of(pid, b"/fd")) {
            continue;
        }
        // Whether its links may be read is one ptrace-style check for the whole process
        // (not dumpable, or another user's): one refused link read says it for all of
        // them, before its directory is listed for nothing.
        if matches!(
            link.read(proc_fd, name.of(pid, b"/fd/0")),
            Err(Errno::EACCES | Errno::EPERM)
        ) {
            continue;
        }
        let fd_dir = name.of(pid, b"/fd");
        let mut fds = Vec::new();
        let Ok(dir) = list_numbers(proc_fd, fd_dir, &mut fds) else {
            continue;
        };
        if fds.is_empty() {
            continue;
        }
        fds.sort_unstable();
        found.push(FdTable { pid, dir, fds });
    }
    found
}

/// The pipe and socket links among `fds` (table index, fd), as (pid, target) pairs in
/// the same order; a process whose links we may not read is given up at the first
/// refusal.
fn channel_links(tables: &[FdTable], fds: &[(usize, i32)]) -> Vec<(i32, String)> {
    let mut hits = Vec::new();
    let mut name = NumberName::new();
    let mut link = LinkBuf::new();
    for run in fds.chunk_by(|a, b| a.0 == b.0) {
        let table = &tables[run[0].0];
        for &(_, fd) in run {
            match link.read(table.dir.as_fd(), name.of(fd, b"")) {
                Ok(target) => {
                    if target.starts_with(b"pipe:") || target.starts_with(b"socket:") {
                        hits.push((table.pid, String::from_utf8_lossy(target).into_owned()));
                    }
                }
                Err(Errno::EACCES | Errno::EPERM) => break,
                Err(_) => {}
            }
        }
    }
    hits
}

impl SocketInfo {
    /// The path that reaches it now: the bound one, or where it was renamed to; `None`
    /// when it has none or the bound path leads elsewhere now.
    pub(crate) fn path(&self) -> Option<&str> {
        match &self.path_now {
            Some(PathNow::Renamed(new)) => Some(new),
            Some(_) => None,
            None => self.local.as_deref(),
        }
    }

    /// The socket in a few words: "TCP listening on 0.0.0.0:80", "Unix datagram
    /// connected to /dev/log".
    pub(crate) fn describe(&self) -> String {
        let kind = &self.kind;
        let bound = self.local.as_deref();
        let local = match &self.path_now {
            Some(PathNow::Renamed(new)) => Some(new.as_str()),
            _ => bound,
        };
        let tail = match (&self.path_now, bound) {
            (Some(PathNow::Renamed(_)), Some(old)) => format!(" (bound as {old}, then renamed)"),
            (Some(PathNow::Replaced), _) => {
                ", a path that now names another file (whoever connects there reaches that instead)"
                    .into()
            }
            (Some(PathNow::Removed), _) => {
                ", a path since removed (nothing can connect to it by name)".into()
            }
            _ => String::new(),
        };
        format!("{}{tail}", self.describe_as(kind, local))
    }

    fn describe_as(&self, kind: &str, local: Option<&str>) -> String {
        if self.listening {
            let verb = if kind.starts_with("UDP") {
                "bound to"
            } else {
                "listening on"
            };
            return format!("{kind} {verb} {}", local.unwrap_or("?"));
        }
        if kind.starts_with("TCP") || kind.starts_with("UDP") {
            return match (&self.peer, local) {
                (Some(peer), Some(local)) => format!("{kind} {local} → {peer}"),
                (_, Some(local)) => format!("{kind} {local}"),
                _ => kind.to_owned(),
            };
        }
        match (&self.peer, local, self.peer_gone) {
            (_, _, true) => format!("{kind} socket whose peer has closed"),
            (Some(peer), _, _) => format!("{kind} socket connected to {peer}"),
            (None, Some(local), _) => format!("{kind} socket bound to {local}"),
            (None, None, _) if self.peer_inode.is_some() => format!("{kind} socket (connected)"),
            (None, None, _) => format!("{kind} socket (unconnected)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn a_tcp_listener_and_a_unix_listener_are_described() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let table = SocketTable::read(std::process::id() as i32);
        let t = &table.by_inode[&inode_of(&tcp)];
        assert!(t.listening);
        assert_eq!(t.describe(), format!("TCP listening on 127.0.0.1:{port}"));
        let u = &table.by_inode[&inode_of(&unix)];
        assert!(u.listening, "{u:?}");
        assert_eq!(
            u.describe(),
            format!("Unix stream listening on {}", path.display())
        );
    }

    #[test]
    fn a_datagram_client_whose_server_closed_has_lost_its_peer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        let table = SocketTable::read(std::process::id() as i32);
        let c = &table.by_inode[&inode_of(&client)];
        assert_eq!(c.peer.as_deref(), path.to_str(), "{c:?}");
        drop(server);
        let table = SocketTable::read(std::process::id() as i32);
        let c = &table.by_inode[&inode_of(&client)];
        assert!(c.peer_gone, "{c:?}");
    }
}
