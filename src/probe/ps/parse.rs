//! The fields of `/proc/PID/stat` that the `ps -axj` columns need, parsed without
//! allocating anything but the command name.

use std::ops::Range;

use crate::probe::Pid;
use crate::probe::stat::{parse_ids, parse_int, split_stat};

/// One stat line, reduced to what a row of the table is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatLine {
    pub(super) pid: Pid,
    /// Where the name between the parentheses sits in the parsed bytes: an offset rather
    /// than a borrow, so the caller can read cmdline into the same buffer before using it.
    pub(super) comm: Range<usize>,
    pub(super) state: u8,
    pub(super) ppid: Pid,
    pub(super) pgid: Pid,
    pub(super) sid: Pid,
    pub(super) tty_nr: i32,
    pub(super) tpgid: Pid,
    pub(super) flags: u64,
    /// utime + stime, in clock ticks.
    pub(super) cpu_ticks: u64,
    pub(super) nice: i32,
    pub(super) num_threads: i32,
    /// Field 22: when the process started, in clock ticks after boot. With the PID it
    /// names one process for good (a PID can be reused, not at the same moment).
    pub(super) start_time: u64,
}

/// Parse a stat line; `None` when it is not in the documented proc(5) format.
pub(super) fn parse(bytes: &[u8]) -> Option<StatLine> {
    // Fields 3.. by number, as proc(5) counts them.
    let split = split_stat(bytes).ok()?;
    let (pid, mut fields) = (split.pid, split.fields());
    let comm = split.comm;
    let ids = parse_ids(&mut fields).ok()?;
    let flags = parse_u64(fields.next()?)?;
    // 10..13: minflt, cminflt, majflt, cmajflt.
    let mut fields = fields.skip(4);
    let utime = parse_u64(fields.next()?)?;
    let stime = parse_u64(fields.next()?)?;
    // 16..18: cutime, cstime, priority.
    let mut fields = fields.skip(3);
    let nice = parse_int(fields.next()?)?;
    let num_threads = parse_int(fields.next()?)?;
    // 21: itrealvalue; 22: starttime.
    let start_time = parse_u64(fields.nth(1)?)?;
    Some(StatLine {
        pid,
        comm,
        state: ids.state,
        ppid: ids.ppid,
        pgid: ids.pgid,
        sid: ids.sid,
        tty_nr: ids.tty_nr,
        tpgid: ids.tpgid,
        flags,
        cpu_ticks: utime.saturating_add(stime),
        nice,
        num_threads,
        start_time,
    })
}

/// Unsigned decimal (flags, utime, stime); `None` on anything else or overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if d.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line from a multi-threaded, niced process, shortened after field 20.
    const LINE: &[u8] = b"812 (tokio rt) x) S 1 812 812 0 -1 4194624 1533 0 12 0 \
1234 567 0 0 30 10 9 0 2771 0 0\n";

    #[test]
    fn fields_after_the_last_parenthesis() {
        let st = parse(LINE).unwrap();
        assert_eq!(st.pid, 812);
        assert_eq!(&LINE[st.comm.clone()], b"tokio rt) x");
        assert_eq!(st.state, b'S');
        assert_eq!((st.ppid, st.pgid, st.sid), (1, 812, 812));
        assert_eq!((st.tty_nr, st.tpgid), (0, -1));
        assert_eq!(st.flags, 4_194_624);
        assert_eq!(st.cpu_ticks, 1234 + 567);
        assert_eq!((st.nice, st.num_threads), (10, 9));
    }

    #[test]
    fn kernel_thread_flag() {
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 0\n";
        let st = parse(line).unwrap();
        assert_ne!(st.flags & crate::probe::stat::PF_KTHREAD, 0);
        assert_eq!(st.num_threads, 1);
    }

    #[test]
    fn truncated_or_garbled_lines_are_rejected() {
        assert_eq!(parse(b"5 (sh) S 1 1 1 0 -1 0 0 0 0 0 7\n"), None);
        assert_eq!(parse(b"5 sh S 1 1 1 0 -1\n"), None);
        assert_eq!(
            parse(b"5 )sh( S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1\n"),
            None
        );
        assert_eq!(
            parse(b"5 (sh) S 1 1 1 0 -1 -4 0 0 0 0 0 0 0 0 20 0 1\n"),
            None
        );
    }

    #[test]
    fn unsigned_numbers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1a"), None);
    }
}
