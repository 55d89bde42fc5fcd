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

/// Split `text` into rows of at most `width` characters at spaces; a word longer than a
/// row is split across rows.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let needed = row.chars().count() + usize::from(!row.is_empty()) + word.chars().count();
        if needed > width && !row.is_empty() {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.push_str(word);
        // A word wider than a row: cut it into full rows.
        while row.chars().count() > width {
            let head: String = row.chars().take(width).collect();
            row = row.chars().skip(width).collect();
            rows.push(head);
        }
    }
    rows.push(row);
    rows
}

#[cfg(test)]
mod tests {
    use super::{fit, wrap_words};

    #[test]
    fn wraps_at_spaces_within_the_width() {
        assert_eq!(
            wrap_words("no controlling terminal: no hangup can reach it", 20),
            ["no controlling", "terminal: no hangup", "can reach it"]
        );
        assert_eq!(wrap_words("short", 20), ["short"]);
        for row in wrap_words("a b c d e f g h i j k l m n o p", 5) {
            assert!(row.chars().count() <= 5, "{row}");
        }
        let long = wrap_words("socket:[123456789012345] x", 10);
        assert!(long.iter().all(|r| r.chars().count() <= 10), "{long:?}");
        assert_eq!(long.concat().replace(' ', ""), "socket:[123456789012345]x");
    }

    #[test]
    fn a_long_line_ends_in_an_ellipsis_and_fits() {
        assert_eq!(fit("short", 80), "short");
        let cut = fit(&"x".repeat(200), 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.ends_with('…'));
    }
}
