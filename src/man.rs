//! Manual pages. clap_mangen renders every section from the clap definitions; the one it
//! gets wrong for us is the examples, which it reflows into a paragraph. Here they become
//! an EXAMPLES section in no-fill mode, one command per line, as `--help` shows them.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;

/// The page for `command` (the top level, or a subcommand built by [`write_pages`]).
pub fn render(command: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    if let Some(text) = command.get_after_help() {
        out.write_all(examples_section(&text.to_string()).as_bytes())?;
    }
    if command.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// `daemonlab man`: the top-level page.
pub fn write_top_page(out: &mut dyn Write) -> io::Result<()> {
    // No `help` subcommand in the page: `man --dir` writes no daemonlab-help(1) to name.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    render(&command, out)
}

/// `daemonlab man --dir DIR`: `daemonlab.1` and `daemonlab-SUB[-SUB].1` for every
/// visible subcommand. Returns the files written.
pub fn write_pages(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_tree(&command, dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    command: &clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> io::Result<()> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let path = dir.join(format!("{name}.1"));
    let mut file = io::BufWriter::new(std::fs::File::create(&path)?);
    render(command, &mut file)?;
    file.flush()?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

/// The `after_help` text ("Examples:" then indented command lines, then optional
/// paragraphs) as roff: `.SH EXAMPLES`, the commands verbatim in `.nf`, the rest as `.PP`.
fn examples_section(text: &str) -> String {
    let mut roff = String::from(".SH EXAMPLES\n");
    let mut blocks = text.split("\n\n");
    let examples = blocks.next().unwrap_or_default();
    roff.push_str(".nf\n");
    for line in examples.lines().skip_while(|l| l.trim_end().ends_with(':')) {
        roff.push_str(&escape(line.trim_start()));
        roff.push('\n');
    }
    roff.push_str(".fi\n");
    for paragraph in blocks {
        roff.push_str(".PP\n");
        roff.push_str(&escape(paragraph.trim()));
        roff.push('\n');
    }
    roff
}

/// Text as roff reads it literally: backslashes escaped, `-` as a real minus (so a
/// copied option works), and a leading `.` or `'` not taken for a request.
fn escape(line: &str) -> String {
    let body = line.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with('.') || body.starts_with('\'') {
        format!("\\&{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_become_a_no_fill_section() {
        let roff = examples_section(
            "Examples:\n  daemonlab tour --pause      Enter between steps\n  .hidden\n\nExit status: 0 or 1.",
        );
        assert_eq!(
            roff,
            ".SH EXAMPLES\n.nf\ndaemonlab tour \\-\\-pause      Enter between steps\n\\&.hidden\n.fi\n.PP\nExit status: 0 or 1.\n"
        );
    }
}
