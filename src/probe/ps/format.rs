//! How the columns look: STAT letters, TIME, COMMAND, and the whole table as text.

use std::fmt::Write as _;

use super::PsRow;
use super::parse::StatLine;

/// procps's STAT column: the state letter, then the flags this table knows about.
///
/// `locked` is VmLck > 0, from `status`: procps's `L`.
pub(super) fn stat_column(st: &StatLine, locked: bool) -> String {
    let mut s = String::with_capacity(6);
    s.push(char::from(st.state));
    if st.nice < 0 {
        s.push('<');
    } else if st.nice > 0 {
        s.push('N');
    }
    if locked {
        s.push('L');
    }
    if st.sid == st.pid {
        s.push('s');
    }
    if st.num_threads > 1 {
        s.push('l');
    }
    // tpgid is -1 without a terminal, and no process group has that ID.
    if st.pgid == st.tpgid {
        s.push('+');
    }
    s
}

/// CPU time the way `ps j` prints it (procps's `bsdtime`): whole minutes, then seconds.
pub(super) fn cpu_time(ticks: u64, ticks_per_second: u64) -> String {
    let seconds = ticks / ticks_per_second.max(1);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// Seconds back from a [`cpu_time`] string, for sorting; 0 for anything malformed.
pub(super) fn cpu_seconds(time: &str) -> u64 {
    let Some((minutes, seconds)) = time.split_once(':') else {
        return 0;
    };
    let minutes: u64 = minutes.trim().parse().unwrap_or(0);
    let seconds: u64 = seconds.parse().unwrap_or(0);
    minutes.saturating_mul(60).saturating_add(seconds)
}

/// The COMMAND column from the raw cmdline: arguments joined by spaces, control
/// characters shown as '?' so a hostile argv cannot repaint the terminal.
///
/// With no cmdline (kernel threads, zombies, processes that wiped their argv) the kernel's
/// comm in brackets, as ps does, and " <defunct>" after a zombie's.
pub(super) fn command(cmdline: &[u8], comm: &[u8], state: u8) -> String {
    let args = trim_trailing_nuls(cmdline);
    if args.is_empty() {
        let mut s = String::with_capacity(comm.len() + 12);
        s.push('[');
        push_printable(&mut s, comm);
        s.push(']');
        if state == b'Z' {
            s.push_str(" <defunct>");
        }
        return s;
    }
    let mut s = String::with_capacity(args.len());
    for (i, arg) in args.split(|&b| b == 0).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        push_printable(&mut s, arg);
    }
    s
}

fn trim_trailing_nuls(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

fn push_printable(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.extend(
            chunk
                .valid()
                .chars()
                .map(|c| if c.is_control() { '?' } else { c }),
        );
        if !chunk.invalid().is_empty() {
            out.push('?');
        }
    }
}

/// Column widths of procps 4's `ps -axj`; a column grows when a value is wider, so the
/// table stays aligned with 7-digit PIDs (pid_max 4194304) too.
const PID_WIDTH: usize = 5;
const TTY_WIDTH: usize = 8;
const STAT_WIDTH: usize = 4;
const UID_WIDTH: usize = 5;
const TIME_WIDTH: usize = 6;

/// Digits (and sign) of an integer, without formatting it.
fn int_width(n: i64) -> usize {
    let sign = usize::from(n < 0);
    sign + n
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1)
}

/// The table as `ps -axj` prints it, with a ROLE column before COMMAND if `roles`.
pub(super) fn text(rows: &[PsRow], roles: bool) -> String {
    let max =
        |f: &dyn Fn(&PsRow) -> usize, floor: usize| rows.iter().map(f).fold(floor, usize::max);
    let ppid_w = max(&|r| int_width(r.ppid.into()), PID_WIDTH);
    let pid_w = max(&|r| int_width(r.pid.into()), PID_WIDTH);
    let pgid_w = max(&|r| int_width(r.pgid.into()), PID_WIDTH);
    let sid_w = max(&|r| int_width(r.sid.into()), PID_WIDTH);
    let tty_w = max(&|r| r.tty.as_deref().map_or(1, str::len), TTY_WIDTH);
    let tpgid_w = max(&|r| int_width(r.tpgid.into()), PID_WIDTH);
    let stat_w = max(&|r| r.stat.len(), STAT_WIDTH);
    let uid_w = max(&|r| int_width(r.uid.into()), UID_WIDTH);
    let time_w = max(&|r| r.time.len(), TIME_WIDTH);

    let line_guess = ppid_w + pid_w + pgid_w + sid_w + tty_w + tpgid_w + stat_w + uid_w + 40;
    let mut out = String::with_capacity((rows.len() + 1) * line_guess);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:>ppid_w$} {:>pid_w$} {:>pgid_w$} {:>sid_w$} {:<tty_w$} {:>tpgid_w$} {:<stat_w$} \
         {:>uid_w$} {:>time_w$} {}",
        "PPID",
        "PID",
        "PGID",
        "SID",
        "TTY",
        "TPGID",
        "STAT",
        "UID",
        "TIME",
        if roles {
            "ROLE          COMMAND"
        } else {
            "COMMAND"
        }
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>ppid_w$} {:>pid_w$} {:>pgid_w$} {:>sid_w$} {:<tty_w$} {:>tpgid_w$} \
             {:<stat_w$} {:>uid_w$} {:>time_w$} {}",
            r.ppid,
            r.pid,
            r.pgid,
            r.sid,
            r.tty.as_deref().unwrap_or("?"),
            r.tpgid,
            r.stat,
            r.uid,
            r.time,
            if roles {
                format!("{:<13} {}", r.role.name(), r.command)
            } else {
                r.command.clone()
            }
        );
    }
    out
}

/// The table as Markdown, the role as its own column.
pub(super) fn markdown(rows: &[PsRow]) -> String {
    let mut out = String::from(
        "| PPID | PID | PGID | SID | TTY | STAT | UID | ROLE | COMMAND |\n|---:|---:|---:|---:|---|---|---:|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | `{}` |",
            r.ppid,
            r.pid,
            r.pgid,
            r.sid,
            r.tty.as_deref().unwrap_or("?"),
            r.stat,
            r.uid,
            r.role.name(),
            r.command.replace('|', "\\|").replace('`', "'")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        state: u8,
        nice: i32,
        threads: i32,
        pid: i32,
        pgid: i32,
        sid: i32,
        tpgid: i32,
    ) -> StatLine {
        StatLine {
            pid,
            comm: 0..0,
            state,
            ppid: 1,
            pgid,
            sid,
            tty_nr: 0,
            tpgid,
            flags: 0,
            cpu_ticks: 0,
            nice,
            num_threads: threads,
            start_time: 0,
        }
    }

    #[test]
    fn stat_letters_in_procps_order() {
        assert_eq!(stat_column(&line(b'S', 0, 1, 9, 9, 9, -1), false), "Ss");
        assert_eq!(stat_column(&line(b'S', -5, 4, 9, 9, 9, -1), false), "S<sl");
        assert_eq!(stat_column(&line(b'S', -5, 4, 9, 9, 9, -1), true), "S<Lsl");
        assert_eq!(stat_column(&line(b'R', 19, 1, 9, 9, 3, 9), false), "RN+");
        assert_eq!(stat_column(&line(b'I', 0, 1, 9, 0, 0, -1), false), "I");
    }

    #[test]
    fn bsd_time() {
        assert_eq!(cpu_time(0, 100), "0:00");
        assert_eq!(cpu_time(250, 100), "0:02");
        assert_eq!(cpu_time(100 * 61, 100), "1:01");
        assert_eq!(cpu_time(100 * 60 * 754 + 100 * 7, 100), "754:07");
        assert_eq!(cpu_seconds("754:07"), 754 * 60 + 7);
        assert_eq!(cpu_seconds("junk"), 0);
    }

    #[test]
    fn commands() {
        assert_eq!(command(b"sleep\x00600\x00", b"sleep", b'S'), "sleep 600");
        assert_eq!(command(b"", b"kworker/0:1", b'I'), "[kworker/0:1]");
        assert_eq!(command(b"", b"sh", b'Z'), "[sh] <defunct>");
        // setproctitle-style: one string with spaces and no NULs.
        assert_eq!(
            command(b"sshd: root@pts/0", b"sshd", b'S'),
            "sshd: root@pts/0"
        );
        assert_eq!(command(b"a\x1b[2J\0b\xff\0\0", b"a", b'S'), "a?[2J b?");
    }

    #[test]
    fn widths() {
        assert_eq!(int_width(0), 1);
        assert_eq!(int_width(-1), 2);
        assert_eq!(int_width(99_999), 5);
        assert_eq!(int_width(4_194_304), 7);
        assert_eq!(int_width(i64::from(u32::MAX)), 10);
    }
}
