//! The lesson of the step being shown, from `lessons/`, with a failure on top when the
//! step failed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::lessons::{Block, Span as LessonSpan};
use crate::ui::app::{App, Pane, StepStatus};
use crate::ui::render::pane_block;

fn spans<'a>(app: &App, spans: &[LessonSpan]) -> Vec<Span<'a>> {
    spans
        .iter()
        .map(|s| {
            let mut style = if s.style.code {
                app.theme.code
            } else {
                app.theme.text
            };
            if s.style.bold {
                style = style.add_modifier(Modifier::BOLD);
            }
            if s.style.italic {
                style = style.add_modifier(Modifier::ITALIC);
            }
            if s.style.link {
                style = style.add_modifier(Modifier::UNDERLINED);
            }
            Span::styled(s.text.clone(), style)
        })
        .collect()
}

/// Lesson blocks as terminal lines.
pub fn lines<'a>(app: &App, blocks: &[Block]) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    for block in blocks {
        match block {
            Block::Heading { spans: s, .. } => {
                out.push(Line::from(spans(app, s)).style(app.theme.heading));
            }
            Block::Paragraph(s) => {
                out.push(Line::from(spans(app, s)));
                out.push(Line::raw(""));
            }
            Block::ListItem {
                depth,
                ordered,
                spans: s,
            } => {
                let bullet = match ordered {
                    Some(n) => format!("{}{n}. ", "  ".repeat(*depth as usize)),
                    None => format!("{}• ", "  ".repeat(*depth as usize)),
                };
                let mut line = vec![Span::styled(bullet, app.theme.muted)];
                line.extend(spans(app, s));
                out.push(Line::from(line));
            }
            Block::Code { text, .. } => {
                for code in text.lines() {
                    out.push(Line::styled(format!("  {code}"), app.theme.code));
                }
                out.push(Line::raw(""));
            }
            Block::Quote(s) => {
                let mut line = vec![Span::styled("│ ", app.theme.muted)];
                line.extend(spans(app, s));
                out.push(Line::from(line));
            }
            Block::Rule => out.push(Line::styled("────", app.theme.muted)),
        }
    }
    while out.last().is_some_and(|l| l.width() == 0) {
        out.pop();
    }
    out
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    // The guided tour walks every lesson in order; otherwise the pane follows the step.
    let (lesson, step) = match app.guide {
        Some(i) => {
            let lesson = app.lessons.lessons.get(i);
            (lesson, lesson.and_then(|l| l.step))
        }
        None => {
            let step = app.lesson_step();
            (app.lessons.for_step(step), Some(step))
        }
    };
    let mut body = Vec::new();
    if let Some(step) = step
        && let StepStatus::Failed { errno, message } = &app.steps[step as usize]
    {
        let info = step.info();
        body.push(Line::styled(
            format!(
                "✗ {} failed: {}",
                info.c_call,
                errno.as_deref().unwrap_or("error")
            ),
            app.theme.error,
        ));
        body.push(Line::styled(message.clone(), app.theme.error));
        body.push(Line::raw(""));
    }
    let title = match lesson {
        Some(lesson) => {
            let heading = match lesson.step {
                Some(step) => format!("{} {}", step.info().index, lesson.title),
                None => lesson.title.clone(),
            };
            body.push(Line::styled(heading, app.theme.heading));
            body.extend(lines(app, &lesson.body));
            match app.guide {
                Some(i) => format!(
                    " Guided tour {}/{} · APUE {} ",
                    i + 1,
                    app.lessons.lessons.len(),
                    lesson.section
                ),
                None => format!(" Lesson · APUE {} ", lesson.section),
            }
        }
        None => {
            let what = step
                .map(|s| format!("step {} ({})", s.info().index, s.info().short))
                .unwrap_or_else(|| "this place".into());
            body.push(Line::styled(
                format!("No lesson for {what} in this lesson set."),
                app.theme.muted,
            ));
            " Lesson ".to_string()
        }
    };
    // Roughly how many rows the wrapped text needs, to say whether there is more below.
    let inner = area.width.saturating_sub(2).max(1) as usize;
    let rows: usize = body.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = (app.lesson_scroll as usize).min(rows.saturating_sub(1));
    let title = if rows > scroll + visible {
        format!("{title}↓ PgDn ")
    } else {
        title
    };
    Paragraph::new(body)
        .wrap(Wrap { trim: false })
        .scroll((scroll as u16, 0))
        .style(Style::new())
        .block(pane_block(app, Pane::Lesson, title))
        .render(area, buf);
}
