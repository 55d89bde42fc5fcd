//! Turning the kernel's packed `tty_nr` into the name a user sees in `ps`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// First major number of the Unix98 pty slaves (`/dev/pts/N`); the kernel hands out eight
/// consecutive majors, 256 minors each, before it runs out.
const PTS_MAJOR_FIRST: u32 = 136;
const PTS_MAJOR_LAST: u32 = 143;
/// Virtual consoles (`tty0..63`) and 8250 serial ports (`ttyS0..`) share this major.
const TTY_MAJOR: u32 = 4;
/// `/dev/tty`, `/dev/console` and `/dev/ptmx` live here.
const TTYAUX_MAJOR: u32 = 5;
/// Serial ports start at this minor of [`TTY_MAJOR`].
const FIRST_SERIAL_MINOR: u32 = 64;

/// Split a `tty_nr` (field 7 of `/proc/PID/stat`) into `(major, minor)`.
///
/// Exists because the kernel packs the device number in the old glibc `dev_t` layout
/// (12-bit major in bits 8..20, 20-bit minor split around it), which is easy to get wrong;
/// the UI shows the pair when a terminal has no known name.
pub fn tty_major_minor(tty_nr: i32) -> (u32, u32) {
    // Work on the bit pattern: a negative i32 would sign-extend on the right shift.
    let nr = tty_nr as u32;
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    (major, minor)
}

/// Decode a `tty_nr` into the terminal's name as `ps` shows it ("pts/3", "tty1", "ttyS0",
/// "console"), or `None` when the process has no controlling terminal (`tty_nr == 0`).
///
/// Exists because losing the controlling terminal is the point of `setsid()` in a
/// daemon, and a name is what the learner recognises. Well-known majors are decoded
/// arithmetically (no I/O, so it is cheap enough for every snapshot); anything else is
/// looked up in `/dev` and `/dev/pts`, and failing that shown as `tty(MAJ,MIN)`.
pub fn tty_name(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let (major, minor) = tty_major_minor(tty_nr);
    if let Some(name) = well_known_name(major, minor) {
        return Some(name);
    }
    Some(find_in_dev(major, minor).unwrap_or_else(|| format!("tty({major},{minor})")))
}

/// Names that follow from the device number alone, per the kernel's devices.txt.
fn well_known_name(major: u32, minor: u32) -> Option<String> {
    match major {
        PTS_MAJOR_FIRST..=PTS_MAJOR_LAST => {
            Some(format!("pts/{}", (major - PTS_MAJOR_FIRST) * 256 + minor))
        }
        TTY_MAJOR if minor < FIRST_SERIAL_MINOR => Some(format!("tty{minor}")),
        TTY_MAJOR => Some(format!("ttyS{}", minor - FIRST_SERIAL_MINOR)),
        TTYAUX_MAJOR => match minor {
            0 => Some("tty".to_owned()),
            1 => Some("console".to_owned()),
            2 => Some("ptmx".to_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// Slow path for drivers with dynamic majors (USB serial, hvc, ...): the device node
/// whose rdev matches is the name udev gave it.
fn find_in_dev(major: u32, minor: u32) -> Option<String> {
    let wanted = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
    // /dev/pts first: ptys are by far the most common terminals.
    search_dir(Path::new("/dev/pts"), "pts/", wanted)
        .or_else(|| search_dir(Path::new("/dev"), "", wanted))
}

fn search_dir(dir: &Path, prefix: &str, wanted: u64) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        // DirEntry::metadata does not follow symlinks, so /dev/stdin and friends are
        // skipped instead of resolving to whatever our own stdin happens to be.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.file_type().is_char_device() && meta.rdev() == wanted {
            return Some(format!("{prefix}{}", entry.file_name().to_string_lossy()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pack (major, minor) the way the kernel does for stat's tty_nr.
    fn nr(major: u32, minor: u32) -> i32 {
        ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)) as i32
    }

    #[test]
    fn no_terminal_is_none() {
        assert_eq!(tty_name(0), None);
    }

    #[test]
    fn first_pty() {
        assert_eq!(nr(136, 0), 34816);
        assert_eq!(tty_name(34816).as_deref(), Some("pts/0"));
    }

    #[test]
    fn pty_beyond_the_first_major() {
        // pts/300 lives on the second pty major: 137 * 256 + (300 - 256).
        assert_eq!(tty_major_minor(nr(137, 44)), (137, 44));
        assert_eq!(tty_name(nr(137, 44)).as_deref(), Some("pts/300"));
    }

    #[test]
    fn virtual_console_and_serial_port() {
        assert_eq!(tty_name(nr(4, 1)).as_deref(), Some("tty1"));
        assert_eq!(tty_name(nr(4, 64)).as_deref(), Some("ttyS0"));
        assert_eq!(tty_name(nr(4, 65)).as_deref(), Some("ttyS1"));
    }

    #[test]
    fn console_tty_and_ptmx() {
        assert_eq!(tty_name(nr(5, 1)).as_deref(), Some("console"));
        assert_eq!(tty_name(nr(5, 0)).as_deref(), Some("tty"));
        assert_eq!(tty_name(nr(5, 2)).as_deref(), Some("ptmx"));
    }

    #[test]
    fn large_minor_uses_the_high_bits() {
        // Minor 0x12345 needs the split encoding: low byte in bits 0..8, rest above the major.
        let packed = nr(200, 0x12345);
        assert_eq!(tty_major_minor(packed), (200, 0x12345));
    }

    #[test]
    fn unknown_device_falls_back_to_numbers() {
        // Major 511 is reserved for local/experimental use; nothing in /dev should have it.
        assert_eq!(tty_name(nr(511, 7)).as_deref(), Some("tty(511,7)"));
    }
}
