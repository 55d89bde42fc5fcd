use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use daemonlab::cli::{Cli, Command};
use daemonlab::lab::guard::Guard;
use daemonlab::lab::session::{self, SessionArgs};
use daemonlab::lab::subject::{self, SubjectArgs};
use daemonlab::lab::{Lab, LabOptions};
use daemonlab::report::{Format, tour};
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
        }) => subject::main(SubjectArgs {
            control_fd,
            syslog_socket,
            ident,
        }),
        Some(Command::Tour {
            format,
            pause,
            subreaper,
        }) => run_tour(format, pause, subreaper),
        // Until the explorer TUI lands, the app is the tour.
        None => run_tour(Format::Text, false, false),
    }
}

fn run_tour(format: Format, pause: bool, subreaper: bool) -> ExitCode {
    let guard: Arc<Mutex<Option<Arc<Guard>>>> = Arc::default();
    if let Err(e) = end_lab_on_signals(Arc::clone(&guard)) {
        eprintln!("daemonlab: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let options = match LabOptions::for_current_exe() {
        Ok(options) => LabOptions {
            subreaper,
            ..options
        },
        Err(e) => {
            eprintln!("daemonlab: cannot find its own executable to start the subject: {e}");
            return ExitCode::FAILURE;
        }
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
