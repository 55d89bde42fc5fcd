//! `inspect` of a process with many descriptors, against the tool a user would reach for
//! first, `ls -l /proc/PID/fd`, measured in the same run at 10, 100 and 1 000 descriptors
//! (target: inspect ≤ 1.0× ls at 1 000, growing linearly). The process is a child that
//! holds N descriptors on /dev/null (a python3 that opens them), so the bench's own
//! descriptors do not count.
//!
//! First it prints the whole `daemonlab inspect PID` process against the whole `ls`
//! process in alternating pairs (one of each, again and again), with the median of the
//! pair-by-pair ratios: this machine's speed drifts within a run, and divan's samples of
//! one benchmark all come before the other's.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

fn main() {
    versus_ls();
    divan::main();
}

const PAIRS: usize = 41;

/// `daemonlab inspect PID` against `ls -l /proc/PID/fd`, pair by pair, at each size.
fn versus_ls() {
    println!("inspect versus ls -l /proc/PID/fd: whole processes, {PAIRS} alternating pairs");
    let exe = daemonlab_exe();
    if !exe.exists() {
        println!(
            "  SKIPPED: {} is absent (cargo build --release first)",
            exe.display()
        );
        return;
    }
    for n in SIZES {
        let pid = holder(n).to_string();
        let fd_dir = format!("/proc/{pid}/fd");
        let time = |cmd: &mut Command| {
            let started = std::time::Instant::now();
            let status = cmd.stdout(Stdio::null()).status().unwrap();
            assert!(status.success(), "{cmd:?} failed: {status}");
            started.elapsed().as_secs_f64()
        };
        let (mut ours, mut anchor, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..PAIRS {
            let a = time(Command::new(&exe).args(["inspect", &pid]));
            let b = time(Command::new("ls").arg("-l").arg(&fd_dir));
            ours.push(a);
            anchor.push(b);
            ratios.push(a / b);
        }
        let target = if n == 1000 { " (target <= 1.00x)" } else { "" };
        // The quartiles of the ratios show how far this machine's noise moves one pair.
        let ratio = median(&mut ratios);
        let quartiles = (ratios[PAIRS / 4], ratios[PAIRS - 1 - PAIRS / 4]);
        println!(
            "  {n:>4} fds: inspect {:>6.2} ms, ls {:>6.2} ms, median ratio {ratio:.2}x \
             (quartiles {:.2}-{:.2}x){target}",
            median(&mut ours) * 1e3,
            median(&mut anchor) * 1e3,
            quartiles.0,
            quartiles.1,
        );
    }
}

/// The median of `values`, which it leaves sorted.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn daemonlab_exe() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/daemonlab")
}

const SIZES: [usize; 3] = [10, 100, 1000];

/// A child holding about `n` open descriptors, kept for the whole run.
fn holder(n: usize) -> i32 {
    static HOLDERS: Mutex<Vec<(usize, Child)>> = Mutex::new(Vec::new());
    let mut holders = HOLDERS.lock().unwrap();
    if let Some((_, child)) = holders.iter().find(|(m, _)| *m == n) {
        return child.id() as i32;
    }
    // Python opens them and then reads its stdin, a pipe from us: however this bench
    // ends (even killed), the pipe closes and the holder exits.
    let script = format!(
        "import os, sys\nfds=[os.open('/dev/null', os.O_RDONLY) for _ in range({})]\nprint('ready', flush=True)\nsys.stdin.read()\n",
        n.saturating_sub(3)
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on this machine's image; the bench needs it)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = child.id() as i32;
    holders.push((n, child));
    pid
}

#[divan::bench(args = SIZES, sample_count = 30)]
fn inspect(n: usize) -> daemonlab::audit::Audit {
    daemonlab::audit::inspect(holder(n)).unwrap()
}

/// The anchor: the whole `ls -l /proc/PID/fd` process, as a user runs it.
#[divan::bench(args = SIZES, sample_count = 30)]
fn ls_l_proc_fd(n: usize) {
    let pid = holder(n);
    let out = Command::new("ls")
        .arg("-l")
        .arg(format!("/proc/{pid}/fd"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
}

/// `daemonlab inspect PID` as a whole process, for a like-for-like ratio with `ls`.
#[divan::bench(args = SIZES, sample_count = 30)]
fn inspect_command(n: usize) {
    let pid = holder(n);
    let exe = daemonlab_exe();
    if !exe.exists() {
        return;
    }
    let _ = Command::new(exe)
        .args(["inspect", &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
}
