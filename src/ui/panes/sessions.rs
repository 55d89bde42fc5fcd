//! The session picture in History's place (`s`): every session holding a lab process,
//! its groups and their processes, drawn as boxes the way APUE 9.4–9.6 and 13.3 draw
//! them. The layout comes from `report::sessions`, so the tour prints the same drawing;
//! this pane only styles it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::report::sessions::{Role, drawing};
use crate::ui::app::{App, Pane};
use crate::ui::render::pane_block;
use crate::ui::theme::Theme;

/// The theme's style for what a piece of the drawing means.
pub fn style(theme: &Theme, role: Role) -> Style {
    match role {
        Role::Frame => theme.border,
        Role::Title => theme.title,
        Role::Text => theme.text,
        Role::Leader => theme.heading,
        Role::Terminal => theme.next,
        Role::Orphaned => theme.warn,
        // Faded, for the one step it is shown.
        Role::Gone => theme.muted.add_modifier(Modifier::ITALIC),
        Role::Adopter => theme.code,
        Role::Muted => theme.muted,
    }
}

/// The rows the picture needs at `width`, borders included.
pub fn height(app: &App, width: u16) -> u16 {
    let lines = if app.history.is_empty() {
        1
    } else {
        drawing(&app.sessions, usize::from(width.saturating_sub(2))).len()
    };
    lines as u16 + 2
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = pane_block(app, Pane::History, " Sessions ⊃ groups ⊃ processes (s) ");
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let mut lines: Vec<Line> = if app.history.is_empty() {
        vec![Line::styled(
            "no step yet: the picture appears after step 0",
            app.theme.muted,
        )]
    } else {
        drawing(&app.sessions, usize::from(inner.width))
            .into_iter()
            .map(|row| {
                Line::from(
                    row.into_iter()
                        .map(|(text, role)| Span::styled(text, style(&app.theme, role)))
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    };
    let room = usize::from(inner.height);
    if lines.len() > room {
        let hidden = lines.len() - room + 1;
        lines.truncate(room - 1);
        let more = if app.zoomed {
            format!("… {hidden} more lines below: enlarge the terminal")
        } else {
            format!("… {hidden} more lines below: z zooms the picture")
        };
        lines.push(Line::styled(more, app.theme.muted));
    }
    Paragraph::new(lines).render(inner, buf);
}
