use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use daemonlab::cli::{Cli, Command, LessonsCommand};
use daemonlab::lab::guard::Guard;
use daemonlab::lab::session::{self, SessionArgs};
use daemonlab::lab::subject::{self, SubjectArgs};
use daemonlab::lab::{Lab, LabOptions};
use daemonlab::lessons::{self, LessonSet};
use daemonlab::report::{Format, tour};
use daemonlab::ui::{self, UiOptions, theme::Theme};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Session { pty, subject_args }) => {
            let subject_exe = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => {
                    eprintln!("daemonlab session stand-in: cannot find its own executable: {e}");
                    return ExitCode::FAILURE;
                }
            };
            ExitCode::from(session::main(SessionArgs {
                pty,
                subject_exe,
                subject_args,
            }) as u8)
        }
        Some(Command::Subject {
            control_fd,
            syslog_socket,
            ident,
            console,
            system_syslog,
        }) => subject::main(SubjectArgs {
            control_fd,
            syslog_socket,
            ident,
            console,
            system_syslog,
        }),
        Some(Command::Tour { format, pause }) => run_tour(format, pause, cli.subreaper),
        Some(Command::Lessons {
            command: LessonsCommand::Check { dir },
        }) => check_lessons(&dir),
        None => run_explorer(&cli),
    }
}

fn lab_options(subreaper: bool) -> Result<LabOptions, ExitCode> {
    match LabOptions::for_current_exe() {
        Ok(options) => Ok(LabOptions {
            subreaper,
            ..options
        }),
        Err(e) => {
            eprintln!("daemonlab: cannot find its own executable to start the subject: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn run_explorer(cli: &Cli) -> ExitCode {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "daemonlab: the explorer needs a terminal on stdin and stdout. \
             Without one, run the headless tour: daemonlab tour (add --pause to step through it)"
        );
        return ExitCode::FAILURE;
    }
    let lessons = match &cli.lessons {
        None => LessonSet::embedded(),
        // A teacher's lessons replace the built-in ones they name; the rest stay.
        Some(dir) => match LessonSet::load_dir(dir) {
            Ok(set) => LessonSet::embedded().overlay(set),
            Err(errors) => {
                report_lesson_errors(dir, &errors);
                return ExitCode::FAILURE;
            }
        },
    };
    let lab = match lab_options(cli.subreaper) {
        Ok(lab) => lab,
        Err(code) => return code,
    };
    let theme = Theme::pick(cli.theme, Theme::no_color_requested());
    match ui::run(UiOptions {
        lab,
        theme,
        lessons,
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("daemonlab: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn report_lesson_errors(dir: &std::path::Path, errors: &[lessons::LessonError]) {
    eprintln!(
        "daemonlab: the lessons in {} have {} problem(s):",
        dir.display(),
        errors.len()
    );
    for error in errors {
        eprintln!("  {error}");
    }
}

fn check_lessons(dir: &std::path::Path) -> ExitCode {
    match lessons::check_dir(dir) {
        Ok(count) => {
            println!("{}: {count} lessons, all valid", dir.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            report_lesson_errors(dir, &errors);
            ExitCode::FAILURE
        }
    }
}

fn run_tour(format: Format, pause: bool, subreaper: bool) -> ExitCode {
    let guard: Arc<Mutex<Option<Arc<Guard>>>> = Arc::default();
    if let Err(e) = end_lab_on_signals(Arc::clone(&guard)) {
        eprintln!("daemonlab: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let options = match lab_options(subreaper) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let mut lab = match Lab::start(options) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("daemonlab: {e}");
            return ExitCode::FAILURE;
        }
    };
    *guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(lab.guard());
    let result = tour::run(
        &mut lab,
        format,
        pause,
        &mut std::io::stdout().lock(),
        &mut std::io::stdin().lock(),
    );
    drop(lab);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daemonlab: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP end every lab process, then the program, with 128 + signal.
fn end_lab_on_signals(guard: Arc<Mutex<Option<Arc<Guard>>>>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                if let Some(guard) = guard.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    guard.shutdown();
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
