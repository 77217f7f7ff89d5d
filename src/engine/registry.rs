//! The registry of a repository: the built-ins plus the declarative migrations under
//! `.artifact-migrate/migrations/`, the JSON Schemas under `.artifact-migrate/schemas/`, and
//! the lint, run at load (errors refuse; warnings are for `migrations --check`).
//!
//! Definitions are read from the working tree when there is one (so a new migration can be
//! previewed with `plan --diff` before it is committed) and from the commit's tree in a bare
//! repository or for another revision. `apply` refuses uncommitted definitions: a batch must
//! name definitions that are in git.

use std::fs;
use std::path::Path;

use git2::{ObjectType, TreeWalkMode, TreeWalkResult};

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::schema::declarative::{
    self, lint::LintIssue, lint::Severity, DeclarativeMigration, LoadError, MIGRATIONS_DIR,
};
use crate::schema::validation::{SchemaLoadError, SchemaSet, SCHEMAS_DIR};
use crate::schema::{Migration, Registry, StepId};

/// One reason the definitions cannot be used, located at its file (and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionProblem {
    #[error("{file}:1: not UTF-8 text")]
    NotUtf8 { file: String },
    /// A migration file that does not load, or does not register.
    #[error(transparent)]
    Migration(#[from] LoadError),
    /// A lint error of the graph the definitions make.
    #[error("{0}")]
    Lint(LintIssue),
    #[error(transparent)]
    Schema(#[from] SchemaLoadError),
}

impl DefinitionProblem {
    /// The file it is in (`None` for a lint finding about the graph as a whole).
    pub fn file(&self) -> Option<&str> {
        match self {
            DefinitionProblem::NotUtf8 { file } => Some(file),
            DefinitionProblem::Migration(e) => Some(&e.file),
            DefinitionProblem::Lint(l) => l.file.as_deref(),
            DefinitionProblem::Schema(e) => Some(&e.file),
        }
    }
}

/// A declarative migration as the CLI shows it.
#[derive(Debug, Clone)]
pub struct Declared {
    pub id: StepId,
    pub file: String,
    pub lossy_reasons: Vec<String>,
    pub checksum: String,
}

/// Everything a command needs to know about migrations and schemas.
pub struct LoadedRegistry {
    /// The migrations, with the schemas set.
    pub registry: Registry,
    pub declared: Vec<Declared>,
    /// Lint warnings (errors refuse the load).
    pub lint: Vec<LintIssue>,
}

impl LoadedRegistry {
    /// The declarative migration for an edge, if it is one.
    pub fn declared(&self, id: StepId) -> Option<&Declared> {
        self.declared.iter().find(|d| d.id == id)
    }
}

/// Where definitions are read from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The working tree (or HEAD's tree in a bare repository).
    Worktree,
    /// The tree of this commit.
    Commit(CommitId),
}

fn read_dir_files(
    repo: &Repo,
    source: Source,
    dir: &str,
    ext: &str,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let mut out = Vec::new();
    let commit = match (source, repo.workdir()) {
        (Source::Worktree, Some(wd)) => {
            let abs = wd.join(dir);
            let entries = match fs::read_dir(&abs) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => {
                    return Err(GitError::Io {
                        path: abs,
                        source: e,
                    })
                }
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(ext) && e.file_type().is_ok_and(|t| t.is_file()) {
                    let bytes = fs::read(e.path()).map_err(GitError::io(e.path()))?;
                    out.push((format!("{dir}/{name}"), bytes));
                }
            }
            out.sort();
            return Ok(out);
        }
        (Source::Worktree, None) => match repo.head_commit() {
            Ok(c) => c,
            Err(GitError::Unborn) => return Ok(out),
            Err(e) => return Err(e),
        },
        (Source::Commit(c), _) => c,
    };
    let tree = repo
        .git
        .find_commit(commit.0)
        .and_then(|c| c.tree())
        .map_err(GitError::git(format!("read the tree of {commit}")))?;
    let Ok(entry) = tree.get_path(Path::new(dir)) else {
        return Ok(out);
    };
    let Ok(sub) = repo.git.find_tree(entry.id()) else {
        return Ok(out);
    };
    let mut ids = Vec::new();
    sub.walk(TreeWalkMode::PreOrder, |_, e| {
        if let (Ok(name), Some(ObjectType::Blob)) = (e.name(), e.kind()) {
            if name.ends_with(ext) {
                ids.push((format!("{dir}/{name}"), e.id()));
            }
        }
        TreeWalkResult::Skip
    })
    .map_err(GitError::git(format!("read {dir}")))?;
    for (path, id) in ids {
        let blob = repo
            .git
            .find_blob(id)
            .map_err(GitError::git(format!("read {path}")))?;
        out.push((path, blob.content().to_vec()));
    }
    out.sort();
    Ok(out)
}

/// Loads the registry of a repository: built-ins, declarative migrations (refused with every
/// `FILE:LINE: problem` when a file is wrong or the lint finds an error) and schemas.
pub fn load_registry(
    repo: &Repo,
    cfg: &Config,
    source: Source,
) -> Result<LoadedRegistry, EngineError> {
    let files = read_dir_files(repo, source, MIGRATIONS_DIR, ".toml")?;
    let mut texts = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for (path, bytes) in files {
        match String::from_utf8(bytes) {
            Ok(t) => texts.push((path, t)),
            Err(_) => problems.push(DefinitionProblem::NotUtf8 { file: path }),
        }
    }
    let declared: Vec<DeclarativeMigration> = match declarative::load(&texts, &cfg.protected) {
        Ok(d) => d,
        Err(errors) => {
            problems.extend(errors.into_iter().map(DefinitionProblem::from));
            Vec::new()
        }
    };
    let builtins = Registry::with_builtins();
    let lint = declarative::lint::lint(&builtins.migrations(), &declared);
    problems.extend(
        lint.iter()
            .filter(|l| l.severity == Severity::Error)
            .cloned()
            .map(DefinitionProblem::Lint),
    );
    let schema_files = read_dir_files(repo, source, SCHEMAS_DIR, ".json")?;
    let schemas = match SchemaSet::load(&schema_files) {
        Ok(s) => s,
        Err(errors) => {
            problems.extend(errors.into_iter().map(DefinitionProblem::from));
            SchemaSet::empty()
        }
    };
    if !problems.is_empty() {
        return Err(EngineError::Definitions(problems));
    }
    let info: Vec<Declared> = declared
        .iter()
        .map(|d| Declared {
            id: d.id(),
            file: d.file().to_string(),
            lossy_reasons: d.lossy_reasons(),
            checksum: d.checksum(),
        })
        .collect();
    let mut registry = builtins;
    declarative::register(&mut registry, declared).map_err(|errors| {
        EngineError::Definitions(errors.into_iter().map(DefinitionProblem::from).collect())
    })?;
    registry.set_schemas(schemas);
    let warnings = lint
        .into_iter()
        .filter(|l| l.severity != Severity::Error)
        .collect();
    Ok(LoadedRegistry {
        registry,
        declared: info,
        lint: warnings,
    })
}

/// Definition files under `.artifact-migrate/` that differ from HEAD (modified, staged or
/// untracked): `apply` refuses them, since a batch must name committed definitions.
pub fn uncommitted_definitions(repo: &Repo) -> Result<Vec<String>, GitError> {
    if repo.workdir().is_none() {
        return Ok(Vec::new());
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .pathspec(".artifact-migrate")
        .include_ignored(false);
    // libgit2 reads the index while other processes may be replacing it; a read that
    // finds it cut short (seen once in 800 applies of the stress run, next to `git commit`
    // and `git gc --auto`) is tried again before it counts.
    let mut tries = 0;
    let statuses = loop {
        match repo.git.statuses(Some(&mut opts)) {
            Err(e) if e.class() == git2::ErrorClass::Index && tries < 3 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.map_err(GitError::git("read the status of .artifact-migrate"))?,
        }
    };
    let mut out: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .filter_map(|s| s.path().ok().map(str::to_string))
        .filter(|p| p.starts_with(MIGRATIONS_DIR) || p.starts_with(SCHEMAS_DIR))
        .collect();
    out.sort();
    Ok(out)
}

/// [`uncommitted_definitions`] on a thread of its own, with its own handle on the repository,
/// so that its one costly part, reading the index (at 100k manifests 400k entries, 0.38 s),
/// overlaps the caller's work. [`DefinitionsCheck::finish`] waits for it.
pub struct DefinitionsCheck(std::thread::JoinHandle<Result<Vec<String>, GitError>>);

impl DefinitionsCheck {
    pub fn start(repo: &Repo) -> Result<DefinitionsCheck, GitError> {
        let other = repo.reopen()?;
        Ok(DefinitionsCheck(std::thread::spawn(move || {
            uncommitted_definitions(&other)
        })))
    }

    /// The check's answer (a panic in it is the caller's panic).
    pub fn finish(self) -> Result<Vec<String>, GitError> {
        self.0
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}
