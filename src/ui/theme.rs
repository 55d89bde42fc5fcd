//! Named styles. Panes ask for a meaning (`changed`, `error`, `muted`…), never a colour,
//! so a projector theme and NO_COLOR are one switch. Every meaning that matters also has
//! a glyph or a modifier, so it reads in monochrome.

use ratatui::style::{Color, Modifier, Style};

/// Which palette to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeName {
    /// Colours for a dark or light terminal.
    Default,
    /// Strong contrast and bold text, for projectors and classrooms.
    HighContrast,
    /// No colour at all (also chosen by the NO_COLOR environment variable).
    Mono,
}

/// The styles every pane draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub text: Style,
    pub muted: Style,
    pub title: Style,
    pub border: Style,
    pub border_focused: Style,
    /// A value the last step changed.
    pub changed: Style,
    pub ok: Style,
    /// A warning: worth a look, not a failure.
    pub warn: Style,
    pub error: Style,
    /// The next step to run.
    pub next: Style,
    /// The free-mode cursor.
    pub selected: Style,
    pub key: Style,
    pub heading: Style,
    pub code: Style,
    pub tab_active: Style,
}

impl Theme {
    /// The theme for `name`, except that a non-empty NO_COLOR always means monochrome.
    pub fn pick(name: ThemeName, no_color: bool) -> Theme {
        match (name, no_color) {
            (_, true) | (ThemeName::Mono, _) => Theme::mono(),
            (ThemeName::HighContrast, _) => Theme::high_contrast(),
            (ThemeName::Default, _) => Theme::default_colors(),
        }
    }

    /// True when NO_COLOR is set to a non-empty value (no-color.org).
    pub fn no_color_requested() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }

    pub fn default_colors() -> Theme {
        Theme {
            text: Style::new(),
            muted: Style::new().fg(Color::DarkGray),
            title: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            border: Style::new().fg(Color::DarkGray),
            border_focused: Style::new().fg(Color::Cyan),
            changed: Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            error: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            next: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            key: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            heading: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            code: Style::new().fg(Color::Yellow),
            tab_active: Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        }
    }

    pub fn high_contrast() -> Theme {
        let bold = Modifier::BOLD;
        Theme {
            text: Style::new().fg(Color::White),
            muted: Style::new().fg(Color::Gray),
            title: Style::new().fg(Color::White).add_modifier(bold),
            border: Style::new().fg(Color::White),
            border_focused: Style::new().fg(Color::LightYellow).add_modifier(bold),
            changed: Style::new()
                .fg(Color::Black)
                .bg(Color::LightYellow)
                .add_modifier(bold),
            ok: Style::new().fg(Color::LightGreen).add_modifier(bold),
            warn: Style::new().fg(Color::LightMagenta).add_modifier(bold),
            error: Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(bold),
            next: Style::new().fg(Color::LightYellow).add_modifier(bold),
            selected: Style::new().add_modifier(Modifier::REVERSED | bold),
            key: Style::new().fg(Color::LightYellow).add_modifier(bold),
            heading: Style::new()
                .fg(Color::White)
                .add_modifier(bold | Modifier::UNDERLINED),
            code: Style::new().fg(Color::LightCyan),
            tab_active: Style::new().add_modifier(Modifier::REVERSED | bold),
        }
    }

    /// Modifiers only: bold, reversed, underlined, dim.
    pub fn mono() -> Theme {
        Theme {
            text: Style::new(),
            muted: Style::new().add_modifier(Modifier::DIM),
            title: Style::new().add_modifier(Modifier::BOLD),
            border: Style::new(),
            border_focused: Style::new().add_modifier(Modifier::BOLD),
            changed: Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ok: Style::new(),
            warn: Style::new().add_modifier(Modifier::BOLD),
            error: Style::new().add_modifier(Modifier::BOLD),
            next: Style::new().add_modifier(Modifier::BOLD),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            key: Style::new().add_modifier(Modifier::BOLD),
            heading: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            code: Style::new(),
            tab_active: Style::new().add_modifier(Modifier::REVERSED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_and_mono_has_no_colours() {
        assert_eq!(Theme::pick(ThemeName::HighContrast, true), Theme::mono());
        let mono = Theme::mono();
        for style in [
            mono.changed,
            mono.error,
            mono.next,
            mono.selected,
            mono.title,
            mono.text,
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
        assert_ne!(
            mono.changed, mono.text,
            "changed values stay visible without colour"
        );
    }
}
