//! `Cli::plain_inspect`, the short way `daemonlab inspect PID [--format F]` is read,
//! against clap reading the same line: whenever the short way answers, clap must give
//! the very same `Cli`; lines it does not take (options, errors, help) are clap's alone.

use std::ffi::OsString;

use clap::Parser;
use daemonlab::cli::Cli;
use proptest::prelude::*;

fn line(words: &[&str]) -> Vec<OsString> {
    std::iter::once("daemonlab")
        .chain(words.iter().copied())
        .map(OsString::from)
        .collect()
}

/// The short way's answer, checked against clap's whenever there is one.
fn both(words: &[&str], is_set: impl Fn(&str) -> bool) -> Option<Cli> {
    let args = line(words);
    let short = Cli::plain_inspect(&args, is_set)?;
    match Cli::try_parse_from(&args) {
        Ok(full) => assert_eq!(format!("{short:?}"), format!("{full:?}"), "{words:?}"),
        Err(e) => panic!("{words:?}: the short way took a line clap refuses: {e}"),
    }
    Some(short)
}

#[test]
fn plain_inspect_lines_are_read_as_clap_reads_them() {
    for words in [
        &["inspect", "1"][..],
        &["inspect", "1", "--format", "json"],
        &["inspect", "--format=markdown", "1"],
        &["inspect", "--format", "text", "1"],
        &["inspect", " 7 "],
        &["inspect", "+5"],
    ] {
        assert!(both(words, |_| false).is_some(), "{words:?} is plain");
    }
}

#[test]
fn everything_else_is_left_to_clap() {
    for words in [
        &[][..],
        &["inspect"],
        &["inspect", "1", "2"],
        &["inspect", "-1"],
        &["inspect", "0"],
        &["inspect", "abc"],
        &["inspect", "99999999999"],
        &["inspect", "1", "--format", "yaml"],
        &["inspect", "1", "--format"],
        &["inspect", "1", "--format", "json", "--format", "text"],
        &["inspect", "1", "--theme", "high-contrast"],
        &["--theme", "high-contrast", "inspect", "1"],
        &["inspect", "--", "1"],
        &["inspect", "--help"],
        &["inspect", "1", "-h"],
        &["ps"],
        &["tour"],
    ] {
        assert!(both(words, |_| false).is_none(), "{words:?} is clap's");
    }
}

#[test]
fn a_setting_clap_reads_from_the_environment_leaves_the_line_to_clap() {
    for name in ["DAEMONLAB_THEME", "DAEMONLAB_LESSONS"] {
        assert!(
            both(&["inspect", "1"], |n| n == name).is_none(),
            "{name} set"
        );
    }
}

const WORDS: &[&str] = &[
    "inspect",
    "1",
    "42",
    "0",
    "-1",
    "+5",
    "abc",
    "--format",
    "--format=json",
    "--format=x",
    "text",
    "json",
    "markdown",
    "yaml",
    "--theme",
    "default",
    "--",
    "--help",
    "-h",
    "--subreaper",
    "--kmsg",
    "ps",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any line from these words: where the short way answers, clap agrees exactly.
    #[test]
    fn the_short_way_never_disagrees_with_clap(
        inspect_first in any::<bool>(),
        picks in proptest::collection::vec(0..WORDS.len(), 0..6),
    ) {
        let words: Vec<&str> = inspect_first
            .then_some("inspect")
            .into_iter()
            .chain(picks.iter().map(|&i| WORDS[i]))
            .collect();
        both(&words, |_| false);
    }
}
