//! `inspect` of a process with many descriptors, against the tool a user would reach for
//! first, `ls -l /proc/PID/fd`, measured in the same run at 10, 100 and 1 000 descriptors
//! (target: inspect ≤ 1.0× ls at 1 000, growing linearly). The process is a child that
//! holds N descriptors on /dev/null (a `sh` whose redirections open them), so the
//! bench's own descriptors do not count.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

fn main() {
    divan::main();
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
    let exe = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/daemonlab");
    if !exe.exists() {
        return;
    }
    let _ = Command::new(exe)
        .args(["inspect", &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
}
