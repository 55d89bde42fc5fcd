//! `/proc/PID/stat`: the cheap, one-line source of the job-control identity of a process.

use super::{Pid, ProbeError, read::ProcDir, read::Scratch};

/// The fields of `/proc/PID/stat` that daemonization changes, and nothing else.
///
/// Exists so a view that only needs the IDs (pid, ppid, pgid, sid, tty) can poll them for
/// a few microseconds instead of paying for a full [`super::ProcSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1.
    pub pid: Pid,
    /// Field 2, without the parentheses; may contain spaces and ')'.
    pub comm: String,
    /// Field 3, the one-letter scheduler state.
    pub state: char,
    /// Field 4.
    pub ppid: Pid,
    /// Field 5, the process group.
    pub pgid: Pid,
    /// Field 6, the session.
    pub sid: Pid,
    /// Field 7, the packed controlling-terminal device; 0 when there is none.
    pub tty_nr: i32,
    /// Field 8, the foreground process group of the controlling terminal; -1 without one.
    pub tpgid: Pid,
}

/// Read and parse `/proc/PID/stat` alone.
///
/// Exists for cheap polling (a few µs): the lab can watch PID/PPID/PGID/SID change
/// without reading status and the fd table each time.
pub fn read_stat(pid: Pid) -> Result<ProcStat, ProbeError> {
    let dir = ProcDir::open(pid)?;
    let mut scratch = Scratch::new();
    let bytes = dir.read_file(c"stat", &mut scratch)?;
    parse_stat(pid, bytes)
}

/// `PF_KTHREAD` from the kernel's `include/linux/sched.h`, a bit of stat field 9 (`flags`):
/// the task is a kernel thread.
pub(crate) const PF_KTHREAD: u64 = 0x0020_0000;

/// A stat line cut the way proc(5) describes it: field 1 (the pid), where field 2 (the
/// command name, between the first '(' and the *last* ')') sits in the bytes, and the
/// fields from 3 on, split at spaces.
///
/// The one place that knows the layout: the snapshot, the `ps` table and the audit each
/// take the fields they need from here.
pub(crate) struct StatSplit<'a> {
    pub pid: Pid,
    pub comm: std::ops::Range<usize>,
    /// Everything after the last ')'.
    rest: &'a [u8],
}

impl<'a> StatSplit<'a> {
    /// Fields 3 onwards, in order.
    pub fn fields(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.rest
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
    }
}

/// Why a line is not a stat line, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitError {
    NoOpen,
    NoClose,
    BadPid,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitError::NoOpen => "no '(' before the command name",
            SplitError::NoClose => "no ')' after the command name",
            SplitError::BadPid => "field 1 (pid) is not a number",
        })
    }
}

pub(crate) fn split_stat(bytes: &[u8]) -> Result<StatSplit<'_>, SplitError> {
    let open = bytes
        .iter()
        .position(|&b| b == b'(')
        .ok_or(SplitError::NoOpen)?;
    let close = bytes
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&close| close > open)
        .ok_or(SplitError::NoClose)?;
    let pid = parse_int(bytes[..open].trim_ascii()).ok_or(SplitError::BadPid)?;
    Ok(StatSplit {
        pid,
        comm: open + 1..close,
        rest: &bytes[close + 1..],
    })
}

/// Fields 3–8 of a stat line: the state letter and the job-control identity, which both
/// the snapshot and the `ps` table need.
pub(crate) struct StatIds {
    pub state: u8,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub tty_nr: i32,
    pub tpgid: Pid,
}

/// Read fields 3–8 from `fields` (as [`StatSplit::fields`] yields them); the error names
/// the first field that is missing or malformed.
pub(crate) fn parse_ids<'a>(
    fields: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<StatIds, String> {
    let state = match fields.next() {
        Some(&[c]) if c.is_ascii_alphabetic() => c,
        _ => return Err("field 3 (state) is not a single letter".into()),
    };
    let mut next_int = |name: &str| {
        fields
            .next()
            .and_then(parse_int)
            .ok_or_else(|| format!("field {name} is missing or not a number"))
    };
    Ok(StatIds {
        state,
        ppid: next_int("4 (ppid)")?,
        pgid: next_int("5 (pgrp)")?,
        sid: next_int("6 (session)")?,
        tty_nr: next_int("7 (tty_nr)")?,
        tpgid: next_int("8 (tpgid)")?,
    })
}

/// Parse the contents of a `/proc/PID/stat` file read for `pid`.
///
/// Exists separately from [`read_stat`] so the parser can be tested and benchmarked on
/// hostile input. The command name sits in parentheses and may itself contain ')' and
/// spaces (a process can name itself anything with `prctl(PR_SET_NAME)`), so the fields
/// start after the *last* ')'.
pub fn parse_stat(pid: Pid, bytes: &[u8]) -> Result<ProcStat, ProbeError> {
    let bad = |detail: String| ProbeError::Parse {
        pid,
        what: format!("/proc/{pid}/stat"),
        detail,
    };
    let split = split_stat(bytes).map_err(|e| bad(e.to_string()))?;
    let (stat_pid, mut fields) = (split.pid, split.fields());
    let comm = String::from_utf8_lossy(&bytes[split.comm]).into_owned();
    let ids = parse_ids(&mut fields).map_err(bad)?;
    Ok(ProcStat {
        pid: stat_pid,
        comm,
        state: char::from(ids.state),
        ppid: ids.ppid,
        pgid: ids.pgid,
        sid: ids.sid,
        tty_nr: ids.tty_nr,
        tpgid: ids.tpgid,
    })
}

/// Decimal i32 with an optional leading '-' (tpgid is -1 without a terminal). Hand-rolled
/// because going through `str::parse` would need a UTF-8 check per field.
pub(crate) fn parse_int(digits: &[u8]) -> Option<i32> {
    let (negative, digits) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(d - b'0');
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

/// Kernel scheduler state letter to the word `ps(1)` documents for it.
///
/// Exists so the UI can say "zombie" rather than "Z" to someone who has never read the
/// proc(5) man page.
pub fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing stop",
        'X' | 'x' => "dead",
        'I' => "idle",
        'K' => "wakekill",
        'W' => "waking",
        'P' => "parked",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELF_LIKE: &[u8] = b"6992 (cat) R 6987 6987 5141 0 -1 4194304 100 0 0 0 0 0 0 0 \
20 0 1 0 33723 3133440 359 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";

    #[test]
    fn plain_line() {
        let st = parse_stat(6992, SELF_LIKE).unwrap();
        assert_eq!(
            st,
            ProcStat {
                pid: 6992,
                comm: "cat".into(),
                state: 'R',
                ppid: 6987,
                pgid: 6987,
                sid: 5141,
                tty_nr: 0,
                tpgid: -1,
            }
        );
    }

    #[test]
    fn comm_with_parentheses_and_spaces() {
        let line = b"42 (a) b (c) S 1 42 42 34816 42 4194560 0 0\n";
        let st = parse_stat(42, line).unwrap();
        assert_eq!(st.comm, "a) b (c");
        assert_eq!(st.state, 'S');
        assert_eq!((st.ppid, st.pgid, st.sid), (1, 42, 42));
        assert_eq!((st.tty_nr, st.tpgid), (34816, 42));
    }

    #[test]
    fn comm_that_looks_like_fields() {
        // A name crafted to fool a parser that splits at the first ')'.
        let line = b"7 (x) R 99 99 99 99 99) Z 3 4 5 0 -1 0\n";
        let st = parse_stat(7, line).unwrap();
        assert_eq!(st.comm, "x) R 99 99 99 99 99");
        assert_eq!((st.state, st.ppid, st.pgid, st.sid), ('Z', 3, 4, 5));
    }

    #[test]
    fn truncated_line_is_a_parse_error_naming_the_pid() {
        let err = parse_stat(1234, b"1234 (sh) S 1 1234\n").unwrap_err();
        assert!(
            matches!(err, ProbeError::Parse { pid: 1234, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("/proc/1234/stat"), "{msg}");
        assert!(msg.contains("tty_nr") || msg.contains("session"), "{msg}");
    }

    #[test]
    fn missing_parentheses_is_a_parse_error() {
        assert!(matches!(
            parse_stat(5, b"5 sh S 1 1 1 0 -1\n"),
            Err(ProbeError::Parse { pid: 5, .. })
        ));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_int(b"-2147483648"), Some(i32::MIN));
        assert_eq!(parse_int(b"2147483648"), None);
        assert_eq!(parse_int(b"99999999999999999999"), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"1x"), None);
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name('Z'), "zombie");
        assert_eq!(state_name('t'), "tracing stop");
        assert_eq!(state_name('?'), "unknown");
    }
}
