//! The wiring `daemonlab syslogd` needs for SIGINT/SIGTERM: a signal-hook thread that
//! calls `StopHandle::stop`. Alone in its binary because it sends itself SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use daemonlab::syslog::sink::{Sink, SinkOptions, StopHandle};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[test]
fn sigterm_stops_the_sink_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sink = Sink::bind(&SinkOptions::new(path.clone())).unwrap();
    let stop = StopHandle::new();

    let mut signals = Signals::new([SIGINT, SIGTERM]).unwrap();
    let signals_handle = signals.handle();
    let on_signal = stop.clone();
    let waiter = std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            on_signal.stop();
        }
    });

    let printer = std::thread::spawn(move || {
        let mut out = Vec::new();
        let counters = sink.run(&mut out, &stop);
        (counters, out)
    });
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<30>d: before the signal", &path)
        .unwrap();
    // Let the sink print it, so the signal ends a run that is waiting, not starting.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !printer.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        kill(Pid::this(), Signal::SIGTERM).unwrap();
    }
    let (counters, out) = printer.join().unwrap();
    signals_handle.close();
    waiter.join().unwrap();

    assert_eq!(counters.unwrap().tally.received, 1);
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("daemon.info d: before the signal\n"), "{out}");
    assert!(!path.exists(), "the socket is removed");
}
