//! A fixed, typical tour — the same values every time — so UI tests, snapshots, benches
//! and screenshots do not depend on the PIDs a real run happens to get.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::lab::protocol::SelfIds;
use crate::lab::{Forked, STEPS, StepError, StepId, StepOutcome};
use crate::lessons::LessonSet;
use crate::probe::sessions::{self, Interest, SessionPicture};
use crate::probe::{Adopter, Disposition, FdEntry, ProcSnapshot, ProcStat, SignalSets};
use crate::syslog::receiver::{Message, Source};

use super::action::LabEvent;
use super::app::App;
use super::theme::Theme;
use super::worker::LabInfo;

/// The explorer itself, in the Processes fixture.
const LAB: i32 = 1620;
const STAND_IN: i32 = 4200;
const SUBJECT: i32 = 4201;
const FIRST_CHILD: i32 = 4213;
const DAEMON: i32 = 4220;

fn fd(fd: i32, target: &str) -> FdEntry {
    FdEntry {
        fd,
        target: target.to_string(),
        cloexec: false,
        lock_lines: None,
    }
}

/// The lab facts the header shows.
pub fn lab_info() -> LabInfo {
    LabInfo {
        lab_pid: LAB,
        session_pid: STAND_IN,
        subject_pid: SUBJECT,
        pty: "pts/3".into(),
        control_fd: 100,
        syslog_socket: PathBuf::from("/run/user/1000/daemonlab-demo/log"),
        syslog_note: "the lab's own syslogd at /run/user/1000/daemonlab-demo/log".into(),
    }
}

/// Step 0: a shell job on pts/3, with two inherited descriptors.
pub fn start_snapshot() -> ProcSnapshot {
    ProcSnapshot {
        pid: SUBJECT,
        ppid: STAND_IN,
        pgid: SUBJECT,
        sid: STAND_IN,
        tty: Some("pts/3".into()),
        tty_nr: 34819,
        tpgid: SUBJECT,
        state: 'S',
        state_name: "sleeping",
        comm: "daemonlab".into(),
        umask: Some(0o022),
        cwd: Some("/home/student".into()),
        root: Some("/".into()),
        fds: Some(vec![
            fd(0, "/dev/pts/3"),
            fd(1, "/dev/pts/3"),
            fd(2, "/dev/pts/3"),
            fd(10, "/dev/null"),
            fd(100, "socket:[81234]"),
        ]),
        sighup: Disposition::Default,
        signals: SignalSets::default(),
        session_leader: false,
        group_leader: true,
        parent_comm: Some("daemonlab".into()),
        adopted_by: None,
    }
}

fn adopted(mut p: ProcSnapshot, pid: i32) -> ProcSnapshot {
    p.pid = pid;
    p.ppid = 1;
    p.parent_comm = Some("systemd".into());
    p.adopted_by = Some(Adopter {
        pid: 1,
        comm: "systemd".into(),
    });
    p.group_leader = p.pgid == pid;
    p.session_leader = p.sid == pid;
    p
}

/// The snapshot after `step`, given the one before; only what the step changes differs.
fn apply(step: StepId, before: &ProcSnapshot) -> ProcSnapshot {
    let mut p = before.clone();
    match step {
        StepId::Start | StepId::Getrlimit => {}
        StepId::Umask => p.umask = Some(0),
        StepId::Fork => {
            p = adopted(p, FIRST_CHILD);
            p.tpgid = STAND_IN;
        }
        StepId::Setsid => {
            p.pgid = p.pid;
            p.sid = p.pid;
            p.tty = None;
            p.tty_nr = 0;
            p.tpgid = -1;
            p.session_leader = true;
            p.group_leader = true;
        }
        StepId::IgnoreSighup => {
            p.sighup = Disposition::Ignored;
            p.signals.ignored = vec!["SIGHUP".into()];
        }
        StepId::SecondFork => p = adopted(p, DAEMON),
        StepId::Chdir => p.cwd = Some("/".into()),
        StepId::CloseFds => p.fds = Some(vec![fd(100, "socket:[81234]")]),
        StepId::DevNull => {
            p.fds = Some(vec![
                fd(0, "/dev/null"),
                fd(1, "/dev/null"),
                fd(2, "/dev/null"),
                fd(100, "socket:[81234]"),
            ])
        }
        StepId::Openlog => {
            let fds = p.fds.get_or_insert_with(Vec::new);
            fds.insert(
                3,
                FdEntry {
                    fd: 3,
                    target: "socket:[81301]".into(),
                    cloexec: true,
                    lock_lines: None,
                },
            );
        }
    }
    p
}

/// A stat row for the fixture process table.
fn stat(pid: i32, ppid: i32, pgid: i32, sid: i32, tty_nr: i32, tpgid: i32, comm: &str) -> ProcStat {
    ProcStat {
        pid,
        comm: comm.to_string(),
        state: 'S',
        ppid,
        pgid,
        sid,
        tty_nr,
        tpgid,
    }
}

/// The session picture for a subject in state `p`, born of `birth_parent`: the process
/// table is init, sshd, a login shell running the explorer, the stand-in and the subject.
fn sessions_for(
    p: &ProcSnapshot,
    birth_parent: i32,
    previous: &[SessionPicture],
) -> Vec<SessionPicture> {
    let pts3 = start_snapshot().tty_nr;
    // The shell owns the foreground whenever its job is not in it.
    let shell_tpgid = if p.sid == STAND_IN { p.tpgid } else { STAND_IN };
    let rows = [
        stat(1, 0, 1, 1, 0, -1, "systemd"),
        stat(990, 1, 990, 990, 0, -1, "sshd"),
        stat(1500, 990, 1500, 1500, 34816, LAB, "bash"),
        stat(LAB, 1500, LAB, 1500, 34816, LAB, "daemonlab"),
        stat(
            STAND_IN,
            LAB,
            STAND_IN,
            STAND_IN,
            pts3,
            shell_tpgid,
            "daemonlab",
        ),
        stat(p.pid, p.ppid, p.pgid, p.sid, p.tty_nr, p.tpgid, &p.comm),
    ];
    let interest = [
        Interest {
            pid: STAND_IN,
            birth_parent: None,
        },
        Interest {
            pid: p.pid,
            birth_parent: Some(birth_parent),
        },
    ];
    sessions::picture(&rows, &interest, previous)
}

/// The session picture at start, before any step.
pub fn start_sessions() -> Vec<SessionPicture> {
    sessions_for(&start_snapshot(), STAND_IN, &[])
}

fn outcome(
    step: StepId,
    before: &ProcSnapshot,
    birth_parent: &mut i32,
    sessions_before: &[SessionPicture],
) -> StepOutcome {
    let process = apply(step, before);
    let forked = step.forks().then_some(Forked {
        parent: before.pid,
        child: process.pid,
    });
    if let Some(f) = forked {
        *birth_parent = f.parent;
    }
    let sessions = sessions_for(&process, *birth_parent, sessions_before);
    let datagram = format!(
        "<30>Nov 25 10:00:00 daemonlab: daemonized: pid {}, no controlling terminal expected",
        process.pid
    );
    let syslog = if step == StepId::Openlog {
        vec![message(1, 0, process.pid, &datagram)]
    } else {
        Vec::new()
    };
    StepOutcome {
        step,
        ok: true,
        error: None,
        detail: detail(step, before, &process, datagram.len()),
        forked,
        self_ids: SelfIds {
            pid: process.pid,
            ppid: process.ppid,
            pgid: process.pgid,
            sid: process.sid,
        },
        changed: process.changed_fields(before),
        process,
        cross_check: None,
        syslog,
        sessions,
    }
}

/// Message `seq`, received `second`s after 10:00:00, from `pid`.
fn message(seq: u64, second: u64, pid: i32, datagram: &str) -> Message {
    let mut message = Message::from_datagram(Source::Unix, Some(pid), datagram.as_bytes());
    message.seq = seq;
    message.received_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + second);
    message
}

/// What the subject reports for `step`, in its own words (lab/subject.rs), with the
/// fixture's numbers: results as long as the real ones, so layouts are tried on them.
fn detail(step: StepId, before: &ProcSnapshot, after: &ProcSnapshot, sent: usize) -> String {
    match step {
        StepId::Start => "running as a job of the shell stand-in".into(),
        StepId::Umask => format!(
            "umask was {:04o}, now 0000",
            before.umask.unwrap_or_default()
        ),
        StepId::Getrlimit => "RLIMIT_NOFILE soft 1024, hard 524288".into(),
        StepId::Fork | StepId::SecondFork => format!(
            "child of {}, which has exited; adopted by {}",
            before.pid, after.ppid
        ),
        StepId::Setsid => format!("new session {}, no controlling terminal", after.sid),
        StepId::IgnoreSighup => "SIGHUP was default, now ignored".into(),
        StepId::Chdir => "cwd is now /".into(),
        StepId::CloseFds => "closed descriptors 0 to 524287 except 100 with close_range(2) (limit 524288); \
                             kept 100, the lab's own control channel, on purpose (a real daemon closes \
                             everything; daemon(7)'s notification pipe comes after)"
            .into(),
        StepId::DevNull => "open(\"/dev/null\") gave 0, dup gave 1 and 2".into(),
        StepId::Openlog => format!(
            "openlog(\"daemonlab\", LOG_CONS, LOG_DAEMON); syslog(LOG_INFO, …): sent {sent} bytes to {}",
            lab_info().syslog_socket.display()
        ),
    }
}

/// The outcomes of the whole tour in the book's order.
pub fn tour() -> Vec<StepOutcome> {
    let mut before = start_snapshot();
    let mut birth_parent = STAND_IN;
    let mut sessions_before = start_sessions();
    STEPS
        .iter()
        .map(|info| {
            let o = outcome(info.id, &before, &mut birth_parent, &sessions_before);
            before = o.process.clone();
            sessions_before = o.sessions.clone();
            o
        })
        .collect()
}

/// `setsid()` run at step 0, while the subject leads its process group.
pub fn setsid_eperm() -> StepOutcome {
    let process = start_snapshot();
    StepOutcome {
        step: StepId::Setsid,
        ok: false,
        error: Some(StepError {
            errno: Some(1),
            name: Some("EPERM".into()),
            // The subject's own words (lab/subject.rs).
            message: format!(
                "EPERM: Operation not permitted — this process leads its process group (PGID = \
                 PID {SUBJECT}), and a group leader may not start a session; fork first"
            ),
        }),
        detail: String::new(),
        forked: None,
        self_ids: SelfIds {
            pid: process.pid,
            ppid: process.ppid,
            pgid: process.pgid,
            sid: process.sid,
        },
        changed: Vec::new(),
        process,
        cross_check: None,
        syslog: Vec::new(),
        sessions: start_sessions(),
    }
}

/// What the subject prints on its terminal for the first `steps` steps (none after 7).
fn terminal_lines(outcomes: &[StepOutcome]) -> Vec<String> {
    let mut lines = vec![format!("pid {SUBJECT}: started as a shell job")];
    for o in outcomes.iter().filter(|o| (o.step as usize) < 8) {
        if let Some(f) = &o.forked {
            lines.push(format!(
                "pid {}: fork() returned {}; the parent exits",
                f.parent, f.child
            ));
        }
        lines.push(format!(
            "pid {}: [{} {}] {}",
            o.process.pid,
            o.step.info().index,
            o.step.label(),
            o.detail
        ));
    }
    lines
}

/// An app with a started lab and the first `steps` steps of the fixture tour applied.
pub fn app_after(steps: usize, theme: Theme, lessons: LessonSet) -> App {
    let mut app = App::new(theme, lessons);
    app.handle_lab(LabEvent::Started {
        generation: 0,
        info: lab_info(),
        snapshot: Box::new(start_snapshot()),
    });
    let outcomes: Vec<StepOutcome> = tour().into_iter().take(steps).collect();
    app.handle_lab(LabEvent::Terminal {
        generation: 0,
        lines: terminal_lines(&outcomes),
    });
    let mut tally = crate::syslog::tally::Tally::default();
    for o in outcomes {
        for message in &o.syslog {
            tally.received += 1;
            tally.shown += 1;
            tally.malformed += u64::from(message.parsed.malformed);
            app.syslog.take(vec![message.clone()], tally);
        }
        app.handle_lab(LabEvent::StepDone {
            generation: 0,
            outcome: Box::new(o),
        });
    }
    app
}

/// Three more messages after whatever the app has: two `L` test messages from the subject
/// and a `logger` line from a shell, as the receiver decodes them, seconds apart.
pub fn more_syslog(app: &mut App) {
    let pid = app.process.as_ref().map_or(SUBJECT, |p| p.pid);
    let datagrams = [
        "<27>Nov 25 10:00:04 daemonlab: test message 1 at LOG_ERR; errno set to ENOENT, so %m \
         gives: No such file or directory"
            .to_string(),
        "<27>Nov 25 10:00:07 daemonlab: test message 2 at LOG_ERR; errno set to ENOENT, so %m \
         gives: No such file or directory"
            .to_string(),
        "<132>Nov 25 10:00:09 student: the backup finished".to_string(),
    ];
    let mut tally = app.syslog.tally;
    for (i, datagram) in datagrams.iter().enumerate() {
        let sender = if i < 2 { pid } else { 5001 };
        let seq = tally.received + 1;
        tally.received += 1;
        tally.shown += 1;
        let second = [4, 7, 9][i];
        app.syslog
            .take(vec![message(seq, second, sender, datagram)], tally);
    }
}

/// The Locks tab after `C` in wait mode and a pitfall run: one holder, one waiter blocked
/// in the kernel, refusals naming the holder, and the lock table that proves it.
pub fn locks_demo(theme: Theme, lessons: LessonSet) -> App {
    use crate::locks::pitfalls::{Pitfall, PitfallReport};
    use crate::locks::{
        ContenderInfo, ContenderState, Evidence, LockKind, LockMode, LockTable, proc_locks,
    };
    let mut app = app_after(11, theme, lessons);
    app.tab = super::app::Tab::Locks;
    let holder = 4301;
    let mut contenders = vec![
        ContenderInfo {
            pid: holder,
            kind: LockKind::Fcntl,
            mode: LockMode::Try,
            state: ContenderState::Holding,
        },
        ContenderInfo {
            pid: 4302,
            kind: LockKind::Fcntl,
            mode: LockMode::Wait,
            state: ContenderState::Waiting,
        },
    ];
    for pid in 4303..4311 {
        contenders.push(ContenderInfo {
            pid,
            kind: LockKind::Fcntl,
            mode: LockMode::Try,
            state: ContenderState::Refused {
                holder: Some(holder),
            },
        });
    }
    let entries = proc_locks::parse(
        "1: POSIX  ADVISORY  WRITE 4301 00:1f:2047 0 EOF\n1: -> POSIX  ADVISORY  WRITE 4302 00:1f:2047 0 EOF\n",
    );
    let (waiters, holders) = entries.into_iter().partition(|e| e.waiter);
    let evidence = Evidence {
        pidfile: PathBuf::from("/run/user/1000/daemonlab-demo/daemonlab.pid"),
        content: Some(format!("{holder}\n")),
        table: LockTable { holders, waiters },
        ..Evidence::default()
    };
    app.handle_lab(LabEvent::Locks {
        generation: 0,
        contenders,
        evidence: Box::new(evidence),
    });
    let report = PitfallReport {
        pitfall: Pitfall::StalePidFile,
        title: "a stale pid file".into(),
        kind: LockKind::Fcntl,
        evidence: vec![
            "the pid file says 99999, a PID no process has".into(),
            "no lock on it in /proc/locks".into(),
            "a new instance: already_running() -> acquired; the file now says 4312".into(),
        ],
        holds: true,
    };
    app.handle_lab(LabEvent::Pitfall {
        generation: 0,
        report: Ok(Box::new(report)),
    });
    app
}

/// One `ps -axj` row for fixtures: TPGID follows the tty, kernel threads are bracketed.
pub fn ps_row(
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    tty: Option<&str>,
    stat: &str,
    command: &str,
) -> crate::probe::ps::PsRow {
    crate::probe::ps::PsRow {
        pid,
        ppid,
        pgid,
        sid,
        tty: tty.map(str::to_string),
        tpgid: if tty.is_some() { pgid } else { -1 },
        stat: stat.to_string(),
        uid: 0,
        time: "0:00".to_string(),
        command: command.to_string(),
        kernel_thread: command.starts_with('['),
        daemon_like: tty.is_none() && !command.starts_with('[') && sid == pid,
        comm: command.trim_matches(['[', ']']).to_string(),
        role: crate::probe::ps::Role::Process,
        main_pid: pid,
    }
}

/// The Processes tab on a small, fixed system: init, a kernel thread, a daemon, a login
/// shell, and the lab's own processes.
pub fn processes_demo(theme: Theme, lessons: LessonSet) -> App {
    let mut app = app_after(11, theme, lessons);
    app.tab = super::app::Tab::Processes;
    app.processes.hide_kernel = false;
    let rows = vec![
        ps_row(1, 0, 1, 1, None, "Ss", "/sbin/init"),
        ps_row(2, 0, 0, 0, None, "S", "[kthreadd]"),
        ps_row(812, 1, 812, 812, None, "Ss", "/usr/sbin/cron -f"),
        ps_row(990, 1, 990, 990, None, "Ss", "/usr/sbin/sshd -D"),
        ps_row(1500, 990, 1500, 1500, Some("pts/0"), "Ss", "-bash"),
        ps_row(LAB, 1500, LAB, 1500, Some("pts/0"), "Sl+", "daemonlab"),
        ps_row(
            STAND_IN,
            LAB,
            STAND_IN,
            STAND_IN,
            Some("pts/3"),
            "Ss",
            "daemonlab __session --pty /dev/pts/3",
        ),
        ps_row(
            DAEMON,
            1,
            FIRST_CHILD,
            FIRST_CHILD,
            None,
            "S",
            "daemonlab __subject --control-fd 100",
        ),
    ];
    // Roles as `ps` gives them, from the same rule.
    let classified: Vec<_> = rows
        .iter()
        .map(|r| crate::probe::ps::classify(&rows, r))
        .collect();
    let rows: Vec<_> = rows
        .into_iter()
        .zip(classified)
        .map(|(mut r, (role, main_pid))| {
            r.role = role;
            r.main_pid = main_pid;
            r
        })
        .collect();
    app.handle_lab(LabEvent::Ps {
        rows,
        ours: vec![LAB, STAND_IN, DAEMON],
    });
    app
}

/// The Inspect tab on the lab's daemon after every step and the pid-file lock.
pub fn inspect_demo(theme: Theme, lessons: LessonSet) -> App {
    use crate::audit::{Audit, Check, Status};
    let mut app = app_after(11, theme, lessons);
    app.tab = super::app::Tab::Inspect;
    let check = |id: &'static str, status: Status, detail: &str| Check {
        id,
        status,
        detail: detail.to_string(),
    };
    let audit = Audit {
        pid: DAEMON,
        role: crate::audit::Role::Daemon,
        main_pid: DAEMON,
        pidfile: None,
        process: app.process.clone(),
        checks: vec![
            check(
                "controlling_tty",
                Status::Pass,
                "no controlling terminal: no hangup or Ctrl-C can reach it",
            ),
            check(
                "session",
                Status::Pass,
                "not a session leader (the double-fork convention): it can never acquire a terminal",
            ),
            check("parent", Status::Pass, "parent is systemd (pid 1)"),
            check(
                "cwd",
                Status::Pass,
                "working directory is /: it keeps no file system busy",
            ),
            check(
                "umask",
                Status::Pass,
                "umask 0000: files get exactly the modes asked for",
            ),
            check("stdio", Status::Pass, "0, 1 and 2 are /dev/null"),
            check(
                "open_fds",
                Status::Warn,
                "fd 100 (socket) is not close-on-exec: a child it execs would inherit it",
            ),
            check(
                "sighup",
                Status::Pass,
                "SIGHUP is ignored: a hangup cannot kill it (but it cannot reload on SIGHUP either)",
            ),
            check(
                "pidfile_lock",
                Status::Pass,
                "holds an fcntl lock on daemonlab.pid, whose content is its PID",
            ),
            check(
                "syslog",
                Status::Pass,
                "connected to the lab's syslog socket",
            ),
            check("state", Status::Pass, "sleeping, started 2m ago"),
        ],
        verdict: "daemon-like, with 1 warning(s): open_fds".to_string(),
    };
    app.handle_lab(LabEvent::Inspected {
        pid: DAEMON,
        result: Ok(Box::new(audit)),
    });
    app
}

/// `daemonlab run` on a program that daemonizes by the book: the fixture tour as the
/// trace would see it, held at the `second_fork` rule — or, with `finished`, run to the end
/// with a verdict and one finding.
pub fn run_demo(theme: Theme, lessons: LessonSet, finished: bool) -> App {
    use super::action::TraceUpdate;
    use crate::trace::rules::{Event, Finding, Verdict};
    let mut app = App::new(theme, lessons);
    app.trace = Some(super::traced::TraceView::new("/usr/local/sbin/mydaemon"));
    app.handle_lab(LabEvent::Started {
        generation: 0,
        info: LabInfo {
            syslog_socket: PathBuf::from("/dev/log"),
            syslog_note: "nothing listened at /dev/log, so the lab bound it for this run (and removes it on exit): the program's syslog(3) messages arrive here".into(),
            control_fd: -1,
            ..lab_info()
        },
        snapshot: Box::new(start_snapshot()),
    });
    let outcomes = tour();
    let take = if finished { outcomes.len() } else { 7 };
    let mut events = vec![Event::Exec {
        seq: 1,
        pid: SUBJECT,
        path: "/usr/local/sbin/mydaemon".into(),
    }];
    let mut seq = 1;
    let mut pid = SUBJECT;
    for o in outcomes.into_iter().take(take) {
        let info = o.step.info();
        // A fork's rule is named once its parent has exited (see `Tracker`).
        if matches!(o.step, StepId::Fork | StepId::SecondFork) {
            seq += 1;
            events.push(Event::Fork {
                seq,
                pid,
                child: o.process.pid,
            });
            seq += 1;
            events.push(Event::Exit {
                seq,
                pid,
                status: "exited with status 0".into(),
            });
        }
        seq += 1;
        events.push(Event::Syscall {
            seq,
            t_ms: seq as f64 * 0.4,
            pid: o.process.pid,
            syscall: Some(info.id.name().into()),
            args: [0; 6],
            result: 0,
            errno: None,
            rule: Some(info.id.name()),
            what: format!("{} = 0", info.c_call),
            calls: 1,
            process: Some(o.process.clone()),
            changed: o.changed.clone(),
            sessions: o.sessions.clone(),
        });
        pid = o.process.pid;
    }
    app.handle_lab(LabEvent::Trace {
        generation: 0,
        update: TraceUpdate::Events(events),
    });
    if !finished {
        app.handle_lab(LabEvent::Trace {
            generation: 0,
            update: TraceUpdate::Held,
        });
        return app;
    }
    let verdict = Verdict {
        event: "verdict",
        main_pid: Some(pid),
        daemonized: true,
        summary: format!("pid {pid} (mydaemon) carries on as a daemon: no terminal, in a session whose leader has gone"),
        checks: vec![crate::audit::Check {
            id: "open_fds",
            status: crate::audit::Status::Warn,
            detail: "1 of its 1 descriptor(s) beyond 0, 1 and 2 lack close-on-exec: 3 → /run/mydaemon.pid".into(),
        }],
        findings: vec![Finding {
            id: "pidfile_before_fork",
            status: crate::audit::Status::Fail,
            detail: format!("/run/mydaemon.pid holds PID {SUBJECT}, but the daemon is pid {pid}: the PID was written before the last fork — write it after daemonizing"),
            seq: Some(3),
        }],
        audit: None,
    };
    app.handle_lab(LabEvent::Trace {
        generation: 0,
        update: TraceUpdate::Finished(
            Box::new(verdict),
            "the original process exited and the rest made no rule call for 1000 ms".into(),
        ),
    });
    app
}

/// `daemonlab run --service` on the lab's own new-style daemon, active after READY=1 and
/// one rejected message from a child: the rows the manager's worker makes of its events.
pub fn service_demo(theme: Theme, lessons: LessonSet) -> App {
    use super::action::TraceUpdate;
    let mut app = App::new(theme, lessons);
    app.trace = Some(super::traced::TraceView::service(
        "/usr/local/bin/daemonlab",
        "notify-reload",
    ));
    let main = SUBJECT;
    // What the manager prepared: its own session and group, no terminal, cwd /, 0022.
    let mut prepared = start_snapshot();
    prepared.ppid = LAB;
    prepared.pgid = main;
    prepared.sid = main;
    prepared.tty = None;
    prepared.tty_nr = 0;
    prepared.tpgid = -1;
    prepared.session_leader = true;
    prepared.cwd = Some("/".into());
    prepared.umask = Some(0o022);
    if let Some(fds) = prepared.fds.as_mut() {
        // stdin on /dev/null, stdout and stderr the manager's log pipes.
        fds.retain(|f| f.fd <= 2);
        for f in fds.iter_mut() {
            f.target = match f.fd {
                0 => "/dev/null".into(),
                n => format!("pipe:[8130{n}]"),
            };
        }
    }
    app.handle_lab(LabEvent::Started {
        generation: 0,
        info: LabInfo {
            lab_pid: LAB,
            session_pid: LAB,
            subject_pid: main,
            pty: "log".into(),
            control_fd: -1,
            syslog_socket: PathBuf::from("/dev/log"),
            syslog_note: "nothing listened at /dev/log, so the lab bound it for this run (and removes it on exit): the program's syslog(3) messages arrive here".into(),
        },
        snapshot: Box::new(prepared.clone()),
    });
    let row =
        |seq: u64, pid: i32, rule: &'static str, what: &str, process: Option<ProcSnapshot>| {
            super::traced::manager_row(
                seq,
                seq as f64 * 3.0,
                pid,
                rule,
                what.into(),
                process,
                vec![],
            )
        };
    let events = vec![
        row(
            1,
            main,
            "state",
            &format!("activating (main pid {main})"),
            None,
        ),
        row(
            2,
            main,
            "prepared",
            &format!(
                "pid {main}, before the program's first instruction — the manager's part, read from /proc:"
            ),
            Some(prepared.clone()),
        ),
        row(
            3,
            main + 7,
            "rejected",
            &format!(
                "from pid {}: READY=1  (rejected: sent by pid {}, not the main process {main} (NotifyAccess=main))",
                main + 7,
                main + 7
            ),
            None,
        ),
        row(
            4,
            main,
            "notified",
            &format!("from pid {main}: READY=1 STATUS=serving  (accepted)"),
            None,
        ),
        row(
            5,
            main,
            "state",
            &format!(
                "active (main pid {main}): READY=1 from the main process — status \"serving\""
            ),
            Some(prepared),
        ),
    ];
    app.handle_lab(LabEvent::Trace {
        generation: 0,
        update: TraceUpdate::Events(events),
    });
    app.handle_lab(LabEvent::Trace {
        generation: 0,
        update: TraceUpdate::ServiceState(
            "active",
            format!("(main pid {main}): READY=1 from the main process — status \"serving\""),
        ),
    });
    app.handle_lab(LabEvent::Terminal {
        generation: 0,
        lines: vec![format!(
            "stdout: newstyle: pid {main} ppid {LAB} sid {main} pgid {main} tty none cwd / umask 0022 — none of it done by me: the manager did it"
        )],
    });
    app
}
