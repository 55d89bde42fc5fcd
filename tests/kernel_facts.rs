//! Facts the lessons state about the kernel, checked against the kernel itself with a C
//! program this test compiles (cc is there wherever cargo links; skipped loudly if not).
//! Where a manual page says otherwise, the kernel wins: man-pages 6.03's sigpending(2)
//! says a blocked signal whose disposition is SIG_IGN is not made pending, but Linux
//! keeps it pending (kernel/signal.c never treats a blocked signal as ignored).

use std::process::Command;

/// Compile `source` and run it; `None` (and a loud SKIPPED) when there is no C compiler.
fn run_c(name: &str, source: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join(format!("{name}.c"));
    let exe = dir.path().join(name);
    std::fs::write(&c, source).unwrap();
    let built = Command::new("cc").arg("-o").arg(&exe).arg(&c).status();
    match built {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("SKIPPED {name}: no working C compiler (cc)");
            return None;
        }
    }
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{name} failed: {out:?}");
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Lesson 28 and the sighup-reread note: a signal that is blocked while its disposition is
/// SIG_IGN stays pending on Linux, and sigtimedwait() returns it.
#[test]
fn a_blocked_ignored_signal_stays_pending_on_linux() {
    let source = r#"
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    sigset_t hup, pending;
    struct timespec now = {0, 0};
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, NULL);
    signal(SIGHUP, SIG_IGN);            /* as after APUE's step 5 */
    kill(getpid(), SIGHUP);
    sigpending(&pending);
    printf("pending %d\n", sigismember(&pending, SIGHUP));
    printf("waited %d\n", sigtimedwait(&hup, NULL, &now));
    return 0;
}
"#;
    let Some(out) = run_c("blocked_ignored", source) else {
        return;
    };
    assert!(out.contains("pending 1"), "sigpending: {out}");
    assert!(
        out.contains(&format!("waited {}", libc::SIGHUP)),
        "sigtimedwait: {out}"
    );
    let lesson = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lessons/28-sighup-reread.md"
    ))
    .unwrap();
    assert!(
        lesson.contains("Linux does not: it stays pending"),
        "lesson 28 must say what the kernel does"
    );
}
