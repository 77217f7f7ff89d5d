//! Writing new values in a document's [`Style`].
//!
//! Only values that do not exist in the source yet are rendered; existing bytes are never
//! re-serialised. Multi-line rendering follows Python's `json.dumps(indent=...)`, string escaping
//! follows Python's `json` module.

use crate::manifest::style::Style;
use crate::manifest::value::Json;

/// Renders `value` as a whole document in `style` (no trailing newline).
pub fn render(value: &Json, style: &Style) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style, "");
    out
}

/// Appends `value` to `out`; `indent` is the indentation of the line the value starts on.
pub(crate) fn write_value(out: &mut String, value: &Json, style: &Style, indent: &str) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(text) => out.push_str(text),
        Json::String(s) => write_string(out, s, style.ascii, style.upper_hex),
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Object(members) if members.is_empty() => out.push_str("{}"),
        Json::Array(items) => {
            write_container(out, style, indent, ('[', ']'), items, |out, item, ind| {
                write_value(out, item, style, ind)
            })
        }
        Json::Object(members) => write_container(
            out,
            style,
            indent,
            ('{', '}'),
            members,
            |out, (key, v), ind| {
                write_string(out, key, style.ascii, style.upper_hex);
                out.push_str(&style.key_sep);
                write_value(out, v, style, ind);
            },
        ),
    }
}

fn write_container<T>(
    out: &mut String,
    style: &Style,
    indent: &str,
    (open, close): (char, char),
    items: &[T],
    mut write_item: impl FnMut(&mut String, &T, &str),
) {
    out.push(open);
    if style.multiline {
        let inner = format!("{indent}{}", style.indent);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&style.newline);
            out.push_str(&inner);
            write_item(out, item, &inner);
        }
        out.push_str(&style.newline);
        out.push_str(indent);
    } else {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(&style.item_sep);
            }
            write_item(out, item, indent);
        }
    }
    out.push(close);
}

/// Appends `s` as a JSON string token escaped like Python's `json` module: `\"` `\\` `\n` `\r` `\t`
/// `\b` `\f`, other characters below U+0020 as `\u00XX`; with `ascii`, also DEL and every non-ASCII
/// character as `\uXXXX` (surrogate pairs above U+FFFF), as `ensure_ascii=True` does.
pub(crate) fn write_string(out: &mut String, s: &str, ascii: bool, upper_hex: bool) {
    out.push('"');
    let bytes = s.as_bytes();
    // Runs of bytes that need no escape are copied whole; a run ends only at an ASCII byte
    // or at the first byte of a character, so every slice falls on character boundaries.
    let (mut run, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        if b != b'"' && b != b'\\' && b >= 0x20 && !(ascii && b >= 0x7F) {
            i += 1;
            continue;
        }
        out.push_str(s.get(run..i).unwrap_or_default());
        let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        write_escape(out, c, upper_hex);
        i += c.len_utf8();
        run = i;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// The escape of one character that [`write_string`] does not copy as it is: the short
/// escapes JSON has, else `\uXXXX` (two of them for a character beyond the BMP).
fn write_escape(out: &mut String, c: char, upper_hex: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                if upper_hex {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Json {
        Json::object(vec![
            (
                "b".into(),
                Json::Array(vec![Json::Number("1".into()), Json::Object(vec![])]),
            ),
            (
                "a".into(),
                Json::object(vec![("x".into(), Json::Array(vec![]))]),
            ),
            ("s".into(), Json::str("ü\u{1}")),
        ])
    }

    #[test]
    fn renders_like_python_indent() {
        assert_eq!(
            render(&sample(), &Style::pretty("  ")),
            "{\n  \"b\": [\n    1,\n    {}\n  ],\n  \"a\": {\n    \"x\": []\n  },\n  \"s\": \"ü\\u0001\"\n}"
        );
        let mut crlf_tab = Style::pretty("\t");
        crlf_tab.newline = "\r\n".into();
        assert_eq!(
            render(&sample(), &crlf_tab),
            "{\r\n\t\"b\": [\r\n\t\t1,\r\n\t\t{}\r\n\t],\r\n\t\"a\": {\r\n\t\t\"x\": []\r\n\t},\r\n\t\"s\": \"ü\\u0001\"\r\n}"
        );
    }

    #[test]
    fn renders_one_line() {
        assert_eq!(
            render(&sample(), &Style::one_line(": ", ", ")),
            "{\"b\": [1, {}], \"a\": {\"x\": []}, \"s\": \"ü\\u0001\"}"
        );
        assert_eq!(
            render(&sample(), &Style::one_line(":", ",")),
            "{\"b\":[1,{}],\"a\":{\"x\":[]},\"s\":\"ü\\u0001\"}"
        );
    }

    #[test]
    fn escapes_strings_like_python() {
        let mut out = String::new();
        write_string(
            &mut out,
            "q\"b\\n\nr\rt\tb\u{8}f\u{c}\u{1f}\u{7f}ü😀/",
            false,
            false,
        );
        assert_eq!(out, "\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u001f\u{7f}ü😀/\"");
        out.clear();
        write_string(&mut out, "\u{1f}\u{7f}ü😀", true, false);
        assert_eq!(out, "\"\\u001f\\u007f\\u00fc\\ud83d\\ude00\"");
        out.clear();
        write_string(&mut out, "\u{1f}ü😀", true, true);
        assert_eq!(out, "\"\\u001F\\u00FC\\uD83D\\uDE00\"");
    }
}

#[cfg(test)]
mod string_proptests {
    use super::{write_escape, write_string};
    use proptest::prelude::*;

    /// The character-at-a-time writer `write_string` replaced (same escapes): the referee for
    /// where runs start and end.
    fn one_char_at_a_time(s: &str, ascii: bool, upper_hex: bool) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            let plain = !matches!(c, '"' | '\\') && c >= ' ' && !(ascii && c >= '\u{7f}');
            if plain {
                out.push(c);
            } else {
                write_escape(&mut out, c, upper_hex);
            }
        }
        out.push('"');
        out
    }

    proptest! {
        #[test]
        fn runs_write_what_one_char_at_a_time_wrote(
            s in "(\\PC|[\"\\\\\\x00-\\x1f\\x7f\u{80}-\u{ff}\u{1F600}])*",
            ascii in any::<bool>(),
            upper_hex in any::<bool>(),
        ) {
            let mut ours = String::new();
            write_string(&mut ours, &s, ascii, upper_hex);
            prop_assert_eq!(ours, one_char_at_a_time(&s, ascii, upper_hex));
        }

        #[test]
        fn without_ascii_it_is_serde_jsons_string(s in "(\\PC|[\"\\\\\\x00-\\x1f\\x7f])*") {
            let mut ours = String::new();
            write_string(&mut ours, &s, false, false);
            prop_assert_eq!(ours, serde_json::to_string(&s).unwrap());
        }
    }
}
