//! Cost of the lab's syslogd, to keep it ahead of any client a lesson starts (budget:
//! parse + store >= 200 000 datagrams/s on one core), and a flood report that shows where
//! datagrams go when a sender outruns it.
//!
//! Run with `cargo bench --bench syslog`. Two reports print first:
//!
//! - the comparison with rsyslogd (target: `daemonlab syslogd` >= 1.5x rsyslogd's rate):
//!   the same flood of `SYSLOG_COMPARE` datagrams (default 200 000, 0 to skip) from one
//!   blocking sender, to rsyslogd (imuxsock on a private socket -> omfile, rate limiting
//!   off, its own config in a temporary directory), to `daemonlab syslogd` writing to a
//!   file, and to the lab's receiver in this process, measured in the same run, from the
//!   first datagram sent until the last one is in the file (or counted); every datagram
//!   is accounted for. Skipped, saying so, when /usr/sbin/rsyslogd is not installed.
//!   `DAEMONLAB_EXE` picks another daemonlab binary (default: the one cargo built).
//! - the flood report: `SYSLOG_FLOOD=N` datagrams (default 1 000 000, 0 to skip) sent
//!   without blocking, and where each went.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

#[path = "../tests/common/flood.rs"]
mod flood;
use flood::flood;

#[path = "support/versus.rs"]
mod versus;

use daemonlab::syslog::parse::parse;
use daemonlab::syslog::receiver::{Receiver, ReceiverOptions, Source};
use divan::counter::ItemsCount;

fn main() {
    let flood: u64 = std::env::var("SYSLOG_FLOOD")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let compare: u64 = std::env::var("SYSLOG_COMPARE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    if compare > 0 {
        versus::compare(compare);
    }
    if flood > 0 {
        flood_report(flood);
    }
    divan::main();
}

const DATAGRAMS: [(&str, &[u8]); 5] = [
    (
        "glibc",
        b"<30>Nov 25 18:44:31 subject[4242]: daemonized: pid 4242",
    ),
    (
        "rfc3164",
        b"<13>Nov 25 18:44:31 vm root[27198]: hello world",
    ),
    (
        "rfc5424",
        b"<13>1 2026-11-25T18:44:31.435418+00:00 vm root 27198 ID47 \
          [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello world",
    ),
    ("python", b"<11>pyid: with ident\0"),
    ("garbage", b"\xff\xfeno pri at all\0"),
];

/// The parser alone, per wire format.
#[divan::bench(args = DATAGRAMS.map(|(name, _)| name))]
fn parse_one(name: &str) -> daemonlab::syslog::parse::Parsed {
    let bytes = DATAGRAMS.iter().find(|(n, _)| *n == name).unwrap().1;
    parse(divan::black_box(bytes))
}

/// Parse + fold check + store into a full ring, without the socket: the receiver's own
/// work per datagram. Messages differ, so none is folded away.
#[divan::bench(args = DATAGRAMS.map(|(name, _)| name), sample_size = 1000)]
fn parse_and_store(bencher: divan::Bencher, name: &str) {
    let bytes = DATAGRAMS.iter().find(|(n, _)| *n == name).unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::bind(&dir.path().join("log"), 10_000).unwrap();
    let mut pid = 0;
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        // A new sender each time defeats folding without changing the bytes.
        pid += 1;
        receiver.inject(Source::Unix, Some(pid), divan::black_box(bytes));
    });
}

const BATCH: usize = 10_000;

/// End to end through the Unix socket: a blocking sender (so nothing is refused) and the
/// receiver thread, per datagram.
#[divan::bench(sample_count = 20)]
fn unix_socket_end_to_end(bencher: divan::Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::with_options(
        &dir.path().join("log"),
        ReceiverOptions {
            fold: false,
            ..ReceiverOptions::default()
        },
    )
    .unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.connect(receiver.path()).unwrap();
    let datagram = DATAGRAMS[0].1;
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        let target = receiver.received() + BATCH as u64;
        for _ in 0..BATCH {
            client.send(datagram).unwrap();
        }
        while receiver.received() < target {
            std::thread::yield_now();
        }
    });
}

/// Flood the receiver without blocking and report where each datagram went.
fn flood_report(count: u64) {
    println!("flood report: {count} datagrams of ~30 bytes, sent as fast as possible");
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::bind(&dir.path().join("log"), 10_000).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.connect(receiver.path()).unwrap();
    client.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let (sent, refused) = flood(count, |d| client.send(d));
    let elapsed = started.elapsed();
    let counters = settle(&receiver, |received, _| received >= sent);
    println!(
        "  unix: sent {sent}, received {}, refused to the sender (EAGAIN) {refused}, \
         kernel drops {:?}, in {elapsed:.2?} ({:.0} sent/s, {:.0} received/s)",
        counters.0,
        counters.1,
        sent as f64 / elapsed.as_secs_f64(),
        counters.0 as f64 / elapsed.as_secs_f64(),
    );

    let addr = receiver
        .add_udp("127.0.0.1:0".parse().unwrap())
        .expect("bind UDP on loopback");
    let before = receiver.received();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let (sent, refused) = flood(count, |d| client.send_to(d, addr));
    let elapsed = started.elapsed();
    let (received, drops) = settle(&receiver, |received, drops| {
        received - before + drops.unwrap_or(0) >= sent
    });
    println!(
        "  udp:  sent {sent}, received {}, refused to the sender {refused}, \
         dropped by the kernel (full receive queue) {drops:?}, in {elapsed:.2?}",
        received - before,
    );
}

/// Wait (at most 30 s) until `done(received, kernel_drops)`; returns those two.
fn settle(receiver: &Receiver, done: impl Fn(u64, Option<u64>) -> bool) -> (u64, Option<u64>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = receiver.counters();
        if done(c.received, c.kernel_drops) || Instant::now() > deadline {
            return (c.received, c.kernel_drops);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
