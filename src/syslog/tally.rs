//! One way of counting what a syslogd received, for every view of it: the explorer's
//! Syslog pane, `daemonlab syslogd` and its summary on exit. Each view reads the
//! receiver's ring through its own [`Cursor`], so what it missed (the ring moved on before
//! it looked: a flood, a slow pipe) is counted as dropped by the lab, never lost silently.

use std::fmt;

use serde::Serialize;

/// What happened to every message a receiver got, as one view (pane or sink) saw it.
///
/// `received = shown + folded + dropped` holds after every read: each datagram was either
/// handed to the view, absorbed into a "last message repeated N times" entry, or pushed out
/// of the ring before the view read it. `malformed` and `truncated` are notes about some of
/// the received ones, not further buckets. `kernel_dropped` never reached the receiver, so
/// it is outside `received`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Datagrams (and kernel records) the receiver read.
    pub received: u64,
    /// Of those, how many the view got (printed, or taken into the pane).
    pub shown: u64,
    /// Repeats absorbed into a "last message repeated N times" entry.
    pub folded: u64,
    /// Messages the lab dropped: the ring was full before the view read them.
    pub dropped: u64,
    /// Of the received ones, how many had no valid PRI or could not be parsed.
    pub malformed: u64,
    /// Of the received ones, how many were longer than the receiver keeps, and were cut.
    pub truncated: u64,
    /// Dropped by the kernel before the receiver could read them (a full UDP receive
    /// queue, overwritten /dev/kmsg records). A Unix datagram socket does not drop: its
    /// senders block or get EAGAIN. `None` when it cannot be known.
    pub kernel_dropped: Option<u64>,
}

impl Tally {
    /// Whether every received message is accounted for.
    pub fn balanced(&self) -> bool {
        self.received == self.shown + self.folded + self.dropped
    }

    /// `10 received = 6 shown + 4 folded + 0 dropped`: the balance, short enough for a
    /// pane title.
    pub fn balance(&self) -> String {
        format!(
            "{} received = {} shown + {} folded + {} dropped",
            self.received, self.shown, self.folded, self.dropped
        )
    }
}

impl fmt::Display for Tally {
    /// The balance, then the notes: what a summary line says.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by the lab; {} malformed",
            self.balance(),
            self.malformed
        )?;
        if self.truncated > 0 {
            write!(f, ", {} truncated", self.truncated)?;
        }
        match self.kernel_dropped {
            Some(n) => write!(f, "; {n} dropped by the kernel"),
            None => write!(f, "; kernel drops unknown"),
        }
    }
}

/// A view's place in the receiver's ring and its tally so far. Pass it to
/// [`Feed::read`](super::receiver::Feed::read) each time the view wants what is new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The `seq` of the last entry read.
    pub(super) seq: u64,
    /// How many real (not "repeated") messages the ring had stored up to the last read.
    pub(super) stored: u64,
    /// Everything counted up to the last read.
    pub tally: Tally,
}

impl Cursor {
    /// A cursor before the first message.
    pub fn new() -> Cursor {
        Cursor::default()
    }
}
