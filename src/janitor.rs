//! `__janitor`: what the lab leaves on disk is removed even when the lab cannot remove it
//! itself (kill -9, an abort, `std::process::exit` from a signal thread).
//!
//! A lab starts one janitor (the same binary, re-executed) and keeps the write end of a
//! pipe to it. It tells the janitor each thing it creates: its runtime directory, a
//! socket bound outside it (`/dev/log`, `syslogd --socket`), a mount. When the pipe reaches
//! end of file — the lab ended, however it ended — the janitor undoes what is still listed,
//! newest first, and exits. It removes only what this lab created: a path is touched only
//! while it is still the same file (device and inode, read with lstat, which never follows
//! a symlink), a mount only while the path is still that mount (its mount ID).
//!
//! The janitor ignores the signals a terminal or a shell sends (SIGINT, SIGHUP, SIGTERM,
//! SIGQUIT, SIGTSTP): Ctrl-C or a closed window end the lab, and the janitor then cleans
//! up after it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// One thing to undo when the lab ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory the lab created: removed with everything in it (symlinks inside are
    /// removed, never followed).
    Dir { path: PathBuf, dev: u64, ino: u64 },
    /// A Unix socket the lab bound: unlinked.
    Socket { path: PathBuf, dev: u64, ino: u64 },
    /// A Unix socket the lab is about to bind, given before the bind: an exit by SIGKILL
    /// between bind(2) and the [`Entry::Socket`] that follows it would otherwise leave the
    /// path behind (a stale /dev/log breaks every logger on the machine). Unlinked only
    /// if a socket is there that nobody has bound any more (connecting is refused).
    SocketToBe { path: PathBuf },
    /// A file system the lab mounted: lazily detached.
    Mount { path: PathBuf, mount_id: u64 },
    /// A process the lab started (a service and what it forked): killed, if it is still
    /// that process (its start time, in clock ticks after boot, is unchanged).
    Process {
        path: PathBuf,
        pid: i32,
        start_time: u64,
    },
}

impl Entry {
    /// The directory at `path`, as it is now.
    pub fn dir(path: &Path) -> std::io::Result<Entry> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Entry::Dir {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The socket at `path`, as it is now.
    pub fn socket(path: &Path) -> std::io::Result<Entry> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Entry::Socket {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The socket the lab is about to bind at `path`.
    pub fn socket_to_be(path: &Path) -> Entry {
        Entry::SocketToBe {
            path: path.to_path_buf(),
        }
    }

    /// The mount whose root is `path`, as it is now.
    pub fn mount(path: &Path) -> std::io::Result<Entry> {
        Ok(Entry::Mount {
            path: path.to_path_buf(),
            mount_id: mount_id(path)?,
        })
    }

    /// The process `pid`, as it is now.
    pub fn process(pid: i32) -> std::io::Result<Entry> {
        Ok(Entry::Process {
            path: PathBuf::from(format!("/proc/{pid}")),
            pid,
            start_time: start_time(pid)?,
        })
    }

    fn path(&self) -> &Path {
        match self {
            Entry::Dir { path, .. }
            | Entry::Socket { path, .. }
            | Entry::SocketToBe { path }
            | Entry::Mount { path, .. }
            | Entry::Process { path, .. } => path,
        }
    }

    /// One line of the pipe protocol: `kind number number hexpath`.
    fn encode(&self) -> String {
        let (kind, a, b) = match self {
            Entry::Dir { dev, ino, .. } => ("dir", *dev, *ino),
            Entry::Socket { dev, ino, .. } => ("socket", *dev, *ino),
            Entry::SocketToBe { .. } => ("socket-to-be", 0, 0),
            Entry::Mount { mount_id, .. } => ("mount", *mount_id, 0),
            Entry::Process {
                pid, start_time, ..
            } => ("process", *pid as u64, *start_time),
        };
        format!(
            "{kind} {a} {b} {}\n",
            hex(self.path().as_os_str().as_bytes())
        )
    }

    fn decode(line: &str) -> Option<Command_> {
        let mut words = line.split_ascii_whitespace();
        let kind = words.next()?;
        let a: u64 = words.next()?.parse().ok()?;
        let b: u64 = words.next()?.parse().ok()?;
        let path = PathBuf::from(OsStr::from_bytes(&unhex(words.next()?)?));
        Some(match kind {
            "dir" => Command_::Add(Entry::Dir {
                path,
                dev: a,
                ino: b,
            }),
            "socket" => Command_::Add(Entry::Socket {
                path,
                dev: a,
                ino: b,
            }),
            "socket-to-be" => Command_::Add(Entry::SocketToBe { path }),
            "mount" => Command_::Add(Entry::Mount { path, mount_id: a }),
            "process" => Command_::Add(Entry::Process {
                path,
                pid: i32::try_from(a).ok()?,
                start_time: b,
            }),
            "forget" => Command_::Forget(path),
            _ => return None,
        })
    }

    /// Undo this entry if the path is still what the lab made. Returns what was done.
    pub fn undo(&self) -> Result<&'static str, String> {
        match self {
            Entry::Dir { path, dev, ino } => {
                if !same_file(path, *dev, *ino, |t| t.is_dir()) {
                    return Ok("gone or replaced: not touched");
                }
                std::fs::remove_dir_all(path)
                    .map(|()| "removed")
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Entry::Socket { path, dev, ino } => {
                if !same_file(path, *dev, *ino, |t| t.is_socket()) {
                    return Ok("gone or replaced: not touched");
                }
                std::fs::remove_file(path)
                    .map(|()| "removed")
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Entry::SocketToBe { path } => {
                let is_socket =
                    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                if !is_socket || !nobody_bound(path) {
                    return Ok("absent, or somebody's socket: not touched");
                }
                std::fs::remove_file(path)
                    .map(|()| "removed")
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Entry::Process {
                pid, start_time: t, ..
            } => {
                // The pidfd pins the process: once its start time matches, the signal
                // cannot reach a newcomer that reused the number.
                let Ok(fd) = crate::process::pidfd_open(*pid) else {
                    return Ok("gone: not touched");
                };
                if start_time(*pid).ok() != Some(*t) {
                    return Ok("another process now: not touched");
                }
                crate::process::pidfd_signal(&fd, libc::SIGKILL)
                    .map(|()| "killed")
                    .map_err(|e| format!("kill {pid}: {e}"))
            }
            Entry::Mount { path, mount_id: id } => {
                if mount_id(path).ok() != Some(*id) {
                    return Ok("no longer mounted there: not touched");
                }
                let c = std::ffi::CString::new(path.as_os_str().as_bytes())
                    .map_err(|e| e.to_string())?;
                // SAFETY: umount2 with a NUL-terminated path; MNT_DETACH never blocks and
                // UMOUNT_NOFOLLOW refuses a symlink planted at the path.
                let rc =
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
                if rc == 0 {
                    Ok("detached")
                } else {
                    Err(format!(
                        "umount {}: {}",
                        path.display(),
                        std::io::Error::last_os_error()
                    ))
                }
            }
        }
    }
}

/// Whether connecting to the socket at `path` is refused: its file outlived the socket
/// bound there. A datagram client is tried first (the lab's sockets are datagram
/// sockets), a stream client if the socket is of the other type.
fn nobody_bound(path: &Path) -> bool {
    let refused = |e: &std::io::Error| e.raw_os_error() == Some(libc::ECONNREFUSED);
    let Ok(client) = std::os::unix::net::UnixDatagram::unbound() else {
        return false;
    };
    match client.connect(path) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            std::os::unix::net::UnixStream::connect(path).is_err_and(|e| refused(&e))
        }
        Err(e) => refused(&e),
    }
}

/// A request on the pipe.
enum Command_ {
    Add(Entry),
    Forget(PathBuf),
}

fn same_file(path: &Path, dev: u64, ino: u64, kind: impl Fn(std::fs::FileType) -> bool) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino && kind(m.file_type()))
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
fn start_time(pid: i32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/stat: no start time")))
}

/// The mount ID of the file system `path` is on (statx, never following a symlink).
fn mount_id(path: &Path) -> std::io::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statx fills the zeroed buffer we own; the path is NUL-terminated.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut buf,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if buf.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "statx gave no mount ID (Linux 5.8 or later needed)",
        ));
    }
    Ok(buf.stx_mnt_id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Held while something is made and handed to a janitor, and by a signal thread that is
/// about to exit the process: an exit can then never fall between the two.
static MAKING: Mutex<()> = Mutex::new(());

/// Run `make` — which creates something and hands it to a janitor — so that an exit
/// from a signal thread (see [`hold_still`]) waits until the janitor has it.
pub fn making<T>(make: impl FnOnce() -> T) -> T {
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    make()
}

/// Wait until nothing is being made and keep it so: for a thread about to call
/// `std::process::exit`. Hold the guard until the exit.
pub fn hold_still() -> std::sync::MutexGuard<'static, ()> {
    MAKING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lab's side: a running janitor and the pipe to it. Dropping it closes the pipe, so
/// the janitor undoes whatever is still listed and exits; `Drop` waits for that.
pub struct Janitor {
    pipe: Mutex<Option<ChildStdin>>,
    child: Mutex<Option<Child>>,
}

impl Janitor {
    /// Start `exe __janitor`. Its stdio is /dev/null but for the pipe: it must never write
    /// to a terminal that may be gone.
    pub fn start(exe: &Path) -> std::io::Result<Janitor> {
        let mut child = Command::new(exe)
            .arg("__janitor")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Janitor {
            pipe: Mutex::new(pipe),
            child: Mutex::new(Some(child)),
        })
    }

    /// Have the janitor undo `entry` when the lab ends, unless [`Janitor::forget`] comes first.
    pub fn add(&self, entry: &Entry) {
        self.send(&entry.encode());
    }

    /// Bind a socket at `path` with `bind` and hand it to the janitor: announced before
    /// the bind as [`Entry::SocketToBe`], so even a SIGKILL between bind(2) and the
    /// [`Entry::Socket`] that follows leaves no file behind.
    pub fn bind_socket<T, E>(
        &self,
        path: &Path,
        bind: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.add(&Entry::socket_to_be(path));
        let bound = bind()?;
        match Entry::socket(path) {
            Ok(entry) => self.add(&entry),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot describe a bound socket to the janitor")
            }
        }
        Ok(bound)
    }

    /// The lab undid what it made at `path` itself: the janitor drops it from its list.
    pub fn forget(&self, path: &Path) {
        self.send(&format!(
            "forget 0 0 {}\n",
            hex(path.as_os_str().as_bytes())
        ));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipe.as_mut()
            && let Err(e) = p.write_all(line.as_bytes())
        {
            tracing::warn!(error = %e, "the janitor is gone: cleanup after a crash is off");
            *pipe = None;
        }
    }

    /// PID of the janitor process.
    pub fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Child::id)
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        drop(self.pipe.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.wait();
        }
    }
}

/// Entry point of `daemonlab __janitor`: read entries until end of file, then undo them.
pub fn main() -> i32 {
    for signal in [
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGPIPE,
    ] {
        // SAFETY: setting a disposition to SIG_IGN; no handler code runs.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    let mut entries: Vec<Entry> = Vec::new();
    let stdin = std::io::stdin();
    let mut reader = BufReader::new(stdin.lock());
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => match Entry::decode(&line) {
                Some(Command_::Add(entry)) => entries.push(entry),
                Some(Command_::Forget(path)) => entries.retain(|e| e.path() != path),
                None => {}
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut failed = 0;
    for entry in entries.iter().rev() {
        match entry.undo() {
            Ok(what) => tracing::info!(path = %entry.path().display(), what, "janitor"),
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, "janitor could not undo")
            }
        }
    }
    i32::from(failed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_pipe_format() {
        let odd = PathBuf::from(OsStr::from_bytes(b"/tmp/a b\n\xffc"));
        for entry in [
            Entry::Dir {
                path: odd.clone(),
                dev: 1,
                ino: u64::MAX,
            },
            Entry::Socket {
                path: "/dev/log".into(),
                dev: 5,
                ino: 7,
            },
            Entry::Mount {
                path: odd.clone(),
                mount_id: 42,
            },
            Entry::Process {
                path: "/proc/77".into(),
                pid: 77,
                start_time: 123_456,
            },
            Entry::SocketToBe { path: odd.clone() },
        ] {
            let line = entry.encode();
            assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
            match Entry::decode(&line) {
                Some(Command_::Add(back)) => assert_eq!(back, entry),
                _ => panic!("did not decode {line:?}"),
            }
        }
        assert!(Entry::decode("dir 1 2 zz\n").is_none());
        assert!(Entry::decode("rm 1 2 00\n").is_none());
    }

    #[test]
    fn a_socket_to_be_is_removed_only_when_nobody_has_it_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let entry = Entry::socket_to_be(&path);
        // Not there yet (killed before the bind): nothing to do.
        assert_eq!(
            entry.undo(),
            Ok("absent, or somebody's socket: not touched")
        );
        // Bound and alive (a clean exit gets here first, or another logger took it).
        let live = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        assert_eq!(
            entry.undo(),
            Ok("absent, or somebody's socket: not touched")
        );
        assert!(path.exists());
        // Its binder gone, the file stays: that is what a SIGKILL after bind(2) leaves.
        drop(live);
        assert!(path.exists());
        assert_eq!(entry.undo(), Ok("removed"));
        assert!(!path.exists());
        // A stream socket nobody listens on any more, too; a live listener is left.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            entry.undo(),
            Ok("absent, or somebody's socket: not touched")
        );
        drop(listener);
        assert_eq!(entry.undo(), Ok("removed"));
        // Something else at the path is never touched.
        std::fs::write(&path, b"not a socket").unwrap();
        assert_eq!(
            entry.undo(),
            Ok("absent, or somebody's socket: not touched")
        );
        assert!(path.exists());
    }

    #[test]
    fn a_replaced_directory_is_not_touched() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("lab");
        std::fs::create_dir(&path).unwrap();
        let entry = Entry::dir(&path).unwrap();
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, b"someone else's file").unwrap();
        assert_eq!(entry.undo(), Ok("gone or replaced: not touched"));
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's file");
    }

    #[test]
    fn a_directory_still_ours_is_removed_with_its_contents() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("lab");
        std::fs::create_dir(&path).unwrap();
        let outside = base.path().join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, path.join("link")).unwrap();
        let entry = Entry::dir(&path).unwrap();
        assert_eq!(entry.undo(), Ok("removed"));
        assert!(!path.exists());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn a_symlink_at_a_socket_path_is_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        let link = base.path().join("log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        let entry = Entry::Socket {
            path: link.clone(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        assert_eq!(entry.undo(), Ok("gone or replaced: not touched"));
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert!(std::fs::symlink_metadata(&link).is_ok());
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn a_process_entry_kills_only_the_process_it_names() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let entry = Entry::process(pid).unwrap();
        // Another start time: someone else holding the number now, left alone.
        if let Entry::Process {
            path, start_time, ..
        } = &entry
        {
            let stranger = Entry::Process {
                path: path.clone(),
                pid,
                start_time: start_time + 1,
            };
            assert_eq!(stranger.undo(), Ok("another process now: not touched"));
        }
        assert_eq!(entry.undo(), Ok("killed"));
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}
