//! Command-line types. The hidden `__session` and `__subject` subcommands are how the lab
//! re-executes itself for its helper processes; people never type them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::locks::{LockKind, LockMode};
use crate::report::Format;
use crate::ui::theme::ThemeName;

// `daemonlab locks …` (plain comments on the nested subcommand enums and the flattened
// ServiceArgs: clap takes a doc comment there for the help text of the command they are
// part of, and with arguments built late, `defer`, it would replace that command's own).
#[derive(Debug, Clone, Subcommand)]
pub enum LocksCommand {
    /// Start N contenders at once; print each outcome and the kernel's lock table. Exits 0
    /// when exactly one held the lock.
    #[command(after_help = "Examples:
  daemonlab locks race                                  ten contenders, fcntl, try mode
  daemonlab locks race --contenders 50 --kind flock --mode wait
  daemonlab locks race --kind ofd --format json")]
    Race {
        #[arg(long, default_value_t = 10)]
        contenders: usize,
        #[arg(long, value_enum, default_value_t = LockKind::Fcntl)]
        kind: LockKind,
        #[arg(long, value_enum, default_value_t = LockMode::Try)]
        mode: LockMode,
        /// The pid file (default: in a private runtime directory; /run needs root). If it
        /// exists it must be a regular file that is empty or holds a PID; anything else is
        /// refused and left as it is.
        #[arg(long)]
        pidfile: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Hold the lock in the foreground until SIGINT, SIGTERM, SIGHUP or the end of stdin
    /// (when stdin is a terminal or a pipe).
    #[command(after_help = "Examples:
  daemonlab locks hold --pidfile /tmp/demo.pid          then, in another terminal:
  lslocks | grep demo.pid                               the kernel's view of the lock
  daemonlab locks race --pidfile /tmp/demo.pid          every contender is refused")]
    Hold {
        #[arg(long, value_enum, default_value_t = LockKind::Fcntl)]
        kind: LockKind,
        /// The pid file (default: in a private runtime directory; /run needs root). If it
        /// exists it must be a regular file that is empty or holds a PID; anything else is
        /// refused and left as it is.
        #[arg(long)]
        pidfile: Option<PathBuf>,
    },
}

// `daemonlab lessons …`
#[derive(Debug, Clone, Subcommand)]
pub enum LessonsCommand {
    /// Validate a directory of lesson files; errors name the file and line.
    #[command(after_help = "Examples:
  daemonlab lessons check lessons                       the built-in lessons, from a checkout
  daemonlab lessons check ~/class/lessons && daemonlab --lessons ~/class/lessons")]
    Check {
        /// The directory to check.
        dir: PathBuf,
    },
}

/// daemonlab: step a live process through the daemon coding rules of APUE chapter 13
/// and watch what the kernel says about it after every step.
#[derive(Debug, Parser)]
#[command(
    name = "daemonlab",
    version,
    about,
    after_help = "Examples:
  daemonlab                                   the explorer (needs a terminal, 80x24 or more)
  daemonlab --theme high-contrast             the same, for a projector
  daemonlab tour                              every step, headless, as plain text
  daemonlab inspect 1234                      audit a running process against the rules
  daemonlab ps --daemons                      likely daemons, in the columns of ps -axj"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Colours for the explorer; NO_COLOR in the environment always wins.
    #[arg(long, value_enum, default_value_t = ThemeName::Default, global = true, env = "DAEMONLAB_THEME")]
    pub theme: ThemeName,
    /// Read lessons from this directory instead of the built-in ones (for teachers).
    #[arg(long, value_name = "DIR", global = true, env = "DAEMONLAB_LESSONS")]
    pub lessons: Option<PathBuf>,
    /// Make the lab a child subreaper: it adopts (and reaps) the subject's orphans
    /// instead of PID 1 or the nearest subreaper.
    #[arg(long, global = true)]
    pub subreaper: bool,
    /// Where the subject logs: the lab's own syslogd, or the C library's syslog(3) to /dev/log.
    #[arg(long, value_enum, default_value_t = SyslogMode::Lab, global = true)]
    pub syslog: SyslogMode,
    /// How many messages the lab's syslogd keeps.
    #[arg(long, value_name = "N", default_value_t = crate::syslog::receiver::DEFAULT_CAPACITY, global = true)]
    pub syslog_buffer: usize,
    /// Also receive syslog over UDP at this address (port 514 needs root; try 127.0.0.1:5514).
    #[arg(long, value_name = "ADDR", global = true)]
    pub syslog_udp: Option<std::net::SocketAddr>,
    /// Also show kernel messages from /dev/kmsg (where readable).
    #[arg(long, global = true)]
    pub kmsg: bool,
    /// Write a diagnostic log (lab start, every step, shutdown, errors) to this file,
    /// appending; never to the screen.
    #[arg(long, value_name = "FILE", global = true)]
    pub log: Option<PathBuf>,
    /// How much --log writes.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = LogLevel::Debug, global = true)]
    pub log_level: LogLevel,
}

impl Cli {
    /// The command line of this process, parsed as `Cli::parse` parses it.
    ///
    /// `daemonlab inspect PID [--format F]` and nothing else, the command people run in
    /// loops and scripts, is read without building clap's command tree (its time, and
    /// pages of code touched at start and unmapped at exit: `cargo bench --bench
    /// inspect`); anything else, every error and every DAEMONLAB_* setting included,
    /// goes to clap. A test holds the two to the same result.
    pub fn from_env() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        Cli::plain_inspect(&args, |name| std::env::var_os(name).is_some())
            .unwrap_or_else(|| Cli::parse_from(args))
    }

    /// The `Cli` of a plain `inspect` command line, with every global option at its
    /// default; `None` for any other line, or when an environment variable clap reads
    /// (`is_set`) is set.
    pub fn plain_inspect(
        args: &[std::ffi::OsString],
        is_set: impl Fn(&str) -> bool,
    ) -> Option<Cli> {
        if is_set("DAEMONLAB_THEME") || is_set("DAEMONLAB_LESSONS") {
            return None;
        }
        let [_, command, rest @ ..] = args else {
            return None;
        };
        if command != "inspect" {
            return None;
        }
        let (mut pid, mut format) = (None, None);
        let mut words = rest.iter();
        while let Some(word) = words.next() {
            let word = word.to_str()?;
            let value = if let Some(value) = word.strip_prefix("--format=") {
                value
            } else if word == "--format" {
                words.next()?.to_str()?
            } else if word.starts_with('-') || pid.is_some() {
                // Options, "--", a negative number, a second PID: clap's to judge.
                return None;
            } else {
                pid = Some(word);
                continue;
            };
            if format.replace(value).is_some() {
                return None;
            }
        }
        let format = match format {
            Some(name) => <InspectFormat as clap::ValueEnum>::from_str(name, false).ok()?,
            None => InspectFormat::Text,
        };
        Some(Cli {
            command: Some(Command::Inspect {
                pid: parse_pid_arg(pid?).ok()?,
                format,
            }),
            theme: ThemeName::Default,
            lessons: None,
            subreaper: false,
            syslog: SyslogMode::Lab,
            syslog_buffer: crate::syslog::receiver::DEFAULT_CAPACITY,
            syslog_udp: None,
            kmsg: false,
            log: None,
            log_level: LogLevel::Debug,
        })
    }
}

/// `--log-level`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> tracing::Level {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// `--syslog lab|system`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyslogMode {
    /// The lab's own receiver and the lab's syslog(3) client (every effect visible).
    Lab,
    /// The C library's syslog(3), to /dev/log.
    System,
}

#[derive(Debug, Clone, Subcommand)]
// Each subcommand's arguments are built only when it is the one given: building them all
// was most of a short command's start-up (`daemonlab inspect` measures it in
// `cargo bench --bench inspect`).
#[command(defer = true)]
pub enum Command {
    /// Run steps 0–10 without a TUI and print each step's result and the kernel's view.
    #[command(after_help = "Examples:
  daemonlab tour                                        plain text; * marks what a step changed
  daemonlab tour --pause                                Enter between steps; look with ps meanwhile
  daemonlab tour --format markdown > handout.md         a handout for a class
  daemonlab tour --format json | jq .process.sid        one JSON object per step
  daemonlab tour --experiment no-setsid                 skip a rule and see what the kernel does")]
    Tour {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Wait for Enter between steps; the subject stays alive for `ps` meanwhile.
        #[arg(long)]
        pause: bool,
        /// Instead of the tour, run one "skip a rule" experiment on a fresh lab and print
        /// the kernel's evidence.
        #[arg(long, value_enum, value_name = "NAME")]
        experiment: Option<crate::lab::experiments::Experiment>,
    },
    /// Run the lab's syslogd on its own, in the foreground, printing what arrives.
    #[command(after_help = "Examples:
  daemonlab syslogd --socket /tmp/log.sock              then, in another terminal:
  logger -u /tmp/log.sock -p daemon.warning hello       util-linux logger sends to it
  daemonlab syslogd --socket /tmp/log.sock --udp 127.0.0.1:5514 --format json")]
    Syslogd {
        /// The Unix datagram socket to receive on (removed on exit).
        #[arg(long)]
        socket: PathBuf,
        /// Also receive over UDP here (e.g. 127.0.0.1:5514).
        #[arg(long, value_name = "ADDR")]
        udp: Option<std::net::SocketAddr>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Audit any process against the daemon rules: its role, its pid file, and each rule
    /// as pass, warn or fail, with reasons.
    #[command(after_help = "Examples:
  daemonlab inspect $(pgrep -o sshd)                    a real daemon
  daemonlab inspect $$                                  your shell: it fails the tty rule
  daemonlab inspect 1234 --format json                  role, main_pid, pidfile, checks, verdict
  daemonlab inspect 1234 --format markdown              a table of checks, for an issue or a handout

Roles: daemon, service, worker, thread, job, kernel_thread, zombie, init, process.
Exit status: 0 when every rule passes or warns, 3 when any rule fails, 1 when the
process cannot be inspected (with --format json, the error is also a JSON object on
stdout), 2 for a usage error such as a PID that is not a number.")]
    Inspect {
        /// The process (or thread) to audit.
        #[arg(value_parser = parse_pid_arg)]
        pid: i32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
        format: InspectFormat,
    },
    /// The explorer with any program as its subject, held at every rule until Space.
    ///
    /// PROGRAM is traced as `daemonlab trace` traces it; here the timeline grows one rule
    /// at a time, with the kernel's view of the process at each, so a class can
    /// single-step a real daemon. q ends the explorer and the program with it.
    #[command(after_help = "Examples:
  daemonlab run -- ./a.out                              single-step your daemonize()
  sudo daemonlab run -- /usr/sbin/cron                  a real daemon, rule by rule
  daemonlab run --service                               the other model: a new-style daemon, the lab its manager
  daemonlab run --service --type notify -- ./mydaemon   your Type=notify daemon; r reloads, e stops")]
    Run {
        /// Once the original process has exited, call the trace ended after the rest
        /// make no rule call for this many milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        settle: u64,
        /// Start PROGRAM as a new-style service instead (as `daemonlab service` does): the
        /// timeline shows the manager's part, states and notify messages; r reloads, e stops.
        #[arg(long)]
        service: bool,
        #[command(flatten)]
        service_args: ServiceArgs,
        /// The program and its arguments (with --service and none: the lab's own
        /// new-style daemon, `daemonlab newstyle`, as Type=notify-reload).
        #[arg(
            last = true,
            required_unless_present = "service",
            value_name = "PROGRAM"
        )]
        command: Vec<String>,
    },
    /// Follow any program through its own daemonization, rule by rule.
    ///
    /// Starts PROGRAM as a job on a fresh terminal and follows it (and everything it
    /// forks): each rule as it happens, with the kernel's view of
    /// the process, then inspect's checks on the daemon it left and the mistakes only the
    /// order of events shows. Exits 0 when it daemonized with nothing failing, 3 when not,
    /// 1 when it could not be traced.
    #[command(after_help = "Examples:
  daemonlab trace -- ./a.out                            your daemonize() exercise, rule by rule
  daemonlab trace -- /usr/sbin/cron                     a real daemon (ended when the trace ends)
  daemonlab trace --format json -- nginx -c /tmp/n.conf one JSON object per event, verdict last
  daemonlab trace --keep -- ./mydaemon                  leave it running afterwards")]
    Trace {
        /// Output format.
        #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
        format: TraceFormat,
        /// Once the original process has exited, end after the rest make no rule call for
        /// this many milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        settle: u64,
        /// End the whole trace after this many seconds, whatever happens.
        #[arg(long, default_value_t = 30, value_name = "S")]
        timeout: u64,
        /// Leave the program running when the trace ends (under a quiet tracer: its
        /// seccomp filter stays, and without a tracer its watched calls would fail).
        #[arg(long)]
        keep: bool,
        /// No seccomp filter: stop the program on every system call (PTRACE_SYSCALL), as
        /// strace does without --seccomp-bpf. Much slower; for comparison.
        #[arg(long)]
        no_filter: bool,
        /// The program and its arguments.
        #[arg(last = true, required = true, value_name = "PROGRAM")]
        command: Vec<String>,
    },
    /// Run PROGRAM as a new-style service, the lab playing systemd (sd_notify, sockets)
    ///
    /// The lab as a new-style service manager (daemon(7)): it starts PROGRAM with a clean
    /// environment, default signals, closed descriptors, its own session, cwd / and umask
    /// 0022, then follows its notify messages (sd_notify(3)) and its exits through
    /// systemd's states. Type `reload` or `stop` on standard input; end of input stops it.
    #[command(after_help = "Examples:
  daemonlab service --type notify -- ./mydaemon           readiness: activating until READY=1
  daemonlab service --type notify-reload -- ./mydaemon    reload: SIGHUP, RELOADING=1 … READY=1
  daemonlab service --type forking --pidfile /tmp/d.pid -- ./a.out   the chapter's model, judged by a manager
  daemonlab service --listen :0 --type notify -- ./server socket activation: the port is bound first, passed as fd 3
  echo stop | daemonlab service --watchdog 2 --type notify -- ./mydaemon

Exit status: 0 when the service ended inactive (stopped, or exited with 0), 3 when it
failed (a timeout, a watchdog, an exit status or a signal), 1 when it could not start.")]
    Service {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ServiceFormat::Text)]
        format: ServiceFormat,
        #[command(flatten)]
        service: ServiceArgs,
        /// The program and its arguments.
        #[arg(last = true, required = true, value_name = "PROGRAM")]
        command: Vec<String>,
    },
    /// A small new-style daemon for `daemonlab service`: READY=1, SIGHUP reloads, SIGTERM stops
    ///
    /// It does none of APUE 13.3's rules itself — the manager has — and reports its state
    /// through sd_notify(3): READY=1; on SIGHUP RELOADING=1 with MONOTONIC_USEC= and READY=1
    /// again; on SIGTERM STOPPING=1. Compare it with the lab's own subject, which does every
    /// rule itself.
    #[command(after_help = "Examples:
  daemonlab service --type notify-reload -- daemonlab newstyle   start it as systemd would; type reload, stop")]
    Newstyle,
    /// The whole system in the columns of `ps -axj`, with each process's role (daemon,
    /// service, worker, job, kernel_thread, …) marked.
    #[command(after_help = "Examples:
  daemonlab ps                                          every process, ROLE column before COMMAND
  daemonlab ps --daemons                                daemons and services only
  daemonlab ps --format json                            one JSON array, one object per process
  daemonlab ps --format markdown                        a Markdown table")]
    Ps {
        /// Output format.
        #[arg(long, value_enum, default_value_t = PsFormat::Text)]
        format: PsFormat,
        /// Keep only daemons and services: no zombies, jobs, workers, kernel threads, nor
        /// this command itself.
        #[arg(long)]
        daemons: bool,
    },
    /// Single-instance daemons (APUE 13.5): race for a pid-file lock, or hold one.
    #[command(after_help = "Examples:
  daemonlab locks race --contenders 10                  exit 0 when exactly one held the lock
  daemonlab locks hold --pidfile /tmp/demo.pid")]
    Locks {
        #[command(subcommand)]
        command: LocksCommand,
    },
    /// (internal) one contender for the pid-file lock.
    #[command(name = "__contender", hide = true)]
    Contender {
        #[arg(long)]
        pidfile: PathBuf,
        #[arg(long, value_enum)]
        kind: LockKind,
        #[arg(long, value_enum)]
        mode: LockMode,
        #[arg(long)]
        syslog_socket: Option<PathBuf>,
    },
    /// (internal) the single-threaded helper that forks contenders for the lab.
    #[command(name = "__spawner", hide = true)]
    Spawner,
    /// (internal) the helper process of a lock pitfall scenario.
    #[command(name = "__pitfall", hide = true)]
    Pitfall {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:
  daemonlab completions bash > ~/.local/share/bash-completion/completions/daemonlab
                                                        (mkdir -p that directory first)
  daemonlab completions zsh > ~/.zfunc/_daemonlab
  daemonlab completions fish > ~/.config/fish/completions/daemonlab.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per subcommand to a directory.
    #[command(after_help = "Examples:
  daemonlab man | man -l -                              read it now
  daemonlab man --dir ~/.local/share/man/man1           then: man daemonlab, man daemonlab-tour")]
    Man {
        /// Write daemonlab.1 and daemonlab-SUBCOMMAND.1 for every subcommand into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Work with lesson files.
    #[command(after_help = "Examples:
  daemonlab lessons check lessons")]
    Lessons {
        #[command(subcommand)]
        command: LessonsCommand,
    },
    /// (internal) removes what a lab left on disk once the lab has ended, however it ended.
    #[command(name = "__janitor", hide = true)]
    Janitor,
    /// (internal) the shell stand-in that owns the subject's terminal session.
    #[command(name = "__session", hide = true)]
    Session {
        #[arg(long)]
        pty: PathBuf,
        /// Trace this program (an absolute path) as the job instead of starting
        /// `__subject`; the arguments after `--` are then its argv.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// With --trace: no seccomp filter, stop on every call (PTRACE_SYSCALL).
        #[arg(long)]
        no_filter: bool,
        /// Arguments passed on to `__subject`.
        #[arg(last = true)]
        subject_args: Vec<String>,
    },
    /// (internal) does the service manager's part in the process that becomes the
    /// service, then execs it.
    #[command(name = "__service-exec", hide = true)]
    ServiceExec {
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// (internal) the live subject that carries out the steps.
    #[command(name = "__subject", hide = true)]
    Subject {
        #[arg(long)]
        control_fd: i32,
        #[arg(long)]
        syslog_socket: Option<PathBuf>,
        #[arg(long, default_value = "daemonlab")]
        ident: String,
        #[arg(long)]
        console: Option<PathBuf>,
        #[arg(long)]
        system_syslog: bool,
    },
}

/// `daemonlab inspect --format`: what the audit of one process looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    /// A header, the role and pid file, one line per rule (PASS/WARN/FAIL), the verdict.
    Text,
    /// A Markdown section with a table of rules.
    Markdown,
    /// One JSON object: pid, role, main_pid, pidfile, process, checks, verdict.
    Json,
}

/// `daemonlab trace --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// One paragraph per rule, as the tour prints steps, then the verdict.
    Text,
    /// One JSON object per line, `event` first: syscall, fork, exec, exit, then verdict.
    Json,
}

// How `daemonlab service` (and `run --service`) manage the program (a plain comment: see
// LocksCommand).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ServiceArgs {
    /// What "started" means: at fork (simple), after execve (exec), when the first
    /// process exits and leaves its daemon (forking), at READY=1 (notify), and with
    /// reloads as SIGHUP → RELOADING=1 … READY=1 (notify-reload).
    #[arg(long = "type", value_enum, default_value_t = ServiceKind::Simple)]
    pub kind: ServiceKind,
    /// Bind this socket and pass it as fd 3, 4, … (socket activation): 127.0.0.1:PORT,
    /// :PORT on the loopback (:0 picks a free port), [::1]:PORT, or a Unix socket path.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// A start (or reload) that has not completed after this many seconds fails.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub timeout: f64,
    /// The service must send WATCHDOG=1 at least this often (WATCHDOG_USEC is set for
    /// it); a missed ping fails it.
    #[arg(long, value_name = "S")]
    pub watchdog: Option<f64>,
    /// Type=forking: the file in which the daemon writes its PID.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// After SIGTERM, SIGKILL what is left after this many seconds.
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    pub stop_timeout: f64,
}

impl ServiceArgs {
    /// Whether any of these was given (they mean something only with a service).
    pub fn is_default(&self) -> bool {
        self.kind == ServiceKind::Simple
            && self.listen.is_empty()
            && self.timeout == 10.0
            && self.watchdog.is_none()
            && self.pidfile.is_none()
            && self.stop_timeout == 5.0
    }
}

/// `daemonlab service --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceFormat {
    /// One line per event: listening, prepared (the manager's part, from /proc), state,
    /// notify, log, signal, exit.
    Text,
    /// One JSON object per line, `event` first, the same events.
    Json,
}

/// `daemonlab service --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceKind {
    Simple,
    Exec,
    Forking,
    Notify,
    NotifyReload,
}

/// `daemonlab ps --format`: what the process table looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PsFormat {
    /// The columns of `ps -axj`, with a ROLE column before COMMAND.
    Text,
    /// A Markdown table, one row per process.
    Markdown,
    /// One JSON array, one object per process.
    Json,
}

/// clap's value parser for a PID: a typo is a usage error (exit 2), with the reason.
fn parse_pid_arg(text: &str) -> Result<i32, String> {
    crate::audit::parse_pid(text).map_err(|e| e.to_string())
}
