//! The lesson of the step being shown, from `lessons/`, with a failure on top when the
//! step failed.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

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

/// Whether a block opens the lesson's "Look for:" paragraph.
fn is_look_for(block: &Block) -> bool {
    match block {
        Block::Paragraph(s) => s
            .first()
            .is_some_and(|first| first.text.trim_start().starts_with("Look for")),
        _ => false,
    }
}

/// Lesson blocks as rows of at most `width` cells, and how many rows come before the end
/// of the "Look for:" paragraph and the list that follows it (0 when there is none).
pub fn rows<'a>(app: &App, blocks: &[Block], width: usize) -> (Vec<Line<'a>>, usize) {
    let mut out: Vec<Line<'a>> = Vec::new();
    let mut look_for_end = 0;
    let mut in_look_for = false;
    for (i, block) in blocks.iter().enumerate() {
        let next = blocks.get(i + 1);
        let next_is_item = matches!(next, Some(Block::ListItem { .. }));
        if is_look_for(block) {
            in_look_for = true;
        }
        match block {
            Block::Heading { spans: s, .. } => {
                let line = Line::from(spans(app, s)).style(app.theme.heading);
                out.extend(super::wrap_line(&line, width, 0));
            }
            Block::Paragraph(s) => {
                out.extend(super::wrap_line(&Line::from(spans(app, s)), width, 0));
                // A paragraph that introduces a list ("Look for:") runs straight into it.
                let introduces = s.last().is_some_and(|l| l.text.trim_end().ends_with(':'));
                if !(next_is_item && introduces) {
                    if in_look_for {
                        look_for_end = out.len();
                        in_look_for = false;
                    }
                    out.push(Line::raw(""));
                }
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
                out.extend(super::wrap_line(&Line::from(line), width, 0));
                if !next_is_item && in_look_for {
                    look_for_end = out.len();
                    in_look_for = false;
                }
            }
            Block::Code { text, .. } => {
                for code in text.lines() {
                    let line = Line::styled(format!("  {code}"), app.theme.code);
                    out.extend(super::wrap_line(&line, width, 4));
                }
                out.push(Line::raw(""));
            }
            Block::Quote(s) => {
                let mut line = vec![Span::styled("│ ", app.theme.muted)];
                line.extend(spans(app, s));
                out.extend(super::wrap_line(&Line::from(line), width, 2));
            }
            Block::Rule => out.push(Line::styled("────", app.theme.muted)),
        }
    }
    while out.last().is_some_and(|l| l.width() == 0) {
        out.pop();
    }
    (out, look_for_end)
}

/// The pane's title (without the scroll mark) and its rows at `width` inside the
/// borders, with how many first rows must stay in view: a failure, the heading and the
/// "Look for:" paragraph.
fn body<'a>(app: &App, width: usize) -> (String, Vec<Line<'a>>, usize) {
    // The guided tour walks every lesson in order; otherwise the pane follows the step.
    let (lesson, step) = match (app.guide, &app.trace) {
        (Some(i), _) => {
            let lesson = app.lessons.lessons.get(i);
            (lesson, lesson.and_then(|l| l.step))
        }
        // A traced program's rules are not the lab's steps: no step status to show.
        (None, Some(_)) => (app.shown_lesson(), None),
        (None, None) => {
            let step = app.lesson_step();
            (app.lessons.for_step(step), Some(step))
        }
    };
    let mut body = Vec::new();
    let mut verdict_rows = 0;
    if let Some(trace) = &app.trace {
        body.extend(trace_lines(app, trace, width));
        verdict_rows = body.len();
    }
    // The failure on top, in one line: the kernel's whole message is in the Process pane
    // and the status line already.
    if let Some(step) = step
        && let StepStatus::Failed { errno, .. } = &app.steps[step as usize]
    {
        let info = step.info();
        body.extend(super::wrap_line(
            &Line::styled(
                format!(
                    "✗ {} failed: {}",
                    info.c_call,
                    errno.as_deref().unwrap_or("error")
                ),
                app.theme.error,
            ),
            width,
            0,
        ));
        body.push(Line::raw(""));
    }
    let (title, keep) = match lesson {
        Some(lesson) => {
            let heading = match lesson.step {
                Some(step) => format!("{} {}", step.info().index, lesson.title),
                None => lesson.title.clone(),
            };
            body.extend(super::wrap_line(
                &Line::styled(heading, app.theme.heading),
                width,
                0,
            ));
            let before = body.len();
            let (rows, look_for_end) = rows(app, &lesson.body, width);
            body.extend(rows);
            let title = match app.guide {
                Some(i) => format!(
                    " Guided tour {}/{} · APUE {} ",
                    i + 1,
                    app.lessons.lessons.len(),
                    lesson.section
                ),
                None if verdict_rows > 0 && trace_ended(app) => {
                    format!(" Verdict, then the lesson · APUE {} ", lesson.section)
                }
                None => format!(" Lesson · APUE {} ", lesson.section),
            };
            (title, before + look_for_end)
        }
        None => {
            let what = step
                .map(|s| format!("step {} ({})", s.info().index, s.info().short))
                .unwrap_or_else(|| "this place".into());
            body.extend(super::wrap_line(
                &Line::styled(
                    format!("No lesson for {what} in this lesson set."),
                    app.theme.muted,
                ),
                width,
                0,
            ));
            (" Lesson ".to_string(), body.len())
        }
    };
    (title, body, keep)
}

/// The rows the pane needs at `width`, borders included, to show the lesson down to the
/// end of its "Look for:" paragraph; and all of it.
pub fn heights(app: &App, width: u16) -> (u16, u16) {
    let (_, rows, keep) = body(app, usize::from(width.saturating_sub(2)).max(1));
    (keep as u16 + 2, rows.len() as u16 + 2)
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let (title, body, _) = body(app, width);
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = (app.lesson_scroll as usize).min(body.len().saturating_sub(1));
    let more = body.len() > scroll + visible;
    // The guided tour's title has a short form: a title is shortened, never cut.
    let short = title
        .replace(" Guided tour ", " Tour ")
        .replace(" Lesson · APUE ", " APUE ");
    let mark = if more { "↓ PgDn " } else { "" };
    let (long, short) = (format!("{title}{mark}"), format!("{short}{mark}"));
    let title = super::fit_title(&[&long, &short], area.width).to_string();
    Paragraph::new(body)
        .scroll((scroll as u16, 0))
        .style(Style::new())
        .block(pane_block(app, Pane::Lesson, title))
        .render(area, buf);
}

fn trace_ended(app: &App) -> bool {
    app.trace.as_ref().is_some_and(|t| t.verdict.is_some())
}

/// `daemonlab run`: on top of the lesson, the failed call on screen (if it failed), and
/// once the trace has ended its verdict — inspect's checks on the daemon it left and what
/// only the trace could see.
fn trace_lines<'a>(app: &App, trace: &crate::ui::traced::TraceView, width: usize) -> Vec<Line<'a>> {
    use crate::audit::Status;
    let mut lines = Vec::new();
    if let Some(crate::trace::rules::Event::Syscall {
        errno: Some(errno),
        what,
        ..
    }) = trace.shown_row().and_then(|i| trace.timeline.get(i))
    {
        lines.extend(super::wrap_line(
            &Line::styled(format!("✗ {what} ({errno})"), app.theme.error),
            width,
            2,
        ));
        lines.push(Line::raw(""));
    }
    let Some((verdict, ending)) = &trace.verdict else {
        return lines;
    };
    let mut verdict_lines = vec![
        Line::styled(format!("The trace ended: {ending}."), app.theme.muted),
        Line::styled(verdict.summary.clone(), app.theme.heading),
    ];
    for f in &verdict.findings {
        let at = f.seq.map(|s| format!(" (#{s})")).unwrap_or_default();
        verdict_lines.push(Line::styled(
            format!("FAIL {}{at}: {}", f.id, f.detail),
            app.theme.error,
        ));
    }
    for c in verdict.checks.iter().filter(|c| c.status != Status::Pass) {
        let (word, style) = match c.status {
            Status::Fail => ("FAIL", app.theme.error),
            _ => ("WARN", app.theme.warn),
        };
        verdict_lines.push(Line::styled(
            format!("{word} {}: {}", c.id, c.detail),
            style,
        ));
    }
    let passed = verdict
        .checks
        .iter()
        .filter(|c| c.status == Status::Pass)
        .count();
    if passed > 0 {
        verdict_lines.push(Line::styled(
            format!("{passed} more checks pass (daemonlab inspect PID lists them)"),
            app.theme.muted,
        ));
    }
    lines.extend(super::wrap_lines(&verdict_lines, width, 2));
    lines.push(Line::raw(""));
    lines
}
