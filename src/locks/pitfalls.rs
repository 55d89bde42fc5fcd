//! The classic mistakes with pid-file locks, each a scenario that the kernel settles: the
//! report quotes what the kernel said (F_GETLK, /proc/locks, fdinfo) and whether the claim
//! was observed.
//!
//! Scenarios that need extra processes (a dead previous instance, a forked child, a third
//! party asking F_GETLK) run in a helper, `daemonlab __pitfall NAME KIND DIR`: a
//! single-threaded process that may fork safely, which the (multi-threaded) lab never does.
//! The hand-over scenario uses [`Contenders`] and runs wherever it is called.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::contenders::{
    ContenderState, Contenders, Evidence, evidence_for, evidence_held, send_sigkill,
};
use super::engine::{
    Outcome, Probe, already_running, get_lock, probe, try_lock, unlock as release_lock,
};
use super::{LockKind, LockMode};
use crate::process::{has_exited, pidfd_open};

/// One of the four scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pitfall {
    /// A pid file naming a dead process, with no lock on it, does not stop a new instance.
    StalePidFile,
    /// A lock taken before fork(): fcntl's stays with the parent; flock's and OFD's are
    /// shared with the child through the inherited open file description.
    LockBeforeFork,
    /// Closing any descriptor of the file drops a process's fcntl locks.
    CloseDropsLock,
    /// A waiter in wait mode gets the lock the moment the holder dies.
    WaiterTakesOver,
}

impl Pitfall {
    /// All four, in teaching order.
    pub const ALL: [Pitfall; 4] = [
        Pitfall::StalePidFile,
        Pitfall::LockBeforeFork,
        Pitfall::CloseDropsLock,
        Pitfall::WaiterTakesOver,
    ];

    /// The name on the command line (`__pitfall NAME ...`) and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Pitfall::StalePidFile => "stale-pid-file",
            Pitfall::LockBeforeFork => "lock-before-fork",
            Pitfall::CloseDropsLock => "close-drops-lock",
            Pitfall::WaiterTakesOver => "waiter-takes-over",
        }
    }

    /// A one-line title for a list.
    pub fn title(self) -> &'static str {
        match self {
            Pitfall::StalePidFile => "A stale pid file proves nothing; the lock does",
            Pitfall::LockBeforeFork => "A lock taken before fork()",
            Pitfall::CloseDropsLock => "Closing any descriptor of the file drops an fcntl lock",
            Pitfall::WaiterTakesOver => "A waiter takes over the moment the holder dies",
        }
    }

    /// What the scenario sets out to show, for this lock kind.
    pub fn claim(self, kind: LockKind) -> String {
        match (self, kind) {
            (Pitfall::StalePidFile, _) => format!(
                "a pid file left by a dead instance, with no lock on it, does not stop a new instance taking {}: the file's existence proves nothing; the lock does",
                kind.lock_noun()
            ),
            (Pitfall::LockBeforeFork, LockKind::Fcntl) => "an fcntl (POSIX) lock belongs to the process that took it: a forked child holds nothing, and the lock goes when the parent exits even though the child still has the file open".into(),
            (Pitfall::LockBeforeFork, _) => format!(
                "{} belongs to the open file description, which fork() shares: the child holds the same lock, and still holds it after the parent exits",
                capitalized(kind.lock_noun())
            ),
            (Pitfall::CloseDropsLock, LockKind::Fcntl) => "closing ANY descriptor of the file (here a second, unrelated open) drops the process's fcntl lock, while the first descriptor is still open".into(),
            (Pitfall::CloseDropsLock, _) => format!(
                "{} belongs to its own open file description: opening and closing the file a second time leaves it alone",
                capitalized(kind.lock_noun())
            ),
            (Pitfall::WaiterTakesOver, _) => format!(
                "a contender queued in wait mode is granted {} by the kernel as soon as the holder dies, with no polling",
                kind.lock_noun().replacen("an ", "the ", 1).replacen("a ", "the ", 1)
            ),
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What one scenario showed: the kernel's evidence, line by line, and the verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PitfallReport {
    /// Which scenario ran.
    pub pitfall: Pitfall,
    /// Its one-line title.
    pub title: String,
    /// The lock kind it ran with.
    pub kind: LockKind,
    /// What the kernel said at each stage, in order; the first line states the claim.
    pub evidence: Vec<String>,
    /// The claim was observed.
    pub holds: bool,
}

/// How long a helper may take before it is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// Run a scenario for `kind`, with its files in `dir`, and report. `exe` is the daemonlab
/// binary: it is started as `__pitfall` for the scenarios that fork, and as the contenders'
/// `__spawner` for the hand-over. Every process started is tracked and reaped before this returns.
pub fn run(pitfall: Pitfall, kind: LockKind, exe: &Path, dir: &Path) -> PitfallReport {
    match pitfall {
        Pitfall::WaiterTakesOver => waiter_takes_over(kind, exe, dir),
        _ => run_helper(pitfall, kind, exe, dir).unwrap_or_else(|problem| PitfallReport {
            pitfall,
            title: pitfall.title().into(),
            kind,
            evidence: vec![
                format!("claim: {}", pitfall.claim(kind)),
                format!("the scenario could not run: {problem}"),
            ],
            holds: false,
        }),
    }
}

fn run_helper(
    pitfall: Pitfall,
    kind: LockKind,
    exe: &Path,
    dir: &Path,
) -> Result<PitfallReport, String> {
    let mut child = Command::new(exe)
        .arg("__pitfall")
        .arg(pitfall.name())
        .arg(kind.name())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {} __pitfall: {e}", exe.display()))?;
    // Read both pipes on threads so a chatty helper can never block on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let timed_out = match pidfd_open(child.id() as i32) {
        Ok(pidfd) => {
            let done = wait_readable(&pidfd, HELPER_TIMEOUT);
            if !done {
                send_sigkill(&pidfd);
            }
            !done
        }
        // No pidfd (very old kernel): wait without a timeout.
        Err(_) => false,
    };
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for the helper: {e}"))?;
    let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if timed_out {
        return Err(format!(
            "the helper took more than {HELPER_TIMEOUT:?} and was killed"
        ));
    }
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    report.ok_or_else(|| {
        format!(
            "the helper ({}) gave no report: {}",
            super::contenders::describe_status(status),
            stderr.lines().next().unwrap_or("no message")
        )
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if has_exited(fd) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(10_000) as u16;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// The body of `daemonlab __pitfall NAME KIND DIR` (`args` are the three words after the
/// subcommand). Prints one JSON [`PitfallReport`] line on stdout; exits 0 when the scenario
/// ran (whatever its verdict), 2 on bad arguments or when it cannot run safely.
///
/// It forks, so it must be the only thread of its process: call it straight from `main`
/// before anything starts a thread. It checks, and refuses otherwise.
pub fn pitfall_main(args: &[String]) -> i32 {
    use clap::ValueEnum;
    let usage = "usage: daemonlab __pitfall NAME KIND DIR (NAME: stale-pid-file, lock-before-fork, close-drops-lock, waiter-takes-over; KIND: fcntl, flock, ofd)";
    let [name, kind, dir] = args else {
        eprintln!("{usage}");
        return 2;
    };
    let (Ok(pitfall), Ok(kind)) = (
        Pitfall::from_str(name, true),
        LockKind::from_str(kind, true),
    ) else {
        eprintln!("{usage}");
        return 2;
    };
    let dir = PathBuf::from(dir);
    let report = match pitfall {
        Pitfall::WaiterTakesOver => match std::env::current_exe() {
            Ok(exe) => waiter_takes_over(kind, &exe, &dir),
            Err(e) => {
                eprintln!("daemonlab __pitfall: cannot find its own executable: {e}");
                return 2;
            }
        },
        _ => {
            if threads() != Some(1) {
                eprintln!(
                    "daemonlab __pitfall: refusing to fork with {:?} threads running; call pitfall_main before starting any thread",
                    threads()
                );
                return 2;
            }
            // Never outlive a lab that forgot us: SIGALRM's default action ends the helper,
            // and its children see end-of-file on their command pipes and leave too.
            nix::unistd::alarm::set(HELPER_TIMEOUT.as_secs() as u32 + 10);
            let mut scene = Scene::new(pitfall, kind);
            let result = match pitfall {
                Pitfall::StalePidFile => stale_pid_file(&mut scene, &dir),
                Pitfall::LockBeforeFork => lock_before_fork(&mut scene, &dir),
                Pitfall::CloseDropsLock => close_drops_lock(&mut scene, &dir),
                Pitfall::WaiterTakesOver => unreachable!("handled above"),
            };
            scene.finish(result)
        }
    };
    match serde_json::to_string(&report) {
        Ok(line) => {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            0
        }
        Err(e) => {
            eprintln!("daemonlab __pitfall: cannot encode the report: {e}");
            2
        }
    }
}

/// How many threads this process has, from /proc/self/status.
pub(super) fn threads() -> Option<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The report being built inside the helper.
struct Scene {
    pitfall: Pitfall,
    kind: LockKind,
    evidence: Vec<String>,
}

impl Scene {
    fn new(pitfall: Pitfall, kind: LockKind) -> Scene {
        Scene {
            pitfall,
            kind,
            evidence: vec![format!("claim: {}", pitfall.claim(kind))],
        }
    }

    fn say(&mut self, line: impl Into<String>) {
        self.evidence.push(line.into());
    }

    /// The kernel's table for the file, indented under the stage that read it.
    fn kernel(&mut self, evidence: &Evidence) {
        for line in evidence.lines() {
            self.evidence.push(format!("  {line}"));
        }
    }

    fn finish(mut self, result: io::Result<bool>) -> PitfallReport {
        let holds = match result {
            Ok(holds) => holds,
            Err(e) => {
                self.say(format!("the scenario stopped: {e}"));
                false
            }
        };
        self.say(if holds {
            "verdict: observed — the claim holds".to_string()
        } else {
            "verdict: NOT observed — the kernel behaved otherwise (see above)".to_string()
        });
        PitfallReport {
            pitfall: self.pitfall,
            title: self.pitfall.title().into(),
            kind: self.kind,
            evidence: self.evidence,
            holds,
        }
    }
}

/// A fresh pid file for one scenario.
fn scenario_file(dir: &Path, pitfall: Pitfall, kind: LockKind) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}-{}.pid", pitfall.name(), kind.name()));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(path)
}

fn fork() -> io::Result<ForkResult> {
    // SAFETY: pitfall_main checked that this process has a single thread, so the child
    // starts with every lock and allocator state consistent and may run ordinary code.
    // Children leave through `child_exit` (_exit), never by returning or unwinding.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// End a forked child without running the parent's destructors or flushing its buffers:
/// a lock that an exiting child "forgets" is released by the kernel, as at a crash.
fn child_exit(body: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
    // SAFETY: _exit ends the process at once; it takes an integer and never returns.
    unsafe { libc::_exit(code) }
}

fn reap(pid: Pid) -> io::Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => return Ok(other?),
        }
    }
}

fn pipe() -> io::Result<(File, File)> {
    let (read, write) = nix::unistd::pipe()?;
    Ok((File::from(read), File::from(write)))
}

/// Ask a third party: fork a child that opens the file afresh and tests the lock the way
/// another instance would (F_GETLK, F_OFD_GETLK, or a LOCK_NB attempt for flock).
fn observe(path: &Path, kind: LockKind) -> io::Result<(i32, Probe)> {
    let (read, mut write) = pipe()?;
    match fork()? {
        ForkResult::Child => child_exit(move || {
            drop(read);
            let answer = probe(path, kind).map_err(|e| e.to_string());
            let _ = writeln!(
                write,
                "{}",
                serde_json::to_string(&answer).unwrap_or_default()
            );
            0
        }),
        ForkResult::Parent { child } => {
            drop(write);
            let mut text = String::new();
            BufReader::new(read).read_to_string(&mut text)?;
            reap(child)?;
            let answer: Result<Probe, String> =
                serde_json::from_str(text.trim()).map_err(io::Error::other)?;
            Ok((child.as_raw(), answer.map_err(io::Error::other)?))
        }
    }
}

fn probe_words(kind: LockKind, probe: Probe) -> String {
    let holder = match probe {
        Probe::Free => {
            return match kind {
                LockKind::Fcntl => "F_GETLK says the file is not locked".into(),
                LockKind::Ofd => "F_OFD_GETLK says the file is not locked".into(),
                LockKind::Flock => {
                    "flock(LOCK_EX|LOCK_NB) succeeds: the file is not locked (released at once)"
                        .into()
                }
            };
        }
        Probe::Locked { holder: Some(pid) } => format!("pid {pid}"),
        Probe::Locked { holder: None } => "a process it cannot see".into(),
    };
    match kind {
        LockKind::Fcntl => format!(
            "F_GETLK says it is locked, l_pid = {}",
            holder.trim_start_matches("pid ")
        ),
        LockKind::Ofd => format!(
            "F_OFD_GETLK says it is locked (l_pid = -1: an open file owns it); fdinfo lock: lines name {holder}"
        ),
        LockKind::Flock => format!(
            "flock(LOCK_EX|LOCK_NB) fails with EWOULDBLOCK: it is locked; /proc names {holder}"
        ),
    }
}

fn errno_words(result: Result<(), Errno>) -> String {
    match result {
        Ok(()) => "succeeded".into(),
        Err(errno) => format!("failed with {errno:?} ({})", errno.desc().to_lowercase()),
    }
}

/// 1. A previous instance wrote its PID and died; its lock died with it.
fn stale_pid_file(scene: &mut Scene, dir: &Path) -> io::Result<bool> {
    let kind = scene.kind;
    let path = scenario_file(dir, Pitfall::StalePidFile, kind)?;
    let previous = match fork()? {
        ForkResult::Child => child_exit(|| match already_running(&path, kind, LockMode::Try) {
            // Die holding it, without unlocking or removing anything: a crash.
            Ok(Outcome::Acquired(held)) => {
                std::mem::forget(held);
                0
            }
            _ => 1,
        }),
        ForkResult::Parent { child } => child,
    };
    let status = reap(previous)?;
    let status = match status {
        WaitStatus::Exited(_, code) => format!("exit {code}"),
        other => format!("{other:?}"),
    };
    scene.say(format!(
        "a previous instance, pid {previous}, locked the file, wrote its PID and died without cleaning up ({status}); it has been reaped"
    ));
    let before = std::fs::read_to_string(&path)?;
    let named_previous = before.trim_end() == previous.to_string();
    scene.say(format!(
        "the pid file exists and says {:?}",
        before.trim_end()
    ));
    let dead = nix::sys::signal::kill(previous, None) == Err(Errno::ESRCH);
    scene.say(format!(
        "kill({previous}, 0): {}",
        if dead {
            "ESRCH, no such process"
        } else {
            "the PID is in use again (recycled)"
        }
    ));
    let before_start = evidence_for(&path);
    scene.say("the kernel's view of the file before the new instance starts:");
    scene.kernel(&before_start);
    scene.say(
        "a start-up check that only looks for the file, or for a PID in it, would refuse to start here",
    );
    let me = std::process::id();
    let acquired = match already_running(&path, kind, LockMode::Try) {
        Ok(Outcome::Acquired(held)) => {
            scene.say(format!(
                "the new instance, pid {me}, ran already_running(): it got the {kind} lock"
            ));
            // Read through the held descriptor: opening and closing the file again here
            // would drop our own fcntl lock (pitfall 3).
            let evidence = evidence_held(&held);
            scene.kernel(&evidence);
            drop(held);
            evidence.content.as_deref() == Some(format!("{me}\n").as_str())
                && evidence.table.holders.len() == 1
        }
        Ok(Outcome::AlreadyRunning { holder }) => {
            scene.say(format!(
                "the new instance was refused: {}",
                match holder {
                    Some(pid) => format!("pid {pid} holds the lock"),
                    None => "the kernel did not name the holder".into(),
                }
            ));
            false
        }
        Err(e) => return Err(io::Error::other(e)),
    };
    Ok(named_previous && dead && before_start.table.is_empty() && acquired)
}

/// 2. The holder forks; who holds the lock, before and after the parent exits?
fn lock_before_fork(scene: &mut Scene, dir: &Path) -> io::Result<bool> {
    let kind = scene.kind;
    let path = scenario_file(dir, Pitfall::LockBeforeFork, kind)?;
    // The child outlives its parent: as a subreaper we adopt and reap it ourselves.
    let subreaper = nix::sys::prctl::set_child_subreaper(true).is_ok();
    let (report_read, mut report_write) = pipe()?;
    let (parent_cmd_read, parent_cmd_write) = pipe()?;
    let (child_cmd_read, mut child_cmd_write) = pipe()?;

    let parent = match fork()? {
        ForkResult::Child => child_exit(move || {
            drop((report_read, parent_cmd_write, child_cmd_write));
            let held = match already_running(&path, kind, LockMode::Try) {
                Ok(Outcome::Acquired(held)) => held,
                other => {
                    let _ = writeln!(report_write, "error parent could not lock: {other:?}");
                    return 1;
                }
            };
            let child = match fork() {
                Ok(ForkResult::Child) => child_exit(move || {
                    drop(parent_cmd_read);
                    forked_child(held.file(), kind, child_cmd_read, report_write)
                }),
                Ok(ForkResult::Parent { child }) => child,
                Err(e) => {
                    let _ = writeln!(report_write, "error fork: {e}");
                    return 1;
                }
            };
            drop(child_cmd_read);
            let _ = writeln!(report_write, "parent {} child {child}", std::process::id());
            drop(report_write);
            // Hold until the helper closes our command pipe, then exit without unlocking:
            // the kernel's cleanup at exit is what the scenario is about.
            let _ = BufReader::new(parent_cmd_read).read_line(&mut String::new());
            std::mem::forget(held);
            0
        }),
        ForkResult::Parent { child } => child,
    };
    drop((report_write, parent_cmd_read, child_cmd_read));
    let mut report = BufReader::new(report_read);
    let mut line = String::new();
    report.read_line(&mut line)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let child = match words.as_slice() {
        ["parent", _, "child", c] => Pid::from_raw(c.parse().map_err(io::Error::other)?),
        _ => {
            drop(parent_cmd_write);
            let _ = reap(parent);
            return Err(io::Error::other(format!(
                "the parent said {:?}",
                line.trim()
            )));
        }
    };
    scene.say(format!(
        "parent pid {parent} took the {kind} lock, then forked child pid {child}; both now have the descriptor open"
    ));
    let (observer, first) = observe(&path, kind)?;
    scene.say(format!(
        "a third process, pid {observer}: {}",
        probe_words(kind, first)
    ));
    scene.kernel(&evidence_for(&path));

    // The child asks for the lock through the very descriptor it inherited.
    child_cmd_write.write_all(b"t")?;
    line.clear();
    report.read_line(&mut line)?;
    let child_got_it = line.starts_with("child-try succeeded");
    scene.say(format!(
        "child pid {child} tries {} through its inherited descriptor: {}",
        match kind {
            LockKind::Fcntl => "F_SETLK",
            LockKind::Ofd => "F_OFD_SETLK",
            LockKind::Flock => "flock(LOCK_EX|LOCK_NB)",
        },
        line.trim().trim_start_matches("child-try ")
    ));

    // The parent exits, as a daemon's parent does after fork().
    drop(parent_cmd_write);
    reap(parent)?;
    scene.say(format!(
        "parent pid {parent} exited (reaped); child pid {child} still has the file open"
    ));
    let (observer, after) = observe(&path, kind)?;
    scene.say(format!(
        "a third process, pid {observer}: {}",
        probe_words(kind, after)
    ));
    let evidence = evidence_for(&path);
    scene.kernel(&evidence);

    drop(child_cmd_write);
    if subreaper {
        reap(child)?;
    } else {
        wait_gone(child);
    }
    scene.say(format!(
        "child pid {child} exited; the file is unlocked again"
    ));

    let holds = match kind {
        LockKind::Fcntl => {
            first
                == Probe::Locked {
                    holder: Some(parent.as_raw()),
                }
                && !child_got_it
                && after == Probe::Free
        }
        LockKind::Flock | LockKind::Ofd => {
            child_got_it
                && after
                    == Probe::Locked {
                        holder: Some(child.as_raw()),
                    }
                && evidence.fd_holders == [child.as_raw()]
        }
    };
    Ok(holds)
}

/// The forked child of lock-before-fork: on "t", try the lock through the inherited
/// descriptor and say what happened; on end of file, leave without unlocking.
fn forked_child(inherited: &File, kind: LockKind, commands: File, mut report: File) -> i32 {
    let mut commands = commands;
    let mut byte = [0u8; 1];
    loop {
        match commands.read(&mut byte) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {
                let result = try_lock(inherited.as_fd(), kind);
                let mut line = format!("child-try {}", errno_words(result));
                if kind == LockKind::Fcntl {
                    // F_GETLK from the child: whose lock is in the way?
                    if let Ok(Some(pid)) = get_lock(inherited.as_fd(), false) {
                        line.push_str(&format!(
                            "; F_GETLK from the child names pid {pid} as the holder"
                        ));
                    }
                }
                let _ = writeln!(report, "{line}");
            }
        }
    }
}

fn wait_gone(pid: Pid) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// 3. Open the file a second time and close that descriptor.
fn close_drops_lock(scene: &mut Scene, dir: &Path) -> io::Result<bool> {
    let kind = scene.kind;
    let path = scenario_file(dir, Pitfall::CloseDropsLock, kind)?;
    let me = std::process::id() as i32;
    let held = match already_running(&path, kind, LockMode::Try).map_err(io::Error::other)? {
        Outcome::Acquired(held) => held,
        Outcome::AlreadyRunning { holder } => {
            return Err(io::Error::other(match holder {
                Some(pid) => format!("the file is already locked by pid {pid}"),
                None => "the file is already locked".to_string(),
            }));
        }
    };
    scene.say(format!(
        "pid {me} took the {kind} lock through descriptor {}",
        held.fd()
    ));
    let (observer, before) = observe(&path, kind)?;
    scene.say(format!(
        "a third process, pid {observer}: {}",
        probe_words(kind, before)
    ));
    scene.kernel(&evidence_held(&held));

    // Any code in the process might do this: a config reader, a log rotator, a library.
    let second =
        super::pid_file::open(&path, super::pid_file::Access::Read).map_err(io::Error::other)?;
    let second_fd = second.as_raw_fd();
    drop(second);
    scene.say(format!(
        "pid {me} opened the same file again (descriptor {second_fd}) and closed that descriptor; descriptor {} is still open",
        held.fd()
    ));
    let (observer, after) = observe(&path, kind)?;
    scene.say(format!(
        "a third process, pid {observer}: {}",
        probe_words(kind, after)
    ));
    scene.kernel(&evidence_held(&held));
    let _ = release_lock(held.file().as_fd(), kind);
    drop(held);

    let was_locked = before == Probe::Locked { holder: Some(me) };
    Ok(match kind {
        LockKind::Fcntl => was_locked && after == Probe::Free,
        LockKind::Flock | LockKind::Ofd => was_locked && after == before,
    })
}

/// 4. One holder, one waiter in wait mode; kill the holder and time the hand-over.
fn waiter_takes_over(kind: LockKind, exe: &Path, dir: &Path) -> PitfallReport {
    let mut scene = Scene::new(Pitfall::WaiterTakesOver, kind);
    let result = hand_over(&mut scene, kind, exe, dir);
    scene.finish(result)
}

fn hand_over(scene: &mut Scene, kind: LockKind, exe: &Path, dir: &Path) -> io::Result<bool> {
    let path = scenario_file(dir, Pitfall::WaiterTakesOver, kind)?;
    let contenders = Contenders::new(exe.to_path_buf(), path.clone(), None);
    let wait = Duration::from_secs(10);
    let holder = contenders.spawn(kind, LockMode::Wait)?;
    if !contenders.wait_for(holder, wait, |s| *s == ContenderState::Holding) {
        return Err(io::Error::other(format!(
            "the first contender did not get the lock: {}",
            outcomes_in_words(&contenders)
        )));
    }
    let waiter = contenders.spawn(kind, LockMode::Wait)?;
    if !contenders.wait_for(waiter, wait, |s| *s == ContenderState::Waiting) {
        return Err(io::Error::other(format!(
            "the second contender did not queue: {}",
            outcomes_in_words(&contenders)
        )));
    }
    // "waiting" is said just before the call that sleeps: wait for the kernel's `->` line.
    let deadline = Instant::now() + Duration::from_secs(5);
    while contenders.evidence().table.waiters.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    scene.say(format!(
        "contender pid {holder} holds the {kind} lock; contender pid {waiter} is asleep in the kernel waiting for it"
    ));
    scene.kernel(&contenders.evidence());

    let killed_at = Instant::now();
    let killed = contenders.kill_holder();
    let granted = contenders.wait_for(waiter, wait, |s| *s == ContenderState::Holding);
    let handed_at = contenders.since(waiter).unwrap_or_else(Instant::now);
    scene.say(format!(
        "SIGKILL to pid {} (through its pidfd); the lab reaped it: {}",
        killed.unwrap_or(holder),
        contenders
            .list()
            .first()
            .map(|c| super::cli::state_words(&c.state))
            .unwrap_or_else(|| "no longer listed".into())
    ));
    if !granted {
        return Ok(false);
    }
    let took = handed_at.saturating_duration_since(killed_at);
    scene.say(format!(
        "contender pid {waiter} reported holding the lock {:.2} ms after the SIGKILL was sent (kill, wake-up, pid-file write and its report, all included)",
        took.as_secs_f64() * 1000.0
    ));
    let evidence = contenders.evidence();
    scene.kernel(&evidence);
    let named = evidence.content.as_deref() == Some(format!("{waiter}\n").as_str());
    let kernel_agrees = evidence.table.waiters.is_empty()
        && evidence.table.holders.len() == 1
        && (evidence.table.holders[0].pid == waiter || evidence.fd_holders == [waiter]);
    contenders.stop_all();
    Ok(killed == Some(holder) && named && kernel_agrees)
}

/// Every contender's outcome in words, for an error message.
fn outcomes_in_words(contenders: &Contenders) -> String {
    contenders
        .outcomes()
        .iter()
        .map(|c| format!("pid {} {}", c.pid, super::cli::state_words(&c.state)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_clap_and_serde() {
        use clap::ValueEnum;
        for pitfall in Pitfall::ALL {
            assert_eq!(Pitfall::from_str(pitfall.name(), false).unwrap(), pitfall);
            assert_eq!(
                serde_json::to_string(&pitfall).unwrap(),
                format!("\"{}\"", pitfall.name())
            );
            for kind in LockKind::ALL {
                assert!(!pitfall.claim(kind).is_empty());
            }
        }
    }

    #[test]
    fn bad_arguments_exit_2() {
        assert_eq!(pitfall_main(&[]), 2);
        let args = ["nope".to_string(), "fcntl".into(), "/tmp".into()];
        assert_eq!(pitfall_main(&args), 2);
    }

    #[test]
    fn forking_scenarios_refuse_to_run_in_a_threaded_process() {
        // The test harness has several threads: the helper must refuse rather than fork.
        let dir = tempfile::tempdir().unwrap();
        let _busy = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(200)));
        let args = [
            "close-drops-lock".to_string(),
            "fcntl".into(),
            dir.path().display().to_string(),
        ];
        assert_eq!(pitfall_main(&args), 2);
    }

    #[test]
    fn a_missing_helper_gives_a_report_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(
            Pitfall::StalePidFile,
            LockKind::Fcntl,
            Path::new("/nonexistent/daemonlab"),
            dir.path(),
        );
        assert!(!report.holds);
        assert!(
            report
                .evidence
                .iter()
                .any(|l| l.contains("/nonexistent/daemonlab"))
        );
    }
}
