//! A program in a real pty, its screen kept up to date by a terminal emulator (vt100) on a
//! reader thread: how the explorer is driven by the end-to-end and README tests.

use std::io::{Read, Write};
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
        let mut reader = pty.master.try_clone_reader().unwrap();
        let sink = Arc::clone(&parser);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        let keys = pty.master.take_writer().unwrap();
        PtyApp {
            child,
            keys,
            master: pty.master,
            parser,
            reader,
        }
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
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text();
            if ready(&text) {
                return Ok(text);
            }
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
