//! Properties of the merge: a side equal to BASE gives the other side, conflicts do not depend on
//! which side is ours, and a clean merge holds every change of both sides.

use proptest::prelude::*;

use crate::manifest::proptests::{arb_style, dedup};
use crate::manifest::{render, Document, Edit, Json, Style};
use crate::merge::{merge_manifest, MergeError};

fn arb_leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        prop::sample::select(vec!["0", "1", "1.0", "-2", "1e5"])
            .prop_map(|n| Json::Number(n.into())),
        "[a-cü\"\\\\]{0,3}".prop_map(Json::String),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d/e", "migration_history", "x~"])
        .prop_map(String::from)
}

fn arb_json() -> impl Strategy<Value = Json> {
    arb_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((arb_key(), inner), 0..4).prop_map(|m| Json::Object(dedup(m))),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Json> {
    prop::collection::vec((arb_key(), arb_json()), 0..5).prop_map(|m| Json::Object(dedup(m)))
}

/// A variant of `base`: some top-level members changed, removed or added.
fn arb_variant(base: Json) -> impl Strategy<Value = Json> {
    let members = base.as_object().map(<[_]>::to_vec).unwrap_or_default();
    let n = members.len();
    (
        prop::collection::vec(0u8..4, n),
        prop::collection::vec((arb_key(), arb_json()), 0..2),
    )
        .prop_map(move |(ops, added)| {
            let mut out: Vec<(String, Json)> = Vec::new();
            for ((k, v), op) in members.iter().zip(ops) {
                match op {
                    0 | 1 => out.push((k.clone(), v.clone())),
                    2 => out.push((k.clone(), Json::String(format!("changed-{k}")))),
                    _ => {}
                }
            }
            for (k, v) in added {
                if !out.iter().any(|(o, _)| *o == k) {
                    out.push((k, v));
                }
            }
            Json::Object(out)
        })
}

fn text(v: &Json, style: &Style) -> Vec<u8> {
    render(v, style).into_bytes()
}

fn parsed(bytes: &[u8]) -> Json {
    match Document::parse(bytes) {
        Ok(d) => d.value(),
        Err(e) => panic!("merged bytes do not parse: {e}"),
    }
}

fn three() -> impl Strategy<Value = (Json, Json, Json, Style, Style)> {
    arb_object().prop_flat_map(|b| {
        (
            Just(b.clone()),
            arb_variant(b.clone()),
            arb_variant(b),
            arb_style(),
            arb_style(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn theirs_unchanged_gives_ours_byte_for_byte(b in arb_object(), x in arb_object(), s in arb_style(), t in arb_style()) {
        let (b, x) = (text(&b, &s), text(&x, &t));
        let m = merge_manifest(&b, &x, &b);
        prop_assert_eq!(m.map(|m| m.bytes), Ok(x));
    }

    #[test]
    fn ours_unchanged_gives_theirs_value(b in arb_object(), y in arb_object(), s in arb_style(), t in arb_style()) {
        let (bb, yb) = (text(&b, &s), text(&y, &t));
        let m = merge_manifest(&bb, &bb, &yb);
        let merged = match m { Ok(m) => m.bytes, Err(e) => return Err(TestCaseError::fail(e.to_string())) };
        prop_assert!(parsed(&merged).deep_eq(&y));
    }

    #[test]
    fn conflicts_are_symmetric_and_clean_merges_hold_both_sides((b, o, t, s1, s2) in three()) {
        let (bb, ob, tb) = (text(&b, &s1), text(&o, &s1), text(&t, &s2));
        let one = merge_manifest(&bb, &ob, &tb);
        let other = merge_manifest(&bb, &tb, &ob);
        match (&one, &other) {
            (Err(MergeError::Conflicts(x)), Err(MergeError::Conflicts(y))) => {
                let mut px: Vec<_> = x.members.iter().map(|c| c.pointer.clone()).collect();
                let mut py: Vec<_> = y.members.iter().map(|c| c.pointer.clone()).collect();
                px.sort();
                py.sort();
                prop_assert_eq!(px, py);
            }
            (Ok(x), Ok(y)) => {
                let (vx, vy) = (parsed(&x.bytes), parsed(&y.bytes));
                prop_assert!(vx.deep_eq(&vy), "merge depends on the side: {:?} vs {:?}", vx, vy);
                // Every member: the side that changed it wins; unchanged on both stays as base.
                let keys: Vec<String> = [&b, &o, &t].iter().flat_map(|v| v.as_object().unwrap_or(&[]).iter().map(|(k, _)| k.clone())).collect();
                for k in keys {
                    let (bv, ov, tv, mv) = (b.get(&k), o.get(&k), t.get(&k), vx.get(&k));
                    let eq = |a: Option<&Json>, c: Option<&Json>| match (a, c) { (None, None) => true, (Some(a), Some(c)) => a.deep_eq(c), _ => false };
                    let is_array = |v: Option<&Json>| matches!(v, Some(Json::Array(_)));
                    if k == "migration_history" && !eq(ov, bv) && !eq(tv, bv) && !eq(ov, tv) && is_array(ov) && is_array(tv) {
                        // Both sides appended to the log (a clean merge: one's entries start
                        // the other's): the merged log is the longer, each side's a prefix.
                        let items = |v: Option<&Json>| match v { Some(Json::Array(a)) => Some(a.clone()), _ => None };
                        let (mi, oi, ti) = (items(mv), items(ov), items(tv));
                        let prefix = |side: &Option<Vec<Json>>| match (side, &mi) {
                            (Some(s), Some(m)) => s.len() <= m.len() && s.iter().zip(m).all(|(a, c)| a.deep_eq(c)),
                            _ => false,
                        };
                        prop_assert!(prefix(&oi) && prefix(&ti), "history {:?} does not hold {:?} and {:?}", mv, ov, tv);
                        let longest = oi.as_ref().map_or(0, Vec::len).max(ti.as_ref().map_or(0, Vec::len));
                        prop_assert_eq!(mi.map_or(0, |m| m.len()), longest);
                        continue;
                    }
                    let want = if eq(ov, bv) { tv } else { ov };
                    prop_assert!(eq(mv, want), "member {} is {:?}, want {:?}", k, mv, want);
                }
            }
            _ => prop_assert!(false, "one order conflicts and the other does not: {:?} / {:?}", one, other),
        }
    }

    /// A change of theirs is spliced in: the merged bytes are ours's bytes plus the edits, so
    /// a member only ours changed keeps its exact text.
    #[test]
    fn ours_bytes_outside_theirs_changes_stay((b, _o, t, s1, _s2) in three()) {
        let bb = text(&b, &s1);
        let mut ours = match Document::parse(&bb) { Ok(d) => d, Err(e) => return Err(TestCaseError::fail(e.to_string())) };
        // Ours appends a member with an unusual spelling the renderer would never produce.
        if ours.apply(&Edit::Add { pointer: "/zz_ours".into(), value: Json::Number("1E+2".into()) }).is_err() {
            return Ok(());
        }
        let ob = ours.into_bytes();
        let tb = text(&t, &s1);
        if let Ok(m) = merge_manifest(&bb, &ob, &tb) {
            let text = String::from_utf8_lossy(&m.bytes);
            prop_assert!(text.contains("\"zz_ours\": 1E+2") || text.contains("\"zz_ours\":1E+2"));
        }
    }
}
