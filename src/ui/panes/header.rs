//! Top line: the tabs, and which processes the lab is running.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::ui::app::{App, Tab};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::styled(" daemonlab ", app.theme.title)];
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let style = if *tab == app.tab {
            app.theme.tab_active
        } else {
            app.theme.muted
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, tab.title()), style));
    }
    spans.push(Span::styled(
        "  APUE ch. 13, daemon processes",
        app.theme.muted,
    ));
    let line = Line::from(spans);
    let used = line.width() as u16;
    line.render(area, buf);
    if let Some(lab) = &app.lab {
        let right = format!(
            "subject {} · stand-in {} · {} · control fd {} ",
            lab.subject_pid, lab.session_pid, lab.pty, lab.control_fd
        );
        let width = right.chars().count() as u16;
        if used + width < area.width {
            let x = area.x + area.width - width;
            Line::styled(right, app.theme.muted).render(Rect { x, width, ..area }, buf);
        }
    }
}
