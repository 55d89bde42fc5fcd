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
    /// Live processes this lab started: the rows marked "lab" (another student's lab on the
    /// same machine is not ours).
    pub ours: Vec<i32>,
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
            let by_pid: std::collections::HashMap<i32, &PsRow> =
                self.rows.iter().map(|r| (r.pid, r)).collect();
            // A row's indent counts only its ancestors that are shown, so a filter does not
            // leave commands pushed far right by hidden parents.
            let mut shown_ancestors: Vec<usize> = Vec::new();
            let mut visible = Vec::new();
            for (depth, row) in crate::probe::ps::tree(&self.rows) {
                while shown_ancestors.last().is_some_and(|d| *d >= depth) {
                    shown_ancestors.pop();
                }
                if keep(&row) {
                    if let Some(r) = by_pid.get(&row.pid) {
                        visible.push((shown_ancestors.len(), *r));
                    }
                    shown_ancestors.push(depth);
                }
            }
            return visible;
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
    /// Rows the checklist is scrolled down by (clamped when drawn).
    pub scroll: u16,
}

#[cfg(test)]
mod tests {
    use super::ProcessesView;
    use crate::ui::fixtures::ps_row;

    fn view() -> ProcessesView {
        ProcessesView {
            rows: vec![
                ps_row(1, 0, 1, 1, None, "Ss", "/sbin/init"),
                ps_row(10, 1, 10, 10, Some("pts/0"), "Ss", "-bash"),
                ps_row(20, 10, 20, 10, Some("pts/0"), "S+", "daemonlab"),
                ps_row(30, 20, 30, 30, Some("pts/1"), "Ss", "daemonlab __session"),
                ps_row(40, 30, 40, 30, None, "S", "daemonlab __subject"),
                ps_row(50, 10, 50, 10, Some("pts/0"), "S", "vim"),
            ],
            tree: true,
            ..ProcessesView::default()
        }
    }

    fn depths(view: &ProcessesView) -> Vec<(i32, usize)> {
        view.visible().iter().map(|(d, r)| (r.pid, *d)).collect()
    }

    #[test]
    fn tree_depth_counts_only_shown_ancestors() {
        let mut view = view();
        assert_eq!(
            depths(&view),
            [(1, 0), (10, 1), (20, 2), (30, 3), (40, 4), (50, 2)]
        );
        view.filter = "daemonlab".into();
        assert_eq!(depths(&view), [(20, 0), (30, 1), (40, 2)]);
        view.filter = "__subject".into();
        assert_eq!(depths(&view), [(40, 0)]);
    }
}
