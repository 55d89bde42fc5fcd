//! `daemonlab syslogd`'s logic: it prints each message, survives any garbage, and removes
//! its socket when stopped.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use daemonlab::syslog::receiver::MAX_DATAGRAM;
use daemonlab::syslog::sink::SinkSummary;
use daemonlab::syslog::sink::{OutputFormat, Sink, SinkOptions, StopHandle};

/// Output the test can read while the sink thread writes it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .expect("the sink writes UTF-8 only")
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_for_lines(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.lines();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Running {
    stop: StopHandle,
    out: Shared,
    thread: JoinHandle<std::io::Result<SinkSummary>>,
}

fn start(options: SinkOptions) -> (Running, Option<std::net::SocketAddr>) {
    let sink = Sink::bind(&options).unwrap();
    let udp = sink.udp_addr();
    let stop = StopHandle::new();
    let out = Shared::default();
    let thread = {
        let (stop, mut out) = (stop.clone(), out.clone());
        std::thread::spawn(move || sink.run(&mut out, &stop))
    };
    (Running { stop, out, thread }, udp)
}

/// Everything a careless or hostile client might send.
fn garbage() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![b'x'; MAX_DATAGRAM],
        b"\xff\xfe\xfd invalid utf-8".to_vec(),
        b"<13>nul\0inside\0".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"no pri at all".to_vec(),
        b"<13>1 2025-11-05T09:04:01Z h a p - [broken".to_vec(),
        b"<13>\x1b[2Jclear the screen".to_vec(),
    ]
}

#[test]
fn text_output_survives_garbage_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (running, _) = start(SinkOptions::new(path.clone()));
    let client = UnixDatagram::unbound().unwrap();
    client.connect(&path).unwrap();
    let garbage = garbage();
    for g in &garbage {
        client.send(g).unwrap();
    }
    client
        .send(b"<30>Nov  5 09:04:01 worker[7]: still alive")
        .unwrap();
    let lines = running.out.wait_for_lines(garbage.len() + 1);
    assert_eq!(lines.len(), garbage.len() + 1, "{lines:#?}");
    assert!(
        lines[0].ends_with(" malformed: "),
        "empty datagram: {}",
        lines[0]
    );
    assert!(lines[1].ends_with(&"x".repeat(100)), "64 KiB kept");
    assert!(lines[2].contains("malformed: \\xff\\xfe\\xfd invalid utf-8"));
    assert!(
        lines[3].ends_with("user.notice -: nul\\0inside"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].ends_with("malformed: \\0\\0\\0\\0"),
        "{}",
        lines[4]
    );
    assert!(
        lines[7].ends_with("\\u{1b}[2Jclear the screen"),
        "{}",
        lines[7]
    );
    assert_eq!(
        lines.last().unwrap(),
        "Nov  5 09:04:01 daemon.info worker[7]: still alive"
    );

    running.stop.stop();
    let counters = running.thread.join().unwrap().unwrap();
    assert_eq!(counters.tally.received, garbage.len() as u64 + 1);
    assert_eq!(counters.tally.malformed, 6);
    assert!(!path.exists(), "the socket is removed on stop");
    assert!(client.send(b"<30>after").is_err());
}

#[test]
fn json_lines_from_unix_and_udp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let options = SinkOptions {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        format: OutputFormat::Json,
        ..SinkOptions::new(path.clone())
    };
    let (running, udp) = start(options);
    let udp = udp.expect("the bound UDP address");
    let client = UnixDatagram::unbound().unwrap();
    for g in garbage() {
        client.send_to(&g, &path).unwrap();
    }
    let net = UdpSocket::bind("127.0.0.1:0").unwrap();
    net.send_to(b"<14>1 2025-11-05T09:04:01Z h app 9 ID1 - over udp", udp)
        .unwrap();
    let count = garbage().len() + 1;
    let lines = running.out.wait_for_lines(count);
    assert_eq!(lines.len(), count);
    let keys = [
        "facility",
        "severity",
        "pri",
        "timestamp",
        "hostname",
        "ident",
        "pid",
        "msgid",
        "message",
        "raw",
        "source",
    ];
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for o in &objects {
        for key in keys {
            assert!(o.get(key).is_some(), "{key} missing in {o}");
        }
    }
    let empty = &objects[0];
    assert_eq!(empty["raw"], "");
    assert_eq!(empty["facility"], serde_json::Value::Null);
    assert_eq!(empty["source"], "unix");
    let udp_line = objects.last().unwrap();
    assert_eq!(
        udp_line["source"],
        format!("udp:{}", net.local_addr().unwrap())
    );
    assert_eq!(udp_line["msgid"], "ID1");
    assert_eq!(udp_line["pid"], 9);
    assert_eq!(udp_line["raw"], serde_json::Value::Null);
    assert_eq!(udp_line["message"], "over udp");

    running.stop.stop();
    running.thread.join().unwrap().unwrap();
    assert!(!path.exists());
}

#[test]
fn stop_reports_pending_repeats_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let (running, _) = start(SinkOptions::new(path.clone()));
    let client = UnixDatagram::unbound().unwrap();
    for _ in 0..3 {
        client.send_to(b"<30>d: same", &path).unwrap();
    }
    running.out.wait_for_lines(1);
    running.stop.stop();
    let counters = running.thread.join().unwrap().unwrap();
    let lines = running.out.lines();
    assert_eq!(counters.tally.folded, 2);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[1].ends_with("d: last message repeated 2 times"),
        "{}",
        lines[1]
    );
}

#[test]
fn a_closed_output_ends_the_run_and_removes_the_socket() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sink = Sink::bind(&SinkOptions::new(path.clone())).unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<30>d: x", &path)
        .unwrap();
    let err = sink.run(&mut Closed, &StopHandle::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    assert!(!path.exists());
}

#[test]
fn a_taken_socket_is_reported_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let _first = Sink::bind(&SinkOptions::new(path.clone())).unwrap();
    let err = daemonlab::syslog::sink::run(
        &SinkOptions::new(path.clone()),
        &mut Vec::new(),
        &StopHandle::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("remove it or pick another path"),
        "{err}"
    );
}
