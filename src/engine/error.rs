//! The error that stops a whole engine operation (as opposed to one manifest failing, which
//! is a [`Failure`](crate::engine::Failure) in the report). Each variant carries what it is
//! about, and [`EngineError::kind`] classifies it for every front end.

use crate::engine::registry::DefinitionProblem;
use crate::engine::rollback::Refusal;
use crate::error::ErrorKind;
use crate::git::GitError;
use crate::schema::{StepId, Version};

/// An error that stops a whole command.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("unknown target version {target}; the registry knows {}", join(.known))]
    UnknownTarget {
        target: Version,
        known: Vec<Version>,
    },
    #[error("the registry has no migrations")]
    EmptyRegistry,
    #[error("{} manifest(s) have uncommitted changes; commit or stash them first (nothing was changed): {}", paths.len(), paths.join(", "))]
    DirtyManifests { paths: Vec<String> },
    /// A rollback that would lose or mangle something: not a batch, already rolled back,
    /// manifests changed since. The message says what to do instead.
    #[error(transparent)]
    RollbackRefused(#[from] Refusal),
    /// `repair --accept` of a migration the registry does not define.
    #[error("no migration {step} is defined; the registry has {}", join(.known))]
    UnknownMigration { step: String, known: Vec<StepId> },
    /// Migration or schema definitions that cannot be used, one `FILE:LINE: problem` each.
    #[error("the migration definitions are wrong; fix them and run again:\n  {}", join_with(.0, "\n  "))]
    Definitions(Vec<DefinitionProblem>),
    #[error("migration definitions have uncommitted changes: commit them first, so the batch names definitions that are in git (nothing was changed): {}", .0.join(", "))]
    UncommittedDefinitions(Vec<String>),
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    join_with(items, ", ")
}

fn join_with<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

impl EngineError {
    /// What kind of failure this is (exhaustive: a new variant must be classified here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Git(g) => g.kind(),
            EngineError::UnknownTarget { .. } => ErrorKind::Usage,
            EngineError::UnknownMigration { .. } => ErrorKind::NotFound,
            EngineError::EmptyRegistry | EngineError::Definitions(_) => ErrorKind::Environment,
            EngineError::DirtyManifests { .. }
            | EngineError::RollbackRefused(_)
            | EngineError::UncommittedDefinitions(_) => ErrorKind::Refused,
        }
    }

    /// The one file to blame, if there is one: the first dirty manifest (as before), the
    /// definition file when every problem is in the same one.
    pub fn path(&self) -> Option<String> {
        match self {
            EngineError::Git(g) => g.path(),
            EngineError::DirtyManifests { paths } => paths.first().cloned(),
            EngineError::Definitions(problems) => {
                let mut files = problems.iter().map(DefinitionProblem::file);
                let first = files.next().flatten()?;
                files.all(|f| f == Some(first)).then(|| first.to_string())
            }
            EngineError::UnknownTarget { .. }
            | EngineError::EmptyRegistry
            | EngineError::RollbackRefused(_)
            | EngineError::UnknownMigration { .. }
            | EngineError::UncommittedDefinitions(_) => None,
        }
    }
}
