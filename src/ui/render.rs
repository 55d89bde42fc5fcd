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
        let status_lines = panes::footer::status_lines(self, area.width);
        let status_rows = status_lines.len().max(1) as u16;
        let [top, body, status, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(status_rows),
            Constraint::Length(1),
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
        ratatui::widgets::Paragraph::new(status_lines).render(status, buf);
        panes::footer::render_hints(self, footer, buf);
        if self.experiments.open && self.tab == Tab::Lab {
            panes::experiments::render(self, body, buf);
        }
        if self.help {
            panes::help::render(self, area, buf);
        }
    }
}

fn lab_tab(app: &App, area: Rect, buf: &mut Buffer) {
    let left_width = if area.width >= 120 { 42 } else { 34 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Fill(1)]).areas(area);
    let steps_height = crate::lab::STEPS.len() as u16 + 2;
    let [steps, lesson] =
        Layout::vertical([Constraint::Length(steps_height), Constraint::Fill(1)]).areas(left);
    let process_height = if area.height >= 30 { 12 } else { 11 };
    let [process, history, bottom] = Layout::vertical([
        Constraint::Length(process_height),
        Constraint::Fill(4),
        Constraint::Fill(3),
    ])
    .areas(right);
    for (pane, rect) in [
        (Pane::Steps, steps),
        (Pane::Lesson, lesson),
        (Pane::Process, process),
        (Pane::History, history),
    ] {
        render_pane(app, pane, rect, buf);
    }
    if right.width >= 76 {
        let [terminal, syslog] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(bottom);
        render_pane(app, Pane::Terminal, terminal, buf);
        render_pane(app, Pane::Syslog, syslog, buf);
    } else {
        render_pane(app, shared_bottom_pane(app), bottom, buf);
    }
}

/// On a narrow screen Terminal and Syslog share one place: the focused one, else the
/// terminal until step 8 closes it, then the syslog, where a daemon's words go next.
fn shared_bottom_pane(app: &App) -> Pane {
    match app.focus {
        Pane::Terminal | Pane::Syslog => app.focus,
        _ if app.steps[crate::lab::StepId::CloseFds as usize] == StepStatus::Done => Pane::Syslog,
        _ => Pane::Terminal,
    }
}

fn render_pane(app: &App, pane: Pane, area: Rect, buf: &mut Buffer) {
    match pane {
        Pane::Steps => panes::steps::render(app, area, buf),
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
