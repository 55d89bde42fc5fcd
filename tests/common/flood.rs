//! Sending a flood of syslog datagrams, shared by the flood test and the syslog benchmark
//! (included by path, as benches cannot use the tests' `common` module).

use std::io::{ErrorKind, Write};

/// Send `count` small distinct datagrams with `send`, never blocking; returns how many
/// the kernel accepted and how many it refused with EAGAIN.
pub fn flood(count: u64, mut send: impl FnMut(&[u8]) -> std::io::Result<usize>) -> (u64, u64) {
    let (mut sent, mut refused) = (0, 0);
    let mut line = Vec::with_capacity(64);
    for i in 0..count {
        line.clear();
        write!(line, "<134>flood[1]: message {i}").unwrap();
        match send(&line) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => refused += 1,
            Err(e) => panic!("flood send {i}: {e}"),
        }
    }
    (sent, refused)
}
