//! The canonical form written from its definition (SPEC §5, docs/formats.md), not from the
//! library: Python's `json.dumps(doc, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)`, except that numbers stay exactly as written (Python would re-spell
//! `1e-400`, `1E+5`, `-0.0`; the docs name these cases).
//!
//! Python's string escaping with `ensure_ascii=False` (`json.encoder.ESCAPE_DCT`): `"` and `\`
//! get a backslash, `\b \f \n \r \t` their short escapes, every other code point below U+0020
//! `\u00XX` in lower-case hex, and everything else (U+007F, U+2028, astral planes) raw.
//! Keys are sorted by code point, as Python sorts `str`.

use crate::spans::{Kind, Node};

/// The canonical text of a scanned document.
pub fn canonical(src: &str, n: &Node) -> String {
    let mut out = String::new();
    write(&mut out, src, n);
    out
}

fn write(out: &mut String, src: &str, n: &Node) {
    match &n.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Number => out.push_str(&src[n.start..n.end]),
        Kind::String(s) => string(out, s),
        Kind::Array(items) => {
            out.push('[');
            let mut first = true;
            for i in items {
                if !first {
                    out.push(',');
                }
                first = false;
                write(out, src, i);
            }
            out.push(']');
        }
        Kind::Object(members) => {
            // Sort by sequences of code points (chars), the way Python compares str.
            let mut sorted: Vec<(Vec<char>, &crate::spans::Member)> = members
                .iter()
                .map(|m| (m.key.chars().collect(), m))
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            let mut first = true;
            for (_, m) in sorted {
                if !first {
                    out.push(',');
                }
                first = false;
                string(out, &m.key);
                out.push(':');
                write(out, src, &m.value);
            }
            out.push('}');
        }
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_python() {
        // python3 -c 'import json; print(json.dumps(json.loads(S), sort_keys=True,
        //   separators=(",", ":"), ensure_ascii=False))'
        let src = "{\"b\": [1, 2.5, \"\\u0001\\u007f\\u2028\\t\"], \"a\": {\"\u{e9}\": null, \"Z\": true}}";
        let n = crate::spans::scan(src).unwrap();
        assert_eq!(
            canonical(src, &n),
            "{\"a\":{\"Z\":true,\"\u{e9}\":null},\"b\":[1,2.5,\"\\u0001\u{7f}\u{2028}\\t\"]}"
        );
    }
}
