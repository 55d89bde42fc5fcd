//! The `?` popup: every key, straight from the key table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::ui::app::App;
use crate::ui::keymap::{BINDINGS, When};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            let when = if b.when == When::FreeMode {
                " (free mode)"
            } else {
                ""
            };
            Line::from(vec![
                Span::styled(format!(" {:<10}", b.label), app.theme.key),
                Span::raw(format!("{}{when}", b.description)),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " * or a highlight marks what the last step changed.",
        app.theme.muted,
    ));
    lines.push(Line::styled(" Esc or ? closes this help.", app.theme.muted));
    let height = (lines.len() as u16 + 2).min(area.height);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(72.min(area.width))])
        .flex(Flex::Center)
        .areas(popup);
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(app.theme.border_focused)
                .title(Line::styled(" Keys ", app.theme.title)),
        )
        .render(popup, buf);
}
