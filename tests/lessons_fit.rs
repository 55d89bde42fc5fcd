//! Every lesson fits its pane beside the process: drawn with the real App on a 120×40
//! `TestBackend`, its "Look for:" line is in the Lesson pane without scrolling, nothing
//! is left below the fold, and no code line is wider than the pane.

use daemonlab::lessons::{Block, LessonSet};
use daemonlab::ui::app::App;
use daemonlab::ui::fixtures;
use daemonlab::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
/// The Lab tab's left column at 120 columns (Steps above Lesson), borders included.
const LEFT_COLUMN: u16 = 42;
/// The Lesson pane's width inside its borders; code is indented by 2 within it.
const PANE_COLUMNS: usize = LEFT_COLUMN as usize - 2;

/// The left column's rows as text, from the Lesson pane's title row down, drawn with
/// lesson `i` in the pane (the guided tour shows lessons by their place in the list).
fn lesson_pane(lessons: &LessonSet, i: usize) -> Vec<String> {
    let mut app: App = fixtures::app_after(1, Theme::default_colors(), lessons.clone());
    app.guide = Some(i);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(&app, frame.area()))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let rows: Vec<String> = (0..HEIGHT)
        .map(|y| (0..LEFT_COLUMN).map(|x| buffer[(x, y)].symbol()).collect())
        .collect();
    let title = rows
        .iter()
        .position(|r| r.contains("Guided tour"))
        .expect("the Lesson pane is on screen, titled by the guided tour");
    rows[title..].to_vec()
}

#[test]
fn every_lesson_fits_its_pane_with_look_for_in_view() {
    let lessons = LessonSet::embedded();
    let mut problems = Vec::new();
    for (i, lesson) in lessons.lessons.iter().enumerate() {
        let pane = lesson_pane(&lessons, i);
        if lesson.markdown.contains("Look for:") && !pane.iter().any(|r| r.contains("Look for:")) {
            problems.push(format!("{}: \"Look for:\" is below the fold", lesson.file));
        }
        // The pane puts "↓ PgDn" in its title when text is left below.
        if pane[0].contains("PgDn") {
            problems.push(format!(
                "{}: does not fit, the learner must scroll",
                lesson.file
            ));
        }
        for block in &lesson.body {
            let Block::Code { text, .. } = block else {
                continue;
            };
            for line in text.lines() {
                if line.chars().count() + 2 > PANE_COLUMNS {
                    problems.push(format!("{}: code wider than the pane: {line}", lesson.file));
                }
            }
        }
    }
    assert!(problems.is_empty(), "at 120×40:\n{}", problems.join("\n"));
}
