//! A program in a real pty, its screen kept up to date by a terminal emulator (vt100) on a
//! reader thread: how the explorer is driven by the end-to-end and README tests.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

pub struct PtyApp {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    master: Box<dyn MasterPty + Send>,
    pub parser: Arc<Mutex<vt100::Parser>>,
    reader: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// When output last arrived, in µs since `born`: a frame arrives in several reads,
    /// and a screen read between them is half the old frame and half the new.
    last_output: Arc<AtomicU64>,
    born: Instant,
}

impl PtyApp {
    /// Start `command` on a fresh `rows` × `cols` pty.
    pub fn spawn(command: CommandBuilder, rows: u16, cols: u16) -> PtyApp {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let child = pty.slave.spawn_command(command).expect("start the program");
        drop(pty.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).unwrap(),
            NonZeroU16::new(cols).unwrap(),
            0,
        )));
        // The reader's own copy of the master, read with a timeout, so that `hang_up` can
        // take it back: the terminal hangs up only when its last master fd closes.
        let raw = pty.master.as_raw_fd().expect("a unix pty");
        // SAFETY: the master is open for as long as this borrow is used, just below.
        let reader = nix::unistd::dup(unsafe { BorrowedFd::borrow_raw(raw) }).unwrap();
        let sink = Arc::clone(&parser);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let born = Instant::now();
        let last_output = Arc::new(AtomicU64::new(0));
        let output_at = Arc::clone(&last_output);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut file = std::fs::File::from(reader);
            while !stopping.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(50u8)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
                match file.read(&mut buf) {
                    Ok(n @ 1..) => {
                        sink.lock().unwrap().process(&buf[..n]);
                        output_at.store(born.elapsed().as_micros() as u64, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        });
        let keys = pty.master.take_writer().unwrap();
        PtyApp {
            child,
            keys,
            master: pty.master,
            parser,
            reader,
            stop,
            last_output,
            born,
        }
    }

    /// How long ago output last arrived.
    fn quiet_for(&self) -> Duration {
        let last = Duration::from_micros(self.last_output.load(Ordering::SeqCst));
        self.born.elapsed().saturating_sub(last)
    }

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Wait until `ready` accepts the screen: `Err(screen)` after `limit`, or when the
    /// program exits first.
    pub fn wait_until(
        &mut self,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        // A frame is written in one go: 30 ms without output means the screen is whole.
        // A screen that never rests that long is taken as it is after 500 ms.
        const SETTLED: Duration = Duration::from_millis(30);
        const RESTLESS: Duration = Duration::from_millis(500);
        let deadline = Instant::now() + limit;
        let mut ready_since = None;
        loop {
            let text = self.text();
            if ready(&text) {
                let since = *ready_since.get_or_insert_with(Instant::now);
                if self.quiet_for() >= SETTLED || since.elapsed() >= RESTLESS {
                    return Ok(text);
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            ready_since = None;
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                return Err(self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until `ready` accepts the screen; panics with the screen after 10 s.
    pub fn wait(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_until(Duration::from_secs(10), ready)
            .unwrap_or_else(|text| panic!("timed out waiting for {what}; screen:\n{text}"))
    }

    pub fn press(&mut self, bytes: &[u8]) {
        self.keys.write_all(bytes).unwrap();
        self.keys.flush().unwrap();
    }

    /// Change the pty's size, as a window being resized does (the program gets SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("resize the pty");
        let mut parser = self.parser.lock().unwrap();
        parser.screen_mut().set_size(
            NonZeroU16::new(rows).unwrap(),
            NonZeroU16::new(cols).unwrap(),
        );
    }

    /// Close the terminal, as closing its window does: drop the master side. Returns the
    /// child, still to be waited for.
    pub fn hang_up(self) -> Box<dyn portable_pty::Child + Send + Sync> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.reader.join();
        drop(self.keys);
        drop(self.master);
        self.child
    }

    /// Wait for the program to exit and for its last output; returns its exit code and
    /// the emulator, to check what it left on the screen.
    pub fn finish(mut self) -> (u32, Arc<Mutex<vt100::Parser>>) {
        let status = self.child.wait().unwrap();
        drop(self.keys);
        drop(self.master);
        let _ = self.reader.join();
        (status.exit_code(), self.parser)
    }
}

/// Put `command` on a fresh pty, as a terminal emulator starts a shell: the program will
/// be a session leader whose controlling terminal is the pty's slave. Returns the master,
/// opened close-on-exec (as is the slave) so that no other child of the test process —
/// another test thread's spawn — holds a copy: closing it is then a real hang-up.
pub fn attach_new_pty(
    command: &mut std::process::Command,
    rows: u16,
    cols: u16,
) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let master = nix::pty::posix_openpt(
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
    )
    .expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let name = nix::pty::ptsname_r(&master).expect("ptsname");
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)
        .expect("open the pty slave")
        .into();
    command
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec only setsid and ioctl, both async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    master.into()
}
