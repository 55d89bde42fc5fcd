//! The Locks tab's state: the contenders, the kernel's lock table, and the pitfall shown.

use crate::locks::pitfalls::{Pitfall, PitfallReport};
use crate::locks::{ContenderInfo, ContenderState, Evidence, LockKind, LockMode};

/// The pitfalls in the order `X` steps through them.
pub const PITFALLS: [Pitfall; 4] = [
    Pitfall::StalePidFile,
    Pitfall::LockBeforeFork,
    Pitfall::CloseDropsLock,
    Pitfall::WaiterTakesOver,
];

/// What the Locks tab shows.
#[derive(Debug, Clone)]
pub struct LocksView {
    /// Kind and mode for the next contenders (`t`, `w`).
    pub kind: LockKind,
    pub mode: LockMode,
    pub contenders: Vec<ContenderInfo>,
    pub evidence: Option<Evidence>,
    /// The pitfall `x` runs; `X` picks the next.
    pub pitfall: usize,
    pub report: Option<PitfallReport>,
    /// A pitfall is running (it takes a moment).
    pub running: bool,
    /// Lines the evidence is scrolled down by.
    pub scroll: u16,
    /// `k` was pressed once while the lab's own subject held the lock: a second `k` kills it.
    pub confirm_kill: bool,
    /// The part `p` chose and `z` zooms: lock table 0, contenders 1, pitfall 2, syslog 3.
    pub focus: u8,
}

impl Default for LocksView {
    fn default() -> Self {
        LocksView {
            kind: LockKind::Fcntl,
            mode: LockMode::Try,
            contenders: Vec::new(),
            evidence: None,
            pitfall: 0,
            report: None,
            running: false,
            scroll: 0,
            confirm_kill: false,
            focus: 0,
        }
    }
}

impl LocksView {
    /// The pitfall `x` would run now.
    pub fn chosen_pitfall(&self) -> Pitfall {
        PITFALLS[self.pitfall % PITFALLS.len()]
    }

    /// How many contenders are in each state: holding, waiting, refused, ended.
    pub fn tally(&self) -> (usize, usize, usize, usize) {
        let mut tally = (0, 0, 0, 0);
        for c in &self.contenders {
            match c.state {
                ContenderState::Holding => tally.0 += 1,
                ContenderState::Waiting | ContenderState::Starting => tally.1 += 1,
                ContenderState::Refused { .. } => tally.2 += 1,
                ContenderState::Failed { .. } | ContenderState::Exited { .. } => tally.3 += 1,
            }
        }
        tally
    }
}

/// A pitfall's one-line title, for the tab before it has run.
pub fn pitfall_title(pitfall: Pitfall) -> &'static str {
    match pitfall {
        Pitfall::StalePidFile => "a stale pid file: the file proves nothing, the lock does",
        Pitfall::LockBeforeFork => "a lock taken before fork(): who holds it afterwards?",
        Pitfall::CloseDropsLock => "closing any descriptor of the file drops a POSIX lock",
        Pitfall::WaiterTakesOver => "a waiter is handed the lock the moment the holder dies",
    }
}
