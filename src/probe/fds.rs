//! The open file descriptors of a process: where each points and whether it survives exec.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::FdEntry;
use super::read::{LinkBuf, NumberName, ProcDir, Scratch, fd_count, list_numbers, read_at};
use super::shares::in_shares;

/// `O_CLOEXEC` as fdinfo prints it: the kernel reports close-on-exec inside the octal
/// `flags:` field, using the generic (x86/arm) open-flag value.
const FDINFO_CLOEXEC: u32 = 0o2_000_000;

/// The fewest descriptors a thread reads: each costs a readlink and an open, read and
/// close of its fdinfo, all kernel time (`cargo bench --bench inspect` measures it at 10,
/// 100 and 1 000 fds) that a second core shortens; below 2 × this a thread's start is not
/// worth it, and the Lab's tables stay on the calling thread.
const MIN_SHARE: usize = 128;

/// List `/proc/PID/fd` with targets and close-on-exec flags, sorted by fd. `fd_size` is
/// the table's room (status `FDSize`), when known.
///
/// `None` when the fd table cannot be read at all (another user's process, or the process
/// exited). An fd closed between the listing and the per-fd reads is simply left out:
/// the table is a moving target and a snapshot only promises what was seen.
pub(crate) fn read_fds(dir: &ProcDir, fd_size: Option<usize>) -> Option<Vec<FdEntry>> {
    // Both directories are opened through the pinned /proc/PID fd, so a PID reused
    // meanwhile fails (ESRCH) instead of listing a stranger; each fd is then looked up
    // by its number alone, one path component, below them.
    let (fd_dir, mut listed) = match full_table(dir, fd_size) {
        // Every number below the table's room is looked up; those not open are left out
        // as a descriptor closed meanwhile is (the link read says ENOENT).
        Some(numbers) => (dir.open_path(c"fd").ok()?, numbers),
        None => {
            let mut listed = Vec::with_capacity(16);
            let fd_dir = list_numbers(dir.as_fd(), c"fd", &mut listed).ok()?;
            (fd_dir, listed)
        }
    };
    // A small table (the Lab's subject) is read as "fdinfo/N" below /proc/PID, saving
    // the open and close of the fdinfo directory (`cargo bench --bench probe`,
    // snapshot_child); a large one below its own fd, one path component a lookup.
    let info_dir = if listed.len() > SMALL_TABLE {
        Some(dir.open_path(c"fdinfo").ok()?)
    } else {
        None
    };
    // Probing our own process, the descriptors opened to look are not part of its table.
    if let Some(piddir) = dir.own_fd() {
        let own = [
            Some(piddir),
            Some(fd_dir.as_raw_fd()),
            info_dir.as_ref().map(|d| d.as_raw_fd()),
        ];
        listed.retain(|fd| !own.contains(&Some(*fd)));
    }
    listed.sort_unstable();

    let dirs = FdDirs {
        fd: fd_dir.as_fd(),
        info: info_dir.as_ref().map_or(dir.as_fd(), |d| d.as_fd()),
        info_prefix: if info_dir.is_some() { b"" } else { b"fdinfo/" },
    };
    let shares = in_shares(&listed, MIN_SHARE, |part| dirs.read(part));
    shares
        .into_iter()
        .collect::<Option<Vec<_>>>()
        // Moved, not cloned as `concat` would: a string per descriptor.
        .map(|shares| shares.into_iter().flatten().collect())
}

/// The numbers to look up instead of listing the directory, for a large table that is
/// nearly full: 0 up to `fd_size`, when the kernel's count of open descriptors (the fd
/// directory's size) says at most one number in four is not in use.
///
/// The listing walks every descriptor on one core before the reads can be shared out
/// among the cores; a number not in use costs a failed lookup (dearer than a listed
/// entry, hence the threshold) but is shared out with the rest. `cargo bench --bench
/// inspect` measures the 1 000-descriptor table this is for.
fn full_table(dir: &ProcDir, fd_size: Option<usize>) -> Option<Vec<i32>> {
    let size = fd_size.filter(|&size| size >= 2 * MIN_SHARE)?;
    let open = fd_count(dir.as_fd(), c"fd")?;
    if size.saturating_sub(open) * 3 > open {
        return None;
    }
    Some((0..i32::try_from(size).ok()?).collect())
}

/// Up to this many descriptors, fdinfo files are opened by a two-part path: its one
/// more lookup per descriptor costs less than the directory's open and close.
const SMALL_TABLE: usize = 12;

/// The fd and fdinfo directories of one process, shared by the threads that read them.
#[derive(Clone, Copy)]
struct FdDirs<'d> {
    fd: BorrowedFd<'d>,
    /// Where `info_prefix` + N names an fdinfo file: the fdinfo directory with no
    /// prefix, or /proc/PID with "fdinfo/".
    info: BorrowedFd<'d>,
    info_prefix: &'static [u8],
}

impl FdDirs<'_> {
    /// The entries of `listed`, in order; `None` if the table became unreadable.
    fn read(self, listed: &[i32]) -> Option<Vec<FdEntry>> {
        let mut scratch = Scratch::new();
        let mut link = LinkBuf::new();
        let mut name = NumberName::new();
        let mut info_name = NumberName::new();
        let mut fds = Vec::with_capacity(listed.len());
        for &fd in listed {
            let target = match link.read(self.fd, name.of(fd, b"")) {
                Ok(target) => String::from_utf8_lossy(target).into_owned(),
                Err(Errno::ENOENT) => continue,
                Err(_) => return None,
            };
            let info = info_name.path(self.info_prefix, fd, b"");
            match read_at(self.info, info, &mut scratch) {
                Ok(text) => fds.push(entry(fd, target, text)),
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(_) => return None,
            }
        }
        Some(fds)
    }
}

/// Descriptor `fd`, pointing at `target`, with what its fdinfo file `info` says.
pub(super) fn entry(fd: i32, target: String, info: &[u8]) -> FdEntry {
    FdEntry {
        fd,
        target,
        cloexec: parse_fdinfo_flags(info).is_some_and(|f| f & FDINFO_CLOEXEC != 0),
        lock_lines: lock_lines(info),
    }
}

/// The `lock:` lines of an fdinfo file, prefix removed, one per line; `None` when there
/// are none (almost always: a search for the prefix, no allocation).
fn lock_lines(info: &[u8]) -> Option<Box<str>> {
    const PREFIX: &[u8] = b"lock:";
    // A look at the start of each of its few lines, not at every byte.
    if !info
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(PREFIX))
    {
        return None;
    }
    let text = String::from_utf8_lossy(info);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n").into_boxed_str())
}

/// The octal value of the `flags:` line of an fdinfo file.
pub(crate) fn parse_fdinfo_flags(info: &[u8]) -> Option<u32> {
    info.split(|&b| b == b'\n').find_map(|line| {
        let value = line.strip_prefix(b"flags:")?.trim_ascii();
        if value.is_empty() || value.len() > 11 {
            return None;
        }
        value.iter().try_fold(0u32, |acc, &d| match d {
            b'0'..=b'7' => Some((acc << 3) | u32::from(d - b'0')),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloexec_flag_from_fdinfo() {
        let info = b"pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t3\n";
        let flags = parse_fdinfo_flags(info).unwrap();
        assert_eq!(flags, 0o2100002);
        assert_ne!(flags & FDINFO_CLOEXEC, 0);
    }

    #[test]
    fn no_cloexec() {
        let flags = parse_fdinfo_flags(b"pos:\t0\nflags:\t0100000\nmnt_id:\t24\n").unwrap();
        assert_eq!(flags & FDINFO_CLOEXEC, 0);
    }

    #[test]
    fn missing_or_garbled_flags() {
        assert_eq!(parse_fdinfo_flags(b"pos:\t0\nmnt_id:\t24\n"), None);
        assert_eq!(parse_fdinfo_flags(b"flags:\t0109\n"), None);
    }

    #[test]
    fn fd_names() {
        let mut name = NumberName::new();
        assert_eq!(name.of(251, b"").to_bytes(), b"251");
        assert_eq!(name.of(3, b"").to_bytes(), b"3");
        assert_eq!(name.of(0, b"").to_bytes(), b"0");
        assert_eq!(name.of(i32::MAX, b"").to_bytes(), b"2147483647");
        assert_eq!(name.of(i32::MIN, b"").to_bytes(), b"-2147483648");
        assert_eq!(name.of(4_194_304, b"/fd").to_bytes(), b"4194304/fd");
        assert_eq!(name.path(b"fdinfo/", 251, b"").to_bytes(), b"fdinfo/251");
    }
}
