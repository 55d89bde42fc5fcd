//! The Processes tab: the whole system in `ps -axj` columns, with kernel threads, likely
//! daemons and the lab's own processes marked.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use crate::probe::ps::Role;
use crate::ui::app::App;
use crate::ui::processes::SORTS;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.processes;
    // The legend's three entries, each whole: on one row where they fit, else wrapped.
    let units = vec![
        vec![
            Span::styled(" lab", app.theme.next),
            Span::styled(" the lab's own", app.theme.muted),
        ],
        vec![
            Span::styled(" dmn", app.theme.text),
            Span::styled(
                " daemon or service (what ps --daemons keeps)",
                app.theme.muted,
            ),
        ],
        vec![
            Span::styled(" kthr", app.theme.muted),
            Span::styled(" kernel thread (child of kthreadd)", app.theme.muted),
        ],
    ];
    let legend_lines = super::flow(units, 2, usize::from(area.width));
    let [table_area, legend] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(legend_lines.len() as u16),
    ])
    .areas(area);
    // What this lab started and tracks, nothing matched by name.
    let lab_pids = &view.ours;
    let rows = view.visible();
    let room = table_area.height.saturating_sub(3) as usize;
    let first = view.selected.saturating_sub(room.saturating_sub(1));
    const HEADERS: [&str; 11] = [
        "", "PPID", "PID", "PGID", "SID", "TTY", "TPGID", "STAT", "UID", "TIME", "COMMAND",
    ];
    let shown: Vec<_> = rows.iter().enumerate().skip(first).take(room).collect();
    let cells: Vec<[String; 11]> = shown
        .iter()
        .map(|(_, (depth, r))| {
            let mark = if lab_pids.contains(&r.pid) {
                "lab"
            } else if r.kernel_thread {
                "kthr"
            } else if matches!(r.role, Role::Daemon | Role::Service) {
                "dmn"
            } else {
                ""
            };
            [
                mark.to_string(),
                r.ppid.to_string(),
                r.pid.to_string(),
                r.pgid.to_string(),
                r.sid.to_string(),
                r.tty.clone().unwrap_or_else(|| "?".into()),
                r.tpgid.to_string(),
                r.stat.clone(),
                r.uid.to_string(),
                r.time.clone(),
                format!("{}{}", "  ".repeat(*depth), r.command),
            ]
        })
        .collect();
    // Each column as wide as what it shows now; COMMAND gets all the rest.
    let mut widths: Vec<Constraint> = (0..10)
        .map(|c| {
            let widest = cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0);
            Constraint::Length(widest.max(HEADERS[c].len()) as u16)
        })
        .collect();
    widths.push(Constraint::Fill(1));
    let body = shown.iter().zip(cells).map(|((i, (_, r)), cells)| {
        let style = if *i == view.selected {
            app.theme.selected
        } else if r.kernel_thread {
            app.theme.muted
        } else if cells[0] == "lab" {
            app.theme.next
        } else {
            app.theme.text
        };
        Row::new(cells.into_iter().map(Cell::from).collect::<Vec<_>>()).style(style)
    });
    let header = Row::new(HEADERS).style(app.theme.muted);
    let sort = format!("{:?}", SORTS[view.sort % SORTS.len()]).to_lowercase();
    let mut title = format!(" Processes · {} shown · sort {sort}", rows.len());
    if view.tree {
        title.push_str(" · tree");
    }
    if view.hide_kernel {
        title.push_str(" · kernel threads hidden");
    }
    if !view.filter.is_empty() || view.filtering {
        title.push_str(&format!(
            " · filter \"{}\"{}",
            view.filter,
            if view.filtering { "▏" } else { "" }
        ));
    }
    title.push(' ');
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(app.theme.border)
        .title(Line::styled(title, app.theme.title));
    Table::new(body, widths)
        .header(header)
        .block(block)
        .render(table_area, buf);
    Paragraph::new(legend_lines).render(legend, buf);
}
