//! Top line: the tabs, and which processes the lab is running.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::ui::app::{App, Tab};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if let Some(trace) = &app.trace {
        traced(app, trace, area, buf);
        return;
    }
    let mut spans = vec![Span::styled(" daemonlab ", app.theme.title)];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let style = if *tab == app.tab {
            app.theme.tab_active
        } else {
            app.theme.muted
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, tab.title()), style));
    }
    // The lab's facts come first; the subtitle takes what room is left.
    let right = app.lab.as_ref().map(|lab| {
        // After H the stand-in has exited and been reaped, and the terminal is gone.
        let (stand_in, pty) = match app.hung_up {
            true => ("gone".to_string(), format!("{} hung up", lab.pty)),
            false => (lab.session_pid.to_string(), lab.pty.clone()),
        };
        format!(
            "subject {} · stand-in {stand_in} · {pty} · control fd {} ",
            lab.subject_pid, lab.control_fd
        )
    });
    let right_width = right.as_ref().map_or(0, |r| r.chars().count() as u16);
    let subtitle = "  APUE ch. 13, daemon processes";
    let tabs_width = Line::from(spans.clone()).width() as u16;
    if tabs_width + subtitle.chars().count() as u16 + right_width < area.width {
        spans.push(Span::styled(subtitle, app.theme.muted));
    }
    let used = Line::from(spans.clone()).width() as u16;
    Line::from(spans).render(area, buf);
    if let Some(right) = right
        && used + right_width < area.width
    {
        let x = area.x + area.width - right_width;
        Line::styled(right, app.theme.muted).render(
            Rect {
                x,
                width: right_width,
                ..area
            },
            buf,
        );
    }
}

/// `daemonlab run`: one tab, the program, and where it runs.
fn traced(app: &App, trace: &crate::ui::traced::TraceView, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![
        Span::styled(" daemonlab run ", app.theme.title),
        Span::styled(format!(" {} ", trace.program), app.theme.tab_active),
    ];
    if let (Some(lab), Some(s)) = (&app.lab, &trace.service) {
        spans.push(Span::styled(
            format!(
                " main pid {} · Type={} · the lab is its service manager (pid {}) ",
                lab.subject_pid, s.kind, lab.session_pid
            ),
            app.theme.muted,
        ));
    } else if let Some(lab) = &app.lab {
        spans.push(Span::styled(
            format!(
                " pid {} · a job of the stand-in {} on {} · traced ",
                lab.subject_pid, lab.session_pid, lab.pty
            ),
            app.theme.muted,
        ));
    }
    let line = super::fit_line(&Line::from(spans), usize::from(area.width));
    line.render(area, buf);
}
