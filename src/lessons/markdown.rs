//! Markdown reduced to the few shapes a terminal pane can show: headings, paragraphs,
//! list items, code, quotes and rules, each holding runs of text with a simple style.
//!
//! The result is plain owned data so that the UI decides colours and the headless
//! reports can print the same lesson without a terminal.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::{Block, Span, SpanStyle};

/// Parse a lesson body into blocks.
///
/// Soft and hard line breaks become spaces (the pane reflows text to its own width),
/// links keep their text and gain the URL in parentheses, images become their alt text,
/// raw HTML is kept as plain text and table rows become paragraphs of cells joined by
/// `" | "`. Inside a list item, text that follows a nested list or code block becomes
/// a plain paragraph: lessons keep their lists simple.
pub fn to_blocks(markdown: &str) -> Vec<Block> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut builder = Builder::default();
    for event in Parser::new_ext(markdown, options) {
        builder.event(event);
    }
    builder.flush();
    builder.blocks
}

/// Where the text being collected will end up when its block closes.
#[derive(Default)]
struct Builder {
    blocks: Vec<Block>,
    /// Inline text of the block being built.
    spans: Vec<Span>,
    /// Nesting counts, so that `**a *b* c**` ends each style at the right place.
    bold: u32,
    italic: u32,
    /// URLs of the links we are inside, innermost last.
    links: Vec<String>,
    /// Text of each open link, to leave out a URL that only repeats it.
    link_text: Vec<String>,
    /// The next item number of each open list (`None` for bullet lists).
    lists: Vec<Option<u64>>,
    /// A list item whose text has not been emitted yet: (depth, number).
    item: Option<(u8, Option<u64>)>,
    /// A second paragraph in the same item is joined to the first with a space.
    item_needs_space: bool,
    quote_depth: u32,
    heading: Option<u8>,
    /// An open code block: language and text so far.
    code: Option<(Option<String>, String)>,
    /// Cells of the table row being read.
    row: Option<Vec<Vec<Span>>>,
    in_table_head: bool,
}

impl Builder {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some((_, code)) = self.code.as_mut() {
                    code.push_str(&text);
                } else {
                    self.text(&text, false);
                }
            }
            Event::Code(text) => self.text(&text, true),
            Event::Html(text) | Event::InlineHtml(text) => {
                // A block of HTML arrives line by line; keep it readable as one paragraph.
                let text = text.replace('\n', " ");
                self.text(&text, false);
            }
            Event::InlineMath(text) | Event::DisplayMath(text) => self.text(&text, true),
            Event::FootnoteReference(label) => self.text(&format!("[{label}]"), false),
            Event::SoftBreak | Event::HardBreak => self.text(" ", false),
            Event::Rule => {
                self.flush();
                self.blocks.push(Block::Rule);
            }
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }, false),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => {
                if self.item.is_some() && !self.spans.is_empty() {
                    self.item_needs_space = true;
                }
            }
            Tag::Heading { level, .. } => {
                self.flush();
                self.heading = Some(level as u8);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .next()
                        .filter(|word| !word.is_empty())
                        .map(str::to_string),
                    CodeBlockKind::Indented => None,
                };
                self.code = Some((lang, String::new()));
            }
            Tag::HtmlBlock | Tag::Table(_) => self.flush(),
            Tag::List(first) => {
                // The parent item's own text comes before its nested items.
                self.flush();
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len().saturating_sub(1).min(u8::MAX as usize) as u8;
                let number = match self.lists.last_mut() {
                    Some(Some(next)) => {
                        let this = *next;
                        *next += 1;
                        Some(this)
                    }
                    _ => None,
                };
                self.item = Some((depth, number));
                self.item_needs_space = false;
            }
            Tag::TableHead | Tag::TableRow => {
                self.in_table_head = matches!(tag, Tag::TableHead);
                self.row = Some(Vec::new());
            }
            Tag::TableCell => self.spans.clear(),
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Link { dest_url, .. } => {
                self.links.push(dest_url.to_string());
                self.link_text.push(String::new());
            }
            Tag::Image { .. }
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                if self.item.is_none() {
                    self.flush();
                }
            }
            TagEnd::Heading(_) => {
                self.flush();
                self.heading = None;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                if let Some((lang, mut text)) = self.code.take() {
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    self.blocks.push(Block::Code { lang, text });
                }
            }
            TagEnd::HtmlBlock => self.flush(),
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Item => {
                self.flush();
                self.item = None;
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.spans);
                if let Some(row) = self.row.as_mut() {
                    row.push(cell);
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(row) = self.row.take() {
                    let mut spans = Vec::new();
                    for (i, cell) in row.into_iter().enumerate() {
                        if i > 0 {
                            push_span(&mut spans, " | ", SpanStyle::default());
                        }
                        for span in cell {
                            push_span(&mut spans, &span.text, span.style);
                        }
                    }
                    self.spans = spans;
                    self.flush();
                }
                self.in_table_head = false;
            }
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Link => {
                let url = self.links.pop().unwrap_or_default();
                let text = self.link_text.pop().unwrap_or_default();
                let repeats_text = url == text || url.strip_prefix("mailto:") == Some(&text);
                if !url.is_empty() && !repeats_text {
                    self.plain(&format!(" ({url})"));
                }
            }
            TagEnd::Table
            | TagEnd::Image
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_) => {}
        }
    }

    /// Text in the current inline style.
    fn text(&mut self, text: &str, code: bool) {
        if self.item_needs_space {
            self.item_needs_space = false;
            self.plain(" ");
        }
        let style = SpanStyle {
            bold: self.bold > 0 || self.in_table_head,
            italic: self.italic > 0,
            code,
            link: !self.links.is_empty(),
        };
        for open in &mut self.link_text {
            open.push_str(text);
        }
        push_span(&mut self.spans, text, style);
    }

    /// Text with no style at all, such as a link's URL.
    fn plain(&mut self, text: &str) {
        push_span(&mut self.spans, text, SpanStyle::default());
    }

    /// Close the block whose text has been collected, choosing its kind from context.
    fn flush(&mut self) {
        if let Some((depth, ordered)) = self.item.take() {
            // An item is shown even when empty, so its bullet or number is not lost.
            let spans = std::mem::take(&mut self.spans);
            self.blocks.push(Block::ListItem {
                depth,
                ordered,
                spans,
            });
            self.item_needs_space = false;
            return;
        }
        if self.spans.iter().all(|s| s.text.trim().is_empty()) {
            self.spans.clear();
            return;
        }
        let spans = std::mem::take(&mut self.spans);
        let block = if let Some(level) = self.heading {
            Block::Heading { level, spans }
        } else if self.quote_depth > 0 {
            Block::Quote(spans)
        } else {
            Block::Paragraph(spans)
        };
        self.blocks.push(block);
    }
}

/// Append text, merging it into the last span when the style is the same.
fn push_span(spans: &mut Vec<Span>, text: &str, style: SpanStyle) {
    if text.is_empty() {
        return;
    }
    match spans.last_mut() {
        Some(last) if last.style == style => last.text.push_str(text),
        _ => spans.push(Span {
            text: text.to_string(),
            style,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Span {
        Span {
            text: text.into(),
            style: SpanStyle::default(),
        }
    }

    fn styled(text: &str, style: SpanStyle) -> Span {
        Span {
            text: text.into(),
            style,
        }
    }

    const BOLD: SpanStyle = SpanStyle {
        bold: true,
        italic: false,
        code: false,
        link: false,
    };
    const ITALIC: SpanStyle = SpanStyle {
        bold: false,
        italic: true,
        code: false,
        link: false,
    };
    const CODE: SpanStyle = SpanStyle {
        bold: false,
        italic: false,
        code: true,
        link: false,
    };
    const LINK: SpanStyle = SpanStyle {
        bold: false,
        italic: false,
        code: false,
        link: true,
    };

    #[test]
    fn emphasis_strong_and_soft_breaks() {
        let blocks = to_blocks("one *two*\n**three *four***\n");
        let both = SpanStyle {
            bold: true,
            italic: true,
            ..SpanStyle::default()
        };
        assert_eq!(
            blocks,
            vec![Block::Paragraph(vec![
                plain("one "),
                styled("two", ITALIC),
                plain(" "),
                styled("three ", BOLD),
                styled("four", both),
            ])]
        );
    }

    #[test]
    fn inline_code_keeps_outer_style() {
        let blocks = to_blocks("call `setsid()` and **`fork()`**");
        let bold_code = SpanStyle {
            bold: true,
            code: true,
            ..SpanStyle::default()
        };
        assert_eq!(
            blocks,
            vec![Block::Paragraph(vec![
                plain("call "),
                styled("setsid()", CODE),
                plain(" and "),
                styled("fork()", bold_code),
            ])]
        );
    }

    #[test]
    fn headings_rules_and_quotes() {
        let blocks = to_blocks("## Why\n\n---\n\n> a *quoted* line\n");
        assert_eq!(
            blocks,
            vec![
                Block::Heading {
                    level: 2,
                    spans: vec![plain("Why")]
                },
                Block::Rule,
                Block::Quote(vec![plain("a "), styled("quoted", ITALIC), plain(" line")]),
            ]
        );
    }

    #[test]
    fn nested_and_ordered_lists() {
        let blocks = to_blocks("- PID\n  1. first\n  2. second\n- SID\n\n3. three\n4. four\n");
        let item = |depth, ordered, text| Block::ListItem {
            depth,
            ordered,
            spans: vec![plain(text)],
        };
        assert_eq!(
            blocks,
            vec![
                item(0, None, "PID"),
                item(1, Some(1), "first"),
                item(1, Some(2), "second"),
                item(0, None, "SID"),
                item(0, Some(3), "three"),
                item(0, Some(4), "four"),
            ]
        );
    }

    #[test]
    fn loose_list_items_join_their_paragraphs() {
        let blocks = to_blocks("- one\n\n  more\n\n- two\n");
        assert_eq!(
            blocks,
            vec![
                Block::ListItem {
                    depth: 0,
                    ordered: None,
                    spans: vec![plain("one more")]
                },
                Block::ListItem {
                    depth: 0,
                    ordered: None,
                    spans: vec![plain("two")]
                },
            ]
        );
    }

    #[test]
    fn code_fences_keep_text_and_language() {
        let blocks =
            to_blocks("```c\nsetsid();\nfork();\n```\n\n```\nplain\n```\n\n    indented\n");
        assert_eq!(
            blocks,
            vec![
                Block::Code {
                    lang: Some("c".into()),
                    text: "setsid();\nfork();".into()
                },
                Block::Code {
                    lang: None,
                    text: "plain".into()
                },
                Block::Code {
                    lang: None,
                    text: "indented".into()
                },
            ]
        );
    }

    #[test]
    fn code_inside_a_list_item_follows_the_item() {
        let blocks = to_blocks("1. run\n\n   ```rust\n   x()\n   ```\n");
        assert_eq!(
            blocks,
            vec![
                Block::ListItem {
                    depth: 0,
                    ordered: Some(1),
                    spans: vec![plain("run")]
                },
                Block::Code {
                    lang: Some("rust".into()),
                    text: "x()".into()
                },
            ]
        );
    }

    #[test]
    fn links_keep_text_and_show_the_url() {
        let blocks = to_blocks("see [daemon(7)](https://man7.org/d) or <https://x.org>");
        assert_eq!(
            blocks,
            vec![Block::Paragraph(vec![
                plain("see "),
                styled("daemon(7)", LINK),
                plain(" (https://man7.org/d) or "),
                styled("https://x.org", LINK),
            ])]
        );
    }

    #[test]
    fn images_become_alt_text_and_html_stays_text() {
        let blocks = to_blocks("![a diagram](d.png) <b>x</b>\n\n<div>\nhi\n</div>\n");
        assert_eq!(
            blocks,
            vec![
                Block::Paragraph(vec![plain("a diagram <b>x</b>")]),
                Block::Paragraph(vec![plain("<div> hi </div> ")]),
            ]
        );
    }

    #[test]
    fn tables_flatten_to_rows() {
        let blocks = to_blocks("| field | after |\n|---|---|\n| TTY | `?` |\n");
        assert_eq!(
            blocks,
            vec![
                Block::Paragraph(vec![
                    styled("field", BOLD),
                    plain(" | "),
                    styled("after", BOLD)
                ]),
                Block::Paragraph(vec![plain("TTY | "), styled("?", CODE)]),
            ]
        );
    }

    #[test]
    fn empty_input_gives_no_blocks() {
        assert_eq!(to_blocks(""), vec![]);
        assert_eq!(to_blocks("\n\n  \n"), vec![]);
    }
}
