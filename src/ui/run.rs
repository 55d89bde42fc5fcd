//! `daemonlab run -- PROGRAM`: the explorer with any program as its subject. The program
//! is traced as `daemonlab trace` does it; here it is held at every rule until Space, so
//! a teacher can single-step a real daemon's daemonization in front of the class.
//!
//! It is the explorer's own Lab tab (see `traced.rs`): the Steps pane holds the observed
//! timeline, and the Process, History, Lesson, Terminal, Syslog and session panes show the
//! program as they show the lab's subject. The same event loop, keys table, frame pacing
//! and exit paths; only the worker differs — it owns the trace instead of a lab.

use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::action::{Command, LabEvent, TraceUpdate};
use super::app::App;
use super::theme::Theme;
use super::traced::TraceView;
use super::worker::{GuardSlot, LabInfo};
use super::{Event, EventLoop, Wake};
use crate::lessons::LessonSet;
use crate::trace::protocol::TracerMessage;
use crate::trace::rules::Tracker;
use crate::trace::{Ending, TraceOptions, Traced};

/// Run the explorer on `options.program` until q, a signal or a lost terminal; the
/// program ends with it (its tracer's EXITKILL).
pub fn run(
    options: TraceOptions,
    theme: Theme,
    lessons: LessonSet,
) -> color_eyre::Result<ExitCode> {
    let traced = match Traced::start(&options) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("daemonlab run: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(syslog) = program_syslog(&options.exe, &traced.path) else {
        return Ok(ExitCode::FAILURE);
    };
    let snapshot = match crate::probe::snapshot(traced.job, Some(traced.session_pid)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "daemonlab run: {} started as pid {} but /proc cannot show it: {e}",
                options.program, traced.job
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    color_eyre::install()?;
    let guard_slot = GuardSlot::default();
    *guard_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(traced.guard());
    super::end_lab_on_panic(guard_slot.clone());
    let (events, inbox) = event_channel()?;

    let mut app = App::new(theme, lessons);
    app.trace = Some(TraceView::new(traced.path.display().to_string()));
    app.notice = traced
        .note
        .clone()
        .map(|text| super::app::Notice { text, error: false });
    let generation = app.generation;
    let report = reporter(&events);
    report(LabEvent::Started {
        generation,
        info: LabInfo {
            lab_pid: std::process::id() as i32,
            session_pid: traced.session_pid,
            subject_pid: traced.job,
            pty: traced.pty_name.clone(),
            control_fd: -1,
            syslog_socket: syslog.path.clone(),
            syslog_note: syslog.note.clone(),
        },
        snapshot: Box::new(snapshot),
    });
    report(LabEvent::SyslogFeed {
        generation,
        feed: syslog.receiver.feed(),
    });
    let to_screen = report.clone();
    traced.terminal().set_listener(Box::new(move |lines| {
        to_screen(LabEvent::Terminal { generation, lines })
    }));
    let (commands, worker_inbox) = mpsc::channel::<Command>();
    let worker = std::thread::Builder::new()
        .name("tracer".into())
        .spawn(move || follow(traced, options, worker_inbox, report, generation))?;

    let result = draw_until_the_end(app, inbox, events, &commands)?;
    // End the program from here at once, whatever the worker is doing.
    if let Some(guard) = guard_slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        guard.shutdown();
    }
    let _ = commands.send(Command::Quit);
    drop(commands);
    let deadline = Instant::now() + super::WORKER_GRACE;
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if worker.is_finished() {
        let _ = worker.join();
    }
    drop(syslog);
    Ok(result?.exit_code())
}

/// What the worker is told while the program is held.
enum Told {
    Step,
    Freely,
    Quit,
}

/// Wait for the screen's word, ignoring what is not for a trace (the key table keeps
/// those keys away; a `Watch` still arrives on every key).
fn told(inbox: &Receiver<Command>) -> Told {
    loop {
        match inbox.recv() {
            Ok(Command::TraceStep) => return Told::Step,
            Ok(Command::TraceFreely) => return Told::Freely,
            Ok(Command::Quit) | Err(_) => return Told::Quit,
            Ok(_) => {}
        }
    }
}

/// The worker: the trace's loop, holding the program at each rule until told.
///
/// Every process that reports a stop stays stopped until the rule it shows is on screen
/// and the user pressed Space; only the parent of a fork whose fate is still open goes on
/// at once (it must be free to exit, which is what decides the rule's name).
fn follow(
    traced: Traced,
    options: TraceOptions,
    inbox: Receiver<Command>,
    report: impl Fn(LabEvent),
    generation: u64,
) {
    let send = |update: TraceUpdate| report(LabEvent::Trace { generation, update });
    let mut tracker = Tracker::new(traced.job, traced.session_pid);
    let mut freely = false;
    let mut held: Vec<i32> = Vec::new();
    let mut quiet_since = Instant::now();
    let ending = loop {
        if tracker.original_exited() && tracker.alive_count() == 0 {
            break Ending::AllExited;
        }
        if tracker.original_exited() && quiet_since.elapsed() >= options.settle {
            break Ending::Settled;
        }
        loop {
            match inbox.try_recv() {
                Ok(Command::TraceFreely) => freely = true,
                Ok(Command::Quit) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => break,
            }
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
                TracerMessage::Call(_)
                    | TracerMessage::Forked { .. }
                    | TracerMessage::Exec { .. }
                    | TracerMessage::Busy { .. }
            );
            if tracker.rule_count() != before || active {
                quiet_since = Instant::now();
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
            send(TraceUpdate::Events(std::mem::take(&mut batch)));
            send(TraceUpdate::Held);
            match told(&inbox) {
                Told::Step => {}
                Told::Freely => freely = true,
                Told::Quit => return,
            }
            send(TraceUpdate::Running);
            quiet_since = Instant::now();
            tracker.restart_patience();
        }
        if !batch.is_empty() {
            send(TraceUpdate::Events(batch));
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
    send(TraceUpdate::Events(tracker.take_events()));
    send(TraceUpdate::Finished(
        Box::new(verdict),
        ending.words(options.settle, options.timeout),
    ));
    // Keep the program (and the tracer) until the explorer quits.
    while !matches!(told(&inbox), Told::Quit) {}
}

/// `daemonlab run --service -- PROGRAM`: the explorer with the lab as PROGRAM's service
/// manager. The timeline holds what the manager saw — the listeners it bound, the
/// process as it prepared it, every state, notify message, signal and exit — with the
/// kernel's view of the main process at each state; the Terminal pane becomes the
/// service's log (its stdout and stderr); r reloads, e stops, q stops and quits.
pub fn run_service(
    options: crate::service::ServiceOptions,
    theme: Theme,
    lessons: LessonSet,
) -> color_eyre::Result<ExitCode> {
    let Some(syslog) = program_syslog(&options.exe, std::path::Path::new(&options.program)) else {
        return Ok(ExitCode::FAILURE);
    };
    color_eyre::install()?;
    let (events, inbox) = event_channel()?;
    let mut app = App::new(theme, lessons);
    app.trace = Some(TraceView::service(
        options.program.clone(),
        options.kind.name(),
    ));
    app.notice = None;
    let generation = app.generation;
    let report = reporter(&events);
    report(LabEvent::SyslogFeed {
        generation,
        feed: syslog.receiver.feed(),
    });
    let (commands, worker_inbox) = mpsc::channel::<Command>();
    let info = LabInfo {
        lab_pid: std::process::id() as i32,
        session_pid: std::process::id() as i32,
        subject_pid: 0,
        pty: "log".into(),
        control_fd: -1,
        syslog_socket: syslog.path.clone(),
        syslog_note: syslog.note.clone(),
    };
    let worker = std::thread::Builder::new()
        .name("service".into())
        .spawn(move || manage(options, worker_inbox, report, generation, info))?;
    let result = draw_until_the_end(app, inbox, events, &commands)?;
    // q, a signal or a hang-up: stop the service in order (SIGTERM, then SIGKILL), and
    // wait for the manager to see it gone.
    let _ = commands.send(Command::Quit);
    drop(commands);
    let _ = worker.join();
    drop(syslog);
    Ok(result?.exit_code())
}

/// The manager on a thread of its own; its events become the Lab tab's.
fn manage(
    options: crate::service::ServiceOptions,
    inbox: Receiver<Command>,
    report: impl Fn(LabEvent) + Clone + Send + 'static,
    generation: u64,
    mut info: LabInfo,
) {
    use crate::service::{Control, Event as S};
    use crate::trace::rules::Event as Row;
    let (control, control_inbox) = mpsc::channel::<Control>();
    // Keys (and the explorer's end) become the manager's controls.
    let _ = std::thread::Builder::new()
        .name("service keys".into())
        .spawn(move || {
            while let Ok(command) = inbox.recv() {
                let c = match command {
                    Command::ServiceReload => Control::Reload,
                    Command::ServiceStop | Command::Quit => Control::Stop,
                    _ => continue,
                };
                if control.send(c).is_err() {
                    return;
                }
            }
        });
    let send = |update: TraceUpdate| report(LabEvent::Trace { generation, update });
    let started = Instant::now();
    let seq = std::cell::Cell::new(0u64);
    let next = || {
        seq.set(seq.get() + 1);
        seq.get()
    };
    let mut last: Option<crate::probe::ProcSnapshot> = None;
    let row = |pid: i32,
               rule: &'static str,
               what: String,
               process: Option<crate::probe::ProcSnapshot>,
               last: &mut Option<crate::probe::ProcSnapshot>| {
        let seq = next();
        let changed = match (&process, last.as_ref()) {
            (Some(p), Some(before)) if p.pid == before.pid => p.changed_fields(before),
            _ => Vec::new(),
        };
        if process.is_some() {
            *last = process.clone();
        }
        let t_ms = started.elapsed().as_secs_f64() * 1000.0;
        super::traced::manager_row(seq, t_ms, pid, rule, what, process, changed)
    };
    let outcome = crate::service::run(&options, control_inbox, |event| {
        let text = crate::report::service::text_line(event);
        // The line's first word is its kind: the row says the rest.
        let what = text
            .split_once(char::is_whitespace)
            .map(|(_, rest)| rest.trim_start().to_string())
            .unwrap_or(text.clone());
        match event {
            S::Log { stream, line } => report(LabEvent::Terminal {
                generation,
                lines: vec![format!("{stream}: {line}")],
            }),
            S::Listening { fd, .. } => send(TraceUpdate::Events(vec![row(
                *fd, "listen", what, None, &mut last,
            )])),
            S::Prepared { pid, process, .. } => {
                info.subject_pid = *pid;
                report(LabEvent::Started {
                    generation,
                    info: info.clone(),
                    snapshot: process.clone(),
                });
                let r = row(*pid, "prepared", what, Some((**process).clone()), &mut last);
                send(TraceUpdate::Events(vec![r]));
            }
            S::State {
                state, main_pid, ..
            } => {
                let process = main_pid.and_then(|p| crate::probe::snapshot(p, None).ok());
                let r = row(
                    main_pid.unwrap_or(0),
                    "state",
                    what.clone(),
                    process,
                    &mut last,
                );
                send(TraceUpdate::Events(vec![r]));
                // The status line names the state itself: the rest of the sentence.
                let words = what
                    .strip_prefix(state.name())
                    .unwrap_or(&what)
                    .trim_start()
                    .to_string();
                send(TraceUpdate::ServiceState(state.name(), words));
            }
            S::Notify { pid, accepted, .. } => {
                let rule = if *accepted { "notified" } else { "rejected" };
                let r = row(pid.unwrap_or(0), rule, what, None, &mut last);
                send(TraceUpdate::Events(vec![r]));
            }
            S::Signal { pid, .. } => {
                let r = row(*pid, "signal", what, None, &mut last);
                send(TraceUpdate::Events(vec![r]));
            }
            S::Exit { pid, status } => {
                send(TraceUpdate::Events(vec![Row::Exit {
                    seq: next(),
                    pid: *pid,
                    status: status.clone(),
                }]));
            }
        }
    });
    let words = match outcome {
        Ok(o) => format!(
            "{}{}",
            o.state.name(),
            o.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ),
        Err(e) => format!("could not start: {e}"),
    };
    send(TraceUpdate::ServiceEnded(words));
}

/// The explorer's one channel, with signals and the terminal's hang-up fed into it.
fn event_channel() -> std::io::Result<(mpsc::Sender<Event>, Receiver<Event>)> {
    let (events, inbox) = mpsc::channel::<Event>();
    super::forward_signals(events.clone())?;
    let hung_up = events.clone();
    crate::hangup::watch(move || {
        let _ = hung_up.send(Event::HangUp);
    })?;
    Ok((events, inbox))
}

/// What a worker calls to hand the screen a lab event.
fn reporter(events: &mpsc::Sender<Event>) -> impl Fn(LabEvent) + Clone + Send + 'static {
    let events = events.clone();
    move |event: LabEvent| {
        let _ = events.send(Event::Lab(event));
    }
}

/// Take the terminal, run the explorer's loop until q, a signal or a hang-up, and give
/// the terminal back (unless it is gone).
fn draw_until_the_end(
    app: App,
    inbox: Receiver<Event>,
    events: mpsc::Sender<Event>,
    commands: &mpsc::Sender<Command>,
) -> color_eyre::Result<color_eyre::Result<super::Ending>> {
    let mut terminal = ratatui::init();
    super::forward_terminal_events(events.clone())?;
    let mut event_loop = EventLoop::new(app, inbox, Wake::new(events), commands.clone());
    let result = event_loop.run(&mut terminal);
    if !crate::hangup::terminal_gone() {
        let _ = ratatui::try_restore();
    }
    Ok(result)
}

/// Where the program's syslog(3) goes, for the Syslog pane; its file name is the ident
/// openlog uses when given none. `None` (said on stderr) when no receiver can start.
fn program_syslog(
    exe: &std::path::Path,
    program: &std::path::Path,
) -> Option<crate::trace::syslog::TraceSyslog> {
    let ident = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string());
    crate::trace::syslog::bind(exe, &ident)
        .map_err(|e| eprintln!("daemonlab run: cannot start the syslog receiver: {e}"))
        .ok()
}
