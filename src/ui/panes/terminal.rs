//! What the subject printed on its terminal (the pty the lab holds the master of).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let pty = app.lab.as_ref().map(|l| l.pty.as_str()).unwrap_or("pty");
    let title = format!(" Terminal {pty} — what the subject printed ");
    let room = area.height.saturating_sub(2) as usize;
    let skip = app.terminal.len().saturating_sub(room);
    let lines: Vec<Line> = app
        .terminal
        .iter()
        .skip(skip)
        .map(|l| Line::raw(l.clone()))
        .collect();
    Paragraph::new(lines)
        .block(pane_block(app, Pane::Terminal, title))
        .render(area, buf);
}
