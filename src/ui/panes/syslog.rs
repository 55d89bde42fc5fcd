//! What the lab's syslogd received: from the subject and from any other client
//! (`logger -u PATH`, UDP, the kernel), decoded, coloured by severity, with its counters.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::syslog::Severity;
use crate::syslog::receiver::{Message, Source};
use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;

/// Severity as a style: the worse, the louder; monochrome themes get bold and dim.
fn severity_style(app: &App, severity: Option<Severity>) -> Style {
    let mono = app.theme.text.fg.is_none() && app.theme.changed.bg.is_none();
    match severity {
        None => app.theme.error,
        Some(s) if s <= Severity::Err => app.theme.error,
        Some(Severity::Warning) if mono => Style::new().add_modifier(Modifier::BOLD),
        Some(Severity::Warning) => Style::new().fg(Color::Yellow),
        Some(Severity::Debug) => app.theme.muted,
        Some(_) => app.theme.text,
    }
}

/// The time to show: the sender's own timestamp when it sent one (its clock part), else
/// when the receiver got it, in local time.
fn clock(message: &Message) -> String {
    if let Some(stamp) = &message.parsed.timestamp
        && let Some(time) = stamp
            .split([' ', 'T'])
            .find(|part| part.len() >= 8 && part.as_bytes()[2] == b':')
    {
        return time[..8].to_string();
    }
    crate::syslog::local_clock(message.received_at)
}

/// One message as a line: time, facility.severity, ident[pid], message.
pub fn line<'a>(app: &App, message: &Message) -> Line<'a> {
    let p = &message.parsed;
    let style = severity_style(app, message.severity);
    let mut spans = vec![Span::styled(
        format!("{} ", clock(message)),
        app.theme.muted,
    )];
    match &message.source {
        Source::Unix => {}
        Source::Udp(addr) => spans.push(Span::styled(format!("udp {addr} "), app.theme.muted)),
        Source::Kernel => spans.push(Span::styled("kernel ", app.theme.muted)),
    }
    if message.repeats > 0 {
        spans.push(Span::styled(
            format!("last message repeated {} times", message.repeats),
            app.theme.muted,
        ));
        return Line::from(spans);
    }
    // The parser's verdict, as the sink's: PRI 96–127 (facilities 12–15) is valid
    // syslog with a facility that has no name, shown by number.
    if p.malformed {
        spans.push(Span::styled("malformed ", app.theme.error));
        spans.push(Span::raw(message.text.escape_debug().to_string()));
        return Line::from(spans);
    }
    let priority = crate::syslog::sink::priority_name(p.pri, p.facility, p.severity);
    spans.push(Span::styled(format!("{priority} "), style));
    let who = match (&p.ident, p.pid) {
        (Some(ident), Some(pid)) => format!("{ident}[{pid}]: "),
        (Some(ident), None) => format!("{ident}: "),
        (None, _) => String::new(),
    };
    spans.push(Span::styled(who, app.theme.title));
    spans.push(Span::styled(p.message.clone(), style));
    if let Some(sender) = message.sender_pid
        && p.pid.is_some_and(|pid| pid != sender)
    {
        spans.push(Span::styled(
            format!(" (kernel says pid {sender})"),
            app.theme.error,
        ));
    }
    Line::from(spans)
}

/// One message in one short line for a narrow pane: time, level, text (z shows the
/// facility and the sender).
fn compact_line<'a>(app: &App, message: &Message) -> Line<'a> {
    let p = &message.parsed;
    let mut spans = vec![Span::styled(
        format!("{} ", clock(message)),
        app.theme.muted,
    )];
    if message.repeats > 0 {
        spans.push(Span::styled(
            format!("last message repeated {} times", message.repeats),
            app.theme.muted,
        ));
    } else if p.malformed {
        spans.push(Span::styled("malformed ", app.theme.error));
        spans.push(Span::raw(message.text.escape_debug().to_string()));
    } else {
        let style = severity_style(app, message.severity);
        let level = message.severity.map_or("?", |s| s.name());
        spans.push(Span::styled(format!("{level} "), style));
        spans.push(Span::styled(p.message.clone(), style));
    }
    Line::from(spans)
}

/// How the messages are drawn, from the most to the least complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Every field, wrapped.
    Whole,
    /// Time, level and text, wrapped.
    Short,
    /// Time, level and text on one row each, cut with "…" when longer.
    OneRow,
}

/// The pane's title for a border `width` wide: the counters, and as many of the notes
/// as fit whole.
fn title(app: &App, width: u16, cut: bool) -> String {
    let view = &app.syslog;
    // The same balance `daemonlab syslogd` prints: every message accounted for.
    let tally = &view.tally;
    let received = format!(" Syslog · {} received", tally.received);
    // All shown is the everyday case: one number says it, and a narrow pane keeps room.
    let base = if tally.received == tally.shown {
        received.clone()
    } else {
        format!(" Syslog · {}", tally.balance())
    };
    let mut flags = String::new();
    if view.paused_at.is_some() {
        flags.push_str(" · PAUSED");
    }
    if !view.receiver_running {
        flags.push_str(" · STOPPED");
    }
    let mut notes = String::new();
    if tally.malformed > 0 {
        notes.push_str(&format!(" · {} malformed", tally.malformed));
    }
    if let Some(lost) = tally.kernel_dropped.filter(|n| *n > 0) {
        notes.push_str(&format!(" · {lost} dropped by the kernel"));
    }
    if view.min_severity != Severity::Debug {
        notes.push_str(&format!(" · ≥ {}", view.min_severity.name()));
    }
    if !view.folding {
        notes.push_str(" · no folding");
    }
    // z zooms the focused pane: p brings the focus here first.
    let zoom = match (cut, app.focus == Pane::Syslog) {
        (false, _) => "",
        (true, true) => " · z: whole lines",
        (true, false) => " · p, z: whole lines",
    };
    let candidates = [
        format!("{base}{flags}{notes}{zoom} "),
        format!("{base}{flags}{notes} "),
        format!("{base}{flags} "),
        format!("{received}{flags} "),
        format!("{received} "),
        " Syslog ".to_string(),
    ];
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    super::fit_title(&candidates, width).to_string()
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.syslog;
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let inner = usize::from(area.height.saturating_sub(2));
    let visible: Vec<&Message> = view.visible().collect();
    let end = visible.len().saturating_sub(view.scroll);
    let shown = &visible[..end];
    let client = match &view.client {
        _ if app.trace.is_some() => "the traced program's own syslog(3) calls".to_string(),
        Some(c) => format!(
            "openlog {} · mask {} · L→{}",
            c.options,
            crate::lab::subject::mask_name(c.mask),
            view.test_level.name()
        ),
        None => format!(
            "L log ({}) · O options · M mask · S stop",
            view.test_level.name()
        ),
    };
    // The hints, each wrapped whole (a socket path cut at the border is one nobody can
    // type), in the order they are dropped last to first.
    let mut hints: Vec<Vec<Line>> = Vec::new();
    if let Some(lab) = &app.lab {
        let path = lab.syslog_socket.display();
        // A stopped receiver has no socket: a logger command would only get ECONNREFUSED.
        hints.push(super::wrap_line(
            &if view.receiver_running {
                Line::from(vec![
                    Span::styled("try: ", app.theme.muted),
                    Span::styled(format!("logger -u {path} hello"), app.theme.code),
                ])
            } else {
                Line::styled(
                    format!("stopped: no socket at {path} until S starts it again"),
                    app.theme.error,
                )
            },
            width,
            2,
        ));
    }
    hints.push(super::wrap_line(
        &Line::styled(client, app.theme.muted),
        width,
        2,
    ));
    if shown.is_empty() {
        hints.push(super::wrap_line(
            &Line::styled(view.note.clone(), app.theme.muted),
            width,
            0,
        ));
    }
    // As many hints as fit whole, in order.
    let mut hint_rows: Vec<Line> = Vec::new();
    for hint in hints {
        if hint_rows.len() + hint.len() > inner {
            break;
        }
        hint_rows.extend(hint);
    }

    // The newest messages at the bottom. The most complete form that still shows the
    // last three (or all, when fewer) whole; in a short pane the hints give way first,
    // the evidence last.
    let want = shown.len().min(3);
    let draw = |form: Form, message: &Message| -> Vec<Line> {
        match form {
            Form::Whole => super::wrap_line(&line(app, message), width, 2),
            Form::Short => super::wrap_line(&compact_line(app, message), width, 2),
            Form::OneRow => vec![super::fit_line(&compact_line(app, message), width)],
        }
    };
    let whole_fit = |form: Form, room: usize| -> usize {
        let mut used = 0;
        let mut count = 0;
        for message in shown.iter().rev() {
            used += draw(form, message).len();
            if used > room {
                break;
            }
            count += 1;
        }
        count
    };
    let (form, keep_hints) = [
        (Form::Whole, true),
        (Form::Whole, false),
        (Form::Short, false),
    ]
    .into_iter()
    .find(|(form, hints)| {
        let room = inner - if *hints { hint_rows.len() } else { 0 };
        // With the hints, at least three rows are left for messages.
        (!hints || room >= 3 || shown.is_empty()) && whole_fit(*form, room) >= want
    })
    .unwrap_or((Form::OneRow, false));
    let mut lines = if keep_hints { hint_rows } else { Vec::new() };
    let message_rows = inner.saturating_sub(lines.len());
    // One row each for as many as fit; then, newest first, a message is wrapped whole
    // while the rows last.
    let mut forms: Vec<Form> = Vec::new();
    if form == Form::OneRow {
        let count = shown.len().min(message_rows);
        forms = vec![Form::OneRow; count];
        let mut used = count;
        for (i, message) in shown.iter().rev().take(count).enumerate() {
            let more = draw(Form::Short, message).len() - 1;
            if used + more > message_rows {
                break;
            }
            used += more;
            forms[i] = Form::Short;
        }
    }
    let mut rows: Vec<Line> = Vec::new();
    let mut cut = false;
    for (i, message) in shown.iter().rev().enumerate() {
        if rows.len() >= message_rows {
            break;
        }
        let form = forms.get(i).copied().unwrap_or(form);
        let mut these = draw(form, message);
        cut |= form == Form::OneRow && these[0].width() < compact_line(app, message).width();
        these.append(&mut rows);
        rows = these;
    }
    // The top of the oldest one shown may be cut: z shows more.
    lines.extend(rows.split_off(rows.len().saturating_sub(message_rows)));
    Paragraph::new(lines)
        .block(pane_block(app, Pane::Syslog, title(app, area.width, cut)))
        .render(area, buf);
}
