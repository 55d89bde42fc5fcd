//! One file per screen region.

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
pub mod steps;
pub mod syslog;
pub mod terminal;

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

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn a_long_line_ends_in_an_ellipsis_and_fits() {
        assert_eq!(fit("short", 80), "short");
        let cut = fit(&"x".repeat(200), 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.ends_with('…'));
    }
}
