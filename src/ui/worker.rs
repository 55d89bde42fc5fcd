//! The lab runs on its own thread, so a step never blocks drawing or keys. The worker
//! owns the `Lab`, carries out commands, and reports `LabEvent`s; it re-reads the
//! subject's snapshot at most once a second, and only while a subject is alive.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::lab::experiments;
use crate::lab::protocol::Request;
use crate::lab::{Lab, LabError, LabOptions};
use crate::locks::pitfalls;
use crate::locks::{ContenderState, Contenders};
use crate::probe::{ProbeError, ProcSnapshot};
use crate::process::Guard;
use crate::syslog::Facility;

use super::action::{Command, LabEvent};

/// Facts about a running lab that the header and panes show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabInfo {
    /// The process running the lab (the explorer itself).
    pub lab_pid: i32,
    pub session_pid: i32,
    pub subject_pid: i32,
    /// `pts/N`.
    pub pty: String,
    pub control_fd: i32,
    pub syslog_socket: PathBuf,
    /// Where the subject's syslog messages go, in words.
    pub syslog_note: String,
}

/// How often a live subject is re-read, to catch changes made from outside.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The shared slot for the current lab's guard, so a panic or a signal can end it.
pub type GuardSlot = Arc<Mutex<Option<Arc<Guard>>>>;

/// Start the worker thread. Events go out through `report`, wrapped by the caller.
pub fn spawn(
    options: LabOptions,
    commands: Receiver<Command>,
    to_self: Sender<Command>,
    report: impl Fn(LabEvent) + Send + Clone + 'static,
    guard_slot: GuardSlot,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lab-worker".into())
        .spawn(move || {
            // One syslog socket path for the whole run, kept across r: a directory of the
            // explorer's own (its janitor removes it, whatever happens) holds it.
            let mut options = options;
            let stable = stable_syslog_dir(&options);
            if let Some((dir, _)) = &stable {
                options.syslog_path = Some(dir.path().join("log"));
            }
            Worker {
                options,
                _stable: stable,
                report,
                guard_slot,
                generation: 0,
                test_messages: 0,
                to_self,
                watch_ps: false,
                watch_inspect: None,
                ps_reader: crate::probe::ps::TableReader::default(),
            }
            .run(commands)
        })
}

struct Worker<R> {
    options: LabOptions,
    /// The directory that holds the run's syslog socket, and the janitor that removes it.
    _stable: Option<(tempfile::TempDir, crate::janitor::Janitor)>,
    report: R,
    guard_slot: GuardSlot,
    generation: u64,
    test_messages: u64,
    /// The worker's own inbox, so contenders' reader threads can ask for a refresh.
    to_self: Sender<Command>,
    /// Keep the process table fresh (the Processes tab is on screen).
    watch_ps: bool,
    /// Keep this PID's audit fresh (`Some(None)`: the lab's daemon).
    watch_inspect: Option<Option<i32>>,
    /// The process table between refreshes: a known process costs one read of its stat.
    ps_reader: crate::probe::ps::TableReader,
}

/// A private directory for the run's syslog socket, with a janitor watching it; `None`
/// (each lab then binds in its own runtime directory) if either cannot be made.
fn stable_syslog_dir(options: &LabOptions) -> Option<(tempfile::TempDir, crate::janitor::Janitor)> {
    if options.system_syslog {
        return None;
    }
    let janitor = crate::janitor::Janitor::start(&options.exe).ok()?;
    let dir = crate::janitor::making(|| {
        let dir = crate::lab::private_runtime_dir(options.runtime_base.clone()).ok()?;
        janitor.add(&crate::janitor::Entry::dir(dir.path()).ok()?);
        Some(dir)
    })?;
    Some((dir, janitor))
}

/// The lab and what the worker last showed of it.
struct Live {
    /// First, so contenders end before the lab removes its runtime directory.
    contenders: Arc<Contenders>,
    lab: Lab,
    shown: ProcSnapshot,
    /// The subject is gone; stop re-reading it.
    gone: bool,
}

impl<R: Fn(LabEvent) + Send + Clone + 'static> Worker<R> {
    fn run(mut self, commands: Receiver<Command>) {
        let mut live = self.start();
        loop {
            let watching = self.watch_ps || self.watch_inspect.is_some();
            let timeout = if watching || live.as_ref().is_some_and(|l| !l.gone) {
                REFRESH
            } else {
                Duration::from_secs(3600)
            };
            let command = commands.recv_timeout(timeout);
            if let Ok(command) = &command {
                tracing::debug!(?command, "worker");
            }
            match command {
                Ok(Command::Run(step)) => {
                    if let Some(l) = live.as_mut() {
                        self.run_step(l, step);
                    }
                }
                Ok(Command::Log(severity)) => {
                    // Numbered, so two presses are two messages, not one folded repeat.
                    self.test_messages += 1;
                    // %m is strerror(errno): the subject sets errno to ENOENT on purpose, so
                    // the message shows what %m does instead of whatever errno was left.
                    let message = format!(
                        "test message {} at LOG_{}; errno set to ENOENT, so %m gives: %m",
                        self.test_messages,
                        severity.name().to_uppercase()
                    );
                    self.syslog_request(
                        &mut live,
                        "syslog",
                        Request::Log {
                            severity,
                            message,
                            errno: Some(libc::ENOENT),
                        },
                    );
                }
                Ok(Command::SetLogMask(mask)) => {
                    self.syslog_request(&mut live, "setlogmask", Request::SetLogMask { mask })
                }
                Ok(Command::Openlog(option)) => self.syslog_request(
                    &mut live,
                    "openlog",
                    Request::Openlog {
                        option,
                        facility: Facility::Daemon,
                    },
                ),
                Ok(Command::SpawnContenders { count, kind, mode }) => {
                    if let Some(l) = live.as_ref() {
                        if let Err(e) = l.contenders.spawn_many(count, kind, mode) {
                            let message = format!("cannot start a contender: {e}");
                            (self.report)(LabEvent::Pitfall {
                                generation: self.generation,
                                report: Err(message),
                            });
                        }
                        self.report_locks(l);
                    }
                }
                Ok(Command::KillHolder) => {
                    if let Some(l) = live.as_ref() {
                        l.contenders.kill_holder();
                        self.report_locks(l);
                    }
                }
                Ok(Command::KillSubject) => {
                    if let Some(l) = live.as_ref() {
                        if let Err(e) = l.lab.kill_subject() {
                            (self.report)(LabEvent::Note {
                                generation: self.generation,
                                message: format!("cannot kill the subject: {e}"),
                                error: true,
                            });
                        }
                        self.report_locks(l);
                    }
                }
                Ok(Command::StopContenders) => {
                    if let Some(l) = live.as_ref() {
                        l.contenders.stop_all();
                        self.report_locks(l);
                    }
                }
                Ok(Command::RefreshLocks) => {
                    if let Some(l) = live.as_ref() {
                        self.report_locks(l);
                    }
                }
                Ok(Command::RunPitfall { pitfall, kind }) => {
                    let generation = self.generation;
                    let report = match live.as_ref() {
                        Some(l) => {
                            let dir = l.lab.runtime_dir().join("pitfalls");
                            let _ = std::fs::create_dir_all(&dir);
                            Ok(Box::new(pitfalls::run(
                                pitfall,
                                kind,
                                &self.options.exe,
                                &dir,
                            )))
                        }
                        None => Err("no lab is running".to_string()),
                    };
                    (self.report)(LabEvent::Pitfall { generation, report });
                }
                Ok(Command::TakeLock(kind)) => {
                    if let Some(l) = live.as_ref() {
                        let path = l.contenders.pidfile().to_path_buf();
                        self.syslog_request(
                            &mut live,
                            "already_running()",
                            Request::Lock { path, kind },
                        );
                        if let Some(l) = live.as_ref() {
                            self.report_locks(l);
                        }
                    }
                }
                Ok(Command::RunExperiment(experiment)) => {
                    // Experiments start labs of their own: not on the explorer's socket path.
                    let options = LabOptions {
                        syslog_path: None,
                        ..self.options.clone()
                    };
                    let report = experiments::run(experiment, &options)
                        .map(Box::new)
                        .map_err(|e| format!("{} could not run: {e}", experiment.name()));
                    (self.report)(LabEvent::Experiment { report });
                }
                // The lab's subject is not traced: these belong to `daemonlab run`'s worker.
                Ok(
                    Command::TraceStep
                    | Command::TraceFreely
                    | Command::ServiceReload
                    | Command::ServiceStop,
                ) => {}
                Ok(Command::HangUp) => {
                    if let Some(l) = live.as_mut() {
                        let generation = self.generation;
                        match l.lab.hang_up() {
                            Ok(outcome) => {
                                // The event carries the kernel's view after the hang-up, so
                                // a later re-read does not call these changes "outside".
                                match &outcome.process {
                                    Some(p) => l.shown = p.clone(),
                                    None => l.gone = true,
                                }
                                (self.report)(LabEvent::HungUp {
                                    generation,
                                    outcome: Box::new(outcome),
                                });
                            }
                            Err(e) => (self.report)(LabEvent::Note {
                                generation,
                                message: e.to_string(),
                                error: true,
                            }),
                        }
                    }
                }
                Ok(Command::SetFolding(fold)) => {
                    if let Some(l) = live.as_ref() {
                        l.lab.syslog().set_folding(fold);
                    }
                }
                Ok(Command::ToggleReceiver) => {
                    if let Some(l) = live.as_ref() {
                        self.toggle_receiver(l);
                    }
                }
                Ok(Command::Reset) => {
                    drop(live.take());
                    self.generation += 1;
                    live = self.start();
                }
                Ok(Command::Quit) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(l) = live.as_mut()
                        && !l.gone
                    {
                        self.refresh(l);
                    }
                    self.report_watched(live.as_ref());
                }
                Ok(Command::Watch { ps, inspect }) => {
                    self.watch_ps = ps;
                    self.watch_inspect = inspect;
                    self.report_watched(live.as_ref());
                }
            }
        }
        *self.guard_slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
        drop(live);
    }

    fn start(&self) -> Option<Live> {
        let generation = self.generation;
        let lab = match Lab::start(self.options.clone()) {
            Ok(lab) => lab,
            Err(e) => {
                tracing::warn!(error = %e, "the lab could not start");
                (self.report)(LabEvent::StartFailed {
                    generation,
                    message: e.to_string(),
                });
                return None;
            }
        };
        *self.guard_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(lab.guard());
        let info = LabInfo {
            lab_pid: std::process::id() as i32,
            session_pid: lab.session_pid(),
            subject_pid: lab.subject_pid(),
            pty: lab.pty_name().to_string(),
            control_fd: lab.control_fd(),
            syslog_socket: lab.syslog().path().to_path_buf(),
            syslog_note: lab.syslog_note().to_string(),
        };
        let shown = lab.last_snapshot().clone();
        (self.report)(LabEvent::Started {
            generation,
            info,
            snapshot: Box::new(shown.clone()),
        });
        (self.report)(LabEvent::SyslogFeed {
            generation,
            feed: lab.syslog().feed(),
        });
        let report = self.report.clone();
        lab.terminal().set_listener(Box::new(move |lines| {
            report(LabEvent::Terminal { generation, lines })
        }));
        let pidfile = lab.runtime_dir().join("daemonlab.pid");
        let contenders = Arc::new(Contenders::new(
            self.options.exe.clone(),
            pidfile,
            Some(lab.syslog().path().to_path_buf()),
        ));
        let to_self = Mutex::new(self.to_self.clone());
        contenders.set_listener(Box::new(move || {
            let _ = to_self
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Command::RefreshLocks);
        }));
        let _ = self.to_self.send(Command::RefreshLocks);
        Some(Live {
            contenders,
            lab,
            shown,
            gone: false,
        })
    }

    fn run_step(&self, live: &mut Live, step: crate::lab::StepId) {
        let generation = self.generation;
        match live.lab.run(step) {
            Ok(outcome) => {
                live.shown = outcome.process.clone();
                (self.report)(LabEvent::StepDone {
                    generation,
                    outcome: Box::new(outcome),
                });
            }
            Err(e) => {
                tracing::warn!(?step, error = %e, "step failed to complete");
                let message = match &e {
                    LabError::Probe(ProbeError::NoSuchProcess(_)) | LabError::Lost { .. } => {
                        live.gone = true;
                        format!("{e} — press r to start a new subject")
                    }
                    _ => e.to_string(),
                };
                (self.report)(LabEvent::StepError {
                    generation,
                    step,
                    message,
                });
            }
        }
    }

    fn syslog_request(&self, live: &mut Option<Live>, what: &str, request: Request) {
        let generation = self.generation;
        let Some(live) = live.as_mut() else { return };
        let outcome = match live.lab.syslog_request(request) {
            Ok(outcome) => {
                live.shown = outcome.process.clone();
                Ok(Box::new(outcome))
            }
            Err(e) => Err(e.to_string()),
        };
        (self.report)(LabEvent::SyslogDone {
            generation,
            what: what.to_string(),
            outcome,
        });
    }

    fn toggle_receiver(&self, live: &Live) {
        let generation = self.generation;
        let receiver = live.lab.syslog();
        let (running, message) = if receiver.is_running() {
            receiver.stop();
            (
                false,
                format!(
                    "the lab's syslogd is stopped: {} is gone. Press L: with LOG_CONS the message goes to the \
                 console (here the subject's terminal); without it, it is lost. S starts it again.",
                    receiver.path().display()
                ),
            )
        } else {
            match receiver.start() {
                Ok(()) => (true, "the lab's syslogd is back; the subject's next syslog() reconnects, as glibc does".into()),
                Err(e) => (false, format!("cannot start the lab's syslogd again: {e}")),
            }
        };
        (self.report)(LabEvent::Receiver {
            generation,
            running,
            message,
        });
    }

    /// Re-read what the visible tab shows: the process table, or one PID's checklist.
    fn report_watched(&mut self, live: Option<&Live>) {
        if self.watch_ps {
            match self.ps_reader.read() {
                Ok(rows) => {
                    let mut ours = live.map(|l| l.lab.guard().alive()).unwrap_or_default();
                    ours.extend(live.and_then(|l| l.lab.janitor().pid()).map(|p| p as i32));
                    ours.push(std::process::id() as i32);
                    (self.report)(LabEvent::Ps { rows, ours })
                }
                Err(e) => (self.report)(LabEvent::Note {
                    generation: self.generation,
                    message: format!("cannot read the process table from /proc: {e}"),
                    error: true,
                }),
            }
        }
        if let Some(target) = self.watch_inspect {
            let Some(pid) = target.or(live.map(|l| l.lab.subject_pid())) else {
                return;
            };
            let result = crate::audit::inspect(pid)
                .map(Box::new)
                .map_err(|e| e.to_string());
            (self.report)(LabEvent::Inspected { pid, result });
        }
    }

    /// The contenders and the kernel's lock evidence, as of now.
    fn report_locks(&self, live: &Live) {
        // A refused contender exits at once; its refusal is the part worth showing.
        let outcomes = live.contenders.outcomes();
        let contenders = live
            .contenders
            .list()
            .into_iter()
            .map(|mut c| {
                let refused = outcomes.iter().find(|o| o.pid == c.pid).map(|o| &o.state);
                if matches!(c.state, ContenderState::Exited { .. })
                    && let Some(refused @ ContenderState::Refused { .. }) = refused
                {
                    c.state = refused.clone();
                }
                c
            })
            .collect();
        (self.report)(LabEvent::Locks {
            generation: self.generation,
            contenders,
            evidence: Box::new(live.contenders.evidence()),
        });
    }

    /// Re-read the subject; report only when something changed (idle stays idle).
    fn refresh(&self, live: &mut Live) {
        let generation = self.generation;
        match live.lab.snapshot() {
            // A zombie has ended as surely as a vanished process.
            Ok(snapshot) if snapshot.state == 'Z' => {
                live.gone = true;
                let message = format!(
                    "the subject (pid {}) has ended: {}. The lab did not end it — press r to start a new one",
                    snapshot.pid,
                    live.lab.how_it_ended()
                );
                live.shown = snapshot.clone();
                (self.report)(LabEvent::Refreshed {
                    generation,
                    snapshot: Box::new(snapshot),
                });
                (self.report)(LabEvent::SubjectGone {
                    generation,
                    message,
                });
            }
            Ok(snapshot) if snapshot != live.shown => {
                live.shown = snapshot.clone();
                (self.report)(LabEvent::Refreshed {
                    generation,
                    snapshot: Box::new(snapshot),
                });
            }
            Ok(_) => {}
            Err(_) => {
                live.gone = true;
                let message = format!(
                    "the subject (pid {}) is gone: {}. The lab did not end it — press r to start a new one",
                    live.shown.pid,
                    live.lab.how_it_ended()
                );
                (self.report)(LabEvent::SubjectGone {
                    generation,
                    message,
                });
            }
        }
    }
}
