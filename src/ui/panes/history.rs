//! One row per step taken, in `ps -axj` columns, so the story reads top to bottom.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Text;
use ratatui::widgets::{Cell, Row, Table, Widget};

use crate::ui::app::{App, HistoryRow, Pane};
use crate::ui::render::pane_block;

fn cell<'a>(app: &App, row: &HistoryRow, field: &str, value: String) -> Cell<'a> {
    if row.changed.contains(&field) {
        Cell::from(Text::from(format!("{value}*"))).style(app.theme.changed)
    } else {
        Cell::from(value)
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let header = Row::new(["#", "step", "PID", "PPID", "PGID", "SID", "TTY", "TPGID"])
        .style(app.theme.muted);
    // Newest at the bottom; show the last rows that fit.
    let room = area.height.saturating_sub(3) as usize;
    let skip = app.history.len().saturating_sub(room);
    let rows = app.history.iter().skip(skip).map(|row| {
        let p = &row.process;
        let info = row.step.info();
        let step = if row.ok {
            info.id.name().to_string()
        } else {
            format!("{} ✗", info.id.name())
        };
        Row::new(vec![
            Cell::from(info.index.to_string()),
            Cell::from(step).style(if row.ok {
                app.theme.text
            } else {
                app.theme.error
            }),
            cell(app, row, "pid", p.pid.to_string()),
            cell(app, row, "ppid", p.ppid.to_string()),
            cell(app, row, "pgid", p.pgid.to_string()),
            cell(app, row, "sid", p.sid.to_string()),
            cell(app, row, "tty", p.tty.clone().unwrap_or_else(|| "?".into())),
            cell(app, row, "tpgid", p.tpgid.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(2),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    let title = if app.history.is_empty() {
        " History — each step's row appears here "
    } else {
        " History (ps -axj columns; * = changed) "
    };
    Table::new(rows, widths)
        .header(header)
        .block(pane_block(app, Pane::History, title))
        .render(area, buf);
}
