//! The two views of an [`Audit`]: a report for people and one JSON object for scripts.

use super::{Audit, Check, Status};
use crate::probe::ProcSnapshot;

/// Sum the checks up in one line: failures first, since they are what to fix.
pub(crate) fn verdict(snap: &ProcSnapshot, checks: &[Check]) -> String {
    let ids = |status: Status| -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.id)
            .collect()
    };
    let (fail, warn, unknown) = (ids(Status::Fail), ids(Status::Warn), ids(Status::Unknown));
    let unknown_note = if unknown.is_empty() {
        String::new()
    } else {
        format!("; not checked: {}", unknown.join(", "))
    };
    if snap.state == 'Z' {
        return format!(
            "zombie: it has exited; only its parent's wait() will remove it{unknown_note}"
        );
    }
    if !fail.is_empty() {
        return format!(
            "not a daemon: {} rule(s) fail ({}){}{unknown_note}",
            fail.len(),
            fail.join(", "),
            if warn.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s) ({})", warn.len(), warn.join(", "))
            }
        );
    }
    if !warn.is_empty() {
        return format!(
            "daemon-like, with {} warning(s): {}{unknown_note}",
            warn.len(),
            warn.join(", ")
        );
    }
    format!("well-formed daemon: every rule checked passes{unknown_note}")
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Unknown => "????",
    }
}

/// A readable report: one header line, one line per check, the verdict last.
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

/// One JSON object: `pid`, `process` (the tour's snapshot object), `checks`
/// (`[{id, status, detail}]`) and `verdict`.
///
/// Exists for scripts and CI: the keys are stable.
pub fn json_report(audit: &Audit) -> String {
    serde_json::to_string(audit).expect("an audit is plain data and always serializes")
}
