//! APUE 13.4's network path: syslog messages as UDP datagrams (port 514 on a real host).
//! The socket is std's; drop counts come from /proc/net/udp, which reports the same
//! per-socket counter that SO_RXQ_OVFL would attach to every datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

/// Bind a non-blocking UDP socket; returns it with its inode, the key into /proc/net/udp.
pub(super) fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, u64)> {
    let named = |e: io::Error| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                " — another syslogd has it: pick another port, or port 0 for any free one"
            }
            io::ErrorKind::PermissionDenied => {
                " — ports below 1024 need root: try a port such as 5514"
            }
            _ => "",
        };
        io::Error::new(e.kind(), format!("syslog UDP socket {addr}: {e}{hint}"))
    };
    let socket = UdpSocket::bind(addr).map_err(named)?;
    socket.set_nonblocking(true).map_err(named)?;
    let inode = nix::sys::stat::fstat(socket.as_fd())
        .map_err(|e| named(e.into()))?
        .st_ino;
    Ok((socket, inode))
}

/// Datagrams the kernel dropped because these sockets' receive queues were full, summed;
/// `None` when /proc/net/udp cannot be read or does not list a socket.
pub(super) fn drops(inodes: &[u64]) -> Option<u64> {
    if inodes.is_empty() {
        return Some(0);
    }
    let mut tables = String::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        // udp6 is absent when IPv6 is disabled; udp must be there.
        match std::fs::read_to_string(table) {
            Ok(text) => tables.push_str(&text),
            Err(_) if table.ends_with('6') => {}
            Err(_) => return None,
        }
    }
    drops_in(&tables, inodes)
}

/// The sum of the `drops` column over the rows whose `inode` column is one of `inodes`.
fn drops_in(tables: &str, inodes: &[u64]) -> Option<u64> {
    let mut found = 0;
    let mut total = 0;
    for row in tables.lines() {
        let columns: Vec<&str> = row.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        let (Some(inode), Some(drops)) = (columns.get(9), columns.get(12)) else {
            continue;
        };
        let (Ok(inode), Ok(drops)) = (inode.parse::<u64>(), drops.parse::<u64>()) else {
            continue;
        };
        if inodes.contains(&inode) {
            found += 1;
            total += drops;
        }
    }
    (found == inodes.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_by_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
   1: 0100007F:A3E5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
   2: 0100007F:A3E6 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5\n";
        assert_eq!(drops_in(table, &[4242]), Some(17));
        assert_eq!(drops_in(table, &[4242, 4243]), Some(22));
        assert_eq!(
            drops_in(table, &[1]),
            None,
            "a socket missing from the table"
        );
    }

    #[test]
    fn a_bound_socket_is_found_in_proc() {
        let (socket, inode) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(drops(&[inode]), Some(0));
        drop(socket);
    }
}
