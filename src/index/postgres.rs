//! The PostgreSQL backend (the synchronous `postgres` crate; see docs/design.md for why):
//! the same tables and statements as SQLite. An update holds a transaction-scoped advisory
//! lock, so two updates of one database run one after the other; readers use a
//! `REPEATABLE READ` snapshot and never wait.

use std::str::FromStr;
use std::time::Duration;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::backend::{Backend, ColType, Val};
use super::{redact, IndexError, DEFAULT_LOCK_WAIT};

/// The advisory lock every update of an index takes ("am_index" in ASCII).
const LOCK_KEY: i64 = 0x616d_5f69_6e64_6578;

/// A connection to a PostgreSQL index.
pub struct Postgres {
    client: Client,
    url: String,
    in_tx: bool,
}

impl Postgres {
    /// Connects (plain TCP or a Unix socket; TLS is not supported yet: see docs/design.md).
    pub fn connect(url: &str) -> Result<Postgres, IndexError> {
        let err = |message: String| IndexError::Open {
            db: redact(url),
            message,
        };
        let mut config = postgres::Config::from_str(url).map_err(|e| err(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("artifact-migrate");
        }
        let client = config.connect(NoTls).map_err(|e| err(e.to_string()))?;
        Ok(Postgres {
            client,
            url: url.to_string(),
            in_tx: false,
        })
    }

    fn err(&self, op: &str) -> impl FnOnce(postgres::Error) -> IndexError {
        let db = self.describe();
        let op = op.to_string();
        move |e| IndexError::Database {
            db,
            op,
            message: match e.as_db_error() {
                Some(d) => d.message().to_string(),
                None => e.to_string(),
            },
        }
    }

    fn simple(&mut self, sql: &str, op: &str) -> Result<(), IndexError> {
        let r = self.client.batch_execute(sql);
        r.map_err(self.err(op))
    }
}

/// A value as the parameter type the statement wants.
fn bind(v: &Val, ty: &Type) -> Box<dyn ToSql + Sync> {
    let int = |i: i64| -> Box<dyn ToSql + Sync> {
        match *ty {
            Type::INT4 => Box::new(i32::try_from(i).unwrap_or(i32::MAX)),
            Type::INT2 => Box::new(i16::try_from(i).unwrap_or(i16::MAX)),
            _ => Box::new(i),
        }
    };
    match v {
        Val::Int(i) => match *ty {
            Type::TEXT | Type::VARCHAR => Box::new(i.to_string()),
            _ => int(*i),
        },
        Val::Text(s) => Box::new(s.clone()),
        Val::Null => match *ty {
            Type::INT8 => Box::new(None::<i64>),
            Type::INT4 => Box::new(None::<i32>),
            Type::INT2 => Box::new(None::<i16>),
            _ => Box::new(None::<String>),
        },
    }
}

/// Every value of a statement as the type of its parameter (or column).
fn bind_all(values: &[Val], types: &[Type]) -> Vec<Box<dyn ToSql + Sync>> {
    values.iter().zip(types).map(|(v, t)| bind(v, t)).collect()
}

fn refs(bound: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    bound.iter().map(|b| b.as_ref()).collect()
}

fn read_value(row: &postgres::Row, i: usize) -> Result<Val, postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Val::Null, Val::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Val::Null, |v| Val::Int(v.into())),
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Val::Null, Val::Text),
    })
}

impl Backend for Postgres {
    fn describe(&self) -> String {
        redact(&self.url)
    }

    fn begin_write(&mut self, waiting: &mut dyn FnMut()) -> Result<(), IndexError> {
        self.simple("BEGIN", "begin an update")?;
        self.in_tx = true;
        let got = self
            .client
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_KEY])
            .and_then(|r| r.try_get::<_, bool>(0));
        let got = got.map_err(self.err("lock the index"));
        if !got.inspect_err(|_| self.rollback())? {
            waiting();
            let ms = DEFAULT_LOCK_WAIT.as_millis();
            let r = self
                .client
                .batch_execute(&format!("SET LOCAL lock_timeout = {ms}"))
                .and_then(|()| {
                    self.client
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                });
            if let Err(e) = r {
                let busy = e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE);
                let e = self.err("lock the index")(e);
                self.rollback();
                return Err(if busy {
                    IndexError::Busy {
                        db: self.describe(),
                        waited: DEFAULT_LOCK_WAIT.as_secs(),
                    }
                } else {
                    e
                });
            }
            self.simple("SET LOCAL lock_timeout = 0", "lock the index")?;
        }
        Ok(())
    }

    fn begin_read(&mut self) -> Result<(), IndexError> {
        self.simple(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            "begin a read",
        )?;
        self.in_tx = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        self.in_tx = false;
        self.simple("COMMIT", "commit")
    }

    fn rollback(&mut self) {
        if self.in_tx {
            self.in_tx = false;
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), IndexError> {
        self.simple(sql, "create the tables")
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, IndexError> {
        let stmt = self.client.prepare(sql).map_err(self.err(sql))?;
        let bound = bind_all(params, stmt.params());
        let r = self.client.execute(&stmt, &refs(&bound));
        r.map_err(self.err(sql))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, IndexError> {
        let stmt = self.client.prepare(sql).map_err(self.err(sql))?;
        let bound = bind_all(params, stmt.params());
        let rows = self.client.query(&stmt, &refs(&bound));
        let rows = rows.map_err(self.err(sql))?;
        let out: Result<Vec<Vec<Val>>, postgres::Error> = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| read_value(r, i)).collect())
            .collect();
        out.map_err(self.err(sql))
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[(&str, ColType)],
        rows: &[Vec<Val>],
    ) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let types: Vec<Type> = columns
            .iter()
            .map(|(_, t)| match t {
                ColType::Text => Type::TEXT,
                ColType::Int => Type::INT8,
            })
            .collect();
        let op = format!("write {table}");
        let db = self.describe();
        let err = |e: postgres::Error| IndexError::Database {
            db: db.clone(),
            op: op.clone(),
            message: match e.as_db_error() {
                Some(d) => d.message().to_string(),
                None => e.to_string(),
            },
        };
        let sql = format!("COPY {table} ({}) FROM STDIN BINARY", names.join(", "));
        let writer = self.client.copy_in(&sql).map_err(err)?;
        let mut w = BinaryCopyInWriter::new(writer, &types);
        for row in rows {
            w.write(&refs(&bind_all(row, &types))).map_err(err)?;
        }
        w.finish().map_err(err)?;
        Ok(())
    }

    fn catalogue_query(&self) -> &'static str {
        super::schema::POSTGRES_TABLE_EXISTS
    }

    /// `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the table until the commit: every
    /// reader (the server's requests) would wait for the whole build, and the build for
    /// every open reader. Updates keep the indexes here.
    fn defers_indexes(&self) -> bool {
        false
    }
}
