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
    let inner = usize::from(area.width.saturating_sub(2));
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
            let errno = match status {
                StepStatus::Failed { errno, .. } => {
                    Some(format!(" {}", errno.as_deref().unwrap_or("failed")))
                }
                _ => None,
            };
            // The long title where it fits with its marks, else the short label, so "◀ next"
            // and an errno are never cut off.
            let marks = errno.as_ref().map_or(0, |e| e.chars().count())
                + if is_next {
                    " ◀ next".chars().count()
                } else {
                    0
                };
            let long_fits = 3 + 3 + info.title.chars().count() + marks <= inner;
            let label = if narrow || !long_fits {
                info.short
            } else {
                info.title
            };
            let mut spans = vec![
                Span::styled(format!(" {glyph} "), glyph_style),
                Span::styled(format!("{:>2} {label}", info.index), text_style),
            ];
            if let Some(errno) = errno {
                spans.push(Span::styled(errno, app.theme.error));
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
    // Too short for every step: a window round the one that matters (the cursor in free
    // mode, else the next step, else the last), with the hidden ones counted on the
    // borders.
    let room = usize::from(area.height.saturating_sub(2)).max(1);
    let focus = match app.mode {
        Mode::Free => app.selected as usize,
        Mode::Guided => next.map_or(STEPS.len() - 1, |s| s as usize),
    };
    let start = focus
        .saturating_sub((room - 1) / 2)
        .min(STEPS.len().saturating_sub(room));
    let end = (start + room).min(STEPS.len());
    let mut block = pane_block(app, Pane::Steps, title);
    if start > 0 {
        block =
            block.title(Line::styled(format!(" ↑ {start} more "), app.theme.muted).right_aligned());
    }
    if end < STEPS.len() {
        block = block.title_bottom(
            Line::styled(format!(" ↓ {} more ", STEPS.len() - end), app.theme.muted)
                .right_aligned(),
        );
    }
    Paragraph::new(lines[start..end].to_vec())
        .block(block)
        .render(area, buf);
}
