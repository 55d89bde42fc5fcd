//! The explorer's state and its one `update`. Rendering is a pure function of this state
//! (see `render.rs`), so tests drive `App` with actions and fixture snapshots.

use crate::lab::{STEPS, StepId, StepOutcome};
use crate::lessons::LessonSet;
use crate::probe::ProcSnapshot;
use crate::syslog::client::LOG_NOWAIT;
use crate::syslog::receiver::Message;
use crate::syslog::tally::Tally;
use crate::syslog::{LOG_CONS, LOG_NDELAY, LOG_PERROR, LOG_PID, SEVERITIES, Severity};

use super::action::{Action, Command, LabEvent};
use super::experiments::ExperimentsView;
use super::locks::{LocksView, PITFALLS};
use super::processes::{InspectView, ProcessesView, SORTS};
use super::theme::Theme;
use super::worker::LabInfo;

/// How steps are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Space runs the next step in the book's order.
    Guided,
    /// Any step, in any order, picked with the cursor.
    Free,
}

/// The panes of the Lab tab, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Steps,
    Process,
    History,
    Lesson,
    Terminal,
    Syslog,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Steps,
        Pane::Process,
        Pane::History,
        Pane::Lesson,
        Pane::Terminal,
        Pane::Syslog,
    ];

    fn offset(self, by: isize) -> Pane {
        let i = Pane::ALL.iter().position(|p| *p == self).unwrap_or(0) as isize;
        Pane::ALL[(i + by).rem_euclid(Pane::ALL.len() as isize) as usize]
    }
}

/// The tabs that exist so far; Locks, Processes and Inspect arrive with their issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Lab,
    Locks,
    Processes,
    Inspect,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Lab, Tab::Locks, Tab::Processes, Tab::Inspect];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Lab => "Lab",
            Tab::Locks => "Locks",
            Tab::Processes => "Processes",
            Tab::Inspect => "Inspect",
        }
    }

    fn offset(self, by: isize) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        Tab::ALL[(i + by).rem_euclid(Tab::ALL.len() as isize) as usize]
    }
}

/// Where each step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Done,
    /// The call failed: errno name when there is one, and the message.
    Failed {
        errno: Option<String>,
        message: String,
    },
}

/// One row of the History pane: a step taken (or a rule a traced program followed) and
/// the kernel's view after it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The `#` column: the step's number, or the trace event's `#seq`.
    pub number: String,
    /// The step's label, or the rule's id.
    pub name: &'static str,
    pub ok: bool,
    pub process: ProcSnapshot,
    pub changed: Vec<&'static str>,
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Everything the screen shows.
pub struct App {
    pub theme: Theme,
    pub lessons: LessonSet,
    pub mode: Mode,
    pub tab: Tab,
    pub focus: Pane,
    pub zoomed: bool,
    pub help: bool,
    /// First row of the help popup on screen (clamped when drawn).
    pub help_scroll: u16,
    /// Current lab generation; events from older ones are dropped.
    pub generation: u64,
    pub lab: Option<LabInfo>,
    pub steps: Vec<StepStatus>,
    /// The step whose lesson is shown (the last one run, or step 0).
    pub shown_step: StepId,
    /// Free-mode cursor.
    pub selected: StepId,
    /// Lines the lesson pane is scrolled down by; back to 0 when the lesson changes.
    pub lesson_scroll: u16,
    /// The guided tour's place in the lesson list (`g`), when it is on.
    pub guide: Option<usize>,
    /// A step is running; further step keys wait.
    pub busy: bool,
    pub process: Option<ProcSnapshot>,
    /// Fields that differ from the snapshot before, marked in the Process pane.
    pub changed: Vec<&'static str>,
    /// The last change came from a re-read, not from a step.
    pub changed_outside: bool,
    /// The last change came from the hang-up (H), with its outcome for the banner.
    pub hangup: Option<crate::lab::HangUpOutcome>,
    /// H hung up this lab's terminal: the stand-in and the pty are gone until r.
    pub hung_up: bool,
    /// The subject has ended (killed, exited): steps have nothing to run on until r.
    pub subject_ended: Option<String>,
    pub history: Vec<HistoryRow>,
    /// The sessions holding the lab's processes after the last step.
    pub sessions: Vec<crate::probe::sessions::SessionPicture>,
    /// The session picture is shown in History's place (`s`).
    pub show_sessions: bool,
    /// What the last step's call returned, in the subject's words.
    pub last_result: Option<String>,
    pub terminal: Vec<String>,
    pub syslog: SyslogView,
    pub locks: LocksView,
    pub experiments: ExperimentsView,
    pub processes: ProcessesView,
    pub inspect: InspectView,
    pub notice: Option<Notice>,
    pub quit: bool,
    /// `daemonlab run`: the subject is a traced program, and this is its trace.
    pub trace: Option<super::traced::TraceView>,
}

/// Terminal lines kept for the pane.
const TERMINAL_LINES: usize = 500;
/// Syslog messages kept for the pane (the receiver keeps its own, larger ring).
pub const SYSLOG_LINES: usize = 2000;
/// Bytes of syslog messages kept for the pane (see [`Message::cost`]): with 64 KiB
/// datagrams, a few dozen, not two thousand.
pub const SYSLOG_BYTES: usize = 4 * 1024 * 1024;

/// The `openlog` options `O` steps through: together they try every option in the book's table.
pub const OPENLOG_PRESETS: [u32; 6] = [
    LOG_CONS,
    LOG_PID | LOG_CONS,
    LOG_PID | LOG_NDELAY,
    LOG_PID | LOG_PERROR,
    LOG_PID | LOG_CONS | LOG_NDELAY | LOG_NOWAIT,
    0,
];

/// The masks `M` steps through: everything, then `LOG_UPTO` of ever more severe levels.
pub const MASK_PRESETS: [u8; 4] = [0xff, 0x3f, 0x0f, 0x07];

/// What the syslog pane shows and counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogView {
    pub messages: Vec<Message>,
    /// What [`Message::cost`] charges for `messages`.
    pub bytes: usize,
    /// Every message the receiver got, as the pane saw them (the same count as
    /// `daemonlab syslogd` prints).
    pub tally: Tally,
    /// Show this severity and worse.
    pub min_severity: Severity,
    /// Frozen at this many messages (new ones still arrive and count).
    pub paused_at: Option<usize>,
    /// Lines scrolled up from the newest.
    pub scroll: usize,
    /// The severity `L` logs at.
    pub test_level: Severity,
    pub mask_preset: usize,
    pub openlog_preset: usize,
    /// The subject's syslog(3) state as it last reported it.
    pub client: Option<crate::lab::protocol::SyslogState>,
    pub receiver_running: bool,
    /// Identical consecutive messages fold into "last message repeated N times".
    pub folding: bool,
    /// Where the messages go, from the lab.
    pub note: String,
}

impl Default for SyslogView {
    fn default() -> Self {
        SyslogView {
            messages: Vec::new(),
            bytes: 0,
            tally: Tally::default(),
            min_severity: Severity::Debug,
            paused_at: None,
            scroll: 0,
            test_level: Severity::Err,
            mask_preset: 0,
            openlog_preset: 0,
            client: None,
            receiver_running: true,
            folding: true,
            note: String::new(),
        }
    }
}

impl SyslogView {
    /// Take what a read of the receiver's ring gave: the new messages, and the tally as
    /// of that read. The pane keeps the newest [`SYSLOG_LINES`], within [`SYSLOG_BYTES`].
    pub fn take(&mut self, messages: Vec<Message>, tally: Tally) {
        self.tally = tally;
        for message in messages {
            self.bytes += message.cost();
            self.messages.push(message);
        }
        let mut excess = self.messages.len().saturating_sub(SYSLOG_LINES);
        let mut bytes = self.bytes
            - self.messages[..excess]
                .iter()
                .map(Message::cost)
                .sum::<usize>();
        // The newest message is always kept, however big.
        while bytes > SYSLOG_BYTES && excess + 1 < self.messages.len() {
            bytes -= self.messages[excess].cost();
            excess += 1;
        }
        self.messages.drain(..excess);
        self.bytes = bytes;
        if let Some(at) = self.paused_at.as_mut() {
            *at = at.saturating_sub(excess);
        }
    }

    /// The messages the pane shows now: up to the pause point, at or above the filter.
    pub fn visible(&self) -> impl DoubleEndedIterator<Item = &Message> {
        let end = self
            .paused_at
            .unwrap_or(self.messages.len())
            .min(self.messages.len());
        let min = self.min_severity;
        self.messages[..end]
            .iter()
            .filter(move |m| m.severity.is_none_or(|s| s <= min))
    }
}

impl App {
    /// A new app waiting for its first lab.
    pub fn new(theme: Theme, lessons: LessonSet) -> App {
        App {
            theme,
            lessons,
            mode: Mode::Guided,
            tab: Tab::Lab,
            focus: Pane::Steps,
            zoomed: false,
            help: false,
            help_scroll: 0,
            generation: 0,
            lab: None,
            steps: vec![StepStatus::Pending; STEPS.len()],
            shown_step: StepId::Start,
            selected: StepId::Start,
            lesson_scroll: 0,
            guide: None,
            busy: true,
            process: None,
            changed: Vec::new(),
            changed_outside: false,
            hangup: None,
            hung_up: false,
            subject_ended: None,
            history: Vec::new(),
            sessions: Vec::new(),
            show_sessions: false,
            last_result: None,
            terminal: Vec::new(),
            syslog: SyslogView::default(),
            locks: LocksView::default(),
            experiments: ExperimentsView::default(),
            processes: ProcessesView {
                hide_kernel: true,
                ..ProcessesView::default()
            },
            inspect: InspectView::default(),
            notice: Some(Notice {
                text: "starting the subject…".into(),
                error: false,
            }),
            quit: false,
            trace: None,
        }
    }

    /// Which key bindings apply now.
    pub fn key_context(&self) -> super::keymap::Context {
        super::keymap::Context {
            tab: self.tab,
            free_mode: self.mode == Mode::Free,
            menu: self.experiments.open,
            traced: self.trace.is_some(),
            service: self.trace.as_ref().is_some_and(|t| t.service.is_some()),
        }
    }

    /// The next step in the book's order that has not succeeded yet.
    pub fn next_step(&self) -> Option<StepId> {
        STEPS
            .iter()
            .find(|s| self.steps[s.index as usize] != StepStatus::Done)
            .map(|s| s.id)
    }

    /// The step whose lesson the Lesson pane shows: the cursor in free mode, otherwise
    /// the step just run.
    pub fn lesson_step(&self) -> StepId {
        match self.mode {
            Mode::Free => self.selected,
            Mode::Guided => self.shown_step,
        }
    }

    /// The lesson the Lesson pane shows: the guided tour's, else the step's.
    pub fn shown_lesson(&self) -> Option<&crate::lessons::Lesson> {
        use super::traced::RuleLesson;
        match (self.guide, &self.trace) {
            (Some(i), _) => self.lessons.lessons.get(i),
            (None, Some(trace)) => match trace.lesson {
                RuleLesson::Step(step) => self.lessons.for_step(step),
                RuleLesson::Id(id) => self.lessons.get(id),
            },
            (None, None) => self.lessons.for_step(self.lesson_step()),
        }
    }

    /// Apply one user action; returns what the runtime must do, if anything.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        let lesson_before = self.lesson_step();
        let command = self.apply(action);
        if self.lesson_step() != lesson_before {
            self.lesson_scroll = 0;
        }
        command
    }

    fn apply(&mut self, action: Action) -> Option<Command> {
        if action != Action::KillHolder {
            self.locks.confirm_kill = false;
        }
        if !self.help
            && self.tab == Tab::Lab
            && let Some(command) = self.trace_action(action)
        {
            return command;
        }
        match action {
            Action::Help => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Action::HelpScroll(rows) if self.help => {
                self.help_scroll = (i32::from(self.help_scroll) + rows).clamp(0, 10_000) as u16
            }
            Action::HelpScroll(_) => {}
            Action::Back if self.help => self.help = false,
            Action::Back if self.experiments.open => self.experiments.open = false,
            Action::SelectUp if self.experiments.open => self.experiments.step(-1),
            Action::SelectDown if self.experiments.open => self.experiments.step(1),
            Action::RunSelected if self.experiments.open => {
                if self.experiments.running {
                    return None;
                }
                self.experiments.running = true;
                self.experiments.report = None;
                self.experiments.error = None;
                self.experiments.scroll = 0;
                return Some(Command::RunExperiment(self.experiments.chosen()));
            }
            Action::LessonDown if self.experiments.open => {
                self.experiments.scroll = self.experiments.scroll.saturating_add(5)
            }
            Action::LessonUp if self.experiments.open => {
                self.experiments.scroll = self.experiments.scroll.saturating_sub(5)
            }
            Action::OpenExperiments => {
                // The lesson on screen may be about one experiment: start the menu on it.
                if let Some(experiment) = self.shown_lesson().and_then(|l| l.experiment) {
                    self.experiments.select(experiment);
                }
                self.experiments.open = true;
            }
            Action::SelectDown if self.tab == Tab::Inspect => {
                self.inspect.scroll = self.inspect.scroll.saturating_add(1)
            }
            Action::SelectUp if self.tab == Tab::Inspect => {
                self.inspect.scroll = self.inspect.scroll.saturating_sub(1)
            }
            Action::SelectUp if self.tab == Tab::Processes => {
                self.processes.selected = self.processes.selected.saturating_sub(1)
            }
            Action::SelectDown if self.tab == Tab::Processes => self.processes.selected += 1,
            Action::RunSelected if self.tab == Tab::Processes => {
                if let Some(pid) = self.processes.selected_pid() {
                    self.inspect = InspectView {
                        pid: Some(pid),
                        ..InspectView::default()
                    };
                    self.tab = Tab::Inspect;
                }
            }
            Action::HideKernelThreads => self.processes.hide_kernel = !self.processes.hide_kernel,
            Action::CycleSort => self.processes.sort = (self.processes.sort + 1) % SORTS.len(),
            Action::ToggleTree => self.processes.tree = !self.processes.tree,
            Action::StartFilter => {
                self.processes.filtering = true;
                self.processes.filter.clear();
            }
            Action::FilterChar(c) => {
                self.processes.filter.push(c);
                self.processes.selected = 0;
            }
            Action::FilterBack => {
                self.processes.filter.pop();
            }
            Action::FilterDone => self.processes.filtering = false,
            Action::InspectDaemon => {
                self.inspect = InspectView::default();
                self.tab = Tab::Inspect;
            }
            Action::HangUp => return self.ask(Command::HangUp),
            // Only `daemonlab run` has a traced program to let go or a timeline to follow.
            Action::RunFreely
            | Action::PickLatest
            | Action::ReloadService
            | Action::StopService => {}
            Action::Quit => {
                self.quit = true;
                return Some(Command::Quit);
            }
            // Esc closes what is open, innermost first, and never quits: a teacher
            // double-tapping it to close help must not lose the class's lab.
            Action::Back if self.zoomed => self.zoomed = false,
            Action::Back if self.mode == Mode::Free => {
                self.mode = Mode::Guided;
                self.note("free mode off: Space runs the next step again", false);
            }
            Action::Back => self.note("nothing to close — q quits", false),
            _ if self.help => {}
            Action::NextStep | Action::RunSelected
                if self.tab == Tab::Lab && self.subject_ended.is_some() =>
            {
                let why = self.subject_ended.clone().unwrap_or_default();
                self.note(
                    &format!("no subject to step: {why}. Press r to start a new lab"),
                    true,
                );
            }
            Action::NextStep if self.guide.is_some() => return self.guide_next(),
            Action::Guide => {
                self.guide = match self.guide {
                    Some(_) => {
                        self.note("guided tour off: Space runs the next step again", false);
                        None
                    }
                    None => {
                        self.mode = Mode::Guided;
                        self.note("guided tour: Space runs each lesson's step, or moves to the next lesson; b goes back, g ends it", false);
                        Some(0)
                    }
                };
                self.lesson_scroll = 0;
            }
            Action::GuideBack => {
                if let Some(i) = self.guide.as_mut() {
                    *i = i.saturating_sub(1);
                    self.lesson_scroll = 0;
                }
            }
            Action::NextStep => match self.next_step() {
                Some(step) => return self.run(step),
                None => self.note(
                    "all eleven steps are done: the subject is a daemon. Press r to start again.",
                    false,
                ),
            },
            Action::RunSelected if self.mode == Mode::Free => return self.run(self.selected),
            Action::RunSelected => {}
            Action::RunStep(step) => {
                self.selected = step;
                return self.run(step);
            }
            Action::Reset => {
                self.reset_view();
                return Some(Command::Reset);
            }
            Action::ToggleFree => {
                self.mode = match self.mode {
                    Mode::Guided => {
                        self.selected = self.next_step().unwrap_or(self.shown_step);
                        self.note("free mode: ↑/↓ pick any step, Enter runs it — the kernel decides if it works", false);
                        Mode::Free
                    }
                    Mode::Free => {
                        self.notice = None;
                        Mode::Guided
                    }
                }
            }
            Action::SelectUp => {
                self.selected = STEPS[(self.selected as usize).saturating_sub(1)].id
            }
            Action::SelectDown => {
                self.selected = STEPS[(self.selected as usize + 1).min(STEPS.len() - 1)].id
            }
            Action::FocusNext if self.tab == Tab::Locks => {
                self.locks.focus = (self.locks.focus + 1) % 4
            }
            Action::FocusPrev if self.tab == Tab::Locks => {
                self.locks.focus = (self.locks.focus + 3) % 4
            }
            Action::Zoom if self.experiments.open => {
                self.experiments.zoomed = !self.experiments.zoomed
            }
            Action::FocusNext => self.focus = self.focus.offset(1),
            Action::FocusPrev => self.focus = self.focus.offset(-1),
            Action::Zoom => self.zoomed = !self.zoomed,
            Action::ToggleSessions => {
                self.show_sessions = !self.show_sessions;
                // Focus goes with it, so z zooms the picture.
                self.focus = Pane::History;
            }
            Action::LessonDown if self.tab == Tab::Inspect => {
                self.inspect.scroll = self.inspect.scroll.saturating_add(10)
            }
            Action::LessonUp if self.tab == Tab::Inspect => {
                self.inspect.scroll = self.inspect.scroll.saturating_sub(10)
            }
            Action::LessonDown if self.tab == Tab::Locks => {
                self.locks.scroll = self.locks.scroll.saturating_add(5)
            }
            Action::LessonUp if self.tab == Tab::Locks => {
                self.locks.scroll = self.locks.scroll.saturating_sub(5)
            }
            Action::LessonDown if self.focus == Pane::Syslog => {
                self.syslog.scroll = self.syslog.scroll.saturating_sub(5)
            }
            Action::LessonUp if self.focus == Pane::Syslog => self.syslog.scroll += 5,
            Action::LessonDown => self.lesson_scroll = self.lesson_scroll.saturating_add(5),
            Action::LessonUp => self.lesson_scroll = self.lesson_scroll.saturating_sub(5),
            Action::CycleLogLevel => {
                let next = (self.syslog.test_level as usize + 1) % SEVERITIES.len();
                self.syslog.test_level = SEVERITIES[next];
                self.note(
                    &format!(
                        "L now logs at LOG_{}",
                        self.syslog.test_level.name().to_uppercase()
                    ),
                    false,
                );
            }
            Action::CycleSyslogFilter => {
                let next =
                    (self.syslog.min_severity as usize + SEVERITIES.len() - 1) % SEVERITIES.len();
                self.syslog.min_severity = SEVERITIES[next];
            }
            Action::PauseSyslog => {
                self.syslog.paused_at = match self.syslog.paused_at {
                    Some(_) => None,
                    None => Some(self.syslog.messages.len()),
                }
            }
            Action::LogTest => return self.ask(Command::Log(self.syslog.test_level)),
            Action::CycleLogMask => {
                let next = (self.syslog.mask_preset + 1) % MASK_PRESETS.len();
                self.syslog.mask_preset = next;
                return self.ask(Command::SetLogMask(MASK_PRESETS[next]));
            }
            Action::CycleOpenlog => {
                let next = (self.syslog.openlog_preset + 1) % OPENLOG_PRESETS.len();
                self.syslog.openlog_preset = next;
                return self.ask(Command::Openlog(OPENLOG_PRESETS[next]));
            }
            Action::ToggleReceiver => return self.ask(Command::ToggleReceiver),
            Action::ToggleFolding => {
                self.syslog.folding = !self.syslog.folding;
                let state = if self.syslog.folding { "on" } else { "off" };
                self.note(&format!("folding of repeated messages is {state}"), false);
                return Some(Command::SetFolding(self.syslog.folding));
            }
            Action::NextTab => self.tab = self.tab.offset(1),
            Action::PrevTab => self.tab = self.tab.offset(-1),
            Action::GoToTab(n) => match Tab::ALL.get(usize::from(n).saturating_sub(1)) {
                Some(tab) => self.tab = *tab,
                None => self.note(
                    &format!("there is no tab {n}: 1 Lab, 2 Locks, 3 Processes, 4 Inspect"),
                    false,
                ),
            },
            Action::SpawnContender | Action::SpawnTen => {
                let count = if action == Action::SpawnTen { 10 } else { 1 };
                let (kind, mode) = (self.locks.kind, self.locks.mode);
                self.note(
                    &format!(
                        "starting {count} {} contender{} in {} mode: each runs already_running() on the pid file",
                        kind.name(),
                        if count == 1 { "" } else { "s" },
                        mode.name()
                    ),
                    false,
                );
                return Some(Command::SpawnContenders { count, kind, mode });
            }
            Action::KillHolder => return self.kill_holder(),
            Action::StopContenders => {
                self.note(
                    "ending every contender: their stdin closes (their lifeline), then SIGKILL by pidfd for any left",
                    false,
                );
                return Some(Command::StopContenders);
            }
            Action::ToggleLockMode => {
                self.locks.mode = self.locks.mode.toggle();
                self.note(
                    &format!("new contenders will {}", mode_words(self.locks.mode)),
                    false,
                );
            }
            Action::CycleLockKind => {
                self.locks.kind = self.locks.kind.next();
                self.note(
                    &format!("new contenders will lock with {}", self.locks.kind.name()),
                    false,
                );
            }
            Action::NextPitfall => {
                self.locks.pitfall = (self.locks.pitfall + 1) % PITFALLS.len();
                self.locks.report = None;
            }
            Action::RunPitfall => {
                if self.locks.running {
                    return None;
                }
                self.locks.running = true;
                self.locks.report = None;
                self.locks.scroll = 0;
                return Some(Command::RunPitfall {
                    pitfall: self.locks.chosen_pitfall(),
                    kind: self.locks.kind,
                });
            }
            Action::TakeLock => return self.ask(Command::TakeLock(self.locks.kind)),
        }
        None
    }

    /// Space in the guided tour: run the lesson's step if it has one not yet done, else
    /// turn to the next lesson.
    fn guide_next(&mut self) -> Option<Command> {
        let i = self.guide?;
        if let Some(step) = self.lessons.lessons.get(i).and_then(|l| l.step)
            && self.steps[step as usize] != StepStatus::Done
        {
            return self.run(step);
        }
        if i + 1 < self.lessons.lessons.len() {
            self.guide = Some(i + 1);
            self.lesson_scroll = 0;
        } else {
            self.guide = None;
            self.note(
                "that was the last lesson: the guided tour is over (g starts it again)",
                false,
            );
        }
        None
    }

    fn run(&mut self, step: StepId) -> Option<Command> {
        self.ask(Command::Run(step))
    }

    /// `k` on the Locks tab: kill the holding contender; if the holder is the lab's own
    /// subject (after K), say so and ask for a second `k` first.
    fn kill_holder(&mut self) -> Option<Command> {
        if let Some(c) = self
            .locks
            .contenders
            .iter()
            .find(|c| c.state == crate::locks::ContenderState::Holding)
        {
            self.note(
                &format!(
                    "SIGKILL to contender pid {} (by pidfd): watch a waiter take the lock",
                    c.pid
                ),
                false,
            );
            return Some(Command::KillHolder);
        }
        let subject = self.lab.as_ref().map(|l| l.subject_pid);
        let held_by_subject = subject.is_some_and(|pid| {
            self.locks.evidence.as_ref().is_some_and(|e| {
                e.table.holders.iter().any(|h| h.pid == pid) || e.fd_holders.contains(&pid)
            })
        });
        match (held_by_subject, subject) {
            (true, Some(pid)) if self.locks.confirm_kill => {
                self.locks.confirm_kill = false;
                self.note(
                    &format!("SIGKILL to the subject pid {pid}: its lock goes with it; the lab's lesson ends here — r starts again"),
                    false,
                );
                Some(Command::KillSubject)
            }
            (true, Some(pid)) => {
                self.locks.confirm_kill = true;
                self.note(
                    &format!(
                        "the lock is held by the lab's own subject (pid {pid}, after K), not a contender: press k again to SIGKILL it (ends this lab's daemon), any other key cancels"
                    ),
                    false,
                );
                None
            }
            _ => {
                self.note(
                    "no contender holds the lock: c starts one, C starts ten",
                    false,
                );
                None
            }
        }
    }

    /// Send a command to the lab unless one is still running.
    fn ask(&mut self, command: Command) -> Option<Command> {
        if self.busy || self.lab.is_none() {
            if self.lab.is_some() {
                self.note("one moment: the last request is still running", false);
            }
            return None;
        }
        self.busy = true;
        self.notice = None;
        Some(command)
    }

    fn note(&mut self, text: &str, error: bool) {
        self.notice = Some(Notice {
            text: text.to_string(),
            error,
        });
    }

    fn reset_view(&mut self) {
        self.generation += 1;
        self.lab = None;
        self.steps = vec![StepStatus::Pending; STEPS.len()];
        self.shown_step = StepId::Start;
        self.selected = StepId::Start;
        self.lesson_scroll = 0;
        self.busy = true;
        self.process = None;
        self.changed.clear();
        self.changed_outside = false;
        self.hangup = None;
        self.hung_up = false;
        self.subject_ended = None;
        self.history.clear();
        self.sessions.clear();
        self.last_result = None;
        self.terminal.clear();
        self.syslog = SyslogView {
            test_level: self.syslog.test_level,
            ..SyslogView::default()
        };
        self.note("starting a new subject…", false);
    }

    /// Apply what the lab worker reported.
    pub fn handle_lab(&mut self, event: LabEvent) {
        let generation = match &event {
            LabEvent::Started { generation, .. }
            | LabEvent::StartFailed { generation, .. }
            | LabEvent::StepDone { generation, .. }
            | LabEvent::StepError { generation, .. }
            | LabEvent::Refreshed { generation, .. }
            | LabEvent::SubjectGone { generation, .. }
            | LabEvent::Terminal { generation, .. }
            | LabEvent::SyslogFeed { generation, .. }
            | LabEvent::SyslogDone { generation, .. }
            | LabEvent::Receiver { generation, .. }
            | LabEvent::Trace { generation, .. }
            | LabEvent::Locks { generation, .. }
            | LabEvent::Pitfall { generation, .. } => *generation,
            LabEvent::Experiment { .. } => self.generation,
            LabEvent::Note { generation, .. } | LabEvent::HungUp { generation, .. } => *generation,
            LabEvent::Ps { .. } | LabEvent::Inspected { .. } => self.generation,
        };
        if generation != self.generation {
            return;
        }
        match event {
            LabEvent::Started { info, snapshot, .. } => {
                self.syslog.note = info.syslog_note.clone();
                self.lab = Some(info);
                self.busy = false;
                self.notice = None;
                self.process = Some(*snapshot);
            }
            LabEvent::StartFailed { message, .. } => {
                self.busy = false;
                self.note(
                    &format!("{message}. Without a lab, `daemonlab inspect PID`, `daemonlab ps`, `daemonlab locks race` and `daemonlab syslogd` still work; r tries again"),
                    true,
                );
            }
            LabEvent::StepDone { outcome, .. } => self.step_done(*outcome),
            LabEvent::StepError { step, message, .. } => {
                self.busy = false;
                self.shown_step = step;
                self.note(&message, true);
            }
            LabEvent::Refreshed { snapshot, .. } => {
                if let Some(before) = &self.process {
                    self.changed = snapshot.changed_fields(before);
                    self.changed_outside = true;
                    self.hangup = None;
                }
                self.process = Some(*snapshot);
            }
            LabEvent::SubjectGone { message, .. } => {
                self.subject_ended = Some(message.clone());
                self.note(&message, true);
            }
            LabEvent::HungUp { outcome, .. } => {
                self.busy = false;
                match &outcome.process {
                    Some(after) => {
                        if let Some(before) = &self.process {
                            self.changed = after.changed_fields(before);
                        }
                        self.process = Some(after.clone());
                    }
                    None => {
                        self.changed.clear();
                        self.subject_ended = Some(outcome.headline());
                    }
                }
                self.changed_outside = false;
                self.sessions = outcome.sessions.clone();
                self.note(
                    &format!(
                        "hung up: {} — details in the Process pane; r starts a new lab",
                        outcome.headline()
                    ),
                    false,
                );
                self.hangup = Some(*outcome);
                self.hung_up = true;
            }
            // The event loop reads the ring through the feed; nothing to keep here.
            LabEvent::SyslogFeed { .. } => {}
            LabEvent::Trace { update, .. } => self.trace_update(update),
            LabEvent::Ps { rows, ours } => {
                self.processes.rows = rows;
                self.processes.ours = ours;
                let shown = self.processes.visible().len();
                self.processes.selected = self.processes.selected.min(shown.saturating_sub(1));
            }
            LabEvent::Inspected { pid, result } => {
                if self.inspect.pid.is_none() || self.inspect.pid == Some(pid) {
                    match result {
                        Ok(audit) => {
                            self.inspect.audit = Some(*audit);
                            self.inspect.error = None;
                        }
                        Err(message) => self.inspect.error = Some(message),
                    }
                }
            }
            LabEvent::Note { message, error, .. } => {
                self.busy = false;
                self.note(&message, error);
            }
            LabEvent::Experiment { report } => {
                self.experiments.running = false;
                match report {
                    Ok(report) => self.experiments.report = Some(*report),
                    Err(message) => self.experiments.error = Some(message),
                }
            }
            LabEvent::Locks {
                contenders,
                evidence,
                ..
            } => {
                self.locks.contenders = contenders;
                self.locks.evidence = Some(*evidence);
            }
            LabEvent::Pitfall { report, .. } => {
                self.locks.running = false;
                match report {
                    Ok(report) => self.locks.report = Some(*report),
                    Err(message) => self.note(&message, true),
                }
            }
            LabEvent::Receiver {
                running, message, ..
            } => {
                self.busy = false;
                self.syslog.receiver_running = running;
                self.note(&message, false);
            }
            LabEvent::SyslogDone { what, outcome, .. } => {
                self.busy = false;
                match outcome {
                    Ok(outcome) => {
                        let outcome = *outcome;
                        self.last_result = Some(match &outcome.error {
                            None => format!("{what}: {}", outcome.detail),
                            Some(e) => format!("{what} failed: {}", e.message),
                        });
                        self.notice = Some(Notice {
                            text: self.last_result.clone().unwrap_or_default(),
                            error: !outcome.ok,
                        });
                        if outcome.syslog.is_some() {
                            self.syslog.client = outcome.syslog;
                        }
                        self.changed = outcome.changed;
                        self.changed_outside = false;
                        self.process = Some(outcome.process);
                    }
                    Err(message) => self.note(&message, true),
                }
            }
            LabEvent::Terminal { lines, .. } => {
                self.terminal.extend(lines);
                let excess = self.terminal.len().saturating_sub(TERMINAL_LINES);
                self.terminal.drain(..excess);
            }
        }
    }

    fn step_done(&mut self, outcome: StepOutcome) {
        self.busy = false;
        self.hangup = None;
        let index = outcome.step as usize;
        self.steps[index] = match &outcome.error {
            None => StepStatus::Done,
            Some(e) => StepStatus::Failed {
                errno: e.name.clone(),
                message: e.message.clone(),
            },
        };
        if self.mode == Mode::Guided && self.shown_step != outcome.step {
            self.lesson_scroll = 0;
        }
        self.shown_step = outcome.step;
        let info = outcome.step.info();
        self.last_result = Some(match &outcome.error {
            None => format!("{} {}: {}", info.index, info.id.label(), outcome.detail),
            Some(e) => format!("{} {} failed: {}", info.index, info.id.label(), e.message),
        });
        self.changed = outcome.changed.clone();
        self.changed_outside = false;
        if let Some(lab) = self.lab.as_mut() {
            lab.subject_pid = outcome.process.pid;
        }
        self.notice = match (&outcome.error, &outcome.cross_check) {
            (Some(e), _) => Some(Notice {
                text: format!("{} failed: {}", outcome.step.info().short, e.message),
                error: true,
            }),
            (None, Some(mismatch)) => Some(Notice {
                text: format!("cross-check: {mismatch}"),
                error: true,
            }),
            (None, None) => outcome.syslog.first().map(|m| Notice {
                text: format!("syslog receiver got: {}", m.text),
                error: false,
            }),
        };
        self.sessions = outcome.sessions;
        self.history.push(HistoryRow {
            number: info.index.to_string(),
            name: info.id.label(),
            ok: outcome.ok,
            process: outcome.process.clone(),
            changed: outcome.changed,
        });
        self.process = Some(outcome.process);
    }
}

/// A lock mode in the words of the status line.
fn mode_words(mode: crate::locks::LockMode) -> &'static str {
    match mode {
        crate::locks::LockMode::Try => "try the lock and give up at once if it is held",
        crate::locks::LockMode::Wait => "wait in the kernel until the lock is free",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::fixtures;

    fn started() -> App {
        fixtures::app_after(0, Theme::mono(), LessonSet::embedded())
    }

    #[test]
    fn space_runs_the_next_step_once_and_waits_for_its_result() {
        let mut app = App::new(Theme::mono(), LessonSet::embedded());
        assert_eq!(app.update(Action::NextStep), None, "no lab yet");
        let mut app2 = started();
        assert_eq!(
            app2.update(Action::NextStep),
            Some(Command::Run(StepId::Start))
        );
        assert_eq!(
            app2.update(Action::NextStep),
            None,
            "busy until the step reports"
        );
        app = fixtures::app_after(4, Theme::mono(), LessonSet::embedded());
        assert_eq!(app.next_step(), Some(StepId::Setsid));
        assert_eq!(app.history.len(), 4);
        assert_eq!(
            app.update(Action::NextStep),
            Some(Command::Run(StepId::Setsid))
        );
    }

    #[test]
    fn finishing_every_step_leaves_nothing_to_run() {
        let mut app = fixtures::app_after(STEPS.len(), Theme::mono(), LessonSet::embedded());
        assert_eq!(app.next_step(), None);
        assert_eq!(app.update(Action::NextStep), None);
        assert!(app.notice.as_ref().unwrap().text.contains("daemon"));
        assert_eq!(app.shown_step, StepId::Openlog);
    }

    #[test]
    fn free_mode_runs_the_picked_step_and_shows_a_failure() {
        let mut app = started();
        app.update(Action::ToggleFree);
        assert_eq!(app.mode, Mode::Free);
        for _ in 0..4 {
            app.update(Action::SelectDown);
        }
        assert_eq!(app.selected, StepId::Setsid);
        assert_eq!(
            app.update(Action::RunSelected),
            Some(Command::Run(StepId::Setsid))
        );
        app.handle_lab(LabEvent::StepDone {
            generation: 0,
            outcome: Box::new(fixtures::setsid_eperm()),
        });
        assert!(matches!(
            &app.steps[StepId::Setsid as usize],
            StepStatus::Failed { errno: Some(errno), message }
                if errno == "EPERM" && message.starts_with("EPERM: Operation not permitted")
        ));
        assert_eq!(app.lesson_step(), StepId::Setsid);
        assert!(app.notice.as_ref().unwrap().error);
        assert_eq!(
            app.next_step(),
            Some(StepId::Start),
            "a failure is not progress"
        );
        app.update(Action::SelectUp);
        assert_eq!(
            app.lesson_step(),
            StepId::Fork,
            "free mode shows the lesson under the cursor"
        );
    }

    #[test]
    fn reset_drops_reports_from_the_old_subject() {
        let mut app = fixtures::app_after(3, Theme::mono(), LessonSet::embedded());
        assert_eq!(app.update(Action::Reset), Some(Command::Reset));
        assert!(app.history.is_empty() && app.lab.is_none() && app.busy);
        let stale = fixtures::tour().remove(3);
        app.handle_lab(LabEvent::StepDone {
            generation: 0,
            outcome: Box::new(stale),
        });
        assert!(
            app.history.is_empty(),
            "generation 0 is stale after a reset"
        );
        app.handle_lab(LabEvent::Started {
            generation: 1,
            info: fixtures::lab_info(),
            snapshot: Box::new(fixtures::start_snapshot()),
        });
        assert!(!app.busy && app.lab.is_some());
    }

    #[test]
    fn help_esc_tabs_zoom_and_focus() {
        let mut app = started();
        app.update(Action::Help);
        assert!(app.help);
        assert_eq!(
            app.update(Action::NextStep),
            None,
            "keys wait while help is open"
        );
        assert_eq!(app.update(Action::Back), None);
        assert!(!app.help && !app.quit, "Esc closes the popup first");
        app.update(Action::GoToTab(2));
        assert_eq!(app.tab, Tab::Locks);
        app.update(Action::NextTab);
        app.update(Action::NextTab);
        app.update(Action::NextTab);
        assert_eq!(app.tab, Tab::Lab, "Tab wraps around the four tabs");
        app.update(Action::PrevTab);
        assert_eq!(app.tab, Tab::Inspect);
        app.update(Action::GoToTab(5));
        assert!(app.notice.as_ref().unwrap().text.contains("tab 5"));
        app.update(Action::GoToTab(1));
        app.update(Action::FocusNext);
        assert_eq!(app.focus, Pane::Process);
        app.update(Action::FocusPrev);
        app.update(Action::FocusPrev);
        assert_eq!(app.focus, Pane::Syslog);
        app.update(Action::Zoom);
        assert!(app.zoomed);
        assert_eq!(app.update(Action::Back), None);
        assert!(!app.zoomed && !app.quit, "Esc closes the zoom");
        app.update(Action::ToggleFree);
        app.update(Action::Back);
        assert_eq!(app.mode, Mode::Guided, "Esc leaves free mode");
        for _ in 0..3 {
            assert_eq!(app.update(Action::Back), None, "Esc never quits");
        }
        assert!(!app.quit);
        assert_eq!(app.update(Action::Quit), Some(Command::Quit));
        assert!(app.quit);
    }

    #[test]
    fn x_from_a_lesson_about_an_experiment_opens_the_menu_on_it() {
        use crate::lab::experiments::Experiment;
        let text = "+++\nid = \"a\"\ntitle = \"b\"\nsection = \"13.3\"\n\
                    experiment = \"no-chdir\"\n+++\nbody\n";
        let plain = "+++\nid = \"p\"\ntitle = \"b\"\nsection = \"13.3\"\n+++\nbody\n";
        let lessons = LessonSet::from_sources(&[("01-a.md", text), ("02-p.md", plain)]).unwrap();
        let mut app = fixtures::app_after(1, Theme::mono(), lessons);
        app.guide = Some(0);
        app.update(Action::OpenExperiments);
        assert!(app.experiments.open);
        assert_eq!(app.experiments.chosen(), Experiment::NoChdir);
        // A lesson about no experiment leaves the cursor where the learner left it.
        app.update(Action::SelectDown);
        app.update(Action::Back);
        app.guide = Some(1);
        app.update(Action::OpenExperiments);
        assert_eq!(
            app.experiments.chosen(),
            Experiment::ALL[(Experiment::ALL
                .iter()
                .position(|&e| e == Experiment::NoChdir)
                .unwrap()
                + 1)
                % Experiment::ALL.len()]
        );
    }

    #[test]
    fn the_lesson_scrolls_and_starts_at_the_top_when_it_changes() {
        let mut app = fixtures::app_after(2, Theme::mono(), LessonSet::embedded());
        app.update(Action::LessonDown);
        app.update(Action::LessonDown);
        assert_eq!(app.lesson_scroll, 10);
        app.update(Action::LessonUp);
        assert_eq!(app.lesson_scroll, 5);
        app.update(Action::ToggleFree);
        assert_eq!(app.lesson_scroll, 0, "another lesson starts at the top");
    }

    #[test]
    fn syslog_keys_ask_the_lab_and_the_view_filters_pauses_and_counts() {
        let mut app = fixtures::app_after(11, Theme::mono(), LessonSet::embedded());
        assert_eq!(app.syslog.tally.received, 1, "the openlog step's message");
        assert_eq!(
            app.update(Action::LogTest),
            Some(Command::Log(Severity::Err))
        );
        assert_eq!(app.update(Action::LogTest), None, "one request at a time");
        app.busy = false;
        app.update(Action::CycleLogLevel);
        assert_eq!(app.syslog.test_level, Severity::Warning);
        assert_eq!(
            app.update(Action::CycleLogMask),
            Some(Command::SetLogMask(MASK_PRESETS[1]))
        );
        app.busy = false;
        assert_eq!(
            app.update(Action::CycleOpenlog),
            Some(Command::Openlog(OPENLOG_PRESETS[1]))
        );
        app.busy = false;
        assert_eq!(
            app.update(Action::ToggleReceiver),
            Some(Command::ToggleReceiver)
        );
        app.handle_lab(LabEvent::Receiver {
            generation: 0,
            running: false,
            message: "stopped".into(),
        });
        assert!(!app.syslog.receiver_running && !app.busy);

        let mut tally = app.syslog.tally;
        let mut arrive = |app: &mut App, text: &str| {
            let message = crate::syslog::receiver::Message::from_datagram(
                crate::syslog::receiver::Source::Unix,
                Some(1),
                text.as_bytes(),
            );
            tally.received += 1;
            tally.shown += 1;
            tally.malformed += u64::from(message.parsed.malformed);
            app.syslog.take(vec![message], tally);
        };
        app.update(Action::PauseSyslog);
        arrive(&mut app, "<31>x: debug");
        arrive(&mut app, "garbage");
        assert_eq!(app.syslog.tally.received, 3);
        assert_eq!(app.syslog.tally.malformed, 1);
        assert_eq!(
            app.syslog.visible().count(),
            1,
            "paused: new messages count but wait"
        );
        app.update(Action::PauseSyslog);
        assert_eq!(app.syslog.visible().count(), 3);
        app.update(Action::CycleSyslogFilter);
        assert_eq!(app.syslog.min_severity, Severity::Info);
        assert_eq!(
            app.syslog.visible().count(),
            2,
            "debug hidden, malformed always shown"
        );
    }

    #[test]
    fn the_guided_tour_runs_each_lessons_step_then_turns_the_page() {
        let mut app = fixtures::app_after(0, Theme::mono(), LessonSet::embedded());
        app.update(Action::Guide);
        assert_eq!(app.guide, Some(0));
        let steps_before_first: Vec<bool> = app
            .lessons
            .lessons
            .iter()
            .map(|l| l.step.is_some())
            .collect();
        // Walk until the first lesson with a step: Space asks the lab to run it.
        let mut command = None;
        for _ in 0..app.lessons.lessons.len() {
            command = app.update(Action::NextStep);
            if command.is_some() {
                break;
            }
        }
        let i = app.guide.unwrap();
        assert!(steps_before_first[i], "stopped at a lesson with a step");
        assert_eq!(
            command,
            Some(Command::Run(app.lessons.lessons[i].step.unwrap()))
        );
        let outcome = fixtures::tour().remove(0);
        app.handle_lab(LabEvent::StepDone {
            generation: 0,
            outcome: Box::new(outcome),
        });
        assert_eq!(
            app.update(Action::NextStep),
            None,
            "its step is done: turn the page"
        );
        assert_eq!(app.guide, Some(i + 1));
        app.update(Action::GuideBack);
        assert_eq!(app.guide, Some(i));
        app.update(Action::Guide);
        assert_eq!(app.guide, None);
    }

    #[test]
    fn a_change_seen_by_a_re_read_is_marked_as_from_outside() {
        let mut app = fixtures::app_after(1, Theme::mono(), LessonSet::embedded());
        let mut stopped = app.process.clone().unwrap();
        stopped.state = 'T';
        stopped.state_name = "stopped";
        app.handle_lab(LabEvent::Refreshed {
            generation: 0,
            snapshot: Box::new(stopped),
        });
        assert_eq!(app.changed, ["state"]);
        assert!(app.changed_outside);
    }

    #[test]
    fn k_kills_a_contender_but_asks_before_killing_the_subject() {
        use crate::locks::{ContenderState, Evidence, LockTable, proc_locks};
        let mut app = fixtures::locks_demo(Theme::mono(), LessonSet::embedded());
        assert_eq!(app.update(Action::KillHolder), Some(Command::KillHolder));
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("contender pid 4301")
        );
        // Now the subject (after K) holds the lock and no contender does.
        let subject = app.lab.as_ref().unwrap().subject_pid;
        for c in &mut app.locks.contenders {
            c.state = ContenderState::Exited {
                status: "exit 1".into(),
            };
        }
        let line = format!("1: POSIX  ADVISORY  WRITE {subject} 00:1f:2047 0 EOF\n");
        app.locks.evidence = Some(Evidence {
            table: LockTable {
                holders: proc_locks::parse(&line),
                waiters: Vec::new(),
            },
            ..Evidence::default()
        });
        assert_eq!(
            app.update(Action::KillHolder),
            None,
            "the first k only asks"
        );
        assert!(app.notice.as_ref().unwrap().text.contains("press k again"));
        app.update(Action::CycleLockKind);
        assert_eq!(
            app.update(Action::KillHolder),
            None,
            "another key cancelled"
        );
        assert_eq!(app.update(Action::KillHolder), Some(Command::KillSubject));
    }
}
