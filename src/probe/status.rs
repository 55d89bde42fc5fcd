//! `/proc/PID/status`: the only place the kernel shows the umask and full signal masks.

use super::signals::{RawMasks, parse_mask};
use super::{Pid, ProbeError};

/// What a snapshot needs from status; the memory and capability lines are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusFields {
    /// `None` on kernels before 4.7, which do not print the line.
    pub umask: Option<u32>,
    pub masks: RawMasks,
    /// `FDSize`: how many descriptors the fd table has room for, so every open
    /// descriptor's number is below it. `None` if the line is missing or garbled.
    pub fd_size: Option<usize>,
}

/// The `Tgid:` line: the process a task ID belongs to (the ID itself for a process).
pub(crate) fn parse_tgid(bytes: &[u8]) -> Option<Pid> {
    let line = bytes
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Tgid:"))?;
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// Parse the lines of status a snapshot uses. The signal masks are required (every
/// kernel prints them); their absence means the file is not what we think it is.
pub(crate) fn parse_status(pid: Pid, bytes: &[u8]) -> Result<StatusFields, ProbeError> {
    let bad = |detail: String| ProbeError::Parse {
        pid,
        what: format!("/proc/{pid}/status"),
        detail,
    };
    let mut umask = None;
    let mut fd_size = None;
    let (mut blocked, mut ignored, mut caught) = (None, None, None);
    for line in bytes.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let mask_of = |key: &str| {
            parse_mask(value).ok_or_else(|| {
                bad(format!(
                    "{key} is not a 64-bit hex mask: {:?}",
                    String::from_utf8_lossy(value)
                ))
            })
        };
        match key {
            b"Umask" => {
                umask = Some(parse_octal(value).ok_or_else(|| {
                    bad(format!(
                        "Umask is not octal: {:?}",
                        String::from_utf8_lossy(value)
                    ))
                })?);
            }
            b"FDSize" => {
                fd_size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            b"SigBlk" => blocked = Some(mask_of("SigBlk")?),
            b"SigIgn" => ignored = Some(mask_of("SigIgn")?),
            b"SigCgt" => {
                caught = Some(mask_of("SigCgt")?);
                // Umask and the other masks come earlier; the second half of the file
                // (capabilities, cpusets) is of no interest.
                break;
            }
            _ => {}
        }
    }
    match (blocked, ignored, caught) {
        (Some(blocked), Some(ignored), Some(caught)) => Ok(StatusFields {
            umask,
            masks: RawMasks {
                ignored,
                caught,
                blocked,
            },
            fd_size,
        }),
        _ => Err(bad("the SigBlk/SigIgn/SigCgt lines are missing".into())),
    }
}

fn parse_octal(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| match d {
        b'0'..=b'7' => Some((acc << 3) | u32::from(d - b'0')),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"Name:\tcat\nUmask:\t0027\nState:\tR (running)\nPid:\t6991\n\
FDSize:\t256\nSigQ:\t0/96365\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
SigBlk:\t0000000000010000\nSigIgn:\t0000000000000001\nSigCgt:\t0000000200004002\n\
CapInh:\t0000000000000000\n";

    #[test]
    fn umask_and_masks() {
        let st = parse_status(6991, STATUS).unwrap();
        assert_eq!(st.umask, Some(0o027));
        assert_eq!(st.fd_size, Some(256));
        assert_eq!(st.masks.ignored, 1);
        assert_eq!(st.masks.blocked, 1 << 16);
        assert_eq!(st.masks.caught, (1 << 1) | (1 << 14) | (1 << 33));
        let named = st.masks.named();
        assert_eq!(named.ignored, ["SIGHUP"]);
        assert_eq!(named.blocked, ["SIGCHLD"]);
        assert_eq!(named.caught, ["SIGINT", "SIGTERM", "SIGRTMIN"]);
    }

    #[test]
    fn thread_group_id() {
        let thread = b"Name:\tworker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4100\nNgid:\t0\nPid:\t4107\n";
        assert_eq!(parse_tgid(thread), Some(4100));
        assert_eq!(parse_tgid(STATUS), None, "no Tgid line");
        assert_eq!(parse_tgid(b"Tgid:\tfour\n"), None);
    }

    /// The kernel's own answer for this process and for one of its threads.
    #[test]
    fn tgid_of_a_live_thread() {
        let me = std::process::id() as Pid;
        assert_eq!(crate::probe::read_tgid(me), Some(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert_ne!(tid, me);
        assert_eq!(crate::probe::read_tgid(tid), Some(me));
        drop(done_tx);
        worker.join().unwrap();
        assert_eq!(crate::probe::read_tgid(-1), None);
    }

    #[test]
    fn old_kernel_without_umask() {
        let old = b"Name:\tcat\nSigBlk:\t0\nSigIgn:\t0\nSigCgt:\t0\n";
        assert_eq!(parse_status(1, old).unwrap().umask, None);
        assert_eq!(parse_status(1, old).unwrap().fd_size, None);
    }

    #[test]
    fn missing_masks_is_a_parse_error() {
        let err = parse_status(77, b"Name:\tcat\nUmask:\t0022\n").unwrap_err();
        assert!(matches!(err, ProbeError::Parse { pid: 77, .. }), "{err:?}");
        assert!(err.to_string().contains("/proc/77/status"));
    }

    #[test]
    fn garbled_umask_is_a_parse_error() {
        let bad = b"Umask:\t0089\nSigBlk:\t0\nSigIgn:\t0\nSigCgt:\t0\n";
        assert!(matches!(
            parse_status(3, bad),
            Err(ProbeError::Parse { pid: 3, .. })
        ));
    }
}
