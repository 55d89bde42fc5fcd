//! Headless views of the lab's data: the same steps and snapshots the TUI shows, as plain
//! text (also the accessible line mode), Markdown for handouts, or one JSON object per line.

pub mod experiment;
mod render;
pub mod service;
pub mod sessions;
pub mod tour;
pub mod trace;

pub use render::{fd_label, process_lines};

/// How headless output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable lines; `*` marks what changed.
    Text,
    /// A handout: a section per step, a table of ids.
    Markdown,
    /// One JSON object per line per step, with stable keys.
    Json,
}
