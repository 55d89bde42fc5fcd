//! The kernel's log as APUE 13.4's first source: /dev/kmsg, one record per read(2),
//! `pri,seq,usec,flags;text`. The kernel numbers its records, so a gap in `seq` is
//! exactly how many records were overwritten before we read them.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::syslog::parse::{Parsed, parse_kmsg};

const PATH: &str = "/dev/kmsg";

/// An open /dev/kmsg positioned after the last record that existed when it was opened.
pub(super) struct Kmsg {
    file: File,
    last_seq: Option<u64>,
}

/// What one read returned.
pub(super) enum Record {
    /// A record, its bytes as read, and how many records were lost just before it.
    Message(Parsed, Vec<u8>, u64),
    /// Nothing more for now.
    Empty,
}

impl Kmsg {
    /// Open /dev/kmsg for reading from its current end (old records are dmesg's job).
    pub(super) fn open() -> io::Result<Kmsg> {
        let named = |e: io::Error| {
            let hint = match e.kind() {
                io::ErrorKind::PermissionDenied => {
                    " — reading the kernel log needs root or CAP_SYSLOG while \
                     kernel.dmesg_restrict=1; run as root or leave kernel messages off"
                }
                io::ErrorKind::NotFound => {
                    " — this system (a container?) has no /dev/kmsg; leave kernel messages off"
                }
                _ => "",
            };
            io::Error::new(e.kind(), format!("cannot read {PATH}: {e}{hint}"))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(PATH)
            .map_err(named)?;
        file.seek(SeekFrom::End(0)).map_err(named)?;
        Ok(Kmsg {
            file,
            last_seq: None,
        })
    }

    /// Read one record into `buffer` (it must hold the largest record: 8 KiB is plenty).
    pub(super) fn read(&mut self, buffer: &mut [u8]) -> io::Result<Record> {
        loop {
            match nix::unistd::read(self.file.as_fd(), buffer) {
                Ok(0) => return Ok(Record::Empty),
                Ok(n) => {
                    let bytes = buffer[..n].to_vec();
                    let (seq, parsed) = parse_kmsg(&String::from_utf8_lossy(&bytes));
                    let lost = match (self.last_seq, seq) {
                        (Some(last), Some(seq)) => seq.saturating_sub(last + 1),
                        _ => 0,
                    };
                    if seq.is_some() {
                        self.last_seq = seq;
                    }
                    return Ok(Record::Message(parsed, bytes, lost));
                }
                Err(nix::errno::Errno::EAGAIN) => return Ok(Record::Empty),
                // EPIPE: records were overwritten under us; the next read carries on from
                // the oldest one left, and the seq gap counts the loss.
                Err(nix::errno::Errno::EPIPE | nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Kmsg {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}
