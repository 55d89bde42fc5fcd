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

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.syslog;
    // The same balance `daemonlab syslogd` prints: every message accounted for.
    let tally = &view.tally;
    // All shown is the everyday case: one number says it, and a narrow pane keeps room.
    let mut title = if tally.received == tally.shown {
        format!(" Syslog · {} received", tally.received)
    } else {
        format!(" Syslog · {}", tally.balance())
    };
    if tally.malformed > 0 {
        title.push_str(&format!(" · {} malformed", tally.malformed));
    }
    if let Some(lost) = tally.kernel_dropped.filter(|n| *n > 0) {
        title.push_str(&format!(" · {lost} dropped by the kernel"));
    }
    if view.min_severity != Severity::Debug {
        title.push_str(&format!(" · ≥ {}", view.min_severity.name()));
    }
    if !view.folding {
        title.push_str(" · no folding");
    }
    if view.paused_at.is_some() {
        title.push_str(" · PAUSED");
    }
    if !view.receiver_running {
        title.push_str(" · STOPPED");
    }
    title.push(' ');

    let room = area.height.saturating_sub(2) as usize;
    let visible: Vec<&Message> = view.visible().collect();
    let end = visible.len().saturating_sub(view.scroll);
    let start = end.saturating_sub(room);
    let mut lines: Vec<Line> = Vec::new();
    let client = match &view.client {
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
    if let Some(lab) = &app.lab {
        let path = lab.syslog_socket.display();
        // A stopped receiver has no socket: a logger command would only get ECONNREFUSED.
        lines.push(if view.receiver_running {
            Line::from(vec![
                Span::styled("try: ", app.theme.muted),
                Span::styled(format!("logger -u {path} hello"), app.theme.code),
            ])
        } else {
            Line::styled(
                format!("stopped: no socket at {path} until S starts it again"),
                app.theme.error,
            )
        });
    }
    lines.push(Line::styled(client, app.theme.muted));
    if visible.is_empty() {
        let note = Line::styled(view.note.clone(), app.theme.muted);
        lines.extend(super::wrap_line(
            &note,
            usize::from(area.width.saturating_sub(2)),
            0,
        ));
    }
    // Messages wrap (continuations indented) and the newest stay at the bottom: as many
    // whole messages as fit, then the top of the oldest one shown is cut (z shows more).
    // In a short pane the messages come first: the hints give way, the evidence does not.
    let width = usize::from(area.width.saturating_sub(2));
    // The hints wrap too: a socket path cut at the border is one nobody can type.
    let mut lines: Vec<Line> = lines
        .iter()
        .flat_map(|l| super::wrap_line(l, width, 2))
        .collect();
    let inner = usize::from(area.height.saturating_sub(2));
    if !visible.is_empty() && inner.saturating_sub(lines.len()) < 3 {
        // Too short for both: the hints give way (z, or a taller window, brings them back).
        lines.clear();
    }
    let message_rows = inner.saturating_sub(lines.len());
    let mut rows: Vec<Line> = Vec::new();
    for message in visible[start..end].iter().rev() {
        if rows.len() >= message_rows {
            break;
        }
        let mut these = super::wrap_line(&line(app, message), width, 2);
        these.append(&mut rows);
        rows = these;
    }
    lines.extend(rows.split_off(rows.len().saturating_sub(message_rows)));
    Paragraph::new(lines)
        .block(pane_block(app, Pane::Syslog, title))
        .render(area, buf);
}
