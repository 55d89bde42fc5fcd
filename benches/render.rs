//! A full-frame render of the Lab tab at 160x50 on a `TestBackend`, after the whole
//! fixture tour (the fullest screen). Target (issue 3): median <= 1 ms.

use daemonlab::lessons::LessonSet;
use daemonlab::ui::fixtures;
use daemonlab::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() {
    divan::main();
}

#[divan::bench(args = [(160, 50), (120, 40), (80, 24)])]
fn full_frame(bencher: divan::Bencher, (width, height): (u16, u16)) {
    let app = fixtures::app_after(11, Theme::default_colors(), LessonSet::embedded());
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    bencher.bench_local(|| {
        terminal
            .draw(|frame| frame.render_widget(&app, frame.area()))
            .unwrap();
    });
}
