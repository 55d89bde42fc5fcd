//! `daemonlab run`: the Steps pane's place holds the observed timeline, one row per event
//! of the traced program as it happened; the row the other panes show is marked.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::trace::rules::Event;
use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;
use crate::ui::traced::{TraceState, TraceView};

/// One row's text, without the marker column.
fn row_text(event: &Event) -> String {
    match event {
        Event::Syscall {
            seq,
            pid,
            rule,
            what,
            ..
        } => format!(
            "#{seq:<3} {pid:<6} {:<11} {what}",
            rule.map_or("—", crate::ui::traced::rule_label)
        ),
        Event::Fork { seq, pid, child } => format!("#{seq:<3} {pid:<6} forked {child}"),
        Event::Exec { seq, pid, path } => format!("#{seq:<3} {pid:<6} runs {path}"),
        Event::Exit { seq, pid, status } => format!("#{seq:<3} {pid:<6} {status}"),
    }
}

pub fn render(app: &App, trace: &TraceView, area: Rect, buf: &mut Buffer) {
    let inner = area.width.saturating_sub(2);
    let shown = trace.shown_row();
    let last = trace.timeline.len().checked_sub(1);
    let lines: Vec<Line> = trace
        .timeline
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let style = match event {
                Event::Syscall { errno: Some(_), .. } => app.theme.error,
                Event::Syscall { rule: Some(_), .. } => app.theme.text,
                _ => app.theme.muted,
            };
            // The newest row carries the trace's state: ▶ held there, … running on.
            let glyph = match (Some(i) == last, trace.state) {
                (true, TraceState::Held) => Span::styled("▶", app.theme.next),
                (true, TraceState::Running | TraceState::Free) => {
                    Span::styled("…", app.theme.muted)
                }
                _ => Span::raw(" "),
            };
            let text = super::fit(&row_text(event), inner.saturating_sub(1));
            let line = Line::from(vec![glyph, Span::styled(text, style)]);
            if Some(i) == shown && trace.picked.is_some() {
                line.style(app.theme.selected)
            } else {
                line
            }
        })
        .collect();
    // A window that keeps the shown row in view, the newest at the bottom when following.
    let room = usize::from(area.height.saturating_sub(2)).max(1);
    let focus = shown.unwrap_or(0);
    let start = if trace.picked.is_none() {
        lines.len().saturating_sub(room)
    } else {
        focus
            .saturating_sub((room - 1) / 2)
            .min(lines.len().saturating_sub(room))
    };
    let end = (start + room).min(lines.len());
    let long = if trace.service.is_some() {
        " Timeline — what the manager saw (↑/↓ pick) "
    } else {
        " Timeline — the program's own calls (↑/↓ pick) "
    };
    let title = super::fit_title(&[long, " Timeline (↑/↓ pick) ", " Timeline "], area.width);
    let mut block = pane_block(app, Pane::Steps, title);
    if start > 0 {
        block =
            block.title(Line::styled(format!(" ↑ {start} more "), app.theme.muted).right_aligned());
    }
    if end < lines.len() {
        block = block.title_bottom(
            Line::styled(format!(" ↓ {} more ", lines.len() - end), app.theme.muted)
                .right_aligned(),
        );
    }
    let body = if lines.is_empty() {
        vec![Line::styled(
            "starting the program as a job of the shell stand-in…",
            app.theme.muted,
        )]
    } else {
        lines[start..end].to_vec()
    };
    Paragraph::new(body).block(block).render(area, buf);
}
