//! The Inspect tab: the daemon checklist for one PID, refreshed live; by default the lab's
//! own subject, so the checks turn green as the steps run.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::audit::Status;
use crate::ui::app::App;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.inspect;
    let mut lines = Vec::new();
    let title = match (&view.audit, view.pid) {
        (Some(a), None) => format!(
            " Inspect {} — the lab's daemon (Processes tab: Enter picks another) ",
            a.pid
        ),
        (Some(a), Some(_)) => format!(" Inspect {} ", a.pid),
        (None, _) => " Inspect ".to_string(),
    };
    if let Some(error) = &view.error {
        lines.push(Line::styled(error.clone(), app.theme.error));
    }
    if let Some(audit) = &view.audit {
        lines.push(Line::styled(audit.verdict.clone(), app.theme.heading));
        lines.push(Line::raw(""));
        for check in &audit.checks {
            let (mark, style) = match check.status {
                Status::Pass => ("✓ pass", app.theme.ok),
                Status::Warn => ("! warn", app.theme.next),
                Status::Fail => ("✗ FAIL", app.theme.error),
                Status::Unknown => ("? unknown", app.theme.muted),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{mark:<9} "), style),
                Span::styled(format!("{:<16} ", check.id), app.theme.title),
                Span::raw(check.detail.clone()),
            ]));
        }
    } else if view.error.is_none() {
        lines.push(Line::styled("reading /proc…", app.theme.muted));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(app.theme.border)
                .title(Line::styled(title, app.theme.title)),
        )
        .render(area, buf);
}
