//! Low-level reading of one process's /proc directory.
//!
//! Everything goes through a directory fd for `/proc/PID` opened once per snapshot. That
//! is faster than resolving `/proc/PID/...` for every file, and it pins the process: if
//! the PID dies and is reused mid-snapshot, reads through the old directory fail with
//! ESRCH instead of silently mixing in a stranger's data.

use std::ffi::{CStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::Mode;

use super::{Pid, ProbeError};

/// Size that holds any stat or fdinfo file and the status file of ordinary machines in a
/// single `read`; it grows on demand for the rare larger status.
const SCRATCH_SIZE: usize = 4096;

/// A read buffer reused for every file of one snapshot, so a snapshot allocates it once.
pub(crate) struct Scratch {
    buf: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            buf: vec![0; SCRATCH_SIZE],
        }
    }

    /// Read all of `file`. Hand-rolled for speed: `Read::read_to_end` on a `File` first
    /// asks fstat/lseek for a size hint (two wasted syscalls on /proc files that report
    /// size 0) and then needs a final read that returns 0.
    ///
    /// The files read here (stat, status, comm, fdinfo/N) are single-record seq_files:
    /// the kernel formats the whole text at once, and seq_file only splits output at
    /// record boundaries, so a read that leaves the buffer partly empty has returned
    /// everything. Only a read that fills the buffer needs another; skipping the final
    /// zero-length read saves one syscall per file.
    fn fill(&mut self, mut file: File) -> io::Result<&[u8]> {
        let mut len = 0;
        loop {
            match file.read(&mut self.buf[len..]) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if len < self.buf.len() {
                        break;
                    }
                    self.buf.resize(self.buf.len() * 2, 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[..len])
    }
}

/// An open `/proc/PID` directory.
pub(crate) struct ProcDir {
    pub(crate) pid: Pid,
    fd: OwnedFd,
}

impl ProcDir {
    /// Open `/proc/PID`. A missing directory means the process does not exist (or is
    /// hidden from us by `hidepid`, which looks the same and calls for the same advice).
    pub(crate) fn open(pid: Pid) -> Result<Self, ProbeError> {
        if pid <= 0 {
            // /proc/0 does not exist and "-1" is not a directory; say so directly rather
            // than via a confusing path.
            return Err(ProbeError::NoSuchProcess(pid));
        }
        let mut path = [0u8; 24];
        let len = {
            let mut cursor = &mut path[..];
            // An i32 needs at most 11 characters, so "/proc/" + pid always fits.
            write!(cursor, "/proc/{pid}").expect("/proc/<i32> fits in 24 bytes");
            24 - cursor.len()
        };
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(&path[..len], flags, Mode::empty()) {
            Ok(fd) => Ok(ProcDir { pid, fd }),
            Err(errno) => Err(classify(pid, format!("/proc/{pid}"), errno)),
        }
    }

    /// The full path of an entry, for error messages only (so built lazily).
    pub(crate) fn path_of(&self, name: &str) -> String {
        format!("/proc/{}/{name}", self.pid)
    }

    /// Read a file of this directory into `scratch`, mapping failures to [`ProbeError`].
    pub(crate) fn read_file<'s>(
        &self,
        name: &CStr,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [u8], ProbeError> {
        let what = || self.path_of(&name.to_string_lossy());
        self.read_raw(name.to_bytes(), scratch)
            .map_err(|err| classify_io(self.pid, what(), err))
    }

    /// Read a file below this directory (e.g. "fdinfo/3"), raw errors for the caller to
    /// judge: a vanished fd is normal, a vanished stat is not.
    pub(crate) fn read_raw<'s>(
        &self,
        name: &[u8],
        scratch: &'s mut Scratch,
    ) -> io::Result<&'s [u8]> {
        read_at(self.fd.as_fd(), name, scratch)
    }

    /// The directory fd, for lookups below it.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// An `O_PATH` fd for a directory below this one ("fdinfo"), to look its entries up
    /// by name alone.
    pub(crate) fn open_path(&self, name: &CStr) -> nix::Result<OwnedFd> {
        openat(
            self.fd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// Target of a link below this directory: "cwd", "root", "fd/3".
    pub(crate) fn readlink(&self, name: &[u8]) -> nix::Result<OsString> {
        readlinkat(self.fd.as_fd(), name)
    }

    /// When probing our own process, the descriptor of this directory: it shows up in
    /// our fd table only because we are looking, so the fd list leaves it out.
    pub(crate) fn own_fd(&self) -> Option<i32> {
        (self.pid == std::process::id() as Pid).then(|| self.fd.as_raw_fd())
    }
}

/// Read a file below the directory `dir`, raw errors.
pub(crate) fn read_at<'s>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    scratch: &'s mut Scratch,
) -> io::Result<&'s [u8]> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    scratch.fill(File::from(fd))
}

/// Open the directory `name` below `dir` ("fd", "1234/fd") and append its decimal
/// entries to `out`, unsorted; the open directory is returned for lookups below it.
///
/// Raw getdents64 on a plain fd: opendir(3) would add an fstat and two fcntl calls per
/// directory and nix's iterator a rewind when dropped, and the peer scan of `inspect`
/// lists the fd directory of every process on the machine.
pub(crate) fn list_numbers(
    dir: BorrowedFd<'_>,
    name: &CStr,
    out: &mut Vec<i32>,
) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::empty())?;
    // Records of linux_dirent64: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1),
    // then the NUL-terminated name; d_reclen keeps every record 8-byte aligned.
    let mut buf = [0u64; 1024];
    loop {
        // SAFETY: the buffer is ours, writable, and its length in bytes is what is passed;
        // the kernel writes at most that many bytes.
        let got = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if got < 0 {
            return Err(Errno::last());
        }
        if got == 0 {
            return Ok(fd);
        }
        let bytes: &[u8] = bytemuck_bytes(&buf, got as usize);
        let mut at = 0;
        while at + 19 <= bytes.len() {
            let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if reclen == 0 || at + reclen > bytes.len() {
                break;
            }
            let name = &bytes[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            // Decimal names only: "." and "..", and any other name, are left out.
            if name.first().is_some_and(u8::is_ascii_digit)
                && let Some(n) = super::stat::parse_int(name)
            {
                out.push(n);
            }
            at += reclen;
        }
    }
}

/// The processors this process may run on, asked once (std reads the cgroup quota files
/// each time it is asked).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `work` done on `items` in shares of at least `min_share` items, at most one per core
/// (and 4), each on a thread of its own but the first, which the calling thread does:
/// the results, one per share, in the items' order. Fewer than two shares' worth of
/// items start no thread.
///
/// Exists for the /proc reads that cost kernel time per item (descriptors, processes)
/// and that a second core shortens.
pub(crate) fn in_shares<T: Sync, R: Send>(
    items: &[T],
    min_share: usize,
    work: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let shares = cores().min(4).min(items.len() / min_share.max(1)).max(1);
    let share = items.len().div_ceil(shares).max(1);
    std::thread::scope(|scope| {
        let mut parts = items.chunks(share);
        let first = parts.next().unwrap_or(&[]);
        let work = &work;
        let others: Vec<_> = parts.map(|part| scope.spawn(move || work(part))).collect();
        let mut all = vec![work(first)];
        for other in others {
            // A thread that panicked is a bug, not a property of what it read: pass it on.
            all.push(
                other
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        all
    })
}

/// The first `len` bytes of a u64 buffer.
fn bytemuck_bytes(buf: &[u64], len: usize) -> &[u8] {
    // SAFETY: u8 has no alignment or validity requirements, every byte of the u64s is
    // initialised, and `len` is clamped to the buffer's size in bytes.
    let all = unsafe {
        std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), std::mem::size_of_val(buf))
    };
    &all[..len.min(all.len())]
}

/// Read a small file by absolute path (the parent's comm), raw errors.
pub(crate) fn read_path<'s>(path: &[u8], scratch: &'s mut Scratch) -> io::Result<&'s [u8]> {
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    scratch.fill(File::from(fd))
}

/// Map an errno from /proc to the error a user can act on. ENOENT and ESRCH both mean
/// the process is gone: ENOENT when its directory vanished, ESRCH when it died after we
/// opened the directory.
fn classify(pid: Pid, what: String, errno: Errno) -> ProbeError {
    match errno {
        Errno::ENOENT | Errno::ESRCH => ProbeError::NoSuchProcess(pid),
        Errno::EACCES | Errno::EPERM => ProbeError::PermissionDenied { pid, what },
        other => ProbeError::Io {
            pid,
            what,
            source: io::Error::from(other),
        },
    }
}

/// [`classify`] for errors that went through `std::io`.
fn classify_io(pid: Pid, what: String, err: io::Error) -> ProbeError {
    match err.raw_os_error() {
        Some(code) => classify(pid, what, Errno::from_raw(code)),
        None => ProbeError::Io {
            pid,
            what,
            source: err,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_numbers_reads_every_decimal_entry_across_many_getdents_calls() {
        // 1 200 numbered files (about 30 KiB of records) fill several 8 KiB getdents
        // buffers; other names, "." and ".." are left out.
        let dir = tempfile::tempdir().unwrap();
        for n in 0..1200 {
            std::fs::write(dir.path().join(n.to_string()), b"").unwrap();
        }
        for other in ["x1", "12a", "-3", "lost+found"] {
            std::fs::write(dir.path().join(other), b"").unwrap();
        }
        let parent = nix::fcntl::open(
            dir.path().parent().unwrap(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let name =
            std::ffi::CString::new(dir.path().file_name().unwrap().as_encoded_bytes()).unwrap();
        let mut got = Vec::new();
        list_numbers(parent.as_fd(), &name, &mut got).unwrap();
        got.sort_unstable();
        let expected: Vec<i32> = (0..1200).collect();
        assert!(
            got == expected,
            "{} entries, first {:?}",
            got.len(),
            &got[..5]
        );
        // A missing directory is an error, not an empty list.
        let err = list_numbers(parent.as_fd(), c"no-such-directory-here", &mut got);
        assert_eq!(err.err(), Some(Errno::ENOENT));
    }

    #[test]
    fn scratch_grows_for_files_larger_than_its_buffer() {
        // A regular file fills every read, so this walks the grow-and-read-again path.
        let mut file = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&content).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let mut scratch = Scratch::new();
        assert_eq!(scratch.fill(file).unwrap(), &content[..]);
    }

    #[test]
    fn errno_becomes_an_actionable_error() {
        let gone = classify(41, "/proc/41/status".into(), Errno::ESRCH);
        assert!(matches!(gone, ProbeError::NoSuchProcess(41)), "{gone:?}");

        let denied = classify(42, "/proc/42/stat".into(), Errno::EACCES);
        assert!(matches!(
            denied,
            ProbeError::PermissionDenied { pid: 42, .. }
        ));
        assert_eq!(
            denied.to_string(),
            "cannot read /proc/42/stat: permission denied — run as the process's owner or root"
        );

        let other = classify_io(
            43,
            "/proc/43/stat".into(),
            io::Error::from_raw_os_error(libc::EIO),
        );
        assert!(matches!(other, ProbeError::Io { pid: 43, .. }), "{other:?}");
        let msg = other.to_string();
        assert!(
            msg.contains("/proc/43/stat") && msg.contains("process 43"),
            "{msg}"
        );
    }

    #[test]
    fn status_fits_in_one_read() {
        let mut scratch = Scratch::new();
        let bytes = read_path(b"/proc/self/status", &mut scratch).unwrap();
        let text = std::str::from_utf8(bytes).unwrap();
        // The last line of status is the context-switch count: proof nothing was cut off.
        assert!(text.ends_with('\n'), "{text}");
        assert!(text.contains("nonvoluntary_ctxt_switches:"), "{text}");
    }
}
