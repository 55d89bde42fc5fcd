//! `--listen ADDR`: the sockets the lab binds before the service starts and passes to it
//! as fd 3, 4, … (sd_listen_fds(3)), so no connection made meanwhile is lost.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// One bound listener.
pub enum Listener {
    Tcp(TcpListener),
    /// The socket, its path, and the path's (device, inode) as bound: only that file is
    /// removed at the end.
    Unix(UnixListener, PathBuf, (u64, u64)),
}

impl Listener {
    /// Bind `spec`: `HOST:PORT` (IPv4 or `[IPv6]:PORT`), `:PORT` for the loopback address
    /// (`:0` picks a free port), or a Unix socket path (it must not exist yet).
    pub fn bind(spec: &str) -> Result<Listener, String> {
        if spec.starts_with('/') || spec.starts_with("./") {
            let path = PathBuf::from(spec);
            return UnixListener::bind(&path)
                .map(|l| {
                    let id = std::fs::symlink_metadata(&path)
                        .map(|m| (m.dev(), m.ino()))
                        .unwrap_or_default();
                    Listener::Unix(l, path, id)
                })
                .map_err(|e| {
                    format!("--listen {spec}: cannot bind this Unix socket: {e} — pick a path that does not exist yet, in a directory you can write")
                });
        }
        let text = match spec.strip_prefix(':') {
            Some(port) => format!("127.0.0.1:{port}"),
            None => spec.to_string(),
        };
        let addr: SocketAddr = text.parse().map_err(|_| {
            format!("--listen {spec}: not an address — give 127.0.0.1:8080, :0 (any free port on the loopback), [::1]:8080 or a Unix socket path such as /tmp/my.sock")
        })?;
        TcpListener::bind(addr).map(Listener::Tcp).map_err(|e| {
            format!("--listen {spec}: cannot bind {addr}: {e} — the port may be taken (try :0) or need root (below 1024)")
        })
    }

    /// What it is bound to, in words: `127.0.0.1:43121`, `/tmp/my.sock`.
    pub fn address(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(_, path, _) => path.display().to_string(),
        }
    }

    /// The name passed in LISTEN_FDNAMES: `tcp-PORT`, or the socket file's name.
    pub fn name(&self) -> String {
        match self {
            Listener::Tcp(l) => format!("tcp-{}", l.local_addr().map(|a| a.port()).unwrap_or(0)),
            Listener::Unix(_, path, _) => path
                .file_name()
                .map(|n| n.to_string_lossy().replace(':', "_"))
                .unwrap_or_else(|| "unix".into()),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _, _) => l.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path, id) = self
            && std::fs::symlink_metadata(&*path).is_ok_and(|m| (m.dev(), m.ino()) == *id)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_loopback_or_unix_paths_with_errors_that_say_what_to_give() {
        let l = Listener::bind(":0").unwrap();
        assert!(l.address().starts_with("127.0.0.1:"), "{}", l.address());
        assert!(l.name().starts_with("tcp-"));
        let e = Listener::bind("nonsense").err().unwrap();
        assert!(e.contains("127.0.0.1:8080"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let u = Listener::bind(path.to_str().unwrap()).unwrap();
        assert_eq!(u.name(), "s.sock");
        let taken = Listener::bind(path.to_str().unwrap()).err().unwrap();
        assert!(taken.contains("does not exist yet"), "{taken}");
        drop(u);
        assert!(!path.exists(), "removed with the listener");
    }
}
