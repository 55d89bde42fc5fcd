//! Lock races on real processes: 100 contenders in try mode, from the first spawn until
//! every outcome is known (target: median <= 200 ms), per lock kind; plus the in-process
//! costs a pane pays on every redraw (/proc/locks parse, evidence).
//!
//! The contenders are the daemonlab binary re-executed as `__contender`: the bench uses
//! `$DAEMONLAB_EXE`, else target/release/daemonlab, and skips the race (saying why) when
//! neither exists or the binary does not know the subcommand.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use daemonlab::locks::{ContenderState, Contenders, LockKind, LockMode, proc_locks};

fn main() {
    divan::main();
}

/// The binary to race with, if it can run contenders.
fn exe() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = std::env::var_os("DAEMONLAB_EXE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/daemonlab")
            });
        if !exe.exists() {
            eprintln!(
                "locks bench: skipping the races: {} does not exist (cargo build --release, or set DAEMONLAB_EXE)",
                exe.display()
            );
            return None;
        }
        // One contender as a probe: a binary without `__contender` fails before reporting.
        let dir = tempfile::tempdir().ok()?;
        let contenders = Contenders::new(exe.clone(), dir.path().join("probe.pid"), None);
        contenders.spawn(LockKind::Fcntl, LockMode::Try).ok()?;
        contenders.wait_settled(Duration::from_secs(5));
        if contenders.outcomes().first().map(|c| &c.state) != Some(&ContenderState::Holding) {
            eprintln!(
                "locks bench: skipping the races: {} cannot run `__contender` ({:?})",
                exe.display(),
                contenders.outcomes()
            );
            return None;
        }
        Some(exe)
    })
    .as_ref()
}

fn race(kind: LockKind, bencher: divan::Bencher) {
    let Some(exe) = exe() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("race.pid");
    bencher.bench_local(|| {
        let contenders = Contenders::new(exe.clone(), pidfile.clone(), None);
        contenders.spawn_many(100, kind, LockMode::Try).unwrap();
        assert!(contenders.wait_settled(Duration::from_secs(30)));
        let holders = contenders
            .outcomes()
            .iter()
            .filter(|c| c.state == ContenderState::Holding)
            .count();
        assert_eq!(holders, 1);
        // Ending them (close stdin, reap) is outside the measured question but inside the
        // sample; the refused ones have already gone.
        contenders
    });
}

/// 100 fcntl contenders: spawn, gate, release, all outcomes known.
#[divan::bench(sample_count = 10)]
fn race_100_fcntl(bencher: divan::Bencher) {
    race(LockKind::Fcntl, bencher);
}

/// 100 flock contenders (losers name the holder from /proc/locks + fdinfo).
#[divan::bench(sample_count = 10)]
fn race_100_flock(bencher: divan::Bencher) {
    race(LockKind::Flock, bencher);
}

/// 100 OFD contenders (losers scan fdinfo to name the holder, since l_pid is -1).
#[divan::bench(sample_count = 10)]
fn race_100_ofd(bencher: divan::Bencher) {
    race(LockKind::Ofd, bencher);
}

/// Parsing a busy /proc/locks (200 lines with waiters), as a pane does on every redraw.
#[divan::bench]
fn parse_200_lines(bencher: divan::Bencher) {
    let text: String = (1..=100)
        .map(|i| {
            format!(
                "{i}: POSIX  ADVISORY  WRITE {} fd:01:{} 0 EOF\n{i}: -> POSIX  ADVISORY  WRITE {} fd:01:{} 0 EOF\n",
                1000 + i,
                5000 + i,
                2000 + i,
                5000 + i
            )
        })
        .collect();
    bencher.bench_local(|| proc_locks::parse(divan::black_box(&text)));
}

/// Reading and parsing this machine's /proc/locks.
#[divan::bench]
fn read_proc_locks(bencher: divan::Bencher) {
    bencher.bench_local(proc_locks::read);
}
