//! The lab runs on its own thread, so a step never blocks drawing or keys. The worker
//! owns the `Lab`, carries out commands, and reports `LabEvent`s; it re-reads the
//! subject's snapshot at most once a second, and only while a subject is alive.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::lab::guard::Guard;
use crate::lab::{Lab, LabError, LabOptions};
use crate::probe::{ProbeError, ProcSnapshot};

use super::action::{Command, LabEvent};

/// Facts about a running lab that the header and panes show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabInfo {
    pub session_pid: i32,
    pub subject_pid: i32,
    /// `pts/N`.
    pub pty: String,
    pub control_fd: i32,
    pub syslog_socket: PathBuf,
}

/// How often a live subject is re-read, to catch changes made from outside.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The shared slot for the current lab's guard, so a panic or a signal can end it.
pub type GuardSlot = Arc<Mutex<Option<Arc<Guard>>>>;

/// Start the worker thread. Events go out through `report`, wrapped by the caller.
pub fn spawn(
    options: LabOptions,
    commands: Receiver<Command>,
    report: impl Fn(LabEvent) + Send + Clone + 'static,
    guard_slot: GuardSlot,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lab-worker".into())
        .spawn(move || {
            Worker {
                options,
                report,
                guard_slot,
                generation: 0,
            }
            .run(commands)
        })
}

struct Worker<R> {
    options: LabOptions,
    report: R,
    guard_slot: GuardSlot,
    generation: u64,
}

/// The lab and what the worker last showed of it.
struct Live {
    lab: Lab,
    shown: ProcSnapshot,
    /// The subject is gone; stop re-reading it.
    gone: bool,
}

impl<R: Fn(LabEvent) + Send + Clone + 'static> Worker<R> {
    fn run(mut self, commands: Receiver<Command>) {
        let mut live = self.start();
        loop {
            let timeout = if live.as_ref().is_some_and(|l| !l.gone) {
                REFRESH
            } else {
                Duration::from_secs(3600)
            };
            match commands.recv_timeout(timeout) {
                Ok(Command::Run(step)) => {
                    if let Some(l) = live.as_mut() {
                        self.run_step(l, step);
                    }
                }
                Ok(Command::Reset) => {
                    drop(live.take());
                    self.generation += 1;
                    live = self.start();
                }
                Ok(Command::Quit) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(l) = live.as_mut() {
                        self.refresh(l);
                    }
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
                (self.report)(LabEvent::StartFailed {
                    generation,
                    message: e.to_string(),
                });
                return None;
            }
        };
        *self.guard_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(lab.guard());
        let info = LabInfo {
            session_pid: lab.session_pid(),
            subject_pid: lab.subject_pid(),
            pty: lab.pty_name().to_string(),
            control_fd: lab.control_fd(),
            syslog_socket: lab.syslog().path().to_path_buf(),
        };
        let shown = lab.last_snapshot().clone();
        (self.report)(LabEvent::Started {
            generation,
            info,
            snapshot: Box::new(shown.clone()),
        });
        let report = self.report.clone();
        lab.terminal().set_listener(Box::new(move |lines| {
            report(LabEvent::Terminal { generation, lines })
        }));
        Some(Live {
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

    /// Re-read the subject; report only when something changed (idle stays idle).
    fn refresh(&self, live: &mut Live) {
        let generation = self.generation;
        match live.lab.snapshot() {
            Ok(snapshot) if snapshot != live.shown => {
                live.shown = snapshot.clone();
                (self.report)(LabEvent::Refreshed {
                    generation,
                    snapshot: Box::new(snapshot),
                });
            }
            Ok(_) => {}
            Err(e) => {
                live.gone = true;
                let message = format!(
                    "the subject (pid {}) is gone: {e}. The lab did not end it — press r to start a new one",
                    live.shown.pid
                );
                (self.report)(LabEvent::SubjectGone {
                    generation,
                    message,
                });
            }
        }
    }
}
