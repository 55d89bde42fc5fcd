//! `daemonlab tour --experiment NAME`: one "skip a rule" experiment, headless.

use std::io::Write;

use super::Format;
use crate::lab::experiments::ExperimentReport;

/// Print a report: readable lines, a Markdown section, or one JSON object.
pub fn print(
    report: &ExperimentReport,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let verdict = if report.observed {
        "observed"
    } else {
        "NOT observed"
    };
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)
        }
        Format::Markdown => {
            writeln!(
                out,
                "## Experiment `{}` — {}\n",
                report.experiment.name(),
                report.title
            )?;
            writeln!(out, "- claim: {}", report.claim)?;
            writeln!(out, "- verdict: **{verdict}**\n")?;
            writeln!(out, "```text")?;
            for line in &report.evidence {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "```")
        }
        Format::Text => {
            writeln!(
                out,
                "experiment {} — {}",
                report.experiment.name(),
                report.title
            )?;
            writeln!(out, "  claim    {}", report.claim)?;
            for line in &report.evidence {
                writeln!(out, "  evidence {line}")?;
            }
            writeln!(out, "  verdict  {verdict}")
        }
    }
}
