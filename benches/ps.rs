//! `daemonlab ps` against procps's `ps -axj` on a busy system: 2000 extra sleeping
//! processes, started here and killed at the end. Target: read_table() no slower than
//! running `ps -axj` (ratio <= 1.0), since the Processes tab refreshes the whole table.
//!
//! Run with `cargo bench --bench ps`. After divan's table, a direct interleaved
//! measurement prints both medians and the ratio daemonlab/ps.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemonlab::probe::ps;

#[path = "support/crowd.rs"]
mod crowd;
use crowd::Crowd;

/// How many `sleep` processes crowd the table while measuring.
const EXTRA_PROCESSES: usize = 2000;
/// Samples per side for the printed medians.
const SAMPLES: usize = 31;

fn main() {
    let crowd = Crowd::spawn(EXTRA_PROCESSES);
    let have_ps = ps_works();
    if !have_ps {
        eprintln!(
            "\n*** SKIPPING the procps comparison: `ps` is not installed (install procps) ***\n"
        );
    }
    eprintln!(
        "{} processes in the table ({} of them this benchmark's sleepers)",
        ps::read_table().map_or(0, |rows| rows.len()),
        crowd.children.len()
    );

    divan::main();

    let ours = median_of(|| {
        divan::black_box(ps::read_table().unwrap());
    });
    println!("\nread_table() median: {}", micros(ours));
    if have_ps {
        let theirs = median_of(|| {
            divan::black_box(run_ps());
        });
        println!("ps -axj      median: {}", micros(theirs));
        println!(
            "ratio daemonlab/ps: {:.2} (target <= 1.0)",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    drop(crowd);
}

/// `read_table()`: one /proc pass, every row built.
#[divan::bench(sample_count = 50)]
fn read_table() -> Vec<ps::PsRow> {
    ps::read_table().unwrap()
}

/// `read_table()` plus the text rendering `daemonlab ps` prints, to compare like with
/// like: `ps -axj` formats too.
#[divan::bench(sample_count = 50)]
fn read_table_and_format_text() -> String {
    ps::text_table(&ps::read_table().unwrap())
}

/// procps `ps -axj` with its output captured, spawn and exit included: what a user would
/// otherwise run.
#[divan::bench(sample_count = 50)]
fn procps_ps_axj(bencher: divan::Bencher) {
    if !ps_works() {
        eprintln!("SKIPPED procps_ps_axj: `ps` is not installed");
        return;
    }
    bencher.bench(run_ps);
}

fn run_ps() -> Vec<u8> {
    let out = Command::new("ps")
        .arg("-axj")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run ps -axj");
    assert!(out.status.success(), "ps -axj failed");
    out.stdout
}

fn ps_works() -> bool {
    Command::new("ps")
        .arg("-p1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Median wall time of `f` over [`SAMPLES`] runs, after one warm-up.
fn median_of(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[SAMPLES / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}
