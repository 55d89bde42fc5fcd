//! Command-line types. The hidden `__session` and `__subject` subcommands are how the lab
//! re-executes itself for its helper processes; people never type them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::report::Format;
use crate::ui::theme::ThemeName;

/// `daemonlab lessons …`
#[derive(Debug, Subcommand)]
pub enum LessonsCommand {
    /// Validate a directory of lesson files; errors name the file and line.
    Check {
        /// The directory to check.
        dir: PathBuf,
    },
}

/// daemonlab: step a live process through the daemon coding rules of APUE chapter 13
/// and watch what the kernel says about it after every step.
#[derive(Debug, Parser)]
#[command(name = "daemonlab", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Colours for the explorer; NO_COLOR in the environment always wins.
    #[arg(long, value_enum, default_value_t = ThemeName::Default, global = true)]
    pub theme: ThemeName,
    /// Read lessons from this directory instead of the built-in ones (for teachers).
    #[arg(long, value_name = "DIR", global = true)]
    pub lessons: Option<PathBuf>,
    /// Make the lab a child subreaper: it adopts (and reaps) the subject's orphans
    /// instead of PID 1 or the nearest subreaper.
    #[arg(long, global = true)]
    pub subreaper: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run steps 0–10 without a TUI and print each step's result and the kernel's view.
    Tour {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Wait for Enter between steps; the subject stays alive for `ps` meanwhile.
        #[arg(long)]
        pause: bool,
    },
    /// Work with lesson files.
    Lessons {
        #[command(subcommand)]
        command: LessonsCommand,
    },
    /// (internal) the shell stand-in that owns the subject's terminal session.
    #[command(name = "__session", hide = true)]
    Session {
        #[arg(long)]
        pty: PathBuf,
        /// Arguments passed on to `__subject`.
        #[arg(last = true)]
        subject_args: Vec<String>,
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
