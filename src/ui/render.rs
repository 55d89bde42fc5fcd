//! Layout: which pane goes where. `impl Widget for &App` makes rendering a pure function
//! of state, so tests draw on a `TestBackend` without any process.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Widget, Wrap};

use super::app::{App, Pane, StepStatus, Tab};
use super::panes;

/// Smallest terminal the Lab tab is drawn in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Whether a `width` × `height` terminal shows the Lab; smaller ones get only the
/// "needs more room" screen, behind which no key but quit acts.
pub fn fits(width: u16, height: u16) -> bool {
    width >= MIN_WIDTH && height >= MIN_HEIGHT
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if !fits(area.width, area.height) {
            too_small(self, area, buf);
            return;
        }
        let (status_lines, hint_lines) = panes::footer::bottom_lines(self, area.width);
        let status_rows = status_lines.len().max(1) as u16;
        let [top, body, status, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(status_rows),
            Constraint::Length(hint_lines.len() as u16),
        ])
        .areas(area);
        panes::header::render(self, top, buf);
        match self.tab {
            Tab::Locks => panes::locks::render(self, body, buf),
            Tab::Processes => panes::processes::render(self, body, buf),
            Tab::Inspect => panes::inspect::render(self, body, buf),
            Tab::Lab if self.zoomed => render_pane(self, self.focus, body, buf),
            Tab::Lab => lab_tab(self, body, buf),
        }
        Paragraph::new(status_lines).render(status, buf);
        Paragraph::new(hint_lines).render(footer, buf);
        if self.experiments.open && self.tab == Tab::Lab {
            panes::experiments::render(self, body, buf);
        }
        if self.help {
            panes::help::render(self, area, buf);
        }
    }
}

/// Rows a pane needs for its borders and one row of text.
const SMALLEST_PANE: u16 = 3;
/// The Steps pane with every step.
const STEPS_WHOLE: u16 = crate::lab::STEPS.len() as u16 + 2;
/// History's header and its last three rows, with borders.
const HISTORY_ROWS: u16 = 6;
/// A Terminal or Syslog pane with three rows of text.
const BOTTOM_ROWS: u16 = 5;

fn lab_tab(app: &App, area: Rect, buf: &mut Buffer) {
    // A traced program's timeline rows carry the call itself: wider where there is room.
    let left_width = match (area.width, app.trace.is_some()) {
        (w, true) if w >= 150 => 60,
        (w, true) if w >= 120 => 50,
        (w, _) if w >= 120 => 42,
        _ => 34,
    };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Fill(1)]).areas(area);
    // The Process pane is as tall as what it shows: every field, the whole fd list and
    // the last step's result, wrapped; the panes around it take what is left.
    let process_needs = panes::process::height(app, right.width);
    let (lesson_keeps, lesson_whole) = panes::lesson::heights(app, left.width);
    let wide = right.width >= 76 && area.height >= 28;
    if wide {
        // Steps and Lesson on the left; Process, History, and Terminal beside Syslog on
        // the right.
        let steps = left
            .height
            .saturating_sub(lesson_keeps)
            .clamp(SMALLEST_PANE, STEPS_WHOLE);
        let [steps, lesson] =
            Layout::vertical([Constraint::Length(steps), Constraint::Fill(1)]).areas(left);
        let process = process_needs.min(right.height.saturating_sub(HISTORY_ROWS + BOTTOM_ROWS));
        // History up to four sevenths of the rest, no taller than its rows; Terminal and
        // Syslog take what it leaves.
        let rest = right.height - process;
        let history_needs = if app.show_sessions {
            panes::sessions::height(app, right.width)
        } else {
            app.history.len() as u16 + 3
        };
        let history = history_needs.clamp(HISTORY_ROWS, (rest * 4 / 7).max(HISTORY_ROWS));
        let [process, history, bottom] = Layout::vertical([
            Constraint::Length(process),
            Constraint::Length(history),
            Constraint::Fill(1),
        ])
        .areas(right);
        let [terminal, syslog] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(bottom);
        for (pane, rect) in [
            (Pane::Steps, steps),
            (Pane::Lesson, lesson),
            (Pane::Process, process),
            (Pane::History, history),
            (Pane::Terminal, terminal),
            (Pane::Syslog, syslog),
        ] {
            render_pane(app, pane, rect, buf);
        }
        return;
    }
    // Narrow or short: Process and History on the right, Process whole whatever History
    // keeps; on the left the Lesson down to its "Look for:", then Terminal and Syslog
    // (stacked when tall, else sharing a place), and the Steps list as a window round
    // the step that matters.
    // A list of inherited descriptors can be long: History gives way before any of it
    // (z shows History whole).
    let mut process = process_needs.min(right.height);
    if right.height - process < SMALLEST_PANE + 1 {
        process = right.height;
    }
    let [process, history] =
        Layout::vertical([Constraint::Length(process), Constraint::Fill(1)]).areas(right);
    render_pane(app, Pane::Process, process, buf);
    if history.height > 0 {
        render_pane(app, Pane::History, history, buf);
    }

    let stacked = left.height >= 34;
    let bottom_min = if stacked {
        2 * BOTTOM_ROWS
    } else {
        BOTTOM_ROWS
    };
    let [steps, lesson, bottom] = narrow_left(left.height, lesson_keeps, lesson_whole, bottom_min);
    let [steps, lesson, bottom] = Layout::vertical([
        Constraint::Length(steps),
        Constraint::Length(lesson),
        Constraint::Length(bottom),
    ])
    .areas(left);
    render_pane(app, Pane::Steps, steps, buf);
    render_pane(app, Pane::Lesson, lesson, buf);
    if stacked {
        let [terminal, syslog] =
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(bottom);
        render_pane(app, Pane::Terminal, terminal, buf);
        render_pane(app, Pane::Syslog, syslog, buf);
    } else {
        render_pane(app, shared_bottom_pane(app), bottom, buf);
    }
}

/// Heights of Steps, Lesson and the Terminal/Syslog place in a left column `height`
/// rows tall. First what must show: one step, and the lesson down to its "Look for:"
/// (`keeps`) with at least one row of terminal or syslog below; then three rows of
/// those (`bottom_min`), three steps, a taller bottom, every step, the rest of the
/// lesson (`whole`), and what is left to the bottom.
fn narrow_left(height: u16, keeps: u16, whole: u16, bottom_min: u16) -> [u16; 3] {
    let mut steps = SMALLEST_PANE;
    let mut bottom = SMALLEST_PANE;
    let mut lesson = keeps
        .min(height.saturating_sub(steps + bottom))
        .max(SMALLEST_PANE)
        .min(height.saturating_sub(steps));
    let mut spare = height.saturating_sub(steps + lesson + bottom);
    let mut grow = |pane: &mut u16, to: u16| {
        let by = to.saturating_sub(*pane).min(spare);
        *pane += by;
        spare -= by;
    };
    grow(&mut bottom, bottom_min);
    grow(&mut steps, 5);
    grow(&mut bottom, bottom_min + 3);
    grow(&mut steps, STEPS_WHOLE);
    grow(&mut lesson, whole);
    bottom += spare;
    // A column too short for the minimums: the bottom gives way first.
    let bottom = bottom.min(height.saturating_sub(steps + lesson));
    [steps, lesson, bottom]
}

/// On a narrow screen Terminal and Syslog share one place: the focused one, else the
/// syslog once step 8 closed the terminal (a daemon's words go there next) or once a
/// message arrived, else the terminal.
fn shared_bottom_pane(app: &App) -> Pane {
    match app.focus {
        Pane::Terminal | Pane::Syslog => app.focus,
        _ if app.steps[crate::lab::StepId::CloseFds as usize] == StepStatus::Done => Pane::Syslog,
        // A traced program that has closed its descriptors writes nothing more to its
        // terminal: what it logs is the news.
        _ if app.trace.as_ref().is_some_and(|t| {
            t.timeline
                .iter()
                .any(|e| matches!(e.rule(), Some("close_fds" | "dev_null")))
        }) =>
        {
            Pane::Syslog
        }
        _ if app.syslog.visible().next().is_some() => Pane::Syslog,
        _ => Pane::Terminal,
    }
}

fn render_pane(app: &App, pane: Pane, area: Rect, buf: &mut Buffer) {
    match pane {
        Pane::Steps => match &app.trace {
            Some(trace) => panes::timeline::render(app, trace, area, buf),
            None => panes::steps::render(app, area, buf),
        },
        Pane::Process => panes::process::render(app, area, buf),
        Pane::History if app.show_sessions => panes::sessions::render(app, area, buf),
        Pane::History => panes::history::render(app, area, buf),
        Pane::Lesson => panes::lesson::render(app, area, buf),
        Pane::Terminal => panes::terminal::render(app, area, buf),
        Pane::Syslog => panes::syslog::render(app, area, buf),
    }
}

/// A bordered block titled for `pane`, highlighted when it has focus.
pub fn pane_block<'a>(app: &App, pane: Pane, title: impl Into<Line<'a>>) -> Block<'a> {
    let focused = app.focus == pane;
    let (border, kind) = if focused {
        (app.theme.border_focused, BorderType::Thick)
    } else {
        (app.theme.border, BorderType::Plain)
    };
    let mut title: Line = title.into();
    if focused && let Some(first) = title.spans.first_mut() {
        first.content = first.content.trim_start().to_string().into();
        title
            .spans
            .insert(0, Span::styled(" ▸ ", app.theme.border_focused));
    }
    Block::new()
        .borders(Borders::ALL)
        .border_type(kind)
        .border_style(border)
        .title(title.style(app.theme.title))
}

fn too_small(app: &App, area: Rect, buf: &mut Buffer) {
    let text = vec![
        Line::styled("daemonlab needs more room", app.theme.title),
        Line::raw(format!(
            "This terminal is {}×{}; the Lab needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::raw("Enlarge the window or make the font smaller. q quits."),
    ];
    Clear.render(area, buf);
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .style(Style::new())
        .render(area, buf);
}
