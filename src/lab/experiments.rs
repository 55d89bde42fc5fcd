//! "What if you skip this rule?" Each experiment starts its own fresh lab(s), never the
//! TUI's, breaks one rule of APUE 13.3 (or follows 13.6/13.7 both ways), and reports what
//! the kernel showed: /proc, wait statuses, stat(2), file contents, syslog datagrams.
//! `observed` is true only when the kernel's evidence matched the claim.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use super::protocol::{self, Reply, Request, SignalStyle};
use super::terminal::Pty;
use super::{Answer, Lab, LabError, LabOptions, StepId};
use crate::probe::{self, Pid, ProcSnapshot};
use crate::process::{pidfd_open, pidfd_signal};

/// One rule skipped (or one pattern of 13.6/13.7 tried both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Hang up the terminal: while still the job, forked without setsid(), after setsid().
    NoSetsid,
    /// Stay a session leader and open a terminal without O_NOCTTY.
    NoSecondFork,
    /// Let the session leader with a terminal exit while SIGHUP is at its default; and the
    /// orphaned-process-group SIGHUP/SIGCONT.
    SighupNotIgnored,
    /// Keep the working directory on a file system the lab then tries to unmount.
    NoChdir,
    /// Keep a descriptor opened before daemonizing.
    NoCloseFds,
    /// Close 0, 1, 2 but do not reopen them on /dev/null.
    NoDevNull,
    /// Create files with the inherited umask.
    NoUmask,
    /// APUE 13.6: re-read a config file on SIGHUP, exit on SIGTERM.
    SighupReread,
    /// APUE 13.7: exec a helper with and without FD_CLOEXEC on the daemon's descriptors.
    CloseOnExec,
    /// Chapter 13's exercise: chroot before the first syslog, with and without LOG_NDELAY.
    ChrootSyslog,
    /// Chapter 13's exercise: getlogin() before and after daemonizing.
    Getlogin,
}

impl Experiment {
    /// Every experiment, in the book's order of the rules they break.
    pub const ALL: [Experiment; 11] = [
        Experiment::NoSetsid,
        Experiment::NoSecondFork,
        Experiment::SighupNotIgnored,
        Experiment::NoChdir,
        Experiment::NoCloseFds,
        Experiment::NoDevNull,
        Experiment::NoUmask,
        Experiment::SighupReread,
        Experiment::CloseOnExec,
        Experiment::ChrootSyslog,
        Experiment::Getlogin,
    ];

    /// A one-line title for menus.
    pub fn title(self) -> &'static str {
        match self {
            Experiment::NoSetsid => {
                "skip setsid(): a hangup reaches the shell's jobs, not what forked away"
            }
            Experiment::NoSecondFork => {
                "skip the second fork: a session leader can acquire a terminal again"
            }
            Experiment::SighupNotIgnored => {
                "don't ignore SIGHUP: the session leader's exit kills the grandchild"
            }
            Experiment::NoChdir => "skip chdir(\"/\"): the daemon keeps a file system busy",
            Experiment::NoCloseFds => "skip closing descriptors: an inherited one stays open",
            Experiment::NoDevNull => "skip /dev/null: the next file opened becomes stdin/stdout",
            Experiment::NoUmask => "skip umask(0): the inherited mask strips mode bits",
            Experiment::SighupReread => "13.6: re-read the configuration on SIGHUP",
            Experiment::CloseOnExec => "13.7: close-on-exec keeps descriptors out of helpers",
            Experiment::ChrootSyslog => {
                "chroot before syslog: the log socket is out of reach unless already open"
            }
            Experiment::Getlogin => "getlogin() in a daemon: no terminal to ask",
        }
    }

    /// Looks an experiment up by its kebab-case name (`no-setsid`).
    pub fn from_name(name: &str) -> Option<Experiment> {
        Experiment::ALL.into_iter().find(|e| e.name() == name)
    }

    /// `Some(what the learner sees instead)` when the experiment needs root for its full
    /// evidence; `None` when it runs the same for every user.
    pub fn needs_root(self) -> Option<&'static str> {
        match self {
            Experiment::NoChdir => Some(
                "mounting the tmpfs needs root (CAP_SYS_ADMIN): without it the lab shows the daemon's \
                 cwd but cannot show umount failing with EBUSY",
            ),
            Experiment::ChrootSyslog => Some(
                "chroot(2) needs root (CAP_SYS_CHROOT): without it the lab shows the refusal and \
                 explains what would happen",
            ),
            _ => None,
        }
    }

    /// The kebab-case name the CLI and JSON use (`no-setsid`).
    pub fn name(self) -> &'static str {
        match self {
            Experiment::NoSetsid => "no-setsid",
            Experiment::NoSecondFork => "no-second-fork",
            Experiment::SighupNotIgnored => "sighup-not-ignored",
            Experiment::NoChdir => "no-chdir",
            Experiment::NoCloseFds => "no-close-fds",
            Experiment::NoDevNull => "no-dev-null",
            Experiment::NoUmask => "no-umask",
            Experiment::SighupReread => "sighup-reread",
            Experiment::CloseOnExec => "close-on-exec",
            Experiment::ChrootSyslog => "chroot-syslog",
            Experiment::Getlogin => "getlogin",
        }
    }

    fn claim(self) -> &'static str {
        match self {
            Experiment::NoSetsid => {
                "closing the terminal makes the kernel send SIGHUP and SIGCONT to the session leader and take \
                 the terminal from the whole session; the shell then resends SIGHUP only to the jobs still in \
                 its table. So the job itself dies; a process that forked away (the shell reaped its parent and \
                 forgot the job) survives even without setsid, but without a terminal, in an orphaned group of \
                 the user's session, its 0/1/2 on a dead terminal (read: EOF, write: EIO); after setsid it was \
                 never in that session and nothing signals it, though descriptors it still holds on the \
                 terminal go dead too (the hang-up reaches every open file of the terminal) until step 9 \
                 points them at /dev/null"
            }
            Experiment::NoSecondFork => {
                "a session leader without a controlling terminal acquires one by opening a terminal without \
                 O_NOCTTY; after the second fork (not a session leader) the same open cannot"
            }
            Experiment::SighupNotIgnored => {
                "when a session leader with a controlling terminal exits, the kernel sends SIGHUP to the \
                 foreground group: the grandchild of the second fork dies unless SIGHUP is ignored; and a \
                 stopped member of a group that becomes orphaned gets SIGHUP then SIGCONT"
            }
            Experiment::NoChdir => {
                "a daemon's working directory keeps its file system busy: umount fails with EBUSY until the \
                 daemon calls chdir(\"/\")"
            }
            Experiment::NoCloseFds => {
                "a descriptor opened before daemonizing stays open in the daemon unless step 8 closes it"
            }
            Experiment::NoDevNull => {
                "with 0, 1 and 2 closed, the next files opened get 0, 1, 2, and a stray print to stdout \
                 writes into a data file"
            }
            Experiment::NoUmask => {
                "files and directories created with explicit modes lose the bits of the inherited umask; \
                 after umask(0) they get exactly the mode asked for"
            }
            Experiment::SighupReread => {
                "a daemon re-reads its configuration on SIGHUP and logs it; SIGTERM makes it log and exit \
                 (sigwait thread, and sigaction handlers)"
            }
            Experiment::CloseOnExec => {
                "an exec'd helper inherits every descriptor without FD_CLOEXEC (lock file, log socket) and \
                 none of those with it"
            }
            Experiment::ChrootSyslog => {
                "after chroot, the path of the log socket is looked up inside the new root, so a syslog \
                 client that connects lazily (no LOG_NDELAY) loses its messages; one that connected at \
                 openlog(LOG_NDELAY) before the chroot keeps the socket and is still heard"
            }
            Experiment::Getlogin => {
                "getlogin() names the user of a login session; a daemon has no terminal to find one by, so \
                 after daemonizing it can answer only from what it inherited: on Linux, glibc asks \
                 /proc/self/loginuid first, which survives fork and setsid"
            }
        }
    }
}

/// What one experiment showed.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub experiment: Experiment,
    /// [`Experiment::title`], kept in the report for JSON readers.
    pub title: String,
    /// What the book says happens.
    pub claim: String,
    /// The kernel's evidence, one line each, in the order it was gathered.
    pub evidence: Vec<String>,
    /// True when the evidence matched the claim; false when it did not, or when the
    /// environment did not allow the experiment (the evidence says which).
    pub observed: bool,
    /// The hang-up experiment's cases, one object each (empty for the others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<HangUpCase>,
}

/// One case of the hang-up experiment, as the kernel showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HangUpCase {
    /// "job" (still the shell's job), "forked" (forked, no setsid), "setsid".
    pub case: &'static str,
    /// "alive", "killed" (by a signal) or "exited".
    pub outcome: &'static str,
    /// The signal that killed it, e.g. "SIGHUP".
    pub signal: Option<String>,
    /// Its controlling terminal after the hang-up, as /proc says (`None`: none, or gone).
    pub tty_after: Option<String>,
    pub evidence: String,
}

/// Set to a number of milliseconds, makes the orphaned-group demo pause while its member is
/// stopped, and no-chdir while its tmpfs is mounted and busy: the tests' way to kill the
/// lab at the worst moment. Not for users.
pub const PAUSE_FOR_TESTS: &str = "DAEMONLAB_PAUSE_MEMBER_FOR_TESTS";

/// Run one experiment on fresh labs started with `options` (the caller's own lab, if any,
/// is never touched). Every process it starts is ended before it returns.
pub fn run(experiment: Experiment, options: &LabOptions) -> Result<ExperimentReport, LabError> {
    let mut evidence = Evidence::default();
    let observed = match experiment {
        Experiment::NoSetsid => no_setsid(options, &mut evidence)?,
        Experiment::NoSecondFork => no_second_fork(options, &mut evidence)?,
        Experiment::SighupNotIgnored => sighup_not_ignored(options, &mut evidence)?,
        Experiment::NoChdir => no_chdir(options, &mut evidence)?,
        Experiment::NoCloseFds => no_close_fds(options, &mut evidence)?,
        Experiment::NoDevNull => no_dev_null(options, &mut evidence)?,
        Experiment::NoUmask => no_umask(options, &mut evidence)?,
        Experiment::SighupReread => sighup_reread(options, &mut evidence)?,
        Experiment::CloseOnExec => close_on_exec(options, &mut evidence)?,
        Experiment::ChrootSyslog => chroot_syslog(options, &mut evidence)?,
        Experiment::Getlogin => getlogin(options, &mut evidence)?,
    };
    Ok(ExperimentReport {
        experiment,
        title: experiment.title().to_string(),
        claim: experiment.claim().to_string(),
        evidence: evidence.0,
        observed,
        cases: evidence.1,
    })
}

#[derive(Default)]
struct Evidence(Vec<String>, Vec<HangUpCase>);

impl Evidence {
    fn add(&mut self, line: impl Into<String>) {
        self.0.push(line.into());
    }
}

/// Send `request` and wait for its Did/Refused; a refusal is an error naming the request.
fn ask(lab: &mut Lab, request: Request) -> Result<Answer, LabError> {
    lab.ask(request)
}

/// Run `steps` in order; a failed step is an error naming it.
fn steps(lab: &mut Lab, steps: &[StepId]) -> Result<(), LabError> {
    for &step in steps {
        let outcome = lab.run(step)?;
        if !outcome.ok {
            return Err(LabError::Lost {
                step: step.name(),
                reason: outcome
                    .error
                    .map(|e| e.message)
                    .unwrap_or_else(|| "failed".into()),
            });
        }
    }
    Ok(())
}

const TO_SECOND_FORK: [StepId; 4] = [
    StepId::Fork,
    StepId::Setsid,
    StepId::IgnoreSighup,
    StepId::SecondFork,
];

const TO_DEV_NULL: [StepId; 7] = [
    StepId::Fork,
    StepId::Setsid,
    StepId::IgnoreSighup,
    StepId::SecondFork,
    StepId::Chdir,
    StepId::CloseFds,
    StepId::DevNull,
];

/// `pid pgid sid tty` as ps shows them, from /proc.
fn ids(process: &ProcSnapshot) -> String {
    format!(
        "pid {} pgid {} sid {} tty {} tpgid {} state {} ({})",
        process.pid,
        process.pgid,
        process.sid,
        process.tty.as_deref().unwrap_or("?"),
        process.tpgid,
        process.state,
        process.state_name
    )
}

/// Wait until the process behind `pidfd` exits; true if it did within `timeout`.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(1..) => return true,
            Err(Errno::EINTR) => continue,
            _ if Instant::now() >= deadline => return false,
            _ => {}
        }
    }
}

/// How a process ended, as far as the lab may see: its wait status when the lab is its
/// parent or subreaper (read with WNOWAIT, so the owner still reaps it), else the exit
/// code a zombie shows in /proc/PID/stat, else `None` (its adopter reaped it at once).
pub fn exit_status(pid: Pid) -> Option<String> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(nix::unistd::Pid::from_raw(pid)), flags) {
        Ok(WaitStatus::Signaled(_, signal, _)) => {
            return Some(format!("killed by {signal} (waitid)"));
        }
        Ok(WaitStatus::Exited(_, code)) => {
            return Some(format!("exited with status {code} (waitid)"));
        }
        _ => {}
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the comm: field 3 is fields[0]; exit_code is field 52.
    if fields.first() != Some(&"Z") {
        return None;
    }
    let code: i32 = fields.get(49)?.parse().ok()?;
    Some(if code & 0x7f != 0 {
        format!(
            "killed by {} (zombie's exit_code in /proc/{pid}/stat)",
            probe::signal_name((code & 0x7f) as u32)
        )
    } else {
        format!("exited with status {} (/proc/{pid}/stat)", code >> 8)
    })
}

/// [`exit_status`], or a sentence saying why it cannot be known.
pub fn describe_exit(pid: Pid) -> String {
    exit_status(pid).unwrap_or_else(|| {
        "exited; its adopter reaped it before the lab could read the status (run the lab as a \
         subreaper to see it)"
            .into()
    })
}

/// Open a pidfd for a process the lab follows, and have the lab's guard track it too.
fn track(lab: &Lab, pid: Pid) -> Result<OwnedFd, LabError> {
    let pidfd = pidfd_open(pid).map_err(|e| LabError::Lost {
        step: "pidfd_open",
        reason: format!("pid {pid}: {e}"),
    })?;
    if let Ok(copy) = pidfd.try_clone() {
        lab.guard.add_process(pid, copy);
    }
    Ok(pidfd)
}

// ---------------------------------------------------------------- 1. no setsid

fn no_setsid(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let job = hangup_case(options, ev, "job", &[])?;
    let forked = hangup_case(options, ev, "forked", &[StepId::Fork])?;
    let setsid = hangup_case(options, ev, "setsid", &[StepId::Fork, StepId::Setsid])?;
    let observed = job.outcome == "killed"
        && job.signal.as_deref() == Some("SIGHUP")
        && forked.outcome == "alive"
        && forked.tty_after.is_none()
        && setsid.outcome == "alive";
    ev.1 = vec![job, forked, setsid];
    Ok(observed)
}

/// One hang-up on a fresh lab after `before` steps: what the stand-in did and what the
/// kernel shows of the subject afterwards.
fn hangup_case(
    options: &LabOptions,
    ev: &mut Evidence,
    case: &'static str,
    before: &[StepId],
) -> Result<HangUpCase, LabError> {
    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, before)?;
    let process = lab.snapshot()?;
    ev.add(format!(
        "{case}: before the hang-up: {} — the stand-in's session is {}",
        ids(&process),
        lab.session_pid()
    ));
    let outcome = lab.hang_up()?;
    ev.add(format!("{case}: {}", outcome.shell_part()));
    let evidence = outcome.subject_part();
    ev.add(format!("{case}: {evidence}"));
    let signal = outcome.ended.as_deref().and_then(|how| {
        how.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with("SIG"))
            .map(str::to_string)
    });
    let result = HangUpCase {
        case,
        outcome: match (&outcome.ended, &signal) {
            (None, _) => "alive",
            (Some(_), Some(_)) => "killed",
            (Some(_), None) => "exited",
        },
        signal,
        tty_after: outcome.process.as_ref().and_then(|p| p.tty.clone()),
        evidence,
    };
    drop(lab);
    Ok(result)
}

// ---------------------------------------------------------------- 2. no second fork

fn spare_pty() -> Result<Pty, LabError> {
    Pty::open().map_err(LabError::Pty)
}

fn no_second_fork(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    // A pty of its own for each lab: a terminal can be the controlling terminal of one
    // session only, so sharing one would confuse the two results.
    let spare_a = spare_pty()?;
    let spare_b = spare_pty()?;
    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, &[StepId::Fork, StepId::Setsid])?;
    let leader = lab.snapshot()?;
    ev.add(format!(
        "after setsid (session leader, no second fork): {}",
        ids(&leader)
    ));
    let answer = ask(
        &mut lab,
        Request::OpenTty {
            path: spare_a.path.clone(),
        },
    )?;
    ev.add(format!("pid {}: {}", leader.pid, answer.detail));
    let after = lab.snapshot()?;
    ev.add(format!("/proc/{}/stat now: {}", after.pid, ids(&after)));
    let acquired = after.tty.as_deref() == Some(spare_a.short_name().as_str());
    drop(lab);

    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, &TO_SECOND_FORK)?;
    let child = lab.snapshot()?;
    ev.add(format!(
        "after the second fork (not a session leader): {}",
        ids(&child)
    ));
    let answer = ask(
        &mut lab,
        Request::OpenTty {
            path: spare_b.path.clone(),
        },
    )?;
    ev.add(format!("pid {}: {}", child.pid, answer.detail));
    let after = lab.snapshot()?;
    ev.add(format!("/proc/{}/stat now: {}", after.pid, ids(&after)));
    let refused = after.tty.is_none();
    drop(lab);
    drop((spare_a, spare_b));
    Ok(acquired && refused)
}

// ---------------------------------------------------------------- 3. SIGHUP not ignored

/// Run the second fork, following the child even if it dies before it can answer.
fn second_fork_watch(lab: &mut Lab) -> Result<(Pid, OwnedFd, bool), LabError> {
    let lost = |reason: String| LabError::Lost {
        step: StepId::SecondFork.name(),
        reason,
    };
    protocol::send(
        &lab.control,
        &Request::Step {
            step: StepId::SecondFork,
        },
    )
    .map_err(|e| lost(e.to_string()))?;
    let mut child = None;
    loop {
        match protocol::receive::<Reply>(&mut lab.replies) {
            Ok(Some(Reply::Forked { child: pid, .. })) => {
                let fd = track(lab, pid)?;
                child = Some((pid, fd));
            }
            Ok(Some(Reply::Done { .. })) => {
                let (pid, fd) = child.ok_or_else(|| lost("no fork was reported".into()))?;
                lab.birth_parent = lab.subject;
                lab.subject = pid;
                return Ok((pid, fd, true));
            }
            Ok(Some(Reply::Failed { message, .. })) => return Err(lost(message)),
            Ok(Some(_)) => {}
            // Every holder of the channel is gone: the parent exited and the child died.
            Ok(None) | Err(_) => {
                let (pid, fd) = child.ok_or_else(|| lost("no fork was reported".into()))?;
                return Ok((pid, fd, false));
            }
        }
    }
}

fn sighup_not_ignored(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut results = Vec::new();
    for ignore in [false, true] {
        let spare = spare_pty()?;
        let mut lab = Lab::start(options.clone())?;
        steps(&mut lab, &[StepId::Fork, StepId::Setsid])?;
        ask(
            &mut lab,
            Request::OpenTty {
                path: spare.path.clone(),
            },
        )?;
        if ignore {
            steps(&mut lab, &[StepId::IgnoreSighup])?;
        }
        let leader = lab.snapshot()?;
        let label = if ignore {
            "SIGHUP ignored"
        } else {
            "SIGHUP default"
        };
        ev.add(format!(
            "{label}: the session leader holds {} as its controlling terminal: {}",
            spare.short_name(),
            ids(&leader)
        ));
        let (child, pidfd, answered) = second_fork_watch(&mut lab)?;
        let died = wait_exit(&pidfd, Duration::from_millis(1500));
        if died {
            ev.add(format!(
                "{label}: the leader {} exited; the grandchild {child} {} (answered: {answered})",
                leader.pid,
                describe_exit(child)
            ));
        } else {
            let now = probe::snapshot(child, None)?;
            ev.add(format!(
                "{label}: the leader {} exited; the grandchild lives: {} (the kernel dropped the terminal: tty {})",
                leader.pid,
                ids(&now),
                now.tty.as_deref().unwrap_or("none")
            ));
        }
        results.push(died);
        drop(lab);
        drop(spare);
    }
    let hup_kills = results == [true, false];

    // The orphaned process group rule (APUE 9.10), with a real stopped member.
    let mut lab = Lab::start(options.clone())?;
    let log = lab.runtime_dir().join("member-signals.log");
    let job = lab.snapshot()?;
    let answer = ask(&mut lab, Request::SpawnStoppedMember { log: log.clone() })?;
    let member = answer.made.ok_or_else(|| LabError::Lost {
        step: "fork a stopped group member",
        reason: "no PID came back".into(),
    })?;
    let member_fd = track(&lab, member)?;
    let stopped = probe::snapshot(member, None)?;
    // Test-only: hold the demo here, with the member stopped, so a test can kill the lab
    // at exactly this moment and check that the member still goes.
    pause_for_tests();
    ev.add(format!(
        "orphaned group: the job {} forked member {member}: {}",
        job.pid,
        ids(&stopped)
    ));
    let job_fd = track(&lab, job.pid)?;
    protocol::send(&lab.control, &Request::Exit).map_err(LabError::Channel)?;
    wait_exit(&job_fd, Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = String::new();
    while Instant::now() < deadline {
        got = std::fs::read_to_string(&log).unwrap_or_default();
        if got.contains("SIGCONT") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = probe::snapshot(member, None).ok();
    ev.add(format!(
        "orphaned group: the job {} exited, leaving group {} with no parent in the session; the kernel sent \
         SIGHUP, then SIGCONT; the member's handlers (each blocking the other) ran: {}; now {}",
        job.pid,
        job.pgid,
        got.lines().collect::<Vec<_>>().join(" then "),
        after.as_ref().map(ids).unwrap_or_else(|| "gone".into())
    ));
    ev.add(
        "orphaned group: the member catches SIGHUP to show it arrived; with the default action that \
         SIGHUP would have killed it as soon as SIGCONT woke it",
    );
    let orphan_rule = got.lines().any(|l| l == "SIGHUP")
        && got.lines().any(|l| l == "SIGCONT")
        && stopped.state == 'T'
        && after.is_some_and(|p| p.state != 'T');
    let _ = pidfd_signal(&member_fd, libc::SIGKILL);
    drop(lab);
    Ok(hup_kills && orphan_rule)
}

/// Sleep for [`PAUSE_FOR_TESTS`] milliseconds (at most 10 s) when a test set it.
fn pause_for_tests() {
    if let Some(ms) = std::env::var(PAUSE_FOR_TESTS)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms.min(10_000)));
    }
}

// ---------------------------------------------------------------- 4. no chdir

/// A tmpfs the lab mounted, lazily detached on drop whatever happened.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Ok(path) = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2 with a valid NUL-terminated path; MNT_DETACH never blocks.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn mount_tmpfs(dir: &Path) -> Result<Mounted, Errno> {
    let target =
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: mount(2) with NUL-terminated strings and no data; a tmpfs over our own
    // private, empty directory.
    let rc = unsafe {
        libc::mount(
            c"daemonlab".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(Mounted(dir.to_path_buf()))
    } else {
        Err(Errno::last())
    }
}

fn umount(dir: &Path) -> Result<(), Errno> {
    let target =
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: umount2 with a valid NUL-terminated path and no flags.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

fn no_chdir(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut lab = Lab::start(options.clone())?;
    let dir = lab.runtime_dir().join("mnt");
    std::fs::create_dir(&dir).map_err(LabError::Channel)?;
    // If the lab is killed mid-experiment, the janitor detaches the tmpfs.
    let mounted = crate::janitor::making(|| {
        let mounted = mount_tmpfs(&dir);
        if mounted.is_ok() {
            match crate::janitor::Entry::mount(&dir) {
                Ok(entry) => lab.janitor().add(&entry),
                Err(e) => tracing::warn!(error = %e, "cannot give the tmpfs to the janitor"),
            }
        }
        mounted
    });
    let mounted = match mounted {
        Ok(m) => {
            ev.add(format!("mounted a tmpfs on {}", dir.display()));
            Some(m)
        }
        Err(e) => {
            ev.add(format!(
                "could not mount a tmpfs on {}: {} — mount needs root (CAP_SYS_ADMIN); showing the cwd only. \
                 umount(2) would fail with EBUSY while a process has its cwd there",
                dir.display(),
                crate::lab::subject::describe_errno(e)
            ));
            None
        }
    };
    let answer = ask(&mut lab, Request::Chdir { path: dir.clone() })?;
    ev.add(format!(
        "the job was started from there: {} (as if typed in that directory)",
        answer.detail
    ));
    steps(&mut lab, &TO_SECOND_FORK)?;
    let before = lab.snapshot()?;
    ev.add(format!(
        "daemon {} without chdir: /proc/{}/cwd -> {}",
        before.pid,
        before.pid,
        before.cwd.as_deref().unwrap_or("?")
    ));
    let busy_ok = before.cwd.as_deref() == Some(dir.to_string_lossy().as_ref());
    let Some(mounted) = mounted else {
        return Ok(false);
    };
    // Test-only: hold here, mounted and busy, so a test can end the lab at this moment.
    pause_for_tests();
    let busy = umount(&dir);
    ev.add(format!(
        "umount({}): {}",
        dir.display(),
        match busy {
            Ok(()) => "succeeded".to_string(),
            Err(e) => crate::lab::subject::describe_errno(e),
        }
    ));
    steps(&mut lab, &[StepId::Chdir])?;
    let after = lab.snapshot()?;
    ev.add(format!(
        "after chdir(\"/\"): /proc/{}/cwd -> {}",
        after.pid,
        after.cwd.as_deref().unwrap_or("?")
    ));
    let freed = umount(&dir);
    ev.add(format!(
        "umount({}): {}",
        dir.display(),
        match freed {
            Ok(()) => "succeeded".to_string(),
            Err(e) => crate::lab::subject::describe_errno(e),
        }
    ));
    if freed.is_ok() {
        std::mem::forget(mounted);
    }
    Ok(busy_ok && busy == Err(Errno::EBUSY) && freed.is_ok())
}

// ---------------------------------------------------------------- 5. no close fds

fn fd_lines(process: &ProcSnapshot) -> Vec<String> {
    process
        .fds
        .iter()
        .flatten()
        .map(|f| {
            format!(
                "{} -> {}{}",
                f.fd,
                f.target,
                if f.cloexec { " (cloexec)" } else { "" }
            )
        })
        .collect()
}

fn no_close_fds(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut lab = Lab::start(options.clone())?;
    let file = lab.runtime_dir().join("inherited.txt");
    let answer = ask(
        &mut lab,
        Request::Open {
            path: file.clone(),
            mode: 0o644,
            cloexec: false,
        },
    )?;
    let fd = answer.made.unwrap_or(-1);
    ev.add(format!(
        "before daemonizing, the job holds a descriptor (standing in for one a careless parent passed \
         down): {}",
        answer.detail
    ));
    steps(
        &mut lab,
        &[
            StepId::Umask,
            StepId::Fork,
            StepId::Setsid,
            StepId::IgnoreSighup,
            StepId::SecondFork,
            StepId::Chdir,
        ],
    )?;
    let skipped = lab.snapshot()?;
    ev.add(format!(
        "daemon {} after steps 1-7, step 8 skipped: fds [{}]",
        skipped.pid,
        fd_lines(&skipped).join(", ")
    ));
    let target = file.to_string_lossy().to_string();
    let present = skipped
        .fds
        .iter()
        .flatten()
        .any(|f| f.fd == fd && f.target == target);
    steps(&mut lab, &[StepId::CloseFds])?;
    let closed = lab.snapshot()?;
    ev.add(format!(
        "after step 8: fds [{}]",
        fd_lines(&closed).join(", ")
    ));
    let gone = !closed.fds.iter().flatten().any(|f| f.target == target);
    Ok(present && gone)
}

// ---------------------------------------------------------------- 6. no /dev/null

fn no_dev_null(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, &TO_DEV_NULL[..6])?;
    let dir = lab.runtime_dir().to_path_buf();
    let names = ["data.db", "records.txt", "journal.txt"];
    let mut fds = Vec::new();
    for name in names {
        let answer = ask(
            &mut lab,
            Request::Open {
                path: dir.join(name),
                mode: 0o644,
                cloexec: false,
            },
        )?;
        ev.add(format!("0, 1, 2 closed, step 9 skipped: {}", answer.detail));
        fds.push(answer.made.unwrap_or(-1));
    }
    let print = ask(
        &mut lab,
        Request::Print {
            text: "a stray printf from the daemon".into(),
        },
    )?;
    ev.add(format!("then: {}", print.detail));
    let content = std::fs::read_to_string(dir.join(names[1])).unwrap_or_default();
    ev.add(format!(
        "the lab reads {} back: {content:?}",
        dir.join(names[1]).display()
    ));
    let landed = fds == [0, 1, 2] && content.contains("a stray printf");
    drop(lab);

    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, &TO_DEV_NULL)?;
    let dir = lab.runtime_dir().to_path_buf();
    let answer = ask(
        &mut lab,
        Request::Open {
            path: dir.join(names[1]),
            mode: 0o644,
            cloexec: false,
        },
    )?;
    ev.add(format!("with step 9: {}", answer.detail));
    let print = ask(
        &mut lab,
        Request::Print {
            text: "a stray printf from the daemon".into(),
        },
    )?;
    let content = std::fs::read_to_string(dir.join(names[1])).unwrap_or_default();
    ev.add(format!(
        "with step 9: {}; the file holds {content:?}",
        print.detail
    ));
    Ok(landed && answer.made.is_some_and(|fd| fd > 2) && content.is_empty())
}

// ---------------------------------------------------------------- 7. no umask

fn mode_of(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| format!("{:04o}", m.permissions().mode() & 0o7777))
        .unwrap_or_else(|e| format!("stat failed: {e}"))
}

fn no_umask(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut lab = Lab::start(options.clone())?;
    let dir = lab.runtime_dir().to_path_buf();
    let inherited = lab.snapshot()?.umask;
    let shown = inherited
        .map(probe::format_umask)
        .unwrap_or_else(|| "?".into());
    ev.add(format!(
        "the job inherited umask {shown} (/proc status Umask)"
    ));
    let mut modes = Vec::new();
    for (label, suffix) in [
        ("without umask(0)", "inherited"),
        ("after umask(0)", "cleared"),
    ] {
        if suffix == "cleared" {
            steps(&mut lab, &[StepId::Umask])?;
        }
        let file = dir.join(format!("file-{suffix}"));
        let sub = dir.join(format!("dir-{suffix}"));
        ask(
            &mut lab,
            Request::Open {
                path: file.clone(),
                mode: 0o666,
                cloexec: true,
            },
        )?;
        ask(
            &mut lab,
            Request::Mkdir {
                path: sub.clone(),
                mode: 0o777,
            },
        )?;
        let (f, d) = (mode_of(&file), mode_of(&sub));
        ev.add(format!(
            "{label}: open(…, O_CREAT, 0666) -> stat mode {f}; mkdir(…, 0777) -> stat mode {d}"
        ));
        modes.push((f, d));
    }
    let Some(mask) = inherited else {
        return Ok(false);
    };
    if mask == 0 {
        ev.add("the inherited umask was already 0000, so this environment shows no difference; run from a shell with umask 022");
        return Ok(false);
    }
    let expect_file = format!("{:04o}", 0o666 & !mask);
    let expect_dir = format!("{:04o}", 0o777 & !mask);
    Ok(modes[0] == (expect_file, expect_dir) && modes[1] == ("0666".into(), "0777".into()))
}

// ---------------------------------------------------------------- 8. SIGHUP re-read

fn sighup_reread(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut all = true;
    for style in [SignalStyle::SigwaitThread, SignalStyle::Handlers] {
        let label = match style {
            SignalStyle::SigwaitThread => "sigwait thread",
            SignalStyle::Handlers => "handlers",
        };
        let mut lab = Lab::start(options.clone())?;
        steps(&mut lab, &TO_DEV_NULL)?;
        steps(&mut lab, &[StepId::Openlog])?;
        let config = lab.runtime_dir().join("daemon.conf");
        std::fs::write(&config, "greeting=hello\n").map_err(LabError::Channel)?;
        let pid = lab.subject_pid();
        let pidfd = track(&lab, pid)?;
        let before = lab.syslog().received();
        let answer = ask(
            &mut lab,
            Request::ServeConfig {
                config: config.clone(),
                style,
            },
        )?;
        ev.add(format!("{label}: daemon {pid}: {}", answer.detail));
        let process = lab.snapshot()?;
        ev.add(format!(
            "{label}: /proc/{pid}/status: SIGHUP {:?}; blocked {:?}; caught {:?}",
            process.sighup, process.signals.blocked, process.signals.caught
        ));
        let from = |m: &crate::syslog::receiver::Message, text: &str| {
            m.sender_pid == Some(pid) && m.text.contains(text)
        };
        let first = lab.syslog().wait_for(before, Duration::from_secs(2), |m| {
            from(m, "greeting=hello")
        });
        let read_ok = first.iter().any(|m| from(m, "greeting=hello"));
        std::fs::write(&config, "greeting=bonjour\n").map_err(LabError::Channel)?;
        ev.add(format!(
            "{label}: the lab wrote greeting=bonjour and sent SIGHUP to {pid} (pidfd)"
        ));
        let mark = lab.syslog().received();
        pidfd_signal(&pidfd, libc::SIGHUP).map_err(LabError::Channel)?;
        let got = lab.syslog().wait_for(mark, Duration::from_secs(2), |m| {
            from(m, "greeting=bonjour")
        });
        let reread = got.iter().find(|m| from(m, "greeting=bonjour"));
        ev.add(format!(
            "{label}: syslog got: {}",
            reread
                .map(|m| m.text.clone())
                .unwrap_or_else(|| "nothing".into())
        ));
        let mark = lab.syslog().received();
        pidfd_signal(&pidfd, libc::SIGTERM).map_err(LabError::Channel)?;
        let got = lab
            .syslog()
            .wait_for(mark, Duration::from_secs(2), |m| from(m, "SIGTERM"));
        let term = got.iter().find(|m| from(m, "SIGTERM"));
        let exited = wait_exit(&pidfd, Duration::from_secs(2));
        ev.add(format!(
            "{label}: after SIGTERM syslog got: {}; the daemon {}",
            term.map(|m| m.text.clone())
                .unwrap_or_else(|| "nothing".into()),
            if exited { "exited" } else { "is still running" }
        ));
        all &= read_ok && reread.is_some() && term.is_some() && exited;
        drop(lab);
    }
    ev.add(
        "note: step 5 left SIGHUP ignored, so both styles first set it back to SIG_DFL. The handlers \
         need that; for the sigwait thread Linux would queue a blocked SIGHUP even while ignored \
         (sigpending shows it, sigwait returns it), but POSIX leaves that unspecified, so the lab does \
         not rely on it. The sigwait thread starts after the last fork (the subject is single-threaded \
         until then for fork safety, and refuses to fork after)",
    );
    Ok(all)
}

// ---------------------------------------------------------------- 9. close-on-exec

fn find_sleep() -> Option<PathBuf> {
    let candidates = ["/bin/sleep", "/usr/bin/sleep"].map(PathBuf::from);
    candidates.into_iter().find(|p| p.exists()).or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("sleep"))
                .find(|p| p.exists())
        })
    })
}

fn helper_fds(lab: &mut Lab, sleep: &Path) -> Result<(Pid, OwnedFd, ProcSnapshot), LabError> {
    let answer = ask(
        lab,
        Request::SpawnHelper {
            argv: vec![sleep.display().to_string(), "20".into()],
        },
    )?;
    let pid = answer.made.ok_or_else(|| LabError::Lost {
        step: "fork and exec a helper",
        reason: "no PID came back".into(),
    })?;
    let pidfd = track(lab, pid)?;
    // Look only after the exec: before it, the child still has every descriptor.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut process = probe::snapshot(pid, None)?;
    while process.comm != "sleep" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        process = probe::snapshot(pid, None)?;
    }
    Ok((pid, pidfd, process))
}

fn close_on_exec(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let Some(sleep) = find_sleep() else {
        ev.add("SKIPPED: no `sleep` program in /bin, /usr/bin or PATH to exec as the helper");
        return Ok(false);
    };
    let mut lab = Lab::start(options.clone())?;
    steps(&mut lab, &TO_DEV_NULL)?;
    let pidfile = lab.runtime_dir().join("daemon.pid");
    let lock = ask(
        &mut lab,
        Request::Lock {
            path: pidfile.clone(),
            kind: crate::locks::LockKind::Fcntl,
        },
    )?;
    ev.add(format!("daemon {}: {}", lab.subject_pid(), lock.detail));
    ask(
        &mut lab,
        Request::Openlog {
            option: crate::syslog::LOG_NDELAY | crate::syslog::LOG_PID,
            facility: crate::syslog::Facility::Daemon,
        },
    )?;
    let daemon = lab.snapshot()?;
    let pidfile_text = pidfile.to_string_lossy().to_string();
    let ours: Vec<i32> = daemon
        .fds
        .iter()
        .flatten()
        .filter(|f| f.fd > 2 && f.fd != lab.control_fd())
        .map(|f| f.fd)
        .collect();
    ev.add(format!(
        "daemon {} fds: [{}] (fd {} is the lab's control channel)",
        daemon.pid,
        fd_lines(&daemon).join(", "),
        lab.control_fd()
    ));
    let mut shown = Vec::new();
    for on in [false, true] {
        for &fd in &ours {
            ask(&mut lab, Request::SetCloexec { fd, on })?;
        }
        let (pid, pidfd, helper) = helper_fds(&mut lab, &sleep)?;
        let label = if on {
            "with FD_CLOEXEC"
        } else {
            "without FD_CLOEXEC"
        };
        ev.add(format!(
            "{label}: helper {pid} ({}) /proc/{pid}/fd: [{}]",
            helper.comm,
            fd_lines(&helper).join(", ")
        ));
        shown.push(
            helper
                .fds
                .iter()
                .flatten()
                .any(|f| f.target == pidfile_text),
        );
        let _ = pidfd_signal(&pidfd, libc::SIGTERM);
        wait_exit(&pidfd, Duration::from_secs(2));
    }
    ev.add("both helpers ended with SIGTERM; the daemon reaps them");
    Ok(shown == [true, false])
}

// ---------------------------------------------------------------- exercises: chroot, getlogin

fn chroot_syslog(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    use crate::syslog::{Facility, LOG_NDELAY, LOG_PID, Severity};
    let mut heard = Vec::new();
    for ndelay in [false, true] {
        let label = if ndelay {
            "openlog(LOG_NDELAY) before chroot"
        } else {
            "openlog() without LOG_NDELAY"
        };
        let mut lab = Lab::start(options.clone())?;
        steps(&mut lab, &TO_SECOND_FORK)?;
        let option = if ndelay {
            LOG_NDELAY | LOG_PID
        } else {
            LOG_PID
        };
        let opened = ask(
            &mut lab,
            Request::Openlog {
                option,
                facility: Facility::Daemon,
            },
        )?;
        ev.add(format!(
            "{label}: daemon {}: {}",
            lab.subject_pid(),
            opened.detail
        ));
        let jail = lab.runtime_dir().join("jail");
        std::fs::create_dir(&jail).map_err(LabError::Channel)?;
        match ask(&mut lab, Request::Chroot { path: jail.clone() }) {
            Ok(answer) => {
                let now = lab.snapshot()?;
                ev.add(format!(
                    "{label}: {}; /proc/{}/root -> {}",
                    answer.detail,
                    now.pid,
                    now.root.as_deref().unwrap_or("?")
                ));
            }
            Err(e) => {
                ev.add(format!(
                    "{label}: chroot into {}: {e} — chroot(2) needs root (CAP_SYS_CHROOT). \
                     As root, the lazily connecting client would look for {} inside the new root, find \
                     nothing, and lose the message",
                    jail.display(),
                    lab.syslog().path().display()
                ));
                return Ok(false);
            }
        }
        let out = lab.syslog_request(Request::Log {
            severity: Severity::Info,
            message: "hello from inside the chroot".into(),
            errno: None,
        })?;
        let detail = if out.ok {
            out.detail.clone()
        } else {
            out.error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default()
        };
        ev.add(format!(
            "{label}: {detail}; the lab's receiver got {} message(s) from daemon {}",
            out.received.len(),
            lab.subject_pid()
        ));
        heard.push(!out.received.is_empty());
    }
    Ok(heard == [false, true])
}

fn getlogin(options: &LabOptions, ev: &mut Evidence) -> Result<bool, LabError> {
    let mut lab = Lab::start(options.clone())?;
    let job = lab.subject_pid();
    let loginuid = std::fs::read_to_string(format!("/proc/{job}/loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let loginuid_text = match loginuid {
        Some(u32::MAX) => "unset (4294967295: no login session set it)".to_string(),
        Some(uid) => format!("{uid}"),
        None => "unreadable".to_string(),
    };
    ev.add(format!(
        "job {job}: /proc/{job}/loginuid is {loginuid_text}"
    ));
    let before = ask(&mut lab, Request::Getlogin)?;
    ev.add(format!(
        "job {job}, on {} as a shell job: {}",
        lab.pty_name(),
        before.detail
    ));
    let all: Vec<StepId> = super::STEPS
        .iter()
        .map(|s| s.id)
        .filter(|id| !matches!(id, StepId::Start | StepId::Openlog))
        .collect();
    steps(&mut lab, &all)?;
    let daemon = lab.snapshot()?;
    let after = ask(&mut lab, Request::Getlogin)?;
    ev.add(format!(
        "daemon {} ({}, fd 0 -> {}): {}",
        daemon.pid,
        ids(&daemon),
        fd_target(&daemon, 0),
        after.detail
    ));
    // The kernel keeps the login UID across fork and setsid; glibc answers from it when set.
    let expected_name = loginuid
        .filter(|&uid| uid != u32::MAX)
        .and_then(|uid| nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()?)
        .map(|user| user.name);
    ev.add(match &expected_name {
        Some(name) => format!(
            "the login UID survived daemonizing: glibc's getlogin() can still answer \"{name}\" from it"
        ),
        None => "no login UID was set, and glibc then answers from it (ENXIO) without looking at any \
                 terminal: it falls back to the terminal's utmp entry only when /proc/self/loginuid cannot \
                 be read. Under a login session (ssh, a console login) the UID is set and survives \
                 daemonizing"
            .to_string(),
    });
    Ok(match expected_name {
        Some(name) => after.detail.contains(&format!("\"{name}\"")),
        None => after.detail.contains("NULL"),
    })
}

fn fd_target(process: &ProcSnapshot, fd: i32) -> String {
    process
        .fds
        .iter()
        .flatten()
        .find(|f| f.fd == fd)
        .map(|f| f.target.clone())
        .unwrap_or_else(|| "closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for experiment in Experiment::ALL {
            let json = serde_json::to_string(&experiment).unwrap();
            assert_eq!(json, format!("\"{}\"", experiment.name()));
            assert!(!experiment.title().is_empty());
        }
    }
}
