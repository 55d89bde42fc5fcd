//! Screenshots and a recording of the real explorer, for the README.
//!
//! This runs the built `daemonlab` binary in a pseudo-terminal of 120 × 36 cells, presses
//! keys the way a person would (waiting for what is on the screen rather than sleeping
//! blindly), reads the screen with a terminal emulator (vt100), and writes:
//!
//! * `lab.svg`, `locks.svg`, `processes.svg`, `inspect.svg`: one screen of each tab;
//! * `tour.cast`: the whole session in asciicast v2, for asciinema;
//! * `tour.svg`: an animated SVG of the screen after each key press, looping.
//!
//! Run it (the script `assets/make-screenshots.sh` does both steps):
//!
//! ```text
//! cargo build --release
//! cargo run --release --example screenshots -- target/release/daemonlab assets
//! ```
//!
//! Arguments: the binary (default `target/release/daemonlab`) and the output directory
//! (default `assets`). Set `SCREENSHOTS_DEBUG=1` to print each captured screen as text.
//!
//! The explorer runs with `--subreaper`, so the lab adopts the subject's orphans and the
//! screens name the lab, not this program, as the adopter. This program is a child subreaper
//! as well, so anything the lab leaves behind is reparented here rather than to init; it
//! notes every process below the explorer as it goes, and at the end fails loudly unless all
//! of them are gone. The files are written only when the whole run went right.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const ROWS: u16 = 36;
const COLS: u16 = 120;
/// How long any one wait for the screen may take before the run fails.
const PATIENCE: Duration = Duration::from_secs(20);
/// A pause after each key's effect is on screen, so the recording can be followed.
const DWELL: Duration = Duration::from_millis(1200);
/// How long each frame of the animated SVG is shown.
const FRAME_SECONDS: f64 = 1.8;
/// The terminal the explorer is told it runs in.
const TERM: &str = "xterm-256color";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("screenshots: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let exe = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/daemonlab".into()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| "assets".into()));
    if !exe.is_file() {
        return Err(format!(
            "{} not found: build it first with `cargo build --release`",
            exe.display()
        )
        .into());
    }
    std::fs::create_dir_all(&out)?;
    let exe = exe.canonicalize()?;

    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and changes only
    // this process's own attribute; the unused arguments are zero as the man page asks.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        )
        .into());
    }

    let started = Instant::now();
    let mut session = Session::start(&exe)?;
    let outcome = tour(&mut session);
    let finished = session.quit();
    // Whatever went wrong, nothing may be left running.
    let gone = check_all_gone(&session.seen);
    let processes = session.seen.len();
    drop(session);
    outcome?;
    let recording = finished?;
    gone?;

    // Only a run that went right all the way replaces the assets.
    for (name, screen) in &recording.stills {
        write(&out.join(name), &svg_still(screen))?;
    }
    write(&out.join("tour.cast"), &asciicast(&recording.chunks))?;
    write(
        &out.join("tour.svg"),
        &svg_animation(&recording.frames, FRAME_SECONDS),
    )?;
    eprintln!(
        "done in {:.1} s; {processes} processes started by the explorer, all gone",
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// The keys pressed and the screens captured, in order.
fn tour(s: &mut Session) -> Result<()> {
    // The Lab tab: the subject is up once its PID shows in the Process pane.
    s.wait("the first snapshot", |t| {
        number_after(t, "subject ").is_some_and(|pid| t.contains(&format!("PID {pid} ")))
    })?;
    s.frame();
    // Step by step up to setsid, the step that changes the most.
    for done in 1..=LAB_SHOT_STEPS {
        next_step(s, done)?;
    }
    s.shoot("lab.svg");
    // The rest of the steps, so the Inspect tab audits a finished daemon.
    for done in LAB_SHOT_STEPS + 1..=STEPS {
        next_step(s, done)?;
    }

    // The Locks tab: wait mode (F_SETLKW), then ten contenders at once.
    s.press(b"2")?;
    s.wait("the Locks tab", |t| t.contains("lock table"))?;
    s.frame();
    if !s.text().contains("F_SETLKW)") {
        s.press(b"w")?;
        s.wait("wait mode", |t| t.contains("F_SETLKW)"))?;
        s.frame();
    }
    s.press(b"C")?;
    s.wait("a holder and nine blocked waiters", |t| {
        t.contains("1 holding · 9 waiting") && t.contains("-> ")
    })?;
    s.frame();
    s.shoot("locks.svg");
    // Kill the holder: a waiter is woken and takes over.
    s.press(b"k")?;
    s.wait("the holder killed and a waiter holding", |t| {
        t.contains("killed by SIGKILL") && t.contains("HOLDS")
    })?;
    s.frame();
    s.press(b"e")?;
    s.wait("every contender ended", |t| {
        !t.contains("HOLDS") && t.matches("-> ").count() == 0
    })?;
    s.frame();

    // Back on the Lab tab, the daemon takes its own pid-file lock (already_running).
    s.press(b"1")?;
    s.wait("the Lab tab", |t| t.contains("Steps (APUE 13.3)"))?;
    s.press(b"K")?;
    s.wait("the daemon holding its pid-file lock", |t| {
        t.contains("already_running")
    })?;
    s.frame();

    // The Processes tab, narrowed to the lab's own processes, the daemon selected.
    s.press(b"3")?;
    s.wait("the Processes tab", |t| t.contains("COMMAND"))?;
    s.frame();
    if !s.text().contains("kernel threads hidden") {
        s.press(b"h")?;
        s.wait("kernel threads hidden", |t| {
            t.contains("kernel threads hidden")
        })?;
    }
    s.press(b"/")?;
    for key in PROCESS_FILTER.bytes() {
        s.press(&[key])?;
    }
    s.press(b"\r")?;
    s.wait("the filtered list", |t| {
        t.contains(&format!("filter \"{PROCESS_FILTER}\"")) && t.contains("__subject")
    })?;
    s.frame();
    // Move the selection down from the first row to the subject's.
    let text = s.text();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.contains("COMMAND"));
    let subject = lines.iter().position(|l| l.contains("__subject"));
    let (Some(header), Some(subject)) = (header, subject) else {
        return Err(format!("no subject row in the Processes tab:\n{text}").into());
    };
    for _ in header + 1..subject {
        s.press(b"j")?;
    }
    s.settle();
    s.frame();
    s.shoot("processes.svg");

    // Enter: the Inspect tab audits the selected process; d names it the lab's daemon.
    s.press(b"\r")?;
    s.wait("the Inspect tab", |t| {
        t.contains("pass") && t.contains("pidfile_lock")
    })?;
    s.frame();
    s.press(b"d")?;
    s.wait("the lab's daemon inspected", |t| {
        t.contains("the lab's daemon") && t.contains("pidfile_lock")
    })?;
    s.frame();
    s.shoot("inspect.svg");
    Ok(())
}

/// The steps of the Lab tab (0 to 10), and how many are done in `lab.svg` (up to setsid).
const STEPS: usize = 11;
const LAB_SHOT_STEPS: usize = 5;
/// What the Processes tab is filtered by: the lab's own processes.
const PROCESS_FILTER: &str = "daemonlab";

/// Press Space and wait until `done` steps carry a check mark.
fn next_step(s: &mut Session, done: usize) -> Result<()> {
    s.press(b" ")?;
    s.wait(&format!("{done} steps done"), |t| {
        t.matches('✓').count() == done
    })?;
    s.frame();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The explorer in a pty.

/// What a session leaves: its output, the frames of the animation, and the stills.
struct Recording {
    chunks: Vec<Chunk>,
    frames: Vec<vt100::Screen>,
    stills: Vec<(&'static str, vt100::Screen)>,
}

/// One chunk of the explorer's output and when it arrived.
struct Chunk {
    at: Duration,
    text: String,
}

/// The explorer running in a pty; a reader thread keeps the emulated screen up to date and
/// records every chunk of output.
struct Session {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Option<Box<dyn Write + Send>>,
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    parser: Arc<Mutex<vt100::Parser>>,
    chunks: Arc<Mutex<Vec<Chunk>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// The screen after each key press, for the animation.
    frames: Vec<vt100::Screen>,
    /// The screens to write as SVG files, by file name.
    stills: Vec<(&'static str, vt100::Screen)>,
    /// Every process seen below the explorer: PID and start time (to tell a reused PID).
    seen: BTreeSet<(i32, u64)>,
    debug: bool,
}

impl Session {
    fn start(exe: &Path) -> Result<Session> {
        let pty = native_pty_system().openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut command = CommandBuilder::new(exe);
        command.cwd(std::env::current_dir()?);
        command.env("TERM", TERM);
        // The lab adopts (and reaps) the subject's orphans itself, so the screens name the
        // lab as the adopter rather than this program.
        command.arg("--subreaper");
        for name in ["NO_COLOR", "DAEMONLAB_THEME", "DAEMONLAB_LESSONS"] {
            command.env_remove(name);
        }
        let child = pty.slave.spawn_command(command)?;
        drop(pty.slave);

        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(ROWS).ok_or("rows")?,
            NonZeroU16::new(COLS).ok_or("cols")?,
            0,
        )));
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let mut output = pty.master.try_clone_reader()?;
        let (screen, record) = (Arc::clone(&parser), Arc::clone(&chunks));
        let began = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            // Bytes of a UTF-8 sequence split between two reads wait here for the rest.
            let mut pending = Vec::new();
            while let Ok(n @ 1..) = output.read(&mut buf) {
                let at = began.elapsed();
                screen.lock().unwrap().process(&buf[..n]);
                pending.extend_from_slice(&buf[..n]);
                let text = take_utf8(&mut pending);
                if !text.is_empty() {
                    record.lock().unwrap().push(Chunk { at, text });
                }
            }
        });
        let keys = pty.master.take_writer()?;
        Ok(Session {
            child,
            keys: Some(keys),
            master: Some(pty.master),
            parser,
            chunks,
            reader: Some(reader),
            frames: Vec::new(),
            stills: Vec::new(),
            seen: BTreeSet::new(),
            debug: std::env::var_os("SCREENSHOTS_DEBUG").is_some(),
        })
    }

    fn screen(&self) -> vt100::Screen {
        self.parser.lock().unwrap().screen().clone()
    }

    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn press(&mut self, bytes: &[u8]) -> Result<()> {
        let keys = self.keys.as_mut().ok_or("the explorer's input is closed")?;
        keys.write_all(bytes)?;
        keys.flush()?;
        Ok(())
    }

    /// Wait until `ready` accepts the screen's text; fails with the screen after
    /// [`PATIENCE`]. Then pauses for [`DWELL`], so a viewer of the recording can read it.
    fn wait(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if ready(&text) {
                break;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the explorer exited ({status:?}) while waiting for {what}; screen:\n{text}"
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}; screen:\n{text}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.note_processes();
        self.settle();
        Ok(())
    }

    /// Let the screen settle after a key whose effect has no one word to wait for.
    fn settle(&mut self) {
        std::thread::sleep(DWELL);
        self.note_processes();
    }

    /// Keep the current screen as a frame of the animation.
    fn frame(&mut self) {
        let screen = self.screen();
        if self.debug {
            eprintln!("--- frame {} ---\n{}", self.frames.len(), screen.contents());
        }
        self.frames.push(screen);
    }

    /// Keep the current screen for the SVG file `name`.
    fn shoot(&mut self, name: &'static str) {
        let screen = self.screen();
        if self.debug {
            eprintln!("--- {name} ---\n{}", screen.contents());
        }
        self.stills.push((name, screen));
    }

    /// Remember every process now running below the explorer.
    fn note_processes(&mut self) {
        if let Some(pid) = self.child.process_id() {
            self.seen.extend(descendants(pid as i32));
        }
    }

    /// Press `q`, wait for the explorer to exit, and hand back what was recorded. If the
    /// explorer does not exit, it is ended with signals (and this is an error).
    fn quit(&mut self) -> Result<Recording> {
        self.note_processes();
        let _ = self.press(b"q");
        let status = self.wait_exit(Duration::from_secs(10));
        // Closing our end of the pty ends the reader once the explorer's side is closed.
        drop(self.keys.take());
        drop(self.master.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let status = status?;
        if !status.success() {
            return Err(format!("the explorer exited with {status:?}").into());
        }
        let screen = self.screen();
        if screen.alternate_screen() {
            return Err("the explorer left the terminal in the alternate screen".into());
        }
        if screen.hide_cursor() {
            return Err("the explorer left the cursor hidden".into());
        }
        Ok(Recording {
            chunks: std::mem::take(&mut *self.chunks.lock().unwrap()),
            frames: std::mem::take(&mut self.frames),
            stills: std::mem::take(&mut self.stills),
        })
    }

    /// Wait up to `limit` for the explorer to exit; then SIGTERM, then SIGKILL.
    fn wait_exit(&mut self, limit: Duration) -> Result<portable_pty::ExitStatus> {
        let deadline = Instant::now() + limit;
        let mut signals = [libc::SIGTERM, libc::SIGKILL].into_iter();
        let mut signalled = false;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if signalled {
                    Err(format!("the explorer had to be ended by a signal ({status:?})").into())
                } else {
                    Ok(status)
                };
            }
            if Instant::now() > deadline {
                let Some(signal) = signals.next() else {
                    return Err("the explorer does not exit even after SIGKILL".into());
                };
                if let Some(pid) = self.child.process_id() {
                    // SAFETY: kill(2) on the explorer this process started and has not
                    // reaped yet (try_wait above saw it still running), so the PID is ours.
                    unsafe { libc::kill(pid as i32, signal) };
                }
                signalled = true;
                // A grace period for this signal; the deadline has passed, so if the
                // explorer still runs, the next turn sends the next signal.
                poll_exit(&mut self.child, Duration::from_secs(3))?;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Poll `child` for up to `limit`; it is fine if it is still running afterwards.
fn poll_exit(
    child: &mut Box<dyn portable_pty::Child + Send + Sync>,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl Drop for Session {
    /// On an early error the explorer may still run: end it, so nothing is left behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.press(b"q");
            let _ = self.wait_exit(Duration::from_secs(5));
        }
        drop(self.keys.take());
        drop(self.master.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The longest prefix of `pending` that is whole UTF-8, as text; an incomplete sequence at
/// the end stays in `pending`, invalid bytes become U+FFFD.
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let mut text = String::new();
    loop {
        match std::str::from_utf8(pending) {
            Ok(whole) => {
                text.push_str(whole);
                pending.clear();
                return text;
            }
            Err(e) => {
                let good = e.valid_up_to();
                text.push_str(std::str::from_utf8(&pending[..good]).unwrap_or_default());
                match e.error_len() {
                    // Incomplete at the end: keep it for the next read.
                    None => {
                        pending.drain(..good);
                        return text;
                    }
                    Some(bad) => {
                        text.push('\u{FFFD}');
                        pending.drain(..good + bad);
                    }
                }
            }
        }
    }
}

/// The number after `label` in `text`, e.g. `subject 1234`.
fn number_after(text: &str, label: &str) -> Option<i32> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// Processes.

/// A process's parent and start time (clock ticks since boot), from /proc/PID/stat.
fn parent_and_start(pid: i32) -> Option<(i32, u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start, state))
}

/// Every live process whose chain of parents reaches `root` (and `root` is not included).
fn descendants(root: i32) -> Vec<(i32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let table: BTreeMap<i32, (i32, u64)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (ppid, start, _) = parent_and_start(pid)?;
            Some((pid, (ppid, start)))
        })
        .collect();
    let me = std::process::id() as i32;
    table
        .iter()
        .filter(|&(&pid, _)| {
            let mut at = pid;
            // Walk up; a process adopted by this subreaper counts as well, unless it is the
            // explorer itself.
            for _ in 0..64 {
                match table.get(&at) {
                    Some(&(ppid, _)) if ppid == root => return true,
                    Some(&(ppid, _)) if ppid == me => return at != root,
                    Some(&(ppid, _)) if ppid > 0 => at = ppid,
                    _ => return false,
                }
            }
            false
        })
        .map(|(&pid, &(_, start))| (pid, start))
        .collect()
}

/// True if `pid` still runs (not a zombie) and is the same process (same start time).
fn still_running(pid: i32, start: u64) -> bool {
    parent_and_start(pid).is_some_and(|(_, s, state)| s == start && !matches!(state, 'Z' | 'X'))
}

/// Reap whatever was reparented here, and fail unless every process in `seen` is gone
/// within a few seconds.
fn check_all_gone(seen: &BTreeSet<(i32, u64)>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: waitpid(-1, WNOHANG) with a null status pointer only reaps children of
        // this process that have already exited, and never blocks. The explorer was reaped
        // by portable-pty before this (or, on an error path, its status is simply lost).
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        let mine = std::process::id() as i32;
        let left: Vec<i32> = seen
            .iter()
            .filter(|&&(pid, start)| still_running(pid, start))
            .map(|&(pid, _)| pid)
            .chain(descendants(mine).into_iter().map(|(pid, _)| pid))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("processes left behind by the explorer: {left:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// Output files.

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {} ({} bytes)", path.display(), contents.len());
    Ok(())
}

/// The session in asciicast v2: a header line, then `[seconds, "o", data]` per chunk.
fn asciicast(chunks: &[Chunk]) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Written by hand to keep the usual order of the keys, version first.
    let header = format!(
        r#"{{"version":2,"width":{COLS},"height":{ROWS},"timestamp":{timestamp},"title":"daemonlab","env":{{"TERM":{},"SHELL":"/bin/sh"}}}}"#,
        serde_json::Value::from(TERM)
    );
    let mut cast = format!("{header}\n");
    for chunk in chunks {
        let seconds = (chunk.at.as_secs_f64() * 1e6).round() / 1e6;
        let event = serde_json::json!([seconds, "o", chunk.text]);
        let _ = writeln!(cast, "{event}");
    }
    cast
}

// ---------------------------------------------------------------------------------------
// SVG.

const CELL_W: u32 = 9;
const CELL_H: u32 = 19;
/// From a row's top to the text's baseline.
const BASELINE: u32 = 14;
/// Space between the window's edge and the cells.
const PAD: u32 = 14;
const BACKGROUND: Rgb = Rgb(0x1e, 0x1e, 0x1e);
const FOREGROUND: Rgb = Rgb(0xd4, 0xd4, 0xd4);
const FONT: &str = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rgb(u8, u8, u8);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The first sixteen colours: a dark terminal palette.
const ANSI: [Rgb; 16] = [
    Rgb(0x1e, 0x1e, 0x1e),
    Rgb(0xe0, 0x6c, 0x75),
    Rgb(0x98, 0xc3, 0x79),
    Rgb(0xe5, 0xc0, 0x7b),
    Rgb(0x61, 0xaf, 0xef),
    Rgb(0xc6, 0x78, 0xdd),
    Rgb(0x56, 0xb6, 0xc2),
    Rgb(0xab, 0xb2, 0xbf),
    Rgb(0x5c, 0x63, 0x70),
    Rgb(0xff, 0x7b, 0x86),
    Rgb(0xb5, 0xe8, 0x90),
    Rgb(0xff, 0xd6, 0x8a),
    Rgb(0x7d, 0xc4, 0xff),
    Rgb(0xde, 0x93, 0xf5),
    Rgb(0x6e, 0xd4, 0xe0),
    Rgb(0xf0, 0xf0, 0xf0),
];

/// An indexed colour: the sixteen above, the 6×6×6 cube, then 24 greys (as xterm).
fn indexed(i: u8) -> Rgb {
    match i {
        0..=15 => ANSI[usize::from(i)],
        16..=231 => {
            let n = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            Rgb(level(n / 36), level(n / 6 % 6), level(n % 6))
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            Rgb(v, v, v)
        }
    }
}

fn resolve(color: vt100::Color, default: Rgb) -> Rgb {
    match color {
        vt100::Color::Default => default,
        vt100::Color::Idx(i) => indexed(i),
        vt100::Color::Rgb(r, g, b) => Rgb(r, g, b),
    }
}

/// How a run of characters is drawn.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Style {
    fill: Rgb,
    bold: bool,
    italic: bool,
    underline: bool,
    dim: bool,
}

impl Style {
    fn css(&self) -> String {
        let mut css = format!("fill:{}", self.fill);
        if self.bold {
            css.push_str(";font-weight:bold");
        }
        if self.italic {
            css.push_str(";font-style:italic");
        }
        if self.underline {
            css.push_str(";text-decoration:underline");
        }
        if self.dim {
            css.push_str(";opacity:.65");
        }
        css
    }
}

/// A cell's style and background, with inverse applied.
fn cell_look(cell: &vt100::Cell) -> (Style, Rgb) {
    let mut fg = resolve(cell.fgcolor(), FOREGROUND);
    let mut bg = resolve(cell.bgcolor(), BACKGROUND);
    if cell.inverse() {
        std::mem::swap(&mut fg, &mut bg);
    }
    let style = Style {
        fill: fg,
        bold: cell.bold(),
        italic: cell.italic(),
        underline: cell.underline(),
        dim: cell.dim(),
    };
    (style, bg)
}

/// Styles used in a drawing, each given a short CSS class name.
#[derive(Default)]
struct Classes(BTreeMap<Style, usize>, BTreeMap<Rgb, usize>);

impl Classes {
    fn text(&mut self, style: Style) -> String {
        let next = self.0.len();
        format!("t{}", self.0.entry(style).or_insert(next))
    }

    fn background(&mut self, color: Rgb) -> String {
        let next = self.1.len();
        format!("b{}", self.1.entry(color).or_insert(next))
    }

    fn stylesheet(&self) -> String {
        let mut css = format!(
            "text{{font-family:{FONT};font-size:15px}}.w{{fill:{BACKGROUND}}}.bar{{fill:#2d2d2d}}"
        );
        for (style, n) in &self.0 {
            let _ = write!(css, ".t{n}{{{}}}", style.css());
        }
        for (color, n) in &self.1 {
            let _ = write!(css, ".b{n}{{fill:{color}}}");
        }
        css
    }
}

fn escape(text: &str, into: &mut String) {
    for c in text.chars() {
        match c {
            '&' => into.push_str("&amp;"),
            '<' => into.push_str("&lt;"),
            '>' => into.push_str("&gt;"),
            // Control characters are not allowed in XML; a cell should not hold one.
            c if (c as u32) < 0x20 => into.push(' '),
            c => into.push(c),
        }
    }
}

/// The cells of `screen` as SVG elements: background rectangles for non-default
/// backgrounds, then runs of same-style characters, each character placed on its cell.
fn draw_cells(screen: &vt100::Screen, classes: &mut Classes) -> String {
    let mut out = String::new();
    for row in 0..ROWS {
        let top = PAD + TITLE_H + u32::from(row) * CELL_H;
        // Backgrounds: runs of one non-default colour.
        let mut col = 0;
        while col < COLS {
            let bg = screen.cell(row, col).map_or(BACKGROUND, |c| cell_look(c).1);
            let start = col;
            while col < COLS && screen.cell(row, col).map_or(BACKGROUND, |c| cell_look(c).1) == bg {
                col += 1;
            }
            if bg != BACKGROUND {
                let _ = write!(
                    out,
                    r#"<rect class="{}" x="{}" y="{top}" width="{}" height="{CELL_H}"/>"#,
                    classes.background(bg),
                    PAD + u32::from(start) * CELL_W,
                    u32::from(col - start) * CELL_W,
                );
            }
        }
        // Text: runs of one style, each cell's character placed at its own x. A blank
        // carries on whatever run it is in (its colour does not show); blanks at the end
        // of a run are dropped.
        let mut run: Vec<(u16, &str)> = Vec::new();
        let mut run_style: Option<Style> = None;
        for col in 0..COLS {
            let Some(cell) = screen.cell(row, col) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let (style, _) = cell_look(cell);
            let contents = if cell.has_contents() {
                cell.contents()
            } else {
                " "
            };
            let blank = contents == " " && !style.underline;
            // A cell with combining marks (or a character outside the BMP) is drawn on its
            // own, so the x list never has to count through it.
            let simple = contents.chars().count() == 1 && contents.chars().all(|c| c <= '\u{FFFF}');
            if blank && run_style.is_some() {
                run.push((col, contents));
                continue;
            }
            if blank {
                continue;
            }
            if run_style != Some(style) || !simple {
                text_run(&mut out, classes, run_style, &run, top);
                run.clear();
                run_style = Some(style);
            }
            run.push((col, contents));
            if !simple {
                text_run(&mut out, classes, run_style, &run, top);
                run.clear();
                run_style = None;
            }
        }
        text_run(&mut out, classes, run_style, &run, top);
        out.push('\n');
    }
    out
}

/// One `<text>` element for a run of cells in one style, trailing blanks left out.
fn text_run(
    out: &mut String,
    classes: &mut Classes,
    style: Option<Style>,
    run: &[(u16, &str)],
    top: u32,
) {
    let Some(style) = style else { return };
    let keep = run.len() - run.iter().rev().take_while(|(_, c)| *c == " ").count();
    if keep == 0 {
        return;
    }
    let xs: Vec<String> = run[..keep]
        .iter()
        .map(|&(col, _)| (PAD + u32::from(col) * CELL_W).to_string())
        .collect();
    let _ = write!(
        out,
        r#"<text class="{}" x="{}" y="{}">"#,
        classes.text(style),
        xs.join(" "),
        top + BASELINE
    );
    for (_, contents) in &run[..keep] {
        escape(contents, out);
    }
    out.push_str("</text>");
}

/// Height of the window's title bar above the cells.
const TITLE_H: u32 = 22;

fn svg_size() -> (u32, u32) {
    (
        2 * PAD + u32::from(COLS) * CELL_W,
        2 * PAD + TITLE_H + u32::from(ROWS) * CELL_H,
    )
}

/// The opening of an SVG document and the window around the terminal.
fn svg_open(width: u32, height: u32, css: &str) -> String {
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xml:space="preserve">
<style>{css}</style>
<rect class="w" width="{width}" height="{height}" rx="8"/>
<path class="bar" d="M0 8a8 8 0 0 1 8-8H{}a8 8 0 0 1 8 8V{TITLE_H}H0z"/>
"#,
        width - 8,
    );
    for (i, color) in ["#ff5f56", "#ffbd2e", "#27c93f"].iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<circle cx="{}" cy="11" r="5" fill="{color}"/>"#,
            16 + 18 * i
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="15" text-anchor="middle" style="fill:#9a9a9a;font-size:12px">daemonlab</text>"##,
        width / 2
    );
    out
}

fn svg_still(screen: &vt100::Screen) -> String {
    let mut classes = Classes::default();
    let cells = draw_cells(screen, &mut classes);
    let (width, height) = svg_size();
    let mut out = svg_open(width, height, &classes.stylesheet());
    out.push_str(&cells);
    out.push_str("</svg>\n");
    out
}

/// Every frame in turn, each for `seconds`, looping: each frame's group is hidden except
/// for its own slice of the loop (SMIL, which browsers run in an `<img>` too).
fn svg_animation(frames: &[vt100::Screen], seconds: f64) -> String {
    let mut classes = Classes::default();
    let n = frames.len().max(1);
    let total = seconds * n as f64;
    let mut groups = String::new();
    for (i, screen) in frames.iter().enumerate() {
        let from = i as f64 / n as f64;
        let to = (i + 1) as f64 / n as f64;
        let (values, times) = if n == 1 {
            ("visible".to_string(), "0".to_string())
        } else if i == 0 {
            ("visible;hidden".to_string(), format!("0;{to:.6}"))
        } else if i + 1 == n {
            ("hidden;visible".to_string(), format!("0;{from:.6}"))
        } else {
            (
                "hidden;visible;hidden".to_string(),
                format!("0;{from:.6};{to:.6}"),
            )
        };
        // The first frame is visible without animation too, for viewers that have none.
        let _ = write!(
            groups,
            r#"<g visibility="{}"><animate attributeName="visibility" values="{values}" keyTimes="{times}" dur="{total:.1}s" calcMode="discrete" repeatCount="indefinite"/>
{}</g>
"#,
            if i == 0 { "visible" } else { "hidden" },
            draw_cells(screen, &mut classes)
        );
    }
    let (width, height) = svg_size();
    let mut out = svg_open(width, height, &classes.stylesheet());
    out.push_str(&groups);
    out.push_str("</svg>\n");
    out
}
