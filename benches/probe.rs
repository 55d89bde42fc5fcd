//! Cost of reading a process from /proc, to keep the probe cheap enough to run after
//! every lab step (budget: the lab's snapshot of its subject, `snapshot_watched`,
//! <= 50 µs). A one-off snapshot (`snapshot_child`: inspect, and trace's first look
//! at a process) opens every file anew and costs about twice that.
//!
//! Run with `cargo bench --bench probe`.

use std::process::{Child, Command, Stdio};

use daemonlab::probe::{self, Pid};

fn main() {
    divan::main();
}

fn our_pid() -> Pid {
    std::process::id() as Pid
}

/// Everything: stat, status, cwd, root, fds with fdinfo, parent comm.
#[divan::bench]
fn snapshot_self() -> probe::ProcSnapshot {
    probe::snapshot(divan::black_box(our_pid()), None).unwrap()
}

/// What the lab actually does: probe a child it started. `sleep` with stdio on /dev/null
/// holds 0, 1, 2 plus whatever non-close-on-exec fds this process inherited.
#[divan::bench]
fn snapshot_child(bencher: divan::Bencher) {
    let child = sleeping_child();
    let pid = child.0.id() as Pid;
    bencher.bench(|| probe::snapshot(divan::black_box(pid), Some(our_pid())).unwrap());
}

/// What the lab does from the second snapshot of a subject on: the same child, its /proc
/// files kept open between snapshots (`probe::Watch`).
#[divan::bench]
fn snapshot_watched(bencher: divan::Bencher) {
    let child = sleeping_child();
    let mut watch = probe::Watch::open(child.0.id() as Pid).unwrap();
    bencher.bench_local(|| watch.snapshot(divan::black_box(Some(our_pid()))).unwrap());
}

/// A `sleep 600` with stdio on /dev/null.
fn sleeping_child() -> KillOnDrop {
    KillOnDrop(
        Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep for the benchmark"),
    )
}

/// Kills and reaps the benchmark's child even if the benchmark panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The cheap poll: open /proc/PID, read and parse stat.
#[divan::bench]
fn read_stat_self() -> probe::ProcStat {
    probe::read_stat(divan::black_box(our_pid())).unwrap()
}

/// Parsing alone, on a line with a hostile command name.
#[divan::bench]
fn parse_stat_line() -> probe::ProcStat {
    const LINE: &[u8] = b"4242 (a) b (c) S 1 4242 4242 34816 4242 4194560 121 0 0 0 \
0 0 0 0 20 0 1 0 33723 3133440 359 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
    probe::parse_stat(4242, divan::black_box(LINE)).unwrap()
}

/// The fast path of tty decoding (no /dev lookup).
#[divan::bench]
fn tty_name_pts() -> Option<String> {
    probe::tty_name(divan::black_box(34819))
}

/// The same stat read through the procfs crate, to justify parsing by hand.
#[divan::bench]
fn procfs_stat_self() -> i32 {
    procfs::process::Process::new(divan::black_box(our_pid()))
        .unwrap()
        .stat()
        .unwrap()
        .ppid
}
