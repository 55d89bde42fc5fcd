//! `daemonlab syslogd`: the lab's receiver as a foreground syslogd that prints each
//! message as it arrives, as text or as one JSON object per line. It is what a reader
//! runs in a second terminal to watch `logger`, a Python script or their own daemon log.
//!
//! Wiring a command to it, with SIGINT and SIGTERM ending the run cleanly:
//!
//! ```no_run
//! use daemonlab::syslog::sink::{Sink, SinkOptions, StopHandle};
//! use signal_hook::{consts::{SIGINT, SIGTERM}, iterator::Signals};
//!
//! # fn main() -> std::io::Result<()> {
//! let sink = Sink::bind(&SinkOptions::new("/tmp/daemonlab-log".into()))?; // errors first
//! let stop = StopHandle::new();
//! let mut signals = Signals::new([SIGINT, SIGTERM])?;
//! let signals_handle = signals.handle();
//! let on_signal = stop.clone();
//! let waiter = std::thread::spawn(move || {
//!     if signals.forever().next().is_some() {
//!         on_signal.stop();
//!     }
//! });
//! let result = sink.run(&mut std::io::stdout().lock(), &stop);
//! signals_handle.close();
//! let _ = waiter.join();
//! let summary = result?; // BrokenPipe here means the reader went away (`| head`)
//! eprintln!("{}; {}", summary.tally, summary.socket); // every message accounted for
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::SystemTime;

use serde::Serialize;

use super::parse::{WireFormat, escape_bytes};
use super::receiver::{Message, Receiver, ReceiverOptions, Removal, Source};
use super::tally::{Cursor, Tally};
use super::{Facility, Severity};

/// How each message is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `time facility.severity ident[pid]: message`, one line each, for people.
    #[default]
    Text,
    /// One JSON object per line, for `jq` and scripted checks.
    Json,
}

/// What `daemonlab syslogd` listens on and how it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// The Unix datagram socket to create (`--socket`); clients use `logger -u PATH`.
    pub socket: PathBuf,
    /// Also listen on UDP (`--udp`), APUE's network path; port 0 picks a free port.
    pub udp: Option<SocketAddr>,
    /// Also print the kernel's log from /dev/kmsg (needs root where dmesg is restricted).
    pub kmsg: bool,
    /// Text or JSON lines.
    pub format: OutputFormat,
    /// Fold repeats into "last message repeated N times", as classic syslogd does.
    pub fold: bool,
}

impl SinkOptions {
    /// Listen on `socket` only, print text, fold repeats.
    pub fn new(socket: PathBuf) -> SinkOptions {
        SinkOptions {
            socket,
            udp: None,
            kmsg: false,
            format: OutputFormat::Text,
            fold: true,
        }
    }
}

/// Asks a running [`Sink::run`] to finish: clone it into the thread that waits for
/// SIGINT/SIGTERM and call [`StopHandle::stop`] there. Stopping before `run` starts makes
/// `run` return at once.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    stopped: AtomicBool,
    wake: Mutex<Option<mpsc::SyncSender<()>>>,
}

impl StopHandle {
    /// A handle not yet stopped.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Make `run` print what is queued, remove its socket and return. Not for a signal
    /// handler itself (it takes a lock): call it from a thread that waits for signals.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        if let Some(wake) = self
            .0
            .wake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = wake.try_send(());
        }
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    fn register(&self, wake: Option<mpsc::SyncSender<()>>) {
        *self.0.wake.lock().unwrap_or_else(|e| e.into_inner()) = wake;
    }
}

/// A bound `syslogd`: binding comes first so that a busy path or port is reported before
/// anything is printed, and so that tests can learn the UDP port.
pub struct Sink {
    receiver: Receiver,
    udp: Option<SocketAddr>,
    format: OutputFormat,
    wake_tx: mpsc::SyncSender<()>,
    wake_rx: mpsc::Receiver<()>,
}

impl Sink {
    /// Bind the socket (and UDP, and /dev/kmsg, when asked). Errors name what could not
    /// be opened and what to do about it.
    pub fn bind(options: &SinkOptions) -> io::Result<Sink> {
        let receiver = Receiver::with_options(
            &options.socket,
            ReceiverOptions {
                fold: options.fold,
                ..ReceiverOptions::default()
            },
        )?;
        let udp = options.udp.map(|addr| receiver.add_udp(addr)).transpose()?;
        if options.kmsg {
            receiver.add_kmsg()?;
        }
        // One slot is enough: a pending wake-up already means "look again".
        let (wake_tx, wake_rx) = mpsc::sync_channel(1);
        let listener_wake = wake_tx.clone();
        receiver.set_notify(Box::new(move || {
            let _ = listener_wake.try_send(());
        }));
        Ok(Sink {
            receiver,
            udp,
            format: options.format,
            wake_tx,
            wake_rx,
        })
    }

    /// The Unix socket clients write to.
    pub fn path(&self) -> &Path {
        self.receiver.path()
    }

    /// The UDP address actually bound (the real port when port 0 was asked for).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// Print every message as it arrives until `stop` is stopped, then report pending
    /// repeats, remove the socket (if it is still ours) and return what was counted.
    /// Blocks without a timer in between: idle costs nothing. A write error (a closed
    /// pipe) ends it too.
    ///
    /// The receiver's ring is the queue between socket and output: if the output falls
    /// more than [`DEFAULT_CAPACITY`](super::receiver::DEFAULT_CAPACITY) messages behind
    /// (a paused pager during a flood), the oldest unprinted ones are dropped, as a
    /// syslogd with a full queue drops them, and counted in [`Tally::dropped`]; memory
    /// stays bounded.
    pub fn run(self, out: &mut dyn Write, stop: &StopHandle) -> io::Result<SinkSummary> {
        stop.register(Some(self.wake_tx.clone()));
        let mut cursor = Cursor::new();
        let result = self.print_until(out, stop, &mut cursor);
        stop.register(None);
        // Stop first (idempotent), so that the socket's fate is known for the summary.
        self.receiver.stop();
        let socket = self.receiver.last_removal().unwrap_or(Removal::AlreadyGone);
        drop(self);
        result.map(|()| SinkSummary {
            tally: cursor.tally,
            socket,
        })
    }

    fn print_until(
        &self,
        out: &mut dyn Write,
        stop: &StopHandle,
        cursor: &mut Cursor,
    ) -> io::Result<()> {
        let feed = self.receiver.feed();
        // Lines are formatted in place under the ring's lock (no copies of the messages)
        // and written with one write(2) per batch, at most about this many bytes at once.
        const CHUNK: usize = 256 * 1024;
        let mut lines = String::with_capacity(CHUNK);
        loop {
            let stopping = stop.is_stopped();
            if stopping {
                // Refuse new datagrams, read the queued ones, report pending repeats.
                self.receiver.stop();
                self.receiver.flush();
            }
            let mut done = false;
            while !done {
                lines.clear();
                done = feed.read_each(cursor, usize::MAX, |message| {
                    match self.format {
                        OutputFormat::Text => push_text_line(&mut lines, message),
                        OutputFormat::Json => lines.push_str(&json_line(message)),
                    }
                    lines.push('\n');
                    lines.len() < CHUNK
                });
                out.write_all(lines.as_bytes())?;
            }
            out.flush()?;
            if stopping {
                return Ok(());
            }
            // Never disconnected: `self` holds a sender.
            let _ = self.wake_rx.recv();
        }
    }
}

/// What a finished [`Sink::run`] counted, and what became of its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// Every message accounted for; `dropped` is what the output was too slow for.
    pub tally: Tally,
    /// Whether the socket was removed, or what was found at its path instead.
    pub socket: Removal,
}

impl std::fmt::Display for SinkSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.tally, self.socket)
    }
}

/// Bind as `options` say and [`Sink::run`] until `stop`.
pub fn run(
    options: &SinkOptions,
    out: &mut dyn Write,
    stop: &StopHandle,
) -> io::Result<SinkSummary> {
    Sink::bind(options)?.run(out, stop)
}

/// `time facility.severity ident[pid]: message`; the time is the one the sender wrote,
/// or the arrival time (UTC) when it wrote none. Garbage is shown escaped after
/// `malformed:`, and control characters never reach the terminal raw.
pub fn text_line(message: &Message) -> String {
    let mut line = String::new();
    push_text_line(&mut line, message);
    line
}

/// [`text_line`] appended to `line`, without allocating on the way for a valid message.
fn push_text_line(line: &mut String, message: &Message) {
    let parsed = &message.parsed;
    match &parsed.timestamp {
        Some(sent) => line.push_str(sent),
        None => write_rfc3339_utc(line, message.received_at),
    }
    if parsed.malformed {
        line.push_str(" malformed: ");
        line.push_str(&escape_bytes(&message.raw));
        return;
    }
    line.push(' ');
    push_priority_name(line, parsed.pri, parsed.facility, parsed.severity);
    line.push(' ');
    line.push_str(parsed.ident.as_deref().unwrap_or("-"));
    if let Some(pid) = parsed.pid {
        let _ = write!(line, "[{pid}]");
    }
    line.push_str(": ");
    line.push_str(&escape_controls(&parsed.message));
}

/// `daemon.info`; a facility without a name (12–15) by number, as `12.notice`.
pub fn priority_name(
    pri: Option<u8>,
    facility: Option<Facility>,
    severity: Option<Severity>,
) -> String {
    let mut name = String::new();
    push_priority_name(&mut name, pri, facility, severity);
    name
}

fn push_priority_name(
    out: &mut String,
    pri: Option<u8>,
    facility: Option<Facility>,
    severity: Option<Severity>,
) {
    match (facility, pri) {
        (Some(f), _) => out.push_str(f.name()),
        (None, Some(pri)) => {
            let _ = write!(out, "{}", pri / 8);
        }
        (None, None) => out.push('-'),
    }
    out.push('.');
    out.push_str(severity.map_or("-", Severity::name));
}

/// Control characters as escapes, so one message stays one line and cannot drive the
/// terminal; everything else (any script) as is.
fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One JSON line's fields: the ones the issue lists, then what else a script may want.
#[derive(Serialize)]
struct JsonLine<'a> {
    facility: Option<Facility>,
    severity: Option<Severity>,
    pri: Option<u8>,
    timestamp: Option<&'a str>,
    hostname: Option<&'a str>,
    ident: Option<&'a str>,
    pid: Option<i32>,
    msgid: Option<&'a str>,
    message: &'a str,
    /// The raw bytes, escaped, for malformed input only.
    raw: Option<String>,
    source: Source,
    seq: u64,
    received_at: String,
    sender_pid: Option<i32>,
    repeats: u32,
    structured_data: Option<&'a str>,
    format: WireFormat,
    malformed: bool,
    truncated: bool,
}

/// One JSON object (no newline) with the keys `facility`, `severity`, `pri`, `timestamp`,
/// `hostname`, `ident`, `pid`, `msgid`, `message`, `raw`, `source`, then `seq`,
/// `received_at`, `sender_pid`, `repeats`, `structured_data`, `format`, `malformed`,
/// `truncated`.
pub fn json_line(message: &Message) -> String {
    let p = &message.parsed;
    let line = JsonLine {
        facility: p.facility,
        severity: p.severity,
        pri: p.pri,
        timestamp: p.timestamp.as_deref(),
        hostname: p.hostname.as_deref(),
        ident: p.ident.as_deref(),
        pid: p.pid,
        msgid: p.msgid.as_deref(),
        message: &p.message,
        raw: p.malformed.then(|| escape_bytes(&message.raw)),
        source: message.source,
        seq: message.seq,
        received_at: rfc3339_utc(message.received_at),
        sender_pid: message.sender_pid,
        repeats: message.repeats,
        structured_data: p.structured_data.as_deref(),
        format: p.format,
        malformed: p.malformed,
        truncated: message.truncated,
    };
    // Only strings, numbers and enums with string names: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

/// `2026-11-25T18:44:31.123Z`: a receive time a reader can compare across machines,
/// without a time-zone database.
fn rfc3339_utc(time: SystemTime) -> String {
    let mut text = String::with_capacity(24);
    write_rfc3339_utc(&mut text, time);
    text
}

/// [`rfc3339_utc`] appended to `out`.
fn write_rfc3339_utc(out: &mut String, time: SystemTime) {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_millis()
    );
}

/// Proleptic Gregorian date of a day count since 1970-01-01. Counting in 400-year eras
/// that start on 1 March puts the leap day last, so each era has the same shape.
fn civil_date(days: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / DAYS_PER_ERA;
    let day_of_era = z % DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, each 153 days per five months.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn utc_times_across_leap_days_and_centuries() {
        assert_eq!(rfc3339_utc(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(at(1_764_000_000)), "2025-11-24T16:00:00.000Z");
        assert_eq!(rfc3339_utc(at(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(at(4_107_542_400)), "2100-03-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(at(59) + Duration::from_millis(1_250)),
            "1970-01-01T00:01:00.250Z"
        );
    }

    fn message(bytes: &[u8]) -> Message {
        let mut m = Message::from_datagram(Source::Unix, Some(9), bytes);
        m.received_at = at(1_764_000_000);
        m
    }

    #[test]
    fn text_lines() {
        let m = message(b"<27>Nov 25 18:00:00 subject[42]: open failed\0");
        assert_eq!(
            text_line(&m),
            "Nov 25 18:00:00 daemon.err subject[42]: open failed"
        );
        let m = message(b"<11>py says hi\0");
        assert_eq!(
            text_line(&m),
            "2025-11-24T16:00:00.000Z user.err -: py says hi"
        );
        let m = message(b"<101>ntp: drift");
        assert_eq!(
            text_line(&m),
            "2025-11-24T16:00:00.000Z 12.notice ntp: drift"
        );
        let m = message(b"<13>t: two\nlines\x1b[2J");
        assert_eq!(
            text_line(&m),
            "2025-11-24T16:00:00.000Z user.notice t: two\\nlines\\u{1b}[2J"
        );
        let m = message(b"\xffno pri\0");
        assert_eq!(
            text_line(&m),
            "2025-11-24T16:00:00.000Z malformed: \\xffno pri\\0"
        );
    }

    #[test]
    fn json_lines_have_the_documented_keys() {
        let m = message(b"<13>1 2026-11-25T18:44:31Z vm root 7 ID47 [a@1 b=\"c\"] hi");
        let v: serde_json::Value = serde_json::from_str(&json_line(&m)).unwrap();
        assert_eq!(v["facility"], "user");
        assert_eq!(v["severity"], "notice");
        assert_eq!(v["pri"], 13);
        assert_eq!(v["timestamp"], "2026-11-25T18:44:31Z");
        assert_eq!(v["hostname"], "vm");
        assert_eq!(v["ident"], "root");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["msgid"], "ID47");
        assert_eq!(v["message"], "hi");
        assert_eq!(v["raw"], serde_json::Value::Null);
        assert_eq!(v["source"], "unix");
        assert_eq!(v["sender_pid"], 9);
        assert_eq!(v["structured_data"], "[a@1 b=\"c\"]");
        assert_eq!(v["format"], "rfc5424");

        let m = message(b"<999>\0\xff");
        let v: serde_json::Value = serde_json::from_str(&json_line(&m)).unwrap();
        assert_eq!(v["facility"], serde_json::Value::Null);
        assert_eq!(v["pid"], serde_json::Value::Null);
        assert_eq!(v["msgid"], serde_json::Value::Null);
        assert_eq!(v["raw"], "<999>\\0\\xff");
        assert_eq!(v["malformed"], true);
    }

    #[test]
    fn stopping_before_run_returns_at_once_and_removes_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let sink = Sink::bind(&SinkOptions::new(path.clone())).unwrap();
        assert!(path.exists());
        let stop = StopHandle::new();
        stop.stop();
        let mut out = Vec::new();
        let summary = sink.run(&mut out, &stop).unwrap();
        assert_eq!(summary.tally.received, 0);
        assert_eq!(summary.socket, Removal::Removed);
        assert!(out.is_empty());
        assert!(!path.exists());
    }
}
