//! `daemonlab trace`: the trace as it happens (text like the tour, or JSON lines), then
//! the verdict.

use std::io::Write;

use crate::cli::TraceFormat;
use crate::trace::rules::{Event, Tracker, Verdict};
use crate::trace::{self, TraceError, TraceOptions, Traced};

/// Why a trace could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("cannot write the trace: {0}")]
    Output(#[from] std::io::Error),
}

/// Trace `options.program`, writing each event as it happens; returns the exit code (0
/// daemonized with nothing failing, 3 otherwise).
pub fn run(
    options: &TraceOptions,
    format: TraceFormat,
    keep: bool,
    out: &mut dyn Write,
) -> Result<u8, RunError> {
    let traced = Traced::start(options)?;
    let mut tracker = Tracker::new(traced.job, traced.session_pid);
    if format == TraceFormat::Text {
        writeln!(
            out,
            "daemonlab trace: {} started as pid {}, a job of the shell stand-in (pid {}) on {}",
            traced.path.display(),
            traced.job,
            traced.session_pid,
            traced.pty_name
        )?;
        match &traced.note {
            Some(note) => writeln!(out, "  note: {note}")?,
            None => writeln!(
                out,
                "  only the calls the daemon rules are about stop it (a seccomp filter); the rest run at full speed"
            )?,
        }
        writeln!(out)?;
    }
    let pty = traced.pty_name.clone();
    let mut failed_write = None;
    let ending = trace::follow(
        &traced,
        options,
        |message, tracker| {
            if let Some(message) = message {
                tracker.handle(message);
            }
            for event in tracker.take_events() {
                if failed_write.is_none()
                    && let Err(e) = write_event(&event, format, &pty, out)
                {
                    failed_write = Some(e);
                }
            }
        },
        &mut tracker,
    );
    if let Some(e) = failed_write {
        return Err(e.into());
    }
    let verdict = tracker.finish();
    for event in tracker.take_events() {
        write_event(&event, format, &pty, out)?;
    }
    let said = traced.terminal().lines_since(0);
    match format {
        TraceFormat::Json => {
            serde_json::to_writer(&mut *out, &verdict).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        TraceFormat::Text => write_verdict(
            &verdict,
            &ending.words(options.settle, options.timeout),
            &said,
            out,
        )?,
    }
    if keep && let Some(main) = verdict.main_pid {
        traced.keep();
        if format == TraceFormat::Text {
            writeln!(
                out,
                "kept: pid {} runs on; the tracer (pid {}) stays with it quietly and exits when it does",
                main, traced.session_pid
            )?;
        }
        // Give the tracer the word before our going closes its channels.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::mem::forget(traced);
    } else {
        traced.shutdown();
    }
    out.flush()?;
    Ok(verdict.exit_code())
}

fn write_event(
    event: &Event,
    format: TraceFormat,
    pty: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if format == TraceFormat::Json {
        serde_json::to_writer(&mut *out, event).map_err(std::io::Error::other)?;
        return writeln!(out);
    }
    match event {
        Event::Syscall {
            seq,
            t_ms,
            pid,
            rule,
            what,
            process,
            changed,
            sessions,
            ..
        } => {
            let draw = matches!(rule, Some("start" | "fork" | "setsid" | "second_fork"));
            let rule = rule.unwrap_or("—");
            writeln!(
                out,
                "#{seq:<3} {t_ms:>8.1} ms  pid {pid:<7} {rule:<15} {what}"
            )?;
            if let Some(p) = process {
                for line in super::process_lines(p, changed, -1, pty) {
                    writeln!(out, "      {line}")?;
                }
                if !changed.is_empty() {
                    writeln!(out, "      changed: {}", changed.join(", "))?;
                }
            }
            // Where the process stands among sessions and groups, after the calls that
            // move it (the chapter's figures).
            if draw {
                for line in super::sessions::text_lines(sessions, 90) {
                    writeln!(out, "      {line}")?;
                }
            }
        }
        Event::Fork { seq, pid, child } => writeln!(
            out,
            "#{seq:<3}              pid {pid:<7} forked pid {child}"
        )?,
        // The execve() event that follows says it, with the kernel's view.
        Event::Exec { .. } => {}
        Event::Exit { seq, pid, status } => {
            writeln!(out, "#{seq:<3}              pid {pid:<7} {status}")?
        }
    }
    Ok(())
}

fn write_verdict(
    verdict: &Verdict,
    ending: &str,
    terminal: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "The trace ended: {ending}.")?;
    if !terminal.is_empty() {
        writeln!(out, "Its terminal showed:")?;
        for line in terminal.iter().take(20) {
            writeln!(out, "  | {line}")?;
        }
    }
    writeln!(out, "Verdict: {}", verdict.summary)?;
    if let Some(audit) = &verdict.audit {
        writeln!(out, "inspect {}: {}", audit.pid, audit.verdict)?;
        for check in &audit.checks {
            writeln!(
                out,
                "  {:<4} {:<14} {}",
                status_word(check.status),
                check.id,
                check.detail
            )?;
        }
    }
    if verdict.findings.is_empty() {
        writeln!(out, "Seen only in the trace: no ordering mistake.")?;
    } else {
        writeln!(out, "Seen only in the trace:")?;
        for f in &verdict.findings {
            let at = f.seq.map(|s| format!(" (#{s})")).unwrap_or_default();
            writeln!(
                out,
                "  {:<4} {}{at}: {}",
                status_word(f.status),
                f.id,
                f.detail
            )?;
        }
    }
    Ok(())
}

fn status_word(status: crate::audit::Status) -> &'static str {
    match status {
        crate::audit::Status::Pass => "PASS",
        crate::audit::Status::Warn => "WARN",
        crate::audit::Status::Fail => "FAIL",
        crate::audit::Status::Unknown => "????",
    }
}
