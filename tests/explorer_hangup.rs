//! The terminal going away under the explorer (its window closed: the pty master
//! dropped). It must end the lab as on SIGHUP — no panic, no abort, no write to the dead
//! terminal — and that also when its parent ignores SIGHUP, so that no signal comes and
//! only the tty itself can tell.

mod common;

use std::time::{Duration, Instant};

use common::explorer::{Explorer, Start, cpu_ticks};
use common::{assert_all_gone, running};

/// Wait up to `limit` for `pid` to stop running; false if it is still there.
fn ends_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn close_the_window(app: Explorer) {
    let pids = [app.pid, app.subject, app.stand_in];
    let pid = app.pid;
    let before = cpu_ticks(pid).unwrap();
    let mut child = app.pty.hang_up();
    let ended = ends_within(pid, Duration::from_secs(3));
    if !ended {
        let after = cpu_ticks(pid).unwrap_or(before);
        // End what this test started before failing, by its PID.
        let _ = child.kill();
        let _ = child.wait();
        assert_all_gone(&pids);
        panic!(
            "the explorer ({pid}) was still running 3 s after its terminal closed, having used {} ticks of CPU since",
            after - before
        );
    }
    let status = child.wait().unwrap();
    let code = status.exit_code();
    let log = std::fs::read_to_string(&app.log).unwrap_or_default();
    assert_ne!(code, 134, "aborted; log:\n{log}");
    assert_ne!(code, 101, "panicked; log:\n{log}");
    assert!(
        !log.contains("panicked"),
        "no panic on the way out; log:\n{log}"
    );
    assert!(
        log.contains("daemonlab exits"),
        "ended its own way; log:\n{log}"
    );
    // Subject and stand-in within 2 s of the explorer's end (the normal shutdown path).
    let deadline = Instant::now() + Duration::from_secs(2);
    for pid in [app.subject, app.stand_in] {
        assert!(
            ends_within(pid, deadline.saturating_duration_since(Instant::now())),
            "{pid} outlived the explorer"
        );
    }
    assert_all_gone(&pids);
    let left = common::explorer::leftovers(app.tmp.path(), &app.log);
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn closing_the_terminal_ends_the_explorer_and_its_lab() {
    close_the_window(Explorer::start(Start::default()));
}

#[test]
fn closing_the_terminal_ends_it_when_the_parent_ignores_sighup() {
    // sh is the session leader and the only one the kernel sends SIGHUP to; it ignores
    // it, as `bash -c 'trap "" HUP; daemonlab; true'` does, and so does the explorer it
    // starts (an ignored signal stays ignored across exec).
    close_the_window(Explorer::start(Start {
        wrapper: Some(r#"trap "" HUP; "$0" "$@"; exit $?"#),
        ..Start::default()
    }));
}

#[test]
fn closing_the_terminal_ends_it_when_it_ignores_sighup_itself() {
    // exec: the explorer is the session leader, with SIGHUP ignored on the way in.
    close_the_window(Explorer::start(Start {
        wrapper: Some(r#"trap "" HUP; exec "$0" "$@""#),
        ..Start::default()
    }));
}
