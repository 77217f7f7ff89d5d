//! The tables of the index and every statement on them, written once for both backends
//! (standard SQL with `$N` placeholders; `"commit"` is quoted because SQLite reserves the
//! word). docs/formats.md documents each table for people who query it directly.
//!
//! The schema has a version (`index_schema.version`). An index of an older version is
//! upgraded by the steps in [`UPGRADES`] when there are steps for it, else dropped and
//! rebuilt from git (it is a cache); an index of a newer version is refused, never misread.

use super::backend::ColType;

/// The version of the tables and of what their rows mean. Bump it (and add an upgrade step
/// or let older indexes rebuild) whenever a table, a column or the way a row is derived
/// from a manifest changes.
pub const SCHEMA_VERSION: i64 = 1;

/// The table that says an index is ours and which version it is.
pub const SCHEMA_TABLE: &str = "index_schema";

/// Upgrade steps: `(from, sql)` takes an index of version `from` to `from + 1`. Empty:
/// version 1 is the first.
pub const UPGRADES: &[(i64, &str)] = &[];

/// Every table, in the order they are dropped for a rebuild.
pub const TABLES: &[&str] = &[
    "batch_steps",
    "migration_batches",
    "legacy_duplicates",
    "invalid_manifests",
    "run_index",
    "index_state",
    "index_schema",
];

/// The secondary indexes of `run_index`: `(name, what it indexes)`. [`CREATE`] leaves them
/// out; they are made after it, and a full build drops them first and makes them again
/// after its rows are in (see [`create_index`]).
pub const RUN_INDEXES: &[(&str, &str)] = &[
    ("run_index_by_version", "run_index (schema_version)"),
    ("run_index_by_batch", "run_index (last_batch)"),
    ("run_index_by_run", "run_index (run_id)"),
];

/// The statement that makes one of [`RUN_INDEXES`]. A full build inserts every row before
/// it makes these: one sort per index instead of an insertion per row at a random place,
/// which at a million manifests pushed `run_id`'s pages out of SQLite's page cache on
/// nearly every row (docs/performance.md).
pub fn create_index((name, on): (&str, &str)) -> String {
    format!("CREATE INDEX {name} ON {on}")
}

/// Creates version [`SCHEMA_VERSION`] of the tables (and then [`RUN_INDEXES`]).
pub const CREATE: &str = r#"
CREATE TABLE index_schema (version BIGINT NOT NULL);
CREATE TABLE index_state (
    "commit" TEXT NOT NULL,
    refname TEXT NOT NULL,
    tool TEXT NOT NULL,
    settings TEXT NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE run_index (
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job_ref TEXT,
    job_type TEXT,
    status TEXT,
    inputs_hash TEXT,
    artifact_dir TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    schema_version TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    blob_id TEXT NOT NULL,
    last_batch TEXT,
    PRIMARY KEY (job_id, run_id)
);
CREATE TABLE invalid_manifests (
    path TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    error TEXT NOT NULL,
    job_id TEXT,
    run_id TEXT
);
CREATE TABLE legacy_duplicates (
    path TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    canonical_path TEXT NOT NULL
);
CREATE TABLE migration_batches (
    "commit" TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL,
    date TEXT NOT NULL,
    author TEXT NOT NULL,
    subject TEXT NOT NULL,
    target TEXT,
    manifests BIGINT,
    rolled_back_by TEXT,
    rollback_of TEXT,
    parent TEXT
);
CREATE TABLE batch_steps (
    "commit" TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY ("commit", from_version, to_version)
);
"#;

use ColType::{Int, Text};

/// The columns of `run_index`, in the order rows are written.
pub const RUN_COLUMNS: &[(&str, ColType)] = &[
    ("job_id", Text),
    ("run_id", Text),
    ("job_ref", Text),
    ("job_type", Text),
    ("status", Text),
    ("inputs_hash", Text),
    ("artifact_dir", Text),
    ("manifest_json", Text),
    ("indexed_at", Text),
    ("schema_version", Text),
    ("path", Text),
    ("blob_id", Text),
    ("last_batch", Text),
];

pub const INVALID_COLUMNS: &[(&str, ColType)] = &[
    ("path", Text),
    ("blob_id", Text),
    ("kind", Text),
    ("error", Text),
    ("job_id", Text),
    ("run_id", Text),
];

pub const LEGACY_COLUMNS: &[(&str, ColType)] = &[
    ("path", Text),
    ("blob_id", Text),
    ("job_id", Text),
    ("run_id", Text),
    ("canonical_path", Text),
];

pub const BATCH_COLUMNS: &[(&str, ColType)] = &[
    ("\"commit\"", Text),
    ("position", Int),
    ("kind", Text),
    ("date", Text),
    ("author", Text),
    ("subject", Text),
    ("target", Text),
    ("manifests", Int),
    ("rolled_back_by", Text),
    ("rollback_of", Text),
    ("parent", Text),
];

pub const STEP_COLUMNS: &[(&str, ColType)] = &[
    ("\"commit\"", Text),
    ("from_version", Text),
    ("to_version", Text),
    ("count", Int),
];

/// The one place the dialects must differ: where each keeps its list of tables.
pub const SQLITE_TABLE_EXISTS: &str =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";
pub const POSTGRES_TABLE_EXISTS: &str = "SELECT 1 FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_name = $1";

pub const SCHEMA_VERSION_GET: &str = "SELECT version FROM index_schema";
pub const SCHEMA_VERSION_SET: &str = "UPDATE index_schema SET version = $1";
pub const SCHEMA_VERSION_INIT: &str = "INSERT INTO index_schema (version) VALUES ($1)";

pub const STATE_GET: &str =
    r#"SELECT "commit", refname, tool, settings, indexed_at FROM index_state"#;
pub const STATE_CLEAR: &str = "DELETE FROM index_state";
pub const STATE_SET: &str = r#"INSERT INTO index_state ("commit", refname, tool, settings, indexed_at) VALUES ($1, $2, $3, $4, $5)"#;

/// Emptied for a rebuild, in this order.
pub const DATA_TABLES: &[&str] = &[
    "batch_steps",
    "migration_batches",
    "legacy_duplicates",
    "invalid_manifests",
    "run_index",
];

/// Every path the index knows with its blob (the fallback comparison when the indexed
/// commit is gone from the repository).
pub const ALL_PATHS: &str = "SELECT path, blob_id FROM run_index \
     UNION ALL SELECT path, blob_id FROM invalid_manifests \
     UNION ALL SELECT path, blob_id FROM legacy_duplicates";

/// Every manifest that claims a run another one holds: `(path, blob_id, job_id, run_id)`.
pub const ALL_LOSERS: &str =
    "SELECT path, blob_id, job_id, run_id FROM invalid_manifests WHERE job_id IS NOT NULL \
     UNION ALL SELECT path, blob_id, job_id, run_id FROM legacy_duplicates";

/// `DELETE FROM <table> WHERE path IN ($1, ..., $n)`, with `RETURNING job_id, run_id` for
/// `run_index`.
pub fn delete_paths(table: &str, n: usize) -> String {
    let returning = if table == "run_index" {
        " RETURNING job_id, run_id"
    } else {
        ""
    };
    format!(
        "DELETE FROM {table} WHERE path IN ({}){returning}",
        placeholders(1, n)
    )
}

/// The indexed run of each of `n` keys: `(job_id, run_id, path, blob_id)`; parameters are
/// `job_id, run_id` pairs.
pub fn winners_of(n: usize) -> String {
    // A join on a VALUES list (its columns are column1, column2 in both dialects). SQLite
    // plans a row-value IN (VALUES ...) as a scan of the table, and (3.54) a plain JOIN as
    // one too, with a Bloom filter on the list: a whole-table scan per 500 keys, which made
    // an update after a batch of the whole corpus quadratic. CROSS JOIN is SQLite's way to
    // fix the loop order (the list outside, key lookups inside); PostgreSQL plans it as any
    // inner join.
    let values: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "(CAST(${} AS TEXT), CAST(${} AS TEXT))",
                2 * i + 1,
                2 * i + 2
            )
        })
        .collect();
    format!(
        "SELECT r.job_id, r.run_id, r.path, r.blob_id FROM (VALUES {}) AS k \
         CROSS JOIN run_index r WHERE r.job_id = k.column1 AND r.run_id = k.column2",
        values.join(", ")
    )
}

/// `$from, $from+1, ...` (`n` of them).
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most this many parameters per statement (SQLite's limit is 32766, PostgreSQL's 65535).
pub const MAX_PARAMS: usize = 1000;

pub const DELETE_RUN_AT: &str = "DELETE FROM run_index WHERE path = $1";

/// Re-links rows to the batch that now owns their history entry's base.
pub const RELINK_BATCH: &str = "UPDATE run_index SET last_batch = $1 WHERE last_batch = $2";
pub const UNLINK_BATCH: &str = "UPDATE run_index SET last_batch = NULL WHERE last_batch = $1";
/// Rows with no batch whose text mentions a commit (checked by parsing before relinking).
pub const UNLINKED_MENTIONING: &str = "SELECT path, manifest_json FROM run_index \
     WHERE last_batch IS NULL AND manifest_json LIKE $1";
pub const LINK_BATCH_AT: &str = "UPDATE run_index SET last_batch = $1 WHERE path = $2";

pub const BATCH_BASES: &str =
    r#"SELECT "commit", parent, date FROM migration_batches WHERE kind = 'migration'"#;

pub const COUNT_RUNS: &str = "SELECT count(*) FROM run_index";
pub const COUNT_INVALID: &str = "SELECT count(*) FROM invalid_manifests";
pub const COUNT_LEGACY: &str = "SELECT count(*) FROM legacy_duplicates";

// The read side (query.rs).

pub const VERSION_COUNTS: &str =
    "SELECT schema_version, count(*) FROM run_index GROUP BY schema_version ORDER BY schema_version";

/// The columns of a run summary, in [`query::RunRecord`](super::query::RunRecord) order.
pub const RUN_FIELDS: &str = "job_id, run_id, job_ref, job_type, status, inputs_hash, \
     artifact_dir, schema_version, path, blob_id, last_batch, indexed_at";

/// Runs matching the filters given (`column = $n` each), in `(job_id, run_id)` order, after
/// a cursor when `after`, at most `$last` rows. Only the filters given are in the text, so
/// each database can use its indexes (the primary key for a job's runs).
pub fn runs_filtered(columns: &[&str], after: bool) -> String {
    let mut conds: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    let mut n = columns.len();
    if after {
        conds.push(format!("(job_id, run_id) > (${}, ${})", n + 1, n + 2));
        n += 2;
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    format!(
        "SELECT {RUN_FIELDS} FROM run_index{filter} ORDER BY job_id, run_id LIMIT ${}",
        n + 1
    )
}

pub fn run_by_key() -> String {
    format!("SELECT {RUN_FIELDS}, manifest_json FROM run_index WHERE job_id = $1 AND run_id = $2")
}

pub fn runs_by_run_id() -> String {
    format!("SELECT {RUN_FIELDS} FROM run_index WHERE run_id = $1 ORDER BY job_id")
}

/// The manifests the index holds no version for (invalid ones and legacy duplicates):
/// `(path, blob_id)`, by path.
pub const UNVERSIONED_ALL: &str = "SELECT path, blob_id FROM invalid_manifests \
     UNION ALL SELECT path, blob_id FROM legacy_duplicates ORDER BY path";

pub const INVALID_ALL: &str =
    "SELECT path, blob_id, kind, error FROM invalid_manifests ORDER BY path";

pub const BATCHES_ALL: &str = r#"SELECT "commit", kind, date, author, subject, target, manifests, rolled_back_by, rollback_of FROM migration_batches ORDER BY position"#;
pub const BATCH_ONE: &str = r#"SELECT "commit", kind, date, author, subject, target, manifests, rolled_back_by, rollback_of FROM migration_batches WHERE "commit" = $1"#;
pub const STEPS_ALL: &str = r#"SELECT "commit", from_version, to_version, count FROM batch_steps ORDER BY "commit", from_version, to_version"#;
pub const STEPS_OF: &str = r#"SELECT "commit", from_version, to_version, count FROM batch_steps WHERE "commit" = $1 ORDER BY from_version, to_version"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_parameters_in_order() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert!(delete_paths("run_index", 2)
            .ends_with("WHERE path IN ($1, $2) RETURNING job_id, run_id"));
        assert!(winners_of(2).contains("(CAST($3 AS TEXT), CAST($4 AS TEXT))"));
        let q = runs_filtered(&["job_id", "status"], true);
        assert!(
            q.ends_with(
                "WHERE job_id = $1 AND status = $2 AND (job_id, run_id) > ($3, $4) ORDER BY job_id, run_id LIMIT $5"
            ),
            "{q}"
        );
        assert!(
            runs_filtered(&[], false).ends_with("FROM run_index ORDER BY job_id, run_id LIMIT $1")
        );
    }
}
