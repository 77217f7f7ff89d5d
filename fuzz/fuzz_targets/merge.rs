//! The manifest merge (`merge_manifest`, the merge driver's core): never panics; a side equal
//! to BASE gives the other side (OURS byte for byte, THEIRS by value); a clean merge always
//! parses; a member neither side changed is in the merge as in BASE; conflicts name the same
//! members whichever side is ours.
//!
//! The input is a JSON document (BASE), then a NUL byte, then the bytes that choose the random
//! edits making OURS and THEIRS from it; an input without a NUL (a seed from fixtures/)
//! chooses its edits from its own bytes. A second NUL-separated part, when present, is also
//! tried raw as all three sides (any bytes: only "never panics" holds there).
#![no_main]

use artifact_migrate::manifest::{escape_pointer_token, Document, Edit, Json};
use artifact_migrate::merge::{merge_manifest, MergeError};
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Every member and element pointer of a value, parents before children.
fn pointers(v: &Json, at: &str, out: &mut Vec<String>) {
    match v {
        Json::Object(members) => {
            for (k, c) in members {
                let p = format!("{at}/{}", escape_pointer_token(k));
                out.push(p.clone());
                pointers(c, &p, out);
            }
        }
        Json::Array(items) => {
            for (i, c) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, &p, out);
            }
        }
        _ => {}
    }
}

fn leaf(u: &mut Unstructured) -> arbitrary::Result<Json> {
    const NUMBERS: [&str; 6] = [
        "0",
        "1",
        "1.0",
        "-0.0",
        "1e-400",
        "123456789012345678901234567890",
    ];
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Json::Null,
        1 => Json::Bool(bool::arbitrary(u)?),
        2 => Json::Number(NUMBERS[usize::from(u.int_in_range(0..=5u8)?)].to_string()),
        3 => Json::String(String::arbitrary(u)?),
        4 => Json::Array(vec![Json::String("x".into())]),
        _ => Json::Object(vec![("k".into(), Json::Number("2".into()))]),
    })
}

/// BASE with 0–4 random edits at pointers picked from it (or at the history log).
fn variant(base: &Document, u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    let mut doc = base.clone();
    for _ in 0..u.int_in_range(0..=4u8)? {
        let mut ps = vec![String::new()];
        pointers(&doc.value(), "", &mut ps);
        ps.push("/migration_history".into());
        let p = u.choose(&ps)?.clone();
        let edit = match u.int_in_range(0..=3u8)? {
            0 => Edit::Set {
                pointer: p,
                value: leaf(u)?,
            },
            1 => Edit::Remove { pointer: p },
            2 => Edit::Add {
                pointer: format!("{p}/{}", escape_pointer_token(&String::arbitrary(u)?)),
                value: leaf(u)?,
            },
            _ => Edit::Append {
                pointer: p,
                value: Json::Object(vec![("to_version".into(), leaf(u)?)]),
            },
        };
        // An edit the document refuses (a missing pointer, a key that exists) is skipped.
        let _ = doc.apply(&edit);
    }
    Ok(doc.into_bytes())
}

fn parsed(bytes: &[u8], what: &str) -> Json {
    match Document::parse(bytes) {
        Ok(d) => d.value(),
        Err(e) => panic!(
            "{what} does not parse: {e}\n{}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn conflict_pointers(
    r: &Result<artifact_migrate::merge::Merged, MergeError>,
) -> Option<Vec<String>> {
    match r {
        Err(MergeError::Conflicts(c)) => {
            let mut p: Vec<String> = c.members.iter().map(|m| m.pointer.clone()).collect();
            p.sort();
            Some(p)
        }
        _ => None,
    }
}

fn check(base: &[u8], ours: &[u8], theirs: &[u8]) {
    let one = merge_manifest(base, ours, theirs);
    let other = merge_manifest(base, theirs, ours);
    assert_eq!(
        conflict_pointers(&one),
        conflict_pointers(&other),
        "conflicts depend on which side is ours"
    );
    let Ok(merged) = one else {
        if let Err(MergeError::Edit { pointer, source }) = one {
            panic!("an edit of a clean plan failed at {pointer}: {source}");
        }
        return;
    };
    let (b, o, t) = (
        parsed(base, "base"),
        parsed(ours, "ours"),
        parsed(theirs, "theirs"),
    );
    let m = parsed(&merged.bytes, "the merge");
    let mut ps = Vec::new();
    pointers(&b, "", &mut ps);
    for p in ps {
        let (bv, ov, tv) = (b.pointer(&p), o.pointer(&p), t.pointer(&p));
        let unchanged = |v: Option<&Json>| match (v, bv) {
            (Some(x), Some(y)) => x.deep_eq(y),
            _ => false,
        };
        if unchanged(ov) && unchanged(tv) {
            assert!(
                unchanged(m.pointer(&p)),
                "{p} changed on neither side but differs in the merge"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let json = parts.next().unwrap_or_default();
    let choices = parts.next().unwrap_or(json);
    if let Some(raw) = parts.next() {
        let _ = merge_manifest(raw, json, choices);
        let _ = merge_manifest(json, raw, raw);
    }
    let Ok(base) = Document::parse(json) else {
        // Not JSON: the merge must say which side, never panic.
        assert!(matches!(
            merge_manifest(json, json, json),
            Err(MergeError::Unparsable { .. })
        ));
        return;
    };
    let mut u = Unstructured::new(choices);
    let (Ok(ours), Ok(theirs)) = (variant(&base, &mut u), variant(&base, &mut u)) else {
        return;
    };
    let b = base.as_bytes();
    // A side equal to BASE gives the other side.
    match merge_manifest(b, &ours, b) {
        Ok(m) => assert_eq!(m.bytes, ours, "merge(b, x, b) is not x"),
        Err(e) => panic!("merge(b, x, b) failed: {e}"),
    }
    match merge_manifest(b, b, &theirs) {
        Ok(m) => assert!(
            parsed(&m.bytes, "merge(b, b, y)").deep_eq(&parsed(&theirs, "theirs")),
            "merge(b, b, y) is not y's value"
        ),
        Err(e) => panic!("merge(b, b, y) failed: {e}"),
    }
    check(b, &ours, &theirs);
});
