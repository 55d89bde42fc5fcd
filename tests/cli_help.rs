//! Every visible subcommand's `--help` is snapshotted and gives examples; `--version` prints
//! the crate's version. Run with `INSTA_UPDATE=always` after changing a help text on purpose.

mod common;

use std::process::Command;

use clap::CommandFactory;
use common::exe;
use daemonlab::cli::Cli;

/// Every command path people can type: [], ["tour"], ["locks", "race"], …, hidden ones left out.
fn visible_paths(command: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut path = prefix.clone();
        path.push(sub.get_name().to_string());
        visible_paths(sub, path, out);
    }
}

#[test]
fn every_subcommand_help_has_examples_and_matches_its_snapshot() {
    let mut paths = Vec::new();
    visible_paths(&Cli::command(), Vec::new(), &mut paths);
    // The tree itself: a new subcommand must come with a snapshot of its own.
    assert!(paths.len() >= 12, "{paths:?}");
    for path in paths {
        let out = Command::new(exe())
            .args(&path)
            .arg("--help")
            .env_remove("DAEMONLAB_THEME")
            .env_remove("DAEMONLAB_LESSONS")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{path:?} --help failed");
        assert!(
            help.contains("Examples:\n  daemonlab") || help.contains("Examples:\n  logger"),
            "`daemonlab {} --help` has no example:\n{help}",
            path.join(" ")
        );
        let name = if path.is_empty() {
            "help_daemonlab".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        insta::assert_snapshot!(name, help);
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(exe()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("daemonlab {}", env!("CARGO_PKG_VERSION"))
    );
}
