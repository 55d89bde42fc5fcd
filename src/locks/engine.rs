//! The book's `already_running()` (APUE 13.5) for all three lock kinds, and the ways a third
//! party can ask the kernel who holds a lock.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use super::pid_file::{self, Access};
use super::proc_locks::{self, FileId};
use super::{LockKind, LockMode};

/// Why a pid-file lock could not even be attempted. Each message names the file and what to
/// do next, because the reader is usually a person who typed a path.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// open(O_RDWR|O_CREAT) failed: a directory we may not write, a missing directory...
    #[error("cannot {action} pid file {}: {reason} — {hint}", path.display())]
    Open {
        path: PathBuf,
        action: &'static str,
        reason: String,
        hint: &'static str,
        source: io::Error,
    },
    /// Something is at the path that must not be used as a pid file (a user's text, a
    /// symlink, a FIFO, a device...). Nothing was written, truncated or followed.
    #[error("cannot use {} as a pid file: {what} — it was left as it was; pick another --pidfile", path.display())]
    Unsuitable { path: PathBuf, what: String },
    /// The path is on a kernel file system such as /proc: refused before any open.
    #[error("cannot use {} as a pid file: it is on {fs}, which belongs to the kernel and is no place for files — nothing was opened there; use --pidfile in a directory you own", path.display())]
    KernelFs { path: PathBuf, fs: &'static str },
    /// The lock call failed for a reason other than "someone holds it".
    #[error("cannot lock pid file {} with {kind}: {reason} — {hint}", path.display())]
    Lock {
        path: PathBuf,
        kind: LockKind,
        reason: String,
        hint: &'static str,
        source: Errno,
    },
    /// We hold the lock but could not record our PID in the file.
    #[error("cannot write the PID into {}: {reason} — check that the file system is writable and not full", path.display())]
    Write {
        path: PathBuf,
        reason: String,
        source: io::Error,
    },
    /// A report could not be written to its output (closed pipe, full disk).
    #[error("cannot write the report: {0}")]
    Output(#[from] io::Error),
}

/// What `already_running` found.
#[derive(Debug)]
pub enum Outcome {
    /// We are the only instance: the lock is ours for as long as `Held` lives.
    Acquired(Held),
    /// Another instance holds the lock. `holder` is its PID when the kernel could name it
    /// (F_GETLK for fcntl; /proc for flock and OFD, whose owners are open files).
    AlreadyRunning { holder: Option<i32> },
}

/// A held pid-file lock. The open descriptor *is* the lock: dropping this closes it, and
/// closing releases the lock (as exiting does, however the process exits).
#[derive(Debug)]
pub struct Held {
    file: File,
    path: PathBuf,
    kind: LockKind,
}

impl Held {
    /// The descriptor that carries the lock (to show it in an fd list).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The pid file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which kind of lock is held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// The open file, for scenarios that need to dup or re-lock it.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The book's `already_running()`: open (creating it with mode 0644, whatever the umask)
/// and write-lock the whole pid file. If another process holds it, report `AlreadyRunning`
/// with its PID; otherwise truncate the file and write our PID followed by a newline.
///
/// Unlike the book's version, a path that holds anything but a PID (or nothing) is refused
/// and left untouched: see `pid_file` for what is checked.
///
/// The book's version writes the PID with a trailing NUL byte; we write `"PID\n"` only, which
/// is what `cat`, `kill $(cat file)` and every pid-file reader expect.
///
/// In wait mode the call blocks in the kernel until the lock is granted. The descriptor is
/// close-on-exec, so a program the daemon runs does not inherit (and pin) the lock.
pub fn already_running(path: &Path, kind: LockKind, mode: LockMode) -> Result<Outcome, LockError> {
    already_running_notify(path, kind, mode, &mut |_| {})
}

/// [`already_running`], calling `on_wait(holder)` once just before it blocks in wait mode,
/// so a contender can say "waiting" while the kernel queues it.
pub fn already_running_notify(
    path: &Path,
    kind: LockKind,
    mode: LockMode,
    on_wait: &mut dyn FnMut(Option<i32>),
) -> Result<Outcome, LockError> {
    let file = pid_file::open(path, Access::Lock)?;
    let lock_error = |source: Errno| lock_error(path, kind, source);
    // A holder that vanishes between our failed attempt and the question "who?" leaves us
    // with nobody to name; trying again then usually wins the lock instead.
    for attempt in 0..3 {
        match try_lock(file.as_fd(), kind) {
            Ok(()) => return acquired(file, path, kind),
            Err(errno) if is_busy(errno) => {}
            Err(errno) => return Err(lock_error(errno)),
        }
        let holder = find_holder(&file, path, kind, Patience::ForTheHolder);
        match mode {
            LockMode::Try if holder.is_none() && attempt < 2 => continue,
            LockMode::Try => return Ok(Outcome::AlreadyRunning { holder }),
            LockMode::Wait => {
                on_wait(holder);
                wait_lock(file.as_fd(), kind).map_err(lock_error)?;
                return acquired(file, path, kind);
            }
        }
    }
    Ok(Outcome::AlreadyRunning { holder: None })
}

fn acquired(file: File, path: &Path, kind: LockKind) -> Result<Outcome, LockError> {
    // Look again now that the lock is ours: the file may have been replaced by text since
    // it was opened, and nothing but a PID may be truncated.
    pid_file::check_content(&file, path)?;
    let pid = format!("{}\n", std::process::id());
    // Truncate first: a shorter PID must not leave digits of a longer, older one behind.
    file.set_len(0)
        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
        .map_err(|source| LockError::Write {
            path: path.to_path_buf(),
            reason: describe(&source),
            source,
        })?;
    Ok(Outcome::Acquired(Held {
        file,
        path: path.to_path_buf(),
        kind,
    }))
}

fn lock_error(path: &Path, kind: LockKind, source: Errno) -> LockError {
    let hint = match (source, kind) {
        (Errno::EINVAL, LockKind::Ofd) => {
            "this kernel has no OFD locks (they need Linux 3.15); use --kind fcntl"
        }
        (Errno::ENOLCK, _) => {
            "the file system (NFS?) or the kernel's lock table refused; put the pid file on a local file system"
        }
        (Errno::EDEADLK, _) => {
            "the kernel saw that waiting would deadlock; release other locks first"
        }
        (Errno::EBADF, _) => "the file must be open for writing to take a write lock",
        _ => "try another --kind, or report this",
    };
    LockError::Lock {
        path: path.to_path_buf(),
        kind,
        reason: lower_first(source.desc()),
        hint,
        source,
    }
}

/// An io::Error in words without the "(os error N)" tail, lower-cased like the rest of a
/// sentence.
pub(crate) fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(n) => lower_first(Errno::from_raw(n).desc()),
        None => error.to_string(),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "Someone else holds it": EAGAIN or EACCES for fcntl (POSIX allows either), EWOULDBLOCK
/// (the same number as EAGAIN on Linux) for flock.
fn is_busy(errno: Errno) -> bool {
    matches!(errno, Errno::EAGAIN | Errno::EACCES)
}

/// A write lock on the whole file: start 0, length 0 = "to the end, however it grows".
fn whole_file(l_type: libc::c_short) -> libc::flock {
    // SAFETY: libc::flock is a plain C struct of integers; all-zero is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    // F_OFD_* require l_pid = 0 on input; zeroed() already did that.
    lock
}

/// `flock(2)` on a descriptor we borrow.
pub(crate) fn flock_fd(fd: BorrowedFd<'_>, operation: libc::c_int) -> Result<(), Errno> {
    // SAFETY: flock takes a descriptor and an integer and touches no memory of ours; `fd`
    // is a live borrowed descriptor.
    Errno::result(unsafe { libc::flock(fd.as_raw_fd(), operation) }).map(drop)
}

/// One non-blocking attempt at an exclusive lock on the whole file.
pub(crate) fn try_lock(fd: BorrowedFd<'_>, kind: LockKind) -> Result<(), Errno> {
    let lock = whole_file(libc::F_WRLCK as libc::c_short);
    match kind {
        LockKind::Fcntl => fcntl(fd, FcntlArg::F_SETLK(&lock)).map(drop),
        LockKind::Ofd => fcntl(fd, FcntlArg::F_OFD_SETLK(&lock)).map(drop),
        LockKind::Flock => flock_fd(fd, libc::LOCK_EX | libc::LOCK_NB),
    }
}

/// Block until the exclusive lock is granted. A signal that interrupts the wait (EINTR)
/// just sends us back into the queue.
pub(crate) fn wait_lock(fd: BorrowedFd<'_>, kind: LockKind) -> Result<(), Errno> {
    let lock = whole_file(libc::F_WRLCK as libc::c_short);
    loop {
        let result = match kind {
            LockKind::Fcntl => fcntl(fd, FcntlArg::F_SETLKW(&lock)).map(drop),
            LockKind::Ofd => fcntl(fd, FcntlArg::F_OFD_SETLKW(&lock)).map(drop),
            LockKind::Flock => flock_fd(fd, libc::LOCK_EX),
        };
        match result {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Release the whole-file lock held through `fd` (for flock and OFD this releases it for
/// every process sharing the open file description).
pub(crate) fn unlock(fd: BorrowedFd<'_>, kind: LockKind) -> Result<(), Errno> {
    let lock = whole_file(libc::F_UNLCK as libc::c_short);
    match kind {
        LockKind::Fcntl => fcntl(fd, FcntlArg::F_SETLK(&lock)).map(drop),
        LockKind::Ofd => fcntl(fd, FcntlArg::F_OFD_SETLK(&lock)).map(drop),
        LockKind::Flock => flock_fd(fd, libc::LOCK_UN),
    }
}

/// F_GETLK (or F_OFD_GETLK): would a write lock on the whole file conflict, and with whom?
/// Returns `None` when it would not, else the l_pid the kernel reported (-1 for an OFD lock).
pub(crate) fn get_lock(fd: BorrowedFd<'_>, ofd: bool) -> Result<Option<i32>, Errno> {
    let mut lock = whole_file(libc::F_WRLCK as libc::c_short);
    if ofd {
        fcntl(fd, FcntlArg::F_OFD_GETLK(&mut lock))?;
    } else {
        fcntl(fd, FcntlArg::F_GETLK(&mut lock))?;
    }
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

/// Whether naming a holder may wait a moment for it to write its PID into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// A probe from outside: ask once, then scan.
    None,
    /// A contender that just lost: the winner writes its PID right after it locks, so a
    /// file still empty (or naming the previous, dead holder) is worth a few short looks
    /// before scanning every process. A race of a hundred losers that all scanned /proc
    /// at once would take far longer than the winner's write.
    ForTheHolder,
}

/// How long a losing contender looks at the pid file before scanning every process.
const HOLDER_WRITE_WAIT: Duration = Duration::from_millis(20);

/// Who holds the lock on the file behind `file`, as far as the kernel will say.
fn find_holder(file: &File, path: &Path, kind: LockKind, patience: Patience) -> Option<i32> {
    match kind {
        LockKind::Fcntl => get_lock(file.as_fd(), false).ok().flatten(),
        LockKind::Ofd => match get_lock(file.as_fd(), true).ok().flatten() {
            // A POSIX lock from someone else conflicts too, and that one has a real PID.
            Some(pid) if pid > 0 => Some(pid),
            Some(_) => fd_holder(file, path, None, patience),
            None => None,
        },
        // /proc/locks names whoever called flock(); confirm they still hold it (a forked
        // child may hold it alone now), else look at who has a locked descriptor.
        LockKind::Flock => {
            let id = FileId::of_metadata(&file.metadata().ok()?);
            let hint = proc_locks::read()
                .ok()
                .and_then(|entries| {
                    proc_locks::for_file(&entries, id)
                        .into_iter()
                        .find(|e| !e.waiter && e.class == "FLOCK")
                })
                .map(|e| e.pid);
            fd_holder(file, path, hint, patience)
        }
    }
}

fn fd_holder(file: &File, path: &Path, hint: Option<i32>, patience: Patience) -> Option<i32> {
    let meta = file.metadata().ok();
    let target = meta.map(|m| (m.dev(), m.ino()));
    // Cheap guesses first, each confirmed by the kernel (a lock: line in that process's
    // fdinfo): the PID /proc/locks printed, then the PID the holder wrote into the file.
    // Only if both fail, scan every process we can read.
    let candidates = [hint, pid_in_file(file)];
    if let Some(target) = target {
        for pid in candidates.into_iter().flatten() {
            if pid > 0 && pid_holds(pid, target) {
                return Some(pid);
            }
        }
        if patience == Patience::ForTheHolder {
            let deadline = Instant::now() + HOLDER_WRITE_WAIT;
            let mut tried = candidates[1];
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(500));
                let written = pid_in_file(file);
                // Only a PID not already ruled out is worth the fdinfo check.
                if written != tried
                    && let Some(pid) = written.filter(|&p| p > 0)
                {
                    if pid_holds(pid, target) {
                        return Some(pid);
                    }
                    tried = written;
                }
            }
        }
    }
    let holders = match target {
        Some(target) => scan_holders(target),
        None => holders_by_fdinfo(path),
    };
    holders.into_iter().next()
}

/// The PID written in the pid file, read through our own descriptor (pread: opening the
/// file again and closing it would drop a caller's fcntl locks on it).
fn pid_in_file(file: &File) -> Option<i32> {
    let mut buffer = [0u8; 32];
    let n = file.read_at(&mut buffer, 0).ok()?;
    std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
}

/// Every process whose open descriptors carry a lock on the file at `path`, found from the
/// `lock:` lines of /proc/PID/fdinfo, which list the locks held through each descriptor.
/// This is how an OFD lock, which /proc/locks lists with PID -1, gets a name; and how a
/// flock lock shared by a parent and its forked child shows both. Only processes whose
/// /proc/PID/fd we may read are seen (our own user's, or all of them as root). Sorted by PID.
pub fn holders_by_fdinfo(path: &Path) -> Vec<i32> {
    match std::fs::metadata(path) {
        Ok(meta) => scan_holders((meta.dev(), meta.ino())),
        Err(_) => vec![],
    }
}

fn scan_holders(target: (u64, u64)) -> Vec<i32> {
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut pids: Vec<i32> = proc_dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid_holds(pid, target))
        .collect();
    pids.sort_unstable();
    pids
}

/// Does process `pid` hold a lock on the file at `path` through one of its descriptors
/// (a `lock:` line in its fdinfo)? Works where /proc/locks hides the lock (see
/// [`proc_locks::hides_locks_of_gone_pids`]).
pub fn pid_holds_path(pid: i32, path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| pid_holds(pid, (meta.dev(), meta.ino())))
}

/// Does process `pid` have a descriptor on the file `(dev, ino)` with a lock on it?
fn pid_holds(pid: i32, target: (u64, u64)) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    for fd in fds.flatten() {
        // stat through the magic link reaches the open file itself: cheap, and the same
        // view of device and inode that stat(path) gives us.
        let Ok(meta) = std::fs::metadata(fd.path()) else {
            continue;
        };
        if (meta.dev(), meta.ino()) != target {
            continue;
        }
        let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
        if let Ok(text) = std::fs::read_to_string(info) {
            let locked = text
                .lines()
                .filter_map(|l| l.strip_prefix("lock:"))
                .flat_map(proc_locks::parse)
                .any(|e| !e.waiter && matches!(e.class.as_str(), "POSIX" | "FLOCK" | "OFDLCK"));
            if locked {
                return true;
            }
        }
    }
    false
}

/// What a third party sees when it tests the lock without taking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Probe {
    /// Nobody holds a conflicting lock.
    Free,
    /// Someone does; their PID when the kernel (or /proc) could name them.
    Locked { holder: Option<i32> },
}

/// Test the lock on `path` from a fresh descriptor the way another instance would, without
/// keeping it: F_GETLK for fcntl, F_OFD_GETLK for OFD, a LOCK_NB attempt (released at once)
/// for flock, which has no "test" call. Note that fcntl and OFD tests never report the
/// caller's own process's POSIX locks, so ask from another process.
pub fn probe(path: &Path, kind: LockKind) -> io::Result<Probe> {
    let file = pid_file::open(path, Access::Read).map_err(io::Error::other)?;
    let busy = match kind {
        LockKind::Fcntl => get_lock(file.as_fd(), false)?.is_some(),
        LockKind::Ofd => get_lock(file.as_fd(), true)?.is_some(),
        LockKind::Flock => match flock_fd(file.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                flock_fd(file.as_fd(), libc::LOCK_UN)?;
                false
            }
            Err(errno) if is_busy(errno) => true,
            Err(errno) => return Err(errno.into()),
        },
    };
    Ok(if busy {
        Probe::Locked {
            holder: find_holder(&file, path, kind, Patience::None),
        }
    } else {
        Probe::Free
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(outcome: Outcome) -> Held {
        match outcome {
            Outcome::Acquired(held) => held,
            other => panic!("expected the lock, got {other:?}"),
        }
    }

    #[test]
    fn acquires_and_writes_pid_newline() {
        for kind in LockKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pid");
            // A stale PID longer than ours: truncation must leave none of its digits.
            std::fs::write(&path, "99999999999\n").unwrap();
            let held = held(already_running(&path, kind, LockMode::Try).unwrap());
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("{}\n", std::process::id())
            );
            assert_eq!(held.path(), path);
            assert_eq!(held.kind(), kind);
            assert!(held.fd() >= 0);
        }
    }

    #[test]
    fn flock_and_ofd_conflict_within_one_process_but_posix_does_not() {
        // Two opens are two open file descriptions: flock and OFD locks on them conflict
        // even inside one process. POSIX locks belong to the process, so a second request
        // from the same process just succeeds (it re-takes its own lock).
        for kind in LockKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pid");
            let _first = held(already_running(&path, kind, LockMode::Try).unwrap());
            let second = already_running(&path, kind, LockMode::Try).unwrap();
            match (kind, second) {
                (LockKind::Fcntl, Outcome::Acquired(_)) => {}
                (LockKind::Flock | LockKind::Ofd, Outcome::AlreadyRunning { holder }) => {
                    assert_eq!(holder, Some(std::process::id() as i32), "{kind}");
                }
                (kind, other) => panic!("{kind}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn the_lock_shows_in_proc_locks_with_the_right_class() {
        for kind in LockKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pid");
            let _held = held(already_running(&path, kind, LockMode::Try).unwrap());
            let entries = proc_locks::for_path(&proc_locks::read().unwrap(), &path).unwrap();
            assert_eq!(entries.len(), 1, "{kind}: {entries:?}");
            assert_eq!(entries[0].class, kind.proc_class());
            assert_eq!(entries[0].access, "WRITE");
            let expected_pid = if kind == LockKind::Ofd {
                -1
            } else {
                std::process::id() as i32
            };
            assert_eq!(entries[0].pid, expected_pid);
            assert_eq!(holders_by_fdinfo(&path), vec![std::process::id() as i32]);
        }
    }

    #[test]
    fn dropping_held_releases_the_lock() {
        for kind in [LockKind::Flock, LockKind::Ofd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pid");
            let first = held(already_running(&path, kind, LockMode::Try).unwrap());
            assert!(matches!(probe(&path, kind).unwrap(), Probe::Locked { .. }));
            drop(first);
            assert_eq!(probe(&path, kind).unwrap(), Probe::Free);
            assert!(matches!(
                already_running(&path, kind, LockMode::Try).unwrap(),
                Outcome::Acquired(_)
            ));
        }
    }

    #[test]
    fn pid_file_mode_is_0644_whatever_the_umask() {
        // fchmod after creation: the umask (read from /proc, tests run in parallel threads
        // and must not change it) does not take bits away from the lab's own pid file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let _held = held(already_running(&path, LockKind::Fcntl, LockMode::Try).unwrap());
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn apue_shaped_and_empty_pid_files_are_taken_over() {
        for content in [&b""[..], b"1234\n", b"1234\0"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pid");
            std::fs::write(&path, content).unwrap();
            let _held = held(already_running(&path, LockKind::Fcntl, LockMode::Try).unwrap());
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("{}\n", std::process::id())
            );
        }
    }

    #[test]
    fn text_that_appears_after_the_open_is_not_truncated() {
        // The second look, under the lock, just before ftruncate.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        std::fs::write(&path, "").unwrap();
        let file = pid_file::open(&path, Access::Lock).unwrap();
        std::fs::write(&path, "my thesis\n").unwrap();
        let error = acquired(file, &path, LockKind::Fcntl).unwrap_err();
        assert!(error.to_string().contains("holds text"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"my thesis\n");
    }

    #[test]
    fn unwritable_location_names_the_path_and_the_way_out() {
        let path = Path::new("/proc/daemonlab-no-such-dir/x.pid");
        let error = already_running(path, LockKind::Fcntl, LockMode::Try).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("/proc/daemonlab-no-such-dir/x.pid"), "{text}");
        assert!(text.contains("--pidfile"), "{text}");
        assert!(!text.contains("os error"), "{text}");
    }

    #[test]
    fn permission_denied_says_use_pidfile_in_a_directory_you_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        std::fs::write(&path, "").unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
        std::fs::set_permissions(&path, perms).unwrap();
        match already_running(&path, LockKind::Fcntl, LockMode::Try) {
            // root may open a read-only file for writing: nothing to check then.
            Ok(_) => {}
            Err(error) => {
                let text = error.to_string();
                assert!(text.contains("permission denied"), "{text}");
                assert!(text.contains("directory you own"), "{text}");
            }
        }
    }
}
