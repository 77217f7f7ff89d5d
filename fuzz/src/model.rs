//! The library's edits replayed on `serde_json::Value`, from their documented meaning
//! (`manifest::Edit`), and the byte windows an edit may change.

use serde_json::Value;

use crate::spans::Node;

/// Why the model refused an edit (mirrors the library's `EditError` kinds that are about the
/// document, not about the text the edit would leave).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Exists,
    NotAnObject,
    NotAnArray,
    BadPointer,
}

/// One edit, as the library's `Edit` (pointers already split into tokens).
#[derive(Debug, Clone)]
pub enum ModelEdit {
    Add(Vec<String>, Value),
    Set(Vec<String>, Value),
    Remove(Vec<String>),
    Rename(Vec<String>, String),
    Append(Vec<String>, Value),
}

/// RFC 6901 array index: `0` or digits without a leading zero.
pub fn index(token: &str, len: usize) -> Option<usize> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    token.parse::<usize>().ok().filter(|&i| i < len)
}

fn resolve<'a>(v: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, Refused> {
    let mut cur = v;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or(Refused::NotFound)?,
            Value::Array(a) => {
                let len = a.len();
                a.get_mut(index(t, len).ok_or(Refused::NotFound)?)
                    .ok_or(Refused::NotFound)?
            }
            _ => return Err(Refused::NotFound),
        };
    }
    Ok(cur)
}

/// The parent of a member pointer and the last token; the root has no parent.
fn parent<'a>(v: &'a mut Value, tokens: &[String]) -> Result<(&'a mut Value, String), Refused> {
    let (last, init) = tokens.split_last().ok_or(Refused::BadPointer)?;
    Ok((resolve(v, init)?, last.clone()))
}

/// Applies an edit to the model; on refusal the value is unchanged.
pub fn apply(doc: &mut Value, edit: &ModelEdit) -> Result<(), Refused> {
    match edit {
        ModelEdit::Add(p, value) => {
            let (parent, key) = parent(doc, p)?;
            let Value::Object(m) = parent else {
                return Err(Refused::NotAnObject);
            };
            if m.contains_key(&key) {
                return Err(Refused::Exists);
            }
            m.insert(key, value.clone());
        }
        ModelEdit::Set(p, value) => {
            let (parent, key) = parent(doc, p)?;
            match parent {
                Value::Object(m) => {
                    m.insert(key, value.clone());
                }
                Value::Array(a) => {
                    let i = index(&key, a.len()).ok_or(Refused::NotFound)?;
                    a[i] = value.clone();
                }
                _ => return Err(Refused::NotAnObject),
            }
        }
        ModelEdit::Remove(p) => {
            let (parent, key) = parent(doc, p)?;
            match parent {
                Value::Object(m) => {
                    m.remove(&key).ok_or(Refused::NotFound)?;
                }
                Value::Array(a) => {
                    let i = index(&key, a.len()).ok_or(Refused::NotFound)?;
                    a.remove(i);
                }
                _ => return Err(Refused::NotAnObject),
            }
        }
        ModelEdit::Rename(p, new_key) => {
            let (parent, key) = parent(doc, p)?;
            let Value::Object(m) = parent else {
                return Err(Refused::NotAnObject);
            };
            if !m.contains_key(&key) {
                return Err(Refused::NotFound);
            }
            if *new_key != key {
                if m.contains_key(new_key) {
                    return Err(Refused::Exists);
                }
                let v = m.remove(&key).ok_or(Refused::NotFound)?;
                m.insert(new_key.clone(), v);
            }
        }
        ModelEdit::Append(p, value) => {
            let Value::Array(a) = resolve(doc, p)? else {
                return Err(Refused::NotAnArray);
            };
            a.push(value.clone());
        }
    }
    Ok(())
}

/// Whether `new` is `old[..a]`, then anything, then `old[b..]`: every byte outside `a..b`
/// kept. Returns the new bytes in between.
pub fn spliced<'n>(old: &[u8], new: &'n [u8], a: usize, b: usize) -> Option<&'n [u8]> {
    let tail = old.len().checked_sub(b)?;
    if a > b || new.len() < a + tail {
        return None;
    }
    (new[..a] == old[..a] && new[new.len() - tail..] == old[b..]).then(|| &new[a..new.len() - tail])
}

/// The window between child `gap - 1` and child `gap` of a container (`gap` 0 is right
/// after the opening bracket, `gap == count` right before the closing one).
pub fn gap_window(c: &Node, gap: usize) -> (usize, usize) {
    let n = c.child_count();
    let a = if gap == 0 {
        c.start + 1
    } else {
        c.child_end(gap - 1)
    };
    let b = if gap == n {
        c.end - 1
    } else {
        c.child_start(gap)
    };
    (a, b)
}

/// The window a removal of child `i` may change: from the end of the child before it (or the
/// opening bracket) to the start of the child after it (or the closing bracket).
pub fn removal_window(c: &Node, i: usize) -> (usize, usize) {
    let (a, _) = gap_window(c, i);
    let (_, b) = gap_window(c, i + 1);
    (a, b)
}

/// Only whitespace and at most one comma: what may stand between two siblings.
pub fn separator_only(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b','))
        && bytes.iter().filter(|&&b| b == b',').count() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_on_the_model() {
        let mut v = json!({"a": [1, 2], "b": {"c": 1}});
        let t = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            apply(&mut v, &ModelEdit::Add(t(&["b", "c"]), json!(2))),
            Err(Refused::Exists)
        );
        apply(&mut v, &ModelEdit::Rename(t(&["b", "c"]), "d".into())).unwrap();
        apply(&mut v, &ModelEdit::Append(t(&["a"]), json!(3))).unwrap();
        apply(&mut v, &ModelEdit::Remove(t(&["a", "0"]))).unwrap();
        assert_eq!(
            apply(&mut v, &ModelEdit::Set(t(&["a", "01"]), json!(0))),
            Err(Refused::NotFound)
        );
        assert_eq!(v, json!({"a": [2, 3], "b": {"d": 1}}));
    }

    #[test]
    fn windows() {
        let src = "[1, 2, 3]";
        let n = crate::spans::scan(src).unwrap();
        assert_eq!(removal_window(&n, 0), (1, 4));
        assert_eq!(removal_window(&n, 2), (5, 8));
        assert_eq!(gap_window(&n, 3), (8, 8));
        assert_eq!(spliced(b"[1, 2, 3]", b"[1, 3]", 2, 7), Some(&b", "[..]));
    }
}
