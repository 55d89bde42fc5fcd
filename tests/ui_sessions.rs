//! The session picture pane (`s`, in History's place) from the fixture tour: after steps
//! 0, 3, 4 and 6, in place at both sizes and zoomed, plus the styles insta does not record.

use daemonlab::lessons::LessonSet;
use daemonlab::ui::action::Action;
use daemonlab::ui::app::{App, Pane};
use daemonlab::ui::fixtures;
use daemonlab::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .unwrap();
    terminal
}

/// The app after step `step` (0-based, as the book counts) with the picture shown.
fn picture_after(step: usize, theme: Theme) -> App {
    let mut app = fixtures::app_after(step + 1, theme, LessonSet::embedded());
    app.update(Action::ToggleSessions);
    app
}

fn screen_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where `needle` starts on screen.
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    screen_text(buffer)
        .lines()
        .enumerate()
        .find_map(|(y, row)| {
            row.find(needle)
                .map(|byte| (row[..byte].chars().count() as u16, y as u16))
        })
}

#[test]
fn the_picture_after_steps_0_3_4_and_6() {
    for step in [0, 3, 4, 6] {
        let mut app = picture_after(step, Theme::default_colors());
        assert_eq!(app.focus, Pane::History, "s focuses the picture's slot");
        for (width, height) in [(120, 40), (80, 24)] {
            let terminal = draw(&app, width, height);
            insta::assert_snapshot!(
                format!("sessions_after_step_{step}_{width}x{height}"),
                terminal.backend()
            );
        }
        app.update(Action::Zoom);
        for (width, height) in [(120, 40), (80, 24)] {
            let terminal = draw(&app, width, height);
            let text = screen_text(terminal.backend().buffer());
            assert!(
                !text.contains("more lines below"),
                "zoomed, it fits: {text}"
            );
            insta::assert_snapshot!(
                format!("sessions_zoomed_after_step_{step}_{width}x{height}"),
                terminal.backend()
            );
        }
    }
}

#[test]
fn what_the_picture_says_at_each_step() {
    let zoomed = |step| {
        let mut app = picture_after(step, Theme::mono());
        app.update(Action::Zoom);
        screen_text(draw(&app, 80, 24).backend().buffer())
    };
    let start = zoomed(0);
    assert!(start.contains("session 4200 · terminal pts/3"), "{start}");
    assert!(
        start.contains("┏━ group 4201 · FOREGROUND of pts/3"),
        "{start}"
    );
    assert!(!start.contains("exited since"), "{start}");
    let fork = zoomed(3);
    assert!(fork.contains("┏━ group 4200 · FOREGROUND"), "{fork}");
    assert!(
        fork.contains("group 4201 · leader 4201 gone · ORPHANED"),
        "{fork}"
    );
    assert!(
        fork.contains("4201 daemonlab exited since the last step"),
        "{fork}"
    );
    assert!(fork.contains("outside the session: 1 (systemd)"), "{fork}");
    let setsid = zoomed(4);
    assert!(setsid.contains("session 4213 · no terminal"), "{setsid}");
    assert!(!setsid.contains("exited since"), "shown for one step only");
    let second = zoomed(6);
    assert!(
        second.contains("session 4213 · leader 4213 gone · no terminal"),
        "{second}"
    );
    assert!(second.contains("4213 daemonlab exited since"), "{second}");
}

#[test]
fn s_switches_back_and_the_picture_reads_without_colour() {
    let mut app = picture_after(3, Theme::default_colors());
    app.update(Action::ToggleSessions);
    let history = screen_text(draw(&app, 120, 40).backend().buffer());
    assert!(history.contains("History"), "{history}");
    assert!(!history.contains("ORPHANED"), "{history}");

    for theme in [Theme::default_colors(), Theme::mono()] {
        let app = picture_after(3, theme);
        let terminal = draw(&app, 120, 40);
        let buffer = terminal.backend().buffer();
        let (x, y) = find(buffer, "ORPHANED").expect("labelled");
        assert_eq!(
            buffer[(x, y)].style().fg,
            Some(theme.warn.fg.unwrap_or(Color::Reset))
        );
        assert!(
            buffer[(x, y)].style().add_modifier.contains(Modifier::BOLD),
            "the label stands out in monochrome too"
        );
        let (x, y) = find(buffer, "exited since").expect("the exited process");
        assert!(
            buffer[(x, y)]
                .style()
                .add_modifier
                .contains(Modifier::ITALIC),
            "the exited process is faded"
        );
    }
}
