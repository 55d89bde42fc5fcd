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
        self.read_all(|buf, _| file.read(buf))
    }

    /// Read all of `file` again from its start, which a seq_file of /proc formats anew
    /// from what the kernel holds now: one pread where [`Self::fill`] of a fresh open
    /// takes an open, a read and a close, and the open's lookup below /proc is most of
    /// the cost.
    pub(crate) fn reread(&mut self, file: &File) -> io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        self.read_all(|buf, at| file.read_at(buf, at as u64))
    }

    /// The loop of [`Self::fill`] and [`Self::reread`]: `read(room, bytes so far)` until
    /// a read leaves room, growing the buffer when one fills it.
    fn read_all(
        &mut self,
        mut read: impl FnMut(&mut [u8], usize) -> io::Result<usize>,
    ) -> io::Result<&[u8]> {
        let mut len = 0;
        loop {
            match read(&mut self.buf[len..], len) {
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
        read_at(self.fd.as_fd(), name, scratch).map_err(|err| classify_io(self.pid, what(), err))
    }

    /// Open a file of this directory to read it again and again ([`Scratch::reread`]).
    pub(crate) fn open_file(&self, name: &CStr) -> Result<File, ProbeError> {
        open_read(self.fd.as_fd(), name)
            .map_err(|errno| classify(self.pid, self.path_of(&name.to_string_lossy()), errno))
    }

    /// [`Scratch::reread`] of `file`, a file `name` of this directory, failures mapped
    /// to [`ProbeError`] (ESRCH once the process is gone).
    pub(crate) fn reread<'s>(
        &self,
        file: &File,
        name: &str,
        scratch: &'s mut Scratch,
    ) -> Result<&'s [u8], ProbeError> {
        scratch
            .reread(file)
            .map_err(|err| classify_io(self.pid, self.path_of(name), err))
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
    name: &CStr,
    scratch: &'s mut Scratch,
) -> io::Result<&'s [u8]> {
    scratch.fill(open_read(dir, name)?)
}

/// Open the file `name` below `dir` for reading, raw errors.
pub(crate) fn open_read(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<File> {
    openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map(File::from)
}

/// A number as a name below a directory fd ("3" below fd/, "1234/fd" below /proc), with
/// its NUL, built on the stack: the per-descriptor lookups allocate nothing.
pub(crate) struct NumberName {
    buf: [u8; 32],
}

impl NumberName {
    pub(crate) fn new() -> Self {
        NumberName { buf: [0; 32] }
    }

    /// `n` in decimal, then `suffix` (at most 19 bytes, no NUL in it).
    pub(crate) fn of(&mut self, n: i32, suffix: &[u8]) -> &CStr {
        self.path(b"", n, suffix)
    }

    /// `prefix`, `n` in decimal, then `suffix` (at most 19 bytes together, no NUL).
    pub(crate) fn path(&mut self, prefix: &[u8], n: i32, suffix: &[u8]) -> &CStr {
        let mut digits = [0u8; 11];
        let mut at = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if n < 0 {
            at -= 1;
            digits[at] = b'-';
        }
        let mut len = 0;
        for part in [prefix, &digits[at..], suffix] {
            self.buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        self.buf[len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=len]).expect("one NUL, at the end")
    }
}

/// Room for one link target, reused from call to call. Below /proc the kernel formats a
/// target into a PATH_MAX buffer, so the first size always suffices there.
pub(crate) struct LinkBuf(Vec<u8>);

impl LinkBuf {
    pub(crate) fn new() -> Self {
        Self::with_room(libc::PATH_MAX as usize)
    }

    fn with_room(bytes: usize) -> Self {
        LinkBuf(vec![0; bytes.max(1)])
    }

    /// The target of the link `name` below `dir`, into this buffer (readlinkat(2) with
    /// no allocation; nix's grows a fresh vector each call).
    pub(crate) fn read<'b>(
        &'b mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
    ) -> Result<&'b [u8], Errno> {
        loop {
            // SAFETY: the buffer is ours and writable for its whole length, which is what
            // is passed; `name` is NUL-terminated.
            let got = unsafe {
                libc::readlinkat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    self.0.as_mut_ptr().cast(),
                    self.0.len(),
                )
            };
            match usize::try_from(got) {
                // A full buffer may hold a cut-off target: read it again with more room.
                Ok(n) if n == self.0.len() => self.0.resize(n * 2, 0),
                Ok(n) => return Ok(&self.0[..n]),
                Err(_) => return Err(Errno::last()),
            }
        }
    }
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
    let fd = open_listable(dir, name)?;
    read_numbers(fd.as_fd(), out)?;
    Ok(fd)
}

/// The directory `name` below `dir`, opened for listing.
pub(crate) fn open_listable(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty())
}

/// [`list_numbers`] again, of a directory it opened: from its start, as the kernel has
/// it now (one lseek where a fresh listing takes an open and a close).
pub(crate) fn relist_numbers(dir: BorrowedFd<'_>, out: &mut Vec<i32>) -> nix::Result<()> {
    nix::unistd::lseek(dir, 0, nix::unistd::Whence::SeekSet)?;
    read_numbers(dir, out)
}

/// The decimal entries of the open directory `fd` from where it stands, appended to `out`.
fn read_numbers(fd: BorrowedFd<'_>, out: &mut Vec<i32>) -> nix::Result<()> {
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
            return Ok(());
        }
        let bytes: &[u8] = bytemuck_bytes(&buf, got as usize);
        // The kernel stops filling only at the end or when the next record does not
        // fit: with room left for the longest record, this was the end, and the call
        // that would return 0 is saved (one per directory of the peer scan).
        let at_end = bytes.len() + LONGEST_DIRENT <= std::mem::size_of_val(&buf);
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
        if at_end {
            return Ok(());
        }
    }
}

/// The number of open descriptors of the fd directory `name` below `dir` (a "PID/fd"),
/// from one stat of it: since Linux 6.2 its size is that count. `None` when unsure: the
/// stat failed, or this kernel does not report the count (checked once, on our own fd
/// directory: a size of 0 there means no count, or no descriptors to tell by, and either
/// way the caller lists the directory instead).
pub(crate) fn fd_count(dir: BorrowedFd<'_>, name: &CStr) -> Option<usize> {
    static SIZES_COUNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let counts = *SIZES_COUNT
        .get_or_init(|| nix::sys::stat::stat("/proc/self/fd").is_ok_and(|st| st.st_size > 0));
    if !counts {
        return None;
    }
    let st = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty()).ok()?;
    usize::try_from(st.st_size).ok()
}

/// Whether the fd directory `name` below `dir` is known to be empty (`fd_count` is 0).
/// A kernel thread's table is empty, and most processes of a machine are kernel
/// threads, so the peer scan stats where it would open, list and close.
pub(crate) fn fd_dir_known_empty(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    fd_count(dir, name) == Some(0)
}

/// The longest linux_dirent64 record: 19 bytes of header, a name of NAME_MAX bytes and
/// its NUL, rounded up to 8.
const LONGEST_DIRENT: usize = (19usize + 255 + 1).next_multiple_of(8);

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

    #[test]
    fn a_link_longer_than_the_buffer_is_read_whole() {
        // Below /proc a target never fills PATH_MAX, but a buffer that one fills must
        // not cut it off: here a 16-byte buffer and a 3 000-byte symlink.
        let dir = tempfile::tempdir().unwrap();
        let long = "d/".repeat(1_500) + "end";
        std::os::unix::fs::symlink(&long, dir.path().join("l")).unwrap_or_else(|e| {
            panic!("a {}-byte symlink target: {e}", long.len());
        });
        let d = nix::fcntl::open(
            dir.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let mut buf = LinkBuf::with_room(16);
        assert_eq!(buf.read(d.as_fd(), c"l").unwrap(), long.as_bytes());
        assert_eq!(buf.read(d.as_fd(), c"missing"), Err(Errno::ENOENT));
    }

    #[test]
    fn an_fd_directory_known_empty_lists_nothing() {
        // For every process we can see: the one-stat answer agrees with a listing, and
        // our own table (never empty while we look) is never called empty.
        let proc_dir =
            nix::fcntl::open("/proc", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut pids = Vec::new();
        list_numbers(nix::fcntl::AT_FDCWD, c"/proc", &mut pids).unwrap();
        let mut name = NumberName::new();
        let mut empty = 0;
        for pid in pids {
            if !fd_dir_known_empty(proc_dir.as_fd(), name.of(pid, b"/fd")) {
                continue;
            }
            empty += 1;
            let mut fds = Vec::new();
            if list_numbers(proc_dir.as_fd(), name.of(pid, b"/fd"), &mut fds).is_ok() {
                assert!(fds.is_empty(), "pid {pid}: called empty, lists {fds:?}");
            }
        }
        let me = std::process::id() as i32;
        assert!(!fd_dir_known_empty(proc_dir.as_fd(), name.of(me, b"/fd")));
        println!("{empty} fd directories known empty");
    }
}
