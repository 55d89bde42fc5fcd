//! Sessions and process groups as the chapter's figures draw them (APUE 9.4–9.6, 13.3):
//! every session that holds a lab process, its groups, their members, the controlling
//! terminal and its foreground group, which groups are orphaned (APUE 9.10), and who
//! adopted a process whose parent exited.
//!
//! A pass over /proc reads the stat lines of the processes that can be in those sessions
//! (found by parent chains and children lists, see [`scan`]; the same splitter the
//! snapshot uses); [`picture`] is a pure function of those rows, so it is tested on
//! synthetic process tables.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};

use serde::Serialize;

use super::read::{NumberName, Scratch, list_numbers, open_listable, open_read, read_at};
use super::shares::in_shares;
use super::stat::parse_int;
use super::{Adopter, Pid, ProcStat, parse_stat, tty_name};

/// A lab process the picture is about, and who created it when the lab knows.
///
/// Exists because /proc only says who the parent is *now*: with the birth parent the
/// picture can tell an adopted process from one still under its creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    pub pid: Pid,
    /// The process that forked it; `None` when the lab did not see the fork (the stand-in).
    pub birth_parent: Option<Pid>,
}

/// One session: its leader, its terminal, its groups.
///
/// Exists as an owned value so the TUI pane, the text tour and the JSON all draw the
/// same thing from one /proc pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionPicture {
    /// The session ID, which is the PID of the process that called `setsid()`.
    pub sid: Pid,
    /// Equals `sid`: the leader is named by the session, even after it exits.
    pub leader_pid: Pid,
    /// Whether the leader is still running: not exited, and not a zombie.
    pub leader_alive: bool,
    /// The controlling terminal ("pts/3"); `None` for a session without one.
    pub tty: Option<String>,
    /// The terminal's foreground process group (TPGID); `None` without a terminal.
    pub foreground_pgid: Option<Pid>,
    /// The groups, by ascending PGID.
    pub groups: Vec<GroupPicture>,
    /// The process outside the session that adopted one of its lab processes after the
    /// parent exited: PID 1 or the nearest subreaper.
    pub adopter: Option<Adopter>,
    /// The lab processes of this session that [`SessionPicture::adopter`] took over.
    pub adopted: Vec<Pid>,
    /// Members of this session in the previous picture that have exited since, shown
    /// once, faded, with who adopted their children.
    pub gone: Vec<GoneProcess>,
}

/// One process group of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPicture {
    /// The group ID, the PID of the process that created it.
    pub pgid: Pid,
    /// Equals `pgid`: a group keeps its leader's number after the leader is gone.
    pub leader_pid: Pid,
    /// Whether a member that is not a zombie has `pid == pgid`.
    pub leader_alive: bool,
    /// POSIX's orphaned process group: no member has a parent in a different group of
    /// the same session, so no job-control shell can look after it (APUE 9.10).
    pub orphaned: bool,
    /// By ascending PID.
    pub members: Vec<MemberPicture>,
}

/// One process in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPicture {
    pub pid: Pid,
    pub ppid: Pid,
    /// The command name, as the kernel keeps it (15 bytes at most).
    pub comm: String,
    /// The one-letter scheduler state ('S', 'Z', ...), see [`super::state_name`].
    pub state: char,
}

/// A process that was in the previous picture and has exited since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoneProcess {
    pub pid: Pid,
    pub comm: String,
    /// The group it was in, so it can be drawn where it was.
    pub pgid: Pid,
    /// Its children that are still alive, now with another parent.
    pub children: Vec<Pid>,
    /// Who took them over; every orphan of one parent goes to the same reaper.
    pub adopted_by: Option<Adopter>,
}

/// Draw the sessions holding `interest` from /proc as it is now.
///
/// `previous` is the picture from the step before (empty at the start): processes in it
/// that are gone now appear in [`SessionPicture::gone`]. Processes that exit during the
/// pass are left out; fails only when /proc cannot be listed.
///
/// The rows read are those the picture can need, found from `interest` outwards
/// ([`related_rows`]), so a step costs the same on a machine of 70 processes and one of
/// 2 000 (`cargo bench --bench lab`, `busy_non_fork_step`); where the kernel has no
/// children lists, or a process on the way exits mid-pass, it reads every process
/// instead ([`scan_everything`]), which draws the same picture.
pub fn scan(
    interest: &[Interest],
    previous: &[SessionPicture],
) -> std::io::Result<Vec<SessionPicture>> {
    match related_rows(interest, previous) {
        Some(rows) => Ok(picture(&rows, interest, previous)),
        None => scan_everything(interest, previous),
    }
}

/// [`scan`] by reading every process's stat line: the picture by its definition, kept as
/// the fallback and as what tests hold [`scan`] to.
pub fn scan_everything(
    interest: &[Interest],
    previous: &[SessionPicture],
) -> std::io::Result<Vec<SessionPicture>> {
    let mut pids = Vec::new();
    let proc_dir = list_numbers(nix::fcntl::AT_FDCWD, c"/proc", &mut pids)
        .map_err(|e| std::io::Error::other(format!("cannot list /proc: {e}")))?;
    pids.sort_unstable();
    let rows = read_rows(proc_dir.as_fd(), &pids);
    Ok(picture(&rows, interest, previous))
}

/// The stat lines of `pids` that can be read, in order: one open of "PID/stat" below
/// `proc` into a reused buffer, shared out among the cores when there are many.
fn read_rows(proc: BorrowedFd<'_>, pids: &[Pid]) -> Vec<ProcStat> {
    in_shares(pids, 64, |part| {
        let (mut scratch, mut name) = (Scratch::new(), NumberName::new());
        part.iter()
            .filter_map(|&pid| {
                let bytes = read_at(proc, name.of(pid, b"/stat"), &mut scratch);
                parse_stat(pid, bytes.ok()?).ok()
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Every row [`picture`] can look at, without reading the whole machine: `None` when
/// this pass cannot vouch for that, and the caller reads every process instead.
///
/// Membership of a session passes only by fork, and a process whose parent exits is
/// adopted by its nearest living subreaper ancestor or by init; a living subreaper
/// above a process stays above it. So every member of a session holding an `interest`
/// process is a child of another member, or of a process on the parent chain of an
/// `interest` process. The pass reads the `interest` processes, the previous picture's
/// members, those chains up to init, then the children of every chain process and of
/// every member found (each thread's `task/TID/children`, Linux 3.5+ with
/// CONFIG_PROC_CHILDREN), and last the parent of every row read, which the orphaned-
/// group rule and the adopter's name need.
fn related_rows(interest: &[Interest], previous: &[SessionPicture]) -> Option<Vec<ProcStat>> {
    if !children_listed() {
        return None;
    }
    let proc = open_listable(nix::fcntl::AT_FDCWD, c"/proc").ok()?;
    let proc = proc.as_fd();
    let mut table: BTreeMap<Pid, ProcStat> = BTreeMap::new();
    let add = |table: &mut BTreeMap<Pid, ProcStat>, pids: &[Pid]| {
        table.extend(read_rows(proc, pids).into_iter().map(|row| (row.pid, row)));
    };
    let mut seeds: Vec<Pid> = interest.iter().map(|i| i.pid).collect();
    seeds.extend(
        previous
            .iter()
            .flat_map(|s| &s.groups)
            .flat_map(|g| &g.members)
            .map(|m| m.pid),
    );
    seeds.sort_unstable();
    seeds.dedup();
    add(&mut table, &seeds);
    let sids: Vec<Pid> = interest
        .iter()
        .filter_map(|i| table.get(&i.pid))
        .map(|row| row.sid)
        .filter(|&sid| sid > 0)
        .collect();
    // The parent chains of the interest processes, up to init (ppid 0).
    let mut chain: Vec<Pid> = Vec::new();
    for i in interest {
        let mut at = i.pid;
        while let Some(row) = table.get(&at) {
            chain.push(at);
            let up = row.ppid;
            if up <= 0 || chain.contains(&up) {
                break;
            }
            if !table.contains_key(&up) {
                add(&mut table, &[up]);
                // An ancestor gone between two reads leaves its children with a new
                // parent this pass may not see.
                table.get(&up)?;
            }
            at = up;
        }
    }
    let member = |table: &BTreeMap<Pid, ProcStat>, pid: &Pid| {
        table.get(pid).is_some_and(|row| sids.contains(&row.sid))
    };
    let mut queue: Vec<Pid> = chain.clone();
    queue.extend(table.keys().filter(|pid| member(&table, pid)));
    let mut expanded = std::collections::BTreeSet::new();
    let mut children = Vec::new();
    while let Some(pid) = queue.pop() {
        if !expanded.insert(pid) {
            continue;
        }
        children.clear();
        children_of(proc, pid, &mut children)?;
        let new: Vec<Pid> = children
            .iter()
            .copied()
            .filter(|c| !table.contains_key(c))
            .collect();
        add(&mut table, &new);
        queue.extend(children.iter().filter(|c| member(&table, c)));
    }
    let mut parents: Vec<Pid> = table
        .values()
        .map(|row| row.ppid)
        .filter(|ppid| *ppid > 0 && !table.contains_key(ppid))
        .collect();
    parents.sort_unstable();
    parents.dedup();
    add(&mut table, &parents);
    Some(table.into_values().collect())
}

/// Whether this kernel lists a task's children in /proc (`task/TID/children`, which
/// needs CONFIG_PROC_CHILDREN); checked once, on the calling thread.
fn children_listed() -> bool {
    static LISTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTED.get_or_init(|| {
        let tid = nix::unistd::gettid();
        std::path::Path::new(&format!("/proc/self/task/{tid}/children")).exists()
    })
}

/// Append the children of every thread of `pid` to `out`; `None` if a list cannot be
/// read, the process having exited, say, and its children having moved to a parent this
/// pass may already have read.
fn children_of(proc: BorrowedFd<'_>, pid: Pid, out: &mut Vec<Pid>) -> Option<()> {
    let mut name = NumberName::new();
    let mut tids = Vec::new();
    let task = list_numbers(proc, name.of(pid, b"/task"), &mut tids).ok()?;
    let mut text = Vec::with_capacity(256);
    for tid in tids {
        let file = open_read(task.as_fd(), name.of(tid, b"/children")).ok()?;
        text.clear();
        // Not a single record: one read may stop short of the end, so read until 0.
        std::io::Read::read_to_end(&mut &file, &mut text).ok()?;
        out.extend(
            text.split(|b| b.is_ascii_whitespace())
                .filter_map(parse_int),
        );
    }
    Some(())
}

/// The sessions holding any of `interest`, drawn from the process table `rows`.
///
/// Sessions come in the order of `interest` (the stand-in's first, then the subject's
/// when it has left); the terminal's name is decoded from `tty_nr`.
pub fn picture(
    rows: &[ProcStat],
    interest: &[Interest],
    previous: &[SessionPicture],
) -> Vec<SessionPicture> {
    let by_pid: BTreeMap<Pid, &ProcStat> = rows.iter().map(|r| (r.pid, r)).collect();
    let adopter_named = |pid: Pid| Adopter {
        pid,
        comm: by_pid
            .get(&pid)
            .map(|r| r.comm.clone())
            .unwrap_or_else(|| "?".into()),
    };
    let mut sids: Vec<Pid> = Vec::new();
    for i in interest {
        if let Some(r) = by_pid.get(&i.pid)
            && r.sid > 0
            && !sids.contains(&r.sid)
        {
            sids.push(r.sid);
        }
    }
    let previous_members: BTreeMap<Pid, (Pid, &MemberPicture)> = previous
        .iter()
        .flat_map(|s| {
            s.groups
                .iter()
                .flat_map(move |g| g.members.iter().map(move |m| (m.pid, (s.sid, m))))
        })
        .collect();

    sids.iter()
        .map(|&sid| {
            let members: Vec<&ProcStat> = rows.iter().filter(|r| r.sid == sid).collect();
            let mut pgids: Vec<Pid> = members.iter().map(|r| r.pgid).collect();
            pgids.sort_unstable();
            pgids.dedup();
            let groups = pgids
                .iter()
                .map(|&pgid| {
                    let mut in_group: Vec<&ProcStat> =
                        members.iter().copied().filter(|r| r.pgid == pgid).collect();
                    in_group.sort_by_key(|r| r.pid);
                    let orphaned = !in_group.iter().any(|m| {
                        by_pid
                            .get(&m.ppid)
                            .is_some_and(|p| p.sid == sid && p.pgid != pgid)
                    });
                    GroupPicture {
                        pgid,
                        leader_pid: pgid,
                        leader_alive: in_group.iter().any(|m| m.pid == pgid && m.state != 'Z'),
                        orphaned,
                        members: in_group
                            .iter()
                            .map(|m| MemberPicture {
                                pid: m.pid,
                                ppid: m.ppid,
                                comm: m.comm.clone(),
                                state: m.state,
                            })
                            .collect(),
                    }
                })
                .collect();
            // Every member shares the session's terminal; the leader's word is best. A
            // zombie has let go of it.
            let leader = by_pid
                .get(&sid)
                .copied()
                .filter(|r| r.sid == sid && r.state != 'Z');
            let holder = leader.or_else(|| {
                members
                    .iter()
                    .copied()
                    .find(|r| r.state != 'Z' && r.tty_nr != 0)
            });
            let tty = holder.and_then(|r| tty_name(r.tty_nr));
            let foreground_pgid = holder
                .filter(|r| r.tty_nr != 0 && r.tpgid > 0)
                .map(|r| r.tpgid);
            let adopted: Vec<&ProcStat> = interest
                .iter()
                .filter_map(|i| {
                    let r = by_pid.get(&i.pid).filter(|r| r.sid == sid)?;
                    let born_of = i.birth_parent?;
                    (r.ppid != born_of && r.ppid > 0).then_some(*r)
                })
                .collect();
            let adopter = adopted.first().map(|r| adopter_named(r.ppid));
            let gone = previous_members
                .iter()
                .filter(|(pid, (was_in, _))| *was_in == sid && !by_pid.contains_key(pid))
                .map(|(&pid, (_, m))| {
                    let children: Vec<&ProcStat> = rows
                        .iter()
                        .filter(|r| r.ppid != pid)
                        .filter(|r| {
                            previous_members
                                .get(&r.pid)
                                .is_some_and(|(_, before)| before.ppid == pid)
                                || interest
                                    .iter()
                                    .any(|i| i.pid == r.pid && i.birth_parent == Some(pid))
                        })
                        .collect();
                    let pgid = previous
                        .iter()
                        .flat_map(|s| &s.groups)
                        .find(|g| g.members.iter().any(|x| x.pid == pid))
                        .map_or(pid, |g| g.pgid);
                    GoneProcess {
                        pid,
                        comm: m.comm.clone(),
                        pgid,
                        children: children.iter().map(|r| r.pid).collect(),
                        adopted_by: children.first().map(|r| adopter_named(r.ppid)),
                    }
                })
                .collect();
            SessionPicture {
                sid,
                leader_pid: sid,
                leader_alive: leader.is_some(),
                tty,
                foreground_pgid,
                groups,
                adopter,
                adopted: adopted.iter().map(|r| r.pid).collect(),
                gone,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pts/3, packed as the kernel packs it.
    const PTS3: i32 = (136 << 8) | 3;

    fn row(pid: Pid, ppid: Pid, pgid: Pid, sid: Pid, tty: bool, tpgid: Pid) -> ProcStat {
        ProcStat {
            pid,
            comm: if pid == 1 { "systemd" } else { "daemonlab" }.into(),
            state: 'S',
            ppid,
            pgid,
            sid,
            tty_nr: if tty { PTS3 } else { 0 },
            tpgid: if tty { tpgid } else { -1 },
        }
    }

    /// init, a login shell's session running the lab, and the lab's pty session.
    fn system(extra: &[ProcStat]) -> Vec<ProcStat> {
        let mut rows = vec![
            row(1, 0, 1, 1, false, -1),
            row(1500, 1, 1500, 1500, false, -1),
            row(1620, 1500, 1620, 1500, false, -1),
            row(4200, 1620, 4200, 4200, true, 4201),
        ];
        rows.extend_from_slice(extra);
        rows
    }

    fn interest(subject: Pid, born_of: Pid) -> [Interest; 2] {
        [
            Interest {
                pid: 4200,
                birth_parent: None,
            },
            Interest {
                pid: subject,
                birth_parent: Some(born_of),
            },
        ]
    }

    fn members(group: &GroupPicture) -> Vec<Pid> {
        group.members.iter().map(|m| m.pid).collect()
    }

    #[test]
    fn a_shell_job_is_a_foreground_group_that_is_not_orphaned() {
        let rows = system(&[row(4201, 4200, 4201, 4200, true, 4201)]);
        let pictures = picture(&rows, &interest(4201, 4200), &[]);
        assert_eq!(pictures.len(), 1, "one session holds both: {pictures:?}");
        let s = &pictures[0];
        assert_eq!((s.sid, s.leader_pid, s.leader_alive), (4200, 4200, true));
        assert_eq!(s.tty.as_deref(), Some("pts/3"));
        assert_eq!(s.foreground_pgid, Some(4201));
        assert_eq!(s.adopter, None);
        let pgids: Vec<Pid> = s.groups.iter().map(|g| g.pgid).collect();
        assert_eq!(pgids, [4200, 4201]);
        // The shell's parent is in another session: its group is orphaned, as a login
        // shell's is. The job's parent is the shell, in another group of this session.
        assert!(s.groups[0].orphaned);
        assert!(!s.groups[1].orphaned);
        assert!(s.groups[1].leader_alive);
        assert_eq!(members(&s.groups[1]), [4201]);
    }

    #[test]
    fn after_the_first_fork_the_child_is_adopted_and_its_group_orphaned() {
        let before = picture(
            &system(&[row(4201, 4200, 4201, 4200, true, 4201)]),
            &interest(4201, 4200),
            &[],
        );
        let mut rows = system(&[row(4213, 1, 4201, 4200, true, 4200)]);
        rows[3].tpgid = 4200;
        let pictures = picture(&rows, &interest(4213, 4201), &before);
        let s = &pictures[0];
        assert_eq!(
            s.foreground_pgid,
            Some(4200),
            "the shell took the terminal back"
        );
        let job = &s.groups[1];
        assert_eq!(job.pgid, 4201);
        assert!(!job.leader_alive, "the group outlives its leader");
        assert!(
            job.orphaned,
            "the child's parent is init, outside the session"
        );
        assert_eq!(members(job), [4213]);
        assert_eq!(
            s.adopter,
            Some(Adopter {
                pid: 1,
                comm: "systemd".into()
            })
        );
        assert_eq!(s.adopted, [4213]);
        assert_eq!(s.gone.len(), 1, "{:?}", s.gone);
        let gone = &s.gone[0];
        assert_eq!((gone.pid, gone.pgid), (4201, 4201));
        assert_eq!(gone.children, [4213]);
        assert_eq!(gone.adopted_by.as_ref().map(|a| a.pid), Some(1));

        // One step later the exited process is no longer mentioned.
        let again = picture(&rows, &interest(4213, 4201), &pictures);
        assert!(again[0].gone.is_empty());
    }

    #[test]
    fn setsid_makes_a_second_session_without_a_terminal() {
        let rows = system(&[row(4213, 1, 4213, 4213, false, -1)]);
        let pictures = picture(&rows, &interest(4213, 4201), &[]);
        assert_eq!(pictures.len(), 2);
        assert_eq!(pictures[0].sid, 4200);
        assert_eq!(pictures[0].groups.len(), 1, "only the shell is left");
        let s = &pictures[1];
        assert_eq!((s.sid, s.leader_alive), (4213, true));
        assert_eq!((s.tty.as_deref(), s.foreground_pgid), (None, None));
        assert_eq!(s.groups.len(), 1);
        assert!(
            s.groups[0].orphaned,
            "alone in its session: no parent in another group"
        );
        assert_eq!(s.adopter.as_ref().map(|a| a.pid), Some(1));
    }

    #[test]
    fn second_fork_leaves_a_session_whose_leader_is_gone() {
        let before = picture(
            &system(&[row(4213, 1, 4213, 4213, false, -1)]),
            &interest(4213, 4201),
            &[],
        );
        let rows = system(&[row(4220, 1, 4213, 4213, false, -1)]);
        let pictures = picture(&rows, &interest(4220, 4213), &before);
        let s = &pictures[1];
        assert_eq!((s.sid, s.leader_pid, s.leader_alive), (4213, 4213, false));
        assert!(!s.groups[0].leader_alive);
        assert_eq!(members(&s.groups[0]), [4220]);
        assert_eq!(s.gone.len(), 1);
        assert_eq!(s.gone[0].pid, 4213);
        assert_eq!(s.gone[0].children, [4220]);
    }

    #[test]
    fn a_zombie_leader_is_not_alive_but_still_a_member() {
        let mut zombie = row(4213, 1, 4213, 4213, false, -1);
        zombie.state = 'Z';
        let rows = system(&[zombie, row(4220, 4213, 4213, 4213, false, -1)]);
        let pictures = picture(&rows, &interest(4220, 4213), &[]);
        let s = &pictures[1];
        assert!(!s.leader_alive && !s.groups[0].leader_alive);
        assert_eq!(members(&s.groups[0]), [4213, 4220]);
        assert!(s.adopter.is_none(), "its parent has not exited yet");
    }

    #[test]
    fn a_group_with_a_parent_in_another_group_of_the_session_is_not_orphaned() {
        // A pipeline's second member was forked by a process of another group here.
        let rows = system(&[
            row(4201, 4200, 4201, 4200, true, 4201),
            row(4202, 4201, 4202, 4200, true, 4201),
            row(4203, 4202, 4202, 4200, true, 4201),
        ]);
        let pictures = picture(&rows, &interest(4203, 4202), &[]);
        let g = pictures[0].groups.iter().find(|g| g.pgid == 4202).unwrap();
        assert!(!g.orphaned);
        assert_eq!(members(g), [4202, 4203]);
        // Its parent in the same group does not count: only another group of the session.
        let rows = system(&[
            row(4202, 1, 4202, 4200, true, 4201),
            row(4203, 4202, 4202, 4200, true, 4201),
        ]);
        let pictures = picture(&rows, &interest(4203, 4202), &[]);
        let g = pictures[0].groups.iter().find(|g| g.pgid == 4202).unwrap();
        assert!(g.orphaned);
    }

    #[test]
    fn a_stranger_in_no_session_of_interest_is_left_out() {
        let rows = system(&[row(4201, 4200, 4201, 4200, true, 4201)]);
        let pictures = picture(&rows, &interest(4201, 4200), &[]);
        assert!(pictures.iter().all(|s| {
            s.groups
                .iter()
                .all(|g| g.members.iter().all(|m| m.pid > 1600))
        }));
        assert!(picture(&rows, &[], &[]).is_empty());
    }

    #[test]
    fn json_keys_are_the_ones_the_issue_lists() {
        let rows = system(&[row(4201, 4200, 4201, 4200, true, 4201)]);
        let value = serde_json::to_value(picture(&rows, &interest(4201, 4200), &[])).unwrap();
        let session = &value[0];
        for key in [
            "sid",
            "leader_pid",
            "leader_alive",
            "tty",
            "foreground_pgid",
            "groups",
        ] {
            assert!(session.get(key).is_some(), "{key} in {session}");
        }
        let group = &session["groups"][1];
        for key in ["pgid", "leader_pid", "orphaned", "members"] {
            assert!(group.get(key).is_some(), "{key} in {group}");
        }
        let member = &group["members"][0];
        assert_eq!(member["pid"], 4201);
        assert_eq!(member["comm"], "daemonlab");
        assert_eq!(member["state"], "S");
        assert_eq!(session["tty"], "pts/3");
    }
}
