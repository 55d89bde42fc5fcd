//! What `daemonlab syslogd` leaves and says when it ends: it removes its socket only if
//! the path is still the socket it bound, and its summary accounts for every message,
//! including those a slow reader made it drop.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemonlab::syslog::tally::Tally;

/// A syslogd this test started; killed by its PID if a failed assertion leaves it.
struct Syslogd(Option<Child>);

impl Drop for Syslogd {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(socket: &Path, stdout: Stdio) -> Syslogd {
    let child = Command::new(common::exe())
        .args(["syslogd", "--socket"])
        .arg(socket)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "syslogd did not bind");
        std::thread::sleep(Duration::from_millis(10));
    }
    Syslogd(Some(child))
}

/// SIGTERM the syslogd this test started, by its PID; its exit summary.
fn stop(mut syslogd: Syslogd) -> String {
    let mut child = syslogd.0.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    stderr
}

fn tally_in(summary: &str) -> Tally {
    Tally {
        received: common::number_before(summary, " received"),
        shown: common::number_before(summary, " shown"),
        folded: common::number_before(summary, " folded"),
        dropped: common::number_before(summary, " dropped by the lab"),
        malformed: common::number_before(summary, " malformed"),
        truncated: 0,
        kernel_dropped: Some(common::number_before(summary, " dropped by the kernel")),
    }
}

#[test]
fn a_second_syslogd_on_the_same_path_keeps_its_socket_when_the_first_ends() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log");
    let a = start(&socket, Stdio::null());
    std::fs::remove_file(&socket).unwrap();
    let b = start(&socket, Stdio::null());
    let said = stop(a);
    assert!(
        said.contains("is another socket, not the one this receiver bound: not touched"),
        "{said}"
    );
    assert!(socket.exists(), "B's socket survives A's exit");
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>t: to B", &socket)
        .expect("B's socket is live");
    let said = stop(b);
    assert_eq!(tally_in(&said).received, 1, "{said}");
    assert!(said.contains("socket removed"), "{said}");
    assert!(!socket.exists());
}

#[test]
fn a_regular_file_at_the_path_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log");
    let a = start(&socket, Stdio::null());
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&socket, "my thesis\n").unwrap();
    let said = stop(a);
    assert!(
        said.contains("is a regular file, not a stale socket: not touched"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "my thesis\n");
}

#[test]
fn a_slow_reader_makes_it_drop_and_the_summary_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log");
    let mut sink = start(&socket, Stdio::piped());
    let client = UnixDatagram::unbound().unwrap();
    client.connect(&socket).unwrap();
    client.set_nonblocking(true).unwrap();
    // Nobody reads the pipe yet: the sink blocks writing while its ring overflows.
    let mut sent = 0u64;
    for i in 0..100_000u64 {
        let line = format!("<13>flood: message {i}");
        loop {
            match client.send(line.as_bytes()) {
                Ok(_) => break sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_micros(50))
                }
                Err(e) => panic!("send {i}: {e}"),
            }
        }
    }
    let out = sink.0.as_mut().unwrap().stdout.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(out).lines().count() as u64);
    let summary = stop(sink);
    let printed = reader.join().unwrap();
    let tally = tally_in(&summary);
    eprintln!("{printed} lines printed; {summary}");
    assert_eq!(tally.received, sent, "{summary}");
    assert_eq!(tally.shown, printed, "shown is what was printed: {summary}");
    assert!(tally.dropped > 0, "a slow reader makes it drop: {summary}");
    assert_eq!(
        tally.received,
        tally.shown + tally.folded + tally.dropped,
        "{summary}"
    );
}
