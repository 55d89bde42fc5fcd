//! The experiments popup: the list on the left, the chosen one's report on the right.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::lab::experiments::Experiment;
use crate::ui::app::App;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.experiments;
    // The margin too: no letters of the pane below show around the menu.
    Clear.render(area, buf);
    let area = if view.zoomed {
        area
    } else {
        area.inner(Margin {
            horizontal: 2,
            vertical: 1,
        })
    };
    Clear.render(area, buf);
    let outer = Block::new()
        .borders(Borders::ALL)
        .border_style(app.theme.border_focused)
        .title(Line::styled(
            super::fit_title(
                &[
                    " Experiments: skip a rule, see why it exists — ↑/↓ choose · Enter run · PgDn/PgUp scroll · Esc close ",
                    " Experiments — ↑/↓ choose · Enter run · PgDn/PgUp scroll · Esc close ",
                    " Experiments — ↑/↓ · Enter run · Esc close ",
                    " Experiments ",
                ],
                area.width,
            ),
            app.theme.title,
        ));
    let inner = outer.inner(area);
    outer.render(area, buf);
    let [list, report] =
        Layout::horizontal([Constraint::Length(34), Constraint::Fill(1)]).areas(inner);
    let items: Vec<Line> = Experiment::ALL
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Marked before the title, which the list cuts short.
            let root = if e.needs_root().is_some() {
                Span::styled("[root] ", app.theme.warn)
            } else {
                Span::raw("")
            };
            // The short name fits the list whole; the chosen one's title is on the right.
            let line = Line::from(vec![
                Span::raw(format!(" {:>2} ", i + 1)),
                root,
                Span::raw(e.name()),
            ]);
            if i == view.selected {
                line.style(app.theme.selected)
            } else {
                line
            }
        })
        .collect();
    Paragraph::new(items).render(list, buf);
    let mut lines = Vec::new();
    if view.running {
        lines.push(Line::styled(
            format!("running {} on a fresh lab…", view.chosen().name()),
            app.theme.muted,
        ));
    } else if let Some(error) = &view.error {
        lines.push(Line::styled(error.clone(), app.theme.error));
    } else if let Some(r) = &view.report {
        let verdict = if r.observed {
            ("✓ observed", app.theme.ok)
        } else {
            ("✗ not observed", app.theme.error)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", r.title), app.theme.heading),
            Span::styled(verdict.0, verdict.1),
        ]));
        lines.push(Line::styled(format!("claim: {}", r.claim), app.theme.text));
        lines.push(Line::raw(""));
        lines.extend(r.evidence.iter().map(|e| Line::raw(e.clone())));
    } else {
        lines.push(Line::styled(view.chosen().title(), app.theme.heading));
        if let Some(without) = view.chosen().needs_root() {
            lines.push(Line::styled(
                format!("[root] needs root: {without}"),
                app.theme.warn,
            ));
        }
        lines.push(Line::styled(
            format!(
                "Enter runs it on a lab of its own (the same as `daemonlab tour --experiment {}`)",
                view.chosen().name()
            ),
            app.theme.muted,
        ));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((view.scroll, 0))
        .block(
            Block::new()
                .borders(Borders::LEFT)
                .border_style(app.theme.border),
        )
        .render(report, buf);
}
