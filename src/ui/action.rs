//! Everything that can happen to the app: keys turned into actions, and what the lab
//! reports. `App::update` is the only place state changes.

use crate::audit::Audit;
use crate::lab::experiments::{Experiment, ExperimentReport};
use crate::lab::{ActionOutcome, StepId, StepOutcome};
use crate::locks::pitfalls::{Pitfall, PitfallReport};
use crate::locks::{ContenderInfo, Evidence, LockKind, LockMode};
use crate::probe::ProcSnapshot;
use crate::probe::ps::PsRow;
use crate::syslog::Severity;
use crate::syslog::receiver::Feed;

use super::worker::LabInfo;

/// A user intention, produced by the key table (or a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Scroll the help popup by this many rows (while it is open).
    HelpScroll(i32),
    /// Run the next step in the book's order.
    NextStep,
    /// End the subject and start a new one at step 0.
    Reset,
    /// Toggle free mode (any step, any order).
    ToggleFree,
    /// Move the free-mode cursor.
    SelectUp,
    SelectDown,
    /// Run the step under the free-mode cursor.
    RunSelected,
    /// Run a given step (mouse click on the step list).
    RunStep(StepId),
    NextTab,
    PrevTab,
    /// Switch to tab N (1-based).
    GoToTab(u8),
    /// Move keyboard focus to the next / previous pane.
    FocusNext,
    FocusPrev,
    /// Zoom the focused pane to the whole screen, and back.
    Zoom,
    /// Show the session picture where History is, and back.
    ToggleSessions,
    /// Scroll the lesson pane.
    LessonDown,
    LessonUp,
    /// Make the subject `syslog()` a test message at the chosen severity.
    LogTest,
    /// Choose the severity `LogTest` uses.
    CycleLogLevel,
    /// Cycle the subject's `setlogmask`.
    CycleLogMask,
    /// Cycle the options the subject passes to `openlog`.
    CycleOpenlog,
    /// Stop or start the lab's syslog receiver.
    ToggleReceiver,
    /// Fold repeats into "last message repeated N times", or not.
    ToggleFolding,
    /// Cycle the syslog pane's minimum severity.
    CycleSyslogFilter,
    /// Freeze or unfreeze the syslog pane.
    PauseSyslog,
    /// Locks tab: start one contender / ten at once.
    SpawnContender,
    SpawnTen,
    /// Locks tab: SIGKILL the holder.
    KillHolder,
    /// Locks tab: try / wait for new contenders.
    ToggleLockMode,
    /// Locks tab: fcntl -> flock -> OFD.
    CycleLockKind,
    /// Locks tab: run / choose a pitfall scenario.
    RunPitfall,
    NextPitfall,
    /// Locks tab: end every contender.
    StopContenders,
    /// Lab tab: the subject takes the pid-file lock.
    TakeLock,
    /// Processes tab: hide or show kernel threads; cycle the sort; tree view; filter.
    HideKernelThreads,
    CycleSort,
    ToggleTree,
    StartFilter,
    FilterChar(char),
    FilterBack,
    FilterDone,
    /// Inspect tab: back to the lab's own daemon.
    InspectDaemon,
    /// Open the experiments menu.
    OpenExperiments,
    /// Hang up the subject's terminal.
    HangUp,
    /// Start or end the guided tour through every lesson.
    Guide,
    /// Guided tour: back to the previous lesson.
    GuideBack,
    /// `daemonlab run`: let the traced program go on freely, without holding it at rules.
    RunFreely,
    /// `daemonlab run`: the timeline follows the newest row again.
    PickLatest,
    /// `daemonlab run --service`: reload the service (SIGHUP).
    ReloadService,
    /// `daemonlab run --service`: stop the service (SIGTERM, then SIGKILL).
    StopService,
    /// Show or hide the help popup.
    Help,
    /// Esc: close a popup, otherwise quit.
    Back,
    Quit,
}

/// What the lab worker reports; `generation` tells a stale report (from before a reset)
/// from a current one.
#[derive(Debug, Clone)]
pub enum LabEvent {
    Started {
        generation: u64,
        info: LabInfo,
        snapshot: Box<ProcSnapshot>,
    },
    StartFailed {
        generation: u64,
        message: String,
    },
    StepDone {
        generation: u64,
        outcome: Box<StepOutcome>,
    },
    StepError {
        generation: u64,
        step: StepId,
        message: String,
    },
    /// A periodic re-read found the process changed (from outside the lab, say).
    Refreshed {
        generation: u64,
        snapshot: Box<ProcSnapshot>,
    },
    /// The subject is gone and the lab did not end it.
    SubjectGone {
        generation: u64,
        message: String,
    },
    Terminal {
        generation: u64,
        lines: Vec<String>,
    },
    /// The lab's receiver, to read: the screen takes what is new from its ring when it
    /// draws, instead of one event per datagram (a flood must not queue in front of keys).
    SyslogFeed {
        generation: u64,
        feed: Feed,
    },
    /// A syslog request (not a step) finished.
    SyslogDone {
        generation: u64,
        what: String,
        outcome: Result<Box<ActionOutcome>, String>,
    },
    /// The lock demo's contenders and the kernel's evidence, after a change.
    Locks {
        generation: u64,
        contenders: Vec<ContenderInfo>,
        evidence: Box<Evidence>,
    },
    /// A pitfall scenario finished (or could not run).
    Pitfall {
        generation: u64,
        report: Result<Box<PitfallReport>, String>,
    },
    /// The terminal was hung up (H): what the kernel showed afterwards.
    HungUp {
        generation: u64,
        outcome: Box<crate::lab::HangUpOutcome>,
    },
    /// Something to tell the user about a request that has no view of its own.
    Note {
        generation: u64,
        message: String,
        error: bool,
    },
    /// The process table, read again.
    Ps {
        rows: Vec<PsRow>,
        /// Live processes this lab started (tracked by pidfd): the only ones marked "lab".
        ours: Vec<i32>,
    },
    /// The checklist for one PID, read again.
    Inspected {
        pid: i32,
        result: Result<Box<Audit>, String>,
    },
    /// An experiment finished on its own lab.
    Experiment {
        report: Result<Box<ExperimentReport>, String>,
    },
    /// The receiver was stopped or started.
    Receiver {
        generation: u64,
        running: bool,
        message: String,
    },
    /// `daemonlab run`: what the traced program did, and where the trace stands.
    Trace {
        generation: u64,
        update: TraceUpdate,
    },
}

/// What the trace worker of `daemonlab run` reports.
#[derive(Debug, Clone)]
pub enum TraceUpdate {
    /// New rows for the timeline, in order.
    Events(Vec<crate::trace::rules::Event>),
    /// Held at a rule until Space.
    Held,
    /// Running to its next rule (or freely).
    Running,
    /// The trace has ended, with its verdict and how it ended in words.
    Finished(Box<crate::trace::rules::Verdict>, String),
    /// `run --service`: the service's state, in systemd's word, and why.
    ServiceState(&'static str, String),
    /// `run --service`: the manager has ended (the service is inactive or failed).
    ServiceEnded(String),
}

/// What `update` asks the runtime to do; `update` itself never touches a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run(StepId),
    Log(Severity),
    SetLogMask(u8),
    Openlog(u32),
    ToggleReceiver,
    SetFolding(bool),
    SpawnContenders {
        count: usize,
        kind: LockKind,
        mode: LockMode,
    },
    KillHolder,
    /// SIGKILL the lab's own subject (it holds the lock after K), once confirmed.
    KillSubject,
    StopContenders,
    RunPitfall {
        pitfall: Pitfall,
        kind: LockKind,
    },
    TakeLock(LockKind),
    RunExperiment(Experiment),
    /// Which live tables the worker should keep fresh (once a second): the process table,
    /// and the audit of a PID (`Some(None)` = the lab's daemon).
    Watch {
        ps: bool,
        inspect: Option<Option<i32>>,
    },
    HangUp,
    /// `daemonlab run`: let the held program go on to its next rule.
    TraceStep,
    /// `daemonlab run`: let it go on without holding it again.
    TraceFreely,
    /// `daemonlab run --service`: reload / stop the service.
    ServiceReload,
    ServiceStop,
    /// A contender changed state: read the lock evidence again.
    RefreshLocks,
    Reset,
    Quit,
}
