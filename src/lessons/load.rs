//! Reading a lesson directory and the checks that span files: unique ids, one lesson
//! per step. Every problem is collected so a teacher sees them all in one run.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::front_matter::{self, Parsed};
use super::{LessonError, LessonSet, MAX_LESSON_BYTES};
use crate::lab::StepId;

/// What `--lessons DIR` should point at, for the end of directory errors.
const DIR_HINT: &str = "give the path of a directory of lesson files named like 13-fork.md";

pub(super) fn load_dir(dir: &Path) -> Result<LessonSet, Vec<LessonError>> {
    let dir_label = dir.display().to_string();
    let dir_error = |message: String| {
        vec![LessonError {
            file: dir_label.clone(),
            line: 0,
            message,
        }]
    };
    let entries = fs::read_dir(dir).map_err(|e| {
        dir_error(format!(
            "cannot read the lesson directory: {e} — {DIR_HINT}"
        ))
    })?;

    let mut errors = Vec::new();
    let mut names = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.extend(dir_error(format!(
                    "cannot list the lesson directory: {e} — check its permissions"
                )));
                continue;
            }
        };
        let name = entry.file_name();
        let bytes = name.as_encoded_bytes();
        if !bytes.ends_with(b".md") || bytes.starts_with(b".") {
            continue;
        }
        // Follow symlinks: a link to a lesson counts, a directory named x.md does not.
        if fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    if names.is_empty() && errors.is_empty() {
        return Err(dir_error(format!(
            "no lesson files here (files ending in .md; others are ignored) — {DIR_HINT}"
        )));
    }

    let mut texts = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let label = path.display().to_string();
        match read_lesson(&path, &label) {
            Ok(text) => texts.push((label, name.to_string_lossy().into_owned(), text)),
            Err(e) => errors.push(e),
        }
    }
    match from_texts(texts) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            sort(&mut errors);
            Err(errors)
        }
    }
}

/// The text of one lesson file, refusing what cannot be a lesson.
fn read_lesson(path: &Path, label: &str) -> Result<String, LessonError> {
    let error = |line: usize, message: String| LessonError {
        file: label.to_string(),
        line,
        message,
    };
    let too_big = |size: u64| {
        error(
            1,
            format!(
                "the file is {} KiB, over the {} KiB limit for a lesson — split it into \
                 shorter lessons",
                size.div_ceil(1024),
                MAX_LESSON_BYTES / 1024
            ),
        )
    };
    let unreadable = |e: std::io::Error| {
        error(
            1,
            format!("cannot read the file: {e} — check that it exists and you may read it"),
        )
    };
    let not_a_file = |kind: std::fs::FileType| {
        error(
            1,
            format!(
                "{} is {}, not a lesson file — nothing was read from it; remove it, or rename \
                 it so its name does not end in .md",
                name_of(path),
                kind_words(kind)
            ),
        )
    };
    // Refuse by type before opening (stat follows a symlink to a lesson, which is fine):
    // opening a FIFO for reading waits for a writer, and opening a device has effects.
    let kind = fs::metadata(path).map_err(unreadable)?.file_type();
    if !kind.is_file() {
        return Err(not_a_file(kind));
    }
    // O_NONBLOCK in case the path was swapped for a FIFO since; fstat says what we got.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.file_type().is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let size = meta.len();
    if size > MAX_LESSON_BYTES {
        return Err(too_big(size));
    }
    // Read one byte past the limit in case the file grew since we asked its size.
    let mut bytes = Vec::new();
    file.take(MAX_LESSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_LESSON_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + valid.iter().rev().take_while(|&&b| b != b'\n').count();
        error(
            line,
            format!("the file is not UTF-8 (first bad byte at column {column}) — save it as UTF-8"),
        )
    })
}

/// The last part of `path`, as a person would name the file.
fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What a non-regular file is, with its article.
fn kind_words(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Parse `(label for errors, file name, text)` triples and check them as one set.
pub(super) fn from_texts(
    texts: impl IntoIterator<Item = (String, String, String)>,
) -> Result<LessonSet, Vec<LessonError>> {
    let mut errors = Vec::new();
    let mut parsed: Vec<(String, Parsed)> = Vec::new();
    for (label, name, text) in texts {
        match front_matter::parse(&label, &name, &text) {
            Ok(p) => parsed.push((label, p)),
            Err(e) => errors.extend(e),
        }
    }
    parsed.sort_by(|a, b| a.1.lesson.file.cmp(&b.1.lesson.file));

    // The first file (by name) keeps an id or step; later claims are the errors.
    let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
    let mut steps: BTreeMap<StepId, &str> = BTreeMap::new();
    for (label, p) in &parsed {
        let lesson = &p.lesson;
        if let Some(first) = ids.get(lesson.id.as_str()) {
            errors.push(LessonError {
                file: label.clone(),
                line: p.id_line,
                message: format!(
                    "id {:?} is already used by {first} — give each lesson its own id",
                    lesson.id
                ),
            });
        } else {
            ids.insert(&lesson.id, label);
        }
        if let (Some(step), Some(line)) = (lesson.step, p.step_line) {
            if let Some(first) = steps.get(&step) {
                errors.push(LessonError {
                    file: label.clone(),
                    line,
                    message: format!(
                        "step {:?} already has a lesson, {first} — a step shows one lesson: \
                         remove `step` from one of them",
                        step.name()
                    ),
                });
            } else {
                steps.insert(step, label);
            }
        }
    }

    sort(&mut errors);
    if errors.is_empty() {
        Ok(LessonSet {
            lessons: parsed.into_iter().map(|(_, p)| p.lesson).collect(),
        })
    } else {
        Err(errors)
    }
}

/// File by file, top to bottom: the order a teacher fixes them in.
fn sort(errors: &mut [LessonError]) {
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
}
