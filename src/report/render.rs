//! Turning a snapshot into words, shared by the text and Markdown tours.

use crate::probe::{FdEntry, ProcSnapshot};

/// What a descriptor is, for people: the target, plus why it matters in the lab.
pub fn fd_label(fd: &FdEntry, control_fd: i32, pty: &str) -> String {
    let mut label = format!("{} → {}", fd.fd, fd.target);
    if fd.fd == control_fd {
        label.push_str(" (control channel, kept on purpose)");
    } else if fd.target.trim_start_matches("/dev/") == pty {
        label.push_str(" (the terminal)");
    }
    if fd.cloexec {
        label.push_str(" [cloexec]");
    }
    label
}

fn mark(changed: &[&str], field: &str) -> &'static str {
    if changed.contains(&field) { "*" } else { "" }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The snapshot as a few indented lines; fields named in `changed` carry a `*`.
pub fn process_lines(
    p: &ProcSnapshot,
    changed: &[&str],
    control_fd: i32,
    pty: &str,
) -> Vec<String> {
    let m = |field| mark(changed, field);
    let tty = p.tty.as_deref().unwrap_or("?");
    let adopted = match &p.adopted_by {
        Some(a) => format!("{} ({})", a.pid, a.comm),
        None => "—".to_string(),
    };
    let umask = p
        .umask
        .map(|u| format!("{u:04o}"))
        .unwrap_or_else(|| "unknown".into());
    let unknown = || "unknown".to_string();
    let list = |names: &[String]| {
        if names.is_empty() {
            "—".to_string()
        } else {
            names
                .iter()
                .map(|n| match n.as_str() {
                    // Real-time signals glibc keeps for itself (NPTL): not the program's.
                    "SIG32" => "SIG32 (glibc's thread cancellation)".to_string(),
                    "SIG33" => "SIG33 (glibc's set*id broadcast to threads)".to_string(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let fds = match &p.fds {
        Some(fds) => fds
            .iter()
            .map(|fd| fd_label(fd, control_fd, pty))
            .collect::<Vec<_>>()
            .join(", "),
        None => "unreadable".to_string(),
    };
    vec![
        format!(
            "PID {}{}  PPID {}{}  PGID {}{}  SID {}{}  TTY {}{}  TPGID {}{}",
            p.pid,
            m("pid"),
            p.ppid,
            m("ppid"),
            p.pgid,
            m("pgid"),
            p.sid,
            m("sid"),
            tty,
            m("tty"),
            p.tpgid,
            m("tpgid")
        ),
        format!(
            "session leader: {}{}   group leader: {}{}   parent: {} ({})   adopted by: {}{}",
            yes_no(p.session_leader),
            m("session_leader"),
            yes_no(p.group_leader),
            m("group_leader"),
            p.ppid,
            p.parent_comm.as_deref().unwrap_or("?"),
            adopted,
            m("adopted_by")
        ),
        format!(
            "umask {umask}{}   cwd {}{}   root {}{}   state {} ({}){}   comm {}",
            m("umask"),
            p.cwd.clone().unwrap_or_else(unknown),
            m("cwd"),
            p.root.clone().unwrap_or_else(unknown),
            m("root"),
            p.state,
            p.state_name,
            m("state"),
            p.comm
        ),
        format!(
            "SIGHUP {}{}   ignored: {}   caught: {}   blocked: {}",
            serde_json::to_value(p.sighup)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            m("sighup"),
            list(&p.signals.ignored),
            list(&p.signals.caught),
            list(&p.signals.blocked)
        ),
        format!("fds{}: {fds}", m("fds")),
    ]
}
