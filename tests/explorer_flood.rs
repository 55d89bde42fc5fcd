//! A syslog flood at the real explorer in a pty: its memory stays bounded (the ring's
//! bound plus the pane's byte cap) and `q` ends it while the flood is still arriving.
//! How fast is for the benchmark (`cargo bench --bench ui_flood`); this asserts that.

mod common;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::assert_all_gone;
use common::explorer::{Explorer, Start, peak_rss_kib};

const FLOOD: u64 = 200_000;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// Send distinct datagrams with `send` until `stop`, counting those the kernel took;
/// a full queue (EAGAIN) is waited out briefly, anything else ends the flood.
fn flood_until(
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    mut send: impl FnMut(&[u8]) -> std::io::Result<usize> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut line = Vec::with_capacity(64);
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            use std::io::Write;
            write!(line, "<134>flood[1]: message {i}").unwrap();
            match send(&line) {
                Ok(_) => {
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_micros(50))
                }
                // The explorer is gone (ECONNREFUSED, ENOENT): nothing to flood.
                Err(_) => return,
            }
        }
    })
}

fn quits_under_flood(
    app: Explorer,
    start_flood: impl FnOnce(&Explorer, Arc<AtomicBool>, Arc<AtomicU64>) -> std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = start_flood(&app, Arc::clone(&stop), Arc::clone(&sent));
    let mut app = app;
    let pid = app.pid;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    while sent.load(Ordering::Relaxed) < FLOOD {
        assert!(Instant::now() < deadline, "the flood did not get through");
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        if peak >= RSS_LIMIT_KIB {
            // Too much already: quit now, and fail once the explorer is ended.
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let flooding = !flooder.is_finished();
    let pids = [app.pid, app.subject, app.stand_in];
    app.pty.press(b"q");
    let pressed = Instant::now();
    let ended = loop {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        if !common::running(pid) {
            break true;
        }
        if pressed.elapsed() > Duration::from_secs(3) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    let _ = flooder.join();
    let total = sent.load(Ordering::Relaxed);
    eprintln!(
        "flood: {total} datagrams sent; peak RSS {peak} KiB; exited {:?} after q",
        pressed.elapsed()
    );
    if !ended {
        let mut child = app.pty.hang_up();
        let _ = child.kill();
        let _ = child.wait();
        assert_all_gone(&pids);
        panic!("q did not end the explorer within 3 s under a flood");
    }
    assert!(flooding, "the flood was still arriving at q");
    let (code, _) = app.pty.finish();
    assert_eq!(code, 0, "q is a normal end");
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB after {total} datagrams"
    );
    assert_all_gone(&pids);
}

#[test]
fn unix_flood_keeps_memory_bounded_and_q_quits() {
    let app = Explorer::start(Start::default());
    quits_under_flood(app, |app, stop, sent| {
        let client = UnixDatagram::unbound().unwrap();
        client.connect(app.syslog_socket()).unwrap();
        client.set_nonblocking(true).unwrap();
        flood_until(stop, sent, move |d| client.send(d))
    });
}

#[test]
fn udp_flood_keeps_memory_bounded_and_q_quits() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let app = Explorer::start(Start {
        args: &["--syslog-udp", &addr],
        ..Start::default()
    });
    assert!(
        app.pty.text().contains(&format!("UDP {addr}")) || wait_for_udp(&app, &addr),
        "the lab listens on {addr}"
    );
    quits_under_flood(app, move |_, stop, sent| {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_nonblocking(true).unwrap();
        flood_until(stop, sent, move |d| {
            client.send_to(d, addr.as_str()).map_err(|e| {
                // An ICMP port-unreachable from before the bind surfaces once: not fatal.
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    std::io::ErrorKind::WouldBlock.into()
                } else {
                    e
                }
            })
        })
    });
}

/// Whether the lab's UDP socket is bound: something on the port refuses a second bind.
fn wait_for_udp(_app: &Explorer, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UdpSocket::bind(addr).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
