//! Tests of the shipped lessons and of loading a teacher's directory. Markdown details
//! are tested in `markdown.rs`.

use std::fs;
use std::path::Path;

use super::*;
use crate::lab::{STEPS, StepId};

/// A sound lesson file for `step`, with `id`.
fn lesson(id: &str, step: Option<&str>) -> String {
    let step = step
        .map(|s| format!("step = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        "+++\nid = \"{id}\"\ntitle = \"A title\"\nsection = \"13.3\"\n{step}+++\n\nSome *text*.\n"
    )
}

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The errors for a directory that must fail to load.
fn errors_of(dir: &Path) -> Vec<LessonError> {
    match LessonSet::load_dir(dir) {
        Ok(set) => panic!("expected errors, loaded {} lessons", set.lessons.len()),
        Err(errors) => errors,
    }
}

/// The single error a directory holding one broken file gives.
fn only_error(name: &str, text: &[u8]) -> LessonError {
    let dir = dir_with(&[(name, text)]);
    let mut errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors.remove(0);
    assert_eq!(
        Path::new(&error.file),
        dir.path().join(name),
        "the error names the file: {error}"
    );
    error
}

fn shipped() -> LessonSet {
    LessonSet::from_sources(EMBEDDED).unwrap_or_else(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("shipped lessons are broken:\n{}", text.join("\n"))
    })
}

#[test]
fn every_embedded_lesson_parses() {
    assert!(!EMBEDDED.is_empty(), "build.rs embedded no lessons");
    let set = shipped();
    assert_eq!(set.lessons.len(), EMBEDDED.len());
    assert_eq!(LessonSet::embedded(), set);
    let names: Vec<&str> = set.lessons.iter().map(|l| l.file.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "lessons are sorted by file name");
}

#[test]
fn every_step_has_exactly_one_lesson() {
    let set = shipped();
    for info in STEPS.iter() {
        let count = set
            .lessons
            .iter()
            .filter(|l| l.step == Some(info.id))
            .count();
        assert_eq!(count, 1, "step {} has {count} lessons", info.id.name());
        assert_eq!(set.for_step(info.id).unwrap().step, Some(info.id));
    }
    assert!(set.steps_without_lesson().is_empty());
}

#[test]
fn shipped_ids_are_unique_and_found_by_get() {
    let set = shipped();
    for (i, lesson) in set.lessons.iter().enumerate() {
        assert!(
            set.lessons[i + 1..]
                .iter()
                .all(|other| other.id != lesson.id),
            "id {} is used twice",
            lesson.id
        );
        assert_eq!(set.get(&lesson.id), Some(lesson));
    }
    assert_eq!(set.get("no-such-lesson"), None);
}

/// The shape every step lesson promises: the step's section, a "Look for:" part first,
/// the call as code that fits the Lesson pane at 120×40 (40 columns, 2 of them indent),
/// and a short body. The whole lesson fitting that pane is tests/lessons_fit.rs's check.
#[test]
fn step_lessons_follow_the_house_rules() {
    for lesson in shipped().lessons.iter() {
        let Some(step) = lesson.step else { continue };
        let file = &lesson.file;
        let number: u8 = file[..2].parse().unwrap();
        assert_eq!(
            number,
            10 + step.info().index,
            "{file}: step lessons are numbered 10 to 20"
        );
        assert_eq!(lesson.section, step.info().section, "{file}");
        assert!(
            lesson.body.first().is_some_and(|block| match block {
                Block::Paragraph(spans) => spans
                    .first()
                    .is_some_and(|s| s.style.bold && s.text == "Look for:"),
                _ => false,
            }),
            "{file}: needs a **Look for:** paragraph, first"
        );
        assert!(
            lesson
                .body
                .iter()
                .any(|b| matches!(b, Block::Code { lang: Some(l), .. } if l == "c" || l == "rust")),
            "{file}: needs a c or rust code block"
        );
        let mut words = 0;
        for block in &lesson.body {
            match block {
                Block::Code { text, .. } => {
                    for line in text.lines() {
                        assert!(line.chars().count() <= 38, "{file}: code too wide: {line}");
                    }
                }
                Block::Heading { spans, .. }
                | Block::Paragraph(spans)
                | Block::Quote(spans)
                | Block::ListItem { spans, .. } => {
                    words += spans
                        .iter()
                        .map(|s| s.text.split_whitespace().count())
                        .sum::<usize>();
                }
                Block::Rule => {}
            }
        }
        assert!(
            (60..=160).contains(&words),
            "{file}: {words} words of prose, want 60 to 160"
        );
    }
}

#[test]
fn a_good_directory_loads_and_for_step_finds_the_override() {
    let fork = lesson("my-fork", Some("fork"));
    let intro = lesson("intro", None);
    let dir = dir_with(&[
        ("13-fork.md", fork.as_bytes()),
        ("01-intro.md", intro.as_bytes()),
        ("notes.txt", b"not a lesson"),
        (".#13-fork.md", b"an editor's lock file"),
    ]);
    fs::create_dir(dir.path().join("drafts.md")).unwrap();
    let set = LessonSet::load_dir(dir.path()).unwrap();
    let files: Vec<&str> = set.lessons.iter().map(|l| l.file.as_str()).collect();
    assert_eq!(files, ["01-intro.md", "13-fork.md"]);
    let found = set.for_step(StepId::Fork).unwrap();
    assert_eq!(found.id, "my-fork");
    assert_eq!(found.title, "A title");
    assert_eq!(found.section, "13.3");
    assert_eq!(found.markdown, "\nSome *text*.\n");
    assert_eq!(set.for_step(StepId::Setsid), None);
    assert_eq!(set.get("intro").unwrap().step, None);
    assert_eq!(check_dir(dir.path()), Ok(2));
    assert_eq!(set.steps_without_lesson().len(), STEPS.len() - 1);
}

#[test]
fn overlay_replaces_by_step_id_or_file_and_keeps_the_rest() {
    let teacher = LessonSet::from_sources(&[
        ("99-my-fork.md", &lesson("my-fork", Some("fork"))),
        ("01-intro.md", &lesson("intro", None)),
    ])
    .unwrap();
    let set = LessonSet::embedded().overlay(teacher);
    assert_eq!(set.for_step(StepId::Fork).unwrap().id, "my-fork");
    assert_eq!(set.get("step-fork"), None);
    assert_eq!(set.for_step(StepId::Setsid).unwrap().id, "step-setsid");
    assert_eq!(set.lessons.len(), EMBEDDED.len() + 1);
    assert_eq!(set.lessons[0].file, "01-intro.md");
    assert!(set.steps_without_lesson().is_empty());
}

#[test]
fn missing_front_matter_points_at_line_1() {
    let e = only_error("13-fork.md", b"# Fork\n\ntext\n");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("no front matter"), "{e}");
    assert!(e.message.contains("\"# Fork\""), "{e}");
    let e = only_error("13-fork.md", b"");
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn unterminated_front_matter_points_at_its_start() {
    let e = only_error("13-fork.md", b"+++\nid = \"a\"\ntitle = \"b\"\n\nbody\n");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("never closed"), "{e}");
}

#[test]
fn bad_toml_points_at_the_bad_line() {
    let text = "+++\nid = \"a\"\ntitle = \"open quote\nsection = \"13.3\"\n+++\n";
    let e = only_error("13-fork.md", text.as_bytes());
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("not valid TOML"), "{e}");
}

#[test]
fn unknown_keys_are_named_at_their_line() {
    let text = "+++\nid = \"a\"\ntitle = \"b\"\nsection = \"13.3\"\nsetp = \"fork\"\n+++\n";
    let e = only_error("13-fork.md", text.as_bytes());
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("unknown key `setp`"), "{e}");
}

#[test]
fn missing_fields_are_each_reported_at_the_front_matter_start() {
    let dir = dir_with(&[("13-fork.md", b"+++\nid = \"a\"\n+++\nbody\n")]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|e| e.line == 1));
    assert!(errors[0].message.contains("no `title`"), "{}", errors[0]);
    assert!(errors[1].message.contains("no `section`"), "{}", errors[1]);
}

#[test]
fn wrong_types_and_bad_values_point_at_their_lines() {
    let text = "+++\nid = \"two words\"\ntitle = \"b\"\nsection = 13.3\n+++\n";
    let dir = dir_with(&[("13-fork.md", text.as_bytes())]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].message.contains("one word"), "{}", errors[0]);
    assert_eq!(errors[1].line, 4);
    assert!(
        errors[1].message.contains("is a float, not a string"),
        "{}",
        errors[1]
    );
    let e = only_error(
        "13-fork.md",
        b"+++\nid = \"a\"\ntitle = \"b\"\nsection = \"13.x\"\n+++\n",
    );
    assert_eq!(e.line, 4);
}

#[test]
fn an_experiment_key_names_a_real_experiment() {
    let text =
        "+++\nid = \"a\"\ntitle = \"b\"\nsection = \"13.3\"\nexperiment = \"no-setsid\"\n+++\n";
    let set = LessonSet::from_sources(&[("14-x.md", text)]).unwrap();
    assert_eq!(
        set.lessons[0].experiment,
        Some(crate::lab::experiments::Experiment::NoSetsid)
    );
    let text = text.replace("no-setsid", "no-set-sid");
    let e = only_error("14-x.md", text.as_bytes());
    assert_eq!(e.line, 5, "{e}");
    assert!(
        e.message.contains("unknown experiment \"no-set-sid\""),
        "{e}"
    );
    for experiment in crate::lab::experiments::Experiment::ALL {
        assert!(e.message.contains(experiment.name()), "{e}");
    }
    let text = text.replace("\"no-set-sid\"", "3");
    let e = only_error("14-x.md", text.as_bytes());
    assert!(e.message.contains("`experiment` is an integer"), "{e}");
}

#[test]
fn unknown_step_lists_the_valid_ids() {
    let text = "+++\nid = \"a\"\ntitle = \"b\"\nsection = \"13.3\"\nstep = \"forks\"\n+++\n";
    let e = only_error("13-fork.md", text.as_bytes());
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("unknown step \"forks\""), "{e}");
    for info in STEPS.iter() {
        assert!(e.message.contains(info.id.name()), "{e}");
    }
    // Only names: the index that StepId::parse also accepts is not a lesson's step.
    let text = text.replace("forks", "3");
    assert!(
        only_error("13-fork.md", text.as_bytes())
            .message
            .contains("unknown step")
    );
}

#[test]
fn duplicate_ids_name_both_files() {
    let dir = dir_with(&[
        ("13-fork.md", lesson("same", Some("fork")).as_bytes()),
        ("14-setsid.md", lesson("same", Some("setsid")).as_bytes()),
    ]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(Path::new(&e.file), dir.path().join("14-setsid.md"));
    assert_eq!(e.line, 2);
    assert!(e.message.contains("13-fork.md"), "{e}");
}

#[test]
fn two_lessons_for_one_step_name_both_files() {
    let dir = dir_with(&[
        ("13-fork.md", lesson("a", Some("fork")).as_bytes()),
        ("30-fork-again.md", lesson("b", Some("fork")).as_bytes()),
    ]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(Path::new(&e.file), dir.path().join("30-fork-again.md"));
    assert_eq!(e.line, 5);
    assert!(e.message.contains("13-fork.md"), "{e}");
}

#[test]
fn non_utf8_points_at_the_line_of_the_first_bad_byte() {
    let mut text = lesson("a", None).into_bytes();
    text.extend_from_slice(b"caf\xe9\n");
    let e = only_error("13-fork.md", &text);
    assert_eq!(e.line, 8, "{e}");
    assert!(
        e.message.contains("not UTF-8") && e.message.contains("column 4"),
        "{e}"
    );
}

#[test]
fn an_unreadable_file_is_reported() {
    // A dangling symlink fails to open even for root, unlike a mode-000 file.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("13-fork.md")).unwrap();
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(Path::new(&errors[0].file), dir.path().join("13-fork.md"));
    assert_eq!(errors[0].line, 1);
    assert!(errors[0].message.contains("cannot read"), "{}", errors[0]);
}

#[test]
fn a_fifo_named_like_a_lesson_is_refused_without_hanging_and_the_rest_still_checked() {
    let dir = dir_with(&[
        ("13-fork.md", lesson("fork", None).as_bytes()),
        ("14-broken.md", b"no front matter\n"),
    ]);
    let fifo = dir.path().join("x.md");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // On a thread, so a regression fails the test instead of hanging it.
    let path = dir.path().to_path_buf();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(LessonSet::load_dir(&path).map(|s| s.lessons.len()));
    });
    let errors = result
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("loading a directory with a FIFO in it hung")
        .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].file.ends_with("14-broken.md"), "{errors:#?}");
    assert_eq!(Path::new(&errors[1].file), fifo);
    assert!(
        errors[1].message.contains("x.md is a FIFO"),
        "{}",
        errors[1]
    );
    assert!(
        errors[1].message.contains("nothing was read"),
        "{}",
        errors[1]
    );
}

#[test]
fn a_file_over_the_limit_is_refused() {
    let mut text = lesson("a", None).into_bytes();
    text.resize(MAX_LESSON_BYTES as usize + 1, b'x');
    let e = only_error("13-fork.md", &text);
    assert_eq!(e.line, 1);
    assert!(e.message.contains("256 KiB"), "{e}");
    // Exactly at the limit is fine.
    text.truncate(MAX_LESSON_BYTES as usize);
    let dir = dir_with(&[("13-fork.md", &text)]);
    assert!(LessonSet::load_dir(dir.path()).is_ok());
}

#[test]
fn missing_and_empty_directories_are_errors() {
    let dir = dir_with(&[("README.txt", b"no lessons")]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, dir.path().display().to_string());
    assert_eq!(errors[0].line, 0);
    assert!(
        errors[0].message.contains("no lesson files"),
        "{}",
        errors[0]
    );

    let gone = dir.path().join("nope");
    let errors = check_dir(&gone).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, gone.display().to_string());
    assert!(
        errors[0]
            .message
            .contains("cannot read the lesson directory")
    );
}

#[test]
fn every_error_in_a_directory_is_reported_in_file_order() {
    let dir = dir_with(&[
        ("30-c.md", b"no front matter"),
        ("10-a.md", b"+++\nid = \"a\"\n+++\n"),
        ("20-b.md", lesson("b", Some("nope")).as_bytes()),
    ]);
    let errors = check_dir(dir.path()).unwrap_err();
    let places: Vec<(String, usize)> = errors
        .iter()
        .map(|e| {
            let name = Path::new(&e.file).file_name().unwrap();
            (name.to_string_lossy().into_owned(), e.line)
        })
        .collect();
    assert_eq!(
        places,
        [
            ("10-a.md".to_string(), 1),
            ("10-a.md".to_string(), 1),
            ("20-b.md".to_string(), 5),
            ("30-c.md".to_string(), 1),
        ]
    );
    let shown = errors[2].to_string();
    assert!(
        shown.starts_with(&format!("{}:5: unknown step", errors[2].file)),
        "{shown}"
    );
}

#[test]
fn crlf_and_a_byte_order_mark_are_accepted() {
    let text = "\u{feff}+++\r\nid = \"a\"\r\ntitle = \"b\"\r\nsection = \"13.3\"\r\n+++\r\nHi\r\n";
    let lesson = Lesson::parse("x.md", text).unwrap();
    assert_eq!(lesson.id, "a");
    assert_eq!(
        lesson.body,
        vec![Block::Paragraph(vec![Span {
            text: "Hi".into(),
            style: SpanStyle::default()
        }])]
    );
}

#[test]
fn a_parsed_lesson_snapshot() {
    let text = "+++\nid = \"demo\"\ntitle = \"Demo\"\nsection = \"13.3\"\nstep = \"setsid\"\n+++\n\n\
                ## Why\n\nA *session* has **one** leader; see `setsid()` and\n\
                [setsid(2)](https://man7.org/linux/man-pages/man2/setsid.2.html).\n\n\
                **Look for:**\n\n- SID\n  1. equals PID\n- TTY is `?`\n\n\
                > A quote.\n\n---\n\n```c\nsetsid();\n```\n";
    let lesson = Lesson::parse("14-demo.md", text).unwrap();
    insta::assert_debug_snapshot!(lesson);
}
