//! Migrating one manifest: bytes in, bytes and a record of what changed out. Pure: no git,
//! no file system, so the property tests can hammer it.

use crate::engine::history::{checksum_after, BatchInfo, HistoryEntry};
use crate::engine::invariants::{check_history_kept, check_protected, HISTORY_KEY};
use crate::manifest::{sha256_prefixed, Document, Edit, EditError, Json, ParseError};
use crate::schema::validation::{describe_violations, SchemaSet};
use crate::schema::{
    Migration, MigrationContext, Registry, RegistryError, StepId, Version, VersionError,
};

/// The version of a manifest without `schema_version` (§2).
pub const IMPLICIT_VERSION: Version = Version::new(1, 0, 0);

/// Everything the engine needs to know to migrate one manifest.
pub struct MigrateOptions<'a> {
    pub registry: &'a Registry,
    pub target: Version,
    pub artifacts_root: &'a str,
    /// Where runs live under the root (the job_id derivation reads it).
    pub layouts: &'a crate::layout::Layouts,
    /// JSON pointers whose values must be deep-equal before and after.
    pub protected: &'a [String],
}

/// Why one manifest could not be migrated. The path is carried by the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid JSON: {0}")]
    Parse(#[from] ParseError),
    #[error(
        "is a Git LFS pointer, not a manifest: run `git lfs pull` or leave it out of the pathspec"
    )]
    LfsPointer,
    #[error("is a symbolic link: manifests are migrated where they really are, links are never followed")]
    Symlink,
    #[error("is not a JSON object (the root is {0}): a manifest must be an object")]
    NotAnObject(&'static str),
    #[error("schema_version must be a string like \"1.2.0\", found {0}")]
    VersionNotString(&'static str),
    #[error("{0}")]
    BadVersion(#[from] VersionError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("migration {migration} refused it before the transform: {message}")]
    ValidateBefore { migration: StepId, message: String },
    #[error("migration {migration} failed: {message}")]
    Transform { migration: StepId, message: String },
    #[error("migration {migration} left an invalid manifest: {message}")]
    ValidateAfter { migration: StepId, message: String },
    #[error("migration {migration} could not edit the document: {source}")]
    Edit {
        migration: StepId,
        source: EditError,
    },
    #[error("migration {migration} {how} the protected field {field}: nothing was written (protected fields may be added, never changed)")]
    Invariant {
        migration: StepId,
        field: String,
        how: &'static str,
    },
    #[error("migration {migration} writes {pointer}, which only the engine writes")]
    ReservedField { migration: StepId, pointer: String },
    #[error("migration_history is not an array: fix the manifest by hand first")]
    HistoryNotArray,
    /// The run's identity cannot place it (relocate): the path and the manifest disagree,
    /// no job can be derived, or its canonical place is not one.
    #[error("{0}")]
    Identity(String),
    #[error("after migration {migration} the manifest does not validate against the schema of {version} ({file}): {violations}")]
    Schema {
        migration: StepId,
        version: Version,
        file: String,
        violations: String,
    },
}

impl ManifestError {
    /// A short machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            ManifestError::Parse(_) => "parse",
            ManifestError::LfsPointer => "lfs_pointer",
            ManifestError::Symlink => "symlink",
            ManifestError::NotAnObject(_) => "not_an_object",
            ManifestError::VersionNotString(_) | ManifestError::BadVersion(_) => "bad_version",
            ManifestError::Registry(RegistryError::Downgrade { .. }) => "downgrade",
            ManifestError::Registry(_) => "unknown_version",
            ManifestError::ValidateBefore { .. } | ManifestError::ValidateAfter { .. } => {
                "validation"
            }
            ManifestError::Transform { .. }
            | ManifestError::Edit { .. }
            | ManifestError::ReservedField { .. } => "transform",
            ManifestError::Invariant { .. } | ManifestError::HistoryNotArray => "invariant",
            ManifestError::Schema { .. } => "schema",
            ManifestError::Identity(_) => "identity",
        }
    }
}

/// One change made to one manifest: its text for the history entry and for the commit message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNote {
    pub detail: String,
    pub summary: String,
}

/// A manifest that was migrated.
#[derive(Debug, Clone)]
pub struct Migrated {
    pub from: Version,
    pub to: Version,
    pub steps: Vec<StepId>,
    pub changes: Vec<ChangeNote>,
    pub bytes: Vec<u8>,
    pub entry: HistoryEntry,
}

/// What happened to one manifest.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Already at the target: nothing to do.
    Current(Version),
    Migrated(Box<Migrated>),
}

/// A Git LFS pointer file instead of the content it points to.
pub fn is_lfs_pointer(bytes: &[u8]) -> bool {
    bytes.starts_with(b"version https://git-lfs.github.com/spec/")
}

/// Reads a manifest's schema version (absent = 1.0.0) from its parsed value.
pub fn read_version(doc: &Json) -> Result<Version, ManifestError> {
    match doc.get("schema_version") {
        None => Ok(IMPLICIT_VERSION),
        Some(Json::String(s)) => Ok(s.parse()?),
        Some(other) => Err(ManifestError::VersionNotString(other.type_name())),
    }
}

/// Parses a manifest and checks it is an object; returns the document and its value.
pub fn parse_manifest(bytes: &[u8]) -> Result<(Document, Json), ManifestError> {
    if is_lfs_pointer(bytes) {
        return Err(ManifestError::LfsPointer);
    }
    let doc = Document::parse(bytes)?;
    let value = doc.value();
    if !matches!(value, Json::Object(_)) {
        return Err(ManifestError::NotAnObject(value.type_name()));
    }
    Ok((doc, value))
}

/// Parses a manifest that will only be read and checks it is an object; returns its value.
/// Accepts and refuses exactly what [`parse_manifest`] does, with the same errors.
pub fn read_manifest(bytes: &[u8]) -> Result<Json, ManifestError> {
    if is_lfs_pointer(bytes) {
        return Err(ManifestError::LfsPointer);
    }
    let value = crate::manifest::parse_value(bytes)?;
    if !matches!(value, Json::Object(_)) {
        return Err(ManifestError::NotAnObject(value.type_name()));
    }
    Ok(value)
}

/// Migrates one manifest to `opts.target`: runs each migration of the registry's path with
/// its validations, sets `schema_version`, checks the invariants after every step, and
/// appends the history entry. Returns the new bytes; bytes outside the changed members are
/// the input's own (§8).
pub fn migrate_manifest(
    bytes: &[u8],
    path: &str,
    opts: &MigrateOptions<'_>,
    batch: &BatchInfo,
) -> Result<Outcome, ManifestError> {
    let (mut doc, original) = parse_manifest(bytes)?;
    let from = read_version(&original)?;
    let path_steps = opts.registry.path(from, opts.target)?;
    if path_steps.is_empty() {
        return Ok(Outcome::Current(from));
    }
    let ctx = MigrationContext {
        path,
        artifacts_root: opts.artifacts_root,
        layouts: opts.layouts,
    };
    let mut value = original.clone();
    let mut changes = Vec::new();
    for m in &path_steps {
        value = run_step(
            *m,
            &mut doc,
            value,
            &ctx,
            opts.protected,
            opts.registry.schemas(),
            &mut changes,
        )?;
    }
    let entry = HistoryEntry {
        from_version: from,
        to_version: opts.target,
        steps: path_steps.iter().map(|m| m.id()).collect(),
        migration_checksums: path_steps
            .iter()
            .map(|m| {
                let sum = opts
                    .registry
                    .checksum(m.id())
                    .map_or_else(|| m.checksum(), str::to_string);
                (m.id(), sum)
            })
            .collect(),
        changes: changes
            .iter()
            .map(|c: &ChangeNote| c.detail.clone())
            .collect(),
        applied_at: batch.applied_at.clone(),
        base_commit: batch.base_commit.to_string(),
        checksum_before: sha256_prefixed(bytes),
        checksum_after: checksum_after(&value),
        tool: batch.tool.clone(),
    };
    let history_edit = match value.get(HISTORY_KEY) {
        None => Edit::Add {
            pointer: format!("/{HISTORY_KEY}"),
            value: Json::Array(vec![entry.to_json()]),
        },
        Some(Json::Array(_)) => Edit::Append {
            pointer: format!("/{HISTORY_KEY}"),
            value: entry.to_json(),
        },
        Some(_) => return Err(ManifestError::HistoryNotArray),
    };
    let last = path_steps.last().map(|m| m.id()).unwrap_or(StepId {
        from,
        to: opts.target,
    });
    doc.apply(&history_edit)
        .map_err(|source| ManifestError::Edit {
            migration: last,
            source,
        })?;
    let final_value = doc.value();
    check_history_kept(&original, &final_value)
        .and_then(|()| check_protected(&original, &final_value, opts.protected))
        .map_err(|v| ManifestError::Invariant {
            migration: last,
            field: v.field,
            how: v.how,
        })?;
    Ok(Outcome::Migrated(Box::new(Migrated {
        from,
        to: opts.target,
        steps: entry.steps.clone(),
        changes,
        bytes: doc.into_bytes(),
        entry,
    })))
}

/// Whether a pointer names what only the engine writes: `/schema_version`, and
/// `/migration_history` or anything inside it.
fn engine_owned(pointer: &str) -> bool {
    pointer == "/schema_version"
        || pointer
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(HISTORY_KEY))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn run_step(
    m: &dyn Migration,
    doc: &mut Document,
    before: Json,
    ctx: &MigrationContext<'_>,
    protected: &[String],
    schemas: &SchemaSet,
    changes: &mut Vec<ChangeNote>,
) -> Result<Json, ManifestError> {
    let id = m.id();
    m.validate_before(&before, ctx)
        .map_err(|e| ManifestError::ValidateBefore {
            migration: id,
            message: e.0,
        })?;
    let step_changes = m
        .transform(&before, ctx)
        .map_err(|e| ManifestError::Transform {
            migration: id,
            message: e.0,
        })?;
    for c in step_changes {
        let pointer = c.edit.pointer();
        if engine_owned(pointer) {
            return Err(ManifestError::ReservedField {
                migration: id,
                pointer: pointer.to_string(),
            });
        }
        doc.apply(&c.edit).map_err(|source| ManifestError::Edit {
            migration: id,
            source,
        })?;
        changes.push(ChangeNote {
            detail: c.detail,
            summary: c.summary,
        });
    }
    doc.apply(&Edit::Set {
        pointer: "/schema_version".into(),
        value: Json::str(m.to().to_string()),
    })
    .map_err(|source| ManifestError::Edit {
        migration: id,
        source,
    })?;
    let after = doc.value();
    check_protected(&before, &after, protected).map_err(|v| ManifestError::Invariant {
        migration: id,
        field: v.field,
        how: v.how,
    })?;
    check_history_kept(&before, &after).map_err(|v| ManifestError::Invariant {
        migration: id,
        field: v.field,
        how: v.how,
    })?;
    m.validate_after(&after, ctx)
        .map_err(|e| ManifestError::ValidateAfter {
            migration: id,
            message: e.0,
        })?;
    if let Err(v) = schemas.validate(m.to(), &after) {
        return Err(ManifestError::Schema {
            migration: id,
            version: m.to(),
            file: schemas.file(m.to()).unwrap_or_default().to_string(),
            violations: describe_violations(&v),
        });
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::engine_owned;

    #[test]
    fn only_the_version_and_the_history_are_the_engines() {
        for p in [
            "/schema_version",
            "/migration_history",
            "/migration_history/0",
            "/migration_history/-",
        ] {
            assert!(engine_owned(p), "{p}");
        }
        for p in [
            "",
            "/",
            "/schema_versions",
            "/migration_historyx",
            "migration_history",
            "/params/migration_history",
            "/x",
        ] {
            assert!(!engine_owned(p), "{p}");
        }
    }
}
