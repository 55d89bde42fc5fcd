//! The subject's terminal: a pty whose slave is the session's controlling terminal and
//! whose master the lab reads, so what the subject prints is kept and shown.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;

/// Lines the terminal keeps; older ones scroll away.
const MAX_LINES: usize = 2000;

/// A new pty pair: the master stays in the lab, the slave goes to the session.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// `/dev/pts/N`.
    pub path: PathBuf,
}

impl Pty {
    /// Open a pty pair with close-on-exec set on both ends from the start, so no other
    /// process the lab spawns can inherit them by accident.
    pub fn open() -> nix::Result<Pty> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let path = PathBuf::from(ptsname_r(&master)?);
        let slave = nix::fcntl::open(
            &path,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: PtyMaster owns a valid descriptor; we take it over whole.
        let master = unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(
                master,
            ))
        };
        Ok(Pty {
            master,
            slave,
            path,
        })
    }

    /// `pts/N`, the name `ps` shows.
    pub fn short_name(&self) -> String {
        self.path
            .strip_prefix("/dev")
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }
}

#[derive(Default)]
struct Screen {
    lines: Vec<String>,
    partial: String,
    /// Lines dropped off the front, so indices stay stable for callers.
    dropped: usize,
    closed: bool,
}

/// Called with each batch of new complete lines (the TUI turns it into an event).
pub type Listener = Box<dyn Fn(Vec<String>) + Send>;

/// What the subject wrote to its terminal, line by line, filled by a reader thread.
#[derive(Default)]
pub struct Terminal {
    screen: Mutex<Screen>,
    changed: Condvar,
    listener: Mutex<Option<Listener>>,
    /// Writing a byte here makes the reader close the master: the hang-up.
    hang_up: Mutex<Option<OwnedFd>>,
    /// Set once the master has been closed.
    hung_up: Mutex<bool>,
}

impl Terminal {
    /// Start reading `master` on a thread. The thread ends when every slave is closed,
    /// or when [`Terminal::hang_up`] asks it to close the master.
    pub fn spawn_reader(master: OwnedFd) -> std::io::Result<Arc<Terminal>> {
        let (wake, woken) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let terminal = Arc::new(Terminal {
            hang_up: Mutex::new(Some(wake)),
            ..Terminal::default()
        });
        let sink = Arc::clone(&terminal);
        std::thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                use std::os::fd::AsFd;
                let mut file = File::from(master);
                let mut buf = [0u8; 4096];
                loop {
                    let mut fds = [
                        PollFd::new(file.as_fd(), PollFlags::POLLIN),
                        PollFd::new(woken.as_fd(), PollFlags::POLLIN),
                    ];
                    match poll(&mut fds, PollTimeout::NONE) {
                        Ok(_) => {}
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break,
                    }
                    if fds[1].any().unwrap_or(true) {
                        // Hang up: this is the lab's only descriptor of the master, so
                        // closing it is what a terminal window closing does.
                        drop(file);
                        *sink.hung_up.lock().unwrap_or_else(|e| e.into_inner()) = true;
                        break;
                    }
                    // EIO once the last slave closes: that is the end of the session.
                    match file.read(&mut buf) {
                        Ok(n @ 1..) => sink.push(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        _ => break,
                    }
                }
                let mut screen = sink.screen.lock().unwrap_or_else(|e| e.into_inner());
                screen.closed = true;
                sink.changed.notify_all();
            })?;
        Ok(terminal)
    }

    /// Close the pty master, as a terminal window closing does: the kernel hangs up the
    /// slave — SIGHUP and SIGCONT to the session leader, the terminal taken from every
    /// process of the session — with no privilege needed. Returns once it is closed
    /// (or at most a second later).
    pub fn hang_up(&self) {
        if let Some(wake) = self
            .hang_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = nix::unistd::write(&wake, b"h");
        }
        let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(screen, Duration::from_secs(1), |s| !s.closed);
    }

    /// True once [`Terminal::hang_up`] closed the master.
    pub fn is_hung_up(&self) -> bool {
        *self.hung_up.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deliver every line so far, then each new batch as it arrives, to `listener`.
    /// Lines are never missed or repeated: both happen under the same lock.
    pub fn set_listener(&self, listener: Listener) {
        let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        listener(screen.lines.clone());
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
        drop(screen);
    }

    fn push(&self, bytes: &[u8]) {
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(bytes).replace('\r', "");
        screen.partial.push_str(&text);
        let mut new_lines = Vec::new();
        while let Some(end) = screen.partial.find('\n') {
            let line: String = screen.partial.drain(..=end).collect();
            new_lines.push(line.trim_end_matches('\n').to_string());
        }
        screen.lines.extend(new_lines.iter().cloned());
        if !new_lines.is_empty()
            && let Some(listener) = self
                .listener
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
        {
            listener(new_lines);
        }
        if screen.lines.len() > MAX_LINES {
            let excess = screen.lines.len() - MAX_LINES;
            screen.lines.drain(..excess);
            screen.dropped += excess;
        }
        self.changed.notify_all();
    }

    /// Total complete lines seen so far (including scrolled-away ones).
    pub fn line_count(&self) -> usize {
        let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        screen.dropped + screen.lines.len()
    }

    /// Complete lines numbered `from` and later (numbers as in [`Terminal::line_count`]).
    pub fn lines_since(&self, from: usize) -> Vec<String> {
        let screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let start = from.saturating_sub(screen.dropped).min(screen.lines.len());
        screen.lines[start..].to_vec()
    }

    /// Wait until a line numbered `from` or later satisfies `wanted`, or `timeout` passes.
    pub fn wait_for_line(
        &self,
        from: usize,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let start = from.saturating_sub(screen.dropped).min(screen.lines.len());
            if screen.lines[start..].iter().any(|l| wanted(l)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || screen.closed {
                return false;
            }
            screen = self
                .changed
                .wait_timeout(screen, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_carriage_returns_dropped() {
        let terminal = Terminal::default();
        terminal.push(b"one\r\ntw");
        assert_eq!(terminal.line_count(), 1);
        terminal.push(b"o\r\nthree\r\n");
        assert_eq!(terminal.lines_since(0), ["one", "two", "three"]);
        assert_eq!(terminal.lines_since(2), ["three"]);
        assert!(terminal.wait_for_line(1, Duration::ZERO, |l| l == "three"));
        assert!(!terminal.wait_for_line(3, Duration::from_millis(1), |_| true));

        let (tx, rx) = std::sync::mpsc::channel();
        terminal.set_listener(Box::new(move |lines| tx.send(lines).unwrap()));
        terminal.push(b"four\n");
        assert_eq!(
            rx.try_recv().unwrap(),
            ["one", "two", "three"],
            "existing lines first"
        );
        assert_eq!(rx.try_recv().unwrap(), ["four"]);
    }

    #[test]
    fn pty_round_trip() {
        let pty = Pty::open().unwrap();
        assert!(pty.short_name().starts_with("pts/"), "{}", pty.short_name());
        let slave = File::from(pty.slave);
        let terminal = Terminal::spawn_reader(pty.master).unwrap();
        use std::io::Write;
        (&slave).write_all(b"hello\n").unwrap();
        assert!(terminal.wait_for_line(0, Duration::from_secs(2), |l| l == "hello"));
        drop(slave);
    }

    #[test]
    fn hang_up_closes_the_master_so_the_slave_reads_eof_and_writes_fail() {
        let pty = Pty::open().unwrap();
        let slave = File::from(pty.slave);
        let terminal = Terminal::spawn_reader(pty.master).unwrap();
        terminal.hang_up();
        assert!(terminal.is_hung_up());
        use std::io::Write;
        let err = (&slave).write_all(b"after\n").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
        let mut buf = [0u8; 8];
        assert_eq!(
            (&slave).read(&mut buf).unwrap(),
            0,
            "a hung-up slave reads EOF"
        );
    }
}
