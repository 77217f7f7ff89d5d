//! Declarative migrations: the file format and its errors (with lines), each op on real-shaped
//! manifests through the engine, protected fields, lossiness, checksums, the lint, and the
//! built-in format tests run through an equivalent declarative migration.

use super::*;
use crate::engine::history::{tool_name, BatchInfo};
use crate::engine::invariants::{check_protected, DEFAULT_PROTECTED};
use crate::engine::migrate::{migrate_manifest, ManifestError, MigrateOptions, Outcome};
use crate::ids::CommitId;
use crate::manifest::{sha256_prefixed, Document, Edit};
use crate::schema::builtin::{AddChainMetadata, AddInputs, Direct1_0To1_2};
use crate::schema::checksum::registry_checksum;

const FILE: &str = ".artifact-migrate/migrations/1.2.0-1.3.0.toml";

/// The example of the issue: rename generation_metadata.model, add review_status.
const EXAMPLE: &str = r#"# comments allowed
from = "1.2.0"
to = "1.3.0"
description = "Rename generation_metadata.model, add review_status"   # optional

[[ops]]
op = "rename"                      # add | set | rename | move | copy | remove
path = "/generation_metadata/model"
to = "model_name"                  # rename: the new key in the same object
description = "Rename generation_metadata.model to generation_metadata.model_name"

[[ops]]
op = "add"
path = "/review_status"
value = "unreviewed"
description = "Add review_status (\"unreviewed\")"
"#;

const SAMPLE_1_0: &str = include_str!("../../../fixtures/samples/v1.0.0-manifest.json");
const SAMPLE_1_1: &str = include_str!("../../../fixtures/samples/v1.1.0-manifest.json");
const SAMPLE_1_2: &str = include_str!("../../../fixtures/samples/v1.2.0-manifest.json");
const SAMPLE_PATH: &str =
    "artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json";

fn protected() -> Vec<String> {
    DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect()
}

fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect()
}

fn load_one(text: &str) -> DeclarativeMigration {
    match load(&owned(&[(FILE, text)]), &protected()) {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        Ok(v) => panic!("{} migrations", v.len()),
        Err(e) => panic!("{e:#?}"),
    }
}

/// The errors of one file, as `FILE:LINE: message` strings.
fn errors_of(text: &str) -> Vec<String> {
    errors_with(text, &protected())
}

fn errors_with(text: &str, protected: &[String]) -> Vec<String> {
    match load(&owned(&[(FILE, text)]), protected) {
        Ok(_) => panic!("loaded, expected errors:\n{text}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn v(s: &str) -> Version {
    s.parse().expect("version")
}

fn registry_with(text: &str) -> Registry {
    let mut r = Registry::with_builtins();
    if let Err(e) = register(&mut r, vec![load_one(text)]) {
        panic!("{e:#?}");
    }
    r
}

fn batch() -> BatchInfo {
    BatchInfo {
        applied_at: "2026-11-24T19:00:00Z".to_string(),
        base_commit: CommitId(
            git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").expect("oid"),
        ),
        tool: tool_name(),
    }
}

struct Run {
    bytes: String,
    without_history: String,
    changes: Vec<String>,
    steps: Vec<String>,
}

fn run(registry: &Registry, input: &str, target: &str) -> Result<Run, ManifestError> {
    let protected = protected();
    let opts = MigrateOptions {
        registry,
        target: v(target),
        artifacts_root: "artifacts",
        layouts: &crate::layout::Layouts::default(),
        protected: &protected,
    };
    let out = match migrate_manifest(input.as_bytes(), SAMPLE_PATH, &opts, &batch())? {
        Outcome::Migrated(m) => m,
        Outcome::Current(v) => panic!("already at {v}"),
    };
    let bytes = String::from_utf8(out.bytes.clone()).expect("utf-8");
    // Invariants hold: protected fields deep-equal before and after.
    let before = Document::parse(input.as_bytes()).expect("input").value();
    let mut doc = Document::parse(bytes.as_bytes()).expect("output parses");
    assert_eq!(check_protected(&before, &doc.value(), &protected), Ok(()));
    if before.get("migration_history").is_none() {
        doc.apply(&Edit::Remove {
            pointer: "/migration_history".into(),
        })
        .expect("remove history");
    }
    Ok(Run {
        without_history: doc.as_str().to_string(),
        bytes,
        changes: out.entry.changes.clone(),
        steps: out.steps.iter().map(|s| s.to_string()).collect(),
    })
}

fn run_ok(registry: &Registry, input: &str, target: &str) -> Run {
    match run(registry, input, target) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// `input` with each `(from, to)` replaced exactly once.
fn replaced(input: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = input.to_string();
    for (a, b) in pairs {
        assert_eq!(s.matches(a).count(), 1, "{a:?} must occur once");
        s = s.replacen(a, b, 1);
    }
    s
}

/// A migration 1.2.0 -> 1.3.0 with the given ops (TOML `[[ops]]` sections).
fn with_ops(ops: &str) -> String {
    format!("from = \"1.2.0\"\nto = \"1.3.0\"\n{ops}")
}

// ---------------------------------------------------------------- the file format

#[test]
fn the_example_file_loads() {
    let m = load_one(EXAMPLE);
    assert_eq!((m.from(), m.to()), (v("1.2.0"), v("1.3.0")));
    assert_eq!(m.file(), FILE);
    assert_eq!(m.line(), 2);
    assert_eq!(
        m.description(),
        Some("Rename generation_metadata.model, add review_status")
    );
    assert_eq!(
        m.ops(),
        [
            Op {
                kind: OpKind::Rename {
                    path: "/generation_metadata/model".into(),
                    to: "model_name".into()
                },
                description: "Rename generation_metadata.model to generation_metadata.model_name"
                    .into(),
                line: 6,
            },
            Op {
                kind: OpKind::Add {
                    path: "/review_status".into(),
                    value: Json::str("unreviewed")
                },
                description: "Add review_status (\"unreviewed\")".into(),
                line: 12,
            },
        ]
    );
    assert_eq!(
        m.describe(),
        [
            "Rename generation_metadata.model to generation_metadata.model_name",
            "Add review_status (\"unreviewed\")"
        ]
    );
    assert!(!m.lossy());
    assert!(m.lossy_reasons().is_empty());
    let dynm: &dyn Migration = &m;
    assert_eq!(dynm.source(), Some(FILE));
    assert!(!dynm.lossy());
    assert_eq!(dynm.checksum(), m.checksum());
    assert!(m.checksum().starts_with("sha256:") && m.checksum().len() == 71);
    assert_eq!(m.to_string(), format!("1.2.0->1.3.0 ({FILE})"));
}

#[test]
fn toml_values_become_json() {
    let m = load_one(&with_ops(
        r#"
[[ops]]
op = "add"
path = "/x"
value = { s = "t", i = 1_000, h = 0xff, o = 0o17, b = 0b101, neg = -5, pos = +7, f = 1.50, e = 1e-3, pe = +2.5E+10, t = true, arr = [1, "a", false, [], {}], nested = { z = 1, a = { y = 2, x = 3 } } }
description = "Add x"

[[ops]]
op = "add"
path = "/n"
value_json = '{"b": null, "a": 1.0e+5, "big": 123456789012345678901234567890}'
description = "Add n"
"#,
    ));
    let OpKind::Add { value, .. } = &m.ops()[0].kind else {
        panic!("add")
    };
    assert_eq!(
        crate::manifest::canonical_json(value),
        r#"{"arr":[1,"a",false,[],{}],"b":5,"e":1e-3,"f":1.50,"h":255,"i":1000,"neg":-5,"nested":{"a":{"x":3,"y":2},"z":1},"o":15,"pe":2.5E+10,"pos":7,"s":"t","t":true}"#
    );
    // Tables are written with sorted keys whatever the order in the file.
    let Json::Object(members) = value else {
        panic!("object")
    };
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    // value_json keeps its own order, null and number spelling.
    let OpKind::Add { value, .. } = &m.ops()[1].kind else {
        panic!("add")
    };
    assert_eq!(
        *value,
        Json::object(vec![
            ("b".into(), Json::Null),
            ("a".into(), Json::Number("1.0e+5".into())),
            (
                "big".into(),
                Json::Number("123456789012345678901234567890".into())
            ),
        ])
    );
}

#[test]
fn inline_ops_and_no_ops_are_accepted() {
    let m = load_one(
        r#"from = "1.2.0"
to = "1.3.0"
ops = [
  { op = "add", path = "/a", value = 1, description = "Add a" },
  { op = "remove", path = "/b", description = "Remove b" },
]
"#,
    );
    assert_eq!(m.ops().len(), 2);
    assert_eq!((m.ops()[0].line, m.ops()[1].line), (4, 5));
    let bump = load_one("from = \"1.2.0\"\nto = \"1.3.0\"\n");
    assert!(bump.ops().is_empty() && bump.describe().is_empty());
    // Any file name is accepted when it is not of the FROM-TO shape.
    let named = load(
        &owned(&[(".artifact-migrate/migrations/0003-review.toml", EXAMPLE)]),
        &protected(),
    );
    assert!(named.is_ok(), "{named:?}");
}

/// Each refusal, with the line it names.
#[test]
fn every_error_names_the_file_and_line() {
    let cases: &[(&str, &str)] = &[
        // TOML syntax.
        ("from = \"1.2.0\"\nto = \n", ":2: not valid TOML: "),
        ("from = \"1.2.0\"\nfrom = \"1.2.0\"\n", ":2: not valid TOML: duplicate key"),
        // Top level.
        ("from = \"1.2.0\"\nto = \"1.3.0\"\nversion = 2\n", ":3: unknown key `version`: a migration file has from, to, description and [[ops]]"),
        ("to = \"1.3.0\"\n", ":1: missing `from`"),
        ("from = \"1.2.0\"\n", ":1: missing `to`"),
        ("from = \"1.2\"\nto = \"1.3.0\"\n", ":1: `from`: invalid schema version \"1.2\""),
        ("from = \"1.2.0\"\n\nto = 13\n", ":3: `to` must be a string, found an integer"),
        ("from = \"1.3.0\"\nto = \"1.2.0\"\n", ":2: `from` 1.3.0 is not below `to` 1.2.0: a migration goes up; downgrades are rollbacks"),
        ("from = \"1.2.0\"\nto = \"1.2.0\"\n", ":2: `from` 1.2.0 is not below `to` 1.2.0"),
        ("from = \"1.2.0\"\nto = \"1.4.0\"\n", ":1: the file name says 1.2.0->1.3.0 but the file says 1.2.0->1.4.0"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\ndescription = \" \"\n", ":3: `description` is empty"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\nops = 1\n", ":3: `ops` must be an array of tables"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\nops = [1]\n", ":3: op 1 is an integer, not a table"),
        // Ops.
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\npath = \"/a\"\ndescription = \"d\"\n", ":3: op 1 has no `op`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"upsert\"\npath = \"/a\"\ndescription = \"d\"\n", ":4: unknown op `upsert`: expected add, set, remove, rename, move or copy"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"remove\"\npath = \"/a\"\n", ":3: op 1 (remove) has no `description`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"remove\"\npath = \"/a\"\ndescription = \"\"\n", ":6: op 1 (remove) has an empty `description`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"remove\"\npath = \"/a\"\ndescription = \"d\"\nwhy = \"x\"\n", ":7: unknown key `why` in op 1"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"remove\"\npath = \"/a\"\nvalue = 1\ndescription = \"d\"\n", ":6: op `remove` does not take `value`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\ndescription = \"d\"\n", ":3: op 1 (`add`) needs `value`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"move\"\npath = \"/a\"\ndescription = \"d\"\n", ":3: op 1 (`move`) needs `from`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"rename\"\npath = \"/a\"\ndescription = \"d\"\n", ":3: op 1 (`rename`) needs `to`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"a\"\nvalue = 1\ndescription = \"d\"\n", ":5: `path` \"a\" is not a JSON pointer"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a~2\"\nvalue = 1\ndescription = \"d\"\n", ":5: `path` \"/a~2\" is not a JSON pointer"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"set\"\npath = \"\"\nvalue = 1\ndescription = \"d\"\n", ":5: `path` is the whole document"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue = 1979-05-27\ndescription = \"d\"\n", ":6: a TOML date-time (1979-05-27) has no JSON form"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue = [1, nan]\ndescription = \"d\"\n", ":6: nan has no JSON form"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue_json = '{\"a\": 1,}'\ndescription = \"d\"\n", ":6: `value_json` is not valid JSON"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue = 1\nvalue_json = '1'\ndescription = \"d\"\n", ":7: op 1 has both `value` and `value_json`"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"rename\"\npath = \"/a/b\"\nto = \"b\"\ndescription = \"d\"\n", ":6: rename `to` is the key's own name \"b\""),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"move\"\nfrom = \"/a\"\npath = \"/a/b\"\ndescription = \"d\"\n", ":5: move from /a to /a/b: one lies inside the other"),
        ("from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"copy\"\nfrom = \"/a/b\"\npath = \"/a\"\ndescription = \"d\"\n", ":5: copy from /a/b to /a: one lies inside the other"),
    ];
    for (text, want) in cases {
        let errs = errors_of(text);
        let want = format!("{FILE}{want}");
        assert!(
            errs.iter().any(|e| e.starts_with(&want)),
            "want {want:?}\ngot {errs:#?}\nfor\n{text}"
        );
    }
}

#[test]
fn every_error_of_every_file_is_reported() {
    let errs = match load(
        &owned(&[
            ("b.toml", "from = \"1.2.0\"\nto = \"x\"\nextra = 1\n"),
            (
                "a.toml",
                "from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"add\"\n",
            ),
            ("c.toml", EXAMPLE),
        ]),
        &protected(),
    ) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    };
    let files: Vec<(&str, usize)> = errs.iter().map(|e| (e.file.as_str(), e.line)).collect();
    assert_eq!(
        files,
        [
            ("a.toml", 3),
            ("a.toml", 3),
            ("a.toml", 3),
            ("b.toml", 3),
            ("b.toml", 2)
        ],
        "{errs:#?}"
    );
    assert!(errs
        .iter()
        .all(|e| e.message.chars().next().is_some_and(|c| !c.is_uppercase())));
    // A key of the wrong type is reported once, as such, not also as missing.
    let errs = errors_of(&with_ops(
        "[[ops]]\nop = 1\n[[ops]]\nop = \"add\"\npath = 2\nvalue = 1\ndescription = [\"d\"]\n",
    ));
    assert_eq!(
        errs,
        [
            format!("{FILE}:4: `op` must be a string, found an integer: quote it"),
            format!("{FILE}:7: `path` must be a string, found an integer: quote it"),
            format!("{FILE}:9: `description` must be a string, found an array: quote it"),
        ]
    );
}

// ---------------------------------------------------------------- protected fields

#[test]
fn writes_to_protected_and_engine_fields_are_refused_at_load() {
    let op = |body: &str| with_ops(&format!("[[ops]]\n{body}\ndescription = \"d\"\n"));
    let cases: &[(&str, &str)] = &[
        (
            "op = \"set\"\npath = \"/job_id\"\nvalue = \"x\"",
            ":5: set overwrites /job_id, the protected field /job_id",
        ),
        (
            "op = \"remove\"\npath = \"/run_id\"",
            ":5: remove removes /run_id, the protected field /run_id",
        ),
        (
            "op = \"rename\"\npath = \"/doctrine\"\nto = \"policy\"",
            ":5: rename renames away /doctrine, the protected field /doctrine",
        ),
        (
            "op = \"rename\"\npath = \"/doctrine/version\"\nto = \"v\"",
            ":5: rename renames away /doctrine/version, inside the protected field /doctrine",
        ),
        (
            "op = \"move\"\nfrom = \"/inputs_hash\"\npath = \"/meta/inputs_hash\"",
            ":5: move moves away /inputs_hash, the protected field /inputs_hash",
        ),
        (
            "op = \"add\"\npath = \"/input_snapshots/extra\"\nvalue = {}",
            ":5: add writes /input_snapshots/extra, inside the protected field /input_snapshots",
        ),
        (
            "op = \"copy\"\nfrom = \"/meta\"\npath = \"/doctrine/meta\"",
            ":6: copy writes /doctrine/meta, inside the protected field /doctrine",
        ),
        (
            "op = \"set\"\npath = \"/job_ref\"\nvalue = \"jobs/x/brief.yaml\"",
            ":5: set overwrites /job_ref",
        ),
        (
            "op = \"add\"\npath = \"/schema_version\"\nvalue = \"9.9.9\"",
            ":5: add writes /schema_version, which touches /schema_version: only the engine writes",
        ),
        (
            "op = \"set\"\npath = \"/migration_history/0/note\"\nvalue = \"x\"",
            ":5: set overwrites /migration_history/0/note, which touches /migration_history",
        ),
        (
            "op = \"rename\"\npath = \"/history\"\nto = \"migration_history\"",
            ":6: rename writes /migration_history, which touches /migration_history",
        ),
        (
            "op = \"remove\"\npath = \"/migration_history\"",
            ":5: remove removes /migration_history",
        ),
    ];
    for (body, want) in cases {
        let errs = errors_of(&op(body));
        let want = format!("{FILE}{want}");
        assert!(
            errs.iter().any(|e| e.starts_with(&want)),
            "want {want:?}\ngot {errs:#?}"
        );
        assert!(
            errs.iter().all(|e| e.contains("remove this op")),
            "{errs:#?}"
        );
    }
    // A configured protected field nested in an object guards the object too.
    let custom = vec!["/meta/owner".to_string()];
    let errs = errors_with(&op("op = \"set\"\npath = \"/meta\"\nvalue = {}"), &custom);
    assert!(
        errs[0].contains("set overwrites /meta, an object holding the protected field /meta/owner"),
        "{errs:#?}"
    );
    // Writing only where nothing is may create an absent protected field (§4), or its parent.
    for body in [
        "op = \"add\"\npath = \"/meta\"\nvalue = {}",
        "op = \"add\"\npath = \"/meta/owner\"\nvalue = \"x\"",
        "op = \"copy\"\nfrom = \"/job_ref\"\npath = \"/meta/owner\"",
    ] {
        let text = op(body);
        assert!(
            load(&owned(&[(FILE, &text)]), &custom).is_ok(),
            "{body} should load"
        );
    }
    assert!(load(
        &owned(&[(FILE, &op("op = \"add\"\npath = \"/job_id\"\nvalue = \"j\""))]),
        &protected()
    )
    .is_ok());
}

#[test]
fn a_protected_field_changed_at_run_time_still_fails_the_manifest() {
    // `/generation_metadata` is protected only at run time here (load saw the default list):
    // the engine's own invariant check catches the change.
    let r = registry_with(EXAMPLE);
    let mut protected = protected();
    protected.push("/generation_metadata".into());
    let opts = MigrateOptions {
        registry: &r,
        target: v("1.3.0"),
        artifacts_root: "artifacts",
        layouts: &crate::layout::Layouts::default(),
        protected: &protected,
    };
    let err = migrate_manifest(SAMPLE_1_2.as_bytes(), SAMPLE_PATH, &opts, &batch())
        .map(|_| ())
        .expect_err("invariant");
    assert_eq!(
        err.to_string(),
        "migration 1.2.0->1.3.0 changed the protected field /generation_metadata: nothing was written (protected fields may be added, never changed)"
    );
}

// ---------------------------------------------------------------- ops through the engine

#[test]
fn the_example_migrates_the_1_2_0_sample_changing_only_its_lines() {
    let r = registry_with(EXAMPLE);
    let out = run_ok(&r, SAMPLE_1_2, "1.3.0");
    let want = replaced(
        SAMPLE_1_2,
        &[
            (
                "\"model\": \"text-large\"",
                "\"model_name\": \"text-large\"",
            ),
            (
                "\n  \"run_id\": ",
                "\n  \"review_status\": \"unreviewed\",\n  \"run_id\": ",
            ),
            (
                "\"schema_version\": \"1.2.0\"",
                "\"schema_version\": \"1.3.0\"",
            ),
        ],
    );
    assert_eq!(out.without_history, want);
    assert_eq!(out.steps, ["1.2.0->1.3.0"]);
    assert_eq!(
        out.changes,
        [
            "Rename generation_metadata.model to generation_metadata.model_name",
            "Add review_status (\"unreviewed\")"
        ]
    );
    // The history entry goes to its sorted place, in the file's style.
    assert!(
        out.bytes.contains(
            &format!("  \"meta\": {{}},\n  \"migration_history\": [\n    {{\n      \"from_version\": \"1.2.0\",\n      \"to_version\": \"1.3.0\",\n      \"steps\": [\n        \"1.2.0->1.3.0\"\n      ],\n      \"migration_checksums\": {{\n        \"1.2.0->1.3.0\": \"{}\"\n      }},\n      \"changes\": [\n        \"Rename generation_metadata.model to generation_metadata.model_name\",\n        \"Add review_status (\\\"unreviewed\\\")\"\n      ],", example_checksum())
        ),
        "{}",
        out.bytes
    );
    assert!(out.bytes.contains(&format!(
        "\"checksum_before\": \"{}\"",
        sha256_prefixed(SAMPLE_1_2.as_bytes())
    )));
}

#[test]
fn older_samples_go_through_the_builtins_then_the_declarative_step() {
    let r = registry_with(EXAMPLE);
    // 1.0.0, one line, unsorted: the direct built-in then 1.2.0->1.3.0; there is no
    // generation_metadata, so the rename is skipped and not listed.
    let out = run_ok(&r, SAMPLE_1_0, "1.3.0");
    assert_eq!(out.steps, ["1.0.0->1.2.0", "1.2.0->1.3.0"]);
    assert_eq!(
        out.changes,
        [
            "Add input_snapshots (empty object)",
            "Add inputs_hash (null)",
            "Add job_id \"spring-launch-01\" (from job_ref)",
            "Add chain_metadata",
            "Add review_status (\"unreviewed\")"
        ]
    );
    let want = replaced(
        SAMPLE_1_0,
        &[
            ("\"schema_version\": \"1.0.0\"", "\"schema_version\": \"1.3.0\""),
            (
                "\"error\": null}",
                "\"error\": null, \"input_snapshots\": {}, \"inputs_hash\": null, \"job_id\": \"spring-launch-01\", \"chain_metadata\": {\"is_chainable_stage\": false, \"prior_stages\": []}, \"review_status\": \"unreviewed\"}",
            ),
        ],
    );
    assert_eq!(out.without_history, want);
    // 1.1.0: two steps, the built-in 1.1.0->1.2.0 then ours.
    let out = run_ok(&r, SAMPLE_1_1, "1.3.0");
    assert_eq!(out.steps, ["1.1.0->1.2.0", "1.2.0->1.3.0"]);
    assert_eq!(
        out.changes,
        ["Add chain_metadata", "Add review_status (\"unreviewed\")"]
    );
    // Already at 1.3.0-shape but labelled 1.2.0: nothing re-added, nothing listed.
    let shaped = replaced(
        SAMPLE_1_2,
        &[
            (
                "\"model\": \"text-large\"",
                "\"model_name\": \"text-large\"",
            ),
            (
                "\n  \"run_id\": ",
                "\n  \"review_status\": \"approved\",\n  \"run_id\": ",
            ),
        ],
    );
    let out = run_ok(&r, &shaped, "1.3.0");
    assert!(out.changes.is_empty(), "{:?}", out.changes);
    assert_eq!(
        out.without_history,
        shaped.replace(
            "\"schema_version\": \"1.2.0\"",
            "\"schema_version\": \"1.3.0\""
        )
    );
}

#[test]
fn set_overwrites_is_lossy_and_skips_an_equal_value() {
    let text = with_ops(
        r#"
[[ops]]
op = "set"
path = "/status"
value = "archived"
description = "Set status to \"archived\""

[[ops]]
op = "set"
path = "/generation_metadata/provider"
value = "example"
description = "Set generation_metadata.provider to \"example\""

[[ops]]
op = "set"
path = "/retention_days"
value = 30
description = "Set retention_days to 30"
"#,
    );
    let m = load_one(&text);
    assert!(m.lossy());
    assert_eq!(
        m.lossy_reasons(),
        [
            format!("{FILE}:4: set /status overwrites the value already there"),
            format!(
                "{FILE}:10: set /generation_metadata/provider overwrites the value already there"
            ),
            format!("{FILE}:16: set /retention_days overwrites the value already there"),
        ]
    );
    let out = run_ok(&registry_with(&text), SAMPLE_1_2, "1.3.0");
    assert_eq!(
        out.changes,
        ["Set status to \"archived\"", "Set retention_days to 30"]
    );
    assert_eq!(
        out.without_history,
        replaced(
            SAMPLE_1_2,
            &[
                ("\"status\": \"succeeded\"", "\"status\": \"archived\""),
                (
                    "\n  \"run_id\": ",
                    "\n  \"retention_days\": 30,\n  \"run_id\": "
                ),
                (
                    "\"schema_version\": \"1.2.0\"",
                    "\"schema_version\": \"1.3.0\""
                ),
            ]
        )
    );
}

#[test]
fn remove_is_lossy_and_skips_what_is_absent() {
    let text = with_ops(
        r#"
[[ops]]
op = "remove"
path = "/langfuse_trace_id"
description = "Remove langfuse_trace_id"

[[ops]]
op = "remove"
path = "/chain_metadata/prior_stages/0/output_references/0"
description = "Remove the first output reference of the first prior stage"

[[ops]]
op = "remove"
path = "/no_such_field"
description = "Remove no_such_field"
"#,
    );
    let m = load_one(&text);
    assert!(m.lossy());
    assert_eq!(m.lossy_reasons().len(), 3);
    let out = run_ok(&registry_with(&text), SAMPLE_1_2, "1.3.0");
    assert_eq!(
        out.changes,
        [
            "Remove langfuse_trace_id",
            "Remove the first output reference of the first prior stage"
        ]
    );
    assert_eq!(
        out.without_history,
        replaced(
            SAMPLE_1_2,
            &[
                ("  \"langfuse_trace_id\": null,\n", ""),
                (
                    "\"output_references\": [\n          \"outputs/score.json\"\n        ]",
                    "\"output_references\": []"
                ),
                (
                    "\"schema_version\": \"1.2.0\"",
                    "\"schema_version\": \"1.3.0\""
                ),
            ]
        )
    );
}

#[test]
fn move_within_an_object_renames_in_place_and_across_objects_adds_and_removes() {
    let text = with_ops(
        r#"
[[ops]]
op = "add"
path = "/review"
value = {}
description = "Add review (empty object)"

[[ops]]
op = "move"
from = "/generation_metadata/provider"
path = "/generation_metadata/vendor"
description = "Move generation_metadata.provider to generation_metadata.vendor"

[[ops]]
op = "move"
from = "/queue_job_id"
path = "/review/queue_job_id"
description = "Move queue_job_id into review"
"#,
    );
    let m = load_one(&text);
    assert!(!m.lossy());
    let out = run_ok(&registry_with(&text), SAMPLE_1_2, "1.3.0");
    assert_eq!(out.changes.len(), 4, "{:?}", out.changes);
    assert_eq!(
        out.changes,
        [
            "Add review (empty object)",
            "Move generation_metadata.provider to generation_metadata.vendor",
            "Move queue_job_id into review",
            "Move queue_job_id into review"
        ]
    );
    assert_eq!(
        out.without_history,
        replaced(
            SAMPLE_1_2,
            &[
                ("\"provider\": \"example\"", "\"vendor\": \"example\""),
                (
                    "  \"queue_job_id\": \"0c9b7f1e-6a2d-4e55-b3c8-91f0a7d2e4c6\",\n  \"run_id\": ",
                    "  \"review\": {\n    \"queue_job_id\": \"0c9b7f1e-6a2d-4e55-b3c8-91f0a7d2e4c6\"\n  },\n  \"run_id\": "
                ),
                ("\"schema_version\": \"1.2.0\"", "\"schema_version\": \"1.3.0\""),
            ]
        )
    );
}

#[test]
fn copy_writes_where_absent_and_keeps_number_spelling() {
    let text = with_ops(
        r#"
[[ops]]
op = "copy"
from = "/artifacts"
path = "/meta/artifacts_at_1_2"
description = "Copy artifacts into meta.artifacts_at_1_2"

[[ops]]
op = "copy"
from = "/job_type"
path = "/status"
description = "Copy job_type to status (never: status exists)"

[[ops]]
op = "copy"
from = "/missing"
path = "/meta/missing"
description = "Copy missing"
"#,
    );
    let out = run_ok(&registry_with(&text), SAMPLE_1_2, "1.3.0");
    assert_eq!(out.changes, ["Copy artifacts into meta.artifacts_at_1_2"]);
    assert_eq!(
        out.without_history,
        replaced(
            SAMPLE_1_2,
            &[
                (
                    "\"meta\": {}",
                    "\"meta\": {\n    \"artifacts_at_1_2\": {\n      \"outputs/instagram_captions.md\": {\n        \"bytes\": 611,\n        \"sha256\": \"sha256:9250b9912ee91d6b46e23299459ecd6eb8154451d62558a3a0a708a77926ad04\"\n      }\n    }\n  }"
                ),
                ("\"schema_version\": \"1.2.0\"", "\"schema_version\": \"1.3.0\""),
            ]
        )
    );
}

#[test]
fn add_skips_what_exists_and_ops_see_the_edits_before_them() {
    let text = with_ops(
        r#"
[[ops]]
op = "add"
path = "/status"
value = "never"
description = "Add status (skipped: present)"

[[ops]]
op = "add"
path = "/review"
value = {}
description = "Add review"

[[ops]]
op = "add"
path = "/review/state"
value = "open"
description = "Add review.state"

[[ops]]
op = "rename"
path = "/review/state"
to = "status"
description = "Rename review.state to review.status"
"#,
    );
    let out = run_ok(&registry_with(&text), SAMPLE_1_2, "1.3.0");
    assert_eq!(
        out.changes,
        [
            "Add review",
            "Add review.state",
            "Rename review.state to review.status"
        ]
    );
    assert!(
        out.without_history
            .contains("  \"review\": {\n    \"status\": \"open\"\n  },\n  \"run_id\""),
        "{}",
        out.without_history
    );
}

#[test]
fn a_destination_that_exists_or_a_missing_parent_fails_the_manifest_naming_file_and_line() {
    let cases = [
        (
            "[[ops]]\nop = \"rename\"\npath = \"/generation_metadata/model\"\nto = \"provider\"\ndescription = \"d\"\n",
            "migration 1.2.0->1.3.0 failed: .artifact-migrate/migrations/1.2.0-1.3.0.toml:3: rename cannot move /generation_metadata/model to /generation_metadata/provider: /generation_metadata/provider already exists in this manifest and is never overwritten; remove it first with an op = \"remove\" if it should go, or choose another destination",
        ),
        (
            "[[ops]]\nop = \"move\"\nfrom = \"/job_type\"\npath = \"/status\"\ndescription = \"d\"\n",
            "migration 1.2.0->1.3.0 failed: .artifact-migrate/migrations/1.2.0-1.3.0.toml:3: move cannot move /job_type to /status: /status already exists",
        ),
        (
            "[[ops]]\nop = \"add\"\npath = \"/review/state\"\nvalue = \"open\"\ndescription = \"d\"\n",
            "migration 1.2.0->1.3.0 failed: .artifact-migrate/migrations/1.2.0-1.3.0.toml:3: add cannot write /review/state: its parent /review does not exist in this manifest; add the parent first with an op = \"add\", value = {} before this op",
        ),
        (
            "[[ops]]\nop = \"set\"\npath = \"/status/x\"\nvalue = 1\ndescription = \"d\"\n",
            "migration 1.2.0->1.3.0 failed: .artifact-migrate/migrations/1.2.0-1.3.0.toml:3: set cannot write /status/x: its parent /status is a string, not an object",
        ),
    ];
    for (ops, want) in cases {
        let r = registry_with(&with_ops(ops));
        let err = run(&r, SAMPLE_1_2, "1.3.0").map(|_| ()).expect_err("fails");
        assert!(err.to_string().starts_with(want), "want {want}\ngot  {err}");
        assert_eq!(err.kind(), "transform");
    }
}

// ---------------------------------------------------------------- same bytes as the built-ins

const STYLE_FIXTURES: [(&str, &str); 24] = [
    (
        "styles/ascii-no-version",
        include_str!("../../../fixtures/styles/ascii-no-version.json"),
    ),
    (
        "styles/crlf",
        include_str!("../../../fixtures/styles/crlf.json"),
    ),
    (
        "styles/escaped-unicode",
        include_str!("../../../fixtures/styles/escaped-unicode.json"),
    ),
    (
        "styles/indent2-sorted",
        include_str!("../../../fixtures/styles/indent2-sorted.json"),
    ),
    (
        "styles/indent4-unsorted",
        include_str!("../../../fixtures/styles/indent4-unsorted.json"),
    ),
    (
        "styles/minified",
        include_str!("../../../fixtures/styles/minified.json"),
    ),
    (
        "styles/no-version",
        include_str!("../../../fixtures/styles/no-version.json"),
    ),
    (
        "styles/numbers",
        include_str!("../../../fixtures/styles/numbers.json"),
    ),
    (
        "styles/python-default-oneline",
        include_str!("../../../fixtures/styles/python-default-oneline.json"),
    ),
    (
        "styles/sorted-no-trailing-newline",
        include_str!("../../../fixtures/styles/sorted-no-trailing-newline.json"),
    ),
    (
        "styles/tabs",
        include_str!("../../../fixtures/styles/tabs.json"),
    ),
    (
        "styles/unusual-order",
        include_str!("../../../fixtures/styles/unusual-order.json"),
    ),
    (
        "styles/with-history",
        include_str!("../../../fixtures/styles/with-history.json"),
    ),
    (
        "format/indent4-unsorted",
        include_str!("../../../fixtures/format/indent4-unsorted.json"),
    ),
    (
        "format/minified",
        include_str!("../../../fixtures/format/minified.json"),
    ),
    (
        "format/nested-empty",
        include_str!("../../../fixtures/format/nested-empty.json"),
    ),
    (
        "format/numbers",
        include_str!("../../../fixtures/format/numbers.json"),
    ),
    (
        "format/python-ascii",
        include_str!("../../../fixtures/format/python-ascii.json"),
    ),
    (
        "format/raw-utf8",
        include_str!("../../../fixtures/format/raw-utf8.json"),
    ),
    (
        "format/tabs-sorted",
        include_str!("../../../fixtures/format/tabs-sorted.json"),
    ),
    (
        "format/v1.0.0-manifest",
        include_str!("../../../fixtures/format/v1.0.0-manifest.json"),
    ),
    (
        "format/v1.1.0-manifest",
        include_str!("../../../fixtures/format/v1.1.0-manifest.json"),
    ),
    (
        "format/v1.2.0-manifest",
        include_str!("../../../fixtures/format/v1.2.0-manifest.json"),
    ),
    (
        "format/with-history",
        include_str!("../../../fixtures/format/with-history.json"),
    ),
];

/// The built-in 1.1.0 -> 1.2.0, as data.
const CHAIN_AS_DATA: &str = r#"
from = "1.1.0"
to = "1.2.0"

[[ops]]
op = "add"
path = "/chain_metadata"
value = { is_chainable_stage = false, prior_stages = [] }
description = "Add chain_metadata"
"#;

fn apply_all(input: &str, m: &dyn Migration) -> (Vec<u8>, Vec<String>) {
    let mut doc = Document::parse(input.as_bytes()).expect("fixture parses");
    let ctx = MigrationContext {
        path: "artifacts/job-s/run-1/manifest.json",
        artifacts_root: "artifacts",
        layouts: &crate::layout::Layouts::default(),
    };
    let changes = m.transform(&doc.value(), &ctx).expect("transform");
    let mut texts = Vec::new();
    for c in changes {
        doc.apply(&c.edit).expect("edit applies");
        texts.push(c.detail);
    }
    (doc.into_bytes(), texts)
}

#[test]
fn a_declarative_twin_of_a_builtin_writes_the_same_bytes_on_every_style_fixture() {
    let twin = match load(
        &owned(&[(
            ".artifact-migrate/migrations/1.1.0-1.2.0.toml",
            CHAIN_AS_DATA,
        )]),
        &protected(),
    ) {
        Ok(mut v) => v.remove(0),
        Err(e) => panic!("{e:#?}"),
    };
    let mut added = 0;
    for (name, input) in STYLE_FIXTURES {
        let (want, want_changes) = apply_all(input, &AddChainMetadata);
        let (got, got_changes) = apply_all(input, &twin);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        assert_eq!(got_changes, want_changes, "{name}");
        added += usize::from(!want_changes.is_empty());
    }
    assert!(added >= 15, "only {added} fixtures gained chain_metadata");
}

#[test]
fn a_declarative_twin_in_the_registry_gives_the_engine_the_same_bytes() {
    // The built-ins' registry against one where 1.1.0->1.2.0 is the declarative twin.
    let builtin = Registry::with_builtins();
    let mut twin = Registry::empty();
    for m in [
        Box::new(AddInputs) as Box<dyn Migration>,
        Box::new(Direct1_0To1_2),
    ] {
        twin.register(m).expect("distinct");
    }
    let declared = match load(
        &owned(&[(
            ".artifact-migrate/migrations/1.1.0-1.2.0.toml",
            CHAIN_AS_DATA,
        )]),
        &protected(),
    ) {
        Ok(v) => v,
        Err(e) => panic!("{e:#?}"),
    };
    register(&mut twin, declared).expect("registers");
    let mut compared = 0;
    for (name, input) in STYLE_FIXTURES {
        // Every fixture relabelled 1.1.0 (where it is a version at all), so the twin runs.
        let doc = Document::parse(input.as_bytes()).expect("fixture");
        let mut d = doc.clone();
        if d.apply(&Edit::Set {
            pointer: "/schema_version".into(),
            value: Json::str("1.1.0"),
        })
        .is_err()
        {
            continue;
        }
        let relabelled = d.as_str().to_string();
        let a = run(&builtin, &relabelled, "1.2.0");
        let b = run(&twin, &relabelled, "1.2.0");
        match (a, b) {
            (Ok(a), Ok(b)) => {
                // Same edits, same bytes: only the recorded checksum of the step's definition differs.
                let sum = |r: &Registry| {
                    r.migrations()
                        .iter()
                        .find(|m| m.id().to_string() == "1.1.0->1.2.0")
                        .map(|m| m.checksum())
                        .unwrap_or_default()
                };
                let (ca, cb) = (sum(&builtin), sum(&twin));
                assert_ne!(ca, cb);
                assert_eq!(
                    b.bytes.replace(&cb, "CHECKSUM"),
                    a.bytes.replace(&ca, "CHECKSUM"),
                    "{name}"
                );
                compared += 1;
            }
            (Err(a), Err(b)) => assert_eq!(b.to_string(), a.to_string(), "{name}"),
            (a, b) => panic!(
                "{name}: built-in {:?} vs twin {:?}",
                a.map(|r| r.bytes),
                b.map(|r| r.bytes)
            ),
        }
    }
    assert!(compared >= 15, "only {compared} compared");
}

// ---------------------------------------------------------------- checksums

#[test]
fn the_canonical_form_is_the_documented_one() {
    let m = load_one(
        "from = \"1.2.0\"\nto = \"1.3.0\"\n[[ops]]\nop = \"rename\"\npath = \"/a/b\"\nto = \"c\"\ndescription = \"Rename a.b to a.c\"\n[[ops]]\nop = \"copy\"\nfrom = \"/x\"\npath = \"/y\"\ndescription = \"Copy x to y\"\n[[ops]]\nop = \"set\"\npath = \"/n\"\nvalue = { b = 1.0, a = [true] }\ndescription = \"Set n\"\n",
    );
    let form = r#"{"algorithm":"am-migration-v1","description":null,"from":"1.2.0","ops":[{"description":"Rename a.b to a.c","op":"rename","path":"/a/b","to":"c"},{"description":"Copy x to y","from":"/x","op":"copy","path":"/y"},{"description":"Set n","op":"set","path":"/n","value":{"a":[true],"b":1.0}}],"to":"1.3.0"}"#;
    assert_eq!(m.canonical_form(), form);
    assert_eq!(m.checksum(), sha256_prefixed(form.as_bytes()));
    assert_eq!(CHECKSUM_ALGORITHM, "am-migration-v1");
}

#[test]
fn reformatting_keeps_the_checksum() {
    let base = load_one(EXAMPLE).checksum();
    let variants = [
        // Different whitespace, key order and comments.
        r#"
to="1.3.0"   # the target
description="Rename generation_metadata.model, add review_status"
from   =   "1.2.0"

# first
[[ops]]
description = "Rename generation_metadata.model to generation_metadata.model_name"
to = "model_name"
path = "/generation_metadata/model"
op = "rename"
[[ops]]
value = "unreviewed"
description = 'Add review_status ("unreviewed")'
op = "add"
path = "/review_status"
"#,
        // Inline tables instead of [[ops]], literal strings, one line each.
        r#"from = '1.2.0'
to = '1.3.0'
description = """Rename generation_metadata.model, add review_status"""
ops = [
  {op = "rename", path = "/generation_metadata/model", to = "model_name", description = "Rename generation_metadata.model to generation_metadata.model_name"},
  {op = "add", path = "/review_status", value_json = '"unreviewed"', description = "Add review_status (\"unreviewed\")"},
]
"#,
    ];
    for text in variants {
        assert_eq!(load_one(text).checksum(), base, "{text}");
    }
    // Number spellings TOML offers, and value vs value_json of equal meaning.
    let n = |value: &str| {
        load_one(&with_ops(&format!(
            "[[ops]]\nop = \"add\"\npath = \"/n\"\n{value}\ndescription = \"Add n\"\n"
        )))
        .checksum()
    };
    let thousand = n("value = 1000");
    assert_eq!(n("value = 1_000"), thousand);
    assert_eq!(n("value = 0x3e8"), thousand);
    assert_eq!(n("value = +1000"), thousand);
    assert_eq!(n("value_json = '1000'"), thousand);
    assert_eq!(
        n("value = { a = 1, b = [2] }"),
        n("value_json = '{\"b\": [2], \"a\": 1}'")
    );
}

#[test]
fn any_change_of_meaning_changes_the_checksum() {
    let base = load_one(EXAMPLE).checksum();
    let edits = [
        ("value = \"unreviewed\"", "value = \"pending\""),
        ("path = \"/review_status\"", "path = \"/review_state\""),
        ("to = \"model_name\"", "to = \"model_id\""),
        ("op = \"add\"", "op = \"set\""),
        (
            "description = \"Add review_status (\\\"unreviewed\\\")\"",
            "description = \"Add review_status\"",
        ),
        (
            "description = \"Rename generation_metadata.model, add review_status\"",
            "description = \"Rename model, add review_status\"",
        ),
        ("to = \"1.3.0\"", "to = \"1.4.0\""),
    ];
    for (a, b) in edits {
        assert_eq!(EXAMPLE.matches(a).count(), 1, "{a}");
        let text = EXAMPLE.replacen(a, b, 1);
        let file = if b.contains("1.4.0") {
            ".artifact-migrate/migrations/1.2.0-1.4.0.toml"
        } else {
            FILE
        };
        let m = match load(&owned(&[(file, &text)]), &protected()) {
            Ok(mut v) => v.remove(0),
            Err(e) => panic!("{e:#?}"),
        };
        assert_ne!(m.checksum(), base, "{a} -> {b}");
    }
    // Number spelling is meaning in JSON's number text: 1.0 is not 1.
    let n = |value: &str| {
        load_one(&with_ops(&format!(
            "[[ops]]\nop = \"add\"\npath = \"/n\"\n{value}\ndescription = \"Add n\"\n"
        )))
        .checksum()
    };
    assert_ne!(n("value = 1.0"), n("value = 1"));
    // Reordering ops is a change.
    let swapped = load_one(&with_ops(
        "[[ops]]\nop = \"add\"\npath = \"/b\"\nvalue = 1\ndescription = \"b\"\n[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue = 1\ndescription = \"a\"\n",
    ));
    let ordered = load_one(&with_ops(
        "[[ops]]\nop = \"add\"\npath = \"/a\"\nvalue = 1\ndescription = \"a\"\n[[ops]]\nop = \"add\"\npath = \"/b\"\nvalue = 1\ndescription = \"b\"\n",
    ));
    assert_ne!(swapped.checksum(), ordered.checksum());
}

#[test]
fn the_registry_checksum_covers_declarative_migrations() {
    let plain = Registry::with_builtins();
    let with = registry_with(EXAMPLE);
    let edited = registry_with(&EXAMPLE.replace("\"unreviewed\"", "\"pending\""));
    let sums = [
        registry_checksum(&plain.migrations()),
        registry_checksum(&with.migrations()),
        registry_checksum(&edited.migrations()),
    ];
    assert_ne!(sums[0], sums[1]);
    assert_ne!(sums[1], sums[2]);
    let reformatted = registry_with(&EXAMPLE.replace("# comments allowed\n", "\n\n"));
    assert_eq!(registry_checksum(&reformatted.migrations()), sums[1]);
}

// ---------------------------------------------------------------- registering and lint

#[test]
fn register_refuses_a_second_definition_naming_the_file() {
    let mut r = Registry::with_builtins();
    let twin = match load(
        &owned(&[(
            ".artifact-migrate/migrations/1.1.0-1.2.0.toml",
            CHAIN_AS_DATA,
        )]),
        &protected(),
    ) {
        Ok(v) => v,
        Err(e) => panic!("{e:#?}"),
    };
    let errs = register(&mut r, twin).expect_err("duplicate");
    assert_eq!(
        errs[0].to_string(),
        ".artifact-migrate/migrations/1.1.0-1.2.0.toml:2: a migration for 1.1.0->1.2.0 is already registered (a built-in migration): remove one of the two"
    );
}

fn lint_files(files: &[(&str, &str)]) -> Vec<String> {
    let declared = match load(&owned(files), &protected()) {
        Ok(v) => v,
        Err(e) => panic!("{e:#?}"),
    };
    let builtins = Registry::with_builtins();
    lint(&builtins.migrations(), &declared)
        .iter()
        .map(|i| i.to_string())
        .collect()
}

fn edge(from: &str, to: &str) -> (String, String) {
    (
        format!(".artifact-migrate/migrations/{from}-{to}.toml"),
        format!("# {from} to {to}\nfrom = \"{from}\"\nto = \"{to}\"\n"),
    )
}

#[test]
fn lint_is_clean_for_builtins_plus_a_chained_file() {
    assert_eq!(lint_files(&[(FILE, EXAMPLE)]), Vec::<String>::new());
}

#[test]
fn lint_names_both_definitions_of_one_pair() {
    let (f, t) = edge("1.1.0", "1.2.0");
    let (g, u) = edge("1.2.0", "1.3.0");
    let other = ".artifact-migrate/migrations/review.toml";
    let found = lint_files(&[(&f, &t), (&g, &u), (other, EXAMPLE)]);
    assert!(
        found.contains(&".artifact-migrate/migrations/1.1.0-1.2.0.toml:2: error: two migrations for 1.1.0->1.2.0: this one and built-in; remove one of them".to_string()),
        "{found:#?}"
    );
    assert!(
        found.contains(&".artifact-migrate/migrations/review.toml:2: error: two migrations for 1.2.0->1.3.0: this one and .artifact-migrate/migrations/1.2.0-1.3.0.toml:2; remove one of them".to_string()),
        "{found:#?}"
    );
    assert!(
        found[0].contains(": error: "),
        "errors come first: {found:#?}"
    );
}

#[test]
fn lint_finds_unreachable_versions_and_targets_nobody_reaches() {
    let (a, at) = edge("1.2.0", "1.3.0");
    let (b, bt) = edge("2.0.0", "2.1.0");
    let found = lint_files(&[(&a, &at), (&b, &bt)]);
    let want = [
        "warning: version 1.0.0 cannot reach the latest version 2.1.0: manifests at 1.0.0 can never be migrated to it; add a migration from 1.0.0 (or from a version it reaches) towards 2.1.0",
        ".artifact-migrate/migrations/1.2.0-1.3.0.toml:2: warning: version 1.3.0 cannot reach the latest version 2.1.0",
        ".artifact-migrate/migrations/2.0.0-2.1.0.toml:2: warning: version 2.0.0 is reached by no migration: manifests at 1.0.0 can never be migrated to 2.0.0 or beyond it",
        ".artifact-migrate/migrations/2.0.0-2.1.0.toml:2: warning: version 2.1.0 cannot be reached from 1.0.0: the migrations into it (2.0.0->2.1.0 (.artifact-migrate/migrations/2.0.0-2.1.0.toml:2)) start at versions 1.0.0 never reaches",
    ];
    for w in want {
        assert!(
            found.iter().any(|f| f.starts_with(w)),
            "want {w}\n{found:#?}"
        );
    }
    assert_eq!(found.len(), 6, "{found:#?}");
    assert!(found
        .iter()
        .all(|f| f.contains(": warning: ") || f.starts_with("warning: ")));
}

#[test]
fn lint_warns_about_equally_short_paths_naming_the_files() {
    let (a, at) = edge("1.2.0", "1.3.0");
    let (b, bt) = edge("1.1.0", "1.3.0");
    let found = lint_files(&[(&a, &at), (&b, &bt)]);
    assert!(
        found.iter().any(|f| f == ".artifact-migrate/migrations/1.1.0-1.3.0.toml:2: warning: 2 equally short paths from 1.0.0 to 1.3.0: [1.0.0->1.1.0 (built-in), 1.1.0->1.3.0 (.artifact-migrate/migrations/1.1.0-1.3.0.toml:2)] or [1.0.0->1.2.0 (built-in), 1.2.0->1.3.0 (.artifact-migrate/migrations/1.2.0-1.3.0.toml:2)]; the one through the lowest versions is taken; add a direct migration 1.0.0->1.3.0 to make the choice explicit"),
        "{found:#?}"
    );
    // A diamond of files only: 1.3.0 -> {1.4.0, 1.5.0} -> 2.0.0.
    let diamond = [
        edge("1.3.0", "1.4.0"),
        edge("1.3.0", "1.5.0"),
        edge("1.4.0", "2.0.0"),
        edge("1.5.0", "2.0.0"),
    ];
    let mut files: Vec<(&str, &str)> = vec![(&a, &at)];
    files.extend(diamond.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    let found = lint_files(&files);
    assert!(
        found.iter().any(|f| f == ".artifact-migrate/migrations/1.3.0-1.4.0.toml:2: warning: 2 equally short paths from 1.3.0 to 2.0.0: [1.3.0->1.4.0 (.artifact-migrate/migrations/1.3.0-1.4.0.toml:2), 1.4.0->2.0.0 (.artifact-migrate/migrations/1.4.0-2.0.0.toml:2)] or [1.3.0->1.5.0 (.artifact-migrate/migrations/1.3.0-1.5.0.toml:2), 1.5.0->2.0.0 (.artifact-migrate/migrations/1.5.0-2.0.0.toml:2)]; the one through the lowest versions is taken; add a direct migration 1.3.0->2.0.0 to make the choice explicit"),
        "{found:#?}"
    );
    // Every version below 1.3.0 inherits the tie.
    assert_eq!(
        found
            .iter()
            .filter(|f| f.contains("equally short paths"))
            .count(),
        4,
        "{found:#?}"
    );
}

/// A Rust migration that goes down (a file cannot: it is refused at load).
struct Down;
impl Migration for Down {
    fn from(&self) -> Version {
        Version::new(1, 2, 0)
    }
    fn to(&self) -> Version {
        Version::new(1, 1, 0)
    }
    fn describe(&self) -> Vec<String> {
        Vec::new()
    }
    fn transform(&self, _: &Json, _: &MigrationContext<'_>) -> Result<Vec<Change>, MigrationError> {
        Ok(Vec::new())
    }
}

#[test]
fn lint_finds_cycles_naming_each_edge() {
    let builtins = Registry::with_builtins();
    let mut rust: Vec<&dyn Migration> = builtins.migrations();
    rust.push(&Down);
    let issues = lint(&rust, &[]);
    let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    assert!(
        text.contains(&"error: migration 1.2.0->1.1.0 goes down (or nowhere): a migration goes up; downgrades are rollbacks, not migrations".to_string()),
        "{text:#?}"
    );
    assert!(
        text.contains(&"error: cycle: 1.1.0->1.2.0 (built-in), 1.2.0->1.1.0 (built-in); remove the migration that goes down".to_string()),
        "{text:#?}"
    );
    let finding: crate::schema::LintFinding = issues[0].clone().into();
    assert_eq!(finding.severity, "error");
}

// ---------------------------------------------------------------- property: the local model agrees

mod model {
    use super::*;
    use proptest::prelude::*;

    const POINTERS: [&str; 14] = [
        "/status",
        "/meta",
        "/meta/x",
        "/generation_metadata",
        "/generation_metadata/model",
        "/generation_metadata/provider",
        "/new",
        "/new/y",
        "/artifacts/outputs~1instagram_captions.md/bytes",
        "/chain_metadata/prior_stages/0/stage",
        "/chain_metadata/prior_stages/0",
        "/chain_metadata/prior_stages",
        "/error",
        "/numbers/big",
    ];
    const KEYS: [&str; 4] = ["model_name", "x", "provider", "status"];
    const VALUES: [&str; 6] = [
        "value = 1",
        "value = \"s\"",
        "value = {}",
        "value = []",
        "value = { a = 1.50, b = [true] }",
        "value_json = 'null'",
    ];

    fn op_text(kind: usize, p: usize, f: usize, k: usize, val: usize) -> String {
        let (p, f, k, val) = (POINTERS[p], POINTERS[f], KEYS[k], VALUES[val]);
        let body = match kind {
            0 => format!("op = \"add\"\npath = \"{p}\"\n{val}"),
            1 => format!("op = \"set\"\npath = \"{p}\"\n{val}"),
            2 => format!("op = \"remove\"\npath = \"{p}\""),
            3 => format!("op = \"rename\"\npath = \"{p}\"\nto = \"{k}\""),
            4 => format!("op = \"move\"\nfrom = \"{f}\"\npath = \"{p}\""),
            _ => format!("op = \"copy\"\nfrom = \"{f}\"\npath = \"{p}\""),
        };
        format!("[[ops]]\n{body}\ndescription = \"op\"\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever ops a file holds, the edits a transform returns apply to the document in
        /// order, and leave it equal to the value the transform computed them against.
        #[test]
        fn edits_apply_and_agree_with_the_local_model(
            ops in proptest::collection::vec((0..6usize, 0..14usize, 0..14usize, 0..4usize, 0..6usize), 1..6),
            fixture in 0..3usize,
        ) {
            let text = with_ops(&ops.iter().map(|&(a, b, c, d, e)| op_text(a, b, c, d, e)).collect::<String>());
            let Ok(mut loaded) = load(&owned(&[(FILE, &text)]), &protected()) else {
                return Ok(()); // refused at load (e.g. move into itself): nothing to run
            };
            let m = loaded.remove(0);
            let input = [
                SAMPLE_1_2,
                SAMPLE_1_0,
                "{\r\n\t\"numbers\": {\"big\": 123456789012345678901234567890, \"tiny\": 1e-400},\r\n\t\"status\": \"ok\"\r\n}",
            ][fixture];
            let mut doc = Document::parse(input.as_bytes()).expect("fixture");
            match ops::simulate(&m, &doc.value()) {
                Err(e) => prop_assert!(e.0.starts_with(&format!("{FILE}:")), "{}", e.0),
                Ok((changes, local)) => {
                    for c in &changes {
                        prop_assert!(doc.apply(&c.edit).is_ok(), "{:?} refused\n{}", c.edit, text);
                    }
                    prop_assert!(doc.value().deep_eq(&local), "{}\n{}", text, doc.as_str());
                    // The bytes still parse strictly and keep their line endings.
                    let reparsed = Document::parse(doc.as_bytes());
                    prop_assert!(reparsed.is_ok());
                    if input.contains("\r\n") {
                        prop_assert!(!doc.as_str().replace("\r\n", "").contains('\n'), "{}", doc.as_str());
                    }
                }
            }
        }
    }
}

/// The checksum of the EXAMPLE migration, as history records it.
fn example_checksum() -> String {
    registry_with(EXAMPLE)
        .migrations()
        .iter()
        .find(|m| m.id().to_string() == "1.2.0->1.3.0")
        .map(|m| m.checksum())
        .unwrap_or_default()
}
