//! The lab's round trips on a real subject: a non-fork step and a fork step, each
//! request -> reply -> /proc snapshot. Targets (issue 2): median <= 1 ms and <= 3 ms,
//! on a quiet machine and on one with 2 000 more processes (`busy_non_fork_step`): a
//! step reads the processes its session picture can hold, not the whole machine.

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

/// `non_fork_step` with 2 000 more processes on the machine, none of them the lab's.
#[divan::bench(sample_count = 200)]
fn busy_non_fork_step(bencher: divan::Bencher) {
    let _crowd = Crowd::of(2000);
    let processes = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    println!("busy_non_fork_step: {processes} processes on the machine");
    let mut lab = lab();
    bencher.bench_local(|| lab.run(StepId::Umask).unwrap());
}

/// `n` sleeping processes, grandchildren of this bench (children of one `sh`), each
/// waiting for end of file on a pipe from here: they end when this is dropped or when
/// the bench ends however it ends. Not benches/support/crowd.rs, whose sleepers are
/// this process's own children: here this process is the lab, and a lab's own children
/// are among the processes its session picture reads.
struct Crowd(std::process::Child);

impl Crowd {
    fn of(n: usize) -> Crowd {
        use std::io::BufRead;
        // An asynchronous list's stdin is /dev/null unless redirected: fd 3 is the pipe.
        let script = format!(
            "exec 3<&0; i=0; while [ $i -lt {n} ]; do (read x <&3) & i=$((i+1)); done; \
             echo ready; read x; wait"
        );
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Crowd(child)
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
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
