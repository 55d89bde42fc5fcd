//! The `?` popup: every key, straight from the key table, grouped by where it applies,
//! descriptions wrapped, scrollable so every entry is reachable at 80×24.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::ui::app::App;
use crate::ui::keymap::{BINDINGS, When};
use crate::ui::panes::wrap_line;

/// The groups, in the order a newcomer meets them.
const GROUPS: [(&str, &[When]); 7] = [
    ("Everywhere", &[When::Always, When::Tabs]),
    ("Lab tab", &[When::Lab, When::FreeMode, When::Pane]),
    (
        "daemonlab run -- PROGRAM (the Lab tab)",
        &[When::Traced, When::Timeline, When::Service],
    ),
    ("Experiments menu (x on the Lab tab)", &[When::Menu]),
    ("Locks tab", &[When::Locks]),
    ("Processes tab", &[When::Processes]),
    ("Inspect tab", &[When::Inspect]),
];

/// Width of the key column.
const KEYS: usize = 11;

/// Every row of the help text for a popup `width` cells wide (inside its border).
pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (title, whens) in GROUPS {
        // `daemonlab run` has one tab and no lab subject: only its keys, and the lab's
        // own only without it.
        let traced = app.trace.is_some();
        let service = app.trace.as_ref().is_some_and(|t| t.service.is_some());
        let rows: Vec<_> = BINDINGS
            .iter()
            .filter(|b| whens.contains(&b.when))
            .filter(|b| match b.when {
                When::Always | When::Pane => true,
                When::Timeline => traced,
                When::Traced => traced && !service,
                When::Service => service,
                _ => !traced,
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(format!(" {title}"), app.theme.title));
        for b in rows {
            let scope = if b.when == When::FreeMode {
                " (free mode)"
            } else {
                ""
            };
            let line = Line::from(vec![
                Span::styled(format!(" {:<KEYS$}", b.label), app.theme.key),
                Span::raw(format!("{}{scope}", b.description)),
            ]);
            lines.extend(wrap_line(&line, width, KEYS + 1));
        }
    }
    lines.push(Line::raw(""));
    for note in [
        " * or a highlight marks what the last step changed.",
        " ↑/↓ j/k PgUp/PgDn scroll this help; Esc or ? closes it.",
    ] {
        lines.extend(wrap_line(&Line::styled(note, app.theme.muted), width, 1));
    }
    lines
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let width = 76.min(area.width);
    let inner = usize::from(width.saturating_sub(2));
    let lines = lines(app, inner);
    let height = (lines.len() as u16 + 2).min(area.height);
    let visible = usize::from(height.saturating_sub(2));
    let last_start = lines.len().saturating_sub(visible);
    let first = usize::from(app.help_scroll).min(last_start);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(popup);
    let title = if last_start == 0 {
        " Keys ".to_string()
    } else {
        format!(
            " Keys · rows {}–{} of {} · ↓ PgDn for more ",
            first + 1,
            (first + visible).min(lines.len()),
            lines.len()
        )
    };
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .scroll((first as u16, 0))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(app.theme.border_focused)
                .title(Line::styled(title, app.theme.title)),
        )
        .render(popup, buf);
}
