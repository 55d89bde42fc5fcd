//! The few /proc facts an audit needs beyond a [`crate::probe::ProcSnapshot`]: the
//! kernel-thread flag and start time from stat, locks from fdinfo, pid_max.
//!
//! Read here rather than added to the probe, which is tuned for the lab's per-step
//! snapshots and has no use for them.

use crate::locks::proc_locks::FileId;

pub(crate) use crate::probe::stat::PF_KTHREAD;
/// The kernel's default `pid_max` on 64-bit machines, used when the sysctl is unreadable.
const DEFAULT_PID_MAX: i64 = 4_194_304;

/// The stat fields the probe skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatExtra {
    /// Field 9, the `PF_*` flags.
    pub flags: u64,
    /// Field 22, start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parse fields 9 and 22 of a stat line (fields counted from 1, after the `(comm)`).
pub(crate) fn parse_stat_extra(text: &str) -> Option<StatExtra> {
    let fields: Vec<&[u8]> = crate::probe::stat::split_stat(text.as_bytes())
        .ok()?
        .fields()
        .collect();
    // fields[0] is field 3 (state).
    let number = |field: usize| {
        std::str::from_utf8(fields.get(field - 3)?)
            .ok()?
            .parse()
            .ok()
    };
    Some(StatExtra {
        flags: number(9)?,
        start_ticks: number(22)?,
    })
}

/// Read [`StatExtra`] for `pid`; `None` if the process is gone or the line is odd.
pub(crate) fn stat_extra(pid: i32) -> Option<StatExtra> {
    crate::probe::read_proc_file(&format!("/proc/{pid}/stat"), |stat| {
        parse_stat_extra(std::str::from_utf8(stat).ok()?)
    })?
}

/// How long the process has existed, in seconds, from its start tick and /proc/uptime.
pub(crate) fn age_seconds(start_ticks: u64) -> Option<f64> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let up: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    if hz <= 0 {
        return None;
    }
    Some((up - start_ticks as f64 / hz as f64).max(0.0))
}

/// The thread-group ID of a task: the PID of the process a thread belongs to (itself for
/// a process).
pub(crate) fn tgid(tid: i32) -> Option<i32> {
    crate::probe::read_tgid(tid)
}

/// The kernel's `pid_max`: every process ID is below it.
pub(crate) fn pid_max() -> i64 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_PID_MAX)
}

/// The device and inode of the file behind `/proc/PID/fd/FD` (stat follows the link to
/// the open file itself, even if its path was since unlinked).
pub(crate) fn fd_file_id(pid: i32, fd: i32) -> Option<FileId> {
    std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|m| FileId::of_metadata(&m))
}

/// Inode of the file behind an fd, for sockets whose target is `socket:[INODE]`.
pub(crate) fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether `/proc/PID/fd` is denied to us (as opposed to merely gone, as for a zombie).
pub(crate) fn fd_table_denied(pid: i32) -> bool {
    matches!(
        std::fs::read_dir(format!("/proc/{pid}/fd")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
    )
}

/// Whether `pid` lives in another mount namespace than ours, so that its paths name files
/// we reach only through /proc/PID/root. `false` when we may not tell.
pub(crate) fn other_mount_namespace(pid: i32) -> bool {
    match (
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")),
        std::fs::read_link("/proc/self/ns/mnt"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs != ours,
        _ => false,
    }
}

/// Whether this kernel lists locks in /proc/PID/fdinfo (`lock:` lines, Linux 4.5 and
/// later), read from uname(2)'s release.
pub(crate) fn fdinfo_lists_locks() -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (4, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_start_time() {
        let line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0 \
                    18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0\n";
        let extra = parse_stat_extra(line).unwrap();
        assert_ne!(extra.flags & PF_KTHREAD, 0);
        assert_eq!(extra.start_ticks, 7);
    }

    #[test]
    fn comm_with_a_paren_does_not_shift_fields() {
        let line = "9 (a) b) S 1 9 9 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0\n";
        let extra = parse_stat_extra(line).unwrap();
        assert_eq!(extra.flags & PF_KTHREAD, 0);
        assert_eq!(extra.start_ticks, 1234);
    }

    #[test]
    fn socket_targets() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
    }

    #[test]
    fn our_own_age_is_small_and_positive() {
        let extra = stat_extra(std::process::id() as i32).unwrap();
        let age = age_seconds(extra.start_ticks).unwrap();
        assert!((0.0..86_400.0 * 365.0).contains(&age), "{age}");
    }
}
