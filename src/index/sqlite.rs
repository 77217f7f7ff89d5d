//! The SQLite backend (rusqlite, SQLite bundled): one file, in WAL mode so readers keep
//! seeing the last committed index while an update runs; a writer takes the database with
//! `BEGIN IMMEDIATE`, so two updates never interleave.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode};

use super::backend::{Backend, ColType, Val};
use super::{IndexError, DEFAULT_LOCK_WAIT};

/// The page size of a database this creates.
const PAGE_SIZE: i64 = 16384;

/// An open SQLite index.
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Opens the file (creating it and its directory when `create`).
    pub fn open(path: &Path, create: bool) -> Result<Sqlite, IndexError> {
        let err = |message: String| IndexError::Open {
            db: format!("sqlite:{}", path.display()),
            message,
        };
        if create {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(format!("create {}: {e}", dir.display())))?;
            }
        }
        let flags = if create {
            rusqlite::OpenFlags::default()
        } else {
            rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_CREATE
        };
        if create && !path.exists() {
            // SQLite would say only "unable to open database file"; the system says why.
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| err(format!("create {}: {e}", path.display())))?;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| err(e.to_string()))?;
        // Setting the journal mode waits for a writer's lock (an update, a checkpoint) as
        // long as an update would; after that each statement waits a little, and
        // begin_write waits longer, in rounds.
        conn.busy_timeout(DEFAULT_LOCK_WAIT)
            .map_err(|e| err(in_words(&conn, path, &e)))?;
        if create {
            // Pages of 16 KiB for a new database (the setting does nothing to one that has
            // pages already, and cannot change once it is in WAL mode): a full build of a
            // million manifests writes 2.2 GB through the WAL in one transaction, and with
            // 4 KiB pages SQLite's search of the WAL for each page and the kernel's zeroing
            // of each frame's partial blocks grew faster than the rows. 64 KiB pages built
            // as fast but made a filtered `runs` read more (docs/performance.md).
            conn.pragma_update(None, "page_size", PAGE_SIZE)
                .map_err(|e| err(in_words(&conn, path, &e)))?;
        }
        let start = Instant::now();
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => IndexError::Busy {
                    db: format!("sqlite:{}", path.display()),
                    waited: start.elapsed().as_secs(),
                },
                code => {
                    let hint = if code == Some(ErrorCode::NotADatabase) {
                        " (is it a SQLite database?)"
                    } else {
                        ""
                    };
                    err(format!("{}{hint}", in_words(&conn, path, &e)))
                }
            })?;
        conn.busy_timeout(Duration::from_millis(200))
            .map_err(|e| err(in_words(&conn, path, &e)))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(in_words(&conn, path, &e)))?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err<'a>(&'a self, op: &str) -> impl FnOnce(rusqlite::Error) -> IndexError + 'a {
        let db = self.describe();
        let op = op.to_string();
        move |e| IndexError::Database {
            db,
            op,
            message: in_words(&self.conn, &self.path, &e),
        }
    }
}

/// SQLite's message, led by the operating system's own words where the file system is to
/// blame: SQLite says "disk I/O error" or "database or disk is full" where the system said
/// "No space left on device", and "attempt to write a readonly database" for a read-only
/// file system or an immutable file.
fn in_words(conn: &Connection, path: &Path, e: &rusqlite::Error) -> String {
    let sqlite = e.to_string();
    let code = e.sqlite_error_code();
    if !matches!(
        code,
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
        )
    ) {
        return sqlite;
    }
    let system = if matches!(
        code,
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
    ) {
        // SQLite fell back to reading when it could not open the file for writing, or
        // could not make its -wal and -shm files beside it (where the number it saved
        // names the side file, "No such file or directory"): ask the system about the
        // database file itself.
        std::fs::OpenOptions::new().append(true).open(path).err()
    } else {
        None
    };
    // SAFETY: the handle is the connection's own, open for as long as `conn` lives, and
    // sqlite3_system_errno only reads the error number SQLite saved on it.
    let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
    let system = system.or(if errno != 0 {
        Some(std::io::Error::from_raw_os_error(errno))
    } else if code == Some(ErrorCode::DiskFull) {
        // A short write, which SQLite reports without an error number; no page limit is
        // ever set on an index, so a full database is a full disk.
        Some(std::io::Error::from_raw_os_error(ENOSPC))
    } else {
        None
    });
    match system {
        Some(os) => format!("{os} (sqlite: {sqlite})"),
        None => sqlite,
    }
}

/// ENOSPC: 28 on Linux, macOS and the BSDs alike.
const ENOSPC: i32 = 28;

/// `$1` → `?1`: the same numbered parameters in SQLite's spelling.
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn read_row(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Vec<Val>> {
    (0..n)
        .map(|i| {
            Ok(match row.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Real(f) => Val::Text(f.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Val::Text(String::from_utf8_lossy(t).into_owned())
                }
            })
        })
        .collect()
}

impl Backend for Sqlite {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn begin_write(&mut self, waiting: &mut dyn FnMut()) -> Result<(), IndexError> {
        let start = Instant::now();
        let mut told = false;
        loop {
            match self.conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => return Ok(()),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
                {
                    if start.elapsed() >= DEFAULT_LOCK_WAIT {
                        return Err(IndexError::Busy {
                            db: self.describe(),
                            waited: start.elapsed().as_secs(),
                        });
                    }
                    if !told {
                        waiting();
                        told = true;
                    }
                }
                Err(e) => return Err(self.err("begin an update")(e)),
            }
        }
    }

    fn begin_read(&mut self) -> Result<(), IndexError> {
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(self.err("begin a read"))
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.err("commit"))
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), IndexError> {
        self.conn
            .execute_batch(&sqlite_sql(sql))
            .map_err(self.err("create the tables"))
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, IndexError> {
        let sql = sqlite_sql(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err(&sql))?;
        stmt.execute(rusqlite::params_from_iter(params.iter()))
            .map(|n| n as u64)
            .map_err(self.err(&sql))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, IndexError> {
        let sql = sqlite_sql(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err(&sql))?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                read_row(r, n)
            })
            .map_err(self.err(&sql))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err(&sql))
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[(&str, ColType)],
        rows: &[Vec<Val>],
    ) -> Result<(), IndexError> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        );
        let err = self.err(&format!("write {table}"));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(err)?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter()))
                .map_err(self.err(&format!("write {table}")))?;
        }
        Ok(())
    }

    fn catalogue_query(&self) -> &'static str {
        super::schema::SQLITE_TABLE_EXISTS
    }

    /// A reader in WAL mode keeps the snapshot it started from, schema included, so an
    /// uncommitted `DROP INDEX` is invisible to it.
    fn defers_indexes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_keep_their_numbers() {
        assert_eq!(
            sqlite_sql("a = $1 AND ($2 IS NULL OR b = $2) AND c = '$x'"),
            "a = ?1 AND (?2 IS NULL OR b = ?2) AND c = '$x'"
        );
    }

    /// The plans of the statements an update runs once per round: each must find its rows
    /// through a key, never by scanning `run_index` (a scan per round is quadratic in the
    /// manifests an update changes).
    #[test]
    fn an_update_looks_rows_up_by_their_keys() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(super::super::schema::CREATE).unwrap();
        for &ix in super::super::schema::RUN_INDEXES {
            conn.execute_batch(&super::super::schema::create_index(ix))
                .unwrap();
        }
        let plan = |sql: &str| -> Vec<String> {
            let sql = sqlite_sql(sql);
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = st.parameter_count();
            let params: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        for n in [1, 2, 500] {
            let steps = plan(&super::super::schema::winners_of(n));
            assert!(
                steps.iter().any(|s| s.starts_with("SEARCH r USING INDEX")),
                "winners_of({n}): {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN r")),
                "winners_of({n}): {steps:?}"
            );
        }
        let steps = plan(&super::super::schema::delete_paths("run_index", 1000));
        assert!(
            steps.iter().all(|s| !s.starts_with("SCAN")),
            "delete_paths: {steps:?}"
        );
    }
}
