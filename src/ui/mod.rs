//! The explorer TUI. Everything ratatui and crossterm lives here; the lab, the probe and
//! the lessons reach it as owned values through one channel. Threads: keys, the lab
//! worker, signals, the terminal's hang-up watch; the main thread blocks on the channel
//! and draws when something changed, at most once per [`FRAME`]. Syslog messages do not
//! travel the channel: the screen reads the receiver's ring when it draws.

pub mod action;
pub mod app;
pub mod experiments;
#[doc(hidden)]
pub mod fixtures;
pub mod keymap;
pub mod locks;
pub mod panes;
pub mod processes;
pub mod render;
pub mod run;
pub mod theme;
pub mod traced;
pub mod worker;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{Event as TermEvent, KeyEvent};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::syslog::receiver::Feed;
use crate::syslog::tally::Cursor;

use crate::lab::LabOptions;
use crate::lessons::LessonSet;
use action::{Command, LabEvent};
use app::App;
use theme::Theme;
use worker::GuardSlot;

/// Set in the environment, makes the explorer panic once its lab has started — or, set
/// to `on-key`, when F12 is pressed, so a test can panic at a moment of its choosing: the
/// tests' way to check the panic path. Not documented for users.
pub const PANIC_FOR_TESTS: &str = "DAEMONLAB_PANIC_FOR_TESTS";

/// How long the explorer waits for the worker to finish after the lab has been ended: a
/// worker busy in an experiment is not waited for (the experiment's processes follow
/// their lifelines, its janitor removes what it left).
const WORKER_GRACE: Duration = Duration::from_millis(100);

/// Everything the explorer needs to start.
pub struct UiOptions {
    pub lab: LabOptions,
    pub theme: Theme,
    pub lessons: LessonSet,
}

/// One thing that happened, from any thread. Data never queues here: the syslog feed
/// sends one [`Event::Syslog`] per frame at most (see [`Wake`]), so a key or a signal is
/// never behind more than a handful of events, whatever floods the receiver.
#[doc(hidden)]
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    /// The terminal's new size, columns × rows.
    Resize(u16, u16),
    Lab(LabEvent),
    /// The syslog receiver stored something since the last frame.
    Syslog,
    Signal(i32),
    /// The terminal went away (EOF, EIO or POLLHUP on it), with or without a SIGHUP.
    HangUp,
}

/// How the explorer's loop ended.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Quit,
    Signal(i32),
    /// The terminal is gone: nothing may be written to it any more.
    HungUp,
}

impl Ending {
    fn exit_code(self) -> ExitCode {
        match self {
            Ending::Quit => ExitCode::SUCCESS,
            Ending::Signal(signal) => ExitCode::from(128 + signal as u8),
            // As if SIGHUP had ended it, which is what a hang-up means.
            Ending::HungUp => ExitCode::from(128 + SIGHUP as u8),
        }
    }
}

/// At most one frame per this long, however many events arrive; a key after a quiet
/// spell is drawn at once.
pub const FRAME: Duration = Duration::from_millis(16);

/// Run the explorer until the user quits, a signal arrives or the terminal goes away.
/// Every exit path ends every process the lab started, and restores the terminal if it
/// is still there.
pub fn run(options: UiOptions) -> color_eyre::Result<ExitCode> {
    color_eyre::install()?;
    let guard_slot = GuardSlot::default();
    end_lab_on_panic(guard_slot.clone());
    let (events, inbox) = mpsc::channel::<Event>();
    forward_signals(events.clone())?;
    let hung_up = events.clone();
    crate::hangup::watch(move || {
        let _ = hung_up.send(Event::HangUp);
    })?;
    let (commands, worker_inbox) = mpsc::channel::<Command>();
    let lab_events = events.clone();
    let worker = worker::spawn(
        options.lab,
        worker_inbox,
        commands.clone(),
        move |event| {
            let _ = lab_events.send(Event::Lab(event));
        },
        guard_slot.clone(),
    )?;
    let worker_guard = guard_slot;
    let app = App::new(options.theme, options.lessons);
    let mut terminal = ratatui::init();
    forward_terminal_events(events.clone())?;
    let mut event_loop = EventLoop::new(app, inbox, Wake::new(events), commands.clone());
    let result = event_loop.run(&mut terminal);
    // A gone terminal is not restored: every write to it would fail (and is now sent to
    // /dev/null anyway); a live one is, and an error restoring it is not worth a panic.
    if !crate::hangup::terminal_gone() {
        let _ = ratatui::try_restore();
    }
    // End the lab from here rather than through the worker, which may be busy for seconds
    // in an experiment: the explorer answers q, a signal or a hangup at once.
    if let Some(guard) = worker_guard
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        guard.shutdown();
    }
    let _ = commands.send(Command::Quit);
    let deadline = std::time::Instant::now() + WORKER_GRACE;
    while !worker.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if worker.is_finished() {
        let _ = worker.join();
    } else {
        tracing::info!("the worker is still busy (an experiment): exiting without it");
    }
    Ok(result?.exit_code())
}

/// Sends [`Event::Syslog`] when the receiver stores something, once until the next frame
/// has read the ring: a flood costs one event per frame, not one per datagram.
#[doc(hidden)]
#[derive(Clone)]
pub struct Wake {
    pending: Arc<AtomicBool>,
    events: Sender<Event>,
}

impl Wake {
    pub fn new(events: Sender<Event>) -> Wake {
        Wake {
            pending: Arc::default(),
            events,
        }
    }

    /// The callback for [`Feed::set_notify`](crate::syslog::receiver::Feed::set_notify).
    pub fn notify(&self) -> crate::syslog::receiver::Notify {
        let wake = self.clone();
        Box::new(move || {
            if !wake.pending.swap(true, Ordering::AcqRel) {
                let _ = wake.events.send(Event::Syslog);
            }
        })
    }

    /// The next frame is about to read the ring: anything stored from now on wakes again.
    fn rearm(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// What [`EventLoop::on_frame`] calls.
#[doc(hidden)]
pub type OnFrame = Box<dyn FnMut(&App)>;

/// The receiver the screen reads, for the lab generation that started it.
struct SyslogSource {
    generation: u64,
    feed: Feed,
    cursor: Cursor,
}

/// The explorer's main loop: events in, `App::update`, at most one frame per [`FRAME`].
/// Public (hidden) so that a benchmark can drive it on a `TestBackend`.
#[doc(hidden)]
pub struct EventLoop {
    pub app: App,
    inbox: Receiver<Event>,
    wake: Wake,
    commands: Sender<Command>,
    syslog: Option<SyslogSource>,
    watching: Command,
    /// The terminal's size, as last drawn or resized: behind the "needs more room"
    /// screen only quitting acts.
    size: (u16, u16),
    /// Something changed since the last frame.
    dirty: bool,
    last_frame: Option<Instant>,
    /// Called after every frame, with the app as drawn (for the benchmark).
    pub on_frame: Option<OnFrame>,
}

impl EventLoop {
    pub fn new(app: App, inbox: Receiver<Event>, wake: Wake, commands: Sender<Command>) -> Self {
        EventLoop {
            app,
            inbox,
            wake,
            commands,
            syslog: None,
            watching: Command::Watch {
                ps: false,
                inspect: None,
            },
            size: (render::MIN_WIDTH, render::MIN_HEIGHT),
            dirty: true,
            last_frame: None,
            on_frame: None,
        }
    }

    /// Until quit, a signal, a hang-up, or every sender gone. A frame that cannot be
    /// written because the terminal has gone is a hang-up, not an error.
    pub fn run<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> color_eyre::Result<Ending> {
        loop {
            let due = self.last_frame.map(|at| at + FRAME);
            let now = Instant::now();
            if self.dirty && due.is_none_or(|due| now >= due) {
                if let Err(e) = self.draw(terminal) {
                    if crate::hangup::terminal_gone() {
                        return Ok(Ending::HungUp);
                    }
                    return Err(color_eyre::eyre::eyre!("cannot draw: {e}"));
                }
                continue;
            }
            // Idle (nothing to draw) blocks without a timer: zero CPU.
            let event = match due.filter(|_| self.dirty) {
                Some(due) => match self.inbox.recv_timeout(due.saturating_duration_since(now)) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return Ok(Ending::Quit),
                },
                None => match self.inbox.recv() {
                    Ok(event) => event,
                    Err(_) => return Ok(Ending::Quit),
                },
            };
            if let Some(ending) = self.handle(event) {
                return Ok(ending);
            }
        }
    }

    /// Apply one event; `Some` when the loop must end.
    pub fn handle(&mut self, event: Event) -> Option<Ending> {
        match event {
            Event::Key(key) => {
                if key.code == ratatui::crossterm::event::KeyCode::F(12)
                    && std::env::var(PANIC_FOR_TESTS).is_ok_and(|v| v == "on-key")
                {
                    panic!("{PANIC_FOR_TESTS}=on-key and F12 was pressed: panicking on purpose");
                }
                let action = typed(&self.app, &key)
                    .or_else(|| keymap::action_for(&key, self.app.key_context()));
                let action = action?;
                // Behind "needs more room" nothing is visible: only quitting acts.
                if !render::fits(self.size.0, self.size.1) && action != action::Action::Quit {
                    return None;
                }
                if let Some(command) = self.app.update(action) {
                    let _ = self.commands.send(command);
                }
                self.dirty = true;
                if self.app.quit {
                    return Some(Ending::Quit);
                }
                let wanted = watch_for(&self.app);
                if wanted != self.watching {
                    self.watching = wanted;
                    let _ = self.commands.send(wanted);
                }
            }
            Event::Resize(columns, rows) => {
                self.size = (columns, rows);
                self.dirty = true;
            }
            Event::Lab(LabEvent::SyslogFeed { generation, feed }) => {
                feed.set_notify(self.wake.notify());
                self.syslog = Some(SyslogSource {
                    generation,
                    feed,
                    cursor: Cursor::new(),
                });
                self.dirty = true;
            }
            Event::Lab(event) => {
                let started = matches!(event, LabEvent::Started { .. });
                self.app.handle_lab(event);
                // Test-only: prove that a panic still restores the terminal and ends the lab.
                if started && std::env::var(PANIC_FOR_TESTS).is_ok_and(|v| v != "on-key") {
                    panic!("{PANIC_FOR_TESTS} is set: panicking on purpose, as a test asked");
                }
                self.dirty = true;
            }
            Event::Syslog => self.dirty = true,
            Event::Signal(signal) => return Some(Ending::Signal(signal)),
            Event::HangUp => return Some(Ending::HungUp),
        }
        None
    }

    /// Take what is new from the receiver's ring, then draw one frame.
    pub fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<(), B::Error> {
        self.wake.rearm();
        if let Some(source) = self.syslog.as_mut()
            && source.generation == self.app.generation
        {
            let messages = source.feed.read(&mut source.cursor, app::SYSLOG_LINES);
            self.app.syslog.take(messages, source.cursor.tally);
        }
        let frame = terminal.draw(|frame| frame.render_widget(&self.app, frame.area()))?;
        self.size = (frame.area.width, frame.area.height);
        self.dirty = false;
        self.last_frame = Some(Instant::now());
        if let Some(on_frame) = self.on_frame.as_mut() {
            on_frame(&self.app);
        }
        Ok(())
    }
}

/// Text typed into the Processes filter, and the scroll keys of the help popup (which
/// its title names): not key bindings of a tab, so not in the key table.
fn typed(app: &App, key: &KeyEvent) -> Option<action::Action> {
    use ratatui::crossterm::event::{KeyCode, KeyEventKind};
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if app.help {
        let rows = match key.code {
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::PageDown | KeyCode::Char(' ') => 10,
            KeyCode::PageUp => -10,
            KeyCode::Home | KeyCode::Char('g') => -10_000,
            KeyCode::End | KeyCode::Char('G') => 10_000,
            _ => return None,
        };
        return Some(action::Action::HelpScroll(rows));
    }
    if !(app.tab == app::Tab::Processes && app.processes.filtering) {
        return None;
    }
    Some(match key.code {
        KeyCode::Char(c) => action::Action::FilterChar(c),
        KeyCode::Backspace => action::Action::FilterBack,
        _ => action::Action::FilterDone,
    })
}

/// What the worker should keep fresh for the tab on screen (and nothing for the others).
fn watch_for(app: &App) -> Command {
    Command::Watch {
        ps: app.tab == app::Tab::Processes,
        inspect: (app.tab == app::Tab::Inspect).then_some(app.inspect.pid),
    }
}

/// Keys and resizes from crossterm, on a thread that blocks in `read`. When the terminal
/// hangs up, [`crate::hangup`] turns standard input into a pipe that never has data, so
/// this thread sleeps instead of spinning on EOF; the hang-up itself arrives as
/// [`Event::HangUp`].
fn forward_terminal_events(events: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            loop {
                let event = match ratatui::crossterm::event::read() {
                    Ok(TermEvent::Key(key)) => Event::Key(key),
                    Ok(TermEvent::Resize(columns, rows)) => Event::Resize(columns, rows),
                    Ok(_) => continue,
                    // A read error on the terminal is a hang-up by another name.
                    Err(_) => Event::HangUp,
                };
                let hung_up = matches!(event, Event::HangUp);
                if events.send(event).is_err() || hung_up {
                    return;
                }
            }
        })?;
    Ok(())
}

/// SIGTERM, SIGHUP (the window was closed) and SIGINT become an orderly exit.
fn forward_signals(events: Sender<Event>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if events.send(Event::Signal(signal)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// A panic anywhere still ends the lab's processes (the terminal is restored by the hook
/// ratatui installed, which this one calls). If the terminal is gone, it is detached
/// first, so that the hooks' writes go to /dev/null instead of failing with EIO (a
/// panic inside the panic hook would abort).
fn end_lab_on_panic(slot: GuardSlot) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        crate::hangup::terminal_gone();
        if let Some(guard) = slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            guard.shutdown();
        }
        previous(info);
    }));
}
