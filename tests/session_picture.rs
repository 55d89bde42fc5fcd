//! The session picture on a real subject: after each step up to the second fork, the
//! sessions, groups, terminal and orphaned flags the lab reports are the kernel's.

mod common;

use daemonlab::lab::StepId;
use daemonlab::probe::read_stat;
use daemonlab::probe::sessions::{GroupPicture, SessionPicture};

use common::{assert_all_gone, start_lab};

fn session(pictures: &[SessionPicture], sid: i32) -> &SessionPicture {
    pictures
        .iter()
        .find(|s| s.sid == sid)
        .unwrap_or_else(|| panic!("no session {sid} in {pictures:#?}"))
}

fn group(s: &SessionPicture, pgid: i32) -> &GroupPicture {
    s.groups
        .iter()
        .find(|g| g.pgid == pgid)
        .unwrap_or_else(|| panic!("no group {pgid} in {s:#?}"))
}

fn pids(g: &GroupPicture) -> Vec<i32> {
    g.members.iter().map(|m| m.pid).collect()
}

#[test]
fn the_picture_follows_the_subject_out_of_its_session() {
    let mut lab = start_lab();
    let shell = lab.session_pid();
    let first = lab.subject_pid();
    let pty = lab.pty_name().to_string();
    let mut seen = vec![shell, first];
    assert_eq!(lab.sessions().len(), 1, "{:#?}", lab.sessions());

    let start = lab.run(StepId::Start).unwrap();
    assert_eq!(start.sessions.len(), 1, "one session holds both");
    let s = session(&start.sessions, shell);
    assert!(s.leader_alive);
    assert_eq!(s.tty.as_deref(), Some(pty.as_str()));
    assert_eq!(
        s.foreground_pgid,
        Some(first),
        "the job is in the foreground"
    );
    assert_eq!(pids(group(s, shell)), [shell]);
    assert_eq!(pids(group(s, first)), [first]);
    assert!(
        !group(s, first).orphaned,
        "its parent, the shell, is in another group"
    );
    assert!(s.gone.is_empty() && s.adopter.is_none());

    lab.run(StepId::Umask).unwrap();
    lab.run(StepId::Getrlimit).unwrap();
    let fork = lab.run(StepId::Fork).unwrap();
    let child = fork.process.pid;
    seen.push(child);
    let s = session(&fork.sessions, shell);
    assert_eq!(
        s.foreground_pgid,
        Some(shell),
        "the shell took the terminal back"
    );
    let job = group(s, first);
    assert_eq!(
        pids(job),
        [child],
        "the parent is gone, the child stays in its group"
    );
    assert!(!job.leader_alive && job.orphaned);
    assert_eq!(
        s.adopter.as_ref().map(|a| a.pid),
        Some(fork.process.ppid),
        "{s:#?}"
    );
    assert_eq!(s.gone.len(), 1, "{:#?}", s.gone);
    assert_eq!((s.gone[0].pid, s.gone[0].pgid), (first, first));
    assert_eq!(s.gone[0].children, [child]);
    assert_eq!(
        s.gone[0].adopted_by.as_ref().map(|a| a.pid),
        Some(fork.process.ppid)
    );

    let setsid = lab.run(StepId::Setsid).unwrap();
    assert_eq!(setsid.sessions.len(), 2, "{:#?}", setsid.sessions);
    assert_eq!(setsid.sessions[0].sid, shell, "the shell's session first");
    assert_eq!(session(&setsid.sessions, shell).groups.len(), 1);
    let own = session(&setsid.sessions, child);
    assert!(own.leader_alive);
    assert_eq!((own.tty.as_deref(), own.foreground_pgid), (None, None));
    assert_eq!(pids(group(own, child)), [child]);
    assert!(own.gone.is_empty(), "nothing exited during setsid");

    lab.run(StepId::IgnoreSighup).unwrap();
    let second = lab.run(StepId::SecondFork).unwrap();
    let daemon = second.process.pid;
    seen.push(daemon);
    let own = session(&second.sessions, child);
    assert!(!own.leader_alive, "the session outlives its leader");
    let g = group(own, child);
    assert_eq!(pids(g), [daemon]);
    assert!(g.orphaned && !g.leader_alive);
    assert_eq!(own.gone.len(), 1);
    assert_eq!(own.gone[0].children, [daemon]);

    // Every member is what /proc says now.
    for s in &second.sessions {
        for g in &s.groups {
            for m in &g.members {
                let st = read_stat(m.pid).unwrap();
                assert_eq!((st.sid, st.pgid, st.ppid), (s.sid, g.pgid, m.ppid));
            }
        }
    }
    lab.shutdown();
    assert_all_gone(&seen);
}

#[test]
fn every_lab_step_is_drawn_as_ps_lists_it_with_the_lab_as_subreaper() {
    common::sessions::every_step_is_drawn_as_ps_lists(true);
}
