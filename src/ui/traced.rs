//! The Lab tab with a traced program as its subject (`daemonlab run -- PROGRAM`): the
//! Steps pane becomes the observed timeline, and the Process, History, Lesson, Terminal,
//! Syslog and session panes show the program as they show the lab's own subject — each
//! snapshot read while the program was held at the rule's call.

use crate::lab::StepId;
use crate::trace::rules::{Event, Verdict};

use super::action::{Command, TraceUpdate};
use super::app::{App, HistoryRow, Notice};

/// Where the trace stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceState {
    /// Running to its next rule.
    Running,
    /// Held at a rule until Space.
    Held,
    /// Running without being held (c).
    Free,
    /// The trace has ended; the program is kept until q.
    Finished,
}

/// The lesson that explains a rule: a step's own, or one about what the rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleLesson {
    Step(StepId),
    Id(&'static str),
}

impl RuleLesson {
    /// The lesson for a rule id of `crate::trace::rules` (the lab's step ids and a few more).
    pub fn for_rule(rule: &str) -> RuleLesson {
        if let Some(step) = StepId::parse(rule) {
            return RuleLesson::Step(step);
        }
        RuleLesson::Id(match rule {
            "lock" => "single-instance",
            "pidfile_write" => "daemon-conventions",
            "chroot" => "chroot-syslog",
            "drop_privileges" => "dropping-privileges",
            "notify" => "new-style-daemons",
            "acquire_tty" => "no-controlling-terminal",
            "exec" => "close-on-exec",
            "listen" | "notified" | "rejected" | "signal" => "notify-and-activation",
            "prepared" | "state" => "two-models",
            _ => "reading-a-trace",
        })
    }
}

/// A rule's name on screen: the lab's step label for the book's rules (`fork again`,
/// not `second_fork`), a word or two for the others. JSON keeps the ids.
pub fn rule_label(rule: &str) -> &'static str {
    if let Some(step) = StepId::parse(rule) {
        return step.label();
    }
    match rule {
        "exec" => "exec",
        "chroot" => "chroot",
        "lock" => "lock",
        "pidfile_write" => "pid file",
        "acquire_tty" => "takes a tty",
        "notify" => "sd_notify",
        "drop_privileges" => "drops root",
        // `run --service`: what the manager saw.
        "listen" => "listening",
        "prepared" => "prepared",
        "state" => "state",
        "notified" => "notify",
        "rejected" => "REJECTED",
        "signal" => "signal",
        _ => "rule",
    }
}

/// A timeline row for what a service manager saw (`run --service`): not a system call,
/// so no syscall and no arguments; `rule` is listen, prepared, state, notified, rejected
/// or signal, and a rejected message is marked as an error row.
pub fn manager_row(
    seq: u64,
    t_ms: f64,
    pid: i32,
    rule: &'static str,
    what: String,
    process: Option<crate::probe::ProcSnapshot>,
    changed: Vec<&'static str>,
) -> Event {
    Event::Syscall {
        seq,
        t_ms,
        pid,
        syscall: None,
        args: [0; 6],
        result: 0,
        errno: (rule == "rejected").then(|| "rejected".to_string()),
        rule: Some(rule),
        what,
        calls: 1,
        process,
        changed,
        sessions: Vec::new(),
    }
}

/// What `daemonlab run` shows of its trace.
#[derive(Debug, Clone)]
pub struct TraceView {
    /// The program as started, for the header.
    pub program: String,
    /// Every event so far, in order.
    pub timeline: Vec<Event>,
    /// The row the panes show; `None` follows the newest.
    pub picked: Option<usize>,
    pub state: TraceState,
    /// At the end: the verdict, and how the trace ended in words.
    pub verdict: Option<(Box<Verdict>, String)>,
    /// The lesson for the rule on screen.
    pub lesson: RuleLesson,
    /// `run --service`: the service's type, and its state and why (None for a trace).
    pub service: Option<ServiceView>,
}

/// What `run --service` shows of the service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// `notify`, `forking`…
    pub kind: &'static str,
    pub state: &'static str,
    pub words: String,
    /// The manager has ended.
    pub ended: bool,
}

impl TraceView {
    pub fn new(program: impl Into<String>) -> TraceView {
        TraceView {
            program: program.into(),
            timeline: Vec::new(),
            picked: None,
            state: TraceState::Running,
            verdict: None,
            lesson: RuleLesson::Step(StepId::Start),
            service: None,
        }
    }

    /// `run --service`: the same view, for a service of `kind`.
    pub fn service(program: impl Into<String>, kind: &'static str) -> TraceView {
        TraceView {
            lesson: RuleLesson::Id("two-models"),
            service: Some(ServiceView {
                kind,
                state: "activating",
                words: String::new(),
                ended: false,
            }),
            ..TraceView::new(program)
        }
    }

    /// The row the panes show: the picked one, else the newest.
    pub fn shown_row(&self) -> Option<usize> {
        self.picked.or(self.timeline.len().checked_sub(1))
    }

    /// The `#seq` of the rule event the panes show.
    pub fn shown_seq(&self) -> Option<u64> {
        match self.rule_at(self.shown_row()?)? {
            Event::Syscall { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The rule event at or before `row` (the process view belongs to a rule event).
    fn rule_at(&self, row: usize) -> Option<&Event> {
        self.timeline[..=row.min(self.timeline.len().checked_sub(1)?)]
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e,
                    Event::Syscall {
                        process: Some(_),
                        ..
                    }
                )
            })
    }
}

impl App {
    /// A report from the trace worker.
    pub(super) fn trace_update(&mut self, update: TraceUpdate) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        match update {
            TraceUpdate::Events(events) => {
                for event in events {
                    if let Event::Syscall {
                        seq,
                        rule: Some(rule),
                        process: Some(process),
                        changed,
                        errno,
                        ..
                    } = &event
                    {
                        self.history.push(HistoryRow {
                            number: format!("#{seq}"),
                            name: rule_label(rule),
                            ok: errno.is_none(),
                            process: process.clone(),
                            changed: changed.clone(),
                        });
                    }
                    trace.timeline.push(event);
                }
                if trace.picked.is_none() {
                    self.show_trace_row();
                }
            }
            // The status line says so.
            TraceUpdate::Held => trace.state = TraceState::Held,
            TraceUpdate::Running => {
                if trace.state == TraceState::Held {
                    trace.state = TraceState::Running;
                }
            }
            TraceUpdate::ServiceState(state, words) => {
                if let Some(s) = trace.service.as_mut() {
                    s.state = state;
                    s.words = words;
                }
            }
            TraceUpdate::ServiceEnded(words) => {
                trace.state = TraceState::Finished;
                if let Some(s) = trace.service.as_mut() {
                    s.ended = true;
                }
                self.notice = Some(Notice {
                    text: format!("the manager has ended: {words} — q quits"),
                    error: false,
                });
                self.busy = false;
            }
            TraceUpdate::Finished(verdict, ending) => {
                trace.state = TraceState::Finished;
                trace.lesson = RuleLesson::Id("reading-a-trace");
                self.lesson_scroll = 0;
                self.notice = Some(Notice {
                    text: format!(
                        "the trace has ended ({ending}): {} — the verdict is in the Lesson pane; q ends the program",
                        verdict.summary
                    ),
                    error: false,
                });
                trace.verdict = Some((verdict, ending));
                self.busy = false;
            }
        }
    }

    /// Keys on the Lab tab of `daemonlab run`; `None` when `action` is not one of them.
    pub(super) fn trace_action(
        &mut self,
        action: super::action::Action,
    ) -> Option<Option<Command>> {
        use super::action::Action;
        let trace = self.trace.as_mut()?;
        match action {
            Action::NextStep => match trace.state {
                TraceState::Held => {
                    trace.state = TraceState::Running;
                    self.notice = None;
                    return Some(Some(Command::TraceStep));
                }
                TraceState::Running => self.note_trace("running to its next rule…"),
                TraceState::Free => self.note_trace("running freely (c): nothing is held any more"),
                TraceState::Finished => {
                    self.note_trace("the trace has ended; q ends the program and quits")
                }
            },
            Action::RunFreely => {
                if matches!(trace.state, TraceState::Held | TraceState::Running) {
                    trace.state = TraceState::Free;
                    self.note_trace("running freely: every rule is still recorded");
                    return Some(Some(Command::TraceFreely));
                }
            }
            Action::SelectUp | Action::SelectDown => {
                let Some(last) = trace.timeline.len().checked_sub(1) else {
                    return Some(None);
                };
                let by: isize = if action == Action::SelectUp { -1 } else { 1 };
                let now = trace.picked.unwrap_or(last) as isize;
                let next = (now + by).clamp(0, last as isize) as usize;
                trace.picked = (next != last).then_some(next);
                self.show_trace_row();
            }
            Action::PickLatest => {
                trace.picked = None;
                self.show_trace_row();
            }
            Action::ReloadService | Action::StopService if trace.service.is_some() => {
                if trace.service.as_ref().is_some_and(|s| s.ended) {
                    self.note_trace("the service has ended; q quits");
                    return Some(None);
                }
                return Some(Some(if action == Action::ReloadService {
                    Command::ServiceReload
                } else {
                    Command::ServiceStop
                }));
            }
            _ => return None,
        }
        Some(None)
    }

    fn note_trace(&mut self, text: &str) {
        self.notice = Some(Notice {
            text: text.to_string(),
            error: false,
        });
    }

    /// Point the Process pane, the session picture and the lesson at the shown row.
    fn show_trace_row(&mut self) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        let Some(row) = trace.shown_row() else {
            return;
        };
        let Some(Event::Syscall {
            rule,
            process: Some(process),
            changed,
            sessions,
            what,
            ..
        }) = trace.rule_at(row).cloned()
        else {
            return;
        };
        if trace.state != TraceState::Finished || trace.picked.is_some() {
            trace.lesson = RuleLesson::for_rule(rule.unwrap_or("reading-a-trace"));
        }
        self.last_result = Some(what);
        self.changed = changed;
        self.changed_outside = false;
        if !sessions.is_empty() {
            self.sessions = sessions;
        }
        if let Some(lab) = self.lab.as_mut() {
            lab.subject_pid = process.pid;
        }
        self.process = Some(process);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::LessonSet;
    use crate::ui::action::Action;
    use crate::ui::fixtures::run_demo;
    use crate::ui::theme::Theme;

    fn held() -> App {
        run_demo(Theme::default_colors(), LessonSet::embedded(), false)
    }

    #[test]
    fn rule_events_become_history_rows_and_the_process_follows_the_newest() {
        let app = held();
        let names: Vec<&str> = app.history.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "start",
                "umask",
                "getrlimit",
                "fork",
                "setsid",
                "ignore HUP",
                "fork again"
            ]
        );
        assert!(app.history.iter().all(|r| r.number.starts_with('#')));
        let newest = app.history.last().unwrap();
        assert_eq!(app.process.as_ref(), Some(&newest.process));
        assert_eq!(app.lab.as_ref().unwrap().subject_pid, newest.process.pid);
        let trace = app.trace.as_ref().unwrap();
        assert_eq!(trace.state, TraceState::Held);
        assert_eq!(trace.lesson, RuleLesson::Step(StepId::SecondFork));
        assert_eq!(
            app.shown_lesson().map(|l| l.step),
            Some(Some(StepId::SecondFork))
        );
    }

    #[test]
    fn space_lets_a_held_program_go_once_and_only_when_held() {
        let mut app = held();
        assert_eq!(app.update(Action::NextStep), Some(Command::TraceStep));
        assert_eq!(app.trace.as_ref().unwrap().state, TraceState::Running);
        // Not held: a second Space asks for nothing and says why.
        assert_eq!(app.update(Action::NextStep), None);
        assert!(app.notice.as_ref().unwrap().text.contains("running"));
        app.trace_update(TraceUpdate::Held);
        assert_eq!(app.update(Action::RunFreely), Some(Command::TraceFreely));
        assert_eq!(app.trace.as_ref().unwrap().state, TraceState::Free);
        assert_eq!(app.update(Action::NextStep), None);
        // Running stays Free: the worker's Running must not re-arm the holding.
        app.trace_update(TraceUpdate::Running);
        assert_eq!(app.trace.as_ref().unwrap().state, TraceState::Free);
    }

    #[test]
    fn picking_an_older_row_shows_the_process_as_it_was_then() {
        let mut app = held();
        let newest = app.process.clone().unwrap();
        // Up from the newest row (#12, fork again) to #11 (the parent's exit): its rule
        // event is #9, ignore HUP, by the first child.
        app.update(Action::SelectUp);
        let trace = app.trace.as_ref().unwrap();
        assert_eq!(trace.picked, Some(trace.timeline.len() - 2));
        assert_eq!(trace.shown_seq(), Some(9));
        assert_eq!(trace.lesson, RuleLesson::Step(StepId::IgnoreSighup));
        let then = app.process.clone().unwrap();
        assert_ne!(
            then.pid, newest.pid,
            "the first child, before the second fork"
        );
        // Home again.
        app.update(Action::PickLatest);
        assert_eq!(app.trace.as_ref().unwrap().picked, None);
        assert_eq!(app.process.as_ref(), Some(&newest));
        // Down at the newest row stays there.
        app.update(Action::SelectDown);
        assert_eq!(app.trace.as_ref().unwrap().picked, None);
    }

    #[test]
    fn the_end_keeps_the_verdict_and_turns_to_the_reading_lesson() {
        let app = run_demo(Theme::default_colors(), LessonSet::embedded(), true);
        let trace = app.trace.as_ref().unwrap();
        assert_eq!(trace.state, TraceState::Finished);
        assert_eq!(trace.lesson, RuleLesson::Id("reading-a-trace"));
        let (verdict, _) = trace.verdict.as_ref().unwrap();
        assert_eq!(verdict.findings[0].id, "pidfile_before_fork");
        assert_eq!(
            app.shown_lesson().map(|l| l.id.as_str()),
            Some("reading-a-trace")
        );
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("the trace has ended")
        );
    }

    #[test]
    fn every_rule_has_a_label_and_a_lesson_in_the_built_in_set() {
        let lessons = LessonSet::embedded();
        for rule in [
            "start",
            "exec",
            "umask",
            "getrlimit",
            "fork",
            "setsid",
            "ignore_sighup",
            "second_fork",
            "chdir",
            "chroot",
            "close_fds",
            "dev_null",
            "openlog",
            "lock",
            "pidfile_write",
            "acquire_tty",
            "notify",
            "drop_privileges",
        ] {
            assert_ne!(rule_label(rule), "rule", "{rule}");
            assert!(
                !rule_label(rule).contains('_') || rule == "notify",
                "{rule}"
            );
            let found = match RuleLesson::for_rule(rule) {
                RuleLesson::Step(step) => lessons.for_step(step).is_some(),
                RuleLesson::Id(id) => lessons.get(id).is_some(),
            };
            assert!(found, "no lesson for {rule}");
        }
    }
}
