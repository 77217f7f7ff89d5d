//! Parse, a few random edits, render, re-parse: after each edit the document must hold what
//! the same edit makes of serde_json's value, and every byte outside the edited member must
//! be unchanged (an edit is one splice inside the window it may touch).
//!
//! The input is a JSON document, then a NUL byte, then the bytes that choose the edits; an
//! input without a NUL (a seed from fixtures/) chooses its edits from its own bytes.
#![no_main]

use artifact_migrate::manifest::{escape_pointer_token, Document, Edit, EditError, Json};
use artifact_migrate_fuzz::model::{self, ModelEdit, Refused};
use artifact_migrate_fuzz::spans::{self, Kind, Node};
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A new value in both worlds, built side by side.
fn value(u: &mut Unstructured, depth: u32) -> arbitrary::Result<(Json, Value)> {
    const NUMBERS: [&str; 10] = [
        "0",
        "-1",
        "1.0",
        "1e-400",
        "-0.0",
        "1E+5",
        "2.5e3",
        "123456789012345678901234567890",
        "0.1",
        "42",
    ];
    Ok(match u.int_in_range(0..=if depth > 2 { 3 } else { 5 })? {
        0 => (Json::Null, Value::Null),
        1 => {
            let b = bool::arbitrary(u)?;
            (Json::Bool(b), Value::Bool(b))
        }
        2 => {
            let text = if bool::arbitrary(u)? {
                NUMBERS[usize::from(u.int_in_range(0..=9u8)?)].to_string()
            } else {
                i64::arbitrary(u)?.to_string()
            };
            let v = serde_json::from_str(&text).map_err(|_| arbitrary::Error::IncorrectFormat)?;
            (Json::Number(text), v)
        }
        3 => {
            let s = String::arbitrary(u)?;
            (Json::String(s.clone()), Value::String(s))
        }
        4 => {
            let mut a = (Vec::new(), Vec::new());
            for _ in 0..u.int_in_range(0..=3u8)? {
                let (j, v) = value(u, depth + 1)?;
                a.0.push(j);
                a.1.push(v);
            }
            (Json::Array(a.0), Value::Array(a.1))
        }
        _ => {
            let mut o = (Vec::new(), serde_json::Map::new());
            for _ in 0..u.int_in_range(0..=3u8)? {
                let k = key(u)?;
                if o.1.contains_key(&k) {
                    continue;
                }
                let (j, v) = value(u, depth + 1)?;
                o.0.push((k.clone(), j));
                o.1.insert(k, v);
            }
            (Json::Object(o.0), Value::Object(o.1))
        }
    })
}

fn key(u: &mut Unstructured) -> arbitrary::Result<String> {
    const KEYS: [&str; 8] = [
        "a",
        "job_id",
        "migration_history",
        "z",
        "m~1",
        "a/b",
        "\u{e9}",
        "",
    ];
    Ok(if bool::arbitrary(u)? {
        KEYS[usize::from(u.int_in_range(0..=7u8)?)].to_string()
    } else {
        String::arbitrary(u)?
    })
}

/// Every value of the document with its pointer tokens, in document order.
fn all_nodes<'n>(n: &'n Node, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'n Node)>) {
    out.push((path.clone(), n));
    match &n.kind {
        Kind::Array(items) => {
            for (i, c) in items.iter().enumerate() {
                path.push(i.to_string());
                all_nodes(c, path, out);
                path.pop();
            }
        }
        Kind::Object(members) => {
            for m in members {
                path.push(m.key.clone());
                all_nodes(&m.value, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn pointer(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", escape_pointer_token(t)))
        .collect()
}

/// What the library's error says about the document, in the model's terms (`None`: the edit
/// would not leave valid JSON, e.g. too deep, which the model does not know of).
fn refusal(e: &EditError) -> Option<Refused> {
    match e {
        EditError::NotFound(_) => Some(Refused::NotFound),
        EditError::Exists(_) => Some(Refused::Exists),
        EditError::NotAnObject(_) => Some(Refused::NotAnObject),
        EditError::NotAnArray(_) => Some(Refused::NotAnArray),
        EditError::BadPointer(_) => Some(Refused::BadPointer),
        EditError::Invalid { .. } => None,
    }
}

/// Where in the old text the edit may write: a set of windows `a..b`, one of which must hold
/// the whole change.
fn windows(tree: &Node, edit: &ModelEdit) -> Vec<(usize, usize)> {
    let tokens = match edit {
        ModelEdit::Add(t, _)
        | ModelEdit::Set(t, _)
        | ModelEdit::Remove(t)
        | ModelEdit::Rename(t, _) => t,
        // Appended: only at the end of the array.
        ModelEdit::Append(t, _) => {
            let c = tree.at(t).expect("appended to an array that exists");
            return vec![model::gap_window(c, c.child_count())];
        }
    };
    let (last, init) = tokens
        .split_last()
        .expect("member pointers are not the root");
    let parent = tree.at(init).expect("the parent exists");
    let child = match &parent.kind {
        Kind::Object(m) => m.iter().position(|m| m.key == *last),
        Kind::Array(items) => model::index(last, items.len()),
        _ => None,
    };
    match (edit, child) {
        (ModelEdit::Set(..), Some(i)) => {
            let v = match &parent.kind {
                Kind::Object(m) => &m[i].value,
                Kind::Array(items) => &items[i],
                _ => unreachable!(),
            };
            vec![(v.start, v.end)]
        }
        (ModelEdit::Rename(..), Some(i)) => {
            let Kind::Object(m) = &parent.kind else {
                unreachable!()
            };
            vec![(m[i].key_start, m[i].key_end)]
        }
        (ModelEdit::Remove(_), Some(i)) => vec![model::removal_window(parent, i)],
        // A new member: any gap of its object (sorted place, or after the last member).
        _ => (0..=parent.child_count())
            .map(|g| model::gap_window(parent, g))
            .collect(),
    }
}

fn edit_spec(u: &mut Unstructured, tree: &Node) -> arbitrary::Result<(Edit, ModelEdit)> {
    let mut nodes = Vec::new();
    all_nodes(tree, &mut Vec::new(), &mut nodes);
    let pick = usize::from(u16::arbitrary(u)?) % nodes.len();
    let tokens = nodes[pick].0.clone();
    let kind = u.int_in_range(0..=5u8)?;
    // Members for set/remove/rename; containers (plus a new key) for add/append.
    Ok(match kind {
        0 | 5 => {
            let mut t = tokens;
            t.push(key(u)?);
            let (j, v) = value(u, 0)?;
            if kind == 0 {
                (
                    Edit::Add {
                        pointer: pointer(&t),
                        value: j,
                    },
                    ModelEdit::Add(t, v),
                )
            } else {
                (
                    Edit::Set {
                        pointer: pointer(&t),
                        value: j,
                    },
                    ModelEdit::Set(t, v),
                )
            }
        }
        1 if !tokens.is_empty() => {
            let (j, v) = value(u, 0)?;
            (
                Edit::Set {
                    pointer: pointer(&tokens),
                    value: j,
                },
                ModelEdit::Set(tokens, v),
            )
        }
        2 if !tokens.is_empty() => (
            Edit::Remove {
                pointer: pointer(&tokens),
            },
            ModelEdit::Remove(tokens),
        ),
        3 if !tokens.is_empty() => {
            let k = key(u)?;
            (
                Edit::Rename {
                    pointer: pointer(&tokens),
                    new_key: k.clone(),
                },
                ModelEdit::Rename(tokens, k),
            )
        }
        _ => {
            let (j, v) = value(u, 0)?;
            (
                Edit::Append {
                    pointer: pointer(&tokens),
                    value: j,
                },
                ModelEdit::Append(tokens, v),
            )
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (doc_bytes, control): (&[u8], Vec<u8>) = match data.iter().rposition(|&b| b == 0) {
        Some(p) => (&data[..p], data[p + 1..].to_vec()),
        None => (data, data.iter().rev().copied().collect()),
    };
    let Ok(mut doc) = Document::parse(doc_bytes) else {
        return;
    };
    let Some(tree) = spans::scan(doc.as_str()) else {
        panic!("the library accepted what is not JSON")
    };
    // Numbers serde_json cannot hold (1e400): no model to compare with.
    let Some(mut model_value) = spans::to_serde(doc.as_str(), &tree) else {
        return;
    };
    let mut tree = tree;
    let mut u = Unstructured::new(&control);
    for _ in 0..u.int_in_range(1..=6u8).unwrap_or(1) {
        let Ok((edit, medit)) = edit_spec(&mut u, &tree) else {
            break;
        };
        let old = doc.as_bytes().to_vec();
        let ours = doc.apply(&edit);
        let mut next_model = model_value.clone();
        let theirs = model::apply(&mut next_model, &medit);
        match (&ours, &theirs) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(r)) if refusal(e).as_ref() == Some(r) => {
                assert_eq!(
                    doc.as_bytes(),
                    &old[..],
                    "a refused edit changed the document"
                );
                continue;
            }
            (Err(e), _) if refusal(e).is_none() => {
                assert_eq!(
                    doc.as_bytes(),
                    &old[..],
                    "a refused edit changed the document"
                );
                continue;
            }
            _ => panic!(
                "{edit:?}: the library says {ours:?}, the model {theirs:?}\n{}",
                String::from_utf8_lossy(&old)
            ),
        }
        let new = doc.as_bytes().to_vec();
        let new_tree = spans::scan(doc.as_str())
            .unwrap_or_else(|| panic!("{edit:?} left text that is not JSON:\n{}", doc.as_str()));
        let new_value = spans::to_serde(doc.as_str(), &new_tree).expect("numbers stay readable");
        assert_eq!(
            new_value,
            next_model,
            "{edit:?} on\n{}\nmade\n{}",
            String::from_utf8_lossy(&old),
            doc.as_str()
        );
        let ok = windows(&tree, &medit)
            .into_iter()
            .any(|(a, b)| model::spliced(&old, &new, a, b).is_some());
        assert!(
            ok,
            "{edit:?} changed bytes outside the edited member:\n{}\n-- became --\n{}",
            String::from_utf8_lossy(&old),
            doc.as_str()
        );
        if let ModelEdit::Remove(_) = medit {
            let (a, b) = windows(&tree, &medit)[0];
            let between = model::spliced(&old, &new, a, b).unwrap_or_default();
            assert!(
                model::separator_only(between),
                "a removal left more than a separator: {:?}",
                String::from_utf8_lossy(between)
            );
        }
        model_value = next_model;
        tree = new_tree;
    }
});
