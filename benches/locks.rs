//! Lock races on real processes: 100 contenders in try mode, from the first spawn until
//! every outcome is known (target: median <= 100 ms), per lock kind; plus the in-process
//! costs a pane pays on every redraw (/proc/locks parse, evidence).
//!
//! First it prints the race against its anchor measured in the same run: 100 parallel
//! `flock -n FILE true` (target: the race <= 1.0x the anchor), both as a shell runs them
//! (`for i in $(seq 100); do flock -n FILE true & done; wait`) and as 100 spawns from
//! this process; the anchor is skipped, saying so, when flock(1) is not installed.
//!
//! The contenders are forked by the daemonlab binary re-executed once as `__spawner` (an
//! older binary without it gets each one exec'd as `__contender`): the bench uses
//! `$DAEMONLAB_EXE`, else target/release/daemonlab, and skips the race (saying why) when
//! neither exists or the binary cannot run contenders.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use daemonlab::locks::{ContenderState, Contenders, LockKind, LockMode, proc_locks};

fn main() {
    versus_flock();
    divan::main();
}

const FLOCK: &str = "/usr/bin/flock";
const ROUNDS: usize = 15;

/// The race of 100 fcntl contenders against 100 parallel `flock -n FILE true`, rounds
/// interleaved so that a busy neighbour hurts both alike; medians and ratios.
fn versus_flock() {
    println!("locks versus flock(1): 100 processes try one lock, median of {ROUNDS} rounds");
    let Some(exe) = exe() else {
        return;
    };
    let flock = Path::new(FLOCK).exists();
    if !flock {
        println!("  SKIPPED the anchor: flock(1) not installed ({FLOCK} is absent)");
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("race.pid");
    let lockfile = dir.path().join("flock.lock");
    let (mut race, mut shell, mut spawned) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        race.push(race_once(exe, &pidfile, LockKind::Fcntl));
        if flock {
            shell.push(flock_from_shell(&lockfile));
            spawned.push(flock_spawned(&lockfile));
        }
    }
    let race = median(&mut race);
    println!("  race_100_fcntl (daemonlab contenders)        {race:>8.1?}");
    for (name, times) in [
        ("100 x flock -n from sh (& ... wait)", &mut shell),
        ("100 x flock -n spawned from this process", &mut spawned),
    ] {
        if times.is_empty() {
            continue;
        }
        let anchor = median(times);
        println!(
            "  {name:<44} {anchor:>8.1?}   ratio race / this: {:.2}x (target <= 1.00x)",
            race.as_secs_f64() / anchor.as_secs_f64()
        );
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One race, from the first spawn until every outcome is known; the contenders are ended
/// (and reaped) outside the timing.
fn race_once(exe: &Path, pidfile: &Path, kind: LockKind) -> Duration {
    let contenders = Contenders::new(exe.to_path_buf(), pidfile.to_path_buf(), None);
    let started = Instant::now();
    contenders.spawn_many(100, kind, LockMode::Try).unwrap();
    assert!(contenders.wait_settled(Duration::from_secs(30)));
    let elapsed = started.elapsed();
    let holders = contenders
        .outcomes()
        .iter()
        .filter(|c| c.state == ContenderState::Holding)
        .count();
    assert_eq!(holders, 1);
    drop(contenders);
    elapsed
}

/// What a user types: a shell starting 100 `flock -n` in the background, then `wait`.
fn flock_from_shell(lockfile: &Path) -> Duration {
    let script = format!(
        "for i in $(seq 100); do {FLOCK} -n '{}' true & done; wait",
        lockfile.display()
    );
    let started = Instant::now();
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .status()
        .expect("run sh");
    assert!(status.success());
    started.elapsed()
}

/// 100 `flock -n` started from this process, then all waited for.
fn flock_spawned(lockfile: &Path) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = (0..100)
        .map(|_| {
            Command::new(FLOCK)
                .arg("-n")
                .arg(lockfile)
                .arg("true")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn flock")
        })
        .collect();
    for mut child in children {
        let _ = child.wait();
    }
    started.elapsed()
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

/// One contender: the fixed cost of a race (the forking helper's start, one fork, gate).
#[divan::bench(sample_count = 20)]
fn race_1_fcntl(bencher: divan::Bencher) {
    let Some(exe) = exe() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("race.pid");
    bencher.bench_local(|| {
        let contenders = Contenders::new(exe.clone(), pidfile.clone(), None);
        contenders
            .spawn_many(1, LockKind::Fcntl, LockMode::Try)
            .unwrap();
        assert!(contenders.wait_settled(Duration::from_secs(30)));
        contenders
    });
}
