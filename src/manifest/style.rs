//! How a document is laid out, detected once per parse, so new members match their neighbours.

use crate::manifest::parse::{EscapeStats, Node, NodeKind};

/// The formatting conventions of one document.
///
/// New members copy the whitespace of an existing sibling where there is one; this style is what is
/// used where nothing can be copied: inside new nested values and when an empty container is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// `"\n"` or `"\r\n"`: the kind of the first line break in the file (`"\n"` when there is none).
    pub newline: String,
    /// One level of indentation (two spaces, four spaces, a tab, ...).
    pub indent: String,
    /// The text between a key and its value, colon included (`": "` or `":"`).
    pub key_sep: String,
    /// The text between two items of a one-line container, comma included (`", "` or `","`).
    pub item_sep: String,
    /// Write non-ASCII characters (and DEL) as `\uXXXX` escapes, like Python's `ensure_ascii=True`.
    pub ascii: bool,
    /// Write the hex digits of `\u` escapes in upper case.
    pub upper_hex: bool,
    /// The document spans several lines (containers are written one item per line).
    pub multiline: bool,
}

impl Style {
    /// Python's `json.dumps(v, indent=indent)` layout with `\n` line breaks and raw UTF-8.
    pub fn pretty(indent: &str) -> Style {
        Style {
            newline: "\n".into(),
            indent: indent.into(),
            key_sep: ": ".into(),
            item_sep: ", ".into(),
            ascii: false,
            upper_hex: false,
            multiline: true,
        }
    }

    /// One line with the given separators (`": "`/`", "` is Python's default, `":"`/`","` minified).
    pub fn one_line(key_sep: &str, item_sep: &str) -> Style {
        Style {
            newline: "\n".into(),
            indent: "  ".into(),
            key_sep: key_sep.into(),
            item_sep: item_sep.into(),
            ascii: false,
            upper_hex: false,
            multiline: false,
        }
    }

    /// Detects the style of a parsed document.
    pub(crate) fn detect(src: &str, root: &Node, escapes: EscapeStats) -> Style {
        let bytes = src.as_bytes();
        let newline = match bytes.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && bytes[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        };
        let multiline = src
            .get(root.start..root.end)
            .is_some_and(|s| s.contains('\n'));
        let mut found = Found::default();
        scan(src, root, &mut found);
        // Where one separator is missing, follow the spacing of the other (Python's defaults
        // `": "`/`", "` when neither shows).
        let key_sep = found.key_sep.unwrap_or_else(|| {
            match &found.item_sep {
                Some(item) if item.trim().len() == item.len() => ":",
                _ => ": ",
            }
            .to_string()
        });
        let item_sep = found
            .item_sep
            .unwrap_or_else(|| if key_sep.ends_with(':') { "," } else { ", " }.to_string());
        Style {
            newline: newline.to_string(),
            indent: found.indent.unwrap_or_else(|| "  ".to_string()),
            key_sep,
            item_sep,
            ascii: src.is_ascii() && escapes.non_ascii_escape,
            upper_hex: escapes.upper_hex && !escapes.lower_hex,
            multiline,
        }
    }
}

/// The leading spaces and tabs of the line that byte `pos` is on.
pub(crate) fn line_indent(src: &str, pos: usize) -> &str {
    let bytes = src.as_bytes();
    let pos = pos.min(bytes.len());
    let line_start = bytes[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let len = bytes[line_start..pos]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    src.get(line_start..line_start + len).unwrap_or("")
}

#[derive(Default)]
struct Found {
    indent: Option<String>,
    key_sep: Option<String>,
    item_sep: Option<String>,
}

/// Walks containers in document order, filling in each convention from the first place that shows it.
fn scan(src: &str, node: &Node, found: &mut Found) {
    let n = node.child_count();
    if n == 0 {
        return;
    }
    let span = src.get(node.start..node.end).unwrap_or("");
    if found.indent.is_none() {
        found.indent = indent_unit(src, node);
    }
    if found.item_sep.is_none() && n >= 2 && !span.contains('\n') {
        if let (Some(a), Some(b)) = (node.child_end(0), node.child_start(1)) {
            found.item_sep = src.get(a..b).map(str::to_string);
        }
    }
    match &node.kind {
        NodeKind::Object(members) => {
            for m in members {
                if found.key_sep.is_none() {
                    let sep = src.get(m.key_end..m.value.start).unwrap_or("");
                    if !sep.contains(['\n', '\r']) {
                        found.key_sep = Some(sep.to_string());
                    }
                }
                scan(src, &m.value, found);
            }
        }
        NodeKind::Array(items) => {
            for item in items {
                scan(src, item, found);
            }
        }
        _ => {}
    }
}

/// The indent unit shown by a multi-line container: its first child's indentation minus the
/// indentation of the line the container opens on.
fn indent_unit(src: &str, node: &Node) -> Option<String> {
    let first = node.child_start(0)?;
    let prefix = src.get(node.start + 1..first)?;
    let last_nl = prefix.rfind('\n')?;
    let child_indent = &prefix[last_nl + 1..];
    let outer = line_indent(src, node.start);
    let unit = child_indent.strip_prefix(outer)?;
    (!unit.is_empty() && unit.bytes().all(|b| b == b' ' || b == b'\t')).then(|| unit.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Document;

    fn style_of(src: &str) -> Style {
        match Document::parse(src.as_bytes()) {
            Ok(doc) => doc.style().clone(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn detects_python_one_line_default() {
        let s = style_of(include_str!("../../fixtures/format/v1.0.0-manifest.json"));
        assert_eq!(
            s,
            Style {
                newline: "\n".into(),
                indent: "  ".into(),
                key_sep: ": ".into(),
                item_sep: ", ".into(),
                ascii: false,
                upper_hex: false,
                multiline: false,
            }
        );
    }

    #[test]
    fn detects_minified() {
        let s = style_of(r#"{"a":1,"b":[1,2]}"#);
        assert_eq!(
            (s.key_sep.as_str(), s.item_sep.as_str(), s.multiline),
            (":", ",", false)
        );
        // With a single member the item separator follows the key separator's spacing.
        assert_eq!(style_of(r#"{"a":1}"#).item_sep, ",");
        assert_eq!(style_of(r#"{"a": 1}"#).item_sep, ", ");
    }

    #[test]
    fn detects_indent_units_and_newlines() {
        assert_eq!(style_of("{\n  \"a\": 1\n}\n").indent, "  ");
        assert_eq!(
            style_of("{\n    \"a\": {\n        \"b\": 1\n    }\n}").indent,
            "    "
        );
        assert_eq!(style_of("{\n\t\"a\": [\n\t\t1\n\t]\n}\n").indent, "\t");
        let crlf = style_of("{\r\n   \"a\": 1\r\n}\r\n");
        assert_eq!(
            (crlf.newline.as_str(), crlf.indent.as_str(), crlf.multiline),
            ("\r\n", "   ", true)
        );
        // The first multi-line container decides, even when it is nested inside a one-line start.
        assert_eq!(style_of("{\"a\": [\n      1\n    ]}").indent, "      ");
        assert_eq!(style_of("[]").indent, "  ");
    }

    #[test]
    fn detects_ascii_escaping_and_hex_case() {
        let py = style_of(r#"{"name": "M\u00fcller"}"#);
        assert!(py.ascii && !py.upper_hex);
        let upper = style_of(r#"{"name": "M\u00FCller"}"#);
        assert!(upper.ascii && upper.upper_hex);
        // Raw non-ASCII anywhere means the file is not ASCII-escaped.
        assert!(!style_of(r#"{"a": "M\u00fcller", "b": "ü"}"#).ascii);
        // Only escapes of ASCII code points say nothing about non-ASCII text.
        assert!(!style_of(r#"{"a": "\u001f"}"#).ascii);
    }

    #[test]
    fn line_indent_reads_leading_whitespace() {
        let src = "{\n  \"a\": {\n\t  \"b\": 1}}";
        assert_eq!(line_indent(src, 0), "");
        assert_eq!(line_indent(src, 8), "  ");
        assert_eq!(line_indent(src, 16), "\t  ");
        assert_eq!(line_indent(src, 999), "\t  ");
    }
}
