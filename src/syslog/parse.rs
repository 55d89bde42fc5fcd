//! Decoding one syslog datagram, whatever sent it: glibc's syslog(3), util-linux `logger`
//! (RFC 3164 or RFC 5424), Python's `SysLogHandler`, the kernel's /dev/kmsg, or garbage.
//!
//! RFC 5424 goes through `syslog_loose`, which knows its structured-data grammar and its
//! RFC 3339 timestamps. The BSD forms we read ourselves, because `syslog_loose` takes
//! glibc's `ident:` for a hostname, rejects Python's form (no timestamp), and keeps only a
//! parsed date, while a lesson wants to show the timestamp exactly as the client wrote it.

use std::borrow::Cow;

use serde::Serialize;

use super::{Facility, Severity, decode_pri};

/// Which of the wire formats a datagram was in, so a lesson can show who sent what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// glibc's syslog(3) to a local socket: `<PRI>Mmm dd hh:mm:ss ident[pid]: msg`,
    /// no hostname (a local daemon knows the host).
    Local,
    /// RFC 3164 with a hostname, as `logger --rfc3164` and network senders write it.
    Rfc3164,
    /// RFC 5424: version, RFC 3339 timestamp, hostname, app, procid, msgid, structured data.
    Rfc5424,
    /// A PRI but no timestamp, as Python's `SysLogHandler` sends: `<PRI>ident: msg\0`.
    NoTimestamp,
    /// A /dev/kmsg record (`pri,seq,usec,flags;text`): the kernel's own log.
    Kmsg,
    /// No valid PRI, or a datagram that claims RFC 5424 and breaks it: kept raw.
    Malformed,
}

/// What one datagram says, field by field, as the sender put it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parsed {
    /// The number between `<` and `>`, when it is a valid PRI (0–191).
    pub pri: Option<u8>,
    /// The facility half of PRI; `None` for facilities 12–15, which have no name here.
    pub facility: Option<Facility>,
    /// The severity half of PRI.
    pub severity: Option<Severity>,
    /// The timestamp as sent: RFC 3164 text (`Nov  5 09:04:01`), RFC 5424's RFC 3339,
    /// or seconds since boot for a kernel record.
    pub timestamp: Option<String>,
    /// The sender's hostname; glibc sends none to a local socket.
    pub hostname: Option<String>,
    /// The `ident` given to openlog(3) (RFC 3164 TAG, RFC 5424 APP-NAME).
    pub ident: Option<String>,
    /// The PID the text claims (LOG_PID); the kernel's answer is `Message::sender_pid`.
    pub pid: Option<i32>,
    /// RFC 5424 MSGID; always `None` for the BSD forms.
    pub msgid: Option<String>,
    /// RFC 5424 structured data as sent (`[id k="v"]…`); `None` when absent or `-`.
    pub structured_data: Option<String>,
    /// The message text (lossy UTF-8), trailing NUL and newline trimmed.
    pub message: String,
    /// The wire format recognised.
    pub format: WireFormat,
    /// No valid PRI, or unparseable: the whole datagram is in `message`; show it as raw.
    pub malformed: bool,
}

/// Decode one datagram. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Parsed {
    parse_text(&datagram_text(bytes))
}

/// The datagram as text the way syslogd shows it: lossy UTF-8, without the trailing NUL
/// (Python, some C clients) and newline (`logger`, shell scripts) that senders append.
pub(crate) fn datagram_text(bytes: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => Cow::Borrowed(trim_tail(s)),
        Cow::Owned(s) => Cow::Owned(trim_tail(&s).to_string()),
    }
}

fn trim_tail(s: &str) -> &str {
    s.trim_end_matches(['\0', '\n', '\r'])
}

/// [`parse`] for text already made by [`datagram_text`], so the receiver converts once.
pub(crate) fn parse_text(text: &str) -> Parsed {
    let Some((pri, rest)) = split_pri(text) else {
        return malformed(None, text);
    };
    if let Some(parsed) = rfc5424(pri, text, rest) {
        return parsed;
    }
    if looks_like_rfc5424(rest) {
        return malformed(Some(pri), rest);
    }
    let (timestamp, header) = match split_timestamp(rest) {
        Some((ts, header)) => (Some(ts), header),
        None => (None, rest),
    };
    let mut parsed = with_pri(pri, header);
    if timestamp.is_none() {
        parsed.format = WireFormat::NoTimestamp;
        apply_tag(&mut parsed, header);
        return parsed;
    }
    parsed.timestamp = timestamp.map(str::to_string);
    // glibc writes `ident[pid]:` straight after the timestamp; a first word that ends the
    // tag like that is the ident, never a hostname.
    if apply_tag(&mut parsed, header) {
        parsed.format = WireFormat::Local;
        return parsed;
    }
    let (host, after_host) = split_word(header);
    if host.is_empty() {
        // Nothing that could be a hostname: a local datagram with no ident.
        parsed.format = WireFormat::Local;
        return parsed;
    }
    parsed.format = WireFormat::Rfc3164;
    parsed.hostname = Some(host.to_string());
    parsed.message = after_host.to_string();
    apply_tag(&mut parsed, after_host);
    parsed
}

/// Decode one /dev/kmsg record, `pri,seq,usec,flags[,…];text` plus ` KEY=value`
/// continuation lines. Returns the kernel's sequence number with it, for drop counting.
pub(crate) fn parse_kmsg(record: &str) -> (Option<u64>, Parsed) {
    let record = trim_tail(record);
    let Some((header, body)) = record.split_once(';') else {
        return (None, malformed(None, record));
    };
    // Continuation lines carry the device dictionary; the message is the first line.
    let text = body.split('\n').next().unwrap_or("");
    let mut fields = header.split(',');
    let pri = fields.next().and_then(|p| p.parse::<u32>().ok());
    let seq = fields.next().and_then(|s| s.parse::<u64>().ok());
    let usec = fields.next().and_then(|u| u.parse::<u64>().ok());
    // Userspace may write any facility to /dev/kmsg; the kernel clamps the level.
    let Some(pri) = pri.and_then(|p| u8::try_from(p).ok()).filter(|p| *p <= 191) else {
        return (seq, malformed(None, record));
    };
    let mut parsed = with_pri(pri, text);
    parsed.format = WireFormat::Kmsg;
    parsed.timestamp = usec.map(|u| format!("{}.{:06}", u / 1_000_000, u % 1_000_000));
    if parsed.facility == Some(Facility::Kern) {
        parsed.ident = Some("kernel".to_string());
    } else {
        apply_tag(&mut parsed, text);
    }
    (seq, parsed)
}

fn malformed(pri: Option<u8>, text: &str) -> Parsed {
    let mut parsed = match pri {
        Some(pri) => with_pri(pri, text),
        None => Parsed {
            pri: None,
            facility: None,
            severity: None,
            timestamp: None,
            hostname: None,
            ident: None,
            pid: None,
            msgid: None,
            structured_data: None,
            message: text.to_string(),
            format: WireFormat::Malformed,
            malformed: true,
        },
    };
    parsed.format = WireFormat::Malformed;
    parsed.malformed = true;
    parsed
}

fn with_pri(pri: u8, message: &str) -> Parsed {
    let (facility, severity) = match decode_pri(pri.into()) {
        Some((f, s)) => (Some(f), Some(s)),
        // Facilities 12–15 are valid PRIs without a name here; the severity still is one.
        None => (None, decode_pri(8 + u32::from(pri % 8)).map(|(_, s)| s)),
    };
    Parsed {
        pri: Some(pri),
        facility,
        severity,
        timestamp: None,
        hostname: None,
        ident: None,
        pid: None,
        msgid: None,
        structured_data: None,
        message: message.to_string(),
        format: WireFormat::NoTimestamp,
        malformed: false,
    }
}

/// `<PRI>` at the start: one to three digits, at most 191 (facility 23, severity 7).
fn split_pri(text: &str) -> Option<(u8, &str)> {
    let inner = text.strip_prefix('<')?;
    let close = inner.find('>')?;
    let digits = &inner[..close];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
    Some((pri, &inner[close + 1..]))
}

/// RFC 5424 through `syslog_loose`; `None` if the datagram is not valid RFC 5424.
fn rfc5424(pri: u8, text: &str, rest: &str) -> Option<Parsed> {
    if !rest.starts_with("1 ") {
        return None;
    }
    let m =
        syslog_loose::parse_message_with_year_exact(text, |_| 0, syslog_loose::Variant::RFC5424)
            .ok()?;
    // VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]: the
    // library keeps a parsed date and a list; we want both as the sender wrote them.
    let mut fields = rest.splitn(7, ' ');
    let timestamp = fields.nth(1).filter(|t| *t != "-").map(str::to_string);
    let structured_data = fields
        .nth(4)
        .and_then(|sd_and_msg| sd_and_msg.trim_end().strip_suffix(m.msg))
        .map(str::trim_end)
        .filter(|sd| !sd.is_empty() && *sd != "-")
        .map(str::to_string);
    let mut parsed = with_pri(pri, m.msg.strip_prefix('\u{feff}').unwrap_or(m.msg));
    parsed.format = WireFormat::Rfc5424;
    parsed.timestamp = timestamp;
    parsed.hostname = m.hostname.map(str::to_string);
    parsed.ident = m.appname.map(str::to_string);
    parsed.pid = match m.procid {
        Some(syslog_loose::ProcId::PID(pid)) => Some(pid),
        _ => None,
    };
    parsed.msgid = m.msgid.map(str::to_string);
    parsed.structured_data = structured_data;
    Some(parsed)
}

/// `1 -` or `1 2025-…`: the sender meant RFC 5424, so a failure to parse is an error of
/// the sender, not Python's `<PRI>1 apple`.
fn looks_like_rfc5424(rest: &str) -> bool {
    let Some(after) = rest.strip_prefix("1 ") else {
        return false;
    };
    let b = after.as_bytes();
    after.starts_with("- ")
        || (b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-')
}

/// The timestamp at the start of an RFC 3164 header, and the rest after one space.
fn split_timestamp(rest: &str) -> Option<(&str, &str)> {
    let len = bsd_timestamp_len(rest).or_else(|| rfc3339_len(rest))?;
    let (ts, after) = rest.split_at(len);
    match after.strip_prefix(' ') {
        Some(header) => Some((ts, header)),
        None if after.is_empty() => Some((ts, after)),
        None => None,
    }
}

/// `Mmm dd hh:mm:ss` with the day space-padded (`Nov  5`) as glibc writes it, or
/// zero-padded as some senders do.
fn bsd_timestamp_len(s: &str) -> Option<usize> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = s.as_bytes().get(..15)?;
    let digit = |i: usize| b[i].is_ascii_digit();
    let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let ok = MONTHS.contains(&&b[..3])
        && b[3] == b' '
        && (b[4] == b' ' || digit(4))
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14);
    (ok && two(7) < 24 && two(10) < 60 && two(13) < 61).then_some(15)
}

/// `2025-11-05T09:04:01…` up to the next space: rsyslog's forwarding format puts an
/// RFC 3339 timestamp in an otherwise RFC 3164 header.
fn rfc3339_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() {
        return None;
    }
    let fits = shape.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        b'T' => *got == b'T' || *got == b't',
        other => got == other,
    });
    fits.then(|| s.find(' ').unwrap_or(s.len()))
}

/// The first word and what follows its single separating space.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((word, rest)) => (word, rest),
        None => (s, ""),
    }
}

/// If `text` starts with a tag (`ident:`, `ident[pid]:` or `ident[pid]`), set ident, pid
/// and the message after it, and return true; otherwise leave `parsed` alone.
fn apply_tag(parsed: &mut Parsed, text: &str) -> bool {
    let (word, after) = split_word(text);
    let (ident, pid) = if let Some((ident, bracketed)) = word.split_once('[') {
        let Some((pid, tail)) = bracketed.split_once(']') else {
            return false;
        };
        if !(tail.is_empty() || tail == ":") {
            return false;
        }
        (ident, Some(pid))
    } else if let Some(ident) = word.strip_suffix(':') {
        (ident, None)
    } else {
        return false;
    };
    parsed.ident = (!ident.is_empty()).then(|| ident.to_string());
    parsed.pid = pid.and_then(|p| p.parse().ok());
    parsed.message = after.to_string();
    true
}

/// Raw bytes as one printable line: ASCII as is, `\\`, `\n`, `\r`, `\t`, `\0`, and `\xNN`
/// for everything else, so garbage can be shown and copied without corrupting a terminal.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0 => out.push_str("\\0"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::pri;

    #[test]
    fn glibc_local_format_keeps_ident_out_of_hostname() {
        let p = parse(b"<30>Nov  5 09:04:01 daemonlab: daemonized: pid 42");
        assert_eq!(p.format, WireFormat::Local);
        assert_eq!(p.pri, Some(30));
        assert_eq!(p.facility, Some(Facility::Daemon));
        assert_eq!(p.severity, Some(Severity::Info));
        assert_eq!(p.timestamp.as_deref(), Some("Nov  5 09:04:01"));
        assert_eq!(p.hostname, None);
        assert_eq!(p.ident.as_deref(), Some("daemonlab"));
        assert_eq!(p.pid, None);
        assert_eq!(p.message, "daemonized: pid 42");
        assert!(!p.malformed);

        let p = parse(b"<27>Nov 25 18:00:00 subject[4242]: cannot open: No such file\n");
        assert_eq!(p.format, WireFormat::Local);
        assert_eq!(p.ident.as_deref(), Some("subject"));
        assert_eq!(p.pid, Some(4242));
        assert_eq!(p.message, "cannot open: No such file");
    }

    #[test]
    fn glibc_with_empty_message_or_no_ident() {
        let p = parse(b"<30>Nov  5 09:04:01 d: ");
        assert_eq!((p.ident.as_deref(), p.message.as_str()), (Some("d"), ""));
        assert_eq!(p.format, WireFormat::Local);
        let p = parse(b"<30>Nov  5 09:04:01 : orphan");
        assert_eq!((p.ident, p.message.as_str()), (None, "orphan"));
        let p = parse(b"<30>Nov  5 09:04:01");
        assert_eq!(p.format, WireFormat::Local);
        assert_eq!(p.timestamp.as_deref(), Some("Nov  5 09:04:01"));
        assert_eq!(p.message, "");
    }

    #[test]
    fn rfc3164_with_hostname_as_logger_sends_it() {
        let p = parse(b"<13>Nov 25 18:44:31 vm root: hello world");
        assert_eq!(p.format, WireFormat::Rfc3164);
        assert_eq!(p.hostname.as_deref(), Some("vm"));
        assert_eq!(p.ident.as_deref(), Some("root"));
        assert_eq!(p.pid, None);
        assert_eq!(p.message, "hello world");

        let p = parse(b"<13>Nov 25 18:44:31 host.example.org root[27198]: hello");
        assert_eq!(p.hostname.as_deref(), Some("host.example.org"));
        assert_eq!((p.ident.as_deref(), p.pid), (Some("root"), Some(27198)));
        assert_eq!(p.msgid, None);
    }

    #[test]
    fn rfc3164_hostname_without_tag_keeps_the_rest_as_message() {
        let p = parse(b"<13>Nov 25 18:44:31 vm just words");
        assert_eq!(p.format, WireFormat::Rfc3164);
        assert_eq!(p.hostname.as_deref(), Some("vm"));
        assert_eq!(p.ident, None);
        assert_eq!(p.message, "just words");
    }

    #[test]
    fn rfc3164_header_with_rfc3339_timestamp() {
        let p = parse(b"<86>2025-11-05T09:04:01.5+01:00 web sshd[7]: Accepted key");
        assert_eq!(p.format, WireFormat::Rfc3164);
        assert_eq!(p.timestamp.as_deref(), Some("2025-11-05T09:04:01.5+01:00"));
        assert_eq!(p.hostname.as_deref(), Some("web"));
        assert_eq!(p.facility, Some(Facility::Authpriv));
        assert_eq!((p.ident.as_deref(), p.pid), (Some("sshd"), Some(7)));
        assert_eq!(p.message, "Accepted key");
    }

    #[test]
    fn rfc5424_with_structured_data_and_msgid() {
        let p = parse(
            b"<13>1 2026-11-25T18:44:31.435418+00:00 vm root - ID47 [timeQuality tzKnown=\"1\" \
              isSynced=\"0\"][zoo@123 tiger=\"hungry\"] hello world",
        );
        assert_eq!(p.format, WireFormat::Rfc5424);
        assert_eq!(p.facility, Some(Facility::User));
        assert_eq!(p.severity, Some(Severity::Notice));
        assert_eq!(
            p.timestamp.as_deref(),
            Some("2026-11-25T18:44:31.435418+00:00")
        );
        assert_eq!(p.hostname.as_deref(), Some("vm"));
        assert_eq!(p.ident.as_deref(), Some("root"));
        assert_eq!(p.pid, None);
        assert_eq!(p.msgid.as_deref(), Some("ID47"));
        assert_eq!(
            p.structured_data.as_deref(),
            Some("[timeQuality tzKnown=\"1\" isSynced=\"0\"][zoo@123 tiger=\"hungry\"]")
        );
        assert_eq!(p.message, "hello world");
    }

    #[test]
    fn rfc5424_nil_values_bom_and_escaped_sd() {
        let p = parse(b"<165>1 - - - - - -");
        assert_eq!(p.format, WireFormat::Rfc5424);
        assert_eq!((p.timestamp, p.hostname, p.ident), (None, None, None));
        assert_eq!((p.msgid, p.structured_data), (None, None));
        assert_eq!(p.message, "");

        let p = parse(
            "<14>1 2025-11-05T09:04:01Z h app 99 - [x@1 a=\"b\\]c\"] \u{feff}caf\u{e9}\n"
                .as_bytes(),
        );
        assert_eq!(p.pid, Some(99));
        assert_eq!(p.structured_data.as_deref(), Some("[x@1 a=\"b\\]c\"]"));
        assert_eq!(p.message, "caf\u{e9}", "BOM dropped, newline trimmed");
    }

    #[test]
    fn broken_rfc5424_is_malformed_but_keeps_pri() {
        let p = parse(b"<13>1 2025-11-05T09:04:01Z h a p - [unclosed sd");
        assert!(p.malformed);
        assert_eq!(p.format, WireFormat::Malformed);
        assert_eq!(p.pri, Some(13));
        assert_eq!(p.message, "1 2025-11-05T09:04:01Z h a p - [unclosed sd");
    }

    #[test]
    fn python_sysloghandler_form() {
        let p = parse(b"<11>py says hi\0");
        assert_eq!(p.format, WireFormat::NoTimestamp);
        assert_eq!(
            (p.facility, p.severity),
            (Some(Facility::User), Some(Severity::Err))
        );
        assert_eq!((p.timestamp, p.ident), (None, None));
        assert_eq!(p.message, "py says hi");

        let p = parse(b"<11>pyid: with ident\0");
        assert_eq!(p.format, WireFormat::NoTimestamp);
        assert_eq!(p.ident.as_deref(), Some("pyid"));
        assert_eq!(p.message, "with ident");

        let p = parse(b"<14>1 apple");
        assert_eq!(
            p.format,
            WireFormat::NoTimestamp,
            "not every `1 ` is RFC 5424"
        );
        assert_eq!(p.message, "1 apple");
    }

    #[test]
    fn every_facility_and_severity_decodes() {
        for value in 0..=191u32 {
            let datagram = format!("<{value}>Nov  5 09:04:01 t: m");
            let p = parse(datagram.as_bytes());
            assert_eq!(p.pri, Some(value as u8));
            assert!(!p.malformed, "{datagram}");
            assert_eq!(p.severity.map(|s| s as u32), Some(value % 8), "{datagram}");
            match decode_pri(value) {
                Some((f, s)) => {
                    assert_eq!((p.facility, p.severity), (Some(f), Some(s)));
                    assert_eq!(pri(f, s) as u32, value);
                }
                None => assert_eq!(p.facility, None, "facility 12-15 has no name"),
            }
        }
    }

    #[test]
    fn names_agree_with_serde() {
        for value in 0..=191u32 {
            if let Some((f, s)) = decode_pri(value) {
                let json = serde_json::to_string(&(f, s)).unwrap();
                let names = format!("[\"{}\",\"{}\"]", f.name(), s.name());
                assert_eq!(json, names);
            }
        }
    }

    #[test]
    fn garbage_is_malformed_and_kept() {
        for bad in [
            &b""[..],
            b"garbage",
            b"<>x",
            b"<192>x",
            b"<999>x",
            b"<1234>x",
            b"<-1>x",
            b"<12",
            b"\xff\xfe<13>",
            b"\0\0\0",
        ] {
            let p = parse(bad);
            assert!(p.malformed, "{bad:?}");
            assert_eq!(p.format, WireFormat::Malformed);
            assert_eq!(p.pri, None);
        }
        let p = parse(b"<13\xff>x");
        assert!(p.malformed);
        let p = parse(b"oops\xffbad\0");
        assert_eq!(p.message, "oops\u{fffd}bad");
    }

    #[test]
    fn invalid_utf8_and_nuls_inside_a_valid_datagram() {
        let p = parse(b"<13>Nov  5 09:04:01 t: a\xc3(b\0c\0\n");
        assert!(!p.malformed);
        assert_eq!(p.message, "a\u{fffd}(b\0c");
    }

    #[test]
    fn kmsg_records() {
        let (seq, p) = parse_kmsg("6,1234,5678901,-;usb 1-1: new device\n SUBSYSTEM=usb\n");
        assert_eq!(seq, Some(1234));
        assert_eq!(p.format, WireFormat::Kmsg);
        assert_eq!(
            (p.facility, p.severity),
            (Some(Facility::Kern), Some(Severity::Info))
        );
        assert_eq!(p.timestamp.as_deref(), Some("5.678901"));
        assert_eq!(p.ident.as_deref(), Some("kernel"));
        assert_eq!(p.message, "usb 1-1: new device");

        let (_, p) = parse_kmsg("30,9,10,-;systemd[1]: Started x.\n");
        assert_eq!((p.ident.as_deref(), p.pid), (Some("systemd"), Some(1)));
        assert_eq!(p.message, "Started x.");

        let (seq, p) = parse_kmsg("no semicolon");
        assert_eq!(seq, None);
        assert!(p.malformed);
    }

    #[test]
    fn escaping_shows_every_byte() {
        assert_eq!(
            escape_bytes(b"<1>a\\b\n\0\xff\x1b"),
            "<1>a\\\\b\\n\\0\\xff\\x1b"
        );
    }
}
