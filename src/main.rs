use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use daemonlab::cli::{Cli, Command, LessonsCommand, LocksCommand, SyslogMode};
use daemonlab::janitor::Janitor;
use daemonlab::lab::session::{self, SessionArgs};
use daemonlab::lab::subject::{self, SubjectArgs};
use daemonlab::lab::{Lab, LabOptions};
use daemonlab::lessons::{self, LessonSet};
use daemonlab::locks;
use daemonlab::process::Guard;
use daemonlab::report::{Format, tour};
use daemonlab::ui::{self, UiOptions, theme::Theme};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::from_env();
    if let Some(path) = &cli.log {
        if let Err(e) = start_log(path, cli.log_level) {
            eprintln!(
                "daemonlab: cannot write the log file {}: {e} — pick a file in a directory you can write, e.g. --log /tmp/daemonlab.log",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let code = run(&cli);
    tracing::info!(?code, "daemonlab exits");
    code
}

/// The one place a closed output pipe is handled (`daemonlab … | head`): whatever still
/// printed with `println!` and panicked on EPIPE ends quietly instead, with status 141 —
/// what a shell reports for a program SIGPIPE killed, as it does for `ps | head`. Every
/// other panic goes on to the usual hook.
fn quiet_on_closed_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") || text.contains("os error 32") {
            std::process::exit(141);
        }
        previous(info);
    }));
}

/// Write `text` to stdout; a reader that went away is a normal end (status 0).
fn print_out(text: &str, who: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "daemonlab {who}: cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--log FILE`: tracing events go to the file, appended, and nowhere else — the explorer
/// owns the screen.
fn start_log(path: &std::path::Path, level: daemonlab::cli::LogLevel) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_thread_names(true)
        .with_max_level(tracing::Level::from(level))
        .try_init()
        .map_err(std::io::Error::other)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        args = ?std::env::args().skip(1).collect::<Vec<_>>(),
        "daemonlab starts"
    );
    Ok(())
}

/// This binary, which `run` and `trace` re-execute as the tracer; says why when not.
fn own_exe(who: &str) -> Option<std::path::PathBuf> {
    std::env::current_exe()
        .map_err(|e| eprintln!("daemonlab {who}: cannot find its own executable: {e}"))
        .ok()
}

/// `daemonlab run`: `service` is `Ok` with `--service`, else the (unused) service flags.
fn run_program(
    cli: &Cli,
    settle: u64,
    service: Result<daemonlab::cli::ServiceArgs, daemonlab::cli::ServiceArgs>,
    command: Vec<String>,
) -> ExitCode {
    let Some(exe) = own_exe("run") else {
        return ExitCode::FAILURE;
    };
    if let Err(args) = &service
        && !args.is_default()
    {
        eprintln!(
            "daemonlab run: --type, --listen, --timeout, --watchdog, --pidfile and --stop-timeout are for a service — add --service"
        );
        return ExitCode::from(2);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eprintln!(
            "daemonlab run: needs a terminal to draw on — use `daemonlab trace -- PROGRAM` (or `daemonlab service -- PROGRAM`) for text or JSON"
        );
        return ExitCode::from(2);
    }
    let lessons = match load_lessons(cli) {
        Ok(lessons) => lessons,
        Err(code) => return code,
    };
    let theme = Theme::pick(cli.theme, Theme::no_color_requested());
    let result = match service {
        Ok(mut args) => {
            // No program: the lab's own new-style daemon, beside the lab's SysV subject.
            let command = if command.is_empty() {
                if args.kind == daemonlab::cli::ServiceKind::Simple {
                    args.kind = daemonlab::cli::ServiceKind::NotifyReload;
                }
                vec![exe.display().to_string(), "newstyle".to_string()]
            } else {
                command
            };
            match service_options("run", args, command) {
                Ok(options) => ui::run::run_service(options, theme, lessons),
                Err(code) => return code,
            }
        }
        Err(_) => {
            let mut command = command.into_iter();
            let options = daemonlab::trace::TraceOptions {
                exe,
                program: command.next().unwrap_or_default(),
                args: command.collect(),
                settle: std::time::Duration::from_millis(settle),
                timeout: std::time::Duration::from_secs(3600),
                filter: true,
            };
            ui::run::run(options, theme, lessons)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("daemonlab run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_trace(
    format: daemonlab::cli::TraceFormat,
    settle: u64,
    timeout: u64,
    keep: bool,
    no_filter: bool,
    command: Vec<String>,
) -> ExitCode {
    let Some(exe) = own_exe("trace") else {
        return ExitCode::FAILURE;
    };
    let mut command = command.into_iter();
    let options = daemonlab::trace::TraceOptions {
        exe,
        program: command.next().unwrap_or_default(),
        args: command.collect(),
        settle: std::time::Duration::from_millis(settle),
        timeout: std::time::Duration::from_secs(timeout),
        filter: !no_filter,
    };
    let result =
        daemonlab::report::trace::run(&options, format, keep, &mut std::io::stdout().lock());
    match result {
        Ok(code) => ExitCode::from(code),
        Err(daemonlab::report::trace::RunError::Output(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("daemonlab trace: {e}");
            if format == daemonlab::cli::TraceFormat::Json {
                let _ = print_out(
                    &format!(
                        "{}\n",
                        serde_json::json!({"event": "error", "error": e.to_string()})
                    ),
                    "trace",
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The manager's options from the command line; a usage error says what to give.
fn service_options(
    who: &str,
    args: daemonlab::cli::ServiceArgs,
    command: Vec<String>,
) -> Result<daemonlab::service::ServiceOptions, ExitCode> {
    use daemonlab::cli::ServiceKind as K;
    use daemonlab::service::ServiceType as T;
    let Some(exe) = own_exe(who) else {
        return Err(ExitCode::FAILURE);
    };
    let seconds = |what: &str, s: f64| {
        (s.is_finite() && s > 0.0 && s < 1e7)
            .then(|| std::time::Duration::from_secs_f64(s))
            .ok_or_else(|| format!("daemonlab {who}: {what} {s} is not a number of seconds above 0 — give e.g. {what} 5"))
    };
    let durations = (|| {
        Ok::<_, String>((
            seconds("--timeout", args.timeout)?,
            args.watchdog
                .map(|w| seconds("--watchdog", w))
                .transpose()?,
            seconds("--stop-timeout", args.stop_timeout)?,
        ))
    })();
    let (timeout, watchdog, stop_timeout) = durations.map_err(|message| {
        eprintln!("{message}");
        ExitCode::from(2)
    })?;
    let mut command = command.into_iter();
    // The service starts in /, as a manager starts it: a path like ./a.out is made
    // absolute here, from where it was typed (a bare name is looked up in its PATH).
    let program = command.next().unwrap_or_default();
    let program = if program.contains('/') {
        std::path::absolute(&program)
            .map(|path| path.display().to_string())
            .map_err(|e| {
                eprintln!("daemonlab {who}: {program}: {e}");
                ExitCode::FAILURE
            })?
    } else {
        program
    };
    Ok(daemonlab::service::ServiceOptions {
        exe,
        program,
        args: command.collect(),
        kind: match args.kind {
            K::Simple => T::Simple,
            K::Exec => T::Exec,
            K::Forking => T::Forking,
            K::Notify => T::Notify,
            K::NotifyReload => T::NotifyReload,
        },
        listen: args.listen,
        timeout,
        watchdog,
        pidfile: args.pidfile,
        stop_timeout,
    })
}

fn run_service(
    format: daemonlab::cli::ServiceFormat,
    args: daemonlab::cli::ServiceArgs,
    command: Vec<String>,
) -> ExitCode {
    let options = match service_options("service", args, command) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let json = format == daemonlab::cli::ServiceFormat::Json;
    ExitCode::from(daemonlab::report::service::run(
        &options,
        json,
        &mut std::io::stdout().lock(),
    ))
}

fn run(cli: &Cli) -> ExitCode {
    match cli.command.clone() {
        Some(Command::Janitor) => ExitCode::from(daemonlab::janitor::main() as u8),
        Some(Command::Session {
            pty,
            trace: Some(program),
            no_filter,
            subject_args,
        }) => ExitCode::from(
            daemonlab::trace::tracer::main(daemonlab::trace::tracer::TracerArgs {
                pty,
                program,
                argv: subject_args,
                filter: !no_filter,
            }) as u8,
        ),
        Some(Command::Run {
            settle,
            service,
            service_args,
            command,
        }) => run_program(
            cli,
            settle,
            if service {
                Ok(service_args)
            } else {
                Err(service_args)
            },
            command,
        ),
        Some(Command::Newstyle) => ExitCode::from(daemonlab::service::newstyle::main() as u8),
        Some(Command::ServiceExec { command }) => {
            ExitCode::from(daemonlab::service::exec::main(&command) as u8)
        }
        Some(Command::Service {
            format,
            service,
            command,
        }) => run_service(format, service, command),
        Some(Command::Trace {
            format,
            settle,
            timeout,
            keep,
            no_filter,
            command,
        }) => run_trace(format, settle, timeout, keep, no_filter, command),
        Some(Command::Session {
            pty,
            trace: None,
            subject_args,
            ..
        }) => {
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
        Some(Command::Tour {
            format,
            pause,
            experiment,
        }) => match experiment {
            Some(experiment) => run_experiment(experiment, format, cli),
            None => run_tour(format, pause, cli),
        },
        Some(Command::Lessons {
            command: LessonsCommand::Check { dir },
        }) => check_lessons(&dir),
        Some(Command::Syslogd {
            socket,
            udp,
            format,
        }) => run_syslogd(&socket, udp, format, cli.kmsg),
        Some(Command::Locks { command }) => run_locks(command),
        Some(Command::Inspect { pid, format }) => run_inspect(pid, format),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "daemonlab", &mut script);
            print_out(&String::from_utf8_lossy(&script), "completions")
        }
        Some(Command::Man { dir: Some(dir) }) => match daemonlab::man::write_pages(&dir) {
            Ok(pages) => {
                println!(
                    "daemonlab man: wrote {} pages to {}",
                    pages.len(),
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "daemonlab man: cannot write the pages to {}: {e} — create the directory first (mkdir -p)",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        },
        Some(Command::Man { dir: None }) => {
            match daemonlab::man::write_top_page(&mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("daemonlab man: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Ps { format, daemons }) => run_ps(format, daemons),
        Some(Command::Contender {
            pidfile,
            kind,
            mode,
            syslog_socket,
        }) => {
            let args = locks::ContenderArgs {
                pidfile,
                kind,
                mode,
                syslog_socket,
                gated: std::env::var_os(locks::GATE_ENV).is_some(),
            };
            ExitCode::from(locks::contender_main(args).clamp(0, 255) as u8)
        }
        Some(Command::Spawner) => ExitCode::from(locks::spawner_main().clamp(0, 255) as u8),
        Some(Command::Pitfall { args }) => {
            ExitCode::from(locks::pitfalls::pitfall_main(&args).clamp(0, 255) as u8)
        }
        None => run_explorer(cli),
    }
}

fn lab_options(cli: &Cli) -> Result<LabOptions, ExitCode> {
    match LabOptions::for_current_exe() {
        Ok(options) => Ok(LabOptions {
            subreaper: cli.subreaper,
            system_syslog: cli.syslog == SyslogMode::System,
            syslog_buffer: cli.syslog_buffer.max(1),
            syslog_udp: cli.syslog_udp,
            kmsg: cli.kmsg,
            ..options
        }),
        Err(e) => {
            eprintln!("daemonlab: cannot find its own executable to start the subject: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// The built-in lessons, with a teacher's `--lessons DIR` laid over them; broken lessons
/// are reported (a teacher preparing a class may have no terminal yet).
fn load_lessons(cli: &Cli) -> Result<LessonSet, ExitCode> {
    match &cli.lessons {
        None => Ok(LessonSet::embedded()),
        // A teacher's lessons replace the built-in ones they name; the rest stay.
        Some(dir) => match LessonSet::load_dir(dir) {
            Ok(set) => Ok(LessonSet::embedded().overlay(set)),
            Err(errors) => {
                report_lesson_errors(dir, &errors);
                Err(ExitCode::FAILURE)
            }
        },
    }
}

fn run_explorer(cli: &Cli) -> ExitCode {
    let lessons = match load_lessons(cli) {
        Ok(lessons) => lessons,
        Err(code) => return code,
    };
    // Broken lessons are reported first: a teacher preparing a class may have no terminal yet.
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "daemonlab: the explorer needs a terminal on stdin and stdout. \
             Without one, run the headless tour: daemonlab tour (add --pause to step through it)"
        );
        return ExitCode::FAILURE;
    }
    let lab = match lab_options(cli) {
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
        Ok(count) => print_out(
            &format!("{}: {count} lessons, all valid\n", dir.display()),
            "lessons check",
        ),
        Err(errors) => {
            report_lesson_errors(dir, &errors);
            ExitCode::FAILURE
        }
    }
}

fn run_tour(format: Format, pause: bool, cli: &Cli) -> ExitCode {
    let guard: Arc<Mutex<Option<Arc<Guard>>>> = Arc::default();
    if let Err(e) = end_lab_on_signals(Arc::clone(&guard)) {
        eprintln!("daemonlab: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let options = match lab_options(cli) {
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
    let signal = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
    if signal != 0 {
        return ExitCode::from(128 + signal as u8);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): stop quietly, as the lab is already ended.
        Err(tour::TourError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("daemonlab: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The signal that is ending the program, if any: whichever thread finishes first, the
/// exit status is then 128 + signal.
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// SIGINT, SIGTERM and SIGHUP end every lab process, then the program, with 128 + signal.
fn end_lab_on_signals(guard: Arc<Mutex<Option<Arc<Guard>>>>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Not between making a file and handing it to the janitor.
                let _still = daemonlab::janitor::hold_still();
                SIGNALLED.store(signal, std::sync::atomic::Ordering::SeqCst);
                if let Some(guard) = guard.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    guard.shutdown();
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Run `stop` on a thread of its own at the first SIGINT, SIGTERM or SIGHUP (a closed
/// terminal), for the commands that end in order instead of by the default action.
fn on_first_signal(stop: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop();
        }
    });
    Ok(())
}

/// `daemonlab syslogd`: the lab's receiver in the foreground; SIGINT, SIGTERM or SIGHUP
/// (its terminal closed) removes the socket and ends it.
fn run_syslogd(
    socket: &std::path::Path,
    udp: Option<std::net::SocketAddr>,
    format: Format,
    kmsg: bool,
) -> ExitCode {
    use daemonlab::syslog::sink::{OutputFormat, Sink, SinkOptions, StopHandle};
    let options = SinkOptions {
        udp,
        kmsg,
        format: if format == Format::Json {
            OutputFormat::Json
        } else {
            OutputFormat::Text
        },
        ..SinkOptions::new(socket.to_path_buf())
    };
    // Started before the bind and dropped after the sink: if this process is killed, the
    // janitor removes the socket (only while it is still the one bound here).
    let janitor = std::env::current_exe()
        .and_then(|exe| Janitor::start(&exe))
        .map_err(|e| tracing::warn!(error = %e, "no janitor for the socket"))
        .ok();
    // The handlers first: a SIGTERM that comes as soon as the socket exists must stop the
    // receiver in order (summary, socket removed), not kill it by the default action.
    let stop = StopHandle::new();
    let on_signal = stop.clone();
    if let Err(e) = on_first_signal(move || on_signal.stop()) {
        eprintln!("daemonlab syslogd: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let bind = || Sink::bind(&options);
    let bound = match &janitor {
        Some(janitor) => janitor.bind_socket(&options.socket, bind),
        None => bind(),
    };
    let sink = match bound {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("daemonlab syslogd: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "daemonlab syslogd: listening on {} — try: logger -u {} hello",
        sink.path().display(),
        sink.path().display()
    );
    if let Some(addr) = sink.udp_addr() {
        eprintln!(
            "daemonlab syslogd: and on UDP {addr} — try: logger -n {} -P {} -d hello",
            addr.ip(),
            addr.port()
        );
    }
    match sink.run(&mut std::io::stdout().lock(), &stop) {
        Ok(summary) => {
            // The summary is the last word: a closed stderr must not turn it into a panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "daemonlab syslogd: {summary}");
            ExitCode::SUCCESS
        }
        // `daemonlab syslogd | head` ends the reader first: that is a normal end.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daemonlab syslogd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A private 0700 directory for a default pid file (/run and /var/run need root), with a
/// janitor that removes it even if this process is killed.
struct PrivateDir {
    dir: tempfile::TempDir,
    _janitor: Option<Janitor>,
}

fn private_dir(exe: &std::path::Path) -> Result<PrivateDir, daemonlab::lab::LabError> {
    // The janitor first, so the directory is in its hands a moment after it exists.
    let janitor = Janitor::start(exe)
        .map_err(|e| tracing::warn!(error = %e, "no janitor: a kill -9 would leave the directory"))
        .ok();
    let dir = daemonlab::janitor::making(|| {
        let dir = daemonlab::lab::private_runtime_dir(None)?;
        if let (Some(janitor), Ok(entry)) = (&janitor, daemonlab::janitor::Entry::dir(dir.path())) {
            janitor.add(&entry);
        }
        Ok::<_, daemonlab::lab::LabError>(dir)
    })?;
    Ok(PrivateDir {
        dir,
        _janitor: janitor,
    })
}

fn run_locks(command: LocksCommand) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("daemonlab locks: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Whatever the inherited dispositions, a signal (`timeout`, Ctrl-C) ends a race at
    // once: the contenders follow when their stdin closes, the janitor removes the
    // directory. (`hold` stops on its own signals, below, and cleans up as it returns.)
    if matches!(command, LocksCommand::Race { .. })
        && let Err(e) = end_lab_on_signals(Arc::default())
    {
        eprintln!("daemonlab locks race: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let given = match &command {
        LocksCommand::Race { pidfile, .. } | LocksCommand::Hold { pidfile, .. } => pidfile.clone(),
    };
    // Only a default pid file needs a directory of the lab's own.
    let dir = match given {
        Some(_) => None,
        None => match private_dir(&exe) {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprintln!(
                    "daemonlab locks: cannot create a private directory for the pid file: {e} — pass --pidfile PATH in a directory you can write"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let default_pidfile = || {
        dir.as_ref()
            .map(|d| d.dir.path().join("daemonlab.pid"))
            .unwrap_or_default()
    };
    match command {
        LocksCommand::Race {
            contenders,
            kind,
            mode,
            pidfile,
            format,
        } => {
            let pidfile = pidfile.unwrap_or_else(default_pidfile);
            let options = locks::cli::RaceOptions {
                contenders,
                kind,
                mode,
                json: format == Format::Json,
                ..locks::cli::RaceOptions::new(exe, pidfile)
            };
            match locks::cli::race(options, &mut std::io::stdout().lock()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("daemonlab locks race: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        LocksCommand::Hold { kind, pidfile } => {
            let pidfile = pidfile.unwrap_or_else(default_pidfile);
            let _ = exe;
            let stop = locks::cli::StopHandle::new();
            stop.stop_on_stdin_eof();
            let on_signal = stop.clone();
            if let Err(e) = on_first_signal(move || on_signal.stop()) {
                eprintln!("daemonlab locks hold: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
            let options = locks::cli::HoldOptions {
                pidfile,
                kind,
                mode: locks::LockMode::Try,
                json: false,
            };
            match locks::cli::hold(options, &mut std::io::stdout().lock(), &stop) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(locks::LockError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("daemonlab locks hold: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `daemonlab tour --experiment NAME`: exit 0 when the claim was observed, else 1.
fn run_experiment(
    experiment: daemonlab::lab::experiments::Experiment,
    format: Format,
    cli: &Cli,
) -> ExitCode {
    // A signal ends the program at once: the experiment's labs follow through their
    // lifelines, and their janitors remove what they left on disk (mounts included).
    if let Err(e) = end_lab_on_signals(Arc::default()) {
        eprintln!("daemonlab: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let options = match lab_options(cli) {
        Ok(options) => options,
        Err(code) => return code,
    };
    match daemonlab::lab::experiments::run(experiment, &options) {
        Ok(report) => {
            let printed = daemonlab::report::experiment::print(
                &report,
                format,
                &mut std::io::stdout().lock(),
            );
            match (printed, report.observed) {
                (Ok(()), true) => ExitCode::SUCCESS,
                // Not a usage error (2): the experiment ran, the kernel disagreed.
                (Ok(()), false) => {
                    eprintln!(
                        "daemonlab: experiment {}: the claim was not observed; the evidence above says why",
                        experiment.name()
                    );
                    ExitCode::FAILURE
                }
                (Err(e), _) => {
                    eprintln!("daemonlab: cannot write the report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!(
                "daemonlab: experiment {} could not run: {e}",
                experiment.name()
            );
            ExitCode::FAILURE
        }
    }
}

/// `daemonlab inspect PID`: exit 0 when every rule passes or warns, 3 when one fails, 1
/// when the process cannot be inspected (with JSON, the error is on stdout too).
fn run_inspect(pid: i32, format: daemonlab::cli::InspectFormat) -> ExitCode {
    use daemonlab::cli::InspectFormat;
    let audit = match daemonlab::audit::inspect(pid) {
        Ok(audit) => audit,
        Err(e) => {
            eprintln!("daemonlab inspect: {e}");
            if format == InspectFormat::Json {
                let _ = print_out(
                    &format!("{}\n", daemonlab::audit::error_json(Some(pid.into()), &e)),
                    "inspect",
                );
            }
            return ExitCode::FAILURE;
        }
    };
    let text = match format {
        InspectFormat::Json => daemonlab::audit::json_report(&audit),
        InspectFormat::Text => daemonlab::audit::text_report(&audit),
        InspectFormat::Markdown => daemonlab::audit::markdown_report(&audit),
    };
    let printed = print_out(&format!("{}\n", text.trim_end()), "inspect");
    if printed != ExitCode::SUCCESS {
        return printed;
    }
    let failed = audit
        .checks
        .iter()
        .any(|c| c.status == daemonlab::audit::Status::Fail);
    if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// `daemonlab ps`: the process table, headless.
fn run_ps(format: daemonlab::cli::PsFormat, daemons: bool) -> ExitCode {
    use daemonlab::cli::PsFormat;
    use daemonlab::probe::ps;
    let rows = match ps::read_table() {
        Ok(rows) if daemons => ps::daemons_only(rows),
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("daemonlab ps: cannot read /proc: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match format {
        PsFormat::Json => ps::json_table(&rows),
        PsFormat::Text => ps::marked_text_table(&rows),
        PsFormat::Markdown => ps::markdown_table(&rows),
    };
    print_out(&format!("{}\n", text.trim_end()), "ps")
}
