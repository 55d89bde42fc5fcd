//! The live snapshot of the subject, as /proc reports it. Fields the last step changed
//! carry a `*` and the `changed` style, so they read in colour and in monochrome.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::probe::{Disposition, ProcSnapshot};
use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;

/// `label value` with the value marked when `field` changed.
fn field<'a>(app: &App, label: &'a str, value: String, field: &str) -> Vec<Span<'a>> {
    let changed = app.changed.contains(&field);
    let value = if changed { format!("{value}*") } else { value };
    let style = if changed {
        app.theme.changed
    } else {
        app.theme.text
    };
    vec![
        Span::styled(format!("{label} "), app.theme.muted),
        Span::styled(value, style),
        Span::raw("   "),
    ]
}

fn yes_no(value: bool) -> String {
    if value { "yes".into() } else { "no".into() }
}

/// The lines of the pane, for a snapshot.
/// The pane's lines; `width` is the room inside the borders (the last step's result is
/// cut to two rows, so the kernel's view below it always shows).
pub fn lines<'a>(app: &App, p: &ProcSnapshot, width: u16) -> Vec<Line<'a>> {
    let control_fd = app.lab.as_ref().map(|l| l.control_fd).unwrap_or(-1);
    let pty = app.lab.as_ref().map(|l| l.pty.clone()).unwrap_or_default();
    let parent = format!("{} ({})", p.ppid, p.parent_comm.as_deref().unwrap_or("?"));
    let adopted = p
        .adopted_by
        .as_ref()
        .map(|a| format!("{} ({})", a.pid, a.comm))
        .unwrap_or_else(|| "—".into());
    let sighup = match p.sighup {
        Disposition::Default => "default",
        Disposition::Ignored => "ignored",
        Disposition::Caught => "caught",
    };
    let state = format!("{} {}", p.state, p.state_name);
    let umask = p
        .umask
        .map(|u| format!("{u:04o}"))
        .unwrap_or_else(|| "?".into());
    let row = |fields: Vec<(&'static str, String, &str)>| -> Line<'a> {
        Line::from(
            fields
                .into_iter()
                .flat_map(|(label, value, name)| field(app, label, value, name))
                .collect::<Vec<_>>(),
        )
    };
    let ids = row(vec![
        ("PID", p.pid.to_string(), "pid"),
        ("PPID", parent, "ppid"),
    ]);
    let job = row(vec![
        ("PGID", p.pgid.to_string(), "pgid"),
        ("SID", p.sid.to_string(), "sid"),
        ("TTY", p.tty.clone().unwrap_or_else(|| "?".into()), "tty"),
        ("TPGID", p.tpgid.to_string(), "tpgid"),
    ]);
    let leaders = row(vec![
        ("session leader", yes_no(p.session_leader), "session_leader"),
        ("group leader", yes_no(p.group_leader), "group_leader"),
    ]);
    let adoption = row(vec![
        ("adopted by", adopted, "adopted_by"),
        ("state", state, "state"),
    ]);
    let env = row(vec![
        ("umask", umask, "umask"),
        ("cwd", p.cwd.clone().unwrap_or_else(|| "?".into()), "cwd"),
        ("SIGHUP", sighup.to_string(), "sighup"),
    ]);
    let mut fds = vec![Span::styled("fds ", app.theme.muted)];
    let fd_style = if app.changed.contains(&"fds") {
        app.theme.changed
    } else {
        app.theme.text
    };
    match &p.fds {
        Some(list) => {
            for fd in list {
                let mut target = fd.target.clone();
                if fd.fd == control_fd {
                    target.push_str(" (control channel, kept on purpose)");
                } else if !pty.is_empty() && fd.target.ends_with(&pty) {
                    target = format!("{} (terminal)", fd.target);
                }
                fds.push(Span::styled(format!("{}→{}", fd.fd, target), fd_style));
                fds.push(Span::raw("  "));
            }
            if app.changed.contains(&"fds") {
                fds.push(Span::styled("*", app.theme.changed));
            }
        }
        None => fds.push(Span::styled("unreadable", app.theme.muted)),
    }
    let legend = if app.hangup.is_some() {
        "* changed by the hang-up (H) · every value read from /proc"
    } else if app.changed_outside {
        "* changed since the last look, not by a step (from outside the lab?)"
    } else {
        "* changed by the last step · every value read from /proc"
    };
    let mut lines = Vec::new();
    if let Some(outcome) = &app.hangup {
        // The banner replaces the last step's result: the hang-up is what just happened.
        lines.push(Line::from(vec![
            Span::styled("hang-up ", app.theme.muted),
            Span::styled(outcome.headline(), app.theme.changed),
        ]));
        if let Some(stdio) = &outcome.stdio {
            lines.push(Line::from(vec![
                Span::styled("on the dead terminal ", app.theme.muted),
                Span::styled(stdio.clone(), app.theme.text),
            ]));
        }
    } else if let Some(result) = &app.last_result {
        lines.push(Line::from(vec![
            Span::styled("last step ", app.theme.muted),
            // Two rows at most, less some slack for word wrapping.
            Span::styled(
                super::fit(result, (2 * width).saturating_sub(10 + 8)),
                app.theme.text,
            ),
        ]));
    }
    lines.extend([
        ids,
        job,
        leaders,
        adoption,
        env,
        Line::from(fds),
        Line::styled(legend, app.theme.muted),
    ]);
    lines
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let title = match &app.process {
        Some(p) => format!(" Process {} — the kernel's view ", p.pid),
        None => " Process ".to_string(),
    };
    let block = pane_block(app, Pane::Process, title);
    let body = match (&app.process, &app.subject_ended) {
        // A process that has ended is shown as gone, not as its last (zombie) snapshot.
        (Some(_), Some(ended)) => vec![
            Line::styled(format!("gone: {ended}"), app.theme.error),
            Line::styled(
                "the kernel has nothing more to show for it — r starts a new lab",
                app.theme.muted,
            ),
        ],
        (Some(p), None) => lines(app, p, area.width.saturating_sub(2)),
        (None, _) => vec![Line::styled(
            "waiting for the subject to start…",
            app.theme.muted,
        )],
    };
    Paragraph::new(body)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(area, buf);
}
