use crate::manifest::{Document, Json};
use crate::merge::{merge_manifest, Conflict, ConflictKind, MergeError, Side};

fn merged(base: &str, ours: &str, theirs: &str) -> String {
    match merge_manifest(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()) {
        Ok(m) => String::from_utf8(m.bytes).unwrap_or_default(),
        Err(e) => panic!("expected a clean merge, got: {e}"),
    }
}

fn conflicts(base: &str, ours: &str, theirs: &str) -> Vec<Conflict> {
    match merge_manifest(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()) {
        Err(MergeError::Conflicts(c)) => c.members,
        other => panic!("expected conflicts, got: {other:?}"),
    }
}

fn value(text: &str) -> Json {
    match Document::parse(text.as_bytes()) {
        Ok(d) => d.value(),
        Err(e) => panic!("merged output does not parse: {e}\n{text}"),
    }
}

const BASE: &str = r#"{
  "job_id": "job-a",
  "schema_version": "1.0.0",
  "status": "running"
}
"#;

/// The issue's scenario: a batch migrates the manifest (a member added after the last line, the
/// version and history changed) while a branch edits the last member.
#[test]
fn batch_and_edit_of_last_member_merge_with_both() {
    let batch = r#"{
  "job_id": "job-a",
  "migration_history": [
    {
      "from_version": "1.0.0",
      "to_version": "1.1.0"
    }
  ],
  "schema_version": "1.1.0",
  "status": "running",
  "tags": []
}
"#;
    let edit = BASE.replace("\"running\"", "\"succeeded\"");
    let expected = batch.replace("\"running\"", "\"succeeded\"");
    assert_eq!(merged(BASE, &edit, batch), expected);
    // The other direction gives the same document: ours's bytes keep their layout either way.
    assert_eq!(merged(BASE, batch, &edit), expected);
}

#[test]
fn member_changed_only_on_ours_stays() {
    let ours = BASE.replace("job-a", "job-b");
    let theirs = BASE.replace("\"running\"", "\"failed\"");
    assert_eq!(
        merged(BASE, &ours, &theirs),
        BASE.replace("job-a", "job-b")
            .replace("\"running\"", "\"failed\"")
    );
}

#[test]
fn same_change_on_both_sides_merges_and_keeps_ours_bytes() {
    // Ours spells the new value with an escape; theirs with the raw character: same value.
    let ours = BASE
        .replace("\"running\"", "\"d\\u00fcne\"")
        .replace("job-a", "job-z");
    let theirs = BASE.replace("\"running\"", "\"düne\"");
    assert_eq!(merged(BASE, &ours, &theirs), ours);
}

#[test]
fn different_changes_to_one_member_conflict_naming_it_symmetrically() {
    let ours = BASE.replace("\"running\"", "\"succeeded\"");
    let theirs = BASE.replace("\"running\"", "\"failed\"");
    let want = vec![Conflict {
        pointer: "/status".into(),
        kind: ConflictKind::BothChanged,
    }];
    assert_eq!(conflicts(BASE, &ours, &theirs), want);
    assert_eq!(conflicts(BASE, &theirs, &ours), want);
}

#[test]
fn conflict_renderings_differ_only_at_the_member() {
    let ours = BASE
        .replace("\"running\"", "\"succeeded\"")
        .replace("job-a", "job-b");
    let theirs = BASE
        .replace("\"running\"", "\"failed\"")
        .replace("1.0.0", "1.1.0");
    let Err(MergeError::Conflicts(c)) =
        merge_manifest(BASE.as_bytes(), ours.as_bytes(), theirs.as_bytes())
    else {
        panic!("expected a conflict");
    };
    let merged_ours = BASE
        .replace("\"running\"", "\"succeeded\"")
        .replace("job-a", "job-b")
        .replace("1.0.0", "1.1.0");
    assert_eq!(String::from_utf8_lossy(&c.ours), merged_ours);
    assert_eq!(
        c.theirs.as_deref().map(String::from_utf8_lossy),
        Some(merged_ours.replace("succeeded", "failed").into())
    );
    assert_eq!(
        c.base.as_deref().map(String::from_utf8_lossy),
        Some(merged_ours.replace("succeeded", "running").into())
    );
}

#[test]
fn nested_objects_merge_member_by_member() {
    let base = r#"{"meta": {"a": 1, "b": 2}, "x": 0}"#;
    let ours = r#"{"meta": {"a": 10, "b": 2}, "x": 0}"#;
    let theirs = r#"{"meta": {"a": 1, "b": 2, "c": 3}, "x": 1}"#;
    assert_eq!(
        merged(base, ours, theirs),
        r#"{"meta": {"a": 10, "b": 2, "c": 3}, "x": 1}"#
    );
}

#[test]
fn removal_on_one_side_merges_and_against_a_change_conflicts() {
    let base = r#"{"a": 1, "b": 2, "c": 3}"#;
    assert_eq!(
        merged(base, r#"{"a": 1, "b": 5, "c": 3}"#, r#"{"a": 1, "b": 2}"#),
        r#"{"a": 1, "b": 5}"#
    );
    let c = conflicts(base, r#"{"a": 1, "b": 2}"#, r#"{"a": 1, "b": 2, "c": 4}"#);
    assert_eq!(c[0].pointer, "/c");
    assert_eq!(c[0].kind, ConflictKind::RemovedByOurs);
    let c = conflicts(base, r#"{"a": 1, "b": 2, "c": 4}"#, r#"{"a": 1, "b": 2}"#);
    assert_eq!(c[0].kind, ConflictKind::RemovedByTheirs);
}

#[test]
fn member_added_on_both_sides() {
    let base = r#"{"a": 1}"#;
    assert_eq!(
        merged(base, r#"{"a": 1, "n": [1]}"#, r#"{"a": 2, "n": [1]}"#),
        r#"{"a": 2, "n": [1]}"#
    );
    let c = conflicts(base, r#"{"a": 1, "n": [1]}"#, r#"{"a": 1, "n": [2]}"#);
    assert_eq!(c[0].pointer, "/n");
    assert_eq!(c[0].kind, ConflictKind::BothAdded);
}

#[test]
fn keys_needing_escapes_are_named_as_pointers() {
    let base = r#"{"a/b": 1, "t~": 1}"#;
    let c = conflicts(base, r#"{"a/b": 2, "t~": 2}"#, r#"{"a/b": 3, "t~": 3}"#);
    let pointers: Vec<_> = c.iter().map(|c| c.pointer.as_str()).collect();
    assert_eq!(pointers, ["/a~1b", "/t~0"]);
}

#[test]
fn arrays_other_than_history_merge_only_when_one_side_changed() {
    let base = r#"{"tags": ["a"], "x": 0}"#;
    assert_eq!(
        merged(
            base,
            r#"{"tags": ["a"], "x": 1}"#,
            r#"{"tags": ["a", "b"], "x": 0}"#
        ),
        r#"{"tags": ["a", "b"], "x": 1}"#
    );
    let c = conflicts(
        base,
        r#"{"tags": ["a", "c"], "x": 0}"#,
        r#"{"tags": ["a", "b"], "x": 0}"#,
    );
    assert_eq!(c[0].pointer, "/tags");
    assert_eq!(c[0].kind, ConflictKind::BothChanged);
}

fn with_history(entries: &[&str], extra: &str) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|e| format!("{{\"to_version\": \"{e}\"}}"))
        .collect();
    format!(
        "{{\"migration_history\": [{}], \"x\": \"{extra}\"}}",
        items.join(", ")
    )
}

#[test]
fn history_appended_on_one_side_or_identically_on_both_merges() {
    let base = with_history(&["1.1.0"], "a");
    let ours = with_history(&["1.1.0"], "b");
    let theirs = with_history(&["1.1.0", "1.2.0"], "a");
    assert_eq!(
        merged(&base, &ours, &theirs),
        with_history(&["1.1.0", "1.2.0"], "b")
    );
    let ours = with_history(&["1.1.0", "1.2.0"], "b");
    assert_eq!(merged(&base, &ours, &theirs), ours);
    // One side holds a prefix of the other's new entries: the longer log wins, in either order.
    let longer = with_history(&["1.1.0", "1.2.0", "1.3.0"], "a");
    assert_eq!(
        merged(&base, &ours, &longer),
        with_history(&["1.1.0", "1.2.0", "1.3.0"], "b")
    );
    assert_eq!(
        merged(&base, &longer, &ours),
        with_history(&["1.1.0", "1.2.0", "1.3.0"], "b")
    );
}

#[test]
fn history_diverging_or_rewritten_conflicts_naming_it() {
    let base = with_history(&["1.1.0"], "a");
    let ours = with_history(&["1.1.0", "1.2.0"], "b");
    let theirs = with_history(&["1.1.0", "2.0.0"], "a");
    let c = conflicts(&base, &ours, &theirs);
    assert_eq!(c[0].pointer, "/migration_history");
    assert_eq!(c[0].kind, ConflictKind::HistoryDiverged);
    let rewritten = with_history(&["9.9.9", "1.2.0"], "a");
    let c = conflicts(&base, &ours, &rewritten);
    assert_eq!(c[0].kind, ConflictKind::HistoryRewritten(Side::Theirs));
    let c = conflicts(&base, &rewritten, &ours);
    assert_eq!(c[0].kind, ConflictKind::HistoryRewritten(Side::Ours));
}

#[test]
fn history_started_on_both_sides() {
    let base = r#"{"x": 0}"#;
    let ours = r#"{"x": 1, "migration_history": [{"to_version": "1.1.0"}]}"#;
    let theirs = r#"{"x": 0, "migration_history": [{"to_version": "1.1.0"}]}"#;
    assert_eq!(merged(base, ours, theirs), ours);
    let theirs = r#"{"x": 0, "migration_history": [{"to_version": "2.0.0"}]}"#;
    assert_eq!(
        conflicts(base, ours, theirs)[0].kind,
        ConflictKind::HistoryDiverged
    );
}

#[test]
fn a_nested_migration_history_is_an_ordinary_array() {
    let base = r#"{"meta": {"migration_history": [1]}}"#;
    let c = conflicts(
        base,
        r#"{"meta": {"migration_history": [1, 2]}}"#,
        r#"{"meta": {"migration_history": [1, 3]}}"#,
    );
    assert_eq!(c[0].pointer, "/meta/migration_history");
    assert_eq!(c[0].kind, ConflictKind::BothChanged);
}

#[test]
fn format_of_ours_is_kept_crlf_tabs_and_escapes() {
    let base = "{\r\n\t\"a\": \"\\u00fc\",\r\n\t\"b\": 1.0\r\n}";
    let ours = "{\r\n\t\"a\": \"\\u00fc\",\r\n\t\"b\": 2.0\r\n}";
    let theirs = "{\r\n\t\"a\": \"\\u00fc\",\r\n\t\"b\": 1.0,\r\n\t\"c\": \"ü\"\r\n}";
    assert_eq!(
        merged(base, ours, theirs),
        "{\r\n\t\"a\": \"\\u00fc\",\r\n\t\"b\": 2.0,\r\n\t\"c\": \"\\u00fc\"\r\n}"
    );
}

#[test]
fn a_number_respelled_is_a_change() {
    let base = r#"{"n": 1.0}"#;
    let c = conflicts(base, r#"{"n": 1}"#, r#"{"n": 1.00}"#);
    assert_eq!(c[0].pointer, "/n");
}

#[test]
fn key_order_alone_is_not_a_change() {
    let base = r#"{"a": 1, "b": 2, "c": 0}"#;
    let ours = r#"{"b": 2, "a": 1, "c": 0}"#;
    let theirs = r#"{"a": 1, "b": 2, "c": 5}"#;
    assert_eq!(merged(base, ours, theirs), r#"{"b": 2, "a": 1, "c": 5}"#);
}

#[test]
fn a_root_that_changed_type_conflicts_as_the_whole_document() {
    let c = conflicts("[1]", "[2]", r#"{"a": 1}"#);
    assert_eq!(c[0].pointer, "");
    assert!(c[0].to_string().starts_with("the whole document"));
}

#[test]
fn invalid_json_on_any_side_is_an_unparsable_error_naming_it() {
    for (i, side) in [Side::Base, Side::Ours, Side::Theirs]
        .into_iter()
        .enumerate()
    {
        let mut inputs = [BASE, BASE, BASE];
        inputs[i] = "{\"a\": 1,}";
        match merge_manifest(
            inputs[0].as_bytes(),
            inputs[1].as_bytes(),
            inputs[2].as_bytes(),
        ) {
            Err(MergeError::Unparsable { side: s, .. }) => assert_eq!(s, side),
            other => panic!("expected unparsable {side}, got {other:?}"),
        }
    }
}

#[test]
fn real_sample_manifests_merge() {
    let base = include_str!("../../fixtures/samples/v1.0.0-manifest.json");
    let ours = base.replace("\"succeeded\"", "\"failed\"");
    let theirs = base.replace("\"meta\": {}", "\"meta\": {\"reviewed\": true}");
    let out = merged(base, &ours, &theirs);
    assert_eq!(
        out,
        base.replace("\"succeeded\"", "\"failed\"")
            .replace("\"meta\": {}", "\"meta\": {\"reviewed\": true}")
    );
    assert!(value(&out).get("meta").is_some());
}
