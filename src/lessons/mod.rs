//! Lessons: loading, validating, and Markdown turned into owned styled blocks.
//!
//! A lesson is a Markdown file with TOML front matter between two `+++` lines (see
//! DESIGN.md, "Lessons"). The shipped lessons are compiled into the binary by `build.rs`,
//! so `cargo install` needs no data files; a teacher can point the lab at a directory of
//! their own with `--lessons DIR` and check it with `daemonlab lessons check DIR`.
//!
//! Nothing here knows about terminals: the UI turns [`Block`]s into styled lines, and the
//! headless reports can print [`Lesson::markdown`] as it is.

mod front_matter;
mod load;
mod markdown;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::lab::experiments::Experiment;
use crate::lab::{STEPS, StepId};

pub use markdown::to_blocks;

/// The largest lesson file accepted, in bytes. A lesson is a short read beside a live
/// process; anything bigger is almost certainly the wrong file.
pub const MAX_LESSON_BYTES: u64 = 256 * 1024;

/// One lesson file, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    /// Front matter `id`, unique within a set: how other code and lessons refer to it.
    pub id: String,
    /// Shown above the lesson's text.
    pub title: String,
    /// The APUE section the lesson teaches, such as `"13.3"`.
    pub section: String,
    /// The step this lesson explains, if it is about one step rather than the chapter.
    pub step: Option<StepId>,
    /// The experiment (`x` menu) this lesson is about, if any: `x` pressed while the
    /// lesson is shown opens the menu on it.
    pub experiment: Option<Experiment>,
    /// The file name, such as `"13-fork.md"`, for error messages and the UI.
    pub file: String,
    /// The body as blocks a terminal can show.
    pub body: Vec<Block>,
    /// The body as written, for views that print Markdown as it is.
    pub markdown: String,
}

/// Markdown reduced to what a terminal can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A `#` heading; `level` is 1 to 6.
    Heading { level: u8, spans: Vec<Span> },
    /// A paragraph of running text; also an HTML block or a flattened table row.
    Paragraph(Vec<Span>),
    /// One list item: `depth` counts from 0 for a top-level list, `ordered` is the
    /// item's number in a numbered list and `None` for a bullet.
    ListItem {
        depth: u8,
        ordered: Option<u64>,
        spans: Vec<Span>,
    },
    /// A fenced or indented code block, without its final newline.
    Code { lang: Option<String>, text: String },
    /// A paragraph inside a `>` quote.
    Quote(Vec<Span>),
    /// A `---` thematic break.
    Rule,
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The text as it should appear, with Markdown syntax removed.
    pub text: String,
    /// How the UI should set it apart.
    pub style: SpanStyle,
}

/// The few styles Markdown text can carry that a terminal can show; the UI maps them
/// to its theme.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct SpanStyle {
    /// `**strong**`, and the header row of a table.
    pub bold: bool,
    /// `*emphasis*`.
    pub italic: bool,
    /// Inline code (`` `setsid()` ``).
    pub code: bool,
    /// A link's text; its URL follows as a plain span in parentheses.
    pub link: bool,
}

/// All lessons, sorted by file name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LessonSet {
    /// Ids, steps and file names are unique within a set.
    pub lessons: Vec<Lesson>,
}

/// A problem with a lesson file or directory, precise enough to fix without guessing.
///
/// `line` is 1-based within the file. Problems with a whole file (unreadable, too big,
/// missing front matter) point at line 1; problems with the directory itself (missing,
/// empty) have `line` 0 and `file` set to the directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LessonError {
    /// The file's path as the caller gave it (`lessons/NAME` for embedded lessons).
    pub file: String,
    /// 1-based line in `file`; 0 when `file` is a directory.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

// `&[(file name, contents)]`, sorted by name; written by build.rs from lessons/*.md.
static EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_lessons.rs"));

impl Lesson {
    /// Parse one lesson from its text; `file` names it in errors and in [`Lesson::file`].
    /// Checks that need other files (unique ids and steps) are [`LessonSet`]'s job.
    pub fn parse(file: &str, text: &str) -> Result<Lesson, Vec<LessonError>> {
        front_matter::parse(file, file, text).map(|parsed| parsed.lesson)
    }
}

impl LessonSet {
    /// The lessons compiled into the binary from `lessons/*.md`.
    ///
    /// Never fails at runtime: a unit test parses every shipped lesson, so a broken one
    /// stops the build's tests rather than a learner's session.
    pub fn embedded() -> LessonSet {
        let sources = EMBEDDED.iter().map(|(name, text)| {
            (
                format!("lessons/{name}"),
                name.to_string(),
                text.to_string(),
            )
        });
        match load::from_texts(sources) {
            Ok(set) => set,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!(
                    "a lesson shipped in the binary is broken (run `cargo test --lib lessons`):\n{}",
                    text.join("\n")
                );
            }
        }
    }

    /// Load every `*.md` file of `dir`, for teachers who bring their own lessons
    /// (`--lessons DIR`). Other files, hidden files and subdirectories are ignored.
    /// Errors name the file as `dir/NAME`, so they can be pasted into an editor.
    pub fn load_dir(dir: &Path) -> Result<LessonSet, Vec<LessonError>> {
        load::load_dir(dir)
    }

    /// Parse lessons held in memory as `(file name, contents)` pairs, with every check
    /// `load_dir` makes; errors name the files as given.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<LessonSet, Vec<LessonError>> {
        load::from_texts(
            sources
                .iter()
                .map(|(name, text)| (name.to_string(), name.to_string(), text.to_string())),
        )
    }

    /// The lesson that explains `step`, if this set has one.
    pub fn for_step(&self, step: StepId) -> Option<&Lesson> {
        self.lessons.iter().find(|l| l.step == Some(step))
    }

    /// The lesson with this front matter `id`.
    pub fn get(&self, id: &str) -> Option<&Lesson> {
        self.lessons.iter().find(|l| l.id == id)
    }

    /// Steps with no lesson in this set, in the book's order: a teacher's directory may
    /// cover only some steps, and the CLI can say which ones fall back or stay empty.
    pub fn steps_without_lesson(&self) -> Vec<StepId> {
        STEPS
            .iter()
            .map(|s| s.id)
            .filter(|&id| self.for_step(id).is_none())
            .collect()
    }

    /// This set with `teacher`'s lessons laid over it: a teacher's lesson replaces any
    /// lesson here with the same file name, id or step, and the rest are kept. Lets
    /// `--lessons DIR` change a few lessons without copying all of them.
    pub fn overlay(self, teacher: LessonSet) -> LessonSet {
        let mut lessons: Vec<Lesson> = self
            .lessons
            .into_iter()
            .filter(|base| {
                !teacher.lessons.iter().any(|t| {
                    t.file == base.file
                        || t.id == base.id
                        || (t.step.is_some() && t.step == base.step)
                })
            })
            .collect();
        lessons.extend(teacher.lessons);
        lessons.sort_by(|a, b| a.file.cmp(&b.file));
        LessonSet { lessons }
    }
}

/// `daemonlab lessons check DIR`: the number of lessons when all of them are sound, or
/// every problem found in the directory (not just the first).
pub fn check_dir(dir: &Path) -> Result<usize, Vec<LessonError>> {
    LessonSet::load_dir(dir).map(|set| set.lessons.len())
}
