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
}

impl Terminal {
    /// Start reading `master` on a thread; the thread ends when every slave is closed.
    pub fn spawn_reader(master: OwnedFd) -> std::io::Result<Arc<Terminal>> {
        let terminal = Arc::new(Terminal::default());
        let sink = Arc::clone(&terminal);
        std::thread::Builder::new()
            .name("pty-reader".into())
            .spawn(move || {
                let mut file = File::from(master);
                let mut buf = [0u8; 4096];
                // EIO once the last slave closes: that is the end of the session.
                while let Ok(n @ 1..) = file.read(&mut buf) {
                    sink.push(&buf[..n]);
                }
                let mut screen = sink.screen.lock().unwrap_or_else(|e| e.into_inner());
                screen.closed = true;
                sink.changed.notify_all();
            })?;
        Ok(terminal)
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
}
