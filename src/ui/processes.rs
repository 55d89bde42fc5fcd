//! The Processes and Inspect tabs' state: the system in `ps -axj` columns, and the daemon
//! checklist for one PID.

use crate::audit::Audit;
use crate::probe::ps::{PsRow, SortKey};

/// The order `s` steps through.
pub const SORTS: [SortKey; 5] = [
    SortKey::Pid,
    SortKey::Ppid,
    SortKey::Sid,
    SortKey::Command,
    SortKey::Time,
];

/// What the Processes tab shows.
#[derive(Debug, Clone, Default)]
pub struct ProcessesView {
    pub rows: Vec<PsRow>,
    pub hide_kernel: bool,
    pub filter: String,
    /// Typing into the filter (after `/`).
    pub filtering: bool,
    pub sort: usize,
    pub tree: bool,
    /// Index into the visible rows.
    pub selected: usize,
}

impl ProcessesView {
    /// The rows to draw, after the kernel-thread switch, the filter, the sort or the tree;
    /// each with its tree depth (0 when flat).
    pub fn visible(&self) -> Vec<(usize, &PsRow)> {
        let needle = self.filter.to_lowercase();
        let keep = |r: &PsRow| {
            (!self.hide_kernel || !r.kernel_thread)
                && (needle.is_empty()
                    || r.command.to_lowercase().contains(&needle)
                    || r.pid.to_string() == needle)
        };
        if self.tree {
            let tree = crate::probe::ps::tree(&self.rows);
            let pids: Vec<(usize, i32)> = tree
                .iter()
                .filter(|(_, r)| keep(r))
                .map(|(d, r)| (*d, r.pid))
                .collect();
            return pids
                .into_iter()
                .filter_map(|(d, pid)| self.rows.iter().find(|r| r.pid == pid).map(|r| (d, r)))
                .collect();
        }
        let mut rows: Vec<&PsRow> = self.rows.iter().filter(|r| keep(r)).collect();
        let key = SORTS[self.sort % SORTS.len()];
        rows.sort_by(|a, b| match key {
            SortKey::Pid => a.pid.cmp(&b.pid),
            SortKey::Ppid => a.ppid.cmp(&b.ppid).then(a.pid.cmp(&b.pid)),
            SortKey::Sid => a.sid.cmp(&b.sid).then(a.pid.cmp(&b.pid)),
            SortKey::Command => a.command.cmp(&b.command),
            SortKey::Time => b.time.len().cmp(&a.time.len()).then(b.time.cmp(&a.time)),
        });
        rows.into_iter().map(|r| (0, r)).collect()
    }

    /// The PID under the cursor.
    pub fn selected_pid(&self) -> Option<i32> {
        self.visible().get(self.selected).map(|(_, r)| r.pid)
    }
}

/// What the Inspect tab shows.
#[derive(Debug, Clone, Default)]
pub struct InspectView {
    /// The PID chosen in the Processes tab; `None` follows the lab's own daemon.
    pub pid: Option<i32>,
    pub audit: Option<Audit>,
    pub error: Option<String>,
}
