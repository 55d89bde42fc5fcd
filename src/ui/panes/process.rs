//! The live snapshot of the subject, as /proc reports it. Fields the last step changed
//! carry a `*` and the `changed` style, so they read in colour and in monochrome.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::probe::{Disposition, ProcSnapshot};
use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;

/// `label value` with the value marked when `field` changed: one unit of a row.
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
    ]
}

fn yes_no(value: bool) -> String {
    if value { "yes".into() } else { "no".into() }
}

/// What the `*` means now, longest first: the pane's bottom border takes the first that
/// fits.
fn legends(app: &App) -> &'static [&'static str] {
    if app.hangup.is_some() {
        &[
            "* changed by the hang-up (H) · every value read from /proc",
            "* changed by the hang-up (H)",
        ]
    } else if app.changed_outside {
        &[
            "* changed since the last look, not by a step (from outside the lab?)",
            "* changed since the last look, not by a step",
            "* changed, not by a step",
        ]
    } else {
        &[
            "* changed by the last step · every value read from /proc",
            "* changed by the last step",
        ]
    }
}

/// The legend for a pane `width` wide, when one fits on its bottom border.
fn border_legend(app: &App, width: u16) -> Option<&'static str> {
    let room = usize::from(width.saturating_sub(4));
    legends(app)
        .iter()
        .find(|l| l.chars().count() <= room)
        .copied()
}

/// The kernel's view of `p` in rows of at most `width` cells: the last step's result and
/// every field, the whole fd list, wrapped and never cut.
fn snapshot_rows<'a>(app: &App, p: &ProcSnapshot, width: usize) -> Vec<Line<'a>> {
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
    // One row per group of fields where it fits; a field moves to the next row whole.
    let row = |fields: Vec<(&'static str, String, &str)>| -> Vec<Line<'a>> {
        let units = fields
            .into_iter()
            .map(|(label, value, name)| field(app, label, value, name))
            .collect();
        super::flow(units, 3, width)
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
            Span::styled(
                if app.trace.as_ref().is_some_and(|t| t.service.is_some()) {
                    "at "
                } else if app.trace.is_some() {
                    "this rule "
                } else {
                    "last step "
                },
                app.theme.muted,
            ),
            Span::styled(result.clone(), app.theme.text),
        ]));
    }
    let mut rows = super::wrap_lines(&lines, width, 0);
    rows.extend(row(vec![
        ("PID", p.pid.to_string(), "pid"),
        ("PPID", parent, "ppid"),
    ]));
    rows.extend(row(vec![
        ("PGID", p.pgid.to_string(), "pgid"),
        ("SID", p.sid.to_string(), "sid"),
        ("TTY", p.tty.clone().unwrap_or_else(|| "?".into()), "tty"),
        ("TPGID", p.tpgid.to_string(), "tpgid"),
    ]));
    rows.extend(row(vec![
        ("session leader", yes_no(p.session_leader), "session_leader"),
        ("group leader", yes_no(p.group_leader), "group_leader"),
    ]));
    rows.extend(row(vec![
        ("adopted by", adopted, "adopted_by"),
        ("state", state, "state"),
    ]));
    rows.extend(row(vec![
        ("umask", umask, "umask"),
        ("cwd", p.cwd.clone().unwrap_or_else(|| "?".into()), "cwd"),
        ("SIGHUP", sighup.to_string(), "sighup"),
    ]));
    let mut fds = vec![Span::styled("fds ", app.theme.muted)];
    let fd_style = if app.changed.contains(&"fds") {
        app.theme.changed
    } else {
        app.theme.text
    };
    match &p.fds {
        Some(list) => {
            for (i, fd) in list.iter().enumerate() {
                let mut target = fd.target.clone();
                if fd.fd == control_fd {
                    target.push_str(" (control channel, kept on purpose)");
                } else if !pty.is_empty() && fd.target.ends_with(&pty) {
                    target = format!("{} (terminal)", fd.target);
                }
                if i > 0 {
                    fds.push(Span::raw("  "));
                }
                fds.push(Span::styled(format!("{}→{}", fd.fd, target), fd_style));
            }
            if app.changed.contains(&"fds") {
                fds.push(Span::styled(" *", app.theme.changed));
            }
        }
        None => fds.push(Span::styled("unreadable", app.theme.muted)),
    }
    // Word by word, so a long list takes as few rows as it can; every entry shows.
    rows.extend(super::wrap_line(&Line::from(fds), width, 0));
    rows
}

/// The pane's rows inside borders `width` wide; the legend is among them only when no
/// version of it fits on the bottom border.
pub fn rows<'a>(app: &App, width: u16) -> Vec<Line<'a>> {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let mut rows = match (&app.process, &app.subject_ended) {
        // A process that has ended is shown as gone, not as its last (zombie) snapshot.
        (Some(_), Some(ended)) => super::wrap_lines(
            &[
                Line::styled(format!("gone: {ended}"), app.theme.error),
                Line::styled(
                    "the kernel has nothing more to show for it — r starts a new lab",
                    app.theme.muted,
                ),
            ],
            inner,
            0,
        ),
        (Some(p), None) => snapshot_rows(app, p, inner),
        (None, _) => super::wrap_line(
            &Line::styled("waiting for the subject to start…", app.theme.muted),
            inner,
            0,
        ),
    };
    if app.process.is_some() && app.subject_ended.is_none() && border_legend(app, width).is_none() {
        let legend = legends(app)[0];
        rows.extend(super::wrap_line(
            &Line::styled(legend, app.theme.muted),
            inner,
            0,
        ));
    }
    rows
}

/// The rows the pane needs, borders included, to show everything at `width`.
pub fn height(app: &App, width: u16) -> u16 {
    rows(app, width).len() as u16 + 2
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let title = match &app.process {
        Some(p) if app.trace.is_some() => {
            let at = app
                .trace
                .as_ref()
                .and_then(|t| t.shown_seq())
                .map(|seq| format!(" at #{seq}"))
                .unwrap_or_default();
            // Held at a rule, the program is in a tracing stop ('t'): nothing moves while
            // /proc is read. After the trace it runs on, and the title says no more.
            let held = if p.state == 't' { ", while held" } else { "" };
            let long = format!(" Process {} — the kernel's view{at}{held} ", p.pid);
            let middle = format!(" Process {}{at} ", p.pid);
            let short = format!(" Process {} ", p.pid);
            super::fit_title(&[&long, &middle, &short], area.width).to_string()
        }
        Some(p) => {
            let long = format!(" Process {} — the kernel's view ", p.pid);
            let short = format!(" Process {} ", p.pid);
            super::fit_title(&[&long, &short], area.width).to_string()
        }
        None => " Process ".to_string(),
    };
    let mut block = pane_block(app, Pane::Process, title);
    if app.process.is_some()
        && app.subject_ended.is_none()
        && let Some(legend) = border_legend(app, area.width)
    {
        block = block.title_bottom(Line::styled(format!(" {legend} "), app.theme.muted));
    }
    Paragraph::new(rows(app, area.width))
        .block(block)
        .render(area, buf);
}
