//! Behind the "needs more room" screen nothing is visible, so nothing but quitting may
//! act: keys pressed there must not run steps unseen.

mod common;

use common::explorer::{Explorer, Start, number_after};

#[test]
fn keys_behind_the_needs_more_room_screen_do_nothing_but_quit() {
    let mut app = Explorer::start(Start {
        rows: 5,
        cols: 10,
        wait_for_lab: false,
        ..Start::default()
    });
    app.pty
        .wait("the needs-more-room screen", |t| t.contains("room"));
    // The lab is up once it says so in the log; a moment later the screen has it too,
    // and keys would reach it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&app.log).is_ok_and(|l| l.contains("lab started")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lab did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    app.pty.press(b"   ");
    app.pty.press(b"f");
    app.pty.press(b"\r");
    // Keys first, then the resize: sent together, crossterm may report them in either
    // order, and a key read after the resize would rightly act.
    std::thread::sleep(std::time::Duration::from_millis(300));
    app.pty.resize(40, 120);
    let screen = app.pty.wait("the Lab at full size", |t| {
        number_after(t, "subject ").is_some_and(|pid| t.contains(&format!("PID {pid} ")))
    });
    let pids = [
        app.pid,
        number_after(&screen, "subject ").unwrap(),
        number_after(&screen, "stand-in ").unwrap(),
    ];
    assert_eq!(
        screen.matches('✓').count(),
        0,
        "no step ran unseen:\n{screen}"
    );
    assert!(!screen.contains("free mode"), "f did not act:\n{screen}");
    app.pty.resize(5, 10);
    app.pty
        .wait("the needs-more-room screen again", |t| t.contains("room"));
    app.pty.press(b"q");
    let (code, _) = app.pty.finish();
    assert_eq!(code, 0, "q still quits there");
    common::assert_all_gone(&pids);
}
