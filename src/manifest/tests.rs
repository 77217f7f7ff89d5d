//! Format-preservation tests on whole documents: every expectation is the exact output bytes,
//! written as the input with only the changed lines replaced.

use crate::manifest::{Document, Edit, EditError, Json};

const V100: &str = include_str!("../../fixtures/format/v1.0.0-manifest.json");
const V110: &str = include_str!("../../fixtures/format/v1.1.0-manifest.json");
const V120: &str = include_str!("../../fixtures/format/v1.2.0-manifest.json");
const INDENT4: &str = include_str!("../../fixtures/format/indent4-unsorted.json");
const TABS: &str = include_str!("../../fixtures/format/tabs-sorted.json");
const PY_ASCII: &str = include_str!("../../fixtures/format/python-ascii.json");
const RAW_UTF8: &str = include_str!("../../fixtures/format/raw-utf8.json");
const MINIFIED: &str = include_str!("../../fixtures/format/minified.json");
const NUMBERS: &str = include_str!("../../fixtures/format/numbers.json");
const NESTED_EMPTY: &str = include_str!("../../fixtures/format/nested-empty.json");
const WITH_HISTORY: &str = include_str!("../../fixtures/format/with-history.json");

/// Parses JSON text into a value, keeping member order (for building expected values).
fn j(text: &str) -> Json {
    match Document::parse(text.as_bytes()) {
        Ok(d) => d.value(),
        Err(e) => panic!("bad test json {text:?}: {e}"),
    }
}

fn doc(src: &str) -> Document {
    match Document::parse(src.as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!("fixture does not parse: {e}"),
    }
}

fn add(pointer: &str, value: &str) -> Edit {
    Edit::Add {
        pointer: pointer.into(),
        value: j(value),
    }
}

fn set(pointer: &str, value: &str) -> Edit {
    Edit::Set {
        pointer: pointer.into(),
        value: j(value),
    }
}

fn append(pointer: &str, value: &str) -> Edit {
    Edit::Append {
        pointer: pointer.into(),
        value: j(value),
    }
}

fn remove(pointer: &str) -> Edit {
    Edit::Remove {
        pointer: pointer.into(),
    }
}

/// Applies the edits in order and returns the resulting text, checking that it re-parses and that
/// the semantic value changed exactly as the edits say.
fn edited(src: &str, edits: &[Edit]) -> String {
    let mut d = doc(src);
    let mut expected = d.value();
    for edit in edits {
        if let Err(e) = d.apply(edit) {
            panic!("{edit:?} failed: {e}");
        }
        apply_to_value(&mut expected, edit);
    }
    let text = d.as_str().to_string();
    let reparsed = doc(&text).value();
    assert!(
        reparsed.deep_eq(&expected),
        "value after edits differs:\n{text}"
    );
    assert_eq!(reparsed, d.value());
    text
}

/// The semantic effect of an edit, on an owned value (the oracle for `edited`).
fn apply_to_value(v: &mut Json, edit: &Edit) {
    fn parent<'a>(v: &'a mut Json, pointer: &str) -> (&'a mut Json, String) {
        let mut tokens = crate::manifest::pointer_tokens(pointer).unwrap_or_default();
        let last = tokens.pop().unwrap_or_default();
        let mut cur = v;
        for t in tokens {
            cur = match cur {
                Json::Object(m) => &mut m.iter_mut().find(|(k, _)| *k == t).expect("path").1,
                Json::Array(items) => &mut items[t.parse::<usize>().expect("index")],
                _ => panic!("path through scalar"),
            };
        }
        (cur, last)
    }
    match edit {
        Edit::Set { pointer, value } if pointer.is_empty() => *v = value.clone(),
        Edit::Add { pointer, value } | Edit::Set { pointer, value } => {
            let (p, key) = parent(v, pointer);
            match p {
                Json::Object(m) => match m.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value.clone(),
                    None => m.push((key, value.clone())),
                },
                Json::Array(items) => items[key.parse::<usize>().expect("index")] = value.clone(),
                _ => panic!("not a container"),
            }
        }
        Edit::Remove { pointer } => {
            let (p, key) = parent(v, pointer);
            match p {
                Json::Object(_) => {
                    p.remove(&key);
                }
                Json::Array(items) => {
                    items.remove(key.parse::<usize>().expect("index"));
                }
                _ => panic!("not a container"),
            }
        }
        Edit::Rename { pointer, new_key } => {
            let (p, key) = parent(v, pointer);
            if let Json::Object(m) = p {
                if let Some(slot) = m.iter_mut().find(|(k, _)| *k == key) {
                    slot.0 = new_key.clone();
                }
            }
        }
        Edit::Append { pointer, value } => match v.pointer(pointer).cloned() {
            Some(Json::Array(mut items)) => {
                items.push(value.clone());
                let (p, key) = parent(v, pointer);
                match p {
                    Json::Object(m) => {
                        if let Some(slot) = m.iter_mut().find(|(k, _)| *k == key) {
                            slot.1 = Json::Array(items);
                        }
                    }
                    _ if pointer.is_empty() => *v = Json::Array(items),
                    _ => panic!("unsupported in oracle"),
                }
            }
            _ => panic!("not an array"),
        },
    }
}

/// `src` with exactly one occurrence of `old` replaced by `new` (asserting it occurs once).
fn replaced(src: &str, old: &str, new: &str) -> String {
    assert_eq!(
        src.matches(old).count(),
        1,
        "anchor {old:?} must occur exactly once"
    );
    src.replacen(old, new, 1)
}

const CHAIN: &str = r#"{"is_chainable_stage": false, "prior_stages": []}"#;

#[test]
fn no_edit_round_trip_is_byte_identical() {
    for src in [
        V100,
        V110,
        V120,
        INDENT4,
        TABS,
        PY_ASCII,
        RAW_UTF8,
        MINIFIED,
        NUMBERS,
        NESTED_EMPTY,
        WITH_HISTORY,
    ] {
        assert_eq!(doc(src).into_bytes(), src.as_bytes());
    }
}

#[test]
fn v100_one_line_python_default_gets_new_members_appended() {
    let out = edited(
        V100,
        &[
            add("/input_snapshots", "{}"),
            add("/inputs_hash", "null"),
            add("/job_id", r#""spring-launch-01""#),
            add("/chain_metadata", CHAIN),
            set("/schema_version", r#""1.2.0""#),
        ],
    );
    let expected = replaced(
        &replaced(
            V100,
            r#"{"schema_version": "1.0.0", "#,
            r#"{"schema_version": "1.2.0", "#,
        ),
        r#""meta": {}, "error": null}"#,
        r#""meta": {}, "error": null, "input_snapshots": {}, "inputs_hash": null, "job_id": "spring-launch-01", "chain_metadata": {"is_chainable_stage": false, "prior_stages": []}}"#,
    );
    assert_eq!(out, expected);
    assert!(out.ends_with("}}\n"), "the trailing newline stays");
}

#[test]
fn v100_gets_a_new_migration_history_on_one_line() {
    let out = edited(
        V100,
        &[add(
            "/migration_history",
            r#"[{"from_version": "1.0.0", "to_version": "1.2.0", "steps": ["1.0.0->1.2.0"], "changes": []}]"#,
        )],
    );
    let expected = replaced(
        V100,
        r#""error": null}"#,
        r#""error": null, "migration_history": [{"from_version": "1.0.0", "to_version": "1.2.0", "steps": ["1.0.0->1.2.0"], "changes": []}]}"#,
    );
    assert_eq!(out, expected);
}

#[test]
fn v110_sorted_gets_chain_metadata_at_its_sorted_place() {
    let mut d = doc(V110);
    for (key, value) in [
        ("input_snapshots", "{}"),
        ("inputs_hash", "null"),
        ("job_id", r#""x""#),
    ] {
        assert_eq!(
            d.apply(&add(&format!("/{key}"), value)),
            Err(EditError::Exists(format!("/{key}")))
        );
    }
    assert_eq!(d.as_str(), V110, "failed edits change nothing");
    let out = edited(
        V110,
        &[
            add("/chain_metadata", CHAIN),
            set("/schema_version", r#""1.2.0""#),
        ],
    );
    let expected = replaced(
        &replaced(
            V110,
            "  \"brief_hash\": \"sha256:4814d92093ac8a0f4a2163ab87dee509ba306a58f5888be0edcb2fcd0712028b\",\n",
            "  \"brief_hash\": \"sha256:4814d92093ac8a0f4a2163ab87dee509ba306a58f5888be0edcb2fcd0712028b\",\n\
             \x20 \"chain_metadata\": {\n\
             \x20   \"is_chainable_stage\": false,\n\
             \x20   \"prior_stages\": []\n\
             \x20 },\n",
        ),
        "  \"schema_version\": \"1.1.0\",\n",
        "  \"schema_version\": \"1.2.0\",\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn v110_gets_a_new_migration_history_array_holding_one_object() {
    let out = edited(
        V110,
        &[add(
            "/migration_history",
            r#"[{"from_version": "1.1.0", "to_version": "1.2.0", "steps": ["1.1.0->1.2.0"], "changes": ["Add chain_metadata"]}]"#,
        )],
    );
    let expected = replaced(
        V110,
        "  \"meta\": {},\n",
        "  \"meta\": {},\n\
         \x20 \"migration_history\": [\n\
         \x20   {\n\
         \x20     \"from_version\": \"1.1.0\",\n\
         \x20     \"to_version\": \"1.2.0\",\n\
         \x20     \"steps\": [\n\
         \x20       \"1.1.0->1.2.0\"\n\
         \x20     ],\n\
         \x20     \"changes\": [\n\
         \x20       \"Add chain_metadata\"\n\
         \x20     ]\n\
         \x20   }\n\
         \x20 ],\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn v120_already_has_every_field() {
    let mut d = doc(V120);
    for key in ["input_snapshots", "inputs_hash", "job_id", "chain_metadata"] {
        assert_eq!(
            d.apply(&add(&format!("/{key}"), "null")),
            Err(EditError::Exists(format!("/{key}")))
        );
    }
    assert_eq!(d.into_bytes(), V120.as_bytes());
}

#[test]
fn append_to_an_existing_migration_history() {
    let out = edited(
        WITH_HISTORY,
        &[
            append(
                "/migration_history",
                r#"{"changes": ["Add chain_metadata"], "from_version": "1.1.0", "to_version": "1.2.0"}"#,
            ),
            set("/schema_version", r#""1.2.0""#),
        ],
    );
    let expected = "{\n  \"job_id\": \"job-a\",\n  \"migration_history\": [\n    {\n      \"changes\": [\n        \"Add job_id \\\"job-a\\\" (from the path)\"\n      ],\n      \"from_version\": \"1.0.0\",\n      \"to_version\": \"1.1.0\"\n    },\n    {\n      \"changes\": [\n        \"Add chain_metadata\"\n      ],\n      \"from_version\": \"1.1.0\",\n      \"to_version\": \"1.2.0\"\n    }\n  ],\n  \"schema_version\": \"1.2.0\"\n}\n";
    assert_eq!(out, expected);
}

#[test]
fn four_space_unsorted_keys_append_last_and_open_up_empties() {
    let out = edited(
        INDENT4,
        &[
            add("/job_id", r#""job-1""#),
            add("/meta/origin", r#"{"tool": "x", "n": [1]}"#),
            append("/tags", r#""a""#),
            append("/tags", r#""b""#),
            add("/artifacts/outputs~1a.md/mime", r#""text/markdown""#),
        ],
    );
    let expected = "{\n    \"run_id\": \"r-1\",\n    \"schema_version\": \"1.0.0\",\n    \"job_type\": \"instagram_copy\",\n    \"artifacts\": {\n        \"outputs/a.md\": {\n            \"bytes\": 12,\n            \"mime\": \"text/markdown\",\n            \"sha256\": \"sha256:00\"\n        }\n    },\n    \"meta\": {\n        \"origin\": {\n            \"tool\": \"x\",\n            \"n\": [\n                1\n            ]\n        }\n    },\n    \"tags\": [\n        \"a\",\n        \"b\"\n    ],\n    \"job_id\": \"job-1\"\n}\n";
    assert_eq!(out, expected);
}

#[test]
fn tab_indent_sorted_keys_insert_at_sorted_places_including_first() {
    let out = edited(
        TABS,
        &[
            add("/inputs_hash", "null"),
            add("/input_snapshots", "{}"),
            add("/chain_metadata", CHAIN),
            add("/aaa", "1"),
            add("/zzz", r#"["x"]"#),
        ],
    );
    let expected = "{\n\t\"aaa\": 1,\n\t\"artifacts\": {},\n\t\"chain_metadata\": {\n\t\t\"is_chainable_stage\": false,\n\t\t\"prior_stages\": []\n\t},\n\t\"input_snapshots\": {},\n\t\"inputs_hash\": null,\n\t\"job_type\": \"x\",\n\t\"run_id\": \"r-2\",\n\t\"schema_version\": \"1.0.0\",\n\t\"zzz\": [\n\t\t\"x\"\n\t]\n}\n";
    assert_eq!(out, expected);
}

#[test]
fn crlf_line_endings_stay_crlf() {
    let src = TABS.replace('\n', "\r\n");
    let out = edited(
        &src,
        &[
            add("/chain_metadata", CHAIN),
            set("/artifacts", r#"{"a": 1}"#),
            add("/zzz", "{}"),
            add("/zzz/k", "[]"),
            append("/zzz/k", "true"),
        ],
    );
    let expected = "{\r\n\t\"artifacts\": {\r\n\t\t\"a\": 1\r\n\t},\r\n\t\"chain_metadata\": {\r\n\t\t\"is_chainable_stage\": false,\r\n\t\t\"prior_stages\": []\r\n\t},\r\n\t\"job_type\": \"x\",\r\n\t\"run_id\": \"r-2\",\r\n\t\"schema_version\": \"1.0.0\",\r\n\t\"zzz\": {\r\n\t\t\"k\": [\r\n\t\t\ttrue\r\n\t\t]\r\n\t}\r\n}\r\n";
    assert_eq!(out, expected);
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "no bare LF was introduced"
    );
}

#[test]
fn python_ascii_file_gets_escaped_non_ascii() {
    let out = edited(
        PY_ASCII,
        &[
            add("/job_id", "\"J\u{f6}rg\""),
            add("/zeta", "\"\u{1f600} \u{7f}\""),
        ],
    );
    let expected = r#"{"job_id": "J\u00f6rg", "name": "M\u00fcller", "run_id": "r-3", "schema_version": "1.0.0", "zeta": "\ud83d\ude00 \u007f"}"#;
    assert_eq!(out, expected);
    assert!(!out.ends_with('\n'), "no trailing newline was added");
}

#[test]
fn raw_utf8_file_gets_raw_non_ascii() {
    let out = edited(RAW_UTF8, &[add("/job_id", "\"J\u{f6}rg\"")]);
    let expected = replaced(
        RAW_UTF8,
        "  \"name\": \"Müller\",\n",
        "  \"job_id\": \"Jörg\",\n  \"name\": \"Müller\",\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn minified_without_trailing_newline() {
    let out = edited(
        MINIFIED,
        &[
            add("/job_id", r#""j""#),
            add("/meta/k", r#""v""#),
            add("/chain_metadata", CHAIN),
            set("/schema_version", r#""1.2.0""#),
        ],
    );
    let expected = r#"{"schema_version":"1.2.0","run_id":"r-4","meta":{"k":"v"},"job_id":"j","chain_metadata":{"is_chainable_stage":false,"prior_stages":[]}}"#;
    assert_eq!(out, expected);
}

#[test]
fn exotic_numbers_are_preserved_byte_for_byte() {
    let out = edited(
        NUMBERS,
        &[
            add("/schema_version", r#""1.2.0""#),
            set("/one", "2.50"),
            add("/more", "[1E400, -0, 0.000001e-7]"),
        ],
    );
    let expected = "{\n  \"big\": 123456789012345678901234567890,\n  \"exp\": 1E+5,\n  \"more\": [\n    1E400,\n    -0,\n    0.000001e-7\n  ],\n  \"neg_zero\": -0.0,\n  \"one\": 2.50,\n  \"schema_version\": \"1.2.0\",\n  \"tiny\": 1e-400,\n  \"umlaut\": \"\\u00fc\"\n}\n";
    assert_eq!(out, expected);
    let v = doc(&out).value();
    assert_eq!(
        v.get("big"),
        Some(&Json::Number("123456789012345678901234567890".into()))
    );
    assert_eq!(v.get("tiny"), Some(&Json::Number("1e-400".into())));
}

#[test]
fn a_file_without_schema_version_gets_one() {
    let src = "{\n  \"run_id\": \"r\",\n  \"status\": \"succeeded\"\n}\n";
    let out = edited(src, &[set("/schema_version", r#""1.0.0""#)]);
    assert_eq!(
        out,
        "{\n  \"run_id\": \"r\",\n  \"schema_version\": \"1.0.0\",\n  \"status\": \"succeeded\"\n}\n"
    );
}

#[test]
fn nested_insertion_into_empty_containers_in_a_multi_line_doc() {
    let out = edited(
        NESTED_EMPTY,
        &[
            add("/outer/inner/k", r#""v""#),
            append("/outer/list", r#"{"a": 1}"#),
        ],
    );
    let expected = replaced(
        NESTED_EMPTY,
        "    \"inner\": {},\n    \"list\": []\n",
        "    \"inner\": {\n      \"k\": \"v\"\n    },\n    \"list\": [\n      {\n        \"a\": 1\n      }\n    ]\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn one_line_empty_root_and_arrays() {
    assert_eq!(edited("{}", &[add("/a", "[1]")]), r#"{"a": [1]}"#);
    assert_eq!(
        edited("{}\n", &[add("/a", "{}"), add("/a/b", "2")]),
        "{\"a\": {\"b\": 2}}\n"
    );
    assert_eq!(edited("[]", &[append("", "1"), append("", "2")]), "[1, 2]");
    assert_eq!(
        edited("[1,2]", &[append("", "{\"k\": 3}")]),
        "[1,2,{\"k\":3}]"
    );
    assert_eq!(edited("[1]", &[append("", "3")]), "[1, 3]");
    assert_eq!(edited("[\n  1\n]", &[append("", "3")]), "[\n  1,\n  3\n]");
}

#[test]
fn set_replaces_only_the_value_bytes() {
    let src = "{\n  \"n\": 0,\n  \"schema_version\" :  \"1.0.0\" ,\n  \"x\": {\"keep\": [1, 2]}\n}";
    let out = edited(
        src,
        &[
            set("/schema_version", r#""1.2.0""#),
            set("/x/keep/1", r#"{"n": 1}"#),
        ],
    );
    assert_eq!(
        out,
        "{\n  \"n\": 0,\n  \"schema_version\" :  \"1.2.0\" ,\n  \"x\": {\"keep\": [1, {\"n\": 1}]}\n}"
    );
    assert_eq!(
        edited("  [1] \n", &[set("", "{\"a\": 2}")]),
        "  {\"a\": 2} \n"
    );
}

#[test]
fn remove_takes_one_adjacent_separator() {
    let src = "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2,\n    3\n  ],\n  \"c\": {\"x\": 1, \"y\": 2},\n  \"d\": {\"only\": true}\n}\n";
    assert_eq!(
        edited(src, &[remove("/a")]),
        "{\n  \"b\": [\n    1,\n    2,\n    3\n  ],\n  \"c\": {\"x\": 1, \"y\": 2},\n  \"d\": {\"only\": true}\n}\n"
    );
    assert_eq!(
        edited(src, &[remove("/c")]),
        "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2,\n    3\n  ],\n  \"d\": {\"only\": true}\n}\n"
    );
    assert_eq!(
        edited(src, &[remove("/d")]),
        "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2,\n    3\n  ],\n  \"c\": {\"x\": 1, \"y\": 2}\n}\n"
    );
    assert_eq!(
        edited(
            src,
            &[
                remove("/b/1"),
                remove("/b/1"),
                remove("/c/y"),
                remove("/d/only")
            ]
        ),
        "{\n  \"a\": 1,\n  \"b\": [\n    1\n  ],\n  \"c\": {\"x\": 1},\n  \"d\": {}\n}\n"
    );
    assert_eq!(edited("[1, 2, 3]", &[remove("/0")]), "[2, 3]");
    assert_eq!(edited("[1, 2, 3]", &[remove("/2")]), "[1, 2]");
}

#[test]
fn rename_replaces_just_the_key_token() {
    let src = "{\n  \"old\" : 1,\n  \"other\": 2\n}";
    let rename = |p: &str, k: &str| Edit::Rename {
        pointer: p.into(),
        new_key: k.into(),
    };
    assert_eq!(
        edited(src, &[rename("/old", "new")]),
        "{\n  \"new\" : 1,\n  \"other\": 2\n}"
    );
    assert_eq!(edited(src, &[rename("/old", "old")]), src);
    let mut d = doc(src);
    assert_eq!(
        d.apply(&rename("/old", "other")),
        Err(EditError::Exists("/other".into()))
    );
    assert_eq!(
        d.apply(&rename("/nope", "x")),
        Err(EditError::NotFound("/nope".into()))
    );
    let mut py = doc(PY_ASCII);
    assert_eq!(py.apply(&rename("/name", "n\u{e4}me")), Ok(()));
    assert!(py.as_str().starts_with(r#"{"n\u00e4me": "M\u00fcller", "#));
}

#[test]
fn escapes_of_untouched_strings_stay_as_written() {
    let src = r#"{"a": "\u00fc\/\u00FC", "b": 1}"#;
    let out = edited(src, &[set("/b", "2")]);
    assert_eq!(out, r#"{"a": "\u00fc\/\u00FC", "b": 2}"#);
}

#[test]
fn edit_errors() {
    let mut d = doc("{\"a\": {\"b\": 1}, \"l\": [1], \"s\": \"x\"}");
    let before = d.as_str().to_string();
    let cases = [
        (add("", "1"), EditError::BadPointer("".into())),
        (add("a", "1"), EditError::BadPointer("a".into())),
        (add("/a~2", "1"), EditError::BadPointer("/a~2".into())),
        (add("/a", "1"), EditError::Exists("/a".into())),
        (add("/x/y", "1"), EditError::NotFound("/x".into())),
        (add("/l/k", "1"), EditError::NotAnObject("/l".into())),
        (add("/s/k", "1"), EditError::NotAnObject("/s".into())),
        (set("/l/5", "1"), EditError::NotFound("/l/5".into())),
        (set("/s/k", "1"), EditError::NotAnObject("/s".into())),
        (remove("/zz"), EditError::NotFound("/zz".into())),
        (remove("/l/1"), EditError::NotFound("/l/1".into())),
        (remove(""), EditError::BadPointer("".into())),
        (append("/a", "1"), EditError::NotAnArray("/a".into())),
        (append("/a/b/c", "1"), EditError::NotFound("/a/b/c".into())),
    ];
    for (edit, err) in cases {
        assert_eq!(d.apply(&edit), Err(err), "{edit:?}");
    }
    let bad_number = Edit::Set {
        pointer: "/a/b".into(),
        value: Json::Number("01".into()),
    };
    assert!(matches!(
        d.apply(&bad_number),
        Err(EditError::Invalid { .. })
    ));
    let mut deep = Json::Null;
    for _ in 0..200 {
        deep = Json::Array(vec![deep]);
    }
    let too_deep = Edit::Set {
        pointer: "/a/b".into(),
        value: deep,
    };
    let err = d.apply(&too_deep).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("the edit at json pointer \"/a/b\" would not leave valid json: the new value is nested deeper than 128 levels".into())
    );
    // Nesting that is fine alone but too deep at its target is caught by the re-parse.
    let mut nested = Json::Null;
    for _ in 0..127 {
        nested = Json::Array(vec![nested]);
    }
    let err = d.apply(&Edit::Set {
        pointer: "/a/b".into(),
        value: nested,
    });
    assert!(matches!(err, Err(EditError::Invalid { .. })), "{err:?}");
    assert_eq!(
        d.as_str(),
        before,
        "failed edits leave the document unchanged"
    );
}
