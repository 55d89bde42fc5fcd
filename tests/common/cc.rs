//! C programs the tests compile with `cc`, which is there wherever cargo links.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compile `source` as `name` into cargo's temporary directory for tests; `None`, after
/// a loud SKIPPED, when there is no working C compiler. Call it once per program (from a
/// `OnceLock`): the file names carry this test process's PID, not a count.
pub fn build(name: &str, source: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join(format!("{name}-{}.c", std::process::id()));
    let out = dir.join(format!("{name}-{}", std::process::id()));
    std::fs::write(&src, source).unwrap();
    match Command::new("cc").arg("-o").arg(&out).arg(&src).status() {
        Ok(s) if s.success() => Some(out),
        other => {
            eprintln!("SKIPPED: no working C compiler (cc) for {name}: {other:?}");
            None
        }
    }
}
