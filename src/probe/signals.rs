//! Signal masks from `/proc/PID/status`, turned into names a learner can read.

use std::borrow::Cow;

use nix::sys::signal::Signal;

use super::{Disposition, SignalSets};

/// glibc reserves the kernel's first two realtime signals for itself (thread cancellation,
/// setxid), so the `SIGRTMIN` an application sees is 34.
const GLIBC_SIGRTMIN: u32 = 34;
/// Highest signal number whose bit fits in the 64-bit masks /proc prints on the
/// architectures this tool runs on.
const SIGRTMAX: u32 = 64;

/// Name of signal `n` as `kill -l` prints it: "SIGHUP", "SIG32", "SIGRTMIN+3", "SIGRTMAX".
///
/// Exists so masks, the UI and the reports all spell signals the same way. Numbers 1..=31
/// come from the platform's own table (so they stay right off x86); 32 and 33 are
/// glibc-internal and get plain numeric names.
pub fn signal_name(n: u32) -> Cow<'static, str> {
    match n {
        1..=31 => match i32::try_from(n).ok().and_then(|n| Signal::try_from(n).ok()) {
            Some(sig) => Cow::Borrowed(sig.as_str()),
            None => Cow::Owned(format!("SIG{n}")),
        },
        GLIBC_SIGRTMIN => Cow::Borrowed("SIGRTMIN"),
        SIGRTMAX => Cow::Borrowed("SIGRTMAX"),
        35..=63 => Cow::Owned(format!("SIGRTMIN+{}", n - GLIBC_SIGRTMIN)),
        _ => Cow::Owned(format!("SIG{n}")),
    }
}

/// Names of the signals set in a /proc mask (bit `n - 1` is signal `n`), lowest first.
///
/// Exists because a hex mask like `0000000000004a02` means nothing to a reader, while
/// "SIGHUP, SIGUSR1, SIGPIPE" does.
pub fn mask_names(mask: u64) -> Vec<String> {
    let mut names = Vec::with_capacity(mask.count_ones() as usize);
    let mut rest = mask;
    while rest != 0 {
        let bit = rest.trailing_zeros();
        names.push(signal_name(bit + 1).into_owned());
        rest &= rest - 1;
    }
    names
}

/// The three masks of one process, as read from status, before naming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawMasks {
    pub ignored: u64,
    pub caught: u64,
    pub blocked: u64,
}

impl RawMasks {
    pub(crate) fn disposition(&self, signal: u32) -> Disposition {
        let bit = 1u64 << (signal - 1);
        if self.ignored & bit != 0 {
            Disposition::Ignored
        } else if self.caught & bit != 0 {
            Disposition::Caught
        } else {
            Disposition::Default
        }
    }

    pub(crate) fn named(&self) -> SignalSets {
        SignalSets {
            ignored: mask_names(self.ignored),
            caught: mask_names(self.caught),
            blocked: mask_names(self.blocked),
        }
    }
}

/// Parse the hex digits of a `SigIgn:`-style value. `None` for anything that is not
/// 1..=16 hex digits, which is what a kernel with more than 64 signals (MIPS) would print.
pub(crate) fn parse_mask(hex: &[u8]) -> Option<u64> {
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    let mut value = 0u64;
    for &c in hex {
        let digit = (c as char).to_digit(16)?;
        value = (value << 4) | u64::from(digit);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sighup_alone() {
        let mask = parse_mask(b"0000000000000001").unwrap();
        assert_eq!(mask_names(mask), ["SIGHUP"]);
    }

    #[test]
    fn several_standard_signals_in_order() {
        // SIGINT (2), SIGQUIT (3), SIGPIPE (13), SIGCHLD (17).
        let mask = parse_mask(b"0000000000011006").unwrap();
        assert_eq!(
            mask_names(mask),
            ["SIGINT", "SIGQUIT", "SIGPIPE", "SIGCHLD"]
        );
    }

    #[test]
    fn realtime_and_glibc_internal_bits() {
        // Bits 31, 32, 33, 35, 63 = signals 32, 33, 34, 36, 64.
        let mask = parse_mask(b"8000000b80000000").unwrap();
        assert_eq!(
            mask_names(mask),
            ["SIG32", "SIG33", "SIGRTMIN", "SIGRTMIN+2", "SIGRTMAX"]
        );
    }

    #[test]
    fn every_standard_number_has_a_real_name() {
        for n in 1..=31 {
            let name = signal_name(n);
            assert!(name.starts_with("SIG"), "{n} -> {name}");
            assert!(
                !name[3..].chars().all(|c| c.is_ascii_digit()),
                "signal {n} fell back to a numeric name"
            );
        }
        assert_eq!(signal_name(1), "SIGHUP");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(63), "SIGRTMIN+29");
    }

    #[test]
    fn malformed_masks_are_rejected() {
        assert_eq!(parse_mask(b""), None);
        assert_eq!(parse_mask(b"00000000000000zz"), None);
        assert_eq!(parse_mask(b"00000000000000000000000000000001"), None);
    }

    #[test]
    fn disposition_follows_the_masks() {
        // Blocking is not a disposition: a blocked signal still has its default action.
        let masks = RawMasks {
            ignored: 0b001,
            caught: 0b010,
            blocked: 0b100,
        };
        assert_eq!(masks.disposition(1), Disposition::Ignored);
        assert_eq!(masks.disposition(2), Disposition::Caught);
        assert_eq!(masks.disposition(3), Disposition::Default);
    }
}
