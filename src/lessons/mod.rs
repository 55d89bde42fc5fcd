//! Lessons: loading, validating, and Markdown turned into owned styled blocks.
