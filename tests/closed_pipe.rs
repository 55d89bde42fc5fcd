//! `daemonlab … | head`: a reader that goes away must not make any command panic. The
//! read end of stdout is closed before the command writes; it must end quietly, with
//! status 0 or 141 (what a shell shows for `ps | head`), and leave no lab process behind.

mod common;

use std::process::{Command, Stdio};

fn check(args: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::exe())
        .args(args)
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 141)),
        "daemonlab {args:?} with a closed stdout: {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "daemonlab {args:?}: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "daemonlab {args:?} left {left:?}");
}

#[test]
fn every_command_ends_quietly_when_its_reader_is_gone() {
    let me = std::process::id().to_string();
    let lessons = concat!(env!("CARGO_MANIFEST_DIR"), "/lessons");
    for args in [
        &["completions", "bash"][..],
        &["inspect", &me],
        &["inspect", &me, "--format", "json"],
        &["ps"],
        &["man"],
        &["--help"],
        &["lessons", "check", lessons],
        &["tour", "--format", "json"],
        &["locks", "race", "--contenders", "3"],
    ] {
        check(args);
    }
}
