//! The views of an [`Audit`]: a report for people, a Markdown table for handouts, and one
//! JSON object for scripts — and the JSON object for an audit that could not be made.

use super::{Audit, Check, InspectError, Role, Status};
use crate::probe::ProcSnapshot;

/// Sum the checks up in one line: "incomplete" first when some could not be read, then
/// failures, since they are what to fix.
pub(crate) fn verdict(snap: &ProcSnapshot, role: Role, main_pid: i32, checks: &[Check]) -> String {
    let ids = |status: Status| -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.id)
            .collect()
    };
    let (fail, warn, unknown) = (ids(Status::Fail), ids(Status::Warn), ids(Status::Unknown));
    let head = if unknown.is_empty() {
        String::new()
    } else {
        format!("incomplete (unknown: {}); ", unknown.join(", "))
    };
    let who = match role {
        Role::Worker => format!("worker of pid {main_pid}"),
        Role::Thread => format!("a thread of pid {main_pid}"),
        other => other.name().replace('_', " "),
    };
    if snap.state == 'Z' {
        return format!("{head}zombie: it has exited; only its parent's wait() will remove it");
    }
    if !fail.is_empty() {
        return format!(
            "{head}{who}, not a well-formed daemon: {} rule(s) fail ({}){}",
            fail.len(),
            fail.join(", "),
            if warn.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s) ({})", warn.len(), warn.join(", "))
            }
        );
    }
    if role == Role::Job {
        // Still part of the session it was launched in: not detached, whatever else holds.
        let tail = if warn.is_empty() {
            String::new()
        } else {
            format!(", with {} warning(s): {}", warn.len(), warn.join(", "))
        };
        return format!("{head}job: not detached from the session it was launched in{tail}");
    }
    if !warn.is_empty() {
        return format!(
            "{head}{who}, daemon-like, with {} warning(s): {}",
            warn.len(),
            warn.join(", ")
        );
    }
    format!("{head}{who}, well-formed: every rule checked passes")
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Unknown => "????",
    }
}

/// "role: worker of pid 100", with the main process named when it is another.
fn role_line(audit: &Audit) -> String {
    let main = if audit.main_pid != audit.pid || audit.role == Role::Thread {
        let comm = crate::locks::comm(audit.main_pid).unwrap_or_else(|| "?".into());
        format!(" (main process: {comm}, pid {})", audit.main_pid)
    } else {
        String::new()
    };
    format!("role: {}{main}", audit.role.name())
}

fn pidfile_line(audit: &Audit) -> String {
    match &audit.pidfile {
        None => "pidfile: none found".into(),
        Some(p) => format!(
            "pidfile: {} holds {:?}, {}",
            p.path,
            p.content,
            p.locked_by.map_or_else(
                || "not locked".to_owned(),
                |pid| format!("locked by pid {pid}")
            )
        ),
    }
}

/// A readable report: the ids, the role, the pid file, one line per check, the verdict.
///
/// Exists for `daemonlab inspect PID` in a terminal; each line stands alone so it can be
/// grepped.
pub fn text_report(audit: &Audit) -> String {
    let mut out = String::new();
    match &audit.process {
        Some(p) => out.push_str(&format!(
            "process {} ({}): ppid {}, pgid {}, sid {}, tty {}\n",
            p.pid,
            p.comm,
            p.ppid,
            p.pgid,
            p.sid,
            p.tty.as_deref().unwrap_or("none")
        )),
        None => out.push_str(&format!("process {}\n", audit.pid)),
    }
    out.push_str(&format!("{}\n{}\n", role_line(audit), pidfile_line(audit)));
    let width = audit.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for check in &audit.checks {
        out.push_str(&format!(
            "  {}  {:<width$}  {}\n",
            label(check.status),
            check.id,
            check.detail
        ));
    }
    out.push_str(&format!("verdict: {}\n", audit.verdict));
    out
}

/// A table cell: pipes escaped, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown section: a heading, the role and pid file, a table of checks, the verdict.
///
/// Exists for `daemonlab inspect PID --format markdown`: a handout or an issue comment.
pub fn markdown_report(audit: &Audit) -> String {
    let mut out = String::new();
    let comm = audit.process.as_ref().map_or("?", |p| p.comm.as_str());
    out.push_str(&format!("## Process {} ({})\n\n", audit.pid, cell(comm)));
    if let Some(p) = &audit.process {
        out.push_str(&format!(
            "ppid {}, pgid {}, sid {}, tty {}\n\n",
            p.ppid,
            p.pgid,
            p.sid,
            p.tty.as_deref().unwrap_or("none")
        ));
    }
    out.push_str(&format!(
        "- {}\n- {}\n\n",
        cell(&role_line(audit)),
        cell(&pidfile_line(audit))
    ));
    out.push_str("| check | status | detail |\n|---|---|---|\n");
    for c in &audit.checks {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.id,
            label(c.status),
            cell(&c.detail)
        ));
    }
    out.push_str(&format!("\n**Verdict:** {}\n", cell(&audit.verdict)));
    out
}

/// One JSON object: `pid`, `role`, `main_pid`, `pidfile` (null or `{path, content,
/// locked_by}`), `process` (the tour's snapshot object), `checks` (`[{id, status,
/// detail}]`) and `verdict`.
///
/// Exists for scripts and CI: the keys are stable.
pub fn json_report(audit: &Audit) -> String {
    serde_json::to_string(audit).expect("an audit is plain data and always serializes")
}

/// The JSON object printed on stdout when `pid` could not be inspected: `{"pid",
/// "error", "role"}` (`pid` null when the text was not a PID; `role` null unless the
/// error says one, as for a kernel thread).
///
/// Exists so a script reading stdout gets an answer it can parse in every case.
pub fn error_json(pid: Option<i64>, error: &InspectError) -> String {
    serde_json::json!({
        "pid": pid,
        "error": error.to_string(),
        "role": error.role(),
    })
    .to_string()
}
