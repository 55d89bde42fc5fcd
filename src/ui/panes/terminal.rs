//! What the subject printed on its terminal (the pty the lab holds the master of).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let pty = app.lab.as_ref().map(|l| l.pty.as_str()).unwrap_or("pty");
    // The title says as much as the pane's width allows, never a cut word.
    let (long, short) = if app.trace.as_ref().is_some_and(|t| t.service.is_some()) {
        // A service has no terminal: its stdout and stderr go to the manager's log.
        (
            " Log — the service's stdout and stderr (no terminal) ".to_string(),
            " Log ".to_string(),
        )
    } else {
        (
            format!(" Terminal {pty} — what the subject printed "),
            format!(" Terminal {pty} "),
        )
    };
    let title = if long.chars().count() + 2 <= usize::from(area.width) {
        long
    } else {
        short
    };
    // Whole lines, wrapped (continuations indented), newest at the bottom: in a narrow
    // pane a line cut at the border would hide what the subject said.
    let room = area.height.saturating_sub(2) as usize;
    let width = usize::from(area.width.saturating_sub(2));
    let mut rows: Vec<Line> = Vec::new();
    for line in app.terminal.iter().rev() {
        if rows.len() >= room {
            break;
        }
        let mut these = super::wrap_line(&Line::raw(line.clone()), width.max(8), 2);
        these.append(&mut rows);
        rows = these;
    }
    let lines = rows.split_off(rows.len().saturating_sub(room));
    Paragraph::new(lines)
        .block(pane_block(app, Pane::Terminal, title))
        .render(area, buf);
}
