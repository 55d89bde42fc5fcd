//! `daemonlab run -- PROGRAM`: the explorer with any program as its subject. The program
//! is traced as `daemonlab trace` does it; here it is held at every rule until Space, so
//! a teacher can single-step a real daemon's daemonization in front of the class.
//!
//! Left: the observed timeline, one row per rule as it happens. Right: the kernel's view
//! of the process at the picked row (read while it was held), what its terminal showed,
//! and at the end the verdict. The trace core lives in `crate::trace`; a worker thread
//! owns it, so this thread only draws.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};

use super::theme::Theme;
use crate::lab::terminal::Terminal as Pty;
use crate::trace::rules::{Event as TraceEvent, Tracker, Verdict};
use crate::trace::{Ending, TraceOptions, Traced};

/// The smallest screen the run view draws on.
const MIN: (u16, u16) = (60, 16);

enum Event {
    Key(KeyEvent),
    Redraw,
    Quit,
    Worker(FromWorker),
}

enum FromWorker {
    Events(Vec<TraceEvent>),
    /// Held at a rule, waiting for Space.
    Held,
    Running,
    Finished(Box<Verdict>, String),
    Gone,
}

enum ToWorker {
    Step,
    RunFreely,
}

/// Run the explorer on `options.program` until q, a signal or a lost terminal; the
/// program ends with it (its tracer's EXITKILL).
pub fn run(options: TraceOptions, theme: Theme) -> color_eyre::Result<ExitCode> {
    let traced = match Traced::start(&options) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("daemonlab run: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let title = format!(
        "{} · pid {} · a job of the shell stand-in {} on {}",
        traced.path.display(),
        traced.job,
        traced.session_pid,
        traced.pty_name
    );
    let pty = traced.pty_name.clone();
    let terminal_lines = Arc::clone(traced.terminal());
    let (events, inbox) = mpsc::channel::<Event>();
    let (to_worker, worker_inbox) = mpsc::channel::<ToWorker>();
    forward_keys(events.clone())?;
    forward_signals(events.clone())?;
    let hung_up = events.clone();
    crate::hangup::watch(move || {
        let _ = hung_up.send(Event::Quit);
    })?;
    let worker_events = events.clone();
    let terminal_events = events.clone();
    terminal_lines.set_listener(Box::new(move |_| {
        let _ = terminal_events.send(Event::Redraw);
    }));
    let worker = std::thread::Builder::new()
        .name("tracer".into())
        .spawn(move || follow(traced, options, worker_inbox, worker_events))?;

    let mut view = View {
        theme,
        title,
        pty,
        timeline: Vec::new(),
        picked: None,
        state: State::Running,
        verdict: None,
        terminal: terminal_lines,
        sessions: false,
    };
    let mut terminal = ratatui::init();
    let result = (|| -> color_eyre::Result<()> {
        loop {
            terminal.draw(|f| view.draw(f))?;
            let Ok(event) = inbox.recv() else {
                return Ok(());
            };
            match event {
                Event::Quit => return Ok(()),
                Event::Redraw => {}
                Event::Worker(w) => view.apply(w),
                Event::Key(key) => {
                    if key.kind != KeyEventKind::Press {
                        continue;
                    }
                    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
                        && key.code == KeyCode::Char('c');
                    match key.code {
                        _ if ctrl_c => return Ok(()),
                        KeyCode::Char('q') => return Ok(()),
                        KeyCode::Char(' ') | KeyCode::Char('n') if view.state == State::Held => {
                            view.state = State::Running;
                            let _ = to_worker.send(ToWorker::Step);
                        }
                        KeyCode::Char('c') => {
                            view.state = State::Running;
                            let _ = to_worker.send(ToWorker::RunFreely);
                        }
                        KeyCode::Char('s') => view.sessions = !view.sessions,
                        KeyCode::Up | KeyCode::Char('k') => view.pick(-1),
                        KeyCode::Down | KeyCode::Char('j') => view.pick(1),
                        KeyCode::End => view.picked = None,
                        _ => {}
                    }
                }
            }
        }
    })();
    if !crate::hangup::terminal_gone() {
        let _ = ratatui::try_restore();
    }
    // Dropping the worker's channel ends it; its Traced ends the program.
    drop(to_worker);
    let _ = worker.join();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The worker: the trace's loop, holding the program at each rule until told.
///
/// Every process that reports a stop stays stopped until the rule it shows is on screen
/// and the user pressed Space; only the parent of a fork whose fate is still open goes on
/// at once (it must be free to exit, which is what decides the rule's name).
fn follow(traced: Traced, options: TraceOptions, inbox: Receiver<ToWorker>, out: Sender<Event>) {
    let send = |w: FromWorker| out.send(Event::Worker(w)).is_ok();
    let mut tracker = Tracker::new(traced.job, traced.session_pid);
    let mut freely = false;
    let mut held: Vec<i32> = Vec::new();
    let mut quiet_since = std::time::Instant::now();
    let ending = loop {
        if tracker.original_exited() && tracker.alive_count() == 0 {
            break Ending::AllExited;
        }
        if tracker.original_exited() && quiet_since.elapsed() >= options.settle {
            break Ending::Settled;
        }
        if let Ok(ToWorker::RunFreely) = inbox.try_recv() {
            freely = true;
        }
        let mut message = None;
        match traced.next(Duration::from_millis(50)) {
            Ok(m) => message = Some(m),
            Err(RecvTimeoutError::Timeout) => tracker.tick(),
            Err(RecvTimeoutError::Disconnected) => break Ending::TracerGone,
        }
        if let Some(m) = &message {
            let before = tracker.rule_count();
            tracker.handle(m);
            let active = matches!(
                m,
                crate::trace::protocol::TracerMessage::Call(_)
                    | crate::trace::protocol::TracerMessage::Forked { .. }
                    | crate::trace::protocol::TracerMessage::Exec { .. }
                    | crate::trace::protocol::TracerMessage::Busy { .. }
            );
            if tracker.rule_count() != before || active {
                quiet_since = std::time::Instant::now();
            }
            if let Some(pid) = crate::trace::held_pid(m) {
                held.push(pid);
            }
        }
        // Show the events one rule at a time: a batch (a fork settled together with its
        // child's first call) still stops at each rule.
        let mut batch = Vec::new();
        for event in tracker.take_events() {
            let rule = event.rule().is_some();
            batch.push(event);
            if !rule || freely || held.is_empty() {
                continue;
            }
            if !send(FromWorker::Events(std::mem::take(&mut batch))) || !send(FromWorker::Held) {
                return;
            }
            match inbox.recv() {
                Ok(ToWorker::Step) => {}
                Ok(ToWorker::RunFreely) => freely = true,
                Err(_) => return,
            }
            if !send(FromWorker::Running) {
                return;
            }
            quiet_since = std::time::Instant::now();
            tracker.restart_patience();
        }
        if !batch.is_empty() && !send(FromWorker::Events(batch)) {
            return;
        }
        match tracker.waiting_on() {
            // A fork's fate is open: its parent goes on, the rest wait for it.
            Some(parent) if !freely => held.retain(|&pid| {
                if pid == parent {
                    traced.resume(pid);
                }
                pid != parent
            }),
            _ => {
                for pid in held.drain(..) {
                    traced.resume(pid);
                }
            }
        }
    };
    for pid in held.drain(..) {
        traced.resume(pid);
    }
    let verdict = tracker.finish();
    let _ = send(FromWorker::Events(tracker.take_events()));
    let words = ending.words(options.settle, options.timeout);
    if !send(FromWorker::Finished(Box::new(verdict), words)) {
        return;
    }
    // Keep the program (and the tracer) until the explorer quits.
    while inbox.recv().is_ok() {}
    let _ = send(FromWorker::Gone);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Held,
    Finished,
}

struct View {
    theme: Theme,
    title: String,
    pty: String,
    timeline: Vec<TraceEvent>,
    /// The row shown on the right; `None` follows the latest.
    picked: Option<usize>,
    state: State,
    verdict: Option<(Box<Verdict>, String)>,
    terminal: Arc<Pty>,
    /// `s`: the session picture instead of the process's fields.
    sessions: bool,
}

impl View {
    fn apply(&mut self, w: FromWorker) {
        match w {
            FromWorker::Events(events) => self.timeline.extend(events),
            FromWorker::Held => self.state = State::Held,
            FromWorker::Running => {
                if self.state != State::Finished {
                    self.state = State::Running
                }
            }
            FromWorker::Finished(v, words) => {
                self.state = State::Finished;
                self.verdict = Some((v, words));
            }
            FromWorker::Gone => {}
        }
    }

    fn pick(&mut self, by: isize) {
        if self.timeline.is_empty() {
            return;
        }
        let last = self.timeline.len() - 1;
        let now = self.picked.unwrap_or(last) as isize;
        let next = (now + by).clamp(0, last as isize) as usize;
        self.picked = (next != last).then_some(next);
    }

    fn shown(&self) -> Option<&TraceEvent> {
        let i = self.picked.unwrap_or(self.timeline.len().checked_sub(1)?);
        // The process view belongs to a rule event: the nearest one at or before the row.
        self.timeline[..=i].iter().rev().find(|e| {
            matches!(
                e,
                TraceEvent::Syscall {
                    process: Some(_),
                    ..
                }
            )
        })
    }

    fn draw(&self, f: &mut Frame) {
        let area = f.area();
        if area.width < MIN.0 || area.height < MIN.1 {
            let text = format!(
                "The terminal is {}×{}; daemonlab run needs at least {}×{}. Make the window larger, or press q.",
                area.width, area.height, MIN.0, MIN.1
            );
            f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
            return;
        }
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Length(1),
                Constraint::Min(5),
                Constraint::Length(2),
            ])
            .split(area);
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(
                    " daemonlab run ",
                    self.theme.title.add_modifier(Modifier::REVERSED),
                ),
                Span::styled(format!(" {}", self.title), self.theme.text),
            ])),
            rows[0],
        );
        let columns = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
            .split(rows[1]);
        self.draw_timeline(f, columns[0]);
        let right = Layout::default()
            .direction(Direction::Vertical)
            .constraints(if self.verdict.is_some() {
                [
                    Constraint::Percentage(45),
                    Constraint::Length(5),
                    Constraint::Min(4),
                ]
            } else {
                [
                    Constraint::Min(8),
                    Constraint::Length(6),
                    Constraint::Length(0),
                ]
            })
            .split(columns[1]);
        self.draw_process(f, right[0]);
        self.draw_terminal(f, right[1]);
        if self.verdict.is_some() {
            self.draw_verdict(f, right[2]);
        }
        let status = match self.state {
            State::Held => "held at this rule — Space runs it to the next one",
            State::Running => "running to its next rule…",
            State::Finished => "the trace has ended; the program is kept until you quit",
        };
        f.render_widget(
            Paragraph::new(vec![
                Line::styled(format!(" {status}"), self.theme.next),
                Line::styled(
                    " Space/n next rule  c run freely  ↑/↓ pick a row  End latest  s sessions  q quit (ends the program)",
                    self.theme.muted,
                ),
            ]),
            rows[2],
        );
    }

    fn block<'a>(&self, title: String) -> Block<'a> {
        Block::default()
            .borders(Borders::ALL)
            .border_style(self.theme.border)
            .title(Span::styled(title, self.theme.title))
    }

    fn draw_timeline(&self, f: &mut Frame, area: Rect) {
        let items: Vec<ListItem> = self
            .timeline
            .iter()
            .map(|e| {
                let (text, style) = match e {
                    TraceEvent::Syscall {
                        seq,
                        pid,
                        rule,
                        what,
                        errno,
                        ..
                    } => {
                        let style = if errno.is_some() {
                            self.theme.error
                        } else if rule.is_some() {
                            self.theme.text
                        } else {
                            self.theme.muted
                        };
                        (
                            format!("#{seq:<3} {pid:<7} {:<14} {what}", rule.unwrap_or("—")),
                            style,
                        )
                    }
                    TraceEvent::Fork { seq, pid, child } => (
                        format!("#{seq:<3} {pid:<7} forked {child}"),
                        self.theme.muted,
                    ),
                    TraceEvent::Exec { seq, pid, path } => {
                        (format!("#{seq:<3} {pid:<7} runs {path}"), self.theme.muted)
                    }
                    TraceEvent::Exit { seq, pid, status } => {
                        (format!("#{seq:<3} {pid:<7} {status}"), self.theme.muted)
                    }
                };
                ListItem::new(Line::styled(text, style))
            })
            .collect();
        let mut state = ListState::default();
        state.select(self.picked.or(self.timeline.len().checked_sub(1)));
        let list = List::new(items)
            .block(self.block(" Timeline (the program's own calls) ".into()))
            .highlight_style(self.theme.selected.add_modifier(Modifier::REVERSED))
            .highlight_symbol("▸");
        f.render_stateful_widget(list, area, &mut state);
    }

    fn draw_process(&self, f: &mut Frame, area: Rect) {
        if self.sessions {
            let pictures = self
                .timeline
                .iter()
                .take(self.picked.map_or(self.timeline.len(), |i| i + 1))
                .rev()
                .find_map(|e| match e {
                    TraceEvent::Syscall { sessions, .. } if !sessions.is_empty() => Some(sessions),
                    _ => None,
                });
            let width = area.width.saturating_sub(2) as usize;
            let lines: Vec<Line> = match pictures {
                Some(p) => crate::report::sessions::text_lines(p, width)
                    .into_iter()
                    .map(|l| Line::styled(l, self.theme.text))
                    .collect(),
                None => vec![Line::styled("no rule yet", self.theme.muted)],
            };
            f.render_widget(
                Paragraph::new(lines).block(
                    self.block(
                        " Sessions and process groups at this rule (s: the process) ".into(),
                    ),
                ),
                area,
            );
            return;
        }
        let (title, lines) = match self.shown() {
            Some(TraceEvent::Syscall {
                seq,
                process: Some(p),
                changed,
                what,
                ..
            }) => {
                let mut lines = vec![Line::styled(format!("#{seq} {what}"), self.theme.text)];
                for l in crate::report::process_lines(p, changed, -1, &self.pty) {
                    let style = if l.contains('*') {
                        self.theme.changed
                    } else {
                        self.theme.text
                    };
                    lines.push(Line::styled(l, style));
                }
                (
                    format!(
                        " Process {} — the kernel's view while it was held (* = changed) ",
                        p.pid
                    ),
                    lines,
                )
            }
            _ => (
                " Process ".into(),
                vec![Line::styled("no rule yet", self.theme.muted)],
            ),
        };
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(self.block(title)),
            area,
        );
    }

    fn draw_terminal(&self, f: &mut Frame, area: Rect) {
        let all = self.terminal.lines_since(0);
        let keep = area.height.saturating_sub(2) as usize;
        let lines: Vec<Line> = all
            .iter()
            .rev()
            .take(keep)
            .rev()
            .map(|l| Line::styled(l.clone(), self.theme.text))
            .collect();
        f.render_widget(
            Paragraph::new(lines).block(self.block(format!(" Terminal {} ", self.pty))),
            area,
        );
    }

    fn draw_verdict(&self, f: &mut Frame, area: Rect) {
        let Some((verdict, ending)) = &self.verdict else {
            return;
        };
        let mut lines = vec![
            Line::styled(format!("The trace ended: {ending}."), self.theme.muted),
            Line::styled(verdict.summary.clone(), self.theme.text),
        ];
        for f in &verdict.findings {
            lines.push(Line::styled(
                format!("FAIL {}: {}", f.id, f.detail),
                self.theme.error,
            ));
        }
        for c in verdict
            .checks
            .iter()
            .filter(|c| c.status != crate::audit::Status::Pass)
        {
            let style = match c.status {
                crate::audit::Status::Fail => self.theme.error,
                _ => self.theme.warn,
            };
            let word = match c.status {
                crate::audit::Status::Fail => "FAIL",
                crate::audit::Status::Warn => "WARN",
                _ => "????",
            };
            lines.push(Line::styled(
                format!("{word} {}: {}", c.id, c.detail),
                style,
            ));
        }
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                self.block(" Verdict (inspect's checks and what only the trace shows) ".into()),
            ),
            area,
        );
    }
}

fn forward_keys(events: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            loop {
                let event = match ratatui::crossterm::event::read() {
                    Ok(TermEvent::Key(key)) => Event::Key(key),
                    Ok(TermEvent::Resize(..)) => Event::Redraw,
                    Ok(_) => continue,
                    Err(_) => Event::Quit,
                };
                let quit = matches!(event, Event::Quit);
                if events.send(event).is_err() || quit {
                    return;
                }
            }
        })?;
    Ok(())
}

fn forward_signals(events: Sender<Event>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = events.send(Event::Quit);
            }
        })?;
    Ok(())
}
