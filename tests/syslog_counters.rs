//! The Syslog pane and `daemonlab syslogd` count the same input the same way: one Tally,
//! `received = shown + folded + dropped`, and valid PRIs with unnamed facilities (12–15)
//! are not malformed.

mod common;

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use daemonlab::lessons::LessonSet;
use daemonlab::syslog::tally::Tally;
use daemonlab::ui::action::LabEvent;
use daemonlab::ui::app::{App, Pane};
use daemonlab::ui::theme::Theme;
use daemonlab::ui::{Event, EventLoop, Wake};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Five identical messages, then `other`, PRI 100 (facility 12), PRI 104 (facility 13),
/// one with no PRI at all, and `last`.
const SEQUENCE: [&[u8]; 10] = [
    b"<13>t: same",
    b"<13>t: same",
    b"<13>t: same",
    b"<13>t: same",
    b"<13>t: same",
    b"<13>t: other",
    b"<100>t: facility twelve",
    b"<104>t: facility thirteen",
    b"no pri at all",
    b"<13>t: last",
];

fn send_sequence(path: &Path) {
    let client = UnixDatagram::unbound().unwrap();
    for datagram in SEQUENCE {
        client.send_to(datagram, path).unwrap();
    }
}

/// What the numbers after each word in `line` say, as a Tally.
fn tally_in(line: &str) -> Tally {
    let number_before = |word: &str| common::number_before(line, word);
    Tally {
        received: number_before(" received"),
        shown: number_before(" shown"),
        folded: number_before(" folded"),
        dropped: number_before(" dropped"),
        malformed: number_before(" malformed"),
        truncated: 0,
        kernel_dropped: None,
    }
}

fn expected() -> Tally {
    Tally {
        received: 10,
        shown: 6,
        folded: 4,
        dropped: 0,
        malformed: 1,
        truncated: 0,
        kernel_dropped: None,
    }
}

fn without_kernel(tally: Tally) -> Tally {
    Tally {
        kernel_dropped: None,
        ..tally
    }
}

/// The pane: the lab's own receiver, read by the explorer's loop as when it draws.
fn pane_counts() -> (Tally, String) {
    let lab = common::start_lab();
    send_sequence(lab.syslog().path());
    assert_eq!(
        lab.syslog()
            .wait_received(SEQUENCE.len() as u64, Duration::from_secs(5)),
        SEQUENCE.len() as u64
    );
    let (events, inbox) = mpsc::channel();
    let (commands, _worker) = mpsc::channel();
    let mut app = App::new(Theme::mono(), LessonSet::embedded());
    app.focus = Pane::Syslog;
    app.zoomed = true;
    let mut event_loop = EventLoop::new(app, inbox, Wake::new(events), commands);
    event_loop.handle(Event::Lab(LabEvent::SyslogFeed {
        generation: 0,
        feed: lab.syslog().feed(),
    }));
    let mut terminal = Terminal::new(TestBackend::new(160, 40)).unwrap();
    event_loop.draw(&mut terminal).unwrap();
    let buffer = terminal.backend().buffer();
    let screen: String = (0..buffer.area.height)
        .map(|y| {
            let row: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            row + "\n"
        })
        .collect();
    (event_loop.app.syslog.tally, screen)
}

/// The sink: `daemonlab syslogd` on its own socket, ended by SIGTERM; its summary line.
fn sink_summary() -> String {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log");
    let mut sink = Command::new(common::exe())
        .args(["syslogd", "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "syslogd did not bind");
        std::thread::sleep(Duration::from_millis(10));
    }
    send_sequence(&socket);
    // Queued datagrams are read before it stops: no wait needed before the signal.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sink.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = sink.wait().unwrap();
    let mut stderr = String::new();
    sink.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    stderr
        .lines()
        .find(|l| l.contains(" received = "))
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"))
        .to_string()
}

#[test]
fn pane_and_syslogd_count_the_same_sequence_the_same_way() {
    let (pane, screen) = pane_counts();
    let summary = sink_summary();
    let sink = tally_in(&summary);
    assert_eq!(without_kernel(pane), expected(), "pane:\n{screen}");
    assert_eq!(sink, expected(), "{summary}");
    assert!(pane.balanced() && sink.balanced());
    assert_eq!(pane.kernel_dropped, Some(0), "a Unix socket does not drop");
    assert!(summary.contains("0 dropped by the kernel"), "{summary}");
    assert!(summary.contains("socket removed"), "{summary}");

    // The pane prints the same balance, and names PRI 100 and 104 by number.
    let title = screen.lines().next().unwrap_or_default().to_string();
    assert!(
        screen.contains("10 received = 6 shown + 4 folded + 0 dropped · 1 malformed"),
        "{title}"
    );
    assert!(screen.contains("12.warning t: facility twelve"), "{screen}");
    assert!(screen.contains("13.emerg t: facility thirteen"), "{screen}");
    assert_eq!(
        screen.matches("malformed no pri at all").count(),
        1,
        "only the one without a PRI is malformed:\n{screen}"
    );
    assert!(screen.contains("last message repeated 4 times"), "{screen}");
}
