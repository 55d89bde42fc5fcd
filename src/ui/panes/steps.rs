//! The step list: every rule with its state, the next one marked, the free-mode cursor.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::lab::STEPS;
use crate::ui::app::{App, Mode, Pane, StepStatus};
use crate::ui::render::pane_block;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let title = match app.mode {
        Mode::Guided => " Steps (APUE 13.3) ",
        Mode::Free => " Steps — FREE MODE ",
    };
    let next = app.next_step();
    let narrow = area.width < 40;
    let lines: Vec<Line> = STEPS
        .iter()
        .map(|info| {
            let status = &app.steps[info.index as usize];
            let is_next = app.mode == Mode::Guided && Some(info.id) == next;
            let (glyph, glyph_style) = match status {
                StepStatus::Done => ("✓", app.theme.ok),
                StepStatus::Failed { .. } => ("✗", app.theme.error),
                StepStatus::Pending if is_next => ("▶", app.theme.next),
                StepStatus::Pending => ("·", app.theme.muted),
            };
            let text_style = if is_next {
                app.theme.next
            } else {
                app.theme.text
            };
            let mut spans = vec![
                Span::styled(format!(" {glyph} "), glyph_style),
                Span::styled(
                    format!(
                        "{:>2} {}",
                        info.index,
                        if narrow { info.short } else { info.title }
                    ),
                    text_style,
                ),
            ];
            if let StepStatus::Failed { errno, .. } = status {
                spans.push(Span::styled(
                    format!(" {}", errno.as_deref().unwrap_or("failed")),
                    app.theme.error,
                ));
            }
            if is_next {
                spans.push(Span::styled(" ◀ next", app.theme.next));
            }
            let line = Line::from(spans);
            if app.mode == Mode::Free && app.selected == info.id {
                line.style(app.theme.selected)
            } else {
                line
            }
        })
        .collect();
    Paragraph::new(lines)
        .block(pane_block(app, Pane::Steps, title))
        .render(area, buf);
}
