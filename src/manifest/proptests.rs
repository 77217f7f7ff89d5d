//! Property tests: rendering round trips, byte-exact insertion, the canonical form, no panics
//! on any input or edit, and the re-parse after an edit against a full parse.

use proptest::prelude::*;

use crate::manifest::parse::{parse_text, reparse, Changed, Node, NodeKind};
use crate::manifest::{canonical_json, escape_pointer_token, render, Document, Edit, Json, Style};

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,8}",
        prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1}'),
                Just('\u{7f}'),
                Just('ü'),
                Just('😀'),
                Just('/'),
                Just('~')
            ],
            0..5
        )
        .prop_map(String::from_iter),
    ]
}

fn arb_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (any::<i32>(), 0u32..10_000).prop_map(|(a, b)| format!("{a}.{b}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "-0.0",
            "1.0",
            "1e-400",
            "1E+5",
            "1e400",
            "123456789012345678901234567890",
            "2.5E-3",
        ])
        .prop_map(str::to_string),
    ]
}

/// An ordinary number: one `serde_json` reads back exactly as the same text reads.
fn arb_ordinary_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        (
            any::<i16>(),
            prop::sample::select(vec!["5", "25", "125", "75"])
        )
            .prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

pub(crate) fn dedup(members: Vec<(String, Json)>) -> Vec<(String, Json)> {
    let mut seen = std::collections::HashSet::new();
    members
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn arb_json_with(numbers: BoxedStrategy<String>) -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        numbers.prop_map(Json::Number),
        arb_string().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec((arb_string(), inner), 0..5).prop_map(|m| Json::Object(dedup(m))),
        ]
    })
}

fn arb_json() -> impl Strategy<Value = Json> {
    arb_json_with(arb_number().boxed())
}

fn arb_object() -> impl Strategy<Value = Json> {
    prop::collection::vec((arb_string(), arb_json()), 0..6).prop_map(|m| Json::Object(dedup(m)))
}

pub(crate) fn arb_style() -> impl Strategy<Value = Style> {
    let base = prop_oneof![
        Just(Style::pretty("  ")),
        Just(Style::pretty("    ")),
        Just(Style::pretty("\t")),
        Just(Style {
            newline: "\r\n".into(),
            ..Style::pretty("  ")
        }),
        Just(Style::one_line(": ", ", ")),
        Just(Style::one_line(":", ",")),
    ];
    (base, any::<bool>(), any::<bool>()).prop_map(|(mut s, ascii, upper)| {
        s.ascii = ascii;
        s.upper_hex = upper;
        s
    })
}

/// A whole file: the rendered value plus, maybe, a trailing newline.
fn file(value: &Json, style: &Style, trailing_newline: bool) -> String {
    let mut text = render(value, style);
    if trailing_newline {
        text.push_str(&style.newline);
    }
    text
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn arb_pointer() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "0", "1", "x"]),
        1 => prop::sample::select(vec!["-", "~0", "~1", "~2", ""]),
    ];
    prop_oneof![
        9 => prop::collection::vec(token, 0..3).prop_map(|ts| ts.iter().map(|t| format!("/{t}")).collect()),
        1 => any::<String>(),
    ]
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (arb_pointer(), arb_json()).prop_map(|(pointer, value)| Edit::Add { pointer, value }),
        (arb_pointer(), arb_json()).prop_map(|(pointer, value)| Edit::Set { pointer, value }),
        arb_pointer().prop_map(|pointer| Edit::Remove { pointer }),
        (arb_pointer(), arb_string())
            .prop_map(|(pointer, new_key)| Edit::Rename { pointer, new_key }),
        (arb_pointer(), arb_json()).prop_map(|(pointer, value)| Edit::Append { pointer, value }),
        // Values that are not valid JSON text must be refused, never spliced in.
        arb_pointer().prop_map(|pointer| Edit::Set {
            pointer,
            value: Json::Number("01x".into())
        }),
    ]
}

/// Small documents built from a few keys, so generated pointers often hit something.
fn arb_small_doc() -> impl Strategy<Value = Json> {
    let key = prop::sample::select(vec!["a", "b", "0", "x"]).prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(Json::Null),
        Just(Json::Number("1".into())),
        Just(Json::str("s"))
    ];
    let inner = leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|m| Json::Object(dedup(m))),
        ]
    });
    let root_key = prop::sample::select(vec!["a", "b", "0", "x"]).prop_map(str::to_string);
    prop_oneof![
        3 => prop::collection::vec((root_key, inner.clone()), 0..4).prop_map(|m| Json::Object(dedup(m))),
        1 => inner,
    ]
}

/// What a successful edit must have done, checked on the new value.
fn check_effect(edit: &Edit, after: &Json) -> bool {
    match edit {
        Edit::Add { pointer, value } | Edit::Set { pointer, value } => {
            after.pointer(pointer) == Some(value)
        }
        Edit::Append { pointer, value } => match after.pointer(pointer) {
            Some(Json::Array(items)) => items.last() == Some(value),
            _ => false,
        },
        Edit::Rename { pointer, new_key } => {
            let parent = pointer.rfind('/').map_or("", |i| &pointer[..i]);
            after
                .pointer(&format!("{parent}/{}", escape_pointer_token(new_key)))
                .is_some()
        }
        Edit::Remove { .. } => true,
    }
}

proptest! {
    #[test]
    fn rendered_values_parse_back_exactly(
        v in arb_json(),
        style in arb_style(),
        nl in any::<bool>(),
    ) {
        let text = file(&v, &style, nl);
        let doc = Document::parse(text.as_bytes());
        prop_assert!(doc.is_ok(), "{text:?}: {doc:?}");
        let doc = doc.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(doc.value(), v);
        prop_assert_eq!(doc.into_bytes(), text.into_bytes());
    }

    #[test]
    fn add_only_inserts_bytes(
        v in arb_object(),
        style in arb_style(),
        nl in any::<bool>(),
        key in arb_string(),
        value in arb_json(),
    ) {
        prop_assume!(v.get(&key).is_none());
        let text = file(&v, &style, nl);
        let mut doc = Document::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pointer = format!("/{}", escape_pointer_token(&key));
        let applied = doc.apply(&Edit::Add { pointer, value: value.clone() });
        prop_assert!(applied.is_ok(), "{applied:?}");
        let out = doc.as_bytes();
        let input = text.as_bytes();
        prop_assert!(out.len() > input.len());
        let prefix = common_prefix(input, out);
        let suffix = common_suffix(input, out).min(input.len() - prefix);
        prop_assert_eq!(prefix + suffix, input.len(), "input {:?} output {:?}", text, doc.as_str());
        let mut expected = v.clone();
        if let Json::Object(members) = &mut expected {
            members.push((key, value));
        }
        prop_assert!(doc.value().deep_eq(&expected));
    }

    #[test]
    fn canonical_form_reads_back_with_serde(
        v in arb_json_with(arb_ordinary_number().boxed()),
    ) {
        let canonical = canonical_json(&v);
        let back: Result<serde_json::Value, _> = serde_json::from_str(&canonical);
        prop_assert!(back.is_ok(), "{canonical}");
        prop_assert_eq!(back.map_err(|e| TestCaseError::fail(e.to_string()))?, v.to_serde());
        // Our own parser reads it as the same value, with every object's keys sorted.
        let ours = Document::parse(canonical.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(ours.value().deep_eq(&v));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Document::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_damaged_json(
        v in arb_json(),
        style in arb_style(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = render(&v, &style).into_bytes();
        for (at, byte, how) in damage {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        if let Ok(doc) = Document::parse(&bytes) {
            prop_assert_eq!(doc.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn arbitrary_edits_never_panic(
        v in arb_small_doc(),
        style in arb_style(),
        edits in prop::collection::vec(arb_edit(), 1..6),
    ) {
        let text = render(&v, &style);
        let mut doc = Document::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for edit in &edits {
            let before = doc.as_str().to_string();
            match doc.apply(edit) {
                Ok(()) => {
                    prop_assert!(Document::parse(doc.as_bytes()).is_ok());
                    prop_assert!(check_effect(edit, &doc.value()), "{edit:?} gave {}", doc.as_str());
                }
                Err(_) => prop_assert_eq!(doc.as_str(), before.as_str()),
            }
            // Applied or refused, the tree (re-parsed only where the edit touched it, or read
            // again after a refusal) is the one a full parse of the bytes gives.
            let full = parse_text(doc.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&doc.root, &full, "after {:?}: {}", edit, doc.as_str());
        }
    }
}

/// Every value's span in a tree, in source order.
fn value_spans(node: &Node, out: &mut Vec<(usize, usize)>) {
    out.push((node.start, node.end));
    match &node.kind {
        NodeKind::Array(items) => items.iter().for_each(|n| value_spans(n, out)),
        NodeKind::Object(members) => members.iter().for_each(|m| value_spans(&m.value, out)),
        _ => {}
    }
}

/// Bytes that change a document's structure or extend a token when spliced in.
fn arb_splice_text() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        "\"",
        ",",
        ":",
        " ",
        "\n",
        "\\",
        "0",
        "1",
        "-",
        ".",
        "e",
        "true",
        "null",
        "\"a\"",
        "\"a\":",
        "[1]",
        "{\"b\":2}",
        ",\"x\":[]",
        "ü",
    ]);
    prop::collection::vec(piece, 0..4).prop_map(|ps| ps.concat())
}

/// How a test splices a document: random text over random bytes, or a new value over the
/// exact span of an old value (what a `Set` does).
#[derive(Debug, Clone)]
enum TestSplice {
    Bytes(prop::sample::Index, usize, String),
    Value(prop::sample::Index, Json, Style),
}

fn arb_test_splice() -> impl Strategy<Value = TestSplice> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0usize..6, arb_splice_text())
            .prop_map(|(at, len, text)| TestSplice::Bytes(at, len, text)),
        (any::<prop::sample::Index>(), arb_json(), arb_style())
            .prop_map(|(at, v, style)| TestSplice::Value(at, v, style)),
    ]
}

/// The splice as `(start, old_end, text)`, on character boundaries of `src`.
fn place(src: &str, root: &Node, splice: &TestSplice) -> (usize, usize, String) {
    match splice {
        TestSplice::Bytes(at, len, text) => {
            let mut start = at.index(src.len() + 1);
            while !src.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(src.len());
            while !src.is_char_boundary(end) {
                end += 1;
            }
            (start, end, text.clone())
        }
        TestSplice::Value(at, v, style) => {
            let mut spans = Vec::new();
            value_spans(root, &mut spans);
            let (start, end) = spans[at.index(spans.len())];
            (start, end, render(v, style))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The re-parse after a splice, which moves the untouched subtrees over, gives exactly the
    /// tree (every span) or the error that a full parse of the new text gives.
    #[test]
    fn reparse_matches_a_full_parse(
        v in arb_json(),
        style in arb_style(),
        splices in prop::collection::vec(arb_test_splice(), 1..4),
    ) {
        let mut src = render(&v, &style);
        let mut root = parse_text(&src).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for splice in &splices {
            let (start, old_end, text) = place(&src, &root, splice);
            let next = format!("{}{}{}", &src[..start], text, &src[old_end..]);
            let changed = Changed { start, old_end, new_end: start + text.len() };
            let full = parse_text(&next);
            let incremental = reparse(&next, root.clone(), changed);
            prop_assert_eq!(&incremental, &full, "{:?} -> {:?}", src, next);
            if let Ok(new_root) = full {
                src = next;
                root = new_root;
            }
        }
    }
}
