//! The manifest-aware three-way merge behind `merge-driver` (SPEC §8 formats, issue 12 item 5).
//!
//! [`merge_manifest`] takes the bytes of the common ancestor (BASE), our side (OURS) and their
//! side (THEIRS) and returns OURS's bytes with THEIRS's member changes applied as
//! format-preserving edits ([`crate::manifest::Edit`]), or the list of members both sides
//! changed differently. It is pure: bytes in, bytes or conflicts out; the file system and git
//! are the driver's business ([`crate::git::merge_driver`]).
//!
//! The rules (docs/formats.md, "Merging manifests"):
//! - A member THEIRS left as in BASE keeps OURS's bytes; a member OURS left as in BASE takes
//!   THEIRS's value (added, replaced or removed); a member both sides changed to the same value
//!   keeps OURS's bytes. Values are compared semantically ([`Json::deep_eq`]: member order is not
//!   a change, a number's spelling is).
//! - Objects changed on both sides merge member by member, recursively.
//! - `/migration_history` is an append-only log: both sides must keep BASE's entries unchanged;
//!   entries appended on one side are appended, the same entries appended on both sides merge,
//!   and different entries at the same positions conflict.
//! - Any other value changed differently on both sides (an array, a string, a member added on
//!   both sides with different values, a member changed on one side and removed on the other)
//!   is a conflict naming that member's JSON pointer.
//! - When OURS's bytes equal BASE's the result is THEIRS's bytes verbatim, and when THEIRS's
//!   bytes equal BASE's (or OURS's) it is OURS's bytes: the same result a textual merge gives.

use crate::manifest::{escape_pointer_token, Document, Edit, EditError, Json, ParseError};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// The append-only log whose entries merge by position.
pub const HISTORY_POINTER: &str = "/migration_history";

/// Which of the three inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The common ancestor (git's `%O`).
    Base,
    /// Our side, the file being merged into (git's `%A`).
    Ours,
    /// Their side (git's `%B`).
    Theirs,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Base => "base",
            Side::Ours => "ours",
            Side::Theirs => "theirs",
        })
    }
}

/// A clean merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged document: OURS's bytes with THEIRS's changes spliced in.
    pub bytes: Vec<u8>,
    /// The JSON pointers of the members taken from THEIRS, in the order they were applied.
    pub taken: Vec<String>,
}

/// How one member conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Both sides changed the member, to different values.
    BothChanged,
    /// Both sides added the member, with different values.
    BothAdded,
    /// Ours changed the member and theirs removed it.
    RemovedByTheirs,
    /// Theirs changed the member and ours removed it.
    RemovedByOurs,
    /// The history log: both sides appended different entries at the same positions.
    HistoryDiverged,
    /// The history log: a side changed or removed an entry that BASE has (the side says which).
    HistoryRewritten(Side),
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictKind::BothChanged => f.write_str("changed differently on both sides"),
            ConflictKind::BothAdded => f.write_str("added with different values on both sides"),
            ConflictKind::RemovedByTheirs => f.write_str("changed on ours, removed on theirs"),
            ConflictKind::RemovedByOurs => f.write_str("removed on ours, changed on theirs"),
            ConflictKind::HistoryDiverged => f.write_str(
                "both sides appended different migration history entries at the same positions",
            ),
            ConflictKind::HistoryRewritten(side) => write!(
                f,
                "{side} changed or removed a migration history entry the common ancestor has"
            ),
        }
    }
}

/// One member the merge cannot decide.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Conflict {
    /// The member's RFC 6901 pointer (`""` for the whole document).
    pub pointer: String,
    /// How it conflicts.
    pub kind: ConflictKind,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "the whole document: {}", self.kind)
        } else {
            write!(f, "{}: {}", self.pointer, self.kind)
        }
    }
}

/// The conflicting members, and three renderings of the merge a textual merge can mark up.
///
/// Each rendering is OURS with every non-conflicting change of THEIRS applied; at the conflicting
/// members it holds BASE's, OURS's or THEIRS's value. A line-based three-way merge of
/// (`base`, `ours`, `theirs`) therefore puts conflict markers around the conflicting members
/// only.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflicts {
    /// The members, in document order of OURS (then THEIRS).
    pub members: Vec<Conflict>,
    /// The merge with BASE's values at the conflicting members (`None` if they cannot be written).
    pub base: Option<Vec<u8>>,
    /// The merge with OURS's values at the conflicting members.
    pub ours: Vec<u8>,
    /// The merge with THEIRS's values at the conflicting members (`None` if they cannot be
    /// written).
    pub theirs: Option<Vec<u8>>,
}

/// Why [`merge_manifest`] gave no merged document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// One input is not strict JSON; a line-based merge is the only one possible.
    #[error("the {side} version is not valid json ({source}); a member-level merge needs all three to parse")]
    Unparsable {
        /// Which input.
        side: Side,
        /// The parser's error.
        #[source]
        source: ParseError,
    },
    /// Both sides changed the same members differently.
    #[error("{} conflicting member(s): {}", .0.members.len(), list(&.0.members))]
    Conflicts(Box<Conflicts>),
    /// A change of THEIRS could not be spliced into OURS (an internal error: the driver falls
    /// back to a line-based merge).
    #[error("internal error: the change at {pointer:?} could not be applied: {source}")]
    Edit {
        /// The member.
        pointer: String,
        /// The editor's error.
        #[source]
        source: EditError,
    },
}

fn list(members: &[Conflict]) -> String {
    members
        .iter()
        .map(Conflict::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Merges three versions of a manifest member by member (see the module docs for the rules).
pub fn merge_manifest(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Merged, MergeError> {
    let parse = |side, bytes| {
        Document::parse(bytes).map_err(|source| MergeError::Unparsable { side, source })
    };
    let base_doc = parse(Side::Base, base)?;
    let ours_doc = parse(Side::Ours, ours)?;
    let theirs_doc = parse(Side::Theirs, theirs)?;
    if theirs == base || theirs == ours {
        return Ok(Merged {
            bytes: ours.to_vec(),
            taken: Vec::new(),
        });
    }
    if ours == base {
        return Ok(Merged {
            bytes: theirs.to_vec(),
            taken: vec![String::new()],
        });
    }
    let (b, o, t) = (base_doc.value(), ours_doc.value(), theirs_doc.value());
    let mut plan = Plan::default();
    plan.merge("", &b, &o, &t);
    let merged = apply(ours_doc, &plan.edits)?;
    if plan.conflicts.is_empty() {
        return Ok(Merged {
            taken: plan.edits.iter().map(|e| e.pointer().to_string()).collect(),
            bytes: merged.into_bytes(),
        });
    }
    let variant = |pick: fn(&Pending) -> Option<&Json>| -> Option<Vec<u8>> {
        let edits: Vec<Edit> = plan
            .pending
            .iter()
            .filter_map(|p| p.edit(pick(p)))
            .collect();
        apply(merged.clone(), &edits).ok().map(Document::into_bytes)
    };
    let base_variant = variant(|p| p.base.as_ref());
    let theirs_variant = variant(|p| p.theirs.as_ref());
    Err(MergeError::Conflicts(Box::new(Conflicts {
        members: plan.conflicts,
        base: base_variant,
        ours: merged.into_bytes(),
        theirs: theirs_variant,
    })))
}

fn apply(mut doc: Document, edits: &[Edit]) -> Result<Document, MergeError> {
    for edit in edits {
        doc.apply(edit).map_err(|source| MergeError::Edit {
            pointer: edit.pointer().to_string(),
            source,
        })?;
    }
    Ok(doc)
}

/// A conflicting member's three values (`None`: absent on that side).
struct Pending {
    pointer: String,
    base: Option<Json>,
    ours: Option<Json>,
    theirs: Option<Json>,
}

impl Pending {
    /// The edit that replaces OURS's value at this member with `value` (`None` when both are
    /// absent: nothing to write).
    fn edit(&self, value: Option<&Json>) -> Option<Edit> {
        match (value, &self.ours) {
            (Some(v), _) => Some(Edit::Set {
                pointer: self.pointer.clone(),
                value: v.clone(),
            }),
            (None, Some(_)) => Some(Edit::Remove {
                pointer: self.pointer.clone(),
            }),
            (None, None) => None,
        }
    }
}

#[derive(Default)]
struct Plan {
    edits: Vec<Edit>,
    conflicts: Vec<Conflict>,
    pending: Vec<Pending>,
}

fn same(a: Option<&Json>, b: Option<&Json>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.deep_eq(y),
        _ => false,
    }
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", escape_pointer_token(key))
}

impl Plan {
    /// Merges a member present on all three sides.
    fn merge(&mut self, pointer: &str, base: &Json, ours: &Json, theirs: &Json) {
        if theirs.deep_eq(base) || theirs.deep_eq(ours) {
            return;
        }
        if ours.deep_eq(base) {
            self.transform(pointer, ours, theirs);
            return;
        }
        match (base, ours, theirs) {
            (Json::Object(b), Json::Object(o), Json::Object(t)) => {
                self.merge_objects(pointer, b, o, t)
            }
            (Json::Array(b), Json::Array(o), Json::Array(t)) if pointer == HISTORY_POINTER => {
                self.merge_history(pointer, b, o, t);
            }
            _ => self.conflict(
                pointer,
                ConflictKind::BothChanged,
                Some(base),
                Some(ours),
                Some(theirs),
            ),
        }
    }

    fn merge_objects(
        &mut self,
        pointer: &str,
        base: &[(String, Json)],
        ours: &[(String, Json)],
        theirs: &[(String, Json)],
    ) {
        let find = |members: &'_ [(String, Json)], key: &str| -> Option<Json> {
            members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let mut keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in theirs.iter().chain(base) {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        for key in keys {
            let ptr = child(pointer, key);
            let (b, o, t) = (find(base, key), find(ours, key), find(theirs, key));
            if same(t.as_ref(), b.as_ref()) || same(o.as_ref(), t.as_ref()) {
                continue;
            }
            if same(o.as_ref(), b.as_ref()) {
                match (&o, &t) {
                    (Some(o), Some(t)) => self.transform(&ptr, o, t),
                    (Some(_), None) => self.edits.push(Edit::Remove { pointer: ptr }),
                    (None, Some(t)) => self.edits.push(Edit::Add {
                        pointer: ptr,
                        value: t.clone(),
                    }),
                    (None, None) => {}
                }
                continue;
            }
            match (&b, &o, &t) {
                (Some(b), Some(o), Some(t)) => self.merge(&ptr, b, o, t),
                // Both sides started the log: merge their entries as appended to an empty one.
                (None, Some(Json::Array(o)), Some(Json::Array(t))) if ptr == HISTORY_POINTER => {
                    self.merge_history(&ptr, &[], o, t);
                }
                (None, _, _) => {
                    self.conflict(&ptr, ConflictKind::BothAdded, None, o.as_ref(), t.as_ref())
                }
                (Some(_), Some(_), None) => self.conflict(
                    &ptr,
                    ConflictKind::RemovedByTheirs,
                    b.as_ref(),
                    o.as_ref(),
                    None,
                ),
                (Some(_), None, _) => self.conflict(
                    &ptr,
                    ConflictKind::RemovedByOurs,
                    b.as_ref(),
                    None,
                    t.as_ref(),
                ),
            }
        }
    }

    /// The append-only log: BASE's entries kept on both sides, appended entries agreeing by
    /// position.
    fn merge_history(&mut self, pointer: &str, base: &[Json], ours: &[Json], theirs: &[Json]) {
        let keeps_base = |side: &[Json]| {
            side.len() >= base.len() && base.iter().zip(side).all(|(b, s)| b.deep_eq(s))
        };
        let whole = |items: &[Json]| Json::Array(items.to_vec());
        let (b, o, t) = (whole(base), whole(ours), whole(theirs));
        for (side, items) in [(Side::Ours, ours), (Side::Theirs, theirs)] {
            if !keeps_base(items) {
                self.conflict(
                    pointer,
                    ConflictKind::HistoryRewritten(side),
                    Some(&b),
                    Some(&o),
                    Some(&t),
                );
                return;
            }
        }
        let (ours_new, theirs_new) = (&ours[base.len()..], &theirs[base.len()..]);
        let agree = ours_new.iter().zip(theirs_new).all(|(x, y)| x.deep_eq(y));
        if !agree {
            self.conflict(
                pointer,
                ConflictKind::HistoryDiverged,
                Some(&b),
                Some(&o),
                Some(&t),
            );
            return;
        }
        // Theirs appended more than ours (ours holds a prefix of theirs's new entries): append
        // the rest. The other way round ours already holds everything.
        for entry in theirs_new.iter().skip(ours_new.len()) {
            self.edits.push(Edit::Append {
                pointer: pointer.to_string(),
                value: entry.clone(),
            });
        }
    }

    /// Edits that turn `from` (OURS's value at `pointer`, equal to BASE's) into `to`, touching as
    /// few bytes as possible: objects member by member, an array extended at its end by appends,
    /// an array of the same length element by element, anything else replaced whole.
    fn transform(&mut self, pointer: &str, from: &Json, to: &Json) {
        if from.deep_eq(to) {
            return;
        }
        match (from, to) {
            (Json::Object(f), Json::Object(t)) => {
                for (key, fv) in f {
                    let ptr = child(pointer, key);
                    match t.iter().find(|(k, _)| k == key) {
                        Some((_, tv)) => self.transform(&ptr, fv, tv),
                        None => self.edits.push(Edit::Remove { pointer: ptr }),
                    }
                }
                for (key, tv) in t {
                    if !f.iter().any(|(k, _)| k == key) {
                        self.edits.push(Edit::Add {
                            pointer: child(pointer, key),
                            value: tv.clone(),
                        });
                    }
                }
            }
            (Json::Array(f), Json::Array(t))
                if t.len() > f.len() && f.iter().zip(t).all(|(a, b)| a.deep_eq(b)) =>
            {
                for item in &t[f.len()..] {
                    self.edits.push(Edit::Append {
                        pointer: pointer.to_string(),
                        value: item.clone(),
                    });
                }
            }
            (Json::Array(f), Json::Array(t)) if f.len() == t.len() => {
                for (i, (a, b)) in f.iter().zip(t).enumerate() {
                    self.transform(&format!("{pointer}/{i}"), a, b);
                }
            }
            _ => self.edits.push(Edit::Set {
                pointer: pointer.to_string(),
                value: to.clone(),
            }),
        }
    }

    fn conflict(
        &mut self,
        pointer: &str,
        kind: ConflictKind,
        base: Option<&Json>,
        ours: Option<&Json>,
        theirs: Option<&Json>,
    ) {
        self.conflicts.push(Conflict {
            pointer: pointer.to_string(),
            kind,
        });
        self.pending.push(Pending {
            pointer: pointer.to_string(),
            base: base.cloned(),
            ours: ours.cloned(),
            theirs: theirs.cloned(),
        });
    }
}
