//! Properties over generated manifests.
//!
//! The pure ones run `migrate_manifest` directly (no git, fast) on manifests generated in every
//! layout the pipeline writes (indent 2/4/tab, Python's one-line default, minified; CRLF or
//! not; sorted keys or not; ASCII-escaped or raw UTF-8; with or without a trailing newline),
//! with random extra members, every version (or none), earlier history, and fields that are
//! already present with other values. A model of the built-in migrations says what the result
//! must be; the checksums are recomputed here with an independent canonical writer.
//!
//! The git-level property runs the real binary on a few generated repositories and checks that
//! nothing but the migrated manifests changed, and that the CLI wrote exactly what the
//! library computes.

mod common;

use artifact_migrate::engine::invariants::DEFAULT_PROTECTED;
use artifact_migrate::engine::{migrate_manifest, tool_name, BatchInfo, MigrateOptions, Outcome};
use artifact_migrate::ids::CommitId;
use artifact_migrate::layout::Layouts;
use artifact_migrate::manifest::{Document, Json};
use artifact_migrate::schema::{Registry, Version};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// `cases` cases, no regression files written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// A JSON value that remembers number spellings, and a writer for every pipeline layout.

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<V>),
    Obj(Vec<(String, V)>),
}

impl V {
    fn str(s: &str) -> V {
        V::Str(s.to_string())
    }
    fn get(&self, key: &str) -> Option<&V> {
        match self {
            V::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn set(&mut self, key: &str, value: V) {
        if let V::Obj(m) = self {
            match m.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => m.push((key.to_string(), value)),
            }
        }
    }
    fn remove(&mut self, key: &str) {
        if let V::Obj(m) = self {
            m.retain(|(k, _)| k != key);
        }
    }
    fn to_json(&self) -> Json {
        match self {
            V::Null => Json::Null,
            V::Bool(b) => Json::Bool(*b),
            V::Num(n) => Json::Number(n.clone()),
            V::Str(s) => Json::String(s.clone()),
            V::Arr(a) => Json::Array(a.iter().map(V::to_json).collect()),
            V::Obj(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
    fn sorted(&self) -> V {
        match self {
            V::Arr(a) => V::Arr(a.iter().map(V::sorted).collect()),
            V::Obj(m) => {
                let mut m: Vec<(String, V)> =
                    m.iter().map(|(k, v)| (k.clone(), v.sorted())).collect();
                m.sort_by(|a, b| a.0.cmp(&b.0));
                V::Obj(m)
            }
            other => other.clone(),
        }
    }
}

/// How a manifest is laid out.
#[derive(Debug, Clone)]
struct Layout {
    /// `Some(unit)`: Python's `indent=unit`; `None`: one line.
    indent: Option<&'static str>,
    /// One-line separators: Python's default (`", "`, `": "`) or minified.
    spaced: bool,
    crlf: bool,
    /// `ensure_ascii=True`.
    ascii: bool,
    trailing_newline: bool,
}

/// A JSON string as Python writes it (`\uXXXX` in lower-case hex).
fn write_str(out: &mut String, s: &str, ascii: bool) {
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
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &V, l: &Layout, depth: usize) {
    let nl = if l.crlf { "\r\n" } else { "\n" };
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Num(n) => out.push_str(n),
        V::Str(s) => write_str(out, s, l.ascii),
        V::Arr(a) if a.is_empty() => out.push_str("[]"),
        V::Obj(m) if m.is_empty() => out.push_str("{}"),
        V::Arr(_) | V::Obj(_) => {
            let (open, close) = if matches!(v, V::Arr(_)) {
                ('[', ']')
            } else {
                ('{', '}')
            };
            out.push(open);
            let items: Vec<(Option<&String>, &V)> = match v {
                V::Arr(a) => a.iter().map(|x| (None, x)).collect(),
                V::Obj(m) => m.iter().map(|(k, x)| (Some(k), x)).collect(),
                _ => unreachable!(),
            };
            for (i, (k, x)) in items.iter().enumerate() {
                match l.indent {
                    Some(unit) => {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(nl);
                        out.push_str(&unit.repeat(depth + 1));
                    }
                    None if i > 0 => out.push_str(if l.spaced { ", " } else { "," }),
                    None => {}
                }
                if let Some(k) = k {
                    write_str(out, k, l.ascii);
                    out.push_str(if l.spaced || l.indent.is_some() {
                        ": "
                    } else {
                        ":"
                    });
                }
                write_value(out, x, l, depth + 1);
            }
            if let Some(unit) = l.indent {
                out.push_str(nl);
                out.push_str(&unit.repeat(depth));
            }
            out.push(close);
        }
    }
}

fn render(v: &V, l: &Layout) -> Vec<u8> {
    let mut out = String::new();
    write_value(&mut out, v, l, 0);
    if l.trailing_newline {
        out.push_str(if l.crlf { "\r\n" } else { "\n" });
    }
    out.into_bytes()
}

/// The pipeline's canonical form, written here independently of the crate: keys sorted by code
/// point, `,`/`:` without spaces, non-ASCII raw, Python's escapes, numbers as written.
fn canonical(v: &V, out: &mut String) {
    match v {
        V::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        V::Obj(m) => {
            let mut m: Vec<&(String, V)> = m.iter().collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, x)) in m.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k, false);
                out.push(':');
                canonical(x, out);
            }
            out.push('}');
        }
        other => write_value(out, other, &one_line(), 0),
    }
}

fn one_line() -> Layout {
    Layout {
        indent: None,
        spaced: false,
        crlf: false,
        ascii: false,
        trailing_newline: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Generated manifests.

#[derive(Debug, Clone)]
struct Manifest {
    job: String,
    run: String,
    /// `None` = no `schema_version` member (1.0.0).
    version: Option<&'static str>,
    doc: V,
    layout: Layout,
}

impl Manifest {
    fn path(&self) -> String {
        format!("artifacts/{}/{}/manifest.json", self.job, self.run)
    }
    fn bytes(&self) -> Vec<u8> {
        render(&self.doc, &self.layout)
    }
    /// The same bytes with the `schema_version` value a migration to 1.2.0 writes.
    fn bytes_at_target(&self) -> Vec<u8> {
        let mut doc = self.doc.clone();
        if self.version.is_some() {
            doc.set("schema_version", V::str("1.2.0"));
        }
        render(&doc, &self.layout)
    }
    fn from(&self) -> &'static str {
        self.version.unwrap_or("1.0.0")
    }
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            1 => Just('"'),
            1 => Just('\\'),
            1 => Just('\n'),
            1 => Just('\u{1}'),
            1 => Just('\u{7f}'),
            1 => Just('é'),
            1 => Just('\u{2028}'),
            1 => Just('\u{1F680}'),
            2 => proptest::char::range('a', 'z'),
        ],
        0..8,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        (-999i32..999, 0u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
        Just("1.0".to_string()),
        Just("1e-400".to_string()),
        Just("-0.0".to_string()),
        Just("1E+5".to_string()),
        Just("123456789012345678901234567890".to_string()),
    ]
}

fn value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        number().prop_map(V::Num),
        text().prop_map(V::Str),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Arr),
            prop::collection::vec((text(), inner), 0..4).prop_map(|members| {
                let mut seen = std::collections::HashSet::new();
                V::Obj(
                    members
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9-]{0,7}",
        1 => "[a-zé][a-zü0-9-]{0,5}",
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop_oneof![
            Just(Some("  ")),
            Just(Some("    ")),
            Just(Some("\t")),
            Just(None)
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(indent, spaced, crlf, ascii, trailing_newline)| Layout {
            indent,
            spaced,
            crlf,
            ascii,
            trailing_newline,
        })
}

prop_compose! {
    fn manifest()(
        job in name(),
        run in name(),
        version in prop_oneof![Just(None), Just(Some("1.0.0")), Just(Some("1.1.0")), Just(Some("1.2.0"))],
        has_run_id in any::<bool>(),
        has_job_ref in any::<bool>(),
        job_id in prop::option::weighted(0.3, "[a-z][a-z0-9_-]{0,9}"),
        doctrine in prop::option::weighted(0.3, value()),
        inputs_hash in prop::option::weighted(0.3, prop_oneof![Just(V::Null), "sha256:[0-9a-f]{8}".prop_map(V::Str)]),
        input_snapshots in prop::option::weighted(0.3, prop::collection::vec(("[a-z]{1,6}", value()), 0..3)),
        chain in prop::option::weighted(0.3, (any::<bool>(), prop::collection::vec(value(), 0..2), prop::option::of(value()))),
        history in prop::option::weighted(0.3, prop::collection::vec(value(), 0..3)),
        extras in prop::collection::vec((text(), value()), 0..6),
        layout in layout(),
        sorted in any::<bool>(),
        order in any::<u64>(),
    ) -> Manifest {
        let mut members: Vec<(String, V)> = Vec::new();
        if let Some(v) = version {
            members.push(("schema_version".into(), V::str(v)));
        }
        if has_run_id {
            members.push(("run_id".into(), V::str(&run)));
        }
        if has_job_ref {
            members.push(("job_ref".into(), V::Str(format!("jobs/{job}/brief.yaml"))));
        }
        if let Some(j) = job_id {
            members.push(("job_id".into(), V::Str(j)));
        }
        if let Some(d) = doctrine {
            members.push(("doctrine".into(), d));
        }
        if let Some(h) = inputs_hash {
            members.push(("inputs_hash".into(), h));
        }
        if let Some(s) = input_snapshots {
            let mut seen = std::collections::HashSet::new();
            members.push(("input_snapshots".into(), V::Obj(s.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect())));
        }
        if let Some((chainable, prior, extra)) = chain {
            let mut m = vec![
                ("is_chainable_stage".to_string(), V::Bool(chainable)),
                ("prior_stages".to_string(), V::Arr(prior)),
            ];
            if let Some(e) = extra {
                m.push(("note".into(), e));
            }
            members.push(("chain_metadata".into(), V::Obj(m)));
        }
        if let Some(h) = history {
            members.push(("migration_history".into(), V::Arr(h)));
        }
        for (k, v) in extras {
            let key = format!("x_{k}");
            if !members.iter().any(|(m, _)| *m == key) {
                members.push((key, v));
            }
        }
        // A deterministic shuffle from the generated seed (kept by shrinking).
        let mut seed = order | 1;
        for i in (1..members.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            members.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let mut doc = V::Obj(members);
        if sorted {
            doc = doc.sorted();
        }
        Manifest { job, run, version, doc, layout }
    }
}

// ---------------------------------------------------------------------------------------------
// The model: what the built-in migrations must do to a manifest.

/// The document after migrating to 1.2.0 (without `migration_history`), and the `changes`.
fn model(m: &Manifest) -> (V, Vec<String>) {
    let mut doc = m.doc.clone();
    doc.remove("migration_history");
    let mut changes = Vec::new();
    if m.from() == "1.0.0" {
        if doc.get("input_snapshots").is_none() {
            doc.set("input_snapshots", V::Obj(vec![]));
            changes.push("Add input_snapshots (empty object)".to_string());
        }
        if doc.get("inputs_hash").is_none() {
            doc.set("inputs_hash", V::Null);
            changes.push("Add inputs_hash (null)".to_string());
        }
        if doc.get("job_id").is_none() {
            doc.set("job_id", V::str(&m.job));
            changes.push(format!("Add job_id {:?} (from the path)", m.job));
        }
    }
    if doc.get("chain_metadata").is_none() {
        doc.set(
            "chain_metadata",
            V::Obj(vec![
                ("is_chainable_stage".into(), V::Bool(false)),
                ("prior_stages".into(), V::Arr(vec![])),
            ]),
        );
        changes.push("Add chain_metadata".to_string());
    }
    doc.set("schema_version", V::str("1.2.0"));
    (doc, changes)
}

const BASE: &str = "0123456789abcdef0123456789abcdef01234567";

fn batch() -> BatchInfo {
    BatchInfo {
        applied_at: APPLIED_AT.to_string(),
        base_commit: CommitId(git2::Oid::from_str(BASE).unwrap()),
        tool: tool_name(),
    }
}

fn protected() -> Vec<String> {
    DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect()
}

fn migrate(bytes: &[u8], path: &str, target: &str) -> Result<Outcome, String> {
    let registry = Registry::with_builtins();
    let protected = protected();
    let opts = MigrateOptions {
        registry: &registry,
        target: target.parse::<Version>().unwrap(),
        artifacts_root: "artifacts",
        layouts: &Layouts::default(),
        protected: &protected,
    };
    migrate_manifest(bytes, path, &opts, &batch()).map_err(|e| e.to_string())
}

fn migrated_bytes(o: Outcome) -> Vec<u8> {
    match o {
        Outcome::Migrated(m) => m.bytes,
        Outcome::Current(v) => panic!("expected a migration, got current {v}"),
    }
}

fn value_of(bytes: &[u8]) -> Result<Json, TestCaseError> {
    Document::parse(bytes).map(|d| d.value()).map_err(|e| {
        TestCaseError::fail(format!(
            "output does not parse: {e}\n{}",
            String::from_utf8_lossy(bytes)
        ))
    })
}

fn top_keys(v: &Json) -> Vec<String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect()
}

fn check_migration(m: &Manifest) -> Result<(), TestCaseError> {
    let old = m.bytes();
    let path = m.path();
    let outcome = migrate(&old, &path, "1.2.0").map_err(TestCaseError::fail)?;
    if m.from() == "1.2.0" {
        prop_assert!(
            matches!(outcome, Outcome::Current(_)),
            "a 1.2.0 manifest is current"
        );
        return Ok(());
    }
    let Outcome::Migrated(out) = outcome else {
        return Err(TestCaseError::fail(
            "a manifest below 1.2.0 was not migrated",
        ));
    };
    let new = out.bytes.clone();
    let new_text =
        String::from_utf8(new.clone()).map_err(|_| TestCaseError::fail("output is not UTF-8"))?;
    let after = value_of(&new)?;
    let before = value_of(&old)?;

    // The result is the model's document plus the history.
    let (expected, changes) = model(m);
    let mut without_history = after.clone();
    let history = without_history.remove("migration_history");
    prop_assert!(
        without_history.deep_eq(&expected.to_json()),
        "result differs from the model:\n{}\nexpected {:?}",
        new_text,
        expected
    );
    // serde_json reads it too (it is plain JSON).
    prop_assert!(
        serde_json::from_slice::<serde_json::Value>(&new).is_ok(),
        "serde_json rejects:\n{}",
        new_text
    );

    // Protected fields.
    for p in DEFAULT_PROTECTED {
        if let Some(b) = before.pointer(p) {
            let a = after.pointer(p);
            prop_assert!(a.is_some_and(|a| a.deep_eq(b)), "{} changed", p);
        }
    }

    // History: earlier entries kept, one entry appended, with the right fields.
    let Some(Json::Array(history)) = history else {
        return Err(TestCaseError::fail("no migration_history array"));
    };
    let earlier = match m.doc.get("migration_history") {
        Some(V::Arr(h)) => h.clone(),
        _ => vec![],
    };
    prop_assert_eq!(history.len(), earlier.len() + 1);
    for (o, n) in earlier.iter().zip(&history) {
        prop_assert!(n.deep_eq(&o.to_json()), "an earlier history entry changed");
    }
    let entry = history.last().unwrap();
    let s = |k: &str| entry.get(k).and_then(Json::as_str).map(str::to_string);
    prop_assert_eq!(s("from_version"), Some(m.from().to_string()));
    prop_assert_eq!(s("to_version"), Some("1.2.0".to_string()));
    prop_assert_eq!(
        entry.get("steps").cloned(),
        Some(Json::Array(vec![Json::String(format!(
            "{}->1.2.0",
            m.from()
        ))]))
    );
    prop_assert_eq!(
        entry.get("changes").cloned(),
        Some(Json::Array(changes.into_iter().map(Json::String).collect()))
    );
    prop_assert_eq!(s("applied_at"), Some(APPLIED_AT.to_string()));
    prop_assert_eq!(s("base_commit"), Some(BASE.to_string()));
    prop_assert_eq!(s("tool"), Some(TOOL.to_string()));
    prop_assert_eq!(s("checksum_before"), Some(sha256_hex(&old)));
    let mut canon = String::new();
    canonical(&expected, &mut canon);
    prop_assert_eq!(
        s("checksum_after"),
        Some(sha256_hex(canon.as_bytes())),
        "canonical: {}",
        canon
    );

    // Format: only insertions (and the schema_version value), in the file's own layout.
    let old_at_target = m.bytes_at_target();
    prop_assert!(
        is_subsequence(&old_at_target, &new),
        "bytes deleted:\n{}\n->\n{}",
        String::from_utf8_lossy(&old),
        new_text
    );
    let old_text = String::from_utf8(old_at_target).unwrap();
    if m.layout.indent.is_some() && old_text.trim_end().contains('\n') {
        assert_old_lines_kept_in_order(&old_text, &new_text);
    } else {
        prop_assert!(
            !new_text.trim_end().contains('\n'),
            "a one-line file stays one line:\n{}",
            new_text
        );
    }
    if m.layout.crlf && old_text.trim_end().contains('\n') {
        prop_assert_eq!(
            new_text.matches('\n').count(),
            new_text.matches("\r\n").count(),
            "CRLF throughout"
        );
    }
    if !m.layout.crlf {
        prop_assert!(!new_text.contains('\r'), "no CR");
    }
    prop_assert_eq!(
        old.ends_with(b"\n"),
        new.ends_with(b"\n"),
        "trailing newline kept or absent"
    );
    if m.layout.ascii && old.is_ascii() && old_text.contains("\\u") {
        // An escaped non-ASCII character is in the file (maybe not: \u0001 is escaped in
        // both styles), so only check when one is above U+007F.
        let escaped_non_ascii = before_has_non_ascii(&before);
        if escaped_non_ascii {
            prop_assert!(
                new.is_ascii(),
                "an ASCII-escaped file stays ASCII:\n{}",
                new_text
            );
        }
    }
    if !m.layout.ascii && !m.job.is_ascii() && m.doc.get("job_id").is_none() && m.from() == "1.0.0"
    {
        // A file that does not escape non-ASCII gets the derived job_id raw.
        let raw = format!("\"{}\"", m.job);
        prop_assert!(
            new_text.contains(&raw),
            "job_id {} not written raw:\n{}",
            raw,
            new_text
        );
    }
    // Key order: sorted stays sorted; otherwise old order kept, new keys after.
    let (old_keys, new_keys) = (top_keys(&before), top_keys(&after));
    if old_keys.len() > 1 {
        if old_keys.windows(2).all(|w| w[0] < w[1]) {
            prop_assert!(
                new_keys.windows(2).all(|w| w[0] < w[1]),
                "sorted stays sorted: {:?}",
                new_keys
            );
        } else {
            prop_assert_eq!(&new_keys[..old_keys.len()], &old_keys[..]);
        }
    }

    // Idempotence: the output is current.
    let again = migrate(&new, &path, "1.2.0").map_err(TestCaseError::fail)?;
    prop_assert!(
        matches!(again, Outcome::Current(v) if v.to_string() == "1.2.0"),
        "second run is not current"
    );
    Ok(())
}

fn before_has_non_ascii(v: &Json) -> bool {
    match v {
        Json::String(s) => !s.is_ascii(),
        Json::Array(a) => a.iter().any(before_has_non_ascii),
        Json::Object(m) => m
            .iter()
            .any(|(k, v)| !k.is_ascii() || before_has_non_ascii(v)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn migration_matches_the_model_and_keeps_every_byte(m in manifest()) {
        check_migration(&m)?;
    }

    #[test]
    fn two_steps_give_the_same_document_as_the_direct_edge(m in manifest()) {
        prop_assume!(m.from() == "1.0.0");
        let old = m.bytes();
        let path = m.path();
        let direct = migrated_bytes(migrate(&old, &path, "1.2.0").map_err(TestCaseError::fail)?);
        let mid = migrated_bytes(migrate(&old, &path, "1.1.0").map_err(TestCaseError::fail)?);
        let chained = migrated_bytes(migrate(&mid, &path, "1.2.0").map_err(TestCaseError::fail)?);
        let mut a = value_of(&direct)?;
        let mut b = value_of(&chained)?;
        let ha = a.remove("migration_history");
        let hb = b.remove("migration_history");
        prop_assert!(a.deep_eq(&b), "direct and chained differ:\n{}\n{}", String::from_utf8_lossy(&direct), String::from_utf8_lossy(&chained));
        let len = |h: Option<Json>| match h { Some(Json::Array(a)) => a.len(), _ => 0 };
        prop_assert_eq!(len(hb), len(ha) + 1, "the chain records two entries");
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes never panic: a result or an error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = migrate(&bytes, "artifacts/j/r/manifest.json", "1.2.0");
    }

    /// A valid manifest with one byte deleted, changed or inserted never panics, and when it
    /// still migrates the output parses.
    #[test]
    fn damaged_manifests_never_panic(m in manifest(), at in any::<prop::sample::Index>(), byte in any::<u8>(), how in 0u8..3) {
        let mut bytes = m.bytes();
        let i = at.index(bytes.len().max(1)).min(bytes.len());
        match how {
            0 if i < bytes.len() => { bytes.remove(i); }
            1 if i < bytes.len() => bytes[i] = byte,
            _ => bytes.insert(i, byte),
        }
        if let Ok(Outcome::Migrated(out)) = migrate(&bytes, &m.path(), "1.2.0") {
            value_of(&out.bytes)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through git and the real binary.

prop_compose! {
    fn repo_contents()(
        manifests in prop::collection::vec(manifest(), 1..4),
        others in prop::collection::vec(("[a-z]{1,6}", prop::collection::vec(any::<u8>(), 0..64), 0u8..3), 0..4),
    ) -> (Vec<Manifest>, Vec<(String, Vec<u8>)>) {
        // Distinct, ASCII run directories (the path is part of the data, not the point here).
        let manifests: Vec<Manifest> = manifests
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                m.job = format!("job-{}", i % 2);
                m.run = format!("run-{i}");
                if m.doc.get("run_id").is_some() {
                    m.doc.set("run_id", V::Str(m.run.clone()));
                }
                if m.doc.get("job_ref").is_some() {
                    m.doc.set("job_ref", V::Str(format!("jobs/{}/brief.yaml", m.job)));
                }
                m
            })
            .collect();
        let others = others
            .into_iter()
            .enumerate()
            .map(|(i, (name, bytes, place))| {
                let path = match place {
                    0 => format!("artifacts/job-0/run-0/inputs/{name}-{i}.json"),
                    1 => format!("artifacts/job-1/run-{i}/outputs/{name}.bin"),
                    _ => format!("docs/{name}-{i}.txt"),
                };
                (path, bytes)
            })
            .collect();
        (manifests, others)
    }
}

proptest! {
    #![proptest_config(config(8))]

    #[test]
    fn apply_changes_nothing_but_the_migrated_manifests((manifests, others) in repo_contents()) {
        let repo = TestRepo::new();
        for m in &manifests {
            repo.file(&m.path(), m.bytes());
        }
        for (path, bytes) in &others {
            repo.file(path, bytes);
        }
        repo.commit("generated runs");
        let base = repo.head();
        let before = repo.ls_tree("HEAD");

        let run = repo.cli(["apply", "--json"]);
        prop_assert_eq!(run.code, 0, "{}", run);
        let report = run.json();
        let pending: Vec<&Manifest> = manifests.iter().filter(|m| m.from() != "1.2.0").collect();
        prop_assert_eq!(report["migrated"].as_u64(), Some(pending.len() as u64), "{:#}", report);
        prop_assert_eq!(report["already_current"].as_u64(), Some((manifests.len() - pending.len()) as u64));

        if pending.is_empty() {
            prop_assert!(report["commit"].is_null());
            prop_assert_eq!(repo.head(), base);
            return Ok(());
        }
        let head = repo.head();
        prop_assert_eq!(report["commit"].as_str(), Some(head.as_str()));
        prop_assert_eq!(repo.rev("HEAD~1"), base.clone());
        let after = repo.ls_tree("HEAD");
        prop_assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
        let migrated: std::collections::BTreeSet<String> = pending.iter().map(|m| m.path()).collect();
        for (path, meta) in &before {
            if migrated.contains(path) {
                prop_assert_ne!(&after[path], meta, "{} should have changed", path);
            } else {
                prop_assert_eq!(&after[path], meta, "{} changed", path);
            }
        }
        // The CLI wrote exactly what the library computes for the same base and epoch.
        let registry = Registry::with_builtins();
        let protected = protected();
        let opts = MigrateOptions {
            registry: &registry,
            target: "1.2.0".parse().unwrap(),
            artifacts_root: "artifacts",
        layouts: &Layouts::default(),
            protected: &protected,
        };
        let batch = BatchInfo {
            applied_at: APPLIED_AT.to_string(),
            base_commit: CommitId(git2::Oid::from_str(&base).unwrap()),
            tool: tool_name(),
        };
        for m in &pending {
            let expected = migrated_bytes(migrate_manifest(&m.bytes(), &m.path(), &opts, &batch).unwrap());
            prop_assert_eq!(repo.show("HEAD", &m.path()), expected.clone(), "{}", m.path());
            prop_assert_eq!(repo.file_bytes(&m.path()), expected);
        }
        for (path, bytes) in &others {
            prop_assert_eq!(&repo.file_bytes(path), bytes);
        }
        prop_assert_eq!(repo.porcelain(), "");
    }
}
