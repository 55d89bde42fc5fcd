//! The real binary in a real pty: start the explorer, press keys, read the screen with a
//! terminal emulator (vt100), quit, and check the terminal and the process table.

mod common;

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use common::{assert_all_gone, become_subreaper, exe};

const ROWS: u16 = 40;
const COLS: u16 = 120;

struct Screen(Arc<Mutex<vt100::Parser>>);

impl Screen {
    fn text(&self) -> String {
        self.0.lock().unwrap().screen().contents()
    }

    /// Wait until `ready` accepts the screen; panics with the screen after 10 s.
    fn wait(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text();
            if ready(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The number after `label` on the screen, e.g. `subject 1234`.
fn number_after(text: &str, label: &str) -> Option<i32> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

#[test]
fn explorer_starts_steps_through_everything_and_quits_cleanly() {
    become_subreaper();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pty");
    let mut command = CommandBuilder::new(exe());
    command.env("TERM", "xterm-256color");
    command.env_remove("NO_COLOR");
    let mut child = pty.slave.spawn_command(command).expect("start daemonlab");
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        NonZeroU16::new(ROWS).unwrap(),
        NonZeroU16::new(COLS).unwrap(),
        0,
    )));
    let mut reader = pty.master.try_clone_reader().unwrap();
    let sink = Arc::clone(&parser);
    let reader_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut keys = pty.master.take_writer().unwrap();
    let screen = Screen(Arc::clone(&parser));

    // 1. The first screen: the labels and the subject's real PID.
    let first = screen.wait("the first snapshot", |t| {
        t.contains("subject ") && t.contains("PID ")
    });
    for label in ["PID ", "PPID ", "PGID ", "SID ", "TTY "] {
        assert!(first.contains(label), "{label} missing:\n{first}");
    }
    let subject = number_after(&first, "subject ").unwrap();
    let stand_in = number_after(&first, "shell stand-in ").unwrap();
    assert!(first.contains(&format!("PID {subject}")), "{first}");
    let comm = std::fs::read_to_string(format!("/proc/{subject}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "daemonlab",
        "the PID on screen is the live subject"
    );
    assert!(first.contains("TTY pts/"), "{first}");
    let mut seen = vec![subject, stand_in];

    // 2. Space through every step; the TTY goes from pts/N to none at setsid.
    for done in 1..=11 {
        keys.write_all(b" ").unwrap();
        keys.flush().unwrap();
        let text = screen.wait(&format!("{done} steps done"), |t| {
            t.matches('✓').count() == done
        });
        seen.extend(number_after(&text, "subject "));
        if done == 4 {
            assert!(
                text.contains("TTY pts/"),
                "still on the terminal before setsid:\n{text}"
            );
        }
        if done == 5 {
            assert!(
                text.contains("TTY ?*"),
                "setsid drops the terminal:\n{text}"
            );
            assert!(text.contains("TPGID -1*"), "{text}");
        }
    }
    let last = screen.text();
    assert!(last.contains("syslog receiver got"), "{last}");

    // 3. q exits 0, out of the alternate screen, leaving no process behind.
    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(keys);
    drop(pty.master);
    let _ = reader_thread.join();
    let parser = parser.lock().unwrap();
    assert!(
        !parser.screen().alternate_screen(),
        "left the alternate screen"
    );
    assert!(!parser.screen().hide_cursor(), "cursor visible again");
    assert_all_gone(&seen);
}
