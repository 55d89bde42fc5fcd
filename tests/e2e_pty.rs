//! The real binary in a real pty: start the explorer, press keys, read the screen with a
//! terminal emulator (vt100), quit, and check the terminal and the process table.

mod common;

use std::sync::Arc;
use std::time::Duration;

use portable_pty::CommandBuilder;

use common::pty::PtyApp;
use common::{assert_all_gone, become_subreaper, exe};

const ROWS: u16 = 40;
const COLS: u16 = 120;

/// The explorer running in a pty.
struct App {
    pty: PtyApp,
}

impl App {
    fn start() -> App {
        App::start_with(&[], &[])
    }

    /// Start with extra environment variables and arguments.
    fn start_with(env: &[(&str, &str)], args: &[&str]) -> App {
        become_subreaper();
        let mut command = CommandBuilder::new(exe());
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env_remove("NO_COLOR");
        for (key, value) in env {
            command.env(key, value);
        }
        App {
            pty: PtyApp::spawn(command, ROWS, COLS),
        }
    }

    fn press(&mut self, bytes: &[u8]) {
        self.pty.press(bytes);
    }

    /// Wait for the first snapshot; returns the screen and the subject's and stand-in's PIDs.
    fn first_screen(&mut self) -> (String, Vec<i32>) {
        let first = self.pty.wait("the first snapshot", |t| {
            common::number_after(t, "subject ")
                .is_some_and(|pid| t.contains(&format!("PID {pid} ")))
        });
        let subject = common::number_after(&first, "subject ").unwrap();
        let stand_in = common::number_after(&first, "stand-in ").unwrap();
        (first, vec![subject, stand_in])
    }

    /// Wait for the app to exit; check the terminal was restored; return the exit code.
    fn finish(self) -> u32 {
        let (code, parser) = self.pty.finish();
        let parser = parser.lock().unwrap();
        assert!(
            !parser.screen().alternate_screen(),
            "left the alternate screen"
        );
        assert!(!parser.screen().hide_cursor(), "cursor visible again");
        code
    }
}

#[test]
fn explorer_starts_steps_through_everything_and_quits_cleanly() {
    let mut app = App::start();

    // 1. The first screen: the labels and the subject's real PID.
    let (first, mut seen) = app.first_screen();
    for label in ["PID ", "PPID ", "PGID ", "SID ", "TTY "] {
        assert!(first.contains(label), "{label} missing:\n{first}");
    }
    let subject = seen[0];
    assert!(first.contains(&format!("PID {subject}")), "{first}");
    let comm = std::fs::read_to_string(format!("/proc/{subject}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "daemonlab",
        "the PID on screen is the live subject"
    );
    assert!(first.contains("TTY pts/"), "{first}");

    // 2. Space through every step; the TTY goes from pts/N to none at setsid.
    for done in 1..=11 {
        app.press(b" ");
        let text = app.pty.wait(&format!("{done} steps done"), |t| {
            t.matches('✓').count() == done
        });
        seen.extend(common::number_after(&text, "subject "));
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
    // The rest of the frame may still be on its way when the eleventh ✓ arrives: wait.
    app.pty.wait("the receiver's notice", |t| {
        t.contains("syslog receiver got")
    });

    // 3. q exits 0, out of the alternate screen, leaving no process behind.
    app.press(b"q");
    assert_eq!(app.finish(), 0);
    assert_all_gone(&seen);
}

/// (name, keys to press, or signal to send, and the expected exit code)
type ExitPath = (&'static str, Option<&'static [u8]>, Option<i32>, u32);

#[test]
fn every_other_exit_path_restores_the_terminal_and_ends_the_lab() {
    let paths: [ExitPath; 3] = [
        ("Ctrl-C", Some(b"\x03"), None, 0),
        (
            "SIGTERM",
            None,
            Some(libc::SIGTERM),
            128 + libc::SIGTERM as u32,
        ),
        (
            "SIGHUP",
            None,
            Some(libc::SIGHUP),
            128 + libc::SIGHUP as u32,
        ),
    ];
    for (name, keys, signal, code) in paths {
        let mut app = App::start();
        let (_, mut seen) = app.first_screen();
        // Go past setsid, so the subject no longer dies with the terminal: only the lab can end it.
        for done in 1..=5 {
            app.press(b" ");
            let text = app.pty.wait(&format!("{name}: {done} steps"), |t| {
                t.matches('✓').count() == done
            });
            seen.extend(common::number_after(&text, "subject "));
        }
        if let Some(keys) = keys {
            app.press(keys);
        }
        if let Some(signal) = signal {
            let pid = app.pty.child.process_id().unwrap() as i32;
            // SAFETY: signalling the app this test started and has not reaped yet.
            assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        }
        assert_eq!(app.finish(), code, "{name}");
        assert_all_gone(&seen);
    }
}

#[test]
fn a_panic_restores_the_terminal_and_ends_the_lab() {
    let app = App::start_with(
        &[
            (daemonlab::ui::PANIC_FOR_TESTS, "1"),
            ("RUST_BACKTRACE", "0"),
            ("RUST_LIB_BACKTRACE", "0"),
        ],
        &[],
    );
    // The app panics as soon as its lab has started; wait for it to exit.
    let parser = Arc::clone(&app.pty.parser);
    let code = app.finish();
    assert_ne!(code, 0, "a panic is a failure exit");
    let screen = parser.lock().unwrap().screen().contents();
    assert!(
        screen.contains("panicking on purpose"),
        "the panic message is readable after restore:\n{screen}"
    );
    // The lab's processes were started and must be gone: find them by their command lines.
    let leftover: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| common::running(*pid))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = text.contains(exe().to_str()?)
                && (text.contains("__session") || text.contains("__subject"));
            let ppid_is_us = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .is_some_and(|p| p == std::process::id().to_string());
            (ours && ppid_is_us).then_some(format!("{pid}: {text}"))
        })
        .collect();
    assert!(
        leftover.is_empty(),
        "left behind after a panic: {leftover:?}"
    );
}

#[test]
fn kill_9_of_the_app_ends_subject_and_stand_in_within_a_second() {
    let mut app = App::start();
    let (_, mut seen) = app.first_screen();
    for done in 1..=5 {
        app.press(b" ");
        let text = app
            .pty
            .wait(&format!("{done} steps"), |t| t.matches('✓').count() == done);
        seen.extend(common::number_after(&text, "subject "));
    }
    let pid = app.pty.child.process_id().unwrap() as i32;
    // SAFETY: SIGKILL to the app this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let _ = app.pty.child.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while seen.iter().any(|p| common::running(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let alive: Vec<i32> = seen
        .iter()
        .copied()
        .filter(|p| common::running(*p))
        .collect();
    assert!(
        alive.is_empty(),
        "still running 1 s after kill -9 of the app: {alive:?}"
    );
    assert_all_gone(&seen);
}

#[test]
fn log_goes_to_the_file_and_never_to_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemonlab.log");
    let mut app = App::start_with(&[], &["--log", log.to_str().unwrap()]);
    let (_, mut seen) = app.first_screen();
    for done in 1..=3 {
        app.press(b" ");
        let text = app.pty.wait(&format!("{done} steps done"), |t| {
            t.matches('✓').count() == done
        });
        seen.extend(common::number_after(&text, "subject "));
    }
    let screen = app.pty.text();
    app.press(b"q");
    assert_eq!(app.finish(), 0);
    assert_all_gone(&seen);
    let written = std::fs::read_to_string(&log).unwrap();
    for event in [
        "daemonlab starts",
        "lab started",
        "step done",
        "lab ended",
        "daemonlab exits",
    ] {
        assert!(
            written.contains(event),
            "{event} missing from the log:\n{written}"
        );
        assert!(
            !screen.contains(event),
            "{event} reached the screen:\n{screen}"
        );
    }
    assert_eq!(written.matches("step done").count(), 3, "{written}");
}

#[test]
fn h_after_the_fork_leaves_the_subject_alive_on_a_dead_terminal_and_says_so() {
    let mut app = App::start();
    let (_, mut seen) = app.first_screen();
    for done in 1..=4 {
        app.press(b" ");
        let text = app
            .pty
            .wait(&format!("{done} steps"), |t| t.matches('✓').count() == done);
        seen.extend(common::number_after(&text, "subject "));
    }
    let subject = *seen.last().unwrap();
    app.press(b"H");
    let text = app
        .pty
        .wait("the hang-up's note", |t| t.contains("hung up:"));
    // The kernel's view: alive, no terminal any more.
    assert!(
        common::running(subject),
        "the forked subject survives:\n{text}"
    );
    let stat = std::fs::read_to_string(format!("/proc/{subject}/stat")).unwrap();
    let tty_nr: i64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(tty_nr, 0, "the hang-up took its terminal");
    app.pty.wait("the Process pane without a terminal", |t| {
        t.contains("TTY ?")
    });
    app.pty.wait("the hang-up banner", |t| {
        t.contains("survived — the hang-up took the terminal") && t.contains("write(1): EIO")
    });
    app.pty.wait("the header: the stand-in is gone", |t| {
        t.contains("stand-in gone")
    });
    app.press(b"q");
    assert_eq!(app.finish(), 0);
    assert_all_gone(&seen);
}

#[test]
fn esc_closes_help_and_never_quits() {
    let mut app = App::start();
    let (_, seen) = app.first_screen();
    app.press(b"?");
    app.pty.wait("the help popup", |t| t.contains(" Keys "));
    // A teacher double-taps Esc to close help, then once more for luck.
    for _ in 0..3 {
        app.press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
    }
    app.pty.wait("help closed, the lab still there", |t| {
        !t.contains(" Keys ") && t.contains("nothing to close")
    });
    assert!(
        app.pty.child.try_wait().unwrap().is_none(),
        "Esc must never quit the explorer"
    );
    assert!(
        seen.iter().all(|p| common::running(*p)),
        "the lab is untouched"
    );
    app.press(b"q");
    assert_eq!(app.finish(), 0);
    assert_all_gone(&seen);
}

#[test]
fn the_syslog_socket_path_survives_r() {
    let mut app = App::start();
    let (first, seen) = app.first_screen();
    let path = |text: &str| {
        let at = text.find("logger -u ")? + "logger -u ".len();
        Some(text[at..].split([' ', '…']).next()?.to_string())
    };
    // The first snapshot's frame may be half drawn: wait for the whole path.
    let first = if path(&first).is_some_and(|p| p.ends_with("/log")) {
        first
    } else {
        app.pty.wait("the Syslog pane's socket", |t| {
            path(t).is_some_and(|p| p.ends_with("/log"))
        })
    };
    let before =
        path(&first).unwrap_or_else(|| panic!("the Syslog pane names its socket:\n{first}"));
    assert!(
        std::fs::symlink_metadata(&before).is_ok(),
        "{before} exists"
    );
    app.press(b"r");
    let old_subject = seen[0];
    // A frame may be read half drawn: wait for the whole path, then compare it.
    let text = app.pty.wait("a new subject", |t| {
        common::number_after(t, "subject ").is_some_and(|pid| pid != old_subject)
            && path(t).is_some_and(|p| p.ends_with("/log"))
    });
    assert_eq!(
        path(&text).as_deref(),
        Some(before.as_str()),
        "same socket after r"
    );
    let mut all = seen.clone();
    all.extend(common::number_after(&text, "subject "));
    all.extend(common::number_after(&text, "stand-in "));
    app.press(b"q");
    assert_eq!(app.finish(), 0);
    assert_all_gone(&all);
    assert!(
        std::fs::symlink_metadata(&before).is_err(),
        "{before} is removed at exit"
    );
}
