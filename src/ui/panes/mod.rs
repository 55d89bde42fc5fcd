//! One file per screen region.

use ratatui::text::{Line, Span};

pub mod experiments;
pub mod footer;
pub mod header;
pub mod help;
pub mod history;
pub mod inspect;
pub mod lesson;
pub mod locks;
pub mod process;
pub mod processes;
pub mod sessions;
pub mod steps;
pub mod syslog;
pub mod terminal;
pub mod timeline;

/// `text` cut to `width` characters, ending in "…" when cut, so a long line never looks
/// complete when it is not.
pub fn fit(text: &str, width: u16) -> String {
    let room = usize::from(width);
    if text.chars().count() <= room {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `line` in one row of at most `width` cells, each span keeping its style, ending in
/// "…" when cut.
pub fn fit_line<'a>(line: &Line<'a>, width: usize) -> Line<'a> {
    if line.width() <= width {
        return line.clone();
    }
    let mut room = width.saturating_sub(1);
    let mut spans = Vec::new();
    for span in &line.spans {
        if room == 0 {
            break;
        }
        let head: String = span.content.chars().take(room).collect();
        room -= head.chars().count();
        spans.push(Span::styled(head, span.style));
    }
    spans.push(Span::raw("…"));
    Line::from(spans).style(line.style)
}

/// `line` broken into rows of at most `width` cells at spaces, keeping each span's style;
/// rows after the first start with `indent` spaces. A word wider than a row is cut across
/// rows.
pub fn wrap_line<'a>(line: &Line<'a>, width: usize, indent: usize) -> Vec<Line<'a>> {
    let width = width.max(indent + 1);
    let mut rows: Vec<Vec<Span<'a>>> = vec![Vec::new()];
    let mut used = 0;
    for span in &line.spans {
        let mut rest: &str = &span.content;
        while !rest.is_empty() {
            // The next token: a run of spaces, or a run of anything else.
            let space = rest.starts_with(' ');
            let end = rest
                .find(|c: char| (c == ' ') != space)
                .unwrap_or(rest.len());
            let (token, tail) = rest.split_at(end);
            rest = tail;
            let mut token = token.to_string();
            let fresh_row = used <= indent && rows.len() > 1 || used == 0;
            if space {
                // Spaces that would end a row, or start a continuation, are dropped.
                if used + token.chars().count() > width || (fresh_row && rows.len() > 1) {
                    continue;
                }
            } else if used + token.chars().count() > width && !fresh_row {
                rows.push(vec![Span::raw(" ".repeat(indent))]);
                used = indent;
            }
            while used + token.chars().count() > width {
                let room = width - used;
                let head: String = token.chars().take(room).collect();
                token = token.chars().skip(room).collect();
                rows.last_mut()
                    .unwrap()
                    .push(Span::styled(head, span.style));
                rows.push(vec![Span::raw(" ".repeat(indent))]);
                used = indent;
            }
            used += token.chars().count();
            rows.last_mut()
                .unwrap()
                .push(Span::styled(token, span.style));
        }
    }
    rows.into_iter()
        .map(|spans| Line::from(spans).style(line.style))
        .collect()
}

/// Every line of `lines` wrapped to `width` (see [`wrap_line`]).
pub fn wrap_lines<'a>(lines: &[Line<'a>], width: usize, indent: usize) -> Vec<Line<'a>> {
    lines
        .iter()
        .flat_map(|line| wrap_line(line, width, indent))
        .collect()
}

/// `units` laid out in rows of at most `width` cells, `gap` spaces apart: a unit moves to
/// the next row whole when it does not fit, and only a unit wider than a row is broken
/// (at its spaces). Keeps "umask 0022" together where plain word wrapping would not.
pub fn flow<'a>(units: Vec<Vec<Span<'a>>>, gap: usize, width: usize) -> Vec<Line<'a>> {
    let mut rows: Vec<Line<'a>> = Vec::new();
    let mut row: Vec<Span<'a>> = Vec::new();
    let mut used = 0;
    for unit in units {
        let unit_width: usize = unit.iter().map(|s| s.width()).sum();
        if used > 0 && used + gap + unit_width <= width {
            row.push(Span::raw(" ".repeat(gap)));
            row.extend(unit);
            used += gap + unit_width;
            continue;
        }
        if used > 0 {
            rows.push(Line::from(std::mem::take(&mut row)));
        }
        if unit_width <= width {
            row = unit;
            used = unit_width;
        } else {
            let mut pieces = wrap_line(&Line::from(unit), width, 0);
            let last = pieces.pop().unwrap_or_default();
            rows.extend(pieces);
            used = last.width();
            row = last.spans;
        }
    }
    if used > 0 {
        rows.push(Line::from(row));
    }
    rows
}

/// The first of `titles` (longest first) that fits a border `width` cells wide between
/// its corners, else the last one: a title is shortened by choice, never cut.
pub fn fit_title<'a>(titles: &[&'a str], width: u16) -> &'a str {
    // Two corners, and two cells for the focus mark ("▸ ") a focused pane adds.
    let room = usize::from(width.saturating_sub(4));
    titles
        .iter()
        .find(|t| t.chars().count() <= room)
        .or(titles.last())
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::{fit, flow, wrap_line};
    use ratatui::style::Style;
    use ratatui::text::{Line, Span};

    fn plain(rows: &[Line]) -> Vec<String> {
        rows.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wrap_line_keeps_styles_and_indents_continuations() {
        let line = Line::from(vec![
            Span::raw("10:00:00 "),
            Span::styled("daemon.info ", Style::new().green()),
            Span::raw("daemonlab: daemonized: pid 4220"),
        ]);
        let rows = wrap_line(&line, 24, 2);
        assert_eq!(
            plain(&rows),
            [
                "10:00:00 daemon.info ",
                "  daemonlab: daemonized:",
                "  pid 4220"
            ]
        );
        assert!(rows.iter().all(|r| r.width() <= 24));
        let green = rows[0]
            .spans
            .iter()
            .find(|s| s.content.contains("daemon.info"));
        assert_eq!(green.unwrap().style, Style::new().green());
        // A word longer than a row is cut, nothing is lost.
        let rows = wrap_line(&Line::raw("/run/user/1000/daemonlab-demo/log"), 12, 2);
        assert!(rows.iter().all(|r| r.width() <= 12), "{:?}", plain(&rows));
        assert_eq!(
            plain(&rows).concat().replace(' ', ""),
            "/run/user/1000/daemonlab-demo/log"
        );
        // Plain words: greedy, within the width.
        let rows = wrap_line(
            &Line::raw("no controlling terminal: no hangup can reach it"),
            20,
            0,
        );
        assert_eq!(
            plain(&rows),
            ["no controlling ", "terminal: no hangup ", "can reach it"]
        );
        for row in wrap_line(&Line::raw("a b c d e f g h i j k l m n o p"), 5, 0) {
            assert!(row.width() <= 5, "{row}");
        }
    }

    #[test]
    fn flow_moves_whole_units_and_breaks_only_the_too_wide() {
        let units = |words: &[&'static str]| -> Vec<Vec<Span<'static>>> {
            words.iter().map(|w| vec![Span::raw(*w)]).collect()
        };
        let rows = flow(
            units(&["umask 0022", "cwd /home/student", "SIGHUP default"]),
            3,
            40,
        );
        assert_eq!(
            plain(&rows),
            ["umask 0022   cwd /home/student", "SIGHUP default"]
        );
        let rows = flow(units(&["a", "one two three four five six", "b"]), 2, 10);
        assert!(rows.iter().all(|r| r.width() <= 10), "{:?}", plain(&rows));
        assert_eq!(
            plain(&rows).concat().replace(' ', ""),
            "aonetwothreefourfivesixb"
        );
    }

    #[test]
    fn a_long_line_ends_in_an_ellipsis_and_fits() {
        assert_eq!(fit("short", 80), "short");
        let cut = fit(&"x".repeat(200), 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.ends_with('…'));
    }
}
