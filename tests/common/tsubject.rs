//! tests/c/tsubject.c, the daemon shapes `trace` and `run` are tested on: compiled once
//! per test binary with `cc` (skipped loudly without one), and the way to find what of
//! it is still alive.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The compiled program, or `None` (and a loud skip) without a C compiler.
pub fn tsubject() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| build("tsubject")).as_deref()
}

/// tests/c/noptrace.c: runs a command under a seccomp filter that refuses ptrace.
#[allow(dead_code)]
pub fn noptrace() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| build("noptrace")).as_deref()
}

/// Compile tests/c/NAME.c into the temp dir, once per test binary.
fn build(name: &str) -> Option<PathBuf> {
    // In target/tmp (cargo clean removes it), not the machine's /tmp.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    match Command::new("cc").arg("-o").arg(&out).arg(&src).status() {
        Ok(s) if s.success() => Some(out),
        other => {
            eprintln!("SKIPPED: no working C compiler (cc) for tests/c/{name}.c: {other:?}");
            None
        }
    }
}

/// Live (not zombie) processes whose command line names `dir`: only ours, since each
/// case has its own directory.
pub fn survivors(dir: &Path) -> Vec<i32> {
    let needle = dir.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim().starts_with('Z'));
            String::from_utf8_lossy(&cmdline).contains(needle) && !zombie
        })
        .collect()
}
