//! Format preservation end to end (SPEC §8), through the real binary: each manifest of
//! `fixtures/styles/` is committed, migrated by `apply`, and its new bytes are checked against
//! its old bytes: nothing deleted but the `schema_version` value, every original line still
//! there in order, the file's newline kind, indentation, separators, escapes and number
//! spellings kept, new keys at their sorted place in a sorted object and after the last member
//! elsewhere. A few files are also compared byte for byte with `fixtures/styles/expected/`.

mod common;

use artifact_migrate::manifest::{Document, Json};
use common::*;

const PATH: &str = "artifacts/job-s/run-1/manifest.json";

/// One fixture migrated by `apply`: its bytes before and after.
struct Migrated {
    repo: TestRepo,
    path: String,
    old: Vec<u8>,
    new: Vec<u8>,
}

impl Migrated {
    fn old_str(&self) -> &str {
        std::str::from_utf8(&self.old).unwrap()
    }
    fn new_str(&self) -> &str {
        std::str::from_utf8(&self.new).unwrap()
    }
}

fn migrate_fixture_at(name: &str, path: &str) -> Migrated {
    let old = fixture(&format!("styles/{name}"));
    let repo = TestRepo::new();
    repo.file(path, &old).commit(name);
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 1, "{name}: {report:#}");
    let new = repo.show("HEAD", path);
    assert_eq!(repo.file_bytes(path), new, "{name}: working tree = HEAD");
    Migrated {
        repo,
        path: path.to_string(),
        old,
        new,
    }
}

fn migrate_fixture(name: &str) -> Migrated {
    migrate_fixture_at(name, PATH)
}

fn parse(bytes: &[u8]) -> Json {
    Document::parse(bytes)
        .unwrap_or_else(|e| panic!("does not parse: {e}\n{}", String::from_utf8_lossy(bytes)))
        .value()
}

fn top_keys(v: &Json) -> Vec<String> {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, _)| k.clone())
        .collect()
}

/// The checks every style shares.
fn assert_preserved(m: &Migrated) {
    let (old, new) = (m.old_str(), m.new_str());
    let norm = normalized_old(old);
    assert!(
        is_subsequence(norm.as_bytes(), new.as_bytes()),
        "bytes were deleted, not only inserted:\n--- old\n{old}\n--- new\n{new}"
    );
    // Same ending: newline kind and presence of the trailing newline.
    for ending in ["}\r\n", "}\n"] {
        assert_eq!(old.ends_with(ending), new.ends_with(ending), "ending kept");
    }
    assert_eq!(old.ends_with('}'), new.ends_with('}'), "no newline added");
    let crlf = old.contains("\r\n");
    if crlf {
        assert_eq!(
            new.matches('\n').count(),
            new.matches("\r\n").count(),
            "every line break is CRLF:\n{new:?}"
        );
    } else {
        assert!(!new.contains('\r'), "no CR appears");
    }
    // Multi-line files: lines kept, inserted lines in the file's indentation.
    if old.trim_end().contains('\n') {
        let inserted = assert_old_lines_kept_in_order(old, new);
        assert!(!inserted.is_empty());
        let unit = indent_unit(old);
        for l in &inserted {
            let ws = &l[..l.len() - l.trim_start().len()];
            assert!(
                ws.is_empty() || ws.split(unit).all(str::is_empty),
                "inserted line {l:?} is not indented in units of {unit:?}"
            );
        }
    } else {
        assert!(
            !new.trim_end().contains('\n'),
            "a one-line file stays one line:\n{new}"
        );
    }
    // Semantics: old members kept (deep-equal, numbers as written), new ones as specified.
    let before = parse(&m.old);
    let after = parse(&m.new);
    for (k, v) in before.as_object().unwrap() {
        if k == "schema_version" {
            continue;
        }
        let a = after.get(k).unwrap_or_else(|| panic!("{k} removed"));
        if k == "migration_history" {
            let (Json::Array(old_h), Json::Array(new_h)) = (v, a) else {
                panic!("migration_history is not an array");
            };
            assert_eq!(new_h.len(), old_h.len() + 1, "one entry appended");
            assert!(
                old_h.iter().zip(new_h).all(|(o, n)| o.deep_eq(n)),
                "earlier entries kept"
            );
            continue;
        }
        assert!(a.deep_eq(v), "{k} changed: {v:?} -> {a:?}");
    }
    assert_eq!(after.get("schema_version"), Some(&Json::str("1.2.0")));
    // Unsorted objects keep their order and get new keys at the end; sorted ones stay sorted.
    let (old_keys, new_keys) = (top_keys(&before), top_keys(&after));
    let sorted = |k: &[String]| k.windows(2).all(|w| w[0] < w[1]);
    if sorted(&old_keys) && old_keys.len() > 1 {
        assert!(
            sorted(&new_keys),
            "a sorted object stays sorted: {new_keys:?}"
        );
    } else {
        assert_eq!(
            &new_keys[..old_keys.len()],
            &old_keys[..],
            "existing keys keep their order, new ones come after"
        );
    }
    // The history entry's checksums, recomputed independently.
    let doc: serde_json::Value = serde_json::from_slice(&m.new).unwrap();
    let entry = last_history(&doc);
    assert_eq!(
        entry["checksum_before"].as_str(),
        Some(sha256_hex(&m.old).as_str())
    );
    assert_eq!(
        entry["checksum_after"].as_str(),
        Some(python_checksum_after_as_written(&m.new).as_str()),
        "checksum_after = canonical JSON with numbers as written"
    );
    // Migrating again changes nothing.
    let again = m.repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(again["commit"], serde_json::Value::Null);
    assert_eq!(m.repo.file_bytes(&m.path), m.new);
}

/// The first indentation in the file: a tab, or the smallest run of spaces.
fn indent_unit(s: &str) -> &'static str {
    let mut spaces = usize::MAX;
    for l in s.lines() {
        if l.starts_with('\t') {
            return "\t";
        }
        let n = l.len() - l.trim_start_matches(' ').len();
        if n > 0 {
            spaces = spaces.min(n);
        }
    }
    match spaces {
        4 => "    ",
        _ => "  ",
    }
}

/// Checks one-line separators outside strings: after every `,` and `:` exactly `sep_space`
/// spaces, and no other whitespace.
fn assert_one_line_separators(text: &str, sep_space: &str) {
    let b = text.trim_end_matches('\n').as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b',' | b':' => {
                    let rest = &text[i + 1..];
                    assert!(
                        rest.starts_with(sep_space)
                            && !rest[sep_space.len()..].starts_with([' ', '\t', '\n']),
                        "separator at byte {i} not followed by {sep_space:?}: {:?}",
                        &text[i..(i + 12).min(text.len())]
                    );
                    i += sep_space.len();
                }
                b' ' | b'\t' | b'\n' | b'\r' => {
                    panic!(
                        "stray whitespace at byte {i}: {:?}",
                        &text[i.saturating_sub(10)..(i + 10).min(text.len())]
                    )
                }
                _ => {}
            }
        }
        i += 1;
    }
}

/// `checksum_after` by Python, with every number kept as written (the canonical form of §5:
/// Python's `json.dumps` re-spells `1e-400` or `-0.0`; the pipeline's form does not).
fn python_checksum_after_as_written(migrated: &[u8]) -> String {
    python(
        r#"import sys, json, hashlib
class Num(str):
    pass
doc = json.loads(sys.stdin.buffer.read().decode('utf-8'), parse_float=Num, parse_int=Num)
doc.pop('migration_history', None)
def canon(v):
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, dict):
        return '{' + ','.join(json.dumps(k, ensure_ascii=False) + ':' + canon(v[k]) for k in sorted(v)) + '}'
    if isinstance(v, list):
        return '[' + ','.join(canon(x) for x in v) + ']'
    return json.dumps(v, ensure_ascii=False)
print('sha256:' + hashlib.sha256(canon(doc).encode('utf-8')).hexdigest())"#,
        migrated,
    )
}

/// Compares with `fixtures/styles/expected/NAME`, whose `{BASE}`, `{BEFORE}` and `{AFTER}`
/// stand for the base commit and the two checksums, and `{MIGRATION}` for the checksum of
/// the built-in 1.0.0->1.2.0 definition.
fn assert_matches_expected(m: &Migrated, name: &str) {
    let template = String::from_utf8(fixture(&format!("styles/expected/{name}"))).unwrap();
    let expected = template
        .replace("{BASE}", &m.repo.rev("HEAD~1"))
        .replace("{BEFORE}", &sha256_hex(&m.old))
        .replace("{AFTER}", &python_checksum_after_as_written(&m.new))
        .replace("{MIGRATION}", &builtin_checksum("1.0.0->1.2.0"));
    assert_eq!(
        m.new_str(),
        expected,
        "{name}: bytes differ from fixtures/styles/expected/{name}"
    );
}

#[test]
fn two_space_sorted_keys_get_new_members_in_sorted_places() {
    let m = migrate_fixture("indent2-sorted.json");
    assert_preserved(&m);
    assert_matches_expected(&m, "indent2-sorted.json");
}

#[test]
fn four_space_unsorted_appends_after_the_last_member() {
    let m = migrate_fixture("indent4-unsorted.json");
    assert_preserved(&m);
    let new = m.new_str();
    assert!(
        new.contains("\n    },\n    \"input_snapshots\": {},\n"),
        "{new}"
    );
    assert!(
        new.contains("\n        \"is_chainable_stage\": false,\n"),
        "{new}"
    );
    // Empty containers stay inline.
    assert!(
        new.contains("\"empty\": {},\n        \"list\": []\n"),
        "{new}"
    );
}

#[test]
fn tabs_stay_tabs() {
    let m = migrate_fixture("tabs.json");
    assert_preserved(&m);
    let new = m.new_str();
    assert!(
        new.contains("\n\t\"chain_metadata\": {\n\t\t\"is_chainable_stage\": false,\n"),
        "{new}"
    );
    assert!(!new.contains("  "), "no spaces used as indentation:\n{new}");
}

#[test]
fn python_default_one_line_without_trailing_newline() {
    let m = migrate_fixture("python-default-oneline.json");
    assert_preserved(&m);
    let (old, new) = (m.old_str(), m.new_str());
    assert!(!new.ends_with('\n'));
    // One insertion, just before the final brace.
    let norm = normalized_old(old);
    let head = &norm[..norm.len() - 1];
    assert!(new.starts_with(head) && new.ends_with('}'), "{new}");
    assert!(
        new[head.len()..].starts_with(", \"input_snapshots\": {}, "),
        "{new}"
    );
    assert_one_line_separators(new, " ");
    assert_matches_expected(&m, "python-default-oneline.json");
}

#[test]
fn minified_stays_minified() {
    let m = migrate_fixture("minified.json");
    assert_preserved(&m);
    let new = m.new_str();
    assert_one_line_separators(new, "");
    assert!(
        new.contains(",\"chain_metadata\":{\"is_chainable_stage\":false,\"prior_stages\":[]},"),
        "{new}"
    );
}

#[test]
fn crlf_stays_crlf() {
    let m = migrate_fixture("crlf.json");
    assert_preserved(&m);
    let (old, new) = (m.old_str(), m.new_str());
    let added_lines = new.matches("\r\n").count() - old.matches("\r\n").count();
    let inserted = assert_old_lines_kept_in_order(old, new);
    assert_eq!(added_lines, inserted.len(), "each new line ends in CRLF");
    assert!(inserted.iter().all(|l| l.ends_with("\r\n")));
    assert_matches_expected(&m, "crlf.json");
}

#[test]
fn unicode_escapes_stay_escaped_and_new_text_follows_suit() {
    let m = migrate_fixture("escaped-unicode.json");
    assert_preserved(&m);
    let (old, new) = (m.old_str(), m.new_str());
    for token in [
        "M\\u00fcnchen caf\\u00e9 \\ud83d\\ude80",
        "\"a \\\"b\\\" \\/ c\\n\"",
        "\"\\u00FC\"",
    ] {
        assert!(old.contains(token));
        assert_eq!(
            old.matches(token).count(),
            new.matches(token).count(),
            "{token}"
        );
    }
    assert!(new.is_ascii(), "an ASCII-escaped file stays ASCII");
}

#[test]
fn a_non_ascii_job_id_is_written_escaped_in_an_ascii_file() {
    let m = migrate_fixture_at(
        "ascii-no-version.json",
        "artifacts/j\u{f6}b-\u{fc}/run-1/manifest.json",
    );
    assert_preserved(&m);
    let new = m.new_str();
    assert!(new.is_ascii(), "{new}");
    assert!(new.contains("\"job_id\": \"j\\u00f6b-\\u00fc\""), "{new}");
    assert!(new.contains("\"Gr\\u00fc\\u00dfe\""), "{new}");
    assert_eq!(
        parse(&m.new).get("job_id"),
        Some(&Json::str("j\u{f6}b-\u{fc}"))
    );
}

#[test]
fn number_spellings_are_kept() {
    let m = migrate_fixture("numbers.json");
    assert_preserved(&m);
    let new = m.new_str();
    for line in [
        "  \"big\": 123456789012345678901234567890,\n",
        "  \"one\": 1.0,\n",
        "  \"tiny\": 1e-400,\n",
        "  \"negzero\": -0.0,\n",
        "  \"exp\": 1E+5,\n",
        "  \"frac\": 0.10,\n",
        "  \"neg\": -12.50e-3,\n",
        "  \"list\": [1.0, 2.00, 3e0],\n",
    ] {
        assert!(new.contains(line), "{line:?} in\n{new}");
    }
}

#[test]
fn unusual_key_order_and_inline_containers_are_kept() {
    let m = migrate_fixture("unusual-order.json");
    assert_preserved(&m);
    let new = m.new_str();
    assert!(new.contains("  \"zeta\": {\"b\": 1, \"a\": 2},\n"), "{new}");
    assert!(
        new.contains("    {\"y\": true, \"x\": false}\n  ],\n"),
        "{new}"
    );
    assert!(
        new.contains("  \"middle\": null,\n  \"input_snapshots\": {},\n"),
        "{new}"
    );
}

#[test]
fn a_manifest_without_schema_version_gets_it_written() {
    let m = migrate_fixture("no-version.json");
    assert_preserved(&m);
    let after = parse(&m.new);
    assert_eq!(after.get("schema_version"), Some(&Json::str("1.2.0")));
    let doc: serde_json::Value = serde_json::from_slice(&m.new).unwrap();
    assert_eq!(last_history(&doc)["from_version"], "1.0.0");
    // Not sorted: after the last member, in the file's 2-space style.
    assert!(
        m.new_str().contains("\n  \"schema_version\": \"1.2.0\",\n"),
        "{}",
        m.new_str()
    );
}

#[test]
fn no_trailing_newline_stays_without_one() {
    let m = migrate_fixture("sorted-no-trailing-newline.json");
    assert_preserved(&m);
    assert!(m.new_str().ends_with("\"status\": \"running\"\n}"));
}

#[test]
fn existing_history_entries_are_kept_byte_for_byte() {
    let m = migrate_fixture("with-history.json");
    assert_preserved(&m);
    let old_entry = "    {\n      \"from_version\": \"1.0.0\",\n      \"to_version\": \"1.1.0\",\n      \"note\": \"by hand\"\n    }";
    assert!(m.old_str().contains(old_entry));
    assert!(
        m.new_str().contains(&format!("{old_entry},\n    {{\n")),
        "{}",
        m.new_str()
    );
}

#[test]
fn eol_attributes_are_refused_rather_than_mangled() {
    // With `eol=crlf` the working-tree bytes are not the committed blob: refuse, name the file.
    let repo = TestRepo::new();
    repo.file(PATH, fixture("styles/indent2-sorted.json"))
        .file(".gitattributes", "*.json text eol=crlf\n")
        .commit("manifests with eol attributes");
    let head = repo.head();
    let files = repo.worktree_snapshot();
    let run = repo.cli(["apply", "--json"]);
    let err = run.expect_code(3).json();
    assert_eq!(err["error"]["path"], PATH, "{run}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("eol")
            || err["error"]["message"].as_str().unwrap().contains("text"),
        "{run}"
    );
    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files);

    // --branch has no working tree to mangle.
    let report = repo
        .cli(["apply", "--branch", "review", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(report["migrated"], 1);
    assert_eq!(repo.head(), head);
}

#[test]
fn core_autocrlf_is_refused_rather_than_mangled() {
    // core.autocrlf=true checks LF blobs out as CRLF files: updating them in place would
    // write bytes that are not the committed blob. The refusal must say so, not claim the
    // (clean) manifest has uncommitted changes.
    let repo = TestRepo::new();
    repo.file(PATH, fixture("styles/indent2-sorted.json"))
        .commit("an LF manifest");
    repo.git(["config", "core.autocrlf", "true"]);
    std::fs::remove_file(repo.path().join(PATH)).unwrap();
    repo.git(["checkout", "--", "."]);
    assert!(repo.file_bytes(PATH).windows(2).any(|w| w == b"\r\n"));
    // An older mtime than the index recorded (a restored backup, `touch`): git re-reads the
    // file through its filters and still sees no change.
    let touched = std::process::Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(repo.path().join(PATH))
        .status()
        .unwrap();
    assert!(touched.success());
    let status = repo.git(["--no-optional-locks", "status", "--porcelain"]);
    assert_eq!(status, "", "git sees no change");
    let head = repo.head();
    let files = repo.worktree_snapshot();
    let run = repo.cli(["apply", "--json"]);
    let err = run.expect_code(3).json();
    assert_eq!(err["error"]["path"], PATH, "{run}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("autocrlf"), "{run}");
    assert!(!message.contains("uncommitted changes"), "{run}");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files);
}

// The checks above can fail: they catch what a re-serialising writer would do.

#[test]
#[should_panic(expected = "is gone or rewritten")]
fn the_line_check_catches_a_reformatted_array() {
    let old = "{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n";
    let new = "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": 3\n}\n";
    assert_old_lines_kept_in_order(old, new);
}

#[test]
fn the_byte_check_catches_respelled_numbers_and_escapes() {
    assert!(!is_subsequence(b"{\"a\": 1.0}", b"{\"a\": 1, \"b\": 2}"));
    assert!(!is_subsequence(
        b"{\"a\": \"\\u00fc\"}",
        "{\"a\": \"\u{fc}\", \"b\": 2}".as_bytes()
    ));
    assert!(is_subsequence(b"{\"a\": 1.0}", b"{\"a\": 1.0, \"b\": 2}"));
}

/// The checksum of a built-in migration's definition.
fn builtin_checksum(step: &str) -> String {
    artifact_migrate::schema::Registry::with_builtins()
        .migrations()
        .iter()
        .find(|m| m.id().to_string() == step)
        .map(|m| m.checksum())
        .unwrap_or_default()
}
