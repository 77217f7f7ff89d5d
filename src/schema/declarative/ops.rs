//! Running a declarative migration: the ops of a definition become the edits for one document.
//!
//! `Migration::transform` sees the document once and returns every edit; the engine then
//! applies them in order. So each op is worked out against a local copy of the value that the
//! edits before it have already been applied to, exactly as the engine's document will be.

use super::{DeclarativeMigration, Op, OpKind};
use crate::manifest::{escape_pointer_token, pointer_tokens, Edit, Json};
use crate::schema::migration::{Change, MigrationError};

/// The edits `m` makes to `doc`, in order, each with its op's description.
pub(super) fn changes(m: &DeclarativeMigration, doc: &Json) -> Result<Vec<Change>, MigrationError> {
    simulate(m, doc).map(|(changes, _)| changes)
}

/// The edits, and the value the document has once they are applied (for the tests, which check
/// that the document agrees).
pub(super) fn simulate(
    m: &DeclarativeMigration,
    doc: &Json,
) -> Result<(Vec<Change>, Json), MigrationError> {
    let mut cur = doc.clone();
    let mut out = Vec::new();
    for op in &m.ops {
        let at = Where { m, op };
        for edit in edits_for(&cur, op, &at)? {
            apply_local(&mut cur, &edit).map_err(|e| at.fail(&e))?;
            out.push(Change::new(edit, op.description.clone()));
        }
    }
    Ok((out, cur))
}

/// An op and its migration, for error messages: `FILE:LINE: ...`.
struct Where<'a> {
    m: &'a DeclarativeMigration,
    op: &'a Op,
}

impl Where<'_> {
    fn fail(&self, what: &str) -> MigrationError {
        MigrationError::new(format!(
            "{}:{}: {} {what}",
            self.m.file,
            self.op.line,
            self.op.kind.name()
        ))
    }
}

/// The pointer of the parent of `ptr` (valid by load) and the last token.
fn split(ptr: &str) -> (String, String) {
    let mut tokens = pointer_tokens(ptr).unwrap_or_default();
    let last = tokens.pop().unwrap_or_default();
    (join(&tokens), last)
}

fn join(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", escape_pointer_token(t)))
        .collect()
}

/// Checks that the member `ptr` can be created: its parent exists and is an object.
fn check_parent(cur: &Json, ptr: &str, at: &Where<'_>) -> Result<(), MigrationError> {
    let (parent, _) = split(ptr);
    match cur.pointer(&parent) {
        Some(Json::Object(_)) => Ok(()),
        None => Err(at.fail(&format!(
            "cannot write {ptr}: its parent {parent} does not exist in this manifest; add the parent first with an op = \"add\", value = {{}} before this op"
        ))),
        Some(other) => Err(at.fail(&format!(
            "cannot write {ptr}: its parent {parent} is {}, not an object; fix the path or this manifest",
            other.type_name()
        ))),
    }
}

fn edits_for(cur: &Json, op: &Op, at: &Where<'_>) -> Result<Vec<Edit>, MigrationError> {
    match &op.kind {
        OpKind::Add { path, value } => {
            if cur.pointer(path).is_some() {
                return Ok(Vec::new());
            }
            check_parent(cur, path, at)?;
            Ok(vec![Edit::Add {
                pointer: path.clone(),
                value: value.clone(),
            }])
        }
        OpKind::Set { path, value } => match cur.pointer(path) {
            Some(existing) if existing.deep_eq(value) => Ok(Vec::new()),
            Some(_) => Ok(vec![Edit::Set {
                pointer: path.clone(),
                value: value.clone(),
            }]),
            None => {
                check_parent(cur, path, at)?;
                Ok(vec![Edit::Add {
                    pointer: path.clone(),
                    value: value.clone(),
                }])
            }
        },
        OpKind::Remove { path } => Ok(match cur.pointer(path) {
            Some(_) => vec![Edit::Remove {
                pointer: path.clone(),
            }],
            None => Vec::new(),
        }),
        OpKind::Rename { path, to } => {
            if cur.pointer(path).is_none() {
                return Ok(Vec::new());
            }
            let (parent, _) = split(path);
            let dest = format!("{parent}/{}", escape_pointer_token(to));
            relocate(cur, path, &dest, at)
        }
        OpKind::Move { from, path } => {
            if cur.pointer(from).is_none() {
                return Ok(Vec::new());
            }
            relocate(cur, from, path, at)
        }
        OpKind::Copy { from, path } => {
            let Some(value) = cur.pointer(from) else {
                return Ok(Vec::new());
            };
            if cur.pointer(path).is_some() {
                return Ok(Vec::new());
            }
            check_parent(cur, path, at)?;
            Ok(vec![Edit::Add {
                pointer: path.clone(),
                value: value.clone(),
            }])
        }
    }
}

/// Moves the existing value at `from` to `dest`, which must not exist: a rename of the key when
/// both are members of one object, else an add at `dest` and a removal of `from`.
fn relocate(
    cur: &Json,
    from: &str,
    dest: &str,
    at: &Where<'_>,
) -> Result<Vec<Edit>, MigrationError> {
    if cur.pointer(dest).is_some() {
        return Err(at.fail(&format!(
            "cannot move {from} to {dest}: {dest} already exists in this manifest and is never overwritten; remove it first with an op = \"remove\" if it should go, or choose another destination"
        )));
    }
    check_parent(cur, dest, at)?;
    let (from_parent, _) = split(from);
    let (dest_parent, new_key) = split(dest);
    if from_parent == dest_parent {
        return Ok(vec![Edit::Rename {
            pointer: from.to_string(),
            new_key,
        }]);
    }
    if !matches!(cur.pointer(&from_parent), Some(Json::Object(_))) {
        return Err(at.fail(&format!(
            "cannot move {from}: it is an array element, not an object member; move the whole array instead"
        )));
    }
    let value = cur.pointer(from).cloned().unwrap_or(Json::Null);
    Ok(vec![
        Edit::Add {
            pointer: dest.to_string(),
            value,
        },
        Edit::Remove {
            pointer: from.to_string(),
        },
    ])
}

/// The container at `tokens`, mutably.
fn get_mut<'a>(root: &'a mut Json, tokens: &[String]) -> Option<&'a mut Json> {
    let mut cur = root;
    for t in tokens {
        cur = match cur {
            Json::Object(members) => members.iter_mut().find(|(k, _)| k == t).map(|(_, v)| v)?,
            Json::Array(items) => {
                let i: usize = t.parse().ok()?;
                items.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies an edit to the local value with the document's semantics (member order aside,
/// which no later op depends on).
fn apply_local(root: &mut Json, edit: &Edit) -> Result<(), String> {
    let ptr = match edit {
        Edit::Add { pointer, .. }
        | Edit::Set { pointer, .. }
        | Edit::Remove { pointer }
        | Edit::Rename { pointer, .. }
        | Edit::Append { pointer, .. } => pointer,
    };
    let mut tokens = pointer_tokens(ptr).ok_or_else(|| format!("bad pointer {ptr}"))?;
    let last = tokens.pop().ok_or_else(|| format!("bad pointer {ptr}"))?;
    let parent = get_mut(root, &tokens).ok_or_else(|| format!("cannot reach {ptr}"))?;
    let missing = || format!("cannot reach {ptr}");
    match (edit, parent) {
        (Edit::Add { value, .. }, Json::Object(members)) => members.push((last, value.clone())),
        (Edit::Set { value, .. }, Json::Object(members)) => {
            match members.iter_mut().find(|(k, _)| *k == last) {
                Some((_, v)) => *v = value.clone(),
                None => members.push((last, value.clone())),
            }
        }
        (Edit::Set { value, .. }, Json::Array(items)) => {
            let slot = last
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(missing)?;
            *slot = value.clone();
        }
        (Edit::Remove { .. }, Json::Object(members)) => {
            let i = members
                .iter()
                .position(|(k, _)| *k == last)
                .ok_or_else(missing)?;
            members.remove(i);
        }
        (Edit::Remove { .. }, Json::Array(items)) => {
            let i = last
                .parse::<usize>()
                .ok()
                .filter(|&i| i < items.len())
                .ok_or_else(missing)?;
            items.remove(i);
        }
        (Edit::Rename { new_key, .. }, Json::Object(members)) => {
            let member = members
                .iter_mut()
                .find(|(k, _)| *k == last)
                .ok_or_else(missing)?;
            member.0 = new_key.clone();
        }
        _ => return Err(format!("cannot edit {ptr}: its parent has the wrong type")),
    }
    Ok(())
}
