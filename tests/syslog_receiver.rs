//! Round trips through a bound receiver: what a real client sends is what the lab shows,
//! with the kernel's word on who sent it.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use daemonlab::syslog::parse::WireFormat;
use daemonlab::syslog::receiver::{Receiver, ReceiverOptions, Source};
use daemonlab::syslog::{Facility, Severity, format_local, pri};

const WAIT: Duration = Duration::from_secs(5);

fn receiver(dir: &Path, options: ReceiverOptions) -> Receiver {
    Receiver::with_options(&dir.join("log"), options).expect("the receiver binds")
}

/// A client as glibc's syslog(3) is one: connected once, then plain send(2).
fn glibc_client(path: &Path) -> UnixDatagram {
    let client = UnixDatagram::unbound().unwrap();
    client.connect(path).unwrap();
    client
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn glibc_format_round_trip_names_the_real_sender() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let client = glibc_client(receiver.path());
    let me = std::process::id() as i32;
    let datagram = format_local(
        pri(Facility::Daemon, Severity::Err),
        "Nov  5 09:04:01",
        "daemonlab-test",
        Some(me as u32),
        "cannot open /nonexistent: No such file or directory",
    );
    client.send(datagram.as_bytes()).unwrap();

    let got = receiver.wait_for(0, WAIT, |_| true);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.seq, 1);
    assert_eq!(m.source, Source::Unix);
    assert_eq!(m.sender_pid, Some(me), "SO_PASSCRED names the sender");
    assert_eq!(m.raw, datagram.as_bytes());
    assert_eq!(m.text, datagram);
    assert_eq!(m.repeats, 0);
    let p = &m.parsed;
    assert_eq!(p.format, WireFormat::Local);
    assert_eq!(
        (p.facility, p.severity),
        (Some(Facility::Daemon), Some(Severity::Err))
    );
    assert_eq!((m.facility, m.severity), (p.facility, p.severity));
    assert_eq!(p.timestamp.as_deref(), Some("Nov  5 09:04:01"));
    assert_eq!(p.hostname, None, "the ident is not a hostname");
    assert_eq!(p.ident.as_deref(), Some("daemonlab-test"));
    assert_eq!(p.pid, Some(me));
    assert_eq!(
        p.message,
        "cannot open /nonexistent: No such file or directory"
    );
    let counters = receiver.counters();
    assert_eq!((counters.received, counters.malformed), (1, 0));
    assert_eq!(counters.kernel_drops, Some(0));
}

#[test]
fn udp_round_trip_marks_the_sender_address() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let bound = receiver.add_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    assert_ne!(bound.port(), 0, "the real port is returned");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(b"<134>Nov 25 18:44:31 webhost nginx[80]: GET /", bound)
        .unwrap();
    let got = receiver.wait_for(0, WAIT, |_| true);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.source, Source::Udp(client.local_addr().unwrap()));
    assert_eq!(m.sender_pid, None, "UDP carries no credentials");
    assert_eq!(m.parsed.format, WireFormat::Rfc3164);
    assert_eq!(m.parsed.hostname.as_deref(), Some("webhost"));
    assert_eq!(m.parsed.facility, Some(Facility::Local0));
    assert_eq!(m.parsed.message, "GET /");
    assert_eq!(receiver.counters().kernel_drops, Some(0));
    assert!(receiver.add_udp(bound).is_err(), "the port is taken");
}

#[test]
fn folding_on_reports_repeats_folding_off_keeps_each() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let client = glibc_client(receiver.path());
    for second in 0..5 {
        // Only the timestamp differs, as when a daemon logs the same error each second.
        let line = format!("<27>Nov  5 09:04:0{second} d[1]: disk full");
        client.send(line.as_bytes()).unwrap();
    }
    client.send(b"<27>Nov  5 09:04:06 d[1]: disk ok").unwrap();
    let got = receiver.wait_for(0, WAIT, |m| m.parsed.message == "disk ok");
    let shown: Vec<(u64, u32, &str)> = got
        .iter()
        .map(|m| (m.seq, m.repeats, m.parsed.message.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, 0, "disk full"),
            (5, 4, "last message repeated 4 times"),
            (6, 0, "disk ok")
        ]
    );
    assert_eq!(got[1].parsed.ident.as_deref(), Some("d"));
    assert_eq!(got[1].sender_pid, got[0].sender_pid);
    let counters = receiver.counters();
    assert_eq!((counters.received, counters.folded), (6, 4));

    // A repeat is counted, not stored: wait_for cannot see it arrive, wait_received can.
    client.send(b"<27>Nov  5 09:04:07 d[1]: disk ok").unwrap();
    assert_eq!(receiver.wait_received(7, WAIT), 7);
    assert!(receiver.messages_after(6).is_empty(), "folded, not stored");
    assert_eq!(
        receiver.wait_received(8, Duration::from_millis(20)),
        7,
        "times out"
    );

    receiver.set_folding(false);
    for _ in 0..3 {
        client.send(b"<27>Nov  5 09:04:07 d[1]: disk ok").unwrap();
    }
    let got = receiver.wait_for(6, WAIT, |m| m.seq == 10);
    let shown: Vec<(u64, u32)> = got.iter().map(|m| (m.seq, m.repeats)).collect();
    // Turning folding off reports the pending repeat (seq 7) first.
    assert_eq!(shown, [(7, 1), (8, 0), (9, 0), (10, 0)], "each copy kept");
    assert_eq!(receiver.counters().folded, 5);
}

#[test]
fn pending_repeats_are_reported_by_timer_or_flush() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(
        dir.path(),
        ReceiverOptions {
            fold_flush: Duration::from_millis(50),
            ..ReceiverOptions::default()
        },
    );
    let client = glibc_client(receiver.path());
    for _ in 0..3 {
        client.send(b"<30>Nov  5 09:04:01 d: tick").unwrap();
    }
    let got = receiver.wait_for(0, WAIT, |m| m.repeats > 0);
    assert_eq!(got.last().map(|m| m.repeats), Some(2), "{got:?}");

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::bind(&dir.path().join("log"), 100).unwrap();
    let client = glibc_client(receiver.path());
    for _ in 0..3 {
        client.send(b"<30>Nov  5 09:04:01 d: tock").unwrap();
    }
    wait_until("three datagrams", || receiver.received() == 3);
    assert_eq!(receiver.messages().len(), 1, "repeats pending, not stored");
    receiver.flush();
    let kept = receiver.messages();
    assert_eq!(kept.len(), 2);
    assert_eq!((kept[1].seq, kept[1].repeats), (3, 2));
}

#[test]
fn stop_refuses_senders_and_start_takes_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let path = receiver.path().to_path_buf();
    let connected = glibc_client(&path);
    for i in 0..3 {
        connected
            .send(format!("<30>queued {i}").as_bytes())
            .unwrap();
    }
    receiver.stop();
    assert!(!receiver.is_running());
    assert_eq!(
        receiver.received(),
        3,
        "what was queued is read before closing"
    );
    assert!(!path.exists(), "the socket name is gone");

    let err = connected.send(b"<30>while stopped").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let by_path = UnixDatagram::unbound().unwrap();
    let err = by_path.send_to(b"<30>while stopped", &path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    receiver.stop();

    receiver.start().unwrap();
    receiver.start().unwrap();
    assert!(receiver.is_running());
    assert!(
        connected.send(b"<30>old connection").is_err(),
        "a connection to the old socket stays dead: glibc reconnects"
    );
    let reconnected = glibc_client(&path);
    reconnected.send(b"<30>back").unwrap();
    by_path.send_to(b"<30>back by path", &path).unwrap();
    let got = receiver.wait_for(3, WAIT, |m| m.parsed.message == "back by path");
    let texts: Vec<&str> = got.iter().map(|m| m.parsed.message.as_str()).collect();
    assert_eq!(texts, ["back", "back by path"]);
    drop(receiver);
    assert!(!path.exists());
}

#[test]
fn listener_hears_every_stored_message() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let heard = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&heard);
    receiver.set_listener(Box::new(move |m| {
        assert!(m.seq > 0);
        count.fetch_add(1, Ordering::SeqCst);
    }));
    let client = glibc_client(receiver.path());
    for text in ["<30>a", "<30>b", "<30>b", "<30>c"] {
        client.send(text.as_bytes()).unwrap();
    }
    wait_until("four datagrams", || receiver.received() == 4);
    // a, b, "repeated once", c.
    wait_until("four stored", || heard.load(Ordering::SeqCst) == 4);
    receiver.inject(Source::Unix, None, b"<30>injected");
    assert_eq!(heard.load(Ordering::SeqCst), 5);
}

#[test]
fn garbage_is_counted_and_kept_raw() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    let client = glibc_client(receiver.path());
    let garbage: [&[u8]; 5] = [b"", b"no pri", b"\xff\xfe\0", b"<999>x", b"<13"];
    for g in garbage {
        client.send(g).unwrap();
    }
    client.send(b"<13>fine").unwrap();
    let got = receiver.wait_for(0, WAIT, |m| m.parsed.message == "fine");
    assert_eq!(got.len(), 6);
    for (m, g) in got.iter().zip(garbage) {
        assert!(m.parsed.malformed, "{g:?}");
        assert_eq!(m.raw, g);
    }
    assert_eq!(receiver.counters().malformed, 5);
}

#[test]
fn kernel_messages_from_dev_kmsg() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), ReceiverOptions::default());
    if let Err(e) = receiver.add_kmsg() {
        let text = e.to_string();
        assert!(
            text.contains("/dev/kmsg"),
            "the error names the file: {text}"
        );
        eprintln!("SKIPPED: {text}");
        return;
    }
    receiver.add_kmsg().unwrap();
    // Writing needs root; userspace records keep their facility, so ours is findable.
    let marker = format!("kmsg round trip {}", std::process::id());
    match std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        Ok(mut kmsg) => {
            use std::io::Write;
            kmsg.write_all(format!("<14>daemonlab-test: {marker}\n").as_bytes())
                .unwrap();
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot write /dev/kmsg to check the round trip: {e}");
            return;
        }
    }
    let got = receiver.wait_for(0, WAIT, |m| m.parsed.message == marker);
    let m = got
        .iter()
        .find(|m| m.parsed.message == marker)
        .expect("our record arrives");
    assert_eq!(m.source, Source::Kernel);
    assert_eq!(m.parsed.format, WireFormat::Kmsg);
    assert_eq!(
        (m.facility, m.severity),
        (Some(Facility::User), Some(Severity::Info))
    );
    assert_eq!(m.parsed.ident.as_deref(), Some("daemonlab-test"));
    assert!(m.parsed.timestamp.is_some(), "seconds since boot");
    let once = got.iter().filter(|m| m.parsed.message == marker).count();
    assert_eq!(once, 1, "a second add_kmsg does not read twice");
    assert!(receiver.counters().kernel_drops.is_some());
}

#[test]
fn binding_a_taken_path_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = receiver(dir.path(), ReceiverOptions::default());
    let err = Receiver::bind(first.path(), 10)
        .err()
        .expect("the path is taken");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(
        err.to_string()
            .contains(&first.path().display().to_string()),
        "{err}"
    );
}
