//! Idle means idle: with nothing arriving, the receiver's thread sleeps in poll(2) and
//! uses no CPU, even with repeats pending and UDP and /dev/kmsg attached. Alone in its binary so that
//! no other test's receiver thread is counted.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use daemonlab::syslog::receiver::Receiver;

/// CPU ticks and wake-ups of this process's threads named `syslog-receiver`.
fn receiver_threads() -> (u64, u64) {
    let (mut ticks, mut wakeups) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "syslog-receiver" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15; after the comm, they are 11 and 12.
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        wakeups += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap();
    }
    (ticks, wakeups)
}

#[test]
fn an_idle_receiver_sleeps() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::bind(&dir.path().join("log"), 100).unwrap();
    receiver.add_udp("127.0.0.1:0".parse().unwrap()).unwrap();
    // /dev/kmsg too where it can be read: its poll must not report data forever either.
    let _ = receiver.add_kmsg();
    let client = UnixDatagram::unbound().unwrap();
    for _ in 0..3 {
        // Leaves a repeat pending: a timer 30 s away, not a spin.
        client.send_to(b"<30>d: same", receiver.path()).unwrap();
    }
    receiver.wait_for(0, Duration::from_secs(5), |_| true);
    std::thread::sleep(Duration::from_millis(100));

    let before = receiver_threads();
    std::thread::sleep(Duration::from_millis(500));
    let after = receiver_threads();
    assert!(
        after.0 - before.0 <= 1,
        "CPU ticks while idle: {before:?} -> {after:?}"
    );
    assert!(
        after.1 - before.1 <= 1,
        "wake-ups while idle: {before:?} -> {after:?}"
    );
}
