//! What the index needs of a database, implemented once per backend ([`super::sqlite`],
//! [`super::postgres`]). The SQL itself lives in [`super::schema`] and is shared: statements
//! use PostgreSQL's `$1` placeholders, which the SQLite backend rewrites to SQLite's
//! equivalent `?1`, so one text serves both.

use super::IndexError;

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl Val {
    /// The text of a value (`None` for NULL; an integer as its decimal digits).
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Int(i) => Some(i.to_string()),
            Val::Text(s) => Some(s.clone()),
        }
    }
    /// The integer of a value (`None` for NULL or text that is not a number).
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Text(s) => s.parse().ok(),
            Val::Null => None,
        }
    }
}

impl From<&crate::ids::CommitId> for Val {
    fn from(c: &crate::ids::CommitId) -> Val {
        Val::Text(c.to_string())
    }
}
impl From<Option<crate::ids::CommitId>> for Val {
    fn from(c: Option<crate::ids::CommitId>) -> Val {
        c.map_or(Val::Null, |c| Val::Text(c.to_string()))
    }
}
impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<&String> for Val {
    fn from(s: &String) -> Val {
        Val::Text(s.clone())
    }
}
impl From<Option<String>> for Val {
    fn from(s: Option<String>) -> Val {
        s.map_or(Val::Null, Val::Text)
    }
}
impl From<Option<&str>> for Val {
    fn from(s: Option<&str>) -> Val {
        s.map_or(Val::Null, |s| Val::Text(s.to_string()))
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Val {
        Val::Int(i)
    }
}
impl From<usize> for Val {
    fn from(i: usize) -> Val {
        Val::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

/// The type of a column, for bulk loads that need it (PostgreSQL's binary COPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int,
}

/// One open connection. Transactions are explicit: every write happens between
/// [`Backend::begin_write`] and [`Backend::commit`], every read between
/// [`Backend::begin_read`] and [`Backend::commit`] (or [`Backend::rollback`]).
pub trait Backend {
    /// The database as the user named it, password hidden (for messages).
    fn describe(&self) -> String;
    /// Starts the one writing transaction: waits while another writer holds the database
    /// (calling `waiting` once when it has to), up to the backend's limit, then gives up
    /// with [`IndexError::Busy`].
    fn begin_write(&mut self, waiting: &mut dyn FnMut()) -> Result<(), IndexError>;
    /// Starts a read-only transaction that sees one consistent state for all its queries.
    fn begin_read(&mut self) -> Result<(), IndexError>;
    fn commit(&mut self) -> Result<(), IndexError>;
    /// Abandons the open transaction, if any (best effort: used on error paths).
    fn rollback(&mut self);
    /// Runs several statements without parameters (DDL).
    fn batch(&mut self, sql: &str) -> Result<(), IndexError>;
    /// Runs one statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, IndexError>;
    /// Runs one query; returns its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, IndexError>;
    /// Appends rows to a table, as fast as the backend can (prepared inserts in SQLite,
    /// binary COPY in PostgreSQL), inside the open transaction.
    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[(&str, ColType)],
        rows: &[Vec<Val>],
    ) -> Result<(), IndexError>;
    /// The query that finds a table by name (`$1`) in this database's catalogue.
    fn catalogue_query(&self) -> &'static str;
    /// Whether a bulk write may drop `run_index`'s secondary indexes inside its transaction
    /// and make them again after its rows (one sort each instead of an insertion per row):
    /// only where that leaves readers alone until the commit.
    fn defers_indexes(&self) -> bool;

    /// Whether a table exists.
    fn table_exists(&mut self, table: &str) -> Result<bool, IndexError> {
        let sql = self.catalogue_query();
        Ok(!self.query(sql, &[Val::from(table)])?.is_empty())
    }
}

/// The single integer a `SELECT count(*)` returns (0 when it returns nothing).
pub fn count(db: &mut dyn Backend, sql: &str) -> Result<u64, IndexError> {
    Ok(db
        .query(sql, &[])?
        .first()
        .and_then(|r| r.first())
        .and_then(Val::int)
        .unwrap_or(0) as u64)
}
