//! The Processes tab, idle, against `top -d 1` beside it in the same run: both refresh
//! the whole process table once a second, each on a pty of its own, with 2 000 extra
//! sleeping processes in the table. Measured: CPU time (utime + stime, every thread,
//! from /proc/PID/stat) each uses over the same window. Target: ratio ≤ 1.0.
//!
//! Run with `cargo bench --bench processes_tab` (uses the release binary it builds:
//! target/release/daemonlab, or $DAEMONLAB_EXE). Skips the comparison loudly without
//! `top`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

#[path = "support/crowd.rs"]
mod crowd;
use crowd::Crowd;

const EXTRA_PROCESSES: usize = 2000;
/// How long each measurement window lasts.
const WINDOW: Duration = Duration::from_secs(20);
/// Windows measured; the ratio printed is the median of theirs.
const ROUNDS: usize = 3;

fn main() {
    let exe = std::env::var_os("DAEMONLAB_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/daemonlab")
        });
    if !exe.is_file() {
        eprintln!(
            "*** SKIPPING: {} is not built — run cargo build --release first ***",
            exe.display()
        );
        return;
    }
    let crowd = Crowd::spawn(EXTRA_PROCESSES);
    let top = which("top");
    if top.is_none() {
        eprintln!("\n*** SKIPPING the comparison: `top` is not installed (install procps) ***\n");
    }
    let ours = OnPty::start(&exe, &[], b"3");
    let theirs = top.as_ref().map(|t| OnPty::start(t, &["-d", "1"], b""));
    // Let both draw their first screens and settle.
    std::thread::sleep(Duration::from_secs(3));
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (a0, b0) = (ours.cpu_ticks(), theirs.as_ref().map(OnPty::cpu_ticks));
        std::thread::sleep(WINDOW);
        let (a1, b1) = (ours.cpu_ticks(), theirs.as_ref().map(OnPty::cpu_ticks));
        let a = a1.saturating_sub(a0);
        print!(
            "round {round}: Processes tab {a} ticks in {} s ({:.2}% of a CPU)",
            WINDOW.as_secs(),
            percent(a)
        );
        if let (Some(b0), Some(b1)) = (b0, b1) {
            let b = b1.saturating_sub(b0).max(1);
            print!(
                ", top -d 1 {b} ticks ({:.2}%), ratio {:.2}",
                percent(b),
                a as f64 / b as f64
            );
            ratios.push(a as f64 / b as f64);
        }
        println!();
    }
    println!(
        "{} processes in the table ({} of them this benchmark's sleepers)",
        std::fs::read_dir("/proc")
            .map(|d| d
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count())
            .unwrap_or(0),
        crowd.children.len()
    );
    if !ratios.is_empty() {
        ratios.sort_by(f64::total_cmp);
        println!(
            "median ratio Processes tab / top -d 1: {:.2} (target <= 1.0)",
            ratios[ratios.len() / 2]
        );
    }
    drop(theirs);
    drop(ours);
    drop(crowd);
}

fn percent(ticks: u64) -> f64 {
    let hz = 100.0; // USER_HZ
    ticks as f64 / hz / WINDOW.as_secs_f64() * 100.0
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// A program on a pty of its own (120×40), its output drained, ended on drop.
struct OnPty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pid: i32,
    _keys: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl OnPty {
    fn start(program: &std::path::Path, args: &[&str], keys: &[u8]) -> OnPty {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pty");
        let mut command = CommandBuilder::new(program);
        command.args(args);
        command.env("TERM", "xterm-256color");
        let child = pty
            .slave
            .spawn_command(command)
            .expect("start it on the pty");
        let pid = child.process_id().expect("its pid") as i32;
        let mut reader = pty.master.try_clone_reader().expect("a reader");
        std::thread::spawn(move || {
            let mut sink = [0u8; 65536];
            while matches!(std::io::Read::read(&mut reader, &mut sink), Ok(n) if n > 0) {}
        });
        let mut writer = pty.master.take_writer().expect("a writer");
        if !keys.is_empty() {
            std::thread::sleep(Duration::from_secs(2));
            writer.write_all(keys).expect("keys");
            writer.flush().expect("keys");
        }
        OnPty {
            child,
            pid,
            _keys: writer,
            _master: pty.master,
        }
    }

    /// utime + stime of the whole process (every thread), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // Fields 14 and 15 of proc(5), counted after the comm (which ends at field 2).
        let at = |n: usize| {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        at(14) + at(15)
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        // Our own child, not yet waited for: its PID is still its own.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
