//! Our own reader for /proc/locks. The procfs crate drops the `->` lines, which list the
//! processes blocked waiting for a lock: exactly what a contention demo needs to show.
//!
//! A line looks like `3: POSIX  ADVISORY  WRITE 4242 fd:01:1310722 0 EOF`; a waiter queued
//! behind lock 3 is printed right after it as `3: -> POSIX  ADVISORY  WRITE 4243 ...`
//! (deeper waiters get more indentation). The device is printed in hex (`major:minor`),
//! the inode in decimal.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

/// The inode number the kernel gives the initial PID namespace (`PROC_PID_INIT_INO`).
const INIT_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// True when this process lives in a PID namespace below the initial one (a container).
/// There /proc/locks leaves out every lock whose recorded PID has no number in the
/// namespace: a flock or POSIX lock whose caller has exited while a forked child still
/// holds it through the shared open file is then missing from the table, and only the
/// holder's fdinfo shows it (fs/locks.c, `locks_show`).
pub fn hides_locks_of_gone_pids() -> bool {
    std::fs::metadata("/proc/self/ns/pid").is_ok_and(|m| m.ino() != INIT_PID_NAMESPACE)
}

/// One line of /proc/locks: a granted lock, or a process queued for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockEntry {
    /// The kernel's ordinal for the lock; a waiter carries the id of the lock it waits on.
    pub id: u64,
    /// True for a `->` line: a process blocked in F_SETLKW / flock waiting for lock `id`.
    pub waiter: bool,
    /// POSIX, FLOCK, OFDLCK, LEASE, DELEG, or whatever a newer kernel prints (kept raw).
    pub class: String,
    /// ADVISORY or MANDATORY for locks; ACTIVE, BREAKING or BREAKER for leases.
    pub mode: String,
    /// READ or WRITE (UNLCK for a lease being broken).
    pub access: String,
    /// The process that took the lock; -1 for OFD locks, which belong to an open file
    /// description rather than to a process. For flock it is whoever called flock(), which
    /// may have exited while a forked child still holds the lock through the shared file.
    pub pid: i32,
    /// Device major number of the locked file's file system (hex in the file).
    pub major: u32,
    /// Device minor number (hex in the file).
    pub minor: u32,
    /// Inode number of the locked file (decimal in the file).
    pub inode: u64,
    /// First byte of the locked range.
    pub start: u64,
    /// Last byte of the range; `None` for `EOF` (to the end of the file, however it grows).
    pub end: Option<u64>,
}

impl std::fmt::Display for LockEntry {
    /// Back in the kernel's own layout, so a reader can compare with `cat /proc/locks`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = match self.end {
            Some(end) => end.to_string(),
            None => "EOF".into(),
        };
        write!(
            f,
            "{}: {}{:<6} {:<9} {:<5} {} {:02x}:{:02x}:{} {} {}",
            self.id,
            if self.waiter { "-> " } else { "" },
            self.class,
            self.mode,
            self.access,
            self.pid,
            self.major,
            self.minor,
            self.inode,
            self.start,
            end
        )
    }
}

/// Parse the text of /proc/locks (or the `lock:` lines of an fdinfo file with their prefix
/// removed). Never panics. Lines that do not have the shape of a lock line (fewer fields, a
/// number that does not parse, a device printed as `<none>`) are skipped; lock classes this
/// parser does not know are kept with their raw class name, so a newer kernel's lines still
/// show up.
pub fn parse(text: &str) -> Vec<LockEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<LockEntry> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?.strip_suffix(':')?.parse().ok()?;
    let mut class = fields.next()?;
    let waiter = class == "->";
    if waiter {
        class = fields.next()?;
    }
    let mode = fields.next()?;
    let access = fields.next()?;
    let pid = fields.next()?.parse().ok()?;
    let mut device = fields.next()?.split(':');
    let major = u32::from_str_radix(device.next()?, 16).ok()?;
    let minor = u32::from_str_radix(device.next()?, 16).ok()?;
    let inode = device.next()?.parse().ok()?;
    if device.next().is_some() {
        return None;
    }
    let start = fields.next()?.parse().ok()?;
    let end = match fields.next()? {
        "EOF" => None,
        end => Some(end.parse().ok()?),
    };
    if fields.next().is_some() {
        return None;
    }
    Some(LockEntry {
        id,
        waiter,
        class: class.to_string(),
        mode: mode.to_string(),
        access: access.to_string(),
        pid,
        major,
        minor,
        inode,
        start,
        end,
    })
}

/// Read and parse /proc/locks now.
pub fn read() -> std::io::Result<Vec<LockEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/locks")?))
}

/// The kernel's identity of a file: device major/minor and inode, as /proc/locks prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Inode number.
    pub inode: u64,
}

impl FileId {
    /// The identity of the file at `path` (stat follows symlinks, as open() does).
    pub fn of_path(path: &Path) -> std::io::Result<FileId> {
        Ok(FileId::of_metadata(&std::fs::metadata(path)?))
    }

    /// The identity from metadata already at hand (fstat of an open file).
    pub fn of_metadata(meta: &std::fs::Metadata) -> FileId {
        let dev = meta.dev();
        FileId {
            major: nix::sys::stat::major(dev) as u32,
            minor: nix::sys::stat::minor(dev) as u32,
            inode: meta.ino(),
        }
    }

    /// Whether a /proc/locks line is about this file.
    pub fn matches(&self, entry: &LockEntry) -> bool {
        entry.major == self.major && entry.minor == self.minor && entry.inode == self.inode
    }
}

/// The entries about the file at `path`, matched on device and inode from stat(2).
///
/// On a stacking file system (overlayfs in a container) stat reports the overlay's device
/// while the lock sits on the underlying inode; when nothing matches on device and inode but
/// entries match on inode alone, those are returned instead.
pub fn for_path(entries: &[LockEntry], path: &Path) -> std::io::Result<Vec<LockEntry>> {
    Ok(for_file(entries, FileId::of_path(path)?))
}

/// Like [`for_path`] for a file identity already known.
pub fn for_file(entries: &[LockEntry], id: FileId) -> Vec<LockEntry> {
    let exact: Vec<LockEntry> = entries.iter().filter(|e| id.matches(e)).cloned().collect();
    if !exact.is_empty() {
        return exact;
    }
    entries
        .iter()
        .filter(|e| e.inode == id.inode)
        .cloned()
        .collect()
}

/// The entries for one file split the way a reader thinks of them: who holds it, and who
/// is queued behind them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockTable {
    /// Granted locks.
    pub holders: Vec<LockEntry>,
    /// `->` lines: processes blocked waiting.
    pub waiters: Vec<LockEntry>,
}

impl LockTable {
    /// Split entries into holders and waiters, keeping the kernel's order in each.
    pub fn split(entries: Vec<LockEntry>) -> LockTable {
        let (waiters, holders) = entries.into_iter().partition(|e| e.waiter);
        LockTable { holders, waiters }
    }

    /// True when the kernel shows no lock and no waiter on the file.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.waiters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy machine: a POSIX pid-file lock with two waiters, flock locks from a desktop, an
    /// OFD lock, a lease and a delegation, and the odd line a future kernel might print.
    const SAMPLE: &str = "\
1: POSIX  ADVISORY  WRITE 4242 fd:01:1310722 0 EOF
1: -> POSIX  ADVISORY  WRITE 4243 fd:01:1310722 0 EOF
1: -> POSIX  ADVISORY  WRITE 4244 fd:01:1310722 0 EOF
2: FLOCK  ADVISORY  WRITE 812 00:1a:2207 0 EOF
3: FLOCK  ADVISORY  READ 1290 103:02:8917345 0 EOF
4: OFDLCK ADVISORY  WRITE -1 fd:01:1310999 0 EOF
4: -> OFDLCK ADVISORY  WRITE -1 fd:01:1310999 0 EOF
5: POSIX  ADVISORY  READ 977 fd:01:555 128 255
6: LEASE  ACTIVE    READ 2001 fd:01:777 0 EOF
7: DELEG  ACTIVE    READ 1555 00:2e:91 0 EOF
8: LEASE  BREAKING  UNLCK 2002 fd:01:778 0 EOF
9: POSIX  MANDATORY WRITE 3000 08:01:42 0 EOF
10: FUTURE ADVISORY WRITE 1 08:01:43 0 EOF
";

    #[test]
    fn parses_every_well_formed_line() {
        let entries = parse(SAMPLE);
        assert_eq!(entries.len(), 13);
        assert_eq!(
            entries[0],
            LockEntry {
                id: 1,
                waiter: false,
                class: "POSIX".into(),
                mode: "ADVISORY".into(),
                access: "WRITE".into(),
                pid: 4242,
                major: 0xfd,
                minor: 1,
                inode: 1310722,
                start: 0,
                end: None,
            }
        );
    }

    #[test]
    fn waiter_lines_keep_the_id_of_the_lock_they_wait_for() {
        let entries = parse(SAMPLE);
        let waiters: Vec<_> = entries.iter().filter(|e| e.waiter).collect();
        assert_eq!(waiters.len(), 3);
        assert_eq!((waiters[0].id, waiters[0].pid), (1, 4243));
        assert_eq!((waiters[1].id, waiters[1].pid), (1, 4244));
        assert_eq!(waiters[2].class, "OFDLCK");
    }

    #[test]
    fn deeper_waiters_with_more_indentation_still_parse() {
        let entries = parse(
            "1: POSIX  ADVISORY  WRITE 10 fd:01:5 0 EOF\n1:  -> POSIX  ADVISORY  WRITE 11 fd:01:5 0 EOF\n",
        );
        assert_eq!(entries.len(), 2);
        assert!(entries[1].waiter);
    }

    #[test]
    fn ofd_locks_have_pid_minus_one() {
        let entries = parse(SAMPLE);
        let ofd = entries.iter().find(|e| e.class == "OFDLCK").unwrap();
        assert_eq!(ofd.pid, -1);
    }

    #[test]
    fn devices_are_hex_and_ranges_can_be_bounded() {
        let entries = parse(SAMPLE);
        let nvme = entries.iter().find(|e| e.pid == 1290).unwrap();
        assert_eq!((nvme.major, nvme.minor, nvme.inode), (0x103, 2, 8917345));
        let ranged = entries.iter().find(|e| e.pid == 977).unwrap();
        assert_eq!((ranged.start, ranged.end), (128, Some(255)));
        assert_eq!(ranged.access, "READ");
    }

    #[test]
    fn leases_delegations_and_unknown_classes_are_kept_raw() {
        let entries = parse(SAMPLE);
        let classes: Vec<&str> = entries.iter().map(|e| e.class.as_str()).collect();
        assert!(classes.contains(&"LEASE"));
        assert!(classes.contains(&"DELEG"));
        assert!(classes.contains(&"FUTURE"));
        let breaking = entries.iter().find(|e| e.pid == 2002).unwrap();
        assert_eq!(
            (breaking.mode.as_str(), breaking.access.as_str()),
            ("BREAKING", "UNLCK")
        );
        let mandatory = entries.iter().find(|e| e.pid == 3000).unwrap();
        assert_eq!(mandatory.mode, "MANDATORY");
    }

    #[test]
    fn garbage_is_skipped_without_panicking() {
        let text = "\
\n\
nonsense\n\
1:\n\
x: POSIX ADVISORY WRITE 1 fd:01:2 0 EOF\n\
2: POSIX ADVISORY WRITE notapid fd:01:2 0 EOF\n\
3: POSIX ADVISORY WRITE 5 <none> 0 EOF\n\
4: POSIX ADVISORY WRITE 5 zz:01:2 0 EOF\n\
5: POSIX ADVISORY WRITE 5 fd:01:2 0\n\
6: POSIX ADVISORY WRITE 5 fd:01:2 0 EOF trailing\n\
7: POSIX ADVISORY WRITE 5 fd:01:2:9 0 EOF\n\
8: -> \n\
9: POSIX ADVISORY WRITE 5 fd:01:2 0 -1\n\
10: POSIX ADVISORY WRITE 6 fd:01:2 0 EOF\n";
        let entries = parse(text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].pid, 6);
        assert!(parse("").is_empty());
        assert!(parse("\u{0}\u{ffff}: ->").is_empty());
    }

    #[test]
    fn display_round_trips_through_parse() {
        for entry in parse(SAMPLE) {
            let again = parse(&entry.to_string());
            assert_eq!(again, vec![entry]);
        }
    }

    #[test]
    fn table_splits_holders_from_waiters_for_one_file() {
        let entries = parse(SAMPLE);
        let id = FileId {
            major: 0xfd,
            minor: 1,
            inode: 1310722,
        };
        let table = LockTable::split(for_file(&entries, id));
        assert_eq!(table.holders.len(), 1);
        assert_eq!(table.holders[0].pid, 4242);
        assert_eq!(
            table.waiters.iter().map(|e| e.pid).collect::<Vec<_>>(),
            [4243, 4244]
        );
    }

    #[test]
    fn falls_back_to_the_inode_when_the_device_differs() {
        let entries = parse(SAMPLE);
        let overlay = FileId {
            major: 0,
            minor: 0x40,
            inode: 1310999,
        };
        assert_eq!(for_file(&entries, overlay).len(), 2);
    }

    #[test]
    fn fdinfo_lock_lines_parse_once_their_prefix_is_removed() {
        let fdinfo = "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t10010733\nlock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:10010733 0 EOF\n";
        let locks: String = fdinfo
            .lines()
            .filter_map(|l| l.strip_prefix("lock:"))
            .collect::<Vec<_>>()
            .join("\n");
        let entries = parse(&locks);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].inode, 10010733);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_lock_shaped_text(text in "([0-9]{1,3}: (-> )?[A-Z]{1,6} [A-Z]{1,9} [A-Z]{1,5} -?[0-9]{1,6} [0-9a-f:]{1,12} [0-9]{1,3} (EOF|[0-9]{1,4})\n){0,5}") {
            let _ = parse(&text);
        }
    }
}
