//! The open file descriptors of a process: where each points and whether it survives exec.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use super::FdEntry;
use super::read::{ProcDir, Scratch};
use super::stat::parse_int;

/// `O_CLOEXEC` as fdinfo prints it: the kernel reports close-on-exec inside the octal
/// `flags:` field, using the generic (x86/arm) open-flag value.
const FDINFO_CLOEXEC: u32 = 0o2_000_000;

/// List `/proc/PID/fd` with targets and close-on-exec flags, sorted by fd.
///
/// `None` when the fd table cannot be read at all (another user's process, or the process
/// exited). An fd closed between the listing and the per-fd reads is simply left out:
/// the table is a moving target and a snapshot only promises what was seen.
pub(crate) fn read_fds(dir: &ProcDir, scratch: &mut Scratch) -> Option<Vec<FdEntry>> {
    // The listing goes by path because std cannot list a directory fd (nix's `dir`
    // feature is not enabled). That is still safe against PID reuse: every entry is then
    // looked up through the pinned /proc/PID directory, which fails for a dead process.
    let own_fd = dir.own_fd();
    let mut listed = Vec::with_capacity(16);
    for entry in std::fs::read_dir(dir.path_of("fd")).ok()? {
        let name = entry.ok()?.file_name();
        // Every entry is a decimal fd number; anything else would be a kernel surprise.
        if let Some(fd) = parse_int(name.as_bytes()) {
            if Some(fd) != own_fd {
                listed.push(fd);
            }
        }
    }
    listed.sort_unstable();

    // "fd/N" and "fdinfo/N" relative to /proc/PID rather than via their own directory
    // fds: two extra opens cost more than the extra path component for a typical table.
    let mut link = RelPath::new(b"fd/");
    let mut info = RelPath::new(b"fdinfo/");
    let mut fds = Vec::with_capacity(listed.len());
    for fd in listed {
        let target = match dir.readlink(link.with_number(fd)) {
            Ok(target) => target.to_string_lossy().into_owned(),
            Err(Errno::ENOENT) => continue,
            Err(_) => return None,
        };
        let (flags, lock_lines) = match dir.read_raw(info.with_number(fd), scratch) {
            Ok(text) => (parse_fdinfo_flags(text), lock_lines(text)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return None,
        };
        fds.push(FdEntry {
            fd,
            target,
            cloexec: flags.is_some_and(|f| f & FDINFO_CLOEXEC != 0),
            lock_lines,
        });
    }
    Some(fds)
}

/// A relative path "prefix" + number built on the stack, so the per-fd lookups allocate
/// nothing.
struct RelPath {
    buf: [u8; 24],
    prefix_len: usize,
}

impl RelPath {
    fn new(prefix: &[u8]) -> Self {
        let mut buf = [0; 24];
        buf[..prefix.len()].copy_from_slice(prefix);
        RelPath {
            buf,
            prefix_len: prefix.len(),
        }
    }

    fn with_number(&mut self, n: i32) -> &[u8] {
        let mut cursor = &mut self.buf[self.prefix_len..];
        let room = cursor.len();
        // "fdinfo/" (7) + an i32 (at most 11) fits in 24.
        write!(cursor, "{n}").expect("prefix and i32 fit in 24 bytes");
        let len = self.prefix_len + room - cursor.len();
        &self.buf[..len]
    }
}

/// The `lock:` lines of an fdinfo file, prefix removed, one per line; `None` when there
/// are none (almost always: a search for the prefix, no allocation).
fn lock_lines(info: &[u8]) -> Option<Box<str>> {
    const PREFIX: &[u8] = b"lock:";
    if !info.windows(PREFIX.len()).any(|w| w == PREFIX) {
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
    fn relative_fd_paths() {
        let mut info = RelPath::new(b"fdinfo/");
        assert_eq!(info.with_number(251), b"fdinfo/251");
        assert_eq!(info.with_number(3), b"fdinfo/3");
        assert_eq!(info.with_number(i32::MAX), b"fdinfo/2147483647");
    }
}
