//! Declarative migrations: migrations as data, stored in the repository, so a team can evolve
//! its schema without writing Rust (§11).
//!
//! This module owns reading migration files (TOML text handed in by the caller: it never
//! touches the file system or git), refusing at load time anything that could break an invariant,
//! the canonical form whose checksum history records, and the lint that names file and line.
//! Once loaded, a [`DeclarativeMigration`] is an ordinary [`Migration`]: it goes into the same
//! [`Registry`] as the built-ins and the engine runs it, checks the invariants and writes the
//! history entry exactly as for them.
//!
//! # The file
//!
//! One file per edge under `.artifact-migrate/migrations/`, conventionally named
//! `FROM-TO.toml` (`1.2.0-1.3.0.toml`; a name of that shape that disagrees with the file's
//! `from`/`to` is refused, any other name is accepted):
//!
//! ```toml
//! # comments are allowed anywhere
//! from = "1.2.0"
//! to = "1.3.0"
//! description = "Rename generation_metadata.model, add review_status"   # optional
//!
//! [[ops]]
//! op = "rename"
//! path = "/generation_metadata/model"
//! to = "model_name"
//! description = "Rename generation_metadata.model to generation_metadata.model_name"
//!
//! [[ops]]
//! op = "add"
//! path = "/review_status"
//! value = "unreviewed"
//! description = "Add review_status (\"unreviewed\")"
//! ```
//!
//! Top-level keys: `from`, `to` (versions, `from` below `to`), optional `description`, and
//! `ops`, an array of tables (`[[ops]]` or `ops = [{...}, ...]`; absent or empty means a
//! version bump that edits nothing). Each op has `op`, a required non-empty `description`
//! (it is what the manifest's history and the commit message say was done), and:
//!
//! - `add` (`path`, `value`): writes the value where nothing is at `path`; skipped where
//!   something is (an existing value is never overwritten, as with the built-ins).
//! - `set` (`path`, `value`): writes the value at `path`, replacing what is there (**lossy**);
//!   skipped where the value there is already equal; added where nothing is. May address an
//!   existing array element.
//! - `remove` (`path`): removes the member or array element (**lossy**); skipped where absent.
//! - `rename` (`path`, `to`: the new key in the same object): replaces just the key, in place;
//!   skipped where `path` is absent; where the object already has `to`, **the manifest fails**
//!   (nothing is overwritten: remove the other member first if it should go). The key keeps
//!   its place, even in an object whose keys are sorted: only its line changes.
//! - `move` (`from`, `path`): moves the value; skipped where `from` is absent; where `path`
//!   exists, **the manifest fails**, as for `rename`. Within one object it is a rename in
//!   place; to another object the value is written there in the file's style and the source
//!   removed — two edits, so the description is listed twice in that manifest's history.
//! - `copy` (`from`, `path`): writes a copy of the value where nothing is at `path`; skipped
//!   where `from` is absent or `path` exists (it is an `add` whose value comes from the
//!   document).
//!
//! Paths are RFC 6901 JSON pointers (`/a/b`, `~0` for `~`, `~1` for `/`); the root is not
//! allowed. Ops run in order, each against the document as the ops before it left it. A
//! skipped op is not listed in the manifest's history: only what was actually done is. Where
//! an op writes a member whose parent object does not exist (or is not an object), the manifest
//! fails with a message naming the file and line: add the parent first with an `add` of `{}`
//! (which is itself skipped where the parent exists). Nothing is created implicitly. A
//! manifest that fails is not migrated; with `--keep-going` the others still are.
//!
//! Values written by `set`, `add`, `copy` and a cross-object `move` are rendered in the file's
//! own style (indentation, escapes, sorted place); numbers keep their spelling.
//!
//! # Values
//!
//! `value` is any TOML value, converted to JSON: strings, booleans, arrays (mixed allowed) and
//! tables (objects, keys written in sorted order: a TOML table has no order, and sorted keys
//! make the bytes written a function of the checksum). Integers become JSON integers
//! (`1_000` → `1000`, `0xff` → `255`, `+5` → `5`); floats keep their spelling (`1.50` stays
//! `1.50`, `+1e3` → `1e3`); `inf` and `nan` are refused (JSON has none), and so are TOML dates
//! and times (write them as strings). TOML has no null: write `value_json = 'null'` instead of
//! `value`. `value_json` is a string of strict JSON, for null, exact key order or a number
//! spelling TOML cannot write.
//!
//! # Refused at load time (with file and line)
//!
//! Bad TOML, unknown keys, a missing or empty `description`, an unknown `op`, a key an op
//! does not take, versions that are not `MAJOR.MINOR.PATCH`, `from` not below `to` (downgrades
//! are rollbacks), a bad pointer, a `move`/`copy` whose destination lies inside its source or
//! the other way round, and any op that could change what the engine guards:
//!
//! - `schema_version` and `migration_history` are written by the engine only: no op may touch
//!   them, above or below.
//! - Protected fields (the configured list, by default `/job_id`, `/run_id`, `/job_ref`,
//!   `/doctrine`, `/inputs_hash`, `/input_snapshots`): no op may remove, overwrite, rename or
//!   move them, nor anything inside or above them. Only ops that write where nothing is
//!   (`add`, `copy`, and the destination of `move`/`rename`) may *create* one that is absent —
//!   §4 allows that, as the built-in 1.1.0 adds `job_id` — never write inside one.
//!
//! # Lossy
//!
//! A migration is lossy when it contains a `remove` or a `set` (which overwrites an existing
//! value): `plan` warns. `rename`, `move` and `copy` never overwrite (they fail or skip
//! instead), so they never lose data.
//!
//! # Checksums
//!
//! [`DeclarativeMigration::checksum`] hashes the definition, not the bytes (see
//! [`crate::schema::checksum`]): the canonical JSON of
//! `{"algorithm":"am-migration-v1","description":…|null,"from":"1.2.0","ops":[…],"to":"1.3.0"}`
//! where each op is an object with `op`, `description` and exactly the keys that op takes
//! (`path`, `value`, `to`, `from`), values as JSON. Descriptions are part of the definition:
//! they are what history and the commit message tell an auditor, so changing one is a change.
//! Comments, whitespace, key order, `[[ops]]` versus inline tables and TOML number spelling
//! (`1_000`, `0x3e8`) are not; `value` and a `value_json` of equal meaning hash alike.

mod canonical;
pub mod lint;
mod ops;
mod parse;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::manifest::Json;
use crate::schema::migration::{Change, Migration, MigrationContext, MigrationError};
use crate::schema::{Registry, RegistryError, Version};

pub use crate::schema::checksum::DECLARATIVE_CHECKSUM_ALGORITHM as CHECKSUM_ALGORITHM;
pub use lint::{lint, LintIssue, Severity};

/// Where migration files live, relative to the repository root.
pub const MIGRATIONS_DIR: &str = ".artifact-migrate/migrations";

/// Pointers only the engine writes; no declarative op may touch them or anything inside them.
pub const ENGINE_OWNED: [&str; 2] = ["/schema_version", "/migration_history"];

/// A migration file that cannot be used: `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct LoadError {
    /// The file's repository path.
    pub file: String,
    /// 1-based line of the offending key, op or value.
    pub line: usize,
    /// Lower-case, ends with what to do.
    pub message: String,
}

/// One operation of a declarative migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub kind: OpKind,
    /// What the op does, as written in history and the commit message.
    pub description: String,
    /// The line of the op in its file (its `[[ops]]` header or inline table).
    pub line: usize,
}

/// What an op does; pointers are RFC 6901.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// Add `value` at `path` where nothing is there.
    Add { path: String, value: Json },
    /// Write `value` at `path`, replacing what is there (lossy).
    Set { path: String, value: Json },
    /// Remove the member or element at `path` (lossy).
    Remove { path: String },
    /// Rename the member at `path` to the key `to` in the same object.
    Rename { path: String, to: String },
    /// Move the value at `from` to `path`.
    Move { from: String, path: String },
    /// Copy the value at `from` to `path` where nothing is there.
    Copy { from: String, path: String },
}

impl OpKind {
    /// The op's name as written in the file: `add`, `set`, `remove`, `rename`, `move`, `copy`.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Add { .. } => "add",
            OpKind::Set { .. } => "set",
            OpKind::Remove { .. } => "remove",
            OpKind::Rename { .. } => "rename",
            OpKind::Move { .. } => "move",
            OpKind::Copy { .. } => "copy",
        }
    }

    /// Whether the op may drop data: `remove` and `set`.
    pub fn lossy(&self) -> bool {
        matches!(self, OpKind::Remove { .. } | OpKind::Set { .. })
    }
}

/// A migration defined by a file of the repository.
#[derive(Debug, Clone)]
pub struct DeclarativeMigration {
    file: String,
    line: usize,
    from: Version,
    to: Version,
    description: Option<String>,
    ops: Vec<Op>,
    checksum: String,
}

impl DeclarativeMigration {
    /// The repository path of the file that defines it.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line of its `from` key (1 when absent), for messages about the whole migration.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The file's optional top-level description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The ops, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether it may drop data (it has a `remove` or a `set`).
    pub fn lossy(&self) -> bool {
        self.ops.iter().any(|op| op.kind.lossy())
    }

    /// Why it is lossy, one line per lossy op (`FILE:LINE: remove /x drops ...`); empty when not.
    pub fn lossy_reasons(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter_map(|op| {
                let why = match &op.kind {
                    OpKind::Remove { path } => format!("remove {path} drops its value"),
                    OpKind::Set { path, .. } => {
                        format!("set {path} overwrites the value already there")
                    }
                    _ => return None,
                };
                Some(format!("{}:{}: {why}", self.file, op.line))
            })
            .collect()
    }

    /// `sha256:` of the canonical form of the definition (see the module docs).
    pub fn checksum(&self) -> String {
        self.checksum.clone()
    }

    /// The canonical JSON text the checksum is taken of.
    pub fn canonical_form(&self) -> String {
        crate::manifest::canonical_json(&canonical::form(self))
    }
}

impl Migration for DeclarativeMigration {
    fn from(&self) -> Version {
        self.from
    }
    fn to(&self) -> Version {
        self.to
    }
    fn describe(&self) -> Vec<String> {
        self.ops.iter().map(|op| op.description.clone()).collect()
    }
    fn transform(
        &self,
        doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<Vec<Change>, MigrationError> {
        ops::changes(self, doc)
    }
    fn checksum(&self) -> String {
        self.checksum.clone()
    }
    fn source(&self) -> Option<&str> {
        Some(&self.file)
    }
    fn lossy(&self) -> bool {
        DeclarativeMigration::lossy(self)
    }
}

impl fmt::Display for DeclarativeMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} ({})", self.from, self.to, self.file)
    }
}

/// Loads migration files: `(repository path, text)` pairs, in any order, and the protected
/// fields as JSON pointers (the configured list; the engine-owned fields are always added).
///
/// Returns every migration, sorted by file, or every error of every file (not just the first),
/// each naming its file and line. Two files for one edge are not an error here: [`lint()`] and
/// [`register`] report them, naming both.
pub fn load(
    files: &[(String, String)],
    protected: &[String],
) -> Result<Vec<DeclarativeMigration>, Vec<LoadError>> {
    let guards = parse::Guards::new(protected);
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in sorted {
        match parse::parse_file(file, text, &guards) {
            Ok(m) => out.push(m),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Adds loaded migrations to a registry (usually one holding the built-ins). A second
/// definition of an edge is refused, naming the file: the registry never guesses between two.
pub fn register(
    registry: &mut Registry,
    declared: Vec<DeclarativeMigration>,
) -> Result<(), Vec<LoadError>> {
    let mut errors = Vec::new();
    for m in declared {
        let (file, line, id) = (m.file.clone(), m.line, m.id());
        let others: Vec<String> = registry
            .migrations()
            .iter()
            .filter(|x| x.id() == id)
            .map(|x| x.source().unwrap_or("a built-in migration").to_string())
            .collect();
        if let Err(e) = registry.register(Box::new(m)) {
            let message = match e {
                RegistryError::DuplicateEdge(_) => format!(
                    "a migration for {id} is already registered ({}): remove one of the two",
                    others.join(", ")
                ),
                other => other.to_string(),
            };
            errors.push(LoadError {
                file,
                line,
                message,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
