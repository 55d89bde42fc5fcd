//! The session picture held to procps's `ps`, which reads every process.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use daemonlab::lab::{Lab, LabOptions, STEPS};
use daemonlab::probe::sessions::SessionPicture;

pub type Pid = i32;

/// Every process as `ps` lists it: pid → (ppid, pgid, sid, first letter of STAT).
/// `None`, after a loud SKIPPED, where procps is not installed.
pub fn ps_table() -> Option<BTreeMap<Pid, (Pid, Pid, Pid, char)>> {
    let out = match Command::new("ps")
        .args(["-e", "-o", "pid=,ppid=,pgid=,sid=,stat="])
        .output()
    {
        Ok(out) if out.status.success() => out,
        other => {
            eprintln!("SKIPPED: `ps` (procps) cannot run here ({other:?}): no comparison");
            return None;
        }
    };
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let n = |i: usize| f[i].parse::<Pid>().unwrap();
                (f.len() == 5).then(|| (n(0), (n(1), n(2), n(3), f[4].chars().next().unwrap())))
            })
            .collect(),
    )
}

/// The members of session `sid` as `ps` lists them: (pid, ppid, pgid, state).
pub fn ps_members(
    ps: &BTreeMap<Pid, (Pid, Pid, Pid, char)>,
    sid: Pid,
) -> BTreeSet<(Pid, Pid, Pid, char)> {
    ps.iter()
        .filter(|(_, row)| row.2 == sid)
        .map(|(&pid, &(ppid, pgid, _, state))| (pid, ppid, pgid, state))
        .collect()
}

/// The members of session `sid` as the picture draws them, in the same shape.
pub fn picture_members(pictures: &[SessionPicture], sid: Pid) -> BTreeSet<(Pid, Pid, Pid, char)> {
    pictures
        .iter()
        .filter(|s| s.sid == sid)
        .flat_map(|s| &s.groups)
        .flat_map(|g| {
            g.members
                .iter()
                .map(move |m| (m.pid, m.ppid, g.pgid, m.state))
        })
        .collect()
}

/// Whether `pgid` of session `sid` is orphaned by POSIX's rule, from `ps`'s rows: no
/// member has a parent in another group of the same session.
pub fn ps_orphaned(ps: &BTreeMap<Pid, (Pid, Pid, Pid, char)>, sid: Pid, pgid: Pid) -> bool {
    !ps.values()
        .filter(|row| row.2 == sid && row.1 == pgid)
        .any(|row| {
            ps.get(&row.0)
                .is_some_and(|parent| parent.2 == sid && parent.1 != pgid)
        })
}

/// The pictures against `ps`: the same members of every session drawn (zombies as
/// zombies), each group's orphaned flag by POSIX's rule, and the same sessions' leaders
/// alive or not.
pub fn assert_as_ps_lists(pictures: &[SessionPicture], ps: &BTreeMap<Pid, (Pid, Pid, Pid, char)>) {
    for s in pictures {
        // Running or sleeping may differ between the picture and ps a moment later (a
        // subject just done with its step); a zombie is one in both.
        let zombie_or_not = |members: BTreeSet<(Pid, Pid, Pid, char)>| -> BTreeSet<_> {
            members
                .into_iter()
                .map(|(pid, ppid, pgid, state)| (pid, ppid, pgid, state == 'Z'))
                .collect()
        };
        assert_eq!(
            zombie_or_not(picture_members(pictures, s.sid)),
            zombie_or_not(ps_members(ps, s.sid)),
            "session {} as drawn, then as ps lists it: {pictures:#?}",
            s.sid
        );
        for g in &s.groups {
            assert_eq!(
                g.orphaned,
                ps_orphaned(ps, s.sid, g.pgid),
                "group {}: {s:#?}",
                g.pgid
            );
        }
        let leader = ps.get(&s.sid).filter(|row| row.2 == s.sid && row.3 != 'Z');
        assert_eq!(s.leader_alive, leader.is_some(), "{s:#?}");
    }
}

/// Every step of the lab, its picture against `ps` right after the step (the subject is
/// waiting then, and nothing in its sessions moves).
pub fn every_step_is_drawn_as_ps_lists(subreaper: bool) {
    let Some(_) = ps_table() else { return };
    let mut lab = Lab::start(LabOptions {
        subreaper,
        ..LabOptions::with_exe(super::exe())
    })
    .expect("the lab starts");
    let mut seen = vec![lab.session_pid(), lab.subject_pid()];
    for step in STEPS.map(|s| s.id) {
        let outcome = lab.run(step).unwrap();
        seen.push(outcome.process.pid);
        let ps = ps_table().unwrap();
        assert!(!outcome.sessions.is_empty(), "{step:?}");
        assert_as_ps_lists(&outcome.sessions, &ps);
    }
    lab.shutdown();
    super::assert_all_gone(&seen);
}
