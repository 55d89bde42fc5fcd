//! One row per step taken, in `ps -axj` columns, so the story reads top to bottom.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row, Table, Widget};

use crate::ui::app::{App, HistoryRow, Pane};
use crate::ui::render::pane_block;

/// The `ps -axj` columns: header, snapshot field, value.
/// In the order `ps -axj` prints them.
const COLUMNS: [(&str, &str); 6] = [
    ("PPID", "ppid"),
    ("PID", "pid"),
    ("PGID", "pgid"),
    ("SID", "sid"),
    ("TTY", "tty"),
    ("TPGID", "tpgid"),
];

fn value(row: &HistoryRow, field: &str) -> String {
    let p = &row.process;
    let text = match field {
        "pid" => p.pid.to_string(),
        "ppid" => p.ppid.to_string(),
        "pgid" => p.pgid.to_string(),
        "sid" => p.sid.to_string(),
        "tty" => p.tty.clone().unwrap_or_else(|| "?".into()),
        _ => p.tpgid.to_string(),
    };
    if row.changed.contains(&field) {
        format!("{text}*")
    } else {
        text
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    // Newest at the bottom; show the last rows that fit.
    let room = area.height.saturating_sub(3) as usize;
    let shown = &app.history[app.history.len().saturating_sub(room)..];
    let widths: Vec<u16> = COLUMNS
        .iter()
        .map(|(header, field)| {
            shown
                .iter()
                .map(|row| value(row, field).chars().count())
                .max()
                .unwrap_or(0)
                .max(header.len()) as u16
        })
        .collect();
    // The step name is the first thing to give up on a narrow screen: the step list has it.
    // Steps are 0–10; a traced program's rows carry the event's #seq.
    let number = shown
        .iter()
        .map(|r| r.number.chars().count())
        .max()
        .unwrap_or(1)
        .max(2) as u16;
    let fixed: u16 = number + widths.iter().sum::<u16>() + 7;
    let with_name = area.width.saturating_sub(2) >= fixed + 8;
    let mut header = vec!["#"];
    let mut constraints = vec![Constraint::Length(number)];
    if with_name {
        header.push(if app.trace.is_some() { "rule" } else { "step" });
        let longest = shown
            .iter()
            .map(|r| r.name.chars().count() + if r.ok { 0 } else { 2 })
            .max()
            .unwrap_or(4);
        constraints.push(Constraint::Length(longest as u16));
    }
    header.extend(COLUMNS.iter().map(|(h, _)| *h));
    constraints.extend(widths.iter().map(|w| Constraint::Length(*w)));

    let rows = shown.iter().map(|row| {
        let mut cells = vec![Cell::from(row.number.clone())];
        if with_name {
            let name = if row.ok {
                row.name.to_string()
            } else {
                format!("{} ✗", row.name)
            };
            cells.push(Cell::from(name).style(if row.ok {
                app.theme.text
            } else {
                app.theme.error
            }));
        }
        for (_, field) in COLUMNS {
            let style = if row.changed.contains(&field) {
                app.theme.changed
            } else {
                app.theme.text
            };
            cells.push(Cell::from(value(row, field)).style(style));
        }
        Row::new(cells)
    });
    let title = if app.history.is_empty() {
        crate::ui::panes::fit_title(
            &[
                if app.trace.is_some() {
                    " History — a row per rule appears here "
                } else {
                    " History — a row per step appears here "
                },
                " History ",
            ],
            area.width,
        )
    } else {
        crate::ui::panes::fit_title(
            &[
                " History (ps -axj columns; * = changed) ",
                " History (ps -axj; * = changed) ",
                " History ",
            ],
            area.width,
        )
    };
    Table::new(rows, constraints)
        .header(Row::new(header).style(app.theme.muted))
        .block(pane_block(app, Pane::History, title))
        .render(area, buf);
}
