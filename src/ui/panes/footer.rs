//! The status line (what just happened) and the key hints, drawn from the key table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::ui::app::{App, Mode};
use crate::ui::keymap;

/// The most rows the status line may take from the panes above it.
pub const MAX_STATUS_ROWS: usize = 4;

/// The status rows for a screen `width` wide: a notice is wrapped, never cut (up to
/// [`MAX_STATUS_ROWS`]; a longer one is rare and ends in an ellipsis).
pub fn status_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let notice = match &app.notice {
        Some(n) if n.error => Some(Line::from(vec![
            Span::styled(" ✗ ", app.theme.error),
            Span::styled(n.text.clone(), app.theme.error),
        ])),
        Some(n) => Some(Line::from(vec![
            Span::styled(" • ", app.theme.muted),
            Span::raw(n.text.clone()),
        ])),
        None => None,
    };
    if let Some(line) = notice {
        let mut rows = super::wrap_line(&line, usize::from(width), 3);
        if rows.len() > MAX_STATUS_ROWS {
            rows.truncate(MAX_STATUS_ROWS);
            if let Some(last) = rows.last_mut() {
                last.spans.push(Span::raw("…"));
            }
        }
        return rows;
    }
    vec![status_line(app)]
}

fn status_line(app: &App) -> Line<'static> {
    match &app.notice {
        Some(_) => Line::raw(""),
        None if app.guide.is_some() => {
            let i = app.guide.unwrap_or(0);
            let lesson = app.lessons.lessons.get(i);
            let next = match lesson.and_then(|l| l.step) {
                Some(step) if app.steps[step as usize] != crate::ui::app::StepStatus::Done => {
                    format!(
                        "Space runs step {} ({})",
                        step.info().index,
                        step.info().short
                    )
                }
                _ => "Space turns to the next lesson".to_string(),
            };
            Line::from(vec![
                Span::styled(
                    format!(" guided tour {}/{}: ", i + 1, app.lessons.lessons.len()),
                    app.theme.next,
                ),
                Span::raw(next),
                Span::styled(" · b back · g ends the tour", app.theme.muted),
            ])
        }
        None => match (app.busy, app.next_step(), app.mode) {
            (true, _, _) => Line::styled(" running…", app.theme.muted),
            (false, _, Mode::Free) => Line::from(vec![
                Span::styled(" free mode ", app.theme.next),
                Span::raw(format!(
                    "— Enter runs {} ({})",
                    app.selected.info().index,
                    app.selected.info().short
                )),
            ]),
            (false, Some(next), Mode::Guided) => Line::from(vec![
                Span::styled(" next: ", app.theme.muted),
                Span::styled(
                    format!("{} {}", next.info().index, next.info().short),
                    app.theme.next,
                ),
                Span::styled(" — press Space", app.theme.muted),
            ]),
            (false, None, Mode::Guided) => {
                Line::styled(" all steps done — r starts again", app.theme.ok)
            }
        },
    }
}

pub fn render_hints(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (label, hint) in keymap::hints(app.key_context()) {
        spans.push(Span::styled(format!(" {label}"), app.theme.key));
        spans.push(Span::styled(format!(" {hint} "), app.theme.muted));
    }
    Line::from(spans).render(area, buf);
}
