//! The status line (what just happened) and the key hints, drawn from the key table.

use ratatui::text::{Line, Span};

use crate::ui::app::{App, Mode};
use crate::ui::keymap;

/// The most rows the status line may take from the panes above it.
pub const MAX_STATUS_ROWS: usize = 4;

/// The status rows for a screen `width` wide: a notice is wrapped, never cut (up to
/// [`MAX_STATUS_ROWS`]; a longer one is rare and ends in an ellipsis). The guided tour's
/// line takes its short form when its long one leaves less than `room` free.
pub fn status_lines(app: &App, width: u16, room: usize) -> Vec<Line<'static>> {
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
    // The short form only where it makes the room the long one does not.
    let long = status_line(app, false);
    let short = status_line(app, true);
    let line = if long.width() > room && short.width() <= room {
        short
    } else {
        long
    };
    super::wrap_line(&line, usize::from(width), 3)
}

fn status_line(app: &App, short: bool) -> Line<'static> {
    use crate::ui::traced::TraceState;
    match &app.notice {
        Some(_) => Line::raw(""),
        None if let Some(s) = app.trace.as_ref().and_then(|t| t.service.as_ref()) => {
            let style = match s.state {
                "failed" => app.theme.error,
                "active" => app.theme.ok,
                _ => app.theme.next,
            };
            let mut spans = vec![
                Span::styled(format!(" Type={} · {} ", s.kind, s.state), style),
                Span::styled(format!("— {}", s.words), app.theme.muted),
            ];
            if s.ended {
                spans.push(Span::styled(
                    " · the manager has ended; q quits",
                    app.theme.muted,
                ));
            }
            Line::from(spans)
        }
        None if app.trace.is_some() => {
            let state = app.trace.as_ref().map(|t| t.state);
            match state {
                Some(TraceState::Held) => Line::from(vec![
                    Span::styled(" held at this rule ", app.theme.next),
                    Span::styled(
                        "— Space lets it run to the next one, c runs it freely",
                        app.theme.muted,
                    ),
                ]),
                Some(TraceState::Free) => Line::styled(
                    " running freely — every rule is recorded, nothing is held",
                    app.theme.muted,
                ),
                Some(TraceState::Finished) => Line::styled(
                    " the trace has ended — the verdict is in the Lesson pane; q ends the program",
                    app.theme.ok,
                ),
                _ => Line::styled(" running to its next rule…", app.theme.muted),
            }
        }
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
            let (tour, ends) = if short {
                ("tour", " · b back · g ends it")
            } else {
                ("guided tour", " · b back · g ends the tour")
            };
            Line::from(vec![
                Span::styled(
                    format!(" {tour} {}/{}: ", i + 1, app.lessons.lessons.len()),
                    app.theme.next,
                ),
                Span::raw(next),
                Span::styled(ends, app.theme.muted),
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

/// The hints as units that are never split: " key hint ", and whether each is an
/// everywhere key (help, quit).
fn hint_units(app: &App) -> Vec<(Vec<Span<'static>>, bool)> {
    keymap::hint_bindings(app.key_context())
        .map(|b| {
            let spans = vec![
                Span::styled(format!(" {}", b.label), app.theme.key),
                Span::styled(format!(" {} ", b.hint.unwrap_or_default()), app.theme.muted),
            ];
            (spans, b.when == keymap::When::Always)
        })
        .collect()
}

fn units_width(units: &[Vec<Span>]) -> usize {
    units.iter().flatten().map(|s| s.width()).sum()
}

/// `units` in rows of at most `width` cells, a unit never split.
fn flow(units: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Vec<Vec<Span<'static>>>> {
    let mut rows: Vec<Vec<Vec<Span<'static>>>> = vec![Vec::new()];
    let mut used = 0;
    for unit in units {
        let w = units_width(std::slice::from_ref(&unit));
        if used > 0 && used + w > width {
            rows.push(Vec::new());
            used = 0;
        }
        used += w;
        rows.last_mut().expect("a row").push(unit);
    }
    rows
}

/// The status rows and the hint rows for a screen `width` wide. No hint is cut: hints
/// that do not fit the hint row move to the right end of the status line when it has
/// room (the everywhere keys, help and quit, go there first), and otherwise wrap onto
/// another row, whole.
pub fn bottom_lines(app: &App, width: u16) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let (local, global): (Vec<_>, Vec<_>) = hint_units(app).into_iter().partition(|(_, g)| !g);
    let local: Vec<Vec<Span>> = local.into_iter().map(|(u, _)| u).collect();
    let global: Vec<Vec<Span>> = global.into_iter().map(|(u, _)| u).collect();
    let room = usize::from(width).saturating_sub(2 + units_width(&global));
    let mut status = status_lines(app, width, room);
    let width = usize::from(width);
    let last = status.last().map_or(0, Line::width);
    let fits_status = |units: &[Vec<Span>]| last + 2 + units_width(units) <= width;
    let mut rows = flow(local.clone(), width);
    let mut moved: Vec<Vec<Span>> = rows.drain(1..).flatten().collect();
    moved.extend(global.iter().cloned());
    if !fits_status(&moved) {
        rows = if fits_status(&global) {
            moved = global;
            flow(local, width)
        } else {
            moved = Vec::new();
            flow(local.into_iter().chain(global).collect(), width)
        };
    }
    if !moved.is_empty() {
        let moved_width = units_width(&moved);
        let row = status.last_mut().expect("one status row at least");
        row.spans
            .push(Span::raw(" ".repeat(width - last - moved_width)));
        row.spans.extend(moved.into_iter().flatten());
    }
    let rows = rows
        .into_iter()
        .map(|units| Line::from(units.into_iter().flatten().collect::<Vec<_>>()))
        .collect();
    (status, rows)
}
