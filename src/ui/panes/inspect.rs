//! The Inspect tab: the daemon checklist for one PID, refreshed live; by default the lab's
//! own subject, so the checks turn green as the steps run.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::audit::Status;
use crate::ui::app::App;

/// "? unknown" and a space.
const MARK_WIDTH: usize = 10;
/// The longest check id ("controlling_tty") and a space.
const ID_WIDTH: usize = 17;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.inspect;
    let mut lines = Vec::new();
    // Named by what the PID is, not by how it was picked.
    let subject = app.lab.as_ref().map(|lab| lab.subject_pid);
    // Longest first: the border takes the first that fits with its scroll mark.
    let titles: Vec<String> = match &view.audit {
        Some(a) if Some(a.pid) == subject => vec![
            format!(
                " Inspect {} — the lab's daemon (Processes tab: Enter picks another) ",
                a.pid
            ),
            format!(" Inspect {} — the lab's daemon ", a.pid),
            format!(" Inspect {} ", a.pid),
        ],
        Some(a) => vec![format!(" Inspect {} ", a.pid)],
        None => vec![" Inspect ".to_string()],
    };
    // The detail wraps under itself, so the status and id columns stay readable.
    let indent = MARK_WIDTH + ID_WIDTH;
    let width = usize::from(area.width.saturating_sub(2));
    if let Some(error) = &view.error {
        lines.push(Line::styled(error.clone(), app.theme.error));
    }
    if let Some(audit) = &view.audit {
        lines.push(Line::styled(audit.verdict.clone(), app.theme.heading));
        lines.push(Line::raw(""));
        for check in &audit.checks {
            let (mark, style) = match check.status {
                Status::Pass => ("✓ pass", app.theme.ok),
                Status::Warn => ("! warn", app.theme.warn),
                Status::Fail => ("✗ FAIL", app.theme.error),
                Status::Unknown => ("? unknown", app.theme.muted),
            };
            let row = Line::from(vec![
                Span::styled(format!("{mark:<w$}", w = MARK_WIDTH), style),
                Span::styled(format!("{:<w$}", check.id, w = ID_WIDTH), app.theme.title),
                Span::raw(check.detail.clone()),
            ]);
            lines.extend(super::wrap_line(&row, width.max(indent + 20), indent));
        }
    } else if view.error.is_none() {
        lines.push(Line::styled("reading /proc…", app.theme.muted));
    }
    // Scrolled by ↓/↑ and PgDn/PgUp; the title says when there is more below.
    let visible = usize::from(area.height.saturating_sub(2));
    let last_start = lines.len().saturating_sub(visible);
    let first = usize::from(view.scroll).min(last_start);
    let mark = if first < last_start {
        "· ↓ PgDn for more "
    } else {
        ""
    };
    let titles: Vec<String> = titles.iter().map(|t| format!("{t}{mark}")).collect();
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    let title = super::fit_title(&titles, area.width).to_string();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((first as u16, 0))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(app.theme.border)
                .title(Line::styled(title, app.theme.title)),
        )
        .render(area, buf);
}
