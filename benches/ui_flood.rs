//! Key latency under a syslog flood: from a key arriving in the explorer's event loop to
//! the end of the frame that shows it, while a sender floods the receiver the screen
//! reads. The real `EventLoop` on a `TestBackend` (120x40), the real `Receiver` on a Unix
//! socket, a flood thread that never stops sending. Keys toggle the help popup, so every
//! key changes the screen.
//!
//! Run with `cargo bench --bench ui_flood`. Prints the median and p99 over
//! `KEY_SAMPLES` keys (default 300) first, then divan's own view of the same measure.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver as Rx, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daemonlab::lessons::LessonSet;
use daemonlab::syslog::receiver::{Receiver, ReceiverOptions};
use daemonlab::ui::action::LabEvent;
use daemonlab::ui::app::App;
use daemonlab::ui::theme::Theme;
use daemonlab::ui::{Event, EventLoop, Wake};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn main() {
    let samples: usize = std::env::var("KEY_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut rig = Rig::start();
    let mut latencies: Vec<Duration> = (0..samples).map(|_| rig.key_to_frame()).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "key to frame under flood ({samples} keys, {} datagrams received meanwhile): median {:?}, p99 {:?}, max {:?}",
        rig.receiver.received(),
        at(0.5),
        at(0.99),
        latencies.last().unwrap()
    );
    *RIG.lock().unwrap() = Some(rig);
    divan::main();
}

static RIG: Mutex<Option<Rig>> = Mutex::new(None);

/// The loop on its own thread, as in the explorer, with a flood at its receiver.
struct Rig {
    receiver: Receiver,
    events: Sender<Event>,
    frames: Rx<bool>,
    help: bool,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let receiver =
            Receiver::with_options(&dir.path().join("log"), ReceiverOptions::default()).unwrap();
        let (events, inbox) = mpsc::channel();
        let (frames_tx, frames) = mpsc::channel();
        let feed = receiver.feed();
        let wake = Wake::new(events.clone());
        std::thread::spawn(move || {
            let (commands, _ignored) = mpsc::channel();
            let app = App::new(Theme::default_colors(), LessonSet::embedded());
            let mut event_loop = EventLoop::new(app, inbox, wake, commands);
            event_loop.on_frame = Some(Box::new(move |app: &App| {
                let _ = frames_tx.send(app.help);
            }));
            event_loop.handle(Event::Lab(LabEvent::SyslogFeed {
                generation: 0,
                feed,
            }));
            let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
            let _ = event_loop.run(&mut terminal);
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = Arc::clone(&stop);
        let path = receiver.path().to_path_buf();
        std::thread::spawn(move || {
            let client = UnixDatagram::unbound().unwrap();
            client.connect(path).unwrap();
            let mut i = 0u64;
            while !flooding.load(Ordering::Relaxed) {
                // Blocking: the flood runs as fast as the receiver takes it.
                if client
                    .send(format!("<134>flood[1]: message {i}").as_bytes())
                    .is_err()
                {
                    return;
                }
                i += 1;
            }
        });
        // Let the flood fill the ring first.
        let deadline = Instant::now() + Duration::from_secs(10);
        while receiver.received() < 20_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Rig {
            receiver,
            events,
            frames,
            help: false,
            stop,
            _dir: dir,
        }
    }

    /// Send one key and wait for the first frame that shows it.
    fn key_to_frame(&mut self) -> Duration {
        while self.frames.try_recv().is_ok() {}
        self.help = !self.help;
        let sent = Instant::now();
        self.events
            .send(Event::Key(KeyEvent::new(
                KeyCode::Char('?'),
                KeyModifiers::NONE,
            )))
            .unwrap();
        while self.frames.recv().unwrap() != self.help {}
        sent.elapsed()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.events.send(Event::Signal(15));
    }
}

/// The same measure, timed by divan: one key to its frame, under the flood.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn key_to_frame_under_flood(bencher: divan::Bencher) {
    let mut rig = RIG.lock().unwrap();
    let rig = rig.as_mut().unwrap();
    bencher.bench_local(|| {
        while rig.frames.try_recv().is_ok() {}
        rig.help = !rig.help;
        rig.events
            .send(Event::Key(KeyEvent::new(
                KeyCode::Char('?'),
                KeyModifiers::NONE,
            )))
            .unwrap();
        while rig.frames.recv().unwrap() != rig.help {}
    });
}
