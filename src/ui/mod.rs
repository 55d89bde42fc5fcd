//! The explorer TUI. Everything ratatui and crossterm lives here; the lab, the probe and
//! the lessons reach it as owned values through one channel. Threads: keys, the lab
//! worker, signals; the main thread blocks on the channel and draws only on events.

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
pub mod theme;
pub mod worker;

use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};

use ratatui::crossterm::event::{Event as TermEvent, KeyEvent};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::lab::LabOptions;
use crate::lessons::LessonSet;
use action::{Command, LabEvent};
use app::App;
use theme::Theme;
use worker::GuardSlot;

/// Set in the environment, makes the explorer panic once its lab has started: the tests'
/// way to check the panic path. Not documented for users.
pub const PANIC_FOR_TESTS: &str = "DAEMONLAB_PANIC_FOR_TESTS";

/// Everything the explorer needs to start.
pub struct UiOptions {
    pub lab: LabOptions,
    pub theme: Theme,
    pub lessons: LessonSet,
}

/// One thing that happened, from any thread.
#[derive(Debug)]
enum Event {
    Key(KeyEvent),
    Resize,
    Lab(LabEvent),
    Signal(i32),
}

/// Run the explorer until the user quits or a signal arrives. Every exit path restores
/// the terminal and ends every process the lab started.
pub fn run(options: UiOptions) -> color_eyre::Result<ExitCode> {
    color_eyre::install()?;
    let guard_slot = GuardSlot::default();
    end_lab_on_panic(guard_slot.clone());
    let (events, inbox) = mpsc::channel::<Event>();
    forward_signals(events.clone())?;
    let (commands, worker_inbox) = mpsc::channel::<Command>();
    let lab_events = events.clone();
    let worker = worker::spawn(
        options.lab,
        worker_inbox,
        commands.clone(),
        move |event| {
            let _ = lab_events.send(Event::Lab(event));
        },
        guard_slot,
    )?;
    let mut app = App::new(options.theme, options.lessons);
    let mut terminal = ratatui::init();
    forward_terminal_events(events)?;
    let mut exit = ExitCode::SUCCESS;
    let mut watching = Command::Watch {
        ps: false,
        inspect: None,
    };
    let result = (|| -> color_eyre::Result<()> {
        terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
        while let Ok(event) = inbox.recv() {
            let redraw = match event {
                Event::Key(key) => match typed(&app, &key)
                    .or_else(|| keymap::action_for(&key, app.key_context()))
                {
                    Some(action) => {
                        if let Some(command) = app.update(action) {
                            let _ = commands.send(command);
                        }
                        true
                    }
                    None => false,
                },
                Event::Resize => true,
                Event::Lab(event) => {
                    let started = matches!(event, LabEvent::Started { .. });
                    app.handle_lab(event);
                    // Test-only: prove that a panic still restores the terminal and ends the lab.
                    if started && std::env::var_os(PANIC_FOR_TESTS).is_some() {
                        panic!("{PANIC_FOR_TESTS} is set: panicking on purpose, as a test asked");
                    }
                    true
                }
                Event::Signal(signal) => {
                    exit = ExitCode::from(128 + signal as u8);
                    break;
                }
            };
            if app.quit {
                break;
            }
            let wanted = watch_for(&app);
            if wanted != watching {
                watching = wanted;
                let _ = commands.send(wanted);
            }
            if redraw {
                terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            }
        }
        Ok(())
    })();
    ratatui::restore();
    let _ = commands.send(Command::Quit);
    let _ = worker.join();
    result.map(|()| exit)
}

/// Text typed into the Processes filter: not key bindings, so not in the key table.
fn typed(app: &App, key: &KeyEvent) -> Option<action::Action> {
    use ratatui::crossterm::event::{KeyCode, KeyEventKind};
    if !(app.tab == app::Tab::Processes && app.processes.filtering)
        || key.kind == KeyEventKind::Release
    {
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

/// Keys and resizes from crossterm, on a thread that blocks in `read`.
fn forward_terminal_events(events: Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            while let Ok(event) = ratatui::crossterm::event::read() {
                let event = match event {
                    TermEvent::Key(key) => Event::Key(key),
                    TermEvent::Resize(..) => Event::Resize,
                    _ => continue,
                };
                if events.send(event).is_err() {
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
/// ratatui installed, which this one calls).
fn end_lab_on_panic(slot: GuardSlot) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(guard) = slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            guard.shutdown();
        }
        previous(info);
    }));
}
