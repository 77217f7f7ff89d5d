//! The index: every manifest and batch of one commit, queryable in SQLite (the default, no
//! set-up) or PostgreSQL, rebuilt from git (invariant 5: the files are authoritative and
//! the database is a cache of them).
//!
//! - [`schema`]: the tables, the schema version and its upgrade-or-rebuild rule, and every
//!   SQL statement, written once for both backends.
//! - [`backend`]: what the index needs of a database; [`sqlite`] and [`postgres`] provide it.
//! - [`extract`]: one manifest's row (pure: bytes in, row or reason out).
//! - [`update`]: bringing an index to a commit, incrementally by blob id, in one transaction.
//! - [`query`]: the read side, every answer as of one indexed commit.
//!
//! It never writes to the repository: it reads trees, blobs and history through `git` and
//! `engine::log`, and writes only to its own database.

pub mod backend;
pub mod extract;
pub mod postgres;
pub mod query;
pub mod schema;
pub mod sqlite;
pub mod update;

use crate::error::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use query::{
    BatchRow, Cursor, InvalidRow, Reader, RunFilter, RunRecord, RunsPage, VersionCounts,
};
pub use update::{follow, refresh_after_commit, IndexState, Refresh, UpdateOptions, UpdateReport};

use crate::config::Config;
use crate::engine::EngineError;
use crate::git::{GitError, Repo};
use backend::Backend;

/// Where the default SQLite index lives, inside the common git directory (shared by linked
/// worktrees, never committed).
pub const DEFAULT_SQLITE: &str = "artifact-migrate/index.sqlite";

/// How long an update waits for another one holding the database before it gives up.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// An error of the index, naming the database involved.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0}")]
    BadUrl(String),
    #[error("{db}: cannot open the index: {message}")]
    Open { db: String, message: String },
    #[error("{db}: {op}: {message}")]
    Database {
        db: String,
        op: String,
        message: String,
    },
    #[error("{db}: another update of this index has held it for {waited} s; nothing was changed: run the command again once it is done")]
    Busy { db: String, waited: u64 },
    #[error("{db}: this index was made by a newer artifact-migrate (index schema {found}; this one reads {known}); upgrade artifact-migrate, or rebuild the index with `artifact-migrate index --rebuild`")]
    NewerSchema { db: String, found: i64, known: i64 },
    #[error("{db}: holds a table {table} that artifact-migrate did not create (there is no index_schema table); move it out of the way, or let `artifact-migrate index --rebuild` replace it")]
    Foreign { db: String, table: String },
    #[error("{db}: there is no index there yet: run `artifact-migrate index`")]
    Missing { db: String },
    #[error("{db}: this index has schema {found}, older than this artifact-migrate reads: run `artifact-migrate index` to upgrade it")]
    Stale { db: String, found: i64 },
    #[error("{path}: the index says it holds blob {blob}, but {message}; rebuild it with `artifact-migrate index --rebuild`")]
    Inconsistent {
        path: String,
        blob: String,
        message: String,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    History(#[from] EngineError),
}

impl IndexError {
    /// The kind of failure (exhaustive: a new variant must be classified here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::Git(e) => e.kind(),
            IndexError::History(e) => e.kind(),
            IndexError::BadUrl(_) => ErrorKind::Usage,
            IndexError::Busy { .. }
            | IndexError::NewerSchema { .. }
            | IndexError::Foreign { .. } => ErrorKind::Refused,
            IndexError::Open { .. }
            | IndexError::Database { .. }
            | IndexError::Missing { .. }
            | IndexError::Stale { .. }
            | IndexError::Inconsistent { .. } => ErrorKind::Environment,
        }
    }

    /// The file to blame, where one is.
    pub fn path(&self) -> Option<String> {
        match self {
            IndexError::Git(e) => e.path(),
            IndexError::History(e) => e.path(),
            IndexError::Inconsistent { path, .. } => Some(path.clone()),
            IndexError::BadUrl(_)
            | IndexError::Open { .. }
            | IndexError::Database { .. }
            | IndexError::Busy { .. }
            | IndexError::NewerSchema { .. }
            | IndexError::Foreign { .. }
            | IndexError::Missing { .. }
            | IndexError::Stale { .. } => None,
        }
    }
}

/// A database the index lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (created on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl DbLocation {
    /// Parses `sqlite:PATH` (relative paths are taken from `base`) or `postgres://...`
    /// (`postgresql://...`).
    pub fn parse(url: &str, base: &Path) -> Result<DbLocation, IndexError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbLocation::Postgres(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(IndexError::BadUrl(format!(
                    "{url:?} names no file: use sqlite:PATH"
                )));
            }
            let p = Path::new(path);
            return Ok(DbLocation::Sqlite(if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }));
        }
        Err(IndexError::BadUrl(format!(
            "{url:?} is not a database URL: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE"
        )))
    }

    /// The default: `<common git dir>/artifact-migrate/index.sqlite`.
    pub fn default_for(repo: &Repo) -> DbLocation {
        DbLocation::Sqlite(repo.git.commondir().join(DEFAULT_SQLITE))
    }

    /// Chooses the database: `flag` (`--db`, relative to `cwd`), else `DATABASE_URL` (as the
    /// seed's scripts read it), else `index.db` of `.artifact-migrate.toml` (both relative to
    /// the repository's root), else the default SQLite file.
    pub fn locate(
        repo: &Repo,
        cfg: &Config,
        flag: Option<&str>,
        cwd: &Path,
        database_url: Option<&str>,
    ) -> Result<DbLocation, IndexError> {
        let root = repo.workdir().unwrap_or(repo.git_dir());
        if let Some(f) = flag {
            return DbLocation::parse(f, cwd);
        }
        if let Some(u) = database_url.filter(|u| !u.is_empty()) {
            return DbLocation::parse(u, root);
        }
        if let Some(u) = &cfg.index.db {
            return DbLocation::parse(u, root);
        }
        Ok(DbLocation::default_for(repo))
    }

    /// The location for messages: `sqlite:PATH`, or the URL with its password hidden.
    pub fn describe(&self) -> String {
        match self {
            DbLocation::Sqlite(p) => format!("sqlite:{}", p.display()),
            DbLocation::Postgres(url) => redact(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// An open index (the database may not hold one yet: [`Index::update`] creates it).
pub struct Index {
    pub(crate) db: Box<dyn Backend + Send>,
    location: DbLocation,
}

impl Index {
    /// Connects to the database (creating the SQLite file and its directory if needed).
    pub fn open(location: &DbLocation) -> Result<Index, IndexError> {
        let db: Box<dyn Backend + Send> = match location {
            DbLocation::Sqlite(p) => Box::new(sqlite::Sqlite::open(p, true)?),
            DbLocation::Postgres(url) => Box::new(postgres::Postgres::connect(url)?),
        };
        Ok(Index {
            db,
            location: location.clone(),
        })
    }

    /// Connects only when the database already holds an index (a SQLite file that exists, a
    /// PostgreSQL database with our tables): `None` otherwise.
    pub fn open_existing(location: &DbLocation) -> Result<Option<Index>, IndexError> {
        let db: Box<dyn Backend + Send> = match location {
            DbLocation::Sqlite(p) if !p.exists() => return Ok(None),
            DbLocation::Sqlite(p) => Box::new(sqlite::Sqlite::open(p, false)?),
            DbLocation::Postgres(url) => Box::new(postgres::Postgres::connect(url)?),
        };
        let mut index = Index {
            db,
            location: location.clone(),
        };
        Ok(index
            .db
            .table_exists(schema::SCHEMA_TABLE)?
            .then_some(index))
    }

    /// Where this index lives.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Runs `f` on one read-only snapshot: every query in it answers as of the same indexed
    /// commit ([`Reader::state`]), whatever updates commit meanwhile.
    pub fn read<T>(
        &mut self,
        f: impl FnOnce(&mut Reader<'_>) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let db = self.db.as_mut();
        if !db.table_exists(schema::SCHEMA_TABLE)? {
            return Err(IndexError::Missing { db: db.describe() });
        }
        db.begin_read()?;
        let result = Reader::new(db).and_then(|mut r| f(&mut r));
        match result {
            Ok(v) => {
                db.commit()?;
                Ok(v)
            }
            Err(e) => {
                db.rollback();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_backend() {
        let base = Path::new("/repo");
        assert_eq!(
            DbLocation::parse("sqlite:idx.db", base).unwrap(),
            DbLocation::Sqlite("/repo/idx.db".into())
        );
        assert_eq!(
            DbLocation::parse("sqlite:///tmp/i.db", base).unwrap(),
            DbLocation::Sqlite("/tmp/i.db".into())
        );
        assert!(matches!(
            DbLocation::parse("postgresql://u@h/db", base).unwrap(),
            DbLocation::Postgres(_)
        ));
        let e = DbLocation::parse("mysql://x", base)
            .unwrap_err()
            .to_string();
        assert!(e.contains("use sqlite:PATH or postgres://"), "{e}");
        assert!(DbLocation::parse("sqlite:", base).is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://am:s3cr:et@db.example:5432/idx?sslmode=disable"),
            "postgres://am:***@db.example:5432/idx?sslmode=disable"
        );
        assert_eq!(redact("postgres://am@h/db"), "postgres://am@h/db");
        assert_eq!(
            redact("postgres://h/db?user=a@b"),
            "postgres://h/db?user=a@b"
        );
    }
}
