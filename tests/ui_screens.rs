//! Whole-screen snapshots of the explorer on a `TestBackend`, fed with the fixture tour
//! (real PIDs vary), plus checks of the styles insta does not record.

use daemonlab::lessons::LessonSet;
use daemonlab::ui::action::{Action, LabEvent};
use daemonlab::ui::app::App;
use daemonlab::ui::fixtures;
use daemonlab::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .unwrap();
    terminal
}

fn app_after(steps: usize) -> App {
    fixtures::app_after(steps, Theme::default_colors(), LessonSet::embedded())
}

fn free_mode_with_eperm() -> App {
    let mut app = app_after(0);
    app.update(Action::ToggleFree);
    for _ in 0..4 {
        app.update(Action::SelectDown);
    }
    app.update(Action::RunSelected);
    app.handle_lab(LabEvent::StepDone {
        generation: 0,
        outcome: Box::new(fixtures::setsid_eperm()),
    });
    app
}

fn help() -> App {
    let mut app = app_after(2);
    app.update(Action::Help);
    app
}

/// The experiments menu opened from a lesson about an experiment that needs root.
fn experiments_menu() -> App {
    let mut app = app_after(8);
    let chdir = LessonSet::embedded()
        .lessons
        .iter()
        .position(|l| l.step == Some(daemonlab::lab::StepId::Chdir))
        .unwrap();
    app.guide = Some(chdir);
    app.update(Action::OpenExperiments);
    app
}

/// A named way to build one screen's state.
type Screen = (&'static str, fn() -> App);

/// Every screen the snapshots cover.
fn all_screens() -> [Screen; 14] {
    [
        ("processes_tab", || {
            fixtures::processes_demo(Theme::default_colors(), LessonSet::embedded())
        }),
        ("inspect_tab", || {
            fixtures::inspect_demo(Theme::default_colors(), LessonSet::embedded())
        }),
        ("locks_tab", || {
            fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded())
        }),
        ("after_step_0", || app_after(1)),
        ("after_setsid", || app_after(5)),
        ("after_last_step", || app_after(11)),
        ("after_step_8", || app_after(9)),
        ("syslog_messages", || {
            let mut app = app_after(11);
            fixtures::more_syslog(&mut app);
            app
        }),
        ("help_popup", help),
        ("free_mode_eperm", free_mode_with_eperm),
        ("experiments_menu", experiments_menu),
        ("run_held", || {
            fixtures::run_demo(Theme::default_colors(), LessonSet::embedded(), false)
        }),
        ("run_finished", || {
            fixtures::run_demo(Theme::default_colors(), LessonSet::embedded(), true)
        }),
        ("run_service", || {
            fixtures::service_demo(Theme::default_colors(), LessonSet::embedded())
        }),
    ]
}

/// Every screen the issue lists, at both sizes.
#[test]
fn screens() {
    let screens = all_screens();
    for (name, make) in screens {
        for (width, height) in [(120, 40), (80, 24), (160, 50)] {
            // 160×50 is the projector size the run view was laid out for.
            if width == 160 && !name.starts_with("run_") {
                continue;
            }
            let terminal = draw(&make(), width, height);
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend());
        }
    }
}

#[test]
fn too_small_terminal_asks_for_room_and_never_panics() {
    let app = app_after(3);
    let terminal = draw(&app, 60, 20);
    insta::assert_snapshot!("too_small_60x20", terminal.backend());
    for (w, h) in [(1, 1), (10, 5), (79, 24), (80, 23), (0, 0)] {
        draw(&app, w, h);
    }
}

/// Where `needle` starts on screen.
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buffer.area;
    for y in 0..area.height {
        let row: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        if let Some(byte) = row.find(needle) {
            let x = row[..byte].chars().count() as u16;
            return Some((x, y));
        }
    }
    None
}

#[test]
fn a_changed_field_is_highlighted_and_marked() {
    for theme in [
        Theme::default_colors(),
        Theme::high_contrast(),
        Theme::mono(),
    ] {
        let app = fixtures::app_after(2, theme, LessonSet::embedded());
        let terminal = draw(&app, 120, 40);
        let buffer = terminal.backend().buffer();
        let (x, y) = find(buffer, "0000*").expect("the new umask is marked with *");
        let cell = &buffer[(x, y)];
        // A cell with no colour set reports Color::Reset.
        assert_eq!(
            cell.style().fg,
            Some(theme.changed.fg.unwrap_or(Color::Reset))
        );
        assert_eq!(
            cell.style().bg,
            Some(theme.changed.bg.unwrap_or(Color::Reset))
        );
        assert!(
            cell.style()
                .add_modifier
                .contains(theme.changed.add_modifier),
            "{:?}",
            cell.style()
        );
        let (x, y) = find(buffer, "/home/student").expect("cwd shown");
        assert_ne!(
            buffer[(x, y)].style().add_modifier,
            theme.changed.add_modifier,
            "unchanged cwd is plain"
        );
    }
}

#[test]
fn the_next_step_and_a_failure_read_without_colour() {
    let app = fixtures::app_after(3, Theme::mono(), LessonSet::embedded());
    let terminal = draw(&app, 120, 40);
    let buffer = terminal.backend().buffer();
    assert!(find(buffer, "▶  3 fork, and the parent exits ◀ next").is_some());
    let mut app = free_mode_with_eperm();
    app.theme = Theme::mono();
    let terminal = draw(&app, 120, 40);
    assert!(
        find(
            terminal.backend().buffer(),
            "✗  4 start a new session EPERM"
        )
        .is_some()
    );
}

/// Rapid resizes: every screen at every size from 0×0 to 200×60 draws without a panic.
#[test]
fn every_screen_survives_every_size() {
    let mut experiments = app_after(3);
    experiments.update(Action::OpenExperiments);
    let apps = [
        app_after(11),
        help(),
        free_mode_with_eperm(),
        experiments,
        fixtures::locks_demo(Theme::mono(), LessonSet::embedded()),
        fixtures::processes_demo(Theme::mono(), LessonSet::embedded()),
        fixtures::inspect_demo(Theme::mono(), LessonSet::embedded()),
    ];
    for app in &apps {
        for width in (0..=200).step_by(13) {
            for height in (0..=60).step_by(5) {
                let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
                terminal
                    .draw(|frame| frame.render_widget(app, frame.area()))
                    .unwrap();
            }
        }
    }
}

#[test]
fn inspect_warnings_have_their_own_style_and_details_wrap_under_themselves() {
    for theme in [Theme::default_colors(), Theme::high_contrast()] {
        let app = fixtures::inspect_demo(theme, LessonSet::embedded());
        let terminal = draw(&app, 80, 30);
        let buffer = terminal.backend().buffer();
        let (x, y) = find(buffer, "! warn").expect("the open_fds warning");
        let style = buffer[(x, y)].style();
        assert_eq!(style.fg, theme.warn.fg);
        assert_ne!(
            style.fg, theme.heading.fg,
            "a warning must not look like a heading"
        );
        // The wrapped rest of a detail starts under the detail, not at the left border.
        let (detail_x, detail_y) = find(buffer, "fd 100 (socket)").unwrap();
        assert_eq!(detail_y, y);
        let next_row: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y + 1)].symbol().to_string())
            .collect();
        let first_word = next_row[3..].find(|c: char| c != ' ').unwrap() + 3;
        assert_eq!(
            next_row[..first_word].chars().count() as u16,
            detail_x,
            "the detail continues under itself: {next_row:?}"
        );
    }
}

#[test]
fn a_lock_table_too_long_for_its_pane_says_how_many_rows_are_hidden() {
    let mut app = fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded());
    app.tab = daemonlab::ui::app::Tab::Locks;
    let evidence = app.locks.evidence.as_mut().unwrap();
    let waiter = evidence.table.waiters[0].clone();
    for pid in 5000..5020 {
        let mut more = waiter.clone();
        more.pid = pid;
        evidence.table.waiters.push(more);
    }
    let total = evidence.table.holders.len() + evidence.table.waiters.len();
    let terminal = draw(&app, 120, 36);
    let buffer = terminal.backend().buffer();
    let (_, y) = find(buffer, "more not shown").expect("a hidden-rows line");
    let row: String = (0..60)
        .map(|x| buffer[(x, y)].symbol().to_string())
        .collect();
    let hidden: usize = row.split_whitespace().find_map(|w| w.parse().ok()).unwrap();
    let shown = (0..buffer.area.height)
        .filter(|&y| {
            let row: String = (0..12)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            row.contains("HOLDS") || row.contains("-> waits")
        })
        .count();
    assert_eq!(shown + hidden, total, "every row is shown or counted");
    // Nothing hidden, no such line.
    let app = fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded());
    let terminal = draw(&app, 120, 36);
    assert!(find(terminal.backend().buffer(), "more not shown").is_none());
}

#[test]
fn the_next_mark_is_never_cut_off() {
    for (width, height) in [(80, 24), (120, 36), (160, 50)] {
        for done in 0..11 {
            let app = app_after(done);
            let terminal = draw(&app, width, height);
            assert!(
                find(terminal.backend().buffer(), "◀ next").is_some(),
                "{width}x{height} after {done} steps: the next step's mark is cut"
            );
        }
    }
}

#[test]
fn the_terminal_pane_wraps_whole_lines_and_keeps_the_newest() {
    let app = app_after(3);
    let newest = app
        .terminal
        .last()
        .cloned()
        .expect("the subject printed something");
    let terminal = draw(&app, 120, 36);
    let buffer = terminal.backend().buffer();
    let (title_x, title_y) = find(buffer, "Terminal pts/").expect("the Terminal pane");
    // The title starts two cells after the pane's left corner ("┌ Terminal…").
    let left = title_x - 2;
    let right = (left + 1..buffer.area.width)
        .find(|&x| buffer[(x, title_y)].symbol() == "┐")
        .unwrap();
    let mut text = String::new();
    for y in title_y + 1..buffer.area.height {
        if buffer[(left, y)].symbol() == "└" {
            break;
        }
        let row: String = (left + 1..right)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push(' ');
        text.push_str(row.trim());
    }
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let newest = newest.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.ends_with(&newest),
        "the newest line, whole, at the bottom:\n{joined}\nwanted: {newest}"
    );
}

/// The screen's text, row by row, with trailing spaces trimmed.
fn rows(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Everything the help popup shows as it scrolls, at 80×24, as one line of words.
fn help_text(mut app: App) -> String {
    let mut seen = String::new();
    for _ in 0..30 {
        let terminal = draw(&app, 80, 24);
        // Inside the popup's border only; join wrapped rows with a space.
        // The popup is 76 wide, centred: its text runs from column 3 to 76.
        for row in rows(&terminal) {
            let inner: String = row.chars().skip(3).take(74).collect();
            seen.push_str(inner.trim());
            seen.push(' ');
        }
        app.update(Action::HelpScroll(5));
    }
    seen.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_scrolls_to_every_key_at_80x24_grouped_and_without_repeats() {
    use daemonlab::ui::keymap::{BINDINGS, When};
    let seen = help_text(help());
    let words = |b: &daemonlab::ui::keymap::Binding| {
        b.description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let run_only = [When::Traced, When::Timeline, When::Service];
    for binding in BINDINGS.iter().filter(|b| !run_only.contains(&b.when)) {
        assert!(
            seen.contains(&words(binding)),
            "help never shows {:?} at 80x24",
            binding.description
        );
    }
    // `daemonlab run`: its own keys and what changes the view, none of the lab's.
    let mut run = fixtures::run_demo(Theme::default_colors(), LessonSet::embedded(), false);
    run.update(Action::Help);
    let run_help = help_text(run);
    for binding in BINDINGS {
        let shown = run_help.contains(&words(binding));
        let wanted = matches!(
            binding.when,
            When::Always | When::Pane | When::Traced | When::Timeline
        );
        assert_eq!(
            shown, wanted,
            "daemonlab run's help and {:?} ({:?})",
            binding.description, binding.when
        );
    }
    for group in [
        "Everywhere",
        "Lab tab",
        "Locks tab",
        "Processes tab",
        "Inspect tab",
    ] {
        assert!(seen.contains(group), "no {group} heading");
    }
    let mut labels: Vec<(&str, &str)> = BINDINGS.iter().map(|b| (b.label, b.description)).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(
        labels.len(),
        BINDINGS.len(),
        "a row of the help is repeated"
    );
}

/// Every state that leaves a notice, at both sizes: the notice is on screen whole, wrapped
/// across the status rows if it must be, never cut with an ellipsis.
#[test]
fn every_notice_is_shown_whole() {
    let long_note = || {
        let mut app = app_after(4);
        // One of the longest notices the explorer writes: the hang-up's.
        app.handle_lab(LabEvent::Note {
            generation: 0,
            message: "hung up: pid 4213 survived — the hang-up took the terminal from its session: TTY ?, \
                      0/1/2 now on a dead terminal — details in the Process pane; r starts a new lab"
                .into(),
            error: false,
        });
        app
    };
    let states: [Screen; 4] = [
        ("free_mode_eperm", free_mode_with_eperm),
        ("long_note", long_note),
        ("locks_tab", || {
            let mut app = fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded());
            app.update(Action::KillHolder);
            app
        }),
        ("toggle_free", || {
            let mut app = app_after(3);
            app.update(Action::ToggleFree);
            app
        }),
    ];
    for (name, make) in states {
        let app = make();
        let text = app.notice.as_ref().expect("a notice").text.clone();
        let want = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for (width, height) in [(120, 40), (80, 24)] {
            let terminal = draw(&app, width, height);
            let screen = rows(&terminal).join(" ");
            let screen = screen.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                screen.contains(&want),
                "{name} at {width}x{height}: the notice is not whole on screen:\n{want}\n{}",
                rows(&terminal).join("\n")
            );
        }
    }
}

/// No screen shows a Rust Debug form or a step's code id where words belong.
#[test]
fn no_screen_shows_code_forms() {
    let screens = all_screens();
    let forbidden = [
        "Some(",
        "None)",
        "..=",
        "{ status:",
        "Exited {",
        "second_fork",
        "dev_null",
        "ignore_sighup",
        "close_fds",
        "Step 0: ",
    ];
    for (name, make) in screens {
        for (width, height) in [(120, 40), (80, 24)] {
            let screen = rows(&draw(&make(), width, height)).join("\n");
            for form in forbidden {
                assert!(
                    !screen.contains(form),
                    "{name} at {width}x{height} shows {form:?}:\n{screen}"
                );
            }
        }
    }
}

#[test]
fn inspect_scrolls_to_every_check_at_80x24() {
    let mut app = fixtures::inspect_demo(Theme::default_colors(), LessonSet::embedded());
    let ids: Vec<String> = app
        .inspect
        .audit
        .as_ref()
        .unwrap()
        .checks
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let first = rows(&draw(&app, 80, 24)).join("\n");
    let mut seen = first.clone();
    for _ in 0..40 {
        app.update(Action::SelectDown);
        seen.push_str(&rows(&draw(&app, 80, 24)).join("\n"));
    }
    for id in &ids {
        assert!(
            seen.contains(id.as_str()),
            "check {id} never on screen at 80x24"
        );
    }
    if ids.iter().any(|id| !first.contains(id.as_str())) {
        assert!(
            first.contains("↓ PgDn for more"),
            "the title says there is more:\n{first}"
        );
    }
}

#[test]
fn p_and_z_work_on_the_locks_tab_and_in_the_experiments_menu() {
    let mut app = fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded());
    app.update(Action::FocusNext);
    app.update(Action::Zoom);
    let screen = rows(&draw(&app, 80, 24)).join("\n");
    assert!(screen.contains("▸ Contenders"), "{screen}");
    assert!(!screen.contains("(APUE 13.5)"), "zoomed:\n{screen}");
    app.update(Action::Back);
    let screen = rows(&draw(&app, 80, 24)).join("\n");
    assert!(screen.contains("(APUE 13.5)"), "Esc unzooms:\n{screen}");

    let mut app = experiments_menu();
    let framed = rows(&draw(&app, 80, 24));
    app.update(Action::Zoom);
    let zoomed = rows(&draw(&app, 80, 24));
    assert!(app.experiments.open && app.experiments.zoomed);
    assert!(
        zoomed[1].starts_with("┌ Experiments"),
        "the menu takes the whole body:\n{}",
        zoomed.join("\n")
    );
    assert_ne!(framed, zoomed);
}

#[test]
fn lock_waiters_come_before_the_footnote() {
    use daemonlab::locks::{Evidence, LockTable, proc_locks};
    let mut app = fixtures::locks_demo(Theme::default_colors(), LessonSet::embedded());
    let mut text = "1: POSIX  ADVISORY  WRITE 5301 00:1f:2047 0 EOF\n".to_string();
    for pid in 5302..5307 {
        text.push_str(&format!(
            "1: -> POSIX  ADVISORY  WRITE {pid} 00:1f:2047 0 EOF\n"
        ));
    }
    let (waiters, holders) = proc_locks::parse(&text).into_iter().partition(|e| e.waiter);
    app.locks.evidence = Some(Evidence {
        table: LockTable { holders, waiters },
        note: Some("a long footnote about how to read the table, ".repeat(6)),
        ..Evidence::default()
    });
    let screen = rows(&draw(&app, 80, 24)).join("\n");
    for pid in 5301..5307 {
        assert!(
            screen.contains(&pid.to_string()),
            "pid {pid} hidden behind the footnote:\n{screen}"
        );
    }
}

/// `text` without any whitespace: a sentence wrapped across rows (even inside a word, as
/// a long path is) compares equal to itself written on one line.
fn squash(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The text inside the borders of the pane whose title contains `title`, row by row,
/// or `None` when no such pane is on screen.
fn pane_rows(buffer: &Buffer, title: &str) -> Option<Vec<String>> {
    let (title_x, y) = find(buffer, title)?;
    let symbol = |x: u16, y: u16| buffer[(x, y)].symbol().to_string();
    let left = (0..title_x)
        .rev()
        .find(|&x| "┌┏├┣".contains(symbol(x, y).as_str()))?;
    let right = (title_x..buffer.area.width).find(|&x| "┐┓┤┫".contains(symbol(x, y).as_str()))?;
    let mut rows = Vec::new();
    for row in y + 1..buffer.area.height {
        if !"│┃".contains(symbol(left, row).as_str()) {
            break;
        }
        rows.push((left + 1..right).map(|x| symbol(x, row)).collect());
    }
    Some(rows)
}

/// The whole text of a pane: its rows and the titles on its borders.
fn pane_text(buffer: &Buffer, title: &str) -> Option<String> {
    pane_rows(buffer, title).map(|rows| rows.join(" "))
}

/// The lesson's heading and "Look for:" paragraph, with the list that follows it.
fn look_for(app: &App) -> Option<String> {
    use daemonlab::lessons::Block;
    let lesson = app.shown_lesson()?;
    let text = |spans: &[daemonlab::lessons::Span]| {
        spans.iter().map(|s| s.text.as_str()).collect::<String>()
    };
    let mut blocks = lesson.body.iter().skip_while(|b| match b {
        Block::Paragraph(spans) => !text(spans).starts_with("Look for:"),
        _ => true,
    });
    let mut out = match blocks.next()? {
        Block::Paragraph(spans) => text(spans),
        _ => unreachable!(),
    };
    for block in blocks {
        match block {
            Block::ListItem { spans, .. } => out.push_str(&text(spans)),
            _ => break,
        }
    }
    Some(out)
}

/// After every step, at 80×24 and 120×40, nothing the explorer says is cut: the last step's
/// result in the Process pane, the status line, every footer hint, the Process pane's
/// legend, the Syslog pane's hints when it shows them, the lesson's "Look for:".
#[test]
fn every_sentence_is_shown_whole_after_every_step() {
    use daemonlab::ui::keymap;
    let mut failures = Vec::new();
    // Each state with what its status line says.
    let mut states: Vec<(String, App, String)> = (1..=11)
        .map(|steps| {
            let app = app_after(steps);
            let status = match &app.notice {
                Some(notice) => notice.text.clone(),
                None => {
                    let next = daemonlab::lab::STEPS[steps].short;
                    format!("next: {steps} {next} — press Space")
                }
            };
            (format!("after step {}", steps - 1), app, status)
        })
        .collect();
    let eperm = free_mode_with_eperm();
    let status = eperm.notice.as_ref().unwrap().text.clone();
    states.push(("free mode after EPERM".into(), eperm, status));
    for (name, app, status) in &states {
        for (width, height) in [(80, 24), (120, 40)] {
            let terminal = draw(app, width, height);
            let buffer = terminal.backend().buffer();
            let screen = rows(&terminal);
            let at = format!("{name} at {width}x{height}");
            let process = pane_text(buffer, "Process ").unwrap_or_default();
            let result = format!("last step {}", app.last_result.as_deref().unwrap());
            if !squash(&process).contains(&squash(&result)) {
                failures.push(format!("{at}: the result is not whole: {result}"));
            }
            let legend = "* changed by the last step";
            if !screen.iter().any(|row| row.contains(legend)) {
                failures.push(format!("{at}: no legend {legend:?}"));
            }
            for (label, hint) in keymap::hints(app.key_context()) {
                let hint = format!("{label} {hint}");
                if !screen.iter().any(|row| row.contains(&hint)) {
                    failures.push(format!("{at}: the footer hint {hint:?} is not whole"));
                }
            }
            if !squash(&screen.join(" ")).contains(&squash(status)) {
                failures.push(format!("{at}: the status is not whole: {status}"));
            }
            if let Some(syslog) = pane_text(buffer, "Syslog") {
                let path = "logger -u /run/user/1000/daemonlab-demo/log hello";
                if syslog.contains("try:") && !squash(&syslog).contains(&squash(path)) {
                    failures.push(format!("{at}: the logger hint is cut"));
                }
                let keys = "L log (err) · O options · M mask · S stop";
                if syslog.contains("L log") && !squash(&syslog).contains(&squash(keys)) {
                    failures.push(format!("{at}: the syslog keys are cut"));
                }
            }
            // The bullets of a list are the pane's, not the lesson's text.
            let lesson = pane_text(buffer, "Lesson")
                .unwrap_or_default()
                .replace('•', "");
            let want = look_for(app).unwrap();
            if !squash(&lesson).contains(&squash(&want)) {
                failures.push(format!("{at}: \"Look for\" is not whole: {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every descriptor of the fixture's list is on screen, number and target, after every
/// step at 80×24 and 120×40, and so is a long list of inherited ones; History keeps its
/// last three rows while the list is the fixture's.
#[test]
fn the_process_pane_shows_every_descriptor_after_every_step() {
    use daemonlab::probe::FdEntry;
    let mut failures = Vec::new();
    for steps in 1..=11 {
        let plain = app_after(steps);
        let mut inherited = app_after(steps);
        if let Some(fds) = inherited.process.as_mut().and_then(|p| p.fds.as_mut()) {
            for fd in (3..10).chain(11..13).chain([251]) {
                fds.push(FdEntry {
                    fd,
                    target: format!("pipe:[{}]", 90000 + fd),
                    cloexec: false,
                    lock_lines: None,
                });
            }
            fds.sort_by_key(|f| f.fd);
        }
        for (app, long) in [(&plain, false), (&inherited, true)] {
            for (width, height) in [(80, 24), (120, 40)] {
                let terminal = draw(app, width, height);
                let buffer = terminal.backend().buffer();
                let at = format!(
                    "after step {} at {width}x{height}{}",
                    steps - 1,
                    if long { " with inherited fds" } else { "" }
                );
                let process = squash(&pane_text(buffer, "Process ").unwrap_or_default());
                for fd in app.process.as_ref().unwrap().fds.as_ref().unwrap() {
                    let entry = squash(&format!("{}→{}", fd.fd, fd.target));
                    if !process.contains(&entry) {
                        failures.push(format!("{at}: fd {} is not on screen", fd.fd));
                    }
                }
                if long {
                    continue;
                }
                let history = pane_rows(buffer, "History").unwrap_or_default();
                let shown = history
                    .iter()
                    .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                    .count();
                if shown < app.history.len().min(3) {
                    failures.push(format!("{at}: History shows {shown} rows"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// With three messages or more, the Syslog pane shows at least three at 80×24, after
/// every step, and at 120×40 too.
#[test]
fn the_syslog_pane_shows_three_messages_after_every_step() {
    let mut failures = Vec::new();
    for steps in 1..=11 {
        let mut app = app_after(steps);
        fixtures::more_syslog(&mut app);
        for (width, height) in [(80, 24), (120, 40)] {
            let terminal = draw(&app, width, height);
            let at = format!("after step {} at {width}x{height}", steps - 1);
            let Some(syslog) = pane_text(terminal.backend().buffer(), "Syslog") else {
                failures.push(format!("{at}: no Syslog pane"));
                continue;
            };
            let shown = ["10:00:04", "10:00:07", "10:00:09"]
                .iter()
                .filter(|clock| syslog.contains(*clock))
                .count();
            if shown < 3 {
                failures.push(format!("{at}: {shown} of the last 3 messages:\n{syslog}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The session picture says how to see what does not fit, in words that are never cut.
#[test]
fn the_session_picture_says_whole_how_to_see_the_rest() {
    for steps in 1..=11 {
        let mut app = app_after(steps);
        app.update(Action::ToggleSessions);
        for (width, height) in [(80, 24), (120, 40)] {
            let screen = rows(&draw(&app, width, height));
            if let Some(row) = screen.iter().find(|r| r.contains("more lines below")) {
                assert!(
                    row.contains("more lines below: z zooms the picture"),
                    "after step {} at {width}x{height}: {row}",
                    steps - 1
                );
            }
        }
    }
}
