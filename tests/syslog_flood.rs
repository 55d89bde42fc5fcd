//! Floods: the ring stays at its capacity, and every datagram is accounted for — read by
//! the receiver, refused to the sender (EAGAIN on a full Unix socket), or dropped by the
//! kernel (a full UDP receive queue).

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common/flood.rs"]
mod flood;
use flood::flood;

use daemonlab::syslog::receiver::{Counters, Receiver, ReceiverOptions};

const CAPACITY: usize = 1000;

fn flood_receiver(dir: &Path) -> Receiver {
    Receiver::with_options(
        &dir.join("log"),
        ReceiverOptions {
            capacity: CAPACITY,
            ..ReceiverOptions::default()
        },
    )
    .unwrap()
}

/// Wait until the receiver's counters satisfy `settled`, then return them.
fn settle(receiver: &Receiver, settled: impl Fn(&Counters) -> bool) -> Counters {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counters = receiver.counters();
        if settled(&counters) || Instant::now() > deadline {
            return counters;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unix_flood(count: u64) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = flood_receiver(dir.path());
    let path = receiver.path().to_path_buf();
    let started = Instant::now();
    let (sent, refused) = std::thread::spawn(move || {
        let client = UnixDatagram::unbound().unwrap();
        client.connect(&path).unwrap();
        client.set_nonblocking(true).unwrap();
        flood(count, |d| client.send(d))
    })
    .join()
    .unwrap();
    let counters = settle(&receiver, |c| c.received >= sent);
    eprintln!(
        "unix flood: {count} sent in {:?}: {} received, {refused} refused (EAGAIN), {counters:?}",
        started.elapsed(),
        counters.received
    );
    assert_eq!(sent + refused, count);
    assert_eq!(counters.received, sent, "sent == received + sender drops");
    assert_eq!(
        counters.kernel_drops,
        Some(0),
        "Unix sockets do not drop silently"
    );
    assert_eq!((counters.malformed, counters.folded), (0, 0));
    let kept = receiver.messages();
    if sent >= CAPACITY as u64 {
        assert_eq!(kept.len(), CAPACITY, "the ring stays at its capacity");
        assert_eq!(counters.evicted, sent - CAPACITY as u64);
    }
    assert_eq!(kept.last().map(|m| m.seq), Some(sent));
}

/// A million datagrams takes about 3 s in a debug build on two cores, so it runs always.
#[test]
fn unix_flood_of_a_million_is_accounted_for() {
    unix_flood(1_000_000);
}

#[test]
fn udp_flood_counts_kernel_drops() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = flood_receiver(dir.path());
    let addr = receiver.add_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    let count = 100_000;
    let (sent, refused) = std::thread::spawn(move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_nonblocking(true).unwrap();
        flood(count, |d| client.send_to(d, addr))
    })
    .join()
    .unwrap();
    let counters = settle(&receiver, |c| {
        c.received + c.kernel_drops.unwrap_or(0) >= sent
    });
    eprintln!("udp flood: {sent} sent, {refused} refused, {counters:?}");
    let dropped = counters.kernel_drops.expect("/proc/net/udp is readable");
    assert_eq!(
        counters.received + dropped,
        sent,
        "sent == received + kernel drops"
    );
    assert!(receiver.messages().len() <= CAPACITY);
}
