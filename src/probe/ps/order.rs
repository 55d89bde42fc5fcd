//! Orderings of the table: sorted by a column, or as the process tree.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::format::cpu_seconds;
use super::{PsRow, SortKey};
use crate::probe::Pid;

pub(super) fn sort(rows: &mut [PsRow], key: SortKey) {
    match key {
        SortKey::Pid => rows.sort_unstable_by_key(|r| r.pid),
        SortKey::Ppid => rows.sort_unstable_by_key(|r| (r.ppid, r.pid)),
        SortKey::Sid => rows.sort_unstable_by_key(|r| (r.sid, r.pid)),
        SortKey::Command => rows.sort_by(|a, b| a.command.cmp(&b.command).then(a.pid.cmp(&b.pid))),
        SortKey::Time => rows.sort_by_cached_key(|r| (Reverse(cpu_seconds(&r.time)), r.pid)),
    }
}

pub(super) fn tree(rows: &[PsRow]) -> Vec<(usize, PsRow)> {
    let index: HashMap<Pid, usize> = rows.iter().enumerate().map(|(i, r)| (r.pid, i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); rows.len()];
    let mut roots = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match index.get(&r.ppid) {
            Some(&parent) if parent != i => children[parent].push(i),
            // ppid 0 (init, kthreadd), a parent that exited mid-read, or a row that
            // names itself as parent: nothing to hang it under.
            _ => roots.push(i),
        }
    }
    let by_pid = |&i: &usize| rows[i].pid;
    roots.sort_unstable_by_key(by_pid);
    for list in &mut children {
        list.sort_unstable_by_key(by_pid);
    }

    let mut out = Vec::with_capacity(rows.len());
    let mut seen = vec![false; rows.len()];
    let mut walk = |start: usize, out: &mut Vec<(usize, PsRow)>| {
        // Explicit stack: a fork chain thousands deep must not overflow ours.
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            out.push((depth, rows[i].clone()));
            stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
    };
    for &root in &roots {
        walk(root, &mut out);
    }
    // Rows caught in a parent cycle (impossible from /proc, possible from a caller's
    // hand-made rows) are still shown, each cycle from its lowest PID.
    let mut rest: Vec<usize> = (0..rows.len()).collect();
    rest.sort_unstable_by_key(by_pid);
    for i in rest {
        walk(i, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: Pid, ppid: Pid, time: &str, command: &str) -> PsRow {
        PsRow {
            pid,
            ppid,
            pgid: pid,
            sid: pid,
            tty: None,
            tpgid: -1,
            stat: "S".into(),
            uid: 0,
            time: time.into(),
            command: command.into(),
            kernel_thread: false,
            daemon_like: false,
            comm: command.into(),
            role: super::super::Role::Process,
            main_pid: pid,
        }
    }

    fn pids(rows: &[PsRow]) -> Vec<Pid> {
        rows.iter().map(|r| r.pid).collect()
    }

    #[test]
    fn sort_keys() {
        let mut rows = vec![
            row(30, 1, "0:05", "b"),
            row(10, 2, "12:00", "c"),
            row(20, 1, "2:00", "a"),
        ];
        sort(&mut rows, SortKey::Pid);
        assert_eq!(pids(&rows), [10, 20, 30]);
        sort(&mut rows, SortKey::Ppid);
        assert_eq!(pids(&rows), [20, 30, 10]);
        sort(&mut rows, SortKey::Command);
        assert_eq!(pids(&rows), [20, 30, 10]);
        // Most CPU first, and "12:00" beats "2:00" although it sorts lower as text.
        sort(&mut rows, SortKey::Time);
        assert_eq!(pids(&rows), [10, 20, 30]);
    }

    #[test]
    fn tree_is_depth_first_by_pid() {
        let rows = vec![
            row(1, 0, "0:00", "init"),
            row(2, 0, "0:00", "[kthreadd]"),
            row(50, 1, "0:00", "sshd"),
            row(7, 1, "0:00", "journald"),
            row(60, 50, "0:00", "bash"),
            row(3, 2, "0:00", "[kworker]"),
            row(99, 4242, "0:00", "orphan of a vanished parent"),
        ];
        let t: Vec<(usize, Pid)> = tree(&rows).into_iter().map(|(d, r)| (d, r.pid)).collect();
        assert_eq!(
            t,
            [(0, 1), (1, 7), (1, 50), (2, 60), (0, 2), (1, 3), (0, 99)]
        );
    }

    #[test]
    fn cycles_and_self_parents_still_appear_once() {
        let rows = vec![
            row(5, 6, "0:00", "a"),
            row(6, 5, "0:00", "b"),
            row(8, 8, "0:00", "c"),
        ];
        let t: Vec<(usize, Pid)> = tree(&rows).into_iter().map(|(d, r)| (d, r.pid)).collect();
        assert_eq!(t, [(0, 8), (0, 5), (1, 6)]);
    }
}
