//! The Locks tab (APUE 13.5): the pid file and its content, the kernel's lock table from
//! /proc/locks (holder and blocked waiters), the contenders, a pitfall's evidence, and the
//! syslog pane where every contender reports.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget, Wrap};

use crate::locks::{ContenderState, LockKind, LockMode};
use crate::ui::app::App;
use crate::ui::locks::pitfall_title;

fn block<'a>(app: &App, title: impl Into<String>) -> Block<'a> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(app.theme.border)
        .title(Line::styled(title.into(), app.theme.title))
}

/// The block of a part `p` and `z` can pick (lock table 0, contenders 1, pitfall 2).
fn part_block<'a>(app: &App, part: u8, title: impl Into<String>) -> Block<'a> {
    let focused = app.locks.focus == part;
    let title = title.into();
    let title = if focused {
        format!(" ▸ {}", title.trim_start())
    } else {
        title
    };
    block(app, title).border_style(if focused {
        app.theme.border_focused
    } else {
        app.theme.border
    })
}

fn kind_text(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Fcntl => "fcntl — POSIX record lock, the book's (F_SETLK)",
        LockKind::Flock => "flock(2) — whole-file lock on the open file description",
        LockKind::Ofd => "OFD — fcntl F_OFD_SETLK, owned by the open file description",
    }
}

/// The mode in the call the chosen kind really makes.
fn mode_text(kind: LockKind, mode: LockMode) -> &'static str {
    match (kind, mode) {
        (LockKind::Fcntl, LockMode::Try) => "try — refuse at once (fcntl F_SETLK)",
        (LockKind::Fcntl, LockMode::Wait) => {
            "wait — block in the kernel until free (fcntl F_SETLKW)"
        }
        (LockKind::Flock, LockMode::Try) => "try — refuse at once (flock LOCK_EX|LOCK_NB)",
        (LockKind::Flock, LockMode::Wait) => {
            "wait — block in the kernel until free (flock LOCK_EX)"
        }
        (LockKind::Ofd, LockMode::Try) => "try — refuse at once (fcntl F_OFD_SETLK)",
        (LockKind::Ofd, LockMode::Wait) => {
            "wait — block in the kernel until free (fcntl F_OFD_SETLKW)"
        }
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    // z: the part p chose, on the whole tab.
    if app.zoomed {
        match app.locks.focus {
            0 => render_table(app, area, buf),
            1 => render_contenders(app, area, buf),
            2 => render_pitfall(app, area, buf),
            _ => super::syslog::render(app, area, buf),
        }
        return;
    }
    // The lock table gets the larger share: ten contenders are a holder and nine waiters.
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Fill(3),
        Constraint::Fill(2),
    ])
    .areas(area);
    render_pidfile(app, top, buf);
    let [table, contenders] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    render_table(app, table, buf);
    render_contenders(app, contenders, buf);
    let [pitfall, syslog] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    render_pitfall(app, pitfall, buf);
    super::syslog::render(app, syslog, buf);
}

fn render_pidfile(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.locks;
    let (path, content) = match &view.evidence {
        Some(e) => (
            e.pidfile.display().to_string(),
            match &e.content {
                Some(c) if c.is_empty() => "(empty)".to_string(),
                // Quoted, with a newline or NUL shown as \n or \0, so the bytes are visible.
                Some(c) => format!("\"{}\"", c.escape_default()),
                None => "(no file yet)".to_string(),
            },
        ),
        None => ("(starting…)".to_string(), String::new()),
    };
    let (holding, waiting, refused, ended) = view.tally();
    let lines = vec![
        Line::from(vec![
            Span::styled("pid file ", app.theme.muted),
            Span::styled(path, app.theme.code),
            Span::styled("   content ", app.theme.muted),
            Span::styled(content, app.theme.text),
        ]),
        Line::from(vec![
            Span::styled("next contenders: ", app.theme.muted),
            Span::styled(kind_text(view.kind), app.theme.next),
            Span::styled("  (t)", app.theme.key),
        ]),
        Line::from(vec![
            Span::styled("                  ", app.theme.muted),
            Span::styled(mode_text(view.kind, view.mode), app.theme.next),
            Span::styled("  (w)", app.theme.key),
        ]),
    ];
    let tally =
        format!(" {holding} holding · {waiting} waiting · {refused} refused · {ended} ended ");
    // The counts stay; the name takes its short form when both do not fit.
    let room = area
        .width
        .saturating_sub(2 + tally.chars().count() as u16 + 1);
    let name = super::fit_title(
        &[
            " Single-instance daemons (APUE 13.5) ",
            " Single instance (APUE 13.5) ",
            " APUE 13.5 ",
        ],
        room + 2,
    );
    let tally = Line::styled(tally, app.theme.text).right_aligned();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block(app, name).title_top(tally))
        .render(area, buf);
}

/// Column widths for `header` and `rows`, each as wide as its widest cell; columns from
/// the right are left out while they do not all fit `width` (a cell is never cut).
fn fitted_widths(header: &[&str], rows: &[Vec<String>], width: u16) -> Vec<Constraint> {
    let mut widths: Vec<u16> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0) as u16
        })
        .collect();
    let total = |w: &[u16]| w.iter().sum::<u16>() + w.len().saturating_sub(1) as u16;
    while widths.len() > 1 && total(&widths) > width {
        widths.pop();
    }
    widths.into_iter().map(Constraint::Length).collect()
}

fn render_table(app: &App, area: Rect, buf: &mut Buffer) {
    let header = ["", "class", "access", "pid", "who", "range"];
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut styles = Vec::new();
    let mut note = None;
    if let Some(evidence) = &app.locks.evidence {
        note = evidence.note.clone();
        for (role, entries) in [
            ("HOLDS", &evidence.table.holders),
            ("waits", &evidence.table.waiters),
        ] {
            for e in entries {
                let daemon = app.lab.as_ref().is_some_and(|l| l.subject_pid == e.pid);
                let who = if daemon {
                    "the daemon".to_string()
                } else if app.locks.contenders.iter().any(|c| c.pid == e.pid) {
                    "contender".to_string()
                } else if e.pid == -1 {
                    "OFD: no pid".to_string()
                } else {
                    evidence.comms.get(&e.pid).cloned().unwrap_or_default()
                };
                let range = match e.end {
                    Some(end) => format!("{}-{end}", e.start),
                    None => format!("{}-EOF", e.start),
                };
                styles.push(if role == "HOLDS" {
                    app.theme.ok
                } else {
                    app.theme.muted
                });
                cells.push(vec![
                    if e.waiter {
                        format!("-> {role}")
                    } else {
                        role.to_string()
                    },
                    e.class.clone(),
                    e.access.clone(),
                    e.pid.to_string(),
                    who,
                    range,
                ]);
            }
        }
    }
    let empty = cells.is_empty();
    let width = part_block(app, 0, "").inner(area).width;
    let widths = fitted_widths(&header, &cells, width);
    let header = Row::new(header).style(app.theme.muted);
    let mut rows: Vec<Row> = cells
        .into_iter()
        .zip(styles)
        .map(|(cells, style)| {
            let mut cells = cells.into_iter().map(Cell::from).collect::<Vec<_>>();
            cells[0] = cells[0].clone().style(style);
            Row::new(cells)
        })
        .collect();
    let title = super::fit_title(
        &[
            " The kernel's lock table (/proc/locks, this pid file) ",
            " Lock table (/proc/locks) ",
            " /proc/locks ",
        ],
        area.width,
    );
    let inner = part_block(app, 0, title).inner(area);
    part_block(app, 0, title).render(area, buf);
    let text = match (empty, note) {
        (true, _) => "no lock on the pid file — press c to start a contender".to_string(),
        (false, Some(note)) => note,
        (false, None) => {
            "\"->\" lines are processes blocked in the kernel, waiting for this lock".to_string()
        }
    };
    // As many rows as the note needs (after a blank one), the rest for the table — but
    // the holders and waiters come first: when they do not all fit, the note gives way
    // whole, never cut (z on the table shows it).
    let width = usize::from(inner.width.max(1));
    let note = super::wrap_line(&Line::styled(text, app.theme.muted), width, 0);
    let mut note_rows = note.len() as u16 + 1;
    let table_rows = rows.len() as u16 + 1;
    if table_rows + note_rows > inner.height {
        note_rows = 0;
    }
    let [table_area, note_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(note_rows)]).areas(inner);
    // Never hide a row silently: the last line says how many did not fit.
    let mut table_area = table_area;
    let room = usize::from(table_area.height.saturating_sub(1));
    if rows.len() > room && room > 1 {
        let shown = room - 1;
        let hidden = rows.len() - shown;
        rows.truncate(shown);
        table_area.height -= 1;
        let more = Rect {
            y: table_area.y + table_area.height,
            height: 1,
            ..table_area
        };
        Line::styled(format!("… {hidden} more not shown"), app.theme.muted).render(more, buf);
    }
    Table::new(rows, widths)
        .header(header)
        .render(table_area, buf);
    // The first row of the note's area stays blank, between the table and the note.
    let mut lines = vec![Line::raw("")];
    lines.extend(note);
    Paragraph::new(lines).render(note_area, buf);
}

fn render_contenders(app: &App, area: Rect, buf: &mut Buffer) {
    let list = &app.locks.contenders;
    let states: Vec<(String, ratatui::style::Style)> = list
        .iter()
        .map(|c| match &c.state {
            ContenderState::Starting => ("starting".to_string(), app.theme.muted),
            ContenderState::Waiting => {
                ("waiting, blocked in the kernel".to_string(), app.theme.text)
            }
            ContenderState::Holding => ("HOLDING the lock".to_string(), app.theme.ok),
            ContenderState::Refused { holder: Some(pid) } => {
                (format!("refused: held by {pid}"), app.theme.error)
            }
            ContenderState::Refused { holder: None } => {
                ("refused: already running".to_string(), app.theme.error)
            }
            ContenderState::Failed { message } => (format!("failed: {message}"), app.theme.error),
            ContenderState::Exited { status } => (format!("ended: {status}"), app.theme.muted),
        })
        .collect();
    // Each column as wide as what it shows; the state gets the rest and wraps there.
    let column = |header: &str, values: Vec<usize>| -> u16 {
        values.into_iter().chain([header.len()]).max().unwrap_or(0) as u16
    };
    let pid = column(
        "pid",
        list.iter().map(|c| c.pid.to_string().len()).collect(),
    );
    let kind = column("kind", list.iter().map(|c| c.kind.name().len()).collect());
    let mode = column("mode", list.iter().map(|c| c.mode.name().len()).collect());
    let block = part_block(app, 1, format!(" Contenders ({}) ", list.len()));
    let inner = block.inner(area);
    let state_width = usize::from(inner.width.saturating_sub(pid + kind + mode + 3)).max(8);
    let rows: Vec<(u16, Row)> = list
        .iter()
        .zip(states)
        .map(|(c, (state, style))| {
            let state = super::wrap_line(&Line::styled(state, style), state_width, 2);
            let height = state.len() as u16;
            let row = Row::new(vec![
                Cell::from(c.pid.to_string()),
                Cell::from(c.kind.name()),
                Cell::from(c.mode.name()),
                Cell::from(ratatui::text::Text::from(state)),
            ])
            .height(height);
            (height, row)
        })
        .collect();
    // The newest that fit below the header.
    let room = inner.height.saturating_sub(1);
    let mut used = 0;
    let first = rows
        .iter()
        .rposition(|(height, _)| {
            used += height;
            used > room
        })
        .map_or(0, |i| i + 1);
    let rows: Vec<Row> = rows.into_iter().skip(first).map(|(_, row)| row).collect();
    let widths = [
        Constraint::Length(pid),
        Constraint::Length(kind),
        Constraint::Length(mode),
        Constraint::Fill(1),
    ];
    let header = Row::new(["pid", "kind", "mode", "state"]).style(app.theme.muted);
    Table::new(rows, widths)
        .header(header)
        .block(block)
        .render(area, buf);
}

fn render_pitfall(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.locks;
    let chosen = view.chosen_pitfall();
    let mut lines = Vec::new();
    match &view.report {
        _ if view.running => lines.push(Line::styled("running…", app.theme.muted)),
        Some(report) => {
            let verdict = if report.holds {
                ("✓ observed", app.theme.ok)
            } else {
                ("✗ not observed", app.theme.error)
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} ({}) ", report.title, report.kind.name()),
                    app.theme.heading,
                ),
                Span::styled(verdict.0, verdict.1),
            ]));
            lines.extend(report.evidence.iter().map(|e| Line::raw(e.clone())));
        }
        None => {
            lines.push(Line::styled(pitfall_title(chosen), app.theme.heading));
            lines.push(Line::styled(
                format!(
                    "x runs it with {} locks; X picks another; t changes the kind",
                    view.kind.name()
                ),
                app.theme.muted,
            ));
        }
    }
    let title = format!(" Pitfall {}/4 — PgDn/PgUp scroll ", view.pitfall % 4 + 1);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((view.scroll, 0))
        .block(part_block(app, 2, title))
        .render(area, buf);
}
