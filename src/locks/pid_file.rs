//! Opening a pid file without harming whatever already sits at the path.
//!
//! A user types `--pidfile`, and a typo can name their thesis, a symlink, a FIFO, a device or
//! a file under /proc. The book's `already_running()` (APUE 13.5) opens with O_CREAT and
//! truncates at once; that is fine for a daemon's own /var/run file but destroys anything
//! else. So every open of a pid file in `locks/` goes through [`open`], which:
//!
//! - refuses a path on a kernel file system (procfs, sysfs, ...) before any open;
//! - refuses anything but a regular file without opening it (lstat), and opens with
//!   O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, then checks again with fstat (the path may have
//!   changed in between), so a symlink's target is never touched and a FIFO never blocks;
//! - never truncates on open: the caller truncates (ftruncate) only after taking the lock
//!   and calling [`check_content`] again;
//! - accepts an existing file only when it is empty or holds a PID: decimal digits with an
//!   optional trailing newline, or a trailing NUL as the book's version writes;
//! - gives a file it creates mode 0644 with fchmod, whatever the umask, so every process of
//!   the lab (and any reader of the PID) can use it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::statfs;

use super::engine::{LockError, describe};

/// The mode of a pid file we create: the owner writes it, anyone may read the PID.
pub(crate) const PID_FILE_MODE: u32 = 0o644;

/// The most bytes a PID file may hold: a 64-bit decimal number and its terminator, with
/// room to spare. Anything longer is not a PID.
const MAX_PID_FILE_BYTES: u64 = 24;

/// What the caller will do with the pid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Lock it and write our PID: open read-write, creating it (mode 0644) if missing.
    Lock,
    /// Only read it or test its lock: open read-only, never create.
    Read,
}

/// Open the pid file at `path` for `access`, refusing anything that is not a regular file
/// that is empty or holds a PID. A refused path is left exactly as it was.
pub(crate) fn open(path: &Path, access: Access) -> Result<File, LockError> {
    refuse_kernel_fs(path)?;
    // Refuse by type before opening: opening a device can have effects of its own.
    match path.symlink_metadata() {
        Ok(meta) => refuse_unless_regular(path, meta.file_type())?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(open_error(path, source)),
    }
    let (file, created) = open_or_create(path, access)?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    refuse_unless_regular(path, meta.file_type())?;
    if created {
        file.set_permissions(std::fs::Permissions::from_mode(PID_FILE_MODE))
            .map_err(|source| LockError::Write {
                path: path.to_path_buf(),
                reason: describe(&source),
                source,
            })?;
    }
    // O_NONBLOCK was only there so a FIFO could not hang the open; lock waits must block.
    let flags = fcntl(file.as_fd(), FcntlArg::F_GETFL).map_err(|e| open_error(path, e.into()))?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(file.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| open_error(path, e.into()))?;
    if access == Access::Lock {
        check_content(&file, path)?;
    }
    Ok(file)
}

/// Refuse the file behind `file` unless it is empty or holds a PID. Read with pread through
/// the caller's descriptor: opening the file again and closing it would drop the caller's
/// fcntl locks.
pub(crate) fn check_content(file: &File, path: &Path) -> Result<(), LockError> {
    let read_error = |source: io::Error| LockError::Open {
        path: path.to_path_buf(),
        action: "read",
        reason: describe(&source),
        hint: "check that you may read it, or use --pidfile somewhere else",
        source,
    };
    let len = file.metadata().map_err(read_error)?.len();
    // Enough to tell text from binary data; a PID needs far less.
    let mut buffer = [0u8; 512];
    let n = file.read_at(&mut buffer, 0).map_err(read_error)?;
    let head = &buffer[..n];
    let problem = match content_problem(head) {
        Some(what) => what,
        None if len > MAX_PID_FILE_BYTES => "it holds far more bytes than a process ID",
        None => return Ok(()),
    };
    Err(unsuitable(path, format!("{problem} ({len} bytes)")))
}

/// Why `bytes` cannot be the content of a pid file, or `None` when it can: empty, or a
/// decimal PID with one optional trailing newline or NUL.
pub(crate) fn content_problem(bytes: &[u8]) -> Option<&'static str> {
    if bytes.is_empty() {
        return None;
    }
    let digits = bytes
        .strip_suffix(b"\n")
        .or_else(|| bytes.strip_suffix(b"\0"))
        .unwrap_or(bytes);
    if !digits.is_empty() && digits.len() <= 20 && digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // A prefix may end inside a character: only a bad byte before the end is binary.
        Err(e) => e.error_len().is_none(),
    } && !bytes
        .iter()
        .any(|&b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t'));
    Some(if text {
        "it holds text, not a process ID"
    } else {
        "it holds binary data, not a process ID"
    })
}

fn open_or_create(path: &Path, access: Access) -> Result<(File, bool), LockError> {
    let options = |create: bool| {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(access == Access::Lock)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
        if create {
            options.create_new(true).mode(PID_FILE_MODE);
        }
        options
    };
    // Open what is there; create (O_EXCL) only if nothing is, so we know whether the file is
    // ours to chmod. Another contender may create it between the two calls: look again.
    let mut last = None;
    for _ in 0..3 {
        match options(false).open(path) {
            Ok(file) => return Ok((file, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && access == Access::Lock => {}
            Err(e) => return Err(open_error(path, e)),
        }
        match options(true).open(path) {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(open_error(path, e)),
        }
    }
    Err(open_error(
        path,
        last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    ))
}

/// A kernel file system is the kernel's view of itself: nothing there is a file of ours, and
/// nothing there may be opened for writing. Asked of the nearest existing ancestor, so a
/// missing directory under /proc is named for what it is too.
fn refuse_kernel_fs(path: &Path) -> Result<(), LockError> {
    for ancestor in path.ancestors().skip(1) {
        let dir = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        let fs = match statfs::statfs(dir) {
            Ok(fs) => fs.filesystem_type(),
            Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
            Err(_) => return Ok(()),
        };
        let name = kernel_fs_name(fs);
        return match name {
            Some(name) => Err(LockError::KernelFs {
                path: path.to_path_buf(),
                fs: name,
            }),
            None => Ok(()),
        };
    }
    Ok(())
}

fn kernel_fs_name(fs: statfs::FsType) -> Option<&'static str> {
    Some(match fs {
        statfs::PROC_SUPER_MAGIC => "procfs (/proc, the kernel's view of its processes)",
        statfs::SYSFS_MAGIC => "sysfs (/sys, the kernel's view of its devices)",
        statfs::CGROUP_SUPER_MAGIC | statfs::CGROUP2_SUPER_MAGIC => {
            "cgroupfs (the kernel's control groups)"
        }
        statfs::DEBUGFS_MAGIC | statfs::TRACEFS_MAGIC => "debugfs (the kernel's debugging files)",
        statfs::SECURITYFS_MAGIC => "securityfs (the kernel's security modules)",
        _ => return None,
    })
}

fn refuse_unless_regular(path: &Path, kind: std::fs::FileType) -> Result<(), LockError> {
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_symlink() {
        match std::fs::read_link(path) {
            Ok(target) => format!(
                "it is a symbolic link to {}, and writing through it would change that file",
                target.display()
            ),
            Err(_) => "it is a symbolic link, and writing through it would change another file"
                .to_string(),
        }
    } else if kind.is_dir() {
        "it is a directory, not a file".to_string()
    } else if kind.is_fifo() {
        "it is a FIFO (named pipe), not a regular file".to_string()
    } else if kind.is_socket() {
        "it is a socket, not a regular file".to_string()
    } else if kind.is_char_device() {
        "it is a character device, not a regular file".to_string()
    } else if kind.is_block_device() {
        "it is a block device, not a regular file".to_string()
    } else {
        "it is not a regular file".to_string()
    };
    Err(unsuitable(path, what))
}

fn unsuitable(path: &Path, what: String) -> LockError {
    LockError::Unsuitable {
        path: path.to_path_buf(),
        what,
    }
}

/// An open() that failed, in words: a refusal by type when the errno says what was there
/// (ELOOP: a symlink under O_NOFOLLOW; ENXIO: a socket; EISDIR), else why and what next.
fn open_error(path: &Path, source: io::Error) -> LockError {
    let errno = source.raw_os_error().map(Errno::from_raw);
    if matches!(errno, Some(Errno::ELOOP | Errno::ENXIO | Errno::EISDIR)) {
        if let Ok(meta) = path.symlink_metadata() {
            if let Err(refusal) = refuse_unless_regular(path, meta.file_type()) {
                return refusal;
            }
        }
    }
    let hint = match errno {
        Some(Errno::EACCES | Errno::EPERM | Errno::EROFS) => "use --pidfile in a directory you own",
        Some(Errno::ENOENT) => {
            "create its directory first, or use --pidfile in a directory that exists"
        }
        Some(Errno::EISDIR) => "point --pidfile at a file, not a directory",
        Some(Errno::ENOTDIR) => "a part of the path is not a directory; check --pidfile",
        _ => "check the path, or use --pidfile somewhere else",
    };
    LockError::Open {
        action: if path.symlink_metadata().is_ok() {
            "open"
        } else {
            "create"
        },
        path: path.to_path_buf(),
        reason: describe(&source),
        hint,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_pid_or_nothing_is_accepted_anything_else_is_not() {
        for good in [&b""[..], b"1234", b"1234\n", b"1234\0", b"1\n"] {
            assert_eq!(content_problem(good), None, "{good:?}");
        }
        for (bad, word) in [
            (&b"my thesis\n"[..], "text"),
            (b"1234 \n", "text"),
            (b"\n", "text"),
            (b"1234\n\n", "text"),
            (b"-1\n", "text"),
            (b"12\xff", "binary"),
            (b"\x7fELF\x00\x01", "binary"),
            ("thèse\n".as_bytes(), "text"),
        ] {
            let problem = content_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(problem.contains(word), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn a_text_file_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "my thesis\n").unwrap();
        let text = open(&path, Access::Lock).unwrap_err().to_string();
        assert!(text.contains("t.txt"), "{text}");
        assert!(text.contains("holds text"), "{text}");
        assert!(text.contains("--pidfile"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), b"my thesis\n");
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.pid");
        std::fs::write(&target, "1234\n").unwrap();
        let link = dir.path().join("link.pid");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for access in [Access::Lock, Access::Read] {
            let text = open(&link, access).unwrap_err().to_string();
            assert!(text.contains("symbolic link"), "{text}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"1234\n");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // On a thread, so a regression fails the test instead of hanging it. The open is
        // also tried without the lstat in front, as if the path became a FIFO in between:
        // then O_NONBLOCK alone keeps a read-only open from waiting for a writer.
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut results = vec![];
            for access in [Access::Lock, Access::Read] {
                results.push(open(&path, access).unwrap_err().to_string());
                let (file, created) = open_or_create(&path, access).unwrap();
                assert!(!created);
                assert!(file.metadata().unwrap().file_type().is_fifo());
            }
            let _ = done.send(results);
        });
        let results = answer
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("opening a FIFO blocked");
        for text in results {
            assert!(text.contains("FIFO"), "{text}");
        }
    }

    #[test]
    fn proc_paths_are_refused_before_any_open() {
        for path in [
            "/proc/x.pid",
            "/proc/self/status",
            "/proc/no-such-dir/x.pid",
        ] {
            let text = open(Path::new(path), Access::Lock).unwrap_err().to_string();
            assert!(text.contains(path), "{text}");
            assert!(text.contains("procfs"), "{text}");
            assert!(text.contains("directory you own"), "{text}");
            assert!(!text.contains("create its directory"), "{text}");
        }
    }

    #[test]
    fn a_created_file_is_0644_and_an_existing_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.pid");
        drop(open(&path, Access::Lock).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        perms.set_mode(0o600);
        std::fs::set_permissions(&path, perms).unwrap();
        drop(open(&path, Access::Lock).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn read_access_never_creates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.pid");
        assert!(open(&path, Access::Read).is_err());
        assert!(!path.exists());
    }
}
