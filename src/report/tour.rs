//! `daemonlab tour`: steps 0–10 on a live subject, each printed with the kernel's view.

use std::io::{BufRead, Write};
use std::time::Duration;

use serde::Serialize;

use super::{Format, process_lines};
use crate::lab::session::SessionEvent;
use crate::lab::{Lab, LabError, STEPS, StepOutcome};

/// One step of the tour as JSON: the keys other tools rely on.
#[derive(Serialize)]
struct Record<'a> {
    step: &'static str,
    index: u8,
    title: &'static str,
    section: &'static str,
    call: &'static str,
    ok: bool,
    error: Option<JsonError<'a>>,
    detail: &'a str,
    forked: Option<crate::lab::Forked>,
    process: &'a crate::probe::ProcSnapshot,
    changed: &'a [&'static str],
    cross_check: Option<&'a str>,
    terminal: &'a [String],
    shell: &'a [String],
    syslog: Vec<&'a str>,
    sessions: &'a [crate::probe::sessions::SessionPicture],
}

#[derive(Serialize)]
struct JsonError<'a> {
    errno: Option<i32>,
    name: Option<&'a str>,
    message: &'a str,
}

/// Why a tour stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TourError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("cannot write the tour: {0}")]
    Output(#[from] std::io::Error),
}

/// Run every step in order on `lab`, writing each as it happens. With `pause`, wait for a
/// line on `input` between steps and after the last one, so the finished daemon can be
/// inspected (EOF ends the tour early, cleanly).
pub fn run(
    lab: &mut Lab,
    format: Format,
    pause: bool,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), TourError> {
    if format != Format::Json {
        header(lab, format, out)?;
    }
    let mut shell_seen = 0;
    for (i, info) in STEPS.iter().enumerate() {
        let terminal_before = lab.terminal().line_count();
        let outcome = lab.run(info.id)?;
        wait_for_terminal(lab, &outcome, terminal_before);
        let terminal = lab.terminal().lines_since(terminal_before);
        let events = lab.session_events();
        let shell: Vec<String> = events[shell_seen.min(events.len())..]
            .iter()
            .map(describe_event)
            .collect();
        shell_seen = events.len();
        match format {
            Format::Json => json(&outcome, &terminal, &shell, out)?,
            Format::Text => text(lab, &outcome, &terminal, &shell, out)?,
            Format::Markdown => markdown(lab, &outcome, &terminal, &shell, out)?,
        }
        out.flush()?;
        if pause && let Some(next) = STEPS.get(i + 1) {
            eprint!(
                "-- Enter runs step {} ({}); Ctrl-D stops the tour -- ",
                next.index, next.short
            );
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                eprintln!();
                return Ok(());
            }
        }
    }
    if pause {
        // The finished daemon is the thing to look at: keep it until the reader is done.
        let pid = lab.subject_pid();
        eprint!(
            "-- the daemon is pid {pid}, alive until Enter; look at it with: daemonlab inspect {pid} -- "
        );
        let mut line = String::new();
        input.read_line(&mut line)?;
    }
    Ok(())
}

/// The subject prints one line per step while its stdout is still the terminal; give the
/// pty a moment to pass it on, so the line is reported with its step.
fn wait_for_terminal(lab: &Lab, outcome: &StepOutcome, from: usize) {
    let pty = format!("/dev/{}", lab.pty_name());
    let on_terminal = outcome
        .process
        .fds
        .iter()
        .flatten()
        .any(|fd| fd.fd == 1 && fd.target == pty);
    if on_terminal {
        let tag = format!(
            "pid {}: [{} ",
            outcome.process.pid,
            outcome.step.info().index
        );
        lab.terminal()
            .wait_for_line(from, Duration::from_millis(300), |line| {
                line.starts_with(&tag)
            });
    }
}

fn describe_event(event: &SessionEvent) -> String {
    match event {
        SessionEvent::Started {
            session,
            subject,
            tty,
        } => {
            format!("shell stand-in {session} started job {subject} in the foreground of {tty}")
        }
        SessionEvent::Reaped {
            pid,
            status,
            took_terminal_back,
        } => format!(
            "shell stand-in reaped {pid} ({status}){}",
            if *took_terminal_back {
                " and took the terminal back: its own group is the foreground job again"
            } else {
                ""
            }
        ),
        SessionEvent::HungUp { signalled, .. } => match signalled {
            Some(group) => format!(
                "shell stand-in was hung up: its job {group} was still in its table, so it sent \
                 SIGHUP and SIGCONT to group {group}, then exited"
            ),
            None => "shell stand-in was hung up: its job had already ended and been reaped, so \
                     it signalled no group (as bash), then exited"
                .into(),
        },
    }
}

fn header(lab: &Lab, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    let syslog = lab.syslog().path().display();
    let lines = [
        format!(
            "subject pid {}, started as a job by the shell stand-in pid {} on {}",
            lab.subject_pid(),
            lab.session_pid(),
            lab.pty_name()
        ),
        format!(
            "control channel: fd {} in the subject, the lab's own; step 8 keeps it open on purpose so the lab \
             can go on asking (a real daemon keeps nothing there: daemon(7)'s notification pipe is made \
             after that step)",
            lab.control_fd()
        ),
        format!(
            "syslog receiver (the lab's own syslogd): {syslog} — try: logger -u {syslog} hello"
        ),
        "every value below is read from /proc after the step; * marks what the step changed"
            .to_string(),
    ];
    match format {
        Format::Markdown => {
            writeln!(out, "# daemonlab tour: APUE 13.3 on a live process\n")?;
            for line in lines {
                writeln!(out, "- {line}")?;
            }
        }
        _ => {
            writeln!(
                out,
                "daemonlab tour — the daemon coding rules (APUE 13.3) on a live process"
            )?;
            for line in lines {
                writeln!(out, "  {line}")?;
            }
        }
    }
    writeln!(out)
}

fn result_line(outcome: &StepOutcome) -> String {
    match &outcome.error {
        None => format!("ok — {}", outcome.detail),
        Some(e) => format!("FAILED — {}", e.message),
    }
}

fn extras(
    outcome: &StepOutcome,
    terminal: &[String],
    shell: &[String],
) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let Some(f) = outcome.forked {
        rows.push((
            "fork",
            format!(
                "parent {} exited; the lab now follows child {}",
                f.parent, f.child
            ),
        ));
    }
    rows.push((
        "changed",
        if outcome.changed.is_empty() {
            "nothing".to_string()
        } else {
            outcome.changed.join(", ")
        },
    ));
    if let Some(mismatch) = &outcome.cross_check {
        rows.push(("MISMATCH", mismatch.clone()));
    }
    for line in shell {
        rows.push(("shell", line.clone()));
    }
    if terminal.is_empty() {
        rows.push(("terminal", "(nothing printed on the terminal)".to_string()));
    }
    for line in terminal {
        rows.push(("terminal", line.clone()));
    }
    if outcome.step == crate::lab::StepId::Openlog && outcome.ok {
        if outcome.syslog.is_empty() {
            rows.push((
                "syslog",
                "the lab's receiver has NOT received the message".to_string(),
            ));
        }
        for message in &outcome.syslog {
            rows.push((
                "syslog",
                format!(
                    "received from pid {}: {}",
                    message.sender_pid.unwrap_or(-1),
                    message.text
                ),
            ));
        }
    }
    rows
}

fn text(
    lab: &Lab,
    outcome: &StepOutcome,
    terminal: &[String],
    shell: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let info = outcome.step.info();
    writeln!(
        out,
        "── step {} · {} — {} (APUE {})",
        info.index,
        info.id.label(),
        info.title,
        info.section
    )?;
    writeln!(out, "  C call   {}", info.c_call)?;
    writeln!(out, "  runs     {}", info.action)?;
    writeln!(out, "  result   {}", result_line(outcome))?;
    for line in process_lines(
        &outcome.process,
        &outcome.changed,
        lab.control_fd(),
        lab.pty_name(),
    ) {
        writeln!(out, "  {line}")?;
    }
    for (label, value) in extras(outcome, terminal, shell) {
        writeln!(out, "  {label:<8} {value}")?;
    }
    writeln!(out, "  sessions {SESSIONS_CAPTION}")?;
    for line in super::sessions::text_lines(&outcome.sessions, DRAWING_WIDTH) {
        writeln!(out, "    {line}")?;
    }
    writeln!(out)
}

/// What the session drawing shows, where the book draws it.
const SESSIONS_CAPTION: &str = "session ⊃ process group ⊃ process, as in APUE 9.4–9.6";

/// Width of the session drawing in the text and Markdown tours: fits 80 columns indented.
const DRAWING_WIDTH: usize = 72;

fn markdown(
    lab: &Lab,
    outcome: &StepOutcome,
    terminal: &[String],
    shell: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let info = outcome.step.info();
    let p = &outcome.process;
    let cell = |field: &str, value: String| {
        if outcome.changed.contains(&field) {
            format!("**{value}**")
        } else {
            value
        }
    };
    writeln!(
        out,
        "## Step {} · {} — {} (APUE {})\n",
        info.index,
        info.id.label(),
        info.title,
        info.section
    )?;
    writeln!(out, "- C call: `{}`", info.c_call)?;
    writeln!(out, "- runs: `{}`", info.action)?;
    writeln!(out, "- result: {}\n", result_line(outcome))?;
    writeln!(out, "| PID | PPID | PGID | SID | TTY | TPGID |")?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |\n",
        cell("pid", p.pid.to_string()),
        cell("ppid", p.ppid.to_string()),
        cell("pgid", p.pgid.to_string()),
        cell("sid", p.sid.to_string()),
        cell("tty", p.tty.clone().unwrap_or_else(|| "?".into())),
        cell("tpgid", p.tpgid.to_string()),
    )?;
    for line in process_lines(p, &outcome.changed, lab.control_fd(), lab.pty_name())
        .iter()
        .skip(1)
    {
        writeln!(out, "- {line}")?;
    }
    for (label, value) in extras(outcome, terminal, shell) {
        writeln!(out, "- {label}: `{value}`")?;
    }
    writeln!(out, "- sessions ({SESSIONS_CAPTION}):\n\n```text")?;
    for line in super::sessions::text_lines(&outcome.sessions, DRAWING_WIDTH) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "```\n")
}

fn json(
    outcome: &StepOutcome,
    terminal: &[String],
    shell: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let info = outcome.step.info();
    let record = Record {
        step: info.id.name(),
        index: info.index,
        title: info.title,
        section: info.section,
        call: info.c_call,
        ok: outcome.ok,
        error: outcome.error.as_ref().map(|e| JsonError {
            errno: e.errno,
            name: e.name.as_deref(),
            message: &e.message,
        }),
        detail: &outcome.detail,
        forked: outcome.forked,
        process: &outcome.process,
        changed: &outcome.changed,
        cross_check: outcome.cross_check.as_deref(),
        terminal,
        shell,
        syslog: outcome.syslog.iter().map(|m| m.text.as_str()).collect(),
        sessions: &outcome.sessions,
    };
    serde_json::to_writer(&mut *out, &record)?;
    writeln!(out)
}
