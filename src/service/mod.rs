//! `daemonlab service -- PROGRAM`: the lab as a new-style service manager (daemon(7)).
//!
//! A SysV daemon does APUE 13.3's rules itself; a new-style one does none of them, because
//! its manager hands it a clean start — and the daemon reports its state instead
//! (sd_notify(3)). Here the lab plays the manager, for real and in view: it binds the
//! notify socket and any `--listen` sockets, starts the program through a helper of its
//! own that does the manager's part (`exec`), shows the kernel's view of that process
//! before the program's first instruction, then follows the state machine systemd names
//! (activating → active → reloading → active → deactivating → inactive, or failed) from
//! what the kernel says: exits, and notify messages whose sender PID the kernel attests.

pub mod exec;
pub mod listen;
pub mod newstyle;
pub mod notify;

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::probe::ProcSnapshot;
use listen::Listener;
use notify::{Message, NotifySocket};

/// What "started" means (systemd's `Type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceType {
    /// Started once the process exists (at fork).
    Simple,
    /// Started once its execve() has succeeded.
    Exec,
    /// Started once the first process has exited with 0 and the daemon it left is known
    /// (from `--pidfile`, or as the one process left): the chapter's model.
    Forking,
    /// Started at READY=1 from the main process.
    Notify,
    /// As notify; a reload is SIGHUP, answered by RELOADING=1 … READY=1.
    NotifyReload,
}

impl ServiceType {
    pub fn name(self) -> &'static str {
        match self {
            ServiceType::Simple => "simple",
            ServiceType::Exec => "exec",
            ServiceType::Forking => "forking",
            ServiceType::Notify => "notify",
            ServiceType::NotifyReload => "notify-reload",
        }
    }

    fn notifies(self) -> bool {
        matches!(self, ServiceType::Notify | ServiceType::NotifyReload)
    }
}

/// The unit's state, in systemd's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Activating,
    Active,
    Reloading,
    Deactivating,
    Inactive,
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Activating => "activating",
            State::Active => "active",
            State::Reloading => "reloading",
            State::Deactivating => "deactivating",
            State::Inactive => "inactive",
            State::Failed => "failed",
        }
    }
}

/// How to run a service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// This binary, re-executed as `__service-exec` and `__janitor`.
    pub exe: PathBuf,
    pub program: String,
    pub args: Vec<String>,
    pub kind: ServiceType,
    pub listen: Vec<String>,
    /// A start that has not completed by then fails (TimeoutStartSec).
    pub timeout: Duration,
    /// WatchdogSec: a service that stops sending WATCHDOG=1 for this long fails.
    pub watchdog: Option<Duration>,
    /// Where a forking service writes its main PID (PIDFile=).
    pub pidfile: Option<PathBuf>,
    /// SIGTERM, then SIGKILL after this long (TimeoutStopSec).
    pub stop_timeout: Duration,
}

/// What the user asks of a running service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Reload,
    Stop,
}

/// One thing that happened, for the text or JSON report (one object per line).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A socket the lab bound and passes as `fd`.
    Listening {
        fd: i32,
        name: String,
        address: String,
    },
    /// The service's process, as the manager left it, before the program's first
    /// instruction (read from /proc while it waits for the word to exec).
    Prepared {
        pid: i32,
        process: Box<ProcSnapshot>,
        environment: Vec<String>,
    },
    State {
        state: State,
        main_pid: Option<i32>,
        status: Option<String>,
        reason: Option<String>,
    },
    Notify {
        pid: Option<i32>,
        accepted: bool,
        fields: serde_json::Value,
        /// Why it was rejected, or what it did.
        note: String,
    },
    /// A line the service wrote to stdout or stderr.
    Log {
        stream: &'static str,
        line: String,
    },
    /// A signal the manager sent.
    Signal {
        pid: i32,
        signal: &'static str,
        why: String,
    },
    Exit {
        pid: i32,
        status: String,
    },
}

/// Why a service could not even be started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Listen(String),
    #[error("cannot make the lab's runtime directory: {0}")]
    Runtime(String),
    #[error("cannot bind the notify socket {path}: {source}")]
    Notify {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {exe} __service-exec: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
}

/// How the run ended: the last state and why.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub state: State,
    pub reason: Option<String>,
}

/// What the loop hears from its threads.
enum Input {
    Log(&'static str, String),
    /// A line from the helper's setup socket; `None` at its end (a successful exec).
    Setup(Option<String>),
    Control(Control),
}

/// Run the service until it is inactive or failed and every process of it has gone.
/// `control` carries reload and stop; its end means stop.
///
/// The calling process becomes a child subreaper, and every child it gains from now on
/// (but the manager's janitor) counts as the service's: it is signalled at the stop and
/// reaped here. Children it had before are left to their owners.
pub fn run(
    options: &ServiceOptions,
    control: Receiver<Control>,
    mut report: impl FnMut(&Event),
) -> Result<Outcome, ServiceError> {
    // The manager adopts what the service leaves behind (a forking service's daemon, the
    // child MAINPID= names), as systemd does: then it can see them exit and end them.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Processes of ours from before (the explorer's janitor, say) are not the service's.
    let mut before = descendants(std::process::id() as i32, &[]);
    before.extend(zombie_children(&[]));
    let listeners: Vec<Listener> = options
        .listen
        .iter()
        .map(|spec| Listener::bind(spec))
        .collect::<Result<_, _>>()
        .map_err(ServiceError::Listen)?;
    for (i, l) in listeners.iter().enumerate() {
        report(&Event::Listening {
            fd: 3 + i as i32,
            name: l.name(),
            address: l.address(),
        });
    }
    let janitor = crate::janitor::Janitor::start(&options.exe).ok();
    let runtime = crate::janitor::making(|| {
        let dir = crate::lab::private_runtime_dir(None)
            .map_err(|e| ServiceError::Runtime(e.to_string()))?;
        if let (Some(j), Ok(entry)) = (&janitor, crate::janitor::Entry::dir(dir.path())) {
            j.add(&entry);
        }
        Ok::<_, ServiceError>(dir)
    })?;
    let notify_path = runtime.path().join("notify");
    let socket = NotifySocket::bind(&notify_path).map_err(|source| ServiceError::Notify {
        path: notify_path.clone(),
        source,
    })?;

    let (setup, helper_setup) =
        UnixStream::pair().map_err(|source| spawn_error(options, source))?;
    let mut command = Command::new(&options.exe);
    command
        .arg("__service-exec")
        .arg("--")
        .arg(&options.program)
        .args(&options.args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::from(OwnedFd::from(helper_setup)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !listeners.is_empty() {
        let names: Vec<String> = listeners.iter().map(Listener::name).collect();
        command
            .env("LISTEN_FDS", listeners.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"));
    }
    if let Some(w) = options.watchdog {
        command.env("WATCHDOG_USEC", w.as_micros().to_string());
    }
    let mut child = command
        .spawn()
        .map_err(|source| spawn_error(options, source))?;
    let helper = child.id() as i32;
    let (tx, inbox) = mpsc::channel::<Input>();
    forward_lines(child.stdout.take(), "stdout", tx.clone());
    forward_lines(child.stderr.take(), "stderr", tx.clone());
    forward_setup(&setup, tx.clone());
    forward_control(control, tx);
    // Read in the loop itself, never by a thread: a message sent before an exit is then
    // always handled before that exit is judged (see `Manager::reap`).
    let _ = socket.set_nonblocking();
    let fds: Vec<_> = listeners.iter().map(Listener::fd).collect();
    let mut manager = Manager {
        options,
        report: &mut report,
        state: State::Activating,
        main: Some(helper),
        helper,
        status: None,
        reason: None,
        deadline: Some(Instant::now() + options.timeout),
        watchdog: options.watchdog,
        last_ping: None,
        stop_deadline: None,
        stored_fds: Vec::new(),
        exec_done: false,
        janitor: janitor.as_ref().and_then(|j| j.pid()).map(|p| p as i32),
        not_ours: before,
        lifeline: janitor.as_ref(),
        known: Vec::new(),
        last_watch: None,
    };
    if let Err(e) = exec::send_listeners(&setup, &fds) {
        manager.fail(format!("cannot hand the listeners to the helper: {e}"));
    }
    drop(fds);
    manager.set_state(State::Activating, None);
    if options.kind == ServiceType::Simple {
        // Started "at fork": the process exists.
        manager.set_state(
            State::Active,
            Some("the process exists (Type=simple)".into()),
        );
        manager.deadline = None;
    }
    let outcome = manager.run(&inbox, &setup, &socket);
    // The listeners and the notify socket go with us; the janitor removes the rest.
    drop(listeners);
    drop(socket);
    drop(runtime);
    drop(janitor);
    Ok(outcome)
}

fn spawn_error(options: &ServiceOptions, source: std::io::Error) -> ServiceError {
    ServiceError::Spawn {
        exe: options.exe.clone(),
        source,
    }
}

fn forward_lines(
    stream: Option<impl std::io::Read + Send + 'static>,
    name: &'static str,
    tx: Sender<Input>,
) {
    let Some(stream) = stream else { return };
    let _ = std::thread::Builder::new()
        .name(format!("service {name}"))
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(Input::Log(name, line)).is_err() {
                    break;
                }
            }
        });
}

fn forward_setup(setup: &UnixStream, tx: Sender<Input>) {
    let Ok(reader) = setup.try_clone() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("service setup".into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(Input::Setup(Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::Setup(None));
        });
}

fn forward_control(control: Receiver<Control>, tx: Sender<Input>) {
    let _ = std::thread::Builder::new()
        .name("service control".into())
        .spawn(move || {
            while let Ok(c) = control.recv() {
                if tx.send(Input::Control(c)).is_err() {
                    return;
                }
            }
            // The controller is gone: stop.
            let _ = tx.send(Input::Control(Control::Stop));
        });
}

/// How often the loop looks at exits and deadlines.
const TICK: Duration = Duration::from_millis(20);

struct Manager<'a, R: FnMut(&Event)> {
    options: &'a ServiceOptions,
    report: &'a mut R,
    state: State,
    /// The main process (MAINPID= moves it; a forking service's comes from its pid file).
    main: Option<i32>,
    /// The helper that became the program: the first process.
    helper: i32,
    status: Option<String>,
    reason: Option<String>,
    /// When an activation (start or reload) must be complete.
    deadline: Option<Instant>,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    stop_deadline: Option<Instant>,
    /// FDSTORE=1 descriptors, kept while the service runs.
    stored_fds: Vec<(String, OwnedFd)>,
    exec_done: bool,
    /// The janitor's PID: a child of ours that is not the service.
    janitor: Option<i32>,
    /// What this process was already running before the service started.
    not_ours: Vec<i32>,
    /// Told every process of the service, so that even kill -9 of the lab ends them.
    lifeline: Option<&'a crate::janitor::Janitor>,
    /// Processes already told to the janitor.
    known: Vec<i32>,
    last_watch: Option<Instant>,
}

impl<R: FnMut(&Event)> Manager<'_, R> {
    fn emit(&mut self, event: Event) {
        (self.report)(&event);
    }

    fn set_state(&mut self, state: State, reason: Option<String>) {
        self.state = state;
        if reason.is_some() {
            self.reason = reason;
        }
        let event = Event::State {
            state,
            main_pid: self.main,
            status: self.status.clone(),
            reason: self.reason.clone(),
        };
        self.emit(event);
    }

    fn run(
        &mut self,
        inbox: &Receiver<Input>,
        setup: &UnixStream,
        socket: &NotifySocket,
    ) -> Outcome {
        loop {
            match inbox.recv_timeout(TICK) {
                Ok(input) => self.input(input, setup),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {}
            }
            self.drain_notify(socket);
            self.reap(socket);
            self.watch_new();
            self.deadlines();
            if matches!(self.state, State::Inactive | State::Failed) && self.ours().is_empty() {
                // The last exits: a process that died a moment ago is a zombie to reap.
                std::thread::sleep(Duration::from_millis(5));
                self.reap(socket);
                self.drain_notify(socket);
                // Drain what the last processes still said.
                while let Ok(input) = inbox.recv_timeout(Duration::from_millis(30)) {
                    if let Input::Log(..) = input {
                        self.input(input, setup);
                    }
                }
                return Outcome {
                    state: self.state,
                    reason: self.reason.clone(),
                };
            }
        }
    }

    fn input(&mut self, input: Input, setup: &UnixStream) {
        match input {
            Input::Log(stream, line) => self.emit(Event::Log { stream, line }),
            Input::Setup(Some(line)) if line == "ready" => {
                self.prepared();
                let _ = std::io::Write::write_all(&mut &*setup, b"g");
            }
            Input::Setup(Some(line)) => {
                let why = line.strip_prefix("failed ").unwrap_or(&line).to_string();
                self.fail(format!("the start failed: {why}"));
            }
            Input::Setup(None) => {
                if self.state == State::Activating && !self.exec_done {
                    self.exec_done = true;
                    if self.options.kind == ServiceType::Exec {
                        self.deadline = None;
                        self.set_state(
                            State::Active,
                            Some("execve() succeeded (Type=exec)".into()),
                        );
                    }
                }
            }
            Input::Control(Control::Reload) => self.reload(),
            Input::Control(Control::Stop) => self.stop("asked to stop".into()),
        }
    }

    /// The helper is about to exec: show what the manager gave it.
    fn prepared(&mut self) {
        let pid = self.helper;
        let environment: Vec<String> = std::fs::read(format!("/proc/{pid}/environ"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|v| !v.is_empty())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        match crate::probe::snapshot(pid, None) {
            Ok(process) => self.emit(Event::Prepared {
                pid,
                process: Box::new(process),
                environment,
            }),
            Err(e) => tracing::warn!(error = %e, pid, "cannot read the prepared service"),
        }
    }

    fn notified(&mut self, message: Message) {
        let fields = message.fields_json();
        let Some(main) = self.main else {
            self.emit(Event::Notify {
                pid: message.pid,
                accepted: false,
                fields,
                note: "no main process any more".into(),
            });
            return;
        };
        // NotifyAccess=main: the kernel's word for the sender, not the message's.
        if message.pid != Some(main) {
            let who = message
                .pid
                .map_or("an unknown sender".to_string(), |p| format!("pid {p}"));
            self.emit(Event::Notify {
                pid: message.pid,
                accepted: false,
                fields,
                note: format!(
                    "rejected: sent by {who}, not the main process {main} (NotifyAccess=main)"
                ),
            });
            return;
        }
        let mut notes = Vec::new();
        if message.truncated {
            notes.push(format!("cut at {} bytes", notify::MAX_DATAGRAM));
        }
        let mut became = None;
        let mut fdname = message.get("FDNAME").unwrap_or("stored").to_string();
        for (key, value) in &message.fields {
            match (key.as_str(), value.as_str()) {
                ("STATUS", v) => self.status = Some(v.to_string()),
                ("MAINPID", v) => match v.parse::<i32>() {
                    Ok(pid) if pid > 0 && crate::probe::snapshot(pid, None).is_ok() => {
                        self.main = Some(pid);
                        notes.push(format!("main process is now {pid}"));
                    }
                    _ => notes.push(format!("MAINPID={v} ignored: no such process")),
                },
                ("READY", "1") => became = Some(State::Active),
                ("RELOADING", "1") => {
                    if message.get("MONOTONIC_USEC").is_none()
                        && self.options.kind == ServiceType::NotifyReload
                    {
                        notes.push(
                            "RELOADING=1 without MONOTONIC_USEC= (systemd 253 asks for it)".into(),
                        );
                    }
                    became = Some(State::Reloading);
                }
                ("STOPPING", "1") => became = Some(State::Deactivating),
                ("ERRNO", v) => notes.push(match v.parse::<i32>() {
                    Ok(n) => format!("errno {n} ({})", nix::errno::Errno::from_raw(n).desc()),
                    Err(_) => format!("ERRNO={v} is not a number"),
                }),
                ("EXTEND_TIMEOUT_USEC", v) => match notify::usec(v) {
                    Some(us) => {
                        let until = Instant::now() + Duration::from_micros(us);
                        match self.state {
                            State::Deactivating => self.stop_deadline = Some(until),
                            _ => {
                                if self.deadline.is_some() {
                                    self.deadline = Some(until)
                                }
                            }
                        }
                        notes.push(format!("timeout extended by {:.1} s", us as f64 / 1e6));
                    }
                    None => notes.push(format!("EXTEND_TIMEOUT_USEC={v} is not microseconds")),
                },
                ("WATCHDOG", "1") => self.last_ping = Some(Instant::now()),
                ("WATCHDOG", "trigger") => {
                    notes.push("the service asked for its watchdog to fire".into());
                }
                ("WATCHDOG_USEC", v) => match notify::usec(v) {
                    Some(us) => {
                        self.watchdog = Some(Duration::from_micros(us));
                        self.last_ping = Some(Instant::now());
                        notes.push(format!("watchdog now {:.1} s", us as f64 / 1e6));
                    }
                    None => notes.push(format!("WATCHDOG_USEC={v} is not microseconds")),
                },
                ("FDSTORE", "1") => {
                    let n = message.fds.len();
                    notes.push(format!("{n} descriptor(s) kept for it as {fdname:?}"));
                }
                ("FDNAME", _) | ("MONOTONIC_USEC", _) => {}
                _ => {}
            }
        }
        let trigger = message.get("WATCHDOG") == Some("trigger");
        if message.get("FDSTORE") == Some("1") {
            for fd in message.fds {
                self.stored_fds.push((std::mem::take(&mut fdname), fd));
            }
        }
        let note = if notes.is_empty() {
            "accepted".to_string()
        } else {
            format!("accepted: {}", notes.join("; "))
        };
        self.emit(Event::Notify {
            pid: message.pid,
            accepted: true,
            fields,
            note,
        });
        if trigger {
            self.watchdog_fired("WATCHDOG=trigger");
            return;
        }
        match became {
            Some(State::Active) => match self.state {
                State::Activating if self.options.kind.notifies() => {
                    self.deadline = None;
                    self.last_ping.get_or_insert(Instant::now());
                    self.set_state(State::Active, Some("READY=1 from the main process".into()));
                }
                State::Reloading => {
                    self.deadline = None;
                    self.set_state(
                        State::Active,
                        Some("reloaded: READY=1 after RELOADING=1".into()),
                    );
                }
                _ => {}
            },
            Some(State::Reloading) if self.state == State::Active => {
                self.deadline = Some(Instant::now() + self.options.timeout);
                self.set_state(
                    State::Reloading,
                    Some("RELOADING=1 from the main process".into()),
                );
            }
            Some(State::Deactivating)
                if !matches!(
                    self.state,
                    State::Deactivating | State::Failed | State::Inactive
                ) =>
            {
                self.stop_deadline = Some(Instant::now() + self.options.stop_timeout);
                self.set_state(
                    State::Deactivating,
                    Some("STOPPING=1 from the main process".into()),
                );
            }
            _ => {}
        }
    }

    fn reload(&mut self) {
        let Some(main) = self.main else { return };
        if !matches!(self.state, State::Active) {
            let words = format!("cannot reload while {}", self.state.name());
            self.emit(Event::Signal {
                pid: main,
                signal: "none",
                why: words,
            });
            return;
        }
        self.signal(main, libc::SIGHUP, "reload: SIGHUP to the main process");
        if self.options.kind == ServiceType::NotifyReload {
            self.deadline = Some(Instant::now() + self.options.timeout);
            self.set_state(
                State::Reloading,
                Some("reload asked: SIGHUP sent, waiting for RELOADING=1 … READY=1".into()),
            );
        }
    }

    /// SIGTERM to every process of the service, SIGKILL after the stop timeout.
    fn stop(&mut self, why: String) {
        if matches!(self.state, State::Inactive | State::Failed) && self.ours().is_empty() {
            return;
        }
        if self.stop_deadline.is_none() {
            if !matches!(self.state, State::Failed) {
                self.set_state(State::Deactivating, Some(why.clone()));
            }
            self.stop_deadline = Some(Instant::now() + self.options.stop_timeout);
            for pid in self.ours() {
                self.signal(pid, libc::SIGTERM, &why);
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.deadline = None;
        self.set_state(State::Failed, Some(reason.clone()));
        self.stop(reason);
    }

    fn watchdog_fired(&mut self, why: &str) {
        if let Some(main) = self.main {
            // systemd's WatchdogSignal=: SIGABRT, so the service can leave a core.
            self.signal(main, libc::SIGABRT, &format!("watchdog: {why}"));
        }
        self.fail(format!("watchdog: {why}"));
    }

    fn deadlines(&mut self) {
        let now = Instant::now();
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            let what = match self.state {
                State::Reloading => "the reload did not finish (no READY=1)",
                _ if self.options.kind.notifies() => "no READY=1",
                _ => "the start did not complete",
            };
            self.fail(format!(
                "timeout: {what} within {:.1} s",
                self.options.timeout.as_secs_f64()
            ));
        }
        if let (Some(interval), State::Active | State::Reloading) = (self.watchdog, self.state) {
            let since = self.last_ping.unwrap_or(now);
            if self.last_ping.is_none() {
                self.last_ping = Some(now);
            } else if now.duration_since(since) >= interval {
                self.watchdog_fired(&format!(
                    "no WATCHDOG=1 for {:.1} s",
                    interval.as_secs_f64()
                ));
            }
        }
        if let Some(deadline) = self.stop_deadline
            && now >= deadline
        {
            let left = self.ours();
            if !left.is_empty() {
                for pid in left {
                    self.signal(pid, libc::SIGKILL, "the stop timeout passed");
                }
                if self.state != State::Failed {
                    self.set_state(
                        State::Failed,
                        Some(format!(
                            "stop timeout: still running {:.1} s after SIGTERM, killed",
                            self.options.stop_timeout.as_secs_f64()
                        )),
                    );
                }
            }
            self.stop_deadline = Some(now + Duration::from_secs(3600));
        }
    }

    fn signal(&mut self, pid: i32, signal: i32, why: &str) {
        // Only processes of ours, by pidfd: an exited PID may have been reused.
        if let Ok(fd) = crate::process::pidfd_open(pid)
            && crate::process::pidfd_signal(&fd, signal).is_ok()
        {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str())
                .unwrap_or("?");
            self.emit(Event::Signal {
                pid,
                signal: name,
                why: why.to_string(),
            });
        }
    }

    /// Live processes of the service: our children (the helper, and what we adopted as
    /// subreaper) and their descendants — not the janitor.
    fn ours(&self) -> Vec<i32> {
        let mut skip = self.not_ours.clone();
        skip.extend(self.janitor);
        descendants(std::process::id() as i32, &skip)
    }

    /// Tell the janitor about processes of the service it does not know yet (every
    /// 100 ms: a /proc scan).
    fn watch_new(&mut self) {
        let Some(janitor) = self.lifeline else { return };
        if self
            .last_watch
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_watch = Some(Instant::now());
        for pid in self.ours() {
            if !self.known.contains(&pid) {
                self.known.push(pid);
                if let Ok(entry) = crate::janitor::Entry::process(pid) {
                    janitor.add(&entry);
                }
            }
        }
    }

    /// Handle every notify message queued now.
    fn drain_notify(&mut self, socket: &NotifySocket) {
        while let Ok(Some(message)) = socket.try_receive() {
            self.notified(message);
        }
    }

    /// Reap every child that has exited and judge the exits that matter. Whatever a
    /// process sent before it exited is in the socket's queue by now: handled first.
    fn reap(&mut self, socket: &NotifySocket) {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
        let mut skip = self.not_ours.clone();
        skip.extend(self.janitor);
        loop {
            // Look first (WNOWAIT): a child that is not the service's (the janitor, what
            // the explorer had before) is left for its owner to reap.
            let peeked = match waitid(
                Id::All,
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ) {
                Ok(s) => s.pid(),
                Err(_) => None,
            };
            let Some(next) = peeked else { break };
            let pid = if skip.contains(&next.as_raw()) {
                // Reap the service's own zombies by PID instead, and stop looking.
                let zombies = zombie_children(&skip);
                if zombies.is_empty() {
                    break;
                }
                zombies[0]
            } else {
                next.as_raw()
            };
            let status = match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
            {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(s) => s,
            };
            let (pid, words, clean, by_term) = match status {
                WaitStatus::Exited(pid, code) => (
                    pid.as_raw(),
                    format!("exited with status {code}"),
                    code == 0,
                    false,
                ),
                WaitStatus::Signaled(pid, signal, core) => (
                    pid.as_raw(),
                    format!(
                        "killed by {}{}",
                        signal.as_str(),
                        if core { " (core dumped)" } else { "" }
                    ),
                    false,
                    signal == nix::sys::signal::Signal::SIGTERM,
                ),
                _ => continue,
            };
            self.drain_notify(socket);
            self.emit(Event::Exit {
                pid,
                status: words.clone(),
            });
            self.judge_exit(pid, &words, clean, by_term);
        }
    }

    fn judge_exit(&mut self, pid: i32, words: &str, clean: bool, by_term: bool) {
        let is_main = self.main == Some(pid);
        if self.options.kind == ServiceType::Forking
            && pid == self.helper
            && self.state == State::Activating
        {
            if !clean {
                self.main = None;
                self.fail(format!("the start process {words} (Type=forking wants 0)"));
                return;
            }
            match self.forked_main() {
                Ok(main) => {
                    self.main = Some(main);
                    self.deadline = None;
                    self.set_state(State::Active, Some(format!(
                        "the start process exited with 0 and left pid {main} as the main process (Type=forking)"
                    )));
                }
                Err(why) => {
                    self.main = None;
                    self.fail(why);
                }
            }
            return;
        }
        if !is_main {
            return;
        }
        self.main = None;
        self.stored_fds.clear();
        match self.state {
            State::Deactivating if clean || by_term => {
                self.set_state(State::Inactive, Some(format!("the main process {words}")));
                self.stop("the main process has exited".into());
            }
            State::Failed => {}
            State::Activating => self.fail(format!(
                "the main process {words} before the start completed"
            )),
            _ if clean => {
                self.set_state(State::Inactive, Some(format!("the main process {words}")));
                self.stop("the main process has exited".into());
            }
            _ => self.fail(format!("the main process {words}")),
        }
    }

    /// A forking service's main process: the PID in `--pidfile`, else the one process
    /// left of it (systemd's guess when PIDFile= is not set).
    fn forked_main(&self) -> Result<i32, String> {
        if let Some(path) = &self.options.pidfile {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "the start process exited, but its pid file {} cannot be read: {e}",
                    path.display()
                )
            })?;
            let pid: i32 = text
                .trim_end_matches(['\n', '\0'])
                .trim()
                .parse()
                .map_err(|_| {
                    format!(
                        "the pid file {} holds {:?}, not a PID",
                        path.display(),
                        text.trim()
                    )
                })?;
            if crate::probe::snapshot(pid, None).is_err() {
                return Err(format!(
                    "the pid file {} names pid {pid}, which does not exist",
                    path.display()
                ));
            }
            return Ok(pid);
        }
        match self.ours().as_slice() {
            [only] => Ok(*only),
            [] => Err("the start process exited and left nothing running (a forking service must leave its daemon)".into()),
            many => Err(format!(
                "the start process left {} processes ({many:?}) and no --pidfile says which is the main one",
                many.len()
            )),
        }
    }
}

/// This process's children that have exited and wait to be reaped, leaving out `skip`.
fn zombie_children(skip: &[i32]) -> Vec<i32> {
    let me = std::process::id() as i32;
    children_of(me)
        .into_iter()
        .filter(|pid| !skip.contains(pid))
        .filter(|&pid| {
            parent_and_state(pid).is_some_and(|(ppid, state)| ppid == me && state == 'Z')
        })
        .collect()
}

/// Every live (not zombie) process below `ancestor` in the process tree, leaving out
/// `skip` and what is below it.
pub fn descendants(ancestor: i32, skip: &[i32]) -> Vec<i32> {
    let mut found = Vec::new();
    let mut frontier = vec![ancestor];
    while let Some(parent) = frontier.pop() {
        for pid in children_of(parent) {
            if skip.contains(&pid) || found.contains(&pid) {
                continue;
            }
            if parent_and_state(pid).is_some_and(|(_, state)| state != 'Z') {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// The children of `pid`: from /proc/PID/task/TID/children (every thread's), which costs
/// the size of the tree asked about; where the kernel has no such file
/// (CONFIG_PROC_CHILDREN off), from a scan of every /proc/PID/stat.
fn children_of(pid: i32) -> Vec<i32> {
    static HAVE_CHILDREN_FILES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let have = *HAVE_CHILDREN_FILES.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    });
    if have {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        return tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|text| {
                text.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| parent_and_state(p).is_some_and(|(ppid, _)| ppid == pid))
        .collect()
}

/// The parent and state letter of `pid`, from its stat.
fn parent_and_state(pid: i32) -> Option<(i32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after = stat.rsplit_once(')')?.1.split_whitespace();
    let state = after.next()?.chars().next()?;
    let ppid = after.next()?.parse().ok()?;
    Some((ppid, state))
}
