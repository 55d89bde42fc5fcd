//! Headless `daemonlab locks ...`: the same engine as the TUI's lock pane, printed as text
//! or JSON lines, for scripts, handouts and screen readers.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::contenders::{ContenderInfo, ContenderState, Contenders, Evidence, evidence_held};
use super::engine::{LockError, Outcome, already_running_notify};
use super::{LockKind, LockMode};

/// How to run `daemonlab locks race`.
#[derive(Debug, Clone)]
pub struct RaceOptions {
    /// The daemonlab binary, re-executed as the `__spawner` that forks the contenders.
    pub exe: PathBuf,
    /// The pid file they fight over.
    pub pidfile: PathBuf,
    /// How many contenders start at once.
    pub contenders: usize,
    /// The lock family they all use.
    pub kind: LockKind,
    /// Try (the book's behaviour) by default.
    pub mode: LockMode,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Contenders also report through syslog to this socket.
    pub syslog_socket: Option<PathBuf>,
    /// How long to wait for every outcome.
    pub timeout: Duration,
}

impl RaceOptions {
    /// Ten contenders, fcntl, try mode, text, 10 s.
    pub fn new(exe: PathBuf, pidfile: PathBuf) -> RaceOptions {
        RaceOptions {
            exe,
            pidfile,
            contenders: 10,
            kind: LockKind::Fcntl,
            mode: LockMode::Try,
            json: false,
            syslog_socket: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One line of `race --json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RaceLine<'a> {
    Contender(&'a ContenderInfo),
    Evidence(&'a Evidence),
    Result {
        exactly_one: bool,
        holder: Option<i32>,
        /// When every contender was refused: the process that held the lock all along.
        outside_holder: Option<i32>,
        settled: bool,
    },
}

/// Start `opts.contenders` contenders at the same instant, print each outcome and the
/// kernel's evidence, end them all, and say whether exactly one held the lock (the property
/// a pid-file lock exists to guarantee).
pub fn race(opts: RaceOptions, out: &mut dyn Write) -> io::Result<bool> {
    let contenders = Contenders::new(
        opts.exe.clone(),
        opts.pidfile.clone(),
        opts.syslog_socket.clone(),
    );
    contenders.spawn_many(opts.contenders, opts.kind, opts.mode)?;
    let settled = contenders.wait_settled(opts.timeout);
    if opts.mode == LockMode::Wait {
        // "waiting" is said just before the sleep; give the kernel's `->` lines a moment.
        let expected = opts.contenders.saturating_sub(1);
        let deadline = Instant::now() + Duration::from_secs(1);
        while contenders.evidence().table.waiters.len() < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let outcomes = contenders.outcomes();
    let evidence = contenders.evidence();
    contenders.stop_all();

    let holders: Vec<i32> = outcomes
        .iter()
        .filter(|c| c.state == ContenderState::Holding)
        .map(|c| c.pid)
        .collect();
    let exactly_one = holders.len() == 1;
    // Refused all round: who holds it, from the contenders' own refusals.
    let outside_holder = if holders.is_empty() {
        outcomes.iter().find_map(|c| match c.state {
            ContenderState::Refused { holder: Some(pid) } => Some(pid),
            _ => None,
        })
    } else {
        None
    };
    if opts.json {
        for info in &outcomes {
            json_line(out, &RaceLine::Contender(info))?;
        }
        json_line(out, &RaceLine::Evidence(&evidence))?;
        json_line(
            out,
            &RaceLine::Result {
                exactly_one,
                holder: exactly_one.then(|| holders[0]),
                outside_holder,
                settled,
            },
        )?;
        return Ok(exactly_one);
    }
    writeln!(
        out,
        "race: {} contenders, {} lock, {} mode, on {}",
        opts.contenders,
        opts.kind,
        opts.mode,
        opts.pidfile.display()
    )?;
    for info in &outcomes {
        writeln!(out, "  pid {:>7}  {}", info.pid, state_words(&info.state))?;
    }
    writeln!(out, "the kernel's evidence:")?;
    for line in evidence.lines() {
        writeln!(out, "  {line}")?;
    }
    if !settled {
        writeln!(
            out,
            "not every contender reported within {:?}",
            opts.timeout
        )?;
    }
    match holders.as_slice() {
        [one] => writeln!(
            out,
            "result: exactly one contender holds the lock: pid {one}"
        )?,
        [] => match outside_holder {
            Some(pid) => writeln!(
                out,
                "result: no contender got the lock: pid {pid}, not one of them, holds it (another instance is running)"
            )?,
            None => writeln!(out, "result: no contender got the lock")?,
        },
        many => writeln!(
            out,
            "result: {} contenders believe they hold the lock: pids {}",
            many.len(),
            many.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?,
    }
    Ok(exactly_one)
}

/// A state in the words of a report line.
pub fn state_words(state: &ContenderState) -> String {
    match state {
        ContenderState::Starting => "starting (no report yet)".into(),
        ContenderState::Waiting => "waiting (asleep in the kernel)".into(),
        ContenderState::Holding => "holding the lock".into(),
        ContenderState::Refused { holder: Some(pid) } => {
            format!("refused: already running as pid {pid}")
        }
        ContenderState::Refused { holder: None } => "refused: already running".into(),
        ContenderState::Failed { message } => format!("failed: {message}"),
        ContenderState::Exited { status } => format!("exited ({status})"),
    }
}

fn json_line(out: &mut dyn Write, line: &impl Serialize) -> io::Result<()> {
    let text = serde_json::to_string(line).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// How to run `daemonlab locks hold`.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// The pid file to lock (the caller picks a default in its runtime directory).
    pub pidfile: PathBuf,
    /// The lock family to take.
    pub kind: LockKind,
    /// Try: give up if held. Wait: queue in the kernel until granted (or stopped).
    pub mode: LockMode,
    /// One JSON object per line instead of text.
    pub json: bool,
}

/// Tells a running `hold` to release the lock and return. Cloneable and thread-safe: hand a
/// clone to a signal-handling thread (signal-hook's iterator), or use
/// [`StopHandle::stop_on_stdin_eof`]. Do not call `stop` from a raw signal handler.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<(Mutex<bool>, Condvar)>);

impl StopHandle {
    /// A handle that has not been stopped.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Ask the holder to release and return. Idempotent.
    pub fn stop(&self) {
        let (flag, changed) = &*self.0;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block until `stop` is called or `timeout` passes; returns whether it was stopped.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (flag, changed) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// Stop when stdin reaches end of file (Ctrl-D, or the parent closing a pipe). Only a
    /// terminal, pipe or socket can be someone's lifeline: a stdin of /dev/null or a file
    /// (`cmd &` in a script, nohup) is at its end from the start and is not watched.
    pub fn stop_on_stdin_eof(&self) {
        if !stdin_is_a_lifeline() {
            return;
        }
        let handle = self.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            handle.stop();
        });
    }
}

/// Whether stdin is a terminal, pipe or socket: something whose end means "stop".
fn stdin_is_a_lifeline() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    if io::stdin().is_terminal() {
        return true;
    }
    match std::fs::metadata("/proc/self/fd/0") {
        Ok(meta) => meta.file_type().is_fifo() || meta.file_type().is_socket(),
        Err(_) => false,
    }
}

/// One line of `hold --json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum HoldLine<'a> {
    Waiting { holder: Option<i32> },
    Holding { pid: u32, evidence: &'a Evidence },
    Refused { holder: Option<i32> },
    Released { pid: u32 },
    Stopped,
}

/// Hold the pid-file lock in the foreground as a single-instance daemon would: take it
/// (the book's `already_running`), print the path and the kernel's evidence, keep it until
/// `stop` is signalled, then release it and return `Ok(true)`. Returns `Ok(false)` when
/// another process holds it (try mode), or when stopped while still queued (wait mode).
///
/// The lock is an ordinary kernel lock: `lslocks`, `cat /proc/locks`, `flock -n` (for
/// flock) or another language's fcntl all see it. The pid file is left in place on release:
/// unlinking it could let a waiter that already opened the old file and a newcomer that
/// creates a new one both "win".
pub fn hold(opts: HoldOptions, out: &mut dyn Write, stop: &StopHandle) -> Result<bool, LockError> {
    let (sender, outcome) = mpsc::channel();
    let (waits, waiting) = mpsc::channel();
    let path = opts.pidfile.clone();
    let queued_stop = stop.clone();
    // The lock call runs on its own thread so a stop can end a wait that the kernel would
    // otherwise keep blocked in F_SETLKW.
    std::thread::spawn(move || {
        let result = already_running_notify(&path, opts.kind, opts.mode, &mut |holder| {
            let _ = waits.send(holder);
        });
        if let Ok(Outcome::Acquired(held)) = result {
            if queued_stop.is_stopped() {
                drop(held);
                return;
            }
            let _ = sender.send(Ok(Outcome::Acquired(held)));
        } else {
            let _ = sender.send(result);
        }
    });
    let held = loop {
        if let Ok(holder) = waiting.try_recv() {
            if opts.json {
                json_line(out, &HoldLine::Waiting { holder })?;
            } else {
                let who = holder.map_or("another process".into(), |p| format!("pid {p}"));
                writeln!(
                    out,
                    "waiting for the {} lock on {}, held by {who} (Ctrl-C to give up)",
                    opts.kind,
                    opts.pidfile.display()
                )?;
            }
            out.flush()?;
        }
        match outcome.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(Outcome::Acquired(held))) => break held,
            Ok(Ok(Outcome::AlreadyRunning { holder })) => {
                if opts.json {
                    json_line(out, &HoldLine::Refused { holder })?;
                } else {
                    let who = holder.map_or("another process".into(), |p| format!("pid {p}"));
                    writeln!(
                        out,
                        "already running as {who}: {} is locked ({}); not starting",
                        opts.pidfile.display(),
                        opts.kind
                    )?;
                }
                return Ok(false);
            }
            Ok(Err(error)) => return Err(error),
            // Stopped while waiting, or while the lock was being granted (the thread then
            // dropped it unused and hung up).
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected)
                if stop.is_stopped() =>
            {
                if opts.json {
                    json_line(out, &HoldLine::Stopped)?;
                } else {
                    writeln!(out, "stopped before the lock was granted")?;
                }
                return Ok(false);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(LockError::Output(io::Error::other(
                    "the locking thread ended without an answer",
                )));
            }
        }
    };
    let pid = std::process::id();
    // Through the held descriptor: reopening the file here would drop our own fcntl lock.
    let evidence = evidence_held(&held);
    if opts.json {
        json_line(
            out,
            &HoldLine::Holding {
                pid,
                evidence: &evidence,
            },
        )?;
    } else {
        writeln!(
            out,
            "holding {} on {} as pid {pid} (descriptor {})",
            opts.kind.lock_noun(),
            opts.pidfile.display(),
            held.fd()
        )?;
        for line in evidence.lines() {
            writeln!(out, "  {line}")?;
        }
        writeln!(
            out,
            "other programs see it too: lslocks, cat /proc/locks{}",
            match opts.kind {
                LockKind::Flock => format!(", flock -n {} true", opts.pidfile.display()),
                _ => String::new(),
            }
        )?;
        writeln!(out, "Ctrl-C or SIGTERM releases it")?;
    }
    out.flush()?;
    while !stop.wait_timeout(Duration::from_secs(3600)) {}
    drop(held);
    if opts.json {
        json_line(out, &HoldLine::Released { pid })?;
    } else {
        writeln!(out, "released the lock on {}", opts.pidfile.display())?;
    }
    out.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Write that a test can read while `hold` runs on another thread.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }

        fn wait_for(&self, needle: &str) -> String {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = self.text();
                if text.contains(needle) || Instant::now() > deadline {
                    return text;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    #[test]
    fn hold_takes_shows_and_releases_the_lock() {
        for kind in LockKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            let pidfile = dir.path().join("hold.pid");
            let stop = StopHandle::new();
            let out = Shared::default();
            let opts = HoldOptions {
                pidfile: pidfile.clone(),
                kind,
                mode: LockMode::Try,
                json: false,
            };
            let (thread_stop, mut thread_out) = (stop.clone(), out.clone());
            let holder =
                std::thread::spawn(move || hold(opts, &mut thread_out, &thread_stop).unwrap());
            let text = out.wait_for("Ctrl-C");
            assert!(text.contains(&format!("{}", pidfile.display())), "{text}");
            assert!(text.contains("/proc/locks holder: "), "{text}");
            assert!(text.contains(kind.proc_class()), "{text}");
            // Not read_to_string(pidfile): opening and closing the file in this process
            // would drop the fcntl lock that `hold` keeps for it (pitfall 3).
            assert!(
                text.contains(&format!(": \"{}\"", std::process::id())),
                "{text}"
            );
            // A second holder in the same process is refused for flock and OFD (another
            // open file description); fcntl locks are per process, so only another process
            // would be refused: that is checked in tests/locks_cli.rs.
            if kind != LockKind::Fcntl {
                let mut second = Vec::new();
                let refused = hold(
                    HoldOptions {
                        pidfile: pidfile.clone(),
                        kind,
                        mode: LockMode::Try,
                        json: true,
                    },
                    &mut second,
                    &StopHandle::new(),
                )
                .unwrap();
                assert!(!refused);
                let line = String::from_utf8(second).unwrap();
                assert!(
                    line.starts_with(r#"{"event":"refused","holder":"#),
                    "{line}"
                );
            }
            stop.stop();
            assert!(holder.join().unwrap());
            assert!(out.text().contains("released the lock"));
            assert!(evidence_free(&pidfile), "{kind}");
        }
    }

    fn evidence_free(path: &std::path::Path) -> bool {
        super::super::contenders::evidence_for(path)
            .table
            .is_empty()
    }

    #[test]
    fn a_stop_while_queued_gives_up_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("hold.pid");
        let first = match super::super::already_running(&pidfile, LockKind::Ofd, LockMode::Try) {
            Ok(Outcome::Acquired(held)) => held,
            other => panic!("{other:?}"),
        };
        let stop = StopHandle::new();
        let out = Shared::default();
        let opts = HoldOptions {
            pidfile: pidfile.clone(),
            kind: LockKind::Ofd,
            mode: LockMode::Wait,
            json: true,
        };
        let (thread_stop, mut thread_out) = (stop.clone(), out.clone());
        let waiter = std::thread::spawn(move || hold(opts, &mut thread_out, &thread_stop));
        let text = out.wait_for("waiting");
        assert!(
            text.contains(&format!(
                r#"{{"event":"waiting","holder":{}}}"#,
                std::process::id()
            )),
            "{text}"
        );
        stop.stop();
        assert!(!waiter.join().unwrap().unwrap());
        assert!(out.text().contains(r#"{"event":"stopped"}"#));
        // The abandoned request must not end up holding the lock once it is released.
        drop(first);
        std::thread::sleep(Duration::from_millis(50));
        assert!(evidence_free(&pidfile));
    }

    #[test]
    fn an_unwritable_pid_file_is_a_clear_error() {
        let opts = HoldOptions {
            pidfile: PathBuf::from("/proc/no-such-dir/daemonlab.pid"),
            kind: LockKind::Fcntl,
            mode: LockMode::Try,
            json: false,
        };
        let error = hold(opts, &mut Vec::new(), &StopHandle::new()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("/proc/no-such-dir/daemonlab.pid"), "{text}");
        assert!(text.contains("--pidfile"), "{text}");
    }

    #[test]
    fn stop_handle_wakes_a_waiter() {
        let stop = StopHandle::new();
        assert!(!stop.wait_timeout(Duration::from_millis(1)));
        let other = stop.clone();
        std::thread::spawn(move || other.stop());
        assert!(stop.wait_timeout(Duration::from_secs(5)));
        assert!(stop.is_stopped());
    }

    #[test]
    fn states_read_as_sentences() {
        assert_eq!(
            state_words(&ContenderState::Refused { holder: Some(7) }),
            "refused: already running as pid 7"
        );
        assert_eq!(
            state_words(&ContenderState::Exited {
                status: "killed by SIGKILL".into()
            }),
            "exited (killed by SIGKILL)"
        );
    }
}
