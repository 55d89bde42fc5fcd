//! The cost of `daemonlab trace`: a program making 2 000 000 system calls no rule is
//! about, traced and untraced in the same run (target: traced ≤ 1.5× untraced, because
//! the seccomp filter lets those calls through), and the cost of one rule event (the stop,
//! the report, the /proc snapshot, the resume) from a program making 1 000 umask() calls.
//!
//! The program is tests/c/tsubject.c, compiled here with `cc`; the tracer is the daemonlab
//! binary re-executed as `__session --trace`: `$DAEMONLAB_EXE`, else
//! target/release/daemonlab. Each part skips, saying why, when one of them is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use daemonlab::trace::{Ending, TraceOptions, Traced, follow, rules::Tracker};

fn main() {
    divan::main();
}

fn exe() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = std::env::var_os("DAEMONLAB_EXE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/daemonlab")
            });
        if exe.exists() {
            Some(exe)
        } else {
            eprintln!(
                "trace bench: skipping: {} does not exist (cargo build --release, or set DAEMONLAB_EXE)",
                exe.display()
            );
            None
        }
    })
    .as_ref()
}

fn tsubject() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // In target/tmp (cargo clean removes it), not the machine's /tmp.
            let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("tsubject-bench-{}", std::process::id()));
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/tsubject.c");
            match Command::new("cc")
                .args(["-O2", "-o"])
                .arg(&out)
                .arg(&src)
                .status()
            {
                Ok(s) if s.success() => Some(out),
                other => {
                    eprintln!("trace bench: skipping: no working C compiler (cc): {other:?}");
                    None
                }
            }
        })
        .as_deref()
}

fn trace_to_the_end(mode: &str) {
    let (Some(exe), Some(program)) = (exe(), tsubject()) else {
        return;
    };
    let options = TraceOptions {
        exe: exe.clone(),
        program: program.display().to_string(),
        args: vec![mode.into(), std::env::temp_dir().display().to_string()],
        settle: Duration::from_millis(100),
        timeout: Duration::from_secs(120),
        filter: true,
    };
    let traced = Traced::start(&options).expect("the tracer starts");
    let mut tracker = Tracker::new(traced.job, traced.session_pid);
    let ending = follow(
        &traced,
        &options,
        |message, tracker| {
            if let Some(m) = message {
                tracker.handle(m);
            }
            tracker.take_events();
        },
        &mut tracker,
    );
    assert_eq!(ending, Ending::AllExited);
}

/// The program alone: 2 M getppid() calls.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn untraced_2m_unrelated_calls() {
    let Some(program) = tsubject() else { return };
    let status = Command::new(program)
        .args(["spin", "/tmp"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The same program traced, including the tracer's start (pty, stand-in, seize).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn traced_2m_unrelated_calls() {
    trace_to_the_end("spin");
}

/// 1 000 rule events (umask): divide by 1 000 for one stop, snapshot and resume.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn traced_1000_rule_events() {
    trace_to_the_end("umasks");
}
