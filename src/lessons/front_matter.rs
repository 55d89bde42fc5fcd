//! One lesson file: the `+++` TOML front matter, checked key by key, and its body.
//!
//! Every problem becomes a [`LessonError`] with the line a teacher should look at, so
//! `daemonlab lessons check` can list them all at once instead of one per run.

use std::collections::BTreeMap;

use toml::{Spanned, Value};

use super::{Lesson, LessonError, markdown};
use crate::lab::STEPS;
use crate::lab::experiments::Experiment;

/// The keys a lesson's front matter may hold, with an example value for error messages.
const KEYS: [(&str, &str); 5] = [
    ("id", "step-fork"),
    ("title", "Fork, and let the parent exit"),
    ("section", "13.3"),
    ("step", "fork"),
    ("experiment", "no-setsid"),
];

/// Keys a lesson may leave out.
const OPTIONAL: [&str; 2] = ["step", "experiment"];

/// A parsed lesson plus the lines that checks across files point at.
#[derive(Debug)]
pub(super) struct Parsed {
    pub lesson: Lesson,
    pub id_line: usize,
    pub step_line: Option<usize>,
}

/// Parse one lesson. `label` names the file in errors (a path, usually); `name` is the
/// bare file name kept in [`Lesson::file`].
pub(super) fn parse(label: &str, name: &str, text: &str) -> Result<Parsed, Vec<LessonError>> {
    let error = |line: usize, message: String| LessonError {
        file: label.to_string(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (toml_text, body) = split(text).map_err(|message| vec![error(1, message)])?;
    // The TOML starts on the file's second line, just after the opening `+++`.
    let line_of = |offset: usize| {
        2 + toml_text[..offset.min(toml_text.len())]
            .matches('\n')
            .count()
    };

    let table: BTreeMap<Spanned<String>, Spanned<Value>> =
        toml::from_str(toml_text).map_err(|e| {
            let line = e.span().map(|span| line_of(span.start)).unwrap_or(1);
            let what = e.message().trim().replace('\n', "; ");
            let hint = if what.contains("duplicate key") {
                "keep one of the two"
            } else {
                "write each key on its own line as key = \"value\""
            };
            vec![error(
                line,
                format!("front matter is not valid TOML: {what} — {hint}"),
            )]
        })?;

    let mut errors = Vec::new();
    // Keys present with a string value, and keys present at all (a wrong type is not
    // also reported as missing).
    let mut found: BTreeMap<&str, (String, usize)> = BTreeMap::new();
    let mut present: Vec<&str> = Vec::new();
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in entries {
        let key_line = line_of(key.span().start);
        let Some((known, example)) = KEYS.iter().find(|(k, _)| *k == key.get_ref().as_str()) else {
            errors.push(error(
                key_line,
                format!(
                    "unknown key `{}` in the front matter: a lesson takes only id, title, \
                     section, step and experiment — remove it or correct its spelling",
                    key.get_ref()
                ),
            ));
            continue;
        };
        present.push(known);
        match value.get_ref() {
            Value::String(text) => {
                found.insert(known, (text.clone(), key_line));
            }
            other => errors.push(error(
                line_of(value.span().start),
                format!(
                    "`{known}` is {}, not a string: quote it, like {known} = \"{example}\"",
                    with_article(other.type_str())
                ),
            )),
        }
    }

    for (key, example) in KEYS.iter().filter(|(k, _)| !OPTIONAL.contains(k)) {
        if !present.contains(key) {
            errors.push(error(
                1,
                format!(
                    "the front matter has no `{key}`: add a line like {key} = \"{example}\" \
                     before the closing +++"
                ),
            ));
        }
    }

    if let Some((id, line)) = found.get("id")
        && (id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        errors.push(error(
            *line,
            format!(
                "id {id:?} must be one word with no spaces, like id = \"step-fork\": \
                 the UI and other lessons refer to it"
            ),
        ));
    }
    if let Some((title, line)) = found.get("title")
        && title.trim().is_empty()
    {
        errors.push(error(
            *line,
            "the title is empty: give the lesson a short title, shown above its text".into(),
        ));
    }
    if let Some((section, line)) = found.get("section")
        && !is_section_number(section)
    {
        errors.push(error(
            *line,
            format!(
                "section {section:?} is not an APUE section number: write it like \
                 section = \"13.3\""
            ),
        ));
    }
    let step = match found.get("step") {
        Some((name, line)) => match STEPS.iter().find(|s| s.id.name() == name) {
            Some(info) => Some((info.id, *line)),
            None => {
                errors.push(error(
                    *line,
                    format!(
                        "unknown step {name:?}: use one of {} — or remove `step` for a \
                         lesson about the chapter as a whole",
                        step_names()
                    ),
                ));
                None
            }
        },
        None => None,
    };

    let experiment = match found.get("experiment") {
        Some((name, line)) => match Experiment::from_name(name) {
            Some(experiment) => Some(experiment),
            None => {
                errors.push(error(
                    *line,
                    format!(
                        "unknown experiment {name:?}: use one of {} (the names \
                         `daemonlab tour --experiment` takes) — or remove `experiment`",
                        experiment_names()
                    ),
                ));
                None
            }
        },
        None => None,
    };

    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    let take = |key: &str| found.get(key).map(|(v, _)| v.clone()).unwrap_or_default();
    let id_line = found.get("id").map(|(_, line)| *line).unwrap_or(1);
    Ok(Parsed {
        lesson: Lesson {
            id: take("id"),
            title: take("title"),
            section: take("section"),
            step: step.map(|(id, _)| id),
            experiment,
            file: name.to_string(),
            body: markdown::to_blocks(body),
            markdown: body.to_string(),
        },
        id_line,
        step_line: step.map(|(_, line)| line),
    })
}

/// Split a file into its front matter (without the `+++` lines) and its body.
fn split(text: &str) -> Result<(&str, &str), String> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "+++" {
        let found = if text.trim().is_empty() {
            "the file is empty".to_string()
        } else {
            let shown: String = first.trim_end().chars().take(40).collect();
            format!("the first line is {shown:?}")
        };
        return Err(format!(
            "no front matter ({found}): a lesson starts with a line +++, then id, title, \
             section and optional step and experiment as TOML, then another +++ line"
        ));
    }
    let start = first.len();
    let mut offset = start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Ok((&text[start..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    Err(
        "the front matter opened by +++ on this line is never closed: add a line +++ \
         after its last key"
            .to_string(),
    )
}

/// "an integer", "a float": TOML's type names in a sentence.
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// "13.3", "13" or "9.5": digits separated by single dots.
fn is_section_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The valid experiment names, for error messages.
fn experiment_names() -> String {
    Experiment::ALL
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The valid step ids, for error messages.
fn step_names() -> String {
    STEPS
        .iter()
        .map(|s| s.id.name())
        .collect::<Vec<_>>()
        .join(", ")
}
