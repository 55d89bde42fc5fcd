//! The lab's round trips on a real subject: a non-fork step and a fork step, each
//! request -> reply -> /proc snapshot. Targets (issue 2): median <= 1 ms and <= 3 ms.

use std::path::PathBuf;

use daemonlab::lab::{Lab, LabOptions, StepId};

fn main() {
    divan::main();
}

fn lab() -> Lab {
    // `cargo bench` builds the binary alongside the bench; use the release one when present.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let exe = ["release", "debug"]
        .iter()
        .map(|profile| root.join(profile).join("daemonlab"))
        .find(|p| p.exists())
        .expect("build the binary first: cargo build --release");
    Lab::start(LabOptions {
        subreaper: true,
        ..LabOptions::with_exe(exe)
    })
    .expect("lab starts")
}

/// umask(0) on the subject: request, reply, settled snapshot.
#[divan::bench(sample_count = 200)]
fn non_fork_step(bencher: divan::Bencher) {
    let mut lab = lab();
    bencher.bench_local(|| lab.run(StepId::Umask).unwrap());
}

/// fork(), parent exits, child reparented, snapshot of the child. Every iteration makes
/// a new process; the lab (a subreaper here) reaps the exited parents as it goes.
#[divan::bench(sample_count = 200)]
fn fork_step(bencher: divan::Bencher) {
    let mut lab = lab();
    bencher.bench_local(|| lab.run(StepId::Fork).unwrap());
}

/// Starting a lab: pty, socketpairs, stand-in, subject, hello, first snapshot.
#[divan::bench(sample_count = 20)]
fn start_and_end_lab(bencher: divan::Bencher) {
    bencher.bench_local(|| drop(lab()));
}
