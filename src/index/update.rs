//! Bringing an index to a commit, in one transaction.
//!
//! The indexed commit's tree is compared with the new one's (`git::diff`, which skips
//! subtrees whose ids are equal) and only the manifests whose blob changed are read. A run
//! claimed by several manifests (the same `(job_id, run_id)`) is indexed from the strongest
//! path ([`extract::rank`]): the run's own canonical place first. A legacy copy of a run
//! indexed from its canonical place goes to `legacy_duplicates`; any other second claimant
//! to `invalid_manifests`, naming the path that holds the run. Those groups are re-resolved
//! whenever one of their members changes, so an incremental update and a rebuild make the
//! same rows.
//!
//! Safety comes from the database: everything happens between one `BEGIN` and one
//! `COMMIT`, so a reader sees the old index or the new one, a SIGKILL leaves the old one,
//! and a second update waits for the first (it holds the write lock) and then starts from
//! what the first committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use git2::Oid;
use rayon::prelude::*;
use serde::Serialize;

use super::backend::{count, Backend, Val};
use super::extract::{extract, rank, Extracted, Key, RunRow};
use super::schema::{self, SCHEMA_VERSION};
use super::{DbLocation, Index, IndexError};
use crate::config::Config;
use crate::engine::log::{log, LogEntry};
use crate::engine::progress::Progress;
use crate::git::diff::tree_changes;
use crate::git::pack_order::PackOrder;
use crate::git::scan::{is_manifest_path, scan_commit};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// What to bring the index to.
pub struct UpdateOptions<'a> {
    /// The commit to index.
    pub commit: CommitId,
    /// The ref the index follows (`refs/heads/main`, `HEAD` when detached, or the revision
    /// as given): the commands that move that ref refresh the index.
    pub refname: String,
    /// Start from nothing.
    pub rebuild: bool,
    pub progress: &'a dyn Progress,
    /// A note for a person (e.g. that the update waits for another one).
    pub note: &'a dyn Fn(&str),
}

/// What an update did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateReport {
    /// The database, password hidden.
    pub db: String,
    /// The commit indexed now.
    pub commit: String,
    pub refname: String,
    /// The commit indexed before (`None` for a new or rebuilt index).
    pub previous: Option<String>,
    /// `full` (from nothing), `incremental` (tree comparison), `rescan` (the indexed commit
    /// is gone from the repository: every path compared by blob id) or `unchanged`.
    pub mode: &'static str,
    /// Why the index was built from nothing, when it was.
    pub rebuilt: Option<String>,
    /// Rows of `run_index`, `invalid_manifests` and `legacy_duplicates` now.
    pub manifests: u64,
    pub invalid: u64,
    pub legacy_duplicates: u64,
    /// Manifest blobs read and parsed.
    pub read: u64,
    /// Manifests kept as they were, without reading them.
    pub unchanged: u64,
    /// Manifests no longer in the tree.
    pub removed: u64,
    /// Rows of `migration_batches` (batches, rollbacks and repairs in history).
    pub batches: u64,
}

/// The commit a revision names and the ref the index then follows: HEAD's branch (or
/// `HEAD` when detached) by default, a branch's full name, or the revision as given.
pub fn follow(repo: &Repo, rev: Option<&str>) -> Result<(CommitId, String), GitError> {
    match rev {
        None => Ok((
            repo.head_commit()?,
            repo.head_branch().unwrap_or_else(|| "HEAD".to_string()),
        )),
        Some(r) => {
            let commit = repo.resolve_commit(r)?;
            let branch = format!("refs/heads/{r}");
            // A branch is followed by its full name; a tag or a commit id as written.
            let refname = if repo.git.find_reference(&branch).is_ok() {
                branch
            } else {
                r.to_string()
            };
            Ok((commit, refname))
        }
    }
}

/// What happened to an existing index after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// `index.update_after_commit = false`.
    Disabled,
    /// There is no index in that database.
    NoIndex,
    /// The index follows another ref than the one that moved.
    OtherRef(String),
    Updated(UpdateReport),
}

/// After a command moved `refname` to `commit`: brings an existing index that follows
/// that ref up to date. Never creates an index.
pub fn refresh_after_commit(
    location: &DbLocation,
    repo: &Repo,
    cfg: &Config,
    refname: &str,
    commit: CommitId,
    progress: &dyn Progress,
    note: &dyn Fn(&str),
) -> Result<Refresh, IndexError> {
    if !cfg.index.update_after_commit {
        return Ok(Refresh::Disabled);
    }
    let Some(mut index) = Index::open_existing(location)? else {
        return Ok(Refresh::NoIndex);
    };
    let follows = index.read(|r| Ok(r.state().refname.clone()))?;
    if follows != refname {
        return Ok(Refresh::OtherRef(follows));
    }
    let opts = UpdateOptions {
        commit,
        refname: refname.to_string(),
        rebuild: false,
        progress,
        note,
    };
    index.update(repo, cfg, &opts).map(Refresh::Updated)
}

/// The rules a row depends on besides the manifest: when they change, the index is rebuilt.
fn settings_of(cfg: &Config) -> String {
    format!(
        "artifacts_root={:?} manifest_name={:?} layouts={:?}",
        cfg.artifacts_root,
        cfg.manifest_name,
        cfg.layouts.describe()
    )
}

/// The batch that wrote a history entry: `(parent, committer time) -> batch commit`, for
/// every migration batch in history (the entry's `base_commit` is the batch's parent, its
/// `applied_at` the batch's committer date).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Bases(BTreeMap<(String, i64), String>);

impl Bases {
    fn add(&mut self, parent: String, date: &str, commit: String) {
        if let Ok(d) = chrono::DateTime::parse_from_rfc3339(date) {
            // The newest first in log order wins a tie (two batches of one parent and date).
            self.0.entry((parent, d.timestamp())).or_insert(commit);
        }
    }

    fn batch_of(&self, entry: &Option<(String, Option<i64>)>) -> Option<String> {
        let (base, at) = entry.as_ref()?;
        self.0.get(&(base.clone(), (*at)?)).cloned()
    }

    fn from_log(repo: &Repo, log: &[LogEntry]) -> Result<Bases, IndexError> {
        let mut b = Bases::default();
        for e in log.iter().filter(|e| e.kind == "migration") {
            if let Some(parent) = parent_of(repo, &e.commit)? {
                b.add(parent, &e.date, e.commit.to_string());
            }
        }
        Ok(b)
    }

    fn load(db: &mut dyn Backend) -> Result<Bases, IndexError> {
        let mut b = Bases::default();
        for row in db.query(schema::BATCH_BASES, &[])? {
            if let (Some(commit), Some(parent), Some(date)) =
                (row[0].text(), row[1].text(), row[2].text())
            {
                b.add(parent, &date, commit);
            }
        }
        Ok(b)
    }
}

fn parent_of(repo: &Repo, commit: &CommitId) -> Result<Option<String>, IndexError> {
    let c = repo
        .git
        .find_commit(commit.0)
        .map_err(GitError::git(format!("read commit {commit}")))?;
    Ok(c.parent_ids().next().map(|p| p.to_string()))
}

/// The state row of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexState {
    pub commit: String,
    pub refname: String,
    pub tool: String,
    pub settings: String,
    pub indexed_at: String,
}

pub(crate) fn read_state(db: &mut dyn Backend) -> Result<Option<IndexState>, IndexError> {
    let rows = db.query(schema::STATE_GET, &[])?;
    Ok(rows.first().map(|r| {
        let t = |i: usize| r.get(i).and_then(Val::text).unwrap_or_default();
        IndexState {
            commit: t(0),
            refname: t(1),
            tool: t(2),
            settings: t(3),
            indexed_at: t(4),
        }
    }))
}

/// The index's schema version (0 when the row is missing); an error for a newer one than
/// this tool knows: its rows would be misread.
pub(crate) fn schema_version(db: &mut dyn Backend) -> Result<i64, IndexError> {
    let found = db
        .query(schema::SCHEMA_VERSION_GET, &[])?
        .first()
        .and_then(|r| r.first())
        .and_then(Val::int)
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(IndexError::NewerSchema {
            db: db.describe(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Makes sure the tables are there, at [`SCHEMA_VERSION`]: creates them, upgrades them, or
/// drops and recreates them. Returns why the index starts from nothing, when it does.
fn prepare_schema(db: &mut dyn Backend, rebuild: bool) -> Result<Option<String>, IndexError> {
    let recreate = |db: &mut dyn Backend| -> Result<(), IndexError> {
        for t in schema::TABLES {
            db.batch(&format!("DROP TABLE IF EXISTS {t}"))?;
        }
        db.batch(schema::CREATE)?;
        for &ix in schema::RUN_INDEXES {
            db.batch(&schema::create_index(ix))?;
        }
        db.execute(schema::SCHEMA_VERSION_INIT, &[Val::Int(SCHEMA_VERSION)])?;
        Ok(())
    };
    if !db.table_exists(schema::SCHEMA_TABLE)? {
        if !rebuild {
            for t in schema::TABLES {
                if db.table_exists(t)? {
                    return Err(IndexError::Foreign {
                        db: db.describe(),
                        table: t.to_string(),
                    });
                }
            }
        }
        recreate(db)?;
        return Ok(Some(if rebuild {
            "--rebuild".to_string()
        } else {
            "a new index".to_string()
        }));
    }
    if rebuild {
        recreate(db)?;
        return Ok(Some("--rebuild".to_string()));
    }
    let found = schema_version(db)?;
    let mut v = found;
    while v < SCHEMA_VERSION {
        match schema::UPGRADES.iter().find(|(from, _)| *from == v) {
            Some((_, sql)) => {
                db.batch(sql)?;
                v += 1;
            }
            None => {
                recreate(db)?;
                return Ok(Some(format!(
                    "the index had schema {found}, this artifact-migrate writes {SCHEMA_VERSION}"
                )));
            }
        }
    }
    if found != SCHEMA_VERSION {
        db.execute(schema::SCHEMA_VERSION_SET, &[Val::Int(SCHEMA_VERSION)])?;
    }
    Ok(None)
}

/// One manifest path whose blob differs between the indexed tree and the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    path: String,
    /// The blob and mode in the new tree; `None` when the path is gone.
    new: Option<(Oid, i32)>,
}

const SYMLINK: i32 = 0o120000;

/// Every manifest of a commit, as additions.
fn all_of(repo: &Repo, commit: CommitId, cfg: &Config) -> Result<Vec<Change>, IndexError> {
    let scan = scan_commit(repo, commit, cfg)?;
    let mut out: Vec<Change> = scan
        .manifests
        .into_iter()
        .map(|m| Change {
            path: m.path.to_string(),
            new: Some((m.blob, m.mode)),
        })
        .collect();
    if !scan.symlinks.is_empty() {
        let tree = repo.tree_of(commit)?;
        for link in scan.symlinks {
            let entry = tree
                .get_path(std::path::Path::new(link.as_str()))
                .map_err(GitError::git(format!("read {link}")))?;
            out.push(Change {
                path: link.to_string(),
                new: Some((entry.id(), SYMLINK)),
            });
        }
    }
    Ok(out)
}

/// The manifest paths that differ between two commits' trees.
fn diff_of(
    repo: &Repo,
    old: CommitId,
    new: CommitId,
    cfg: &Config,
) -> Result<Vec<Change>, IndexError> {
    let mut by_path: BTreeMap<String, Option<(Oid, i32)>> = BTreeMap::new();
    for c in tree_changes(repo, Some(old), new)? {
        if !is_manifest_path(&c.path, cfg) {
            continue;
        }
        let file = matches!(c.new_mode, 0o100644 | 0o100755 | SYMLINK);
        let now = (!c.new_id.is_zero() && file && c.status != git2::Delta::Deleted)
            .then_some((c.new_id, c.new_mode));
        // A type change comes as a deletion and an addition of one path.
        let slot = by_path.entry(c.path).or_insert(None);
        if now.is_some() {
            *slot = now;
        }
    }
    Ok(by_path
        .into_iter()
        .map(|(path, new)| Change { path, new })
        .collect())
}

/// Every path whose blob differs from what the index holds (when the indexed commit is no
/// longer in the repository: history rewritten and collected).
fn rescan_of(
    db: &mut dyn Backend,
    repo: &Repo,
    commit: CommitId,
    cfg: &Config,
) -> Result<Vec<Change>, IndexError> {
    let held: HashMap<String, String> = db
        .query(schema::ALL_PATHS, &[])?
        .into_iter()
        .filter_map(|r| Some((r.first()?.text()?, r.get(1)?.text()?)))
        .collect();
    let now = all_of(repo, commit, cfg)?;
    let present: HashSet<&str> = now.iter().map(|c| c.path.as_str()).collect();
    let mut out: Vec<Change> = held
        .keys()
        .filter(|p| !present.contains(p.as_str()))
        .map(|p| Change {
            path: p.clone(),
            new: None,
        })
        .collect();
    out.extend(
        now.iter()
            .filter(|c| {
                let blob = c.new.map(|(id, _)| id.to_string());
                held.get(&c.path) != blob.as_ref()
            })
            .cloned(),
    );
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl Index {
    /// Brings the index to `opts.commit` (creating the tables on first use), in one
    /// transaction.
    pub fn update(
        &mut self,
        repo: &Repo,
        cfg: &Config,
        opts: &UpdateOptions<'_>,
    ) -> Result<UpdateReport, IndexError> {
        // History is read from git before the database is locked.
        let log = log(repo, opts.commit)?;
        let bases = Bases::from_log(repo, &log)?;
        let db = self.db.as_mut();
        if !opts.rebuild {
            if let Some(report) = already_there(db, cfg, opts, &log)? {
                return Ok(report);
            }
        }
        let desc = db.describe();
        db.begin_write(&mut || {
            (opts.note)(&format!("waiting for another update of {desc} to finish"))
        })?;
        crate::fault::point("index-locked");
        match update_locked(db, repo, cfg, opts, &log, &bases) {
            Ok(report) => {
                crate::fault::point("index-before-commit");
                db.commit()?;
                Ok(report)
            }
            Err(e) => {
                db.rollback();
                Err(e)
            }
        }
    }
}

/// The report of an index that already holds `opts.commit` with these settings, read
/// without taking the write lock: a reader of an up-to-date index (`runs`, the server)
/// writes nothing, so it also works where the database cannot be written.
fn already_there(
    db: &mut dyn Backend,
    cfg: &Config,
    opts: &UpdateOptions<'_>,
    log: &[LogEntry],
) -> Result<Option<UpdateReport>, IndexError> {
    db.begin_read()?;
    let found = (|| {
        if !db.table_exists(schema::SCHEMA_TABLE)? || schema_version(db)? != SCHEMA_VERSION {
            return Ok(None);
        }
        let Some(state) = read_state(db)? else {
            return Ok(None);
        };
        if state.commit != opts.commit.to_string()
            || state.refname != opts.refname
            || state.settings != settings_of(cfg)
        {
            return Ok(None);
        }
        let (manifests, invalid, legacy) = row_counts(db)?;
        Ok(Some(UpdateReport {
            db: db.describe(),
            commit: state.commit.clone(),
            refname: state.refname,
            previous: Some(state.commit),
            mode: "unchanged",
            rebuilt: None,
            manifests,
            invalid,
            legacy_duplicates: legacy,
            read: 0,
            unchanged: manifests + invalid + legacy,
            removed: 0,
            batches: log.len() as u64,
        }))
    })();
    db.rollback();
    found
}

/// The runs, invalid manifests and legacy duplicates the index holds.
fn row_counts(db: &mut dyn Backend) -> Result<(u64, u64, u64), IndexError> {
    Ok((
        count(db, schema::COUNT_RUNS)?,
        count(db, schema::COUNT_INVALID)?,
        count(db, schema::COUNT_LEGACY)?,
    ))
}

fn update_locked(
    db: &mut dyn Backend,
    repo: &Repo,
    cfg: &Config,
    opts: &UpdateOptions<'_>,
    log: &[LogEntry],
    bases: &Bases,
) -> Result<UpdateReport, IndexError> {
    let mut rebuilt = prepare_schema(db, opts.rebuild)?;
    let created = rebuilt.is_some();
    let settings = settings_of(cfg);
    let state = if rebuilt.is_some() {
        None
    } else {
        read_state(db)?
    };
    let previous = state.as_ref().map(|s| s.commit.clone());
    if let Some(s) = &state {
        if s.settings != settings {
            rebuilt = Some(format!(
                "the settings changed (was {}, now {settings})",
                s.settings
            ));
        }
    }
    if rebuilt.is_none() && state.is_none() {
        rebuilt = Some("the index held no commit".to_string());
    }
    let full = rebuilt.is_some();
    if full && !created {
        for t in schema::DATA_TABLES {
            db.execute(&format!("DELETE FROM {t}"), &[])?;
        }
    }
    let old_bases = if full {
        Bases::default()
    } else {
        Bases::load(db)?
    };
    write_batches(db, repo, log)?;
    let old_commit = state
        .as_ref()
        .filter(|_| !full)
        .and_then(|s| Oid::from_str(&s.commit).ok())
        .map(CommitId);
    opts.progress.start("compare trees", 0);
    let (mode, changes) = match old_commit {
        None => ("full", all_of(repo, opts.commit, cfg)?),
        Some(old) if old == opts.commit => ("unchanged", Vec::new()),
        Some(old) if repo.git.find_commit(old.0).is_ok() => {
            ("incremental", diff_of(repo, old, opts.commit, cfg)?)
        }
        Some(_) => ("rescan", rescan_of(db, repo, opts.commit, cfg)?),
    };
    opts.progress.finish();
    // A build that writes most of the rows (every full one; an update after a batch of the
    // whole corpus) makes the secondary indexes after them: in tables this transaction
    // created (no reader can see them), or where the backend lets readers keep the old
    // ones. Nothing below reads them before they are made again.
    let defer = !changes.is_empty()
        && (created
            || db.defers_indexes()
                && (full || 2 * changes.len() as u64 >= count(db, schema::COUNT_RUNS)?));
    if defer {
        for &(name, _) in schema::RUN_INDEXES {
            db.batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }
    let indexed_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut apply = Apply {
        db: &mut *db,
        repo,
        cfg,
        bases,
        empty: full,
        indexed_at: indexed_at.clone(),
        winners: HashMap::new(),
        losers: HashMap::new(),
        orphaned: HashSet::new(),
        claimed: HashSet::new(),
        read: 0,
    };
    apply.run(&changes, opts.progress)?;
    let read = apply.read;
    if defer {
        opts.progress.start("create indexes", 0);
        for &ix in schema::RUN_INDEXES {
            db.batch(&schema::create_index(ix))?;
        }
        opts.progress.finish();
    }
    if !full {
        relink(db, &old_bases, bases)?;
    }
    db.execute(schema::STATE_CLEAR, &[])?;
    db.execute(
        schema::STATE_SET,
        &[
            Val::from(opts.commit.to_string()),
            Val::from(&opts.refname),
            Val::from(crate::engine::tool_name()),
            Val::from(settings),
            Val::from(indexed_at),
        ],
    )?;
    let (manifests, invalid, legacy) = row_counts(db)?;
    let written = changes.iter().filter(|c| c.new.is_some()).count() as u64;
    let removed = changes.iter().filter(|c| c.new.is_none()).count() as u64;
    Ok(UpdateReport {
        db: db.describe(),
        commit: opts.commit.to_string(),
        refname: opts.refname.clone(),
        previous: if full { None } else { previous },
        mode,
        rebuilt,
        manifests,
        invalid,
        legacy_duplicates: legacy,
        read,
        unchanged: (manifests + invalid + legacy).saturating_sub(written),
        removed,
        batches: log.len() as u64,
    })
}

/// Replaces `migration_batches` and `batch_steps` with history as `log` reads it (a few
/// rows per batch: cheaper to rewrite than to compare).
fn write_batches(db: &mut dyn Backend, repo: &Repo, log: &[LogEntry]) -> Result<(), IndexError> {
    db.execute("DELETE FROM batch_steps", &[])?;
    db.execute("DELETE FROM migration_batches", &[])?;
    let mut batches = Vec::with_capacity(log.len());
    let mut steps = Vec::new();
    for (i, e) in log.iter().enumerate() {
        let parent = if e.kind == "migration" {
            parent_of(repo, &e.commit)?
        } else {
            None
        };
        batches.push(vec![
            Val::from(&e.commit),
            Val::from(i),
            Val::from(e.kind),
            Val::from(&e.date),
            Val::from(&e.author),
            Val::from(&e.subject),
            Val::from(e.target.clone()),
            e.manifests.map_or(Val::Null, Val::from),
            Val::from(e.rolled_back_by),
            Val::from(e.rollback_of.clone()),
            Val::from(parent),
        ]);
        // One row per (from, to): a repeated trailer would break the key, so counts add up.
        let mut grouped: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for s in &e.steps {
            *grouped.entry((&s.from, &s.to)).or_insert(0) += s.count;
        }
        for ((from, to), count) in grouped {
            steps.push(vec![
                Val::from(&e.commit),
                Val::from(from),
                Val::from(to),
                Val::from(count),
            ]);
        }
    }
    db.insert_rows("migration_batches", schema::BATCH_COLUMNS, &batches)?;
    db.insert_rows("batch_steps", schema::STEP_COLUMNS, &steps)?;
    Ok(())
}

/// Keeps `last_batch` of rows that did not change true when history did: rows of a batch
/// that is gone or replaced follow the batch that now has their entry's base and date, and
/// rows of no batch pick up a batch that appeared for their entry.
fn relink(db: &mut dyn Backend, old: &Bases, new: &Bases) -> Result<(), IndexError> {
    for (key, commit) in &old.0 {
        match new.0.get(key) {
            Some(c) if c == commit => {}
            Some(c) => {
                db.execute(schema::RELINK_BATCH, &[Val::from(c), Val::from(commit)])?;
            }
            None => {
                db.execute(schema::UNLINK_BATCH, &[Val::from(commit)])?;
            }
        }
    }
    for (key, commit) in &new.0 {
        if old.0.contains_key(key) {
            continue;
        }
        let rows = db.query(
            schema::UNLINKED_MENTIONING,
            &[Val::from(format!("%{}%", key.0))],
        )?;
        for row in rows {
            let (Some(path), Some(text)) = (row[0].text(), row[1].text()) else {
                continue;
            };
            let entry = match extract(&path, "", text.as_bytes(), &Config::default()) {
                Extracted::Run(r) => r.last_entry,
                Extracted::Invalid { .. } => None,
            };
            if entry
                .as_ref()
                .is_some_and(|(b, at)| *b == key.0 && *at == Some(key.1))
            {
                db.execute(schema::LINK_BATCH_AT, &[Val::from(commit), Val::from(path)])?;
            }
        }
    }
    Ok(())
}

/// A manifest that holds a run (or claims one another manifest holds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    path: String,
    blob: String,
}

/// Manifests per round of reading.
const ROUND: usize = 4096;

/// The work of one update on the rows: deletions, reads, and the groups of claimants.
struct Apply<'a> {
    db: &'a mut dyn Backend,
    repo: &'a Repo,
    cfg: &'a Config,
    bases: &'a Bases,
    /// The tables were empty when the update started (nothing to delete or look up).
    empty: bool,
    indexed_at: String,
    /// The holder of each run this update wrote or looked up.
    winners: HashMap<Key, Holder>,
    /// Every other claimant of a run, as far as known.
    losers: HashMap<Key, Vec<Holder>>,
    /// Runs whose holder's path changed or went.
    orphaned: HashSet<Key>,
    /// Runs claimed by a manifest this update read.
    claimed: HashSet<Key>,
    read: u64,
}

impl Apply<'_> {
    fn run(&mut self, changes: &[Change], progress: &dyn Progress) -> Result<(), IndexError> {
        if !self.empty {
            self.delete(changes)?;
        }
        let new: Vec<(&str, Oid, i32)> = changes
            .iter()
            .filter_map(|c| c.new.map(|(id, mode)| (c.path.as_str(), id, mode)))
            .collect();
        progress.start("index", new.len() as u64);
        // The blobs are read on a thread of their own (its own libgit2 handle), one round
        // ahead of the rows this thread writes: reading and writing took about the same time
        // and ran one after the other. Each round is read in pack order (docs/performance.md).
        let mut places = PackOrder::read(self.repo.git_dir()).of(new.iter().map(|n| n.1));
        let reader = self.repo.reopen()?;
        let new = &new;
        std::thread::scope(|s| -> Result<(), IndexError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            s.spawn(move || {
                for round in new.chunks(ROUND) {
                    let blobs = places.read(round, |&(path, id, mode)| {
                        if mode == SYMLINK {
                            Ok(Vec::new())
                        } else {
                            reader.blob(id, path)
                        }
                    });
                    let failed = blobs.is_err();
                    // A closed channel: the writer stopped at an error of its own.
                    if tx.send(blobs).is_err() || failed {
                        break;
                    }
                }
            });
            for round in new.chunks(ROUND) {
                // The reader sends every round or stops after sending its error, so the
                // channel closes early only if it panicked (which the scope passes on).
                let Ok(blobs) = rx.recv() else { break };
                self.round(round, blobs?)?;
                progress.inc(round.len() as u64);
            }
            Ok(())
        })?;
        progress.finish();
        self.resolve_groups()
    }

    /// Removes every row at a changed path; remembers which runs lost their holder.
    fn delete(&mut self, changes: &[Change]) -> Result<(), IndexError> {
        let changed: HashSet<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        for row in self.db.query(schema::ALL_LOSERS, &[])? {
            let t = |i: usize| row.get(i).and_then(Val::text).unwrap_or_default();
            if changed.contains(t(0).as_str()) {
                continue;
            }
            let key = Key {
                job_id: t(2),
                run_id: t(3),
            };
            self.losers.entry(key).or_default().push(Holder {
                path: t(0),
                blob: t(1),
            });
        }
        let paths: Vec<Val> = changes.iter().map(|c| Val::from(&c.path)).collect();
        for chunk in paths.chunks(schema::MAX_PARAMS) {
            for row in self
                .db
                .query(&schema::delete_paths("run_index", chunk.len()), chunk)?
            {
                let t = |i: usize| row.get(i).and_then(Val::text).unwrap_or_default();
                self.orphaned.insert(Key {
                    job_id: t(0),
                    run_id: t(1),
                });
            }
            for table in ["invalid_manifests", "legacy_duplicates"] {
                self.db
                    .execute(&schema::delete_paths(table, chunk.len()), chunk)?;
            }
        }
        Ok(())
    }

    /// Looks up the holders of runs not known yet.
    fn lookup(&mut self, keys: &[Key]) -> Result<(), IndexError> {
        if self.empty {
            return Ok(());
        }
        let unknown: Vec<&Key> = keys
            .iter()
            .filter(|k| !self.winners.contains_key(k))
            .collect();
        for chunk in unknown.chunks(schema::MAX_PARAMS / 2) {
            let params: Vec<Val> = chunk
                .iter()
                .flat_map(|k| [Val::from(&k.job_id), Val::from(&k.run_id)])
                .collect();
            for row in self.db.query(&schema::winners_of(chunk.len()), &params)? {
                let t = |i: usize| row.get(i).and_then(Val::text).unwrap_or_default();
                self.winners.insert(
                    Key {
                        job_id: t(0),
                        run_id: t(1),
                    },
                    Holder {
                        path: t(2),
                        blob: t(3),
                    },
                );
            }
        }
        Ok(())
    }

    /// Writes what one round of manifests holds (`blobs`: their bytes, in the round's order;
    /// a symbolic link's are not read).
    fn round(&mut self, round: &[(&str, Oid, i32)], blobs: Vec<Vec<u8>>) -> Result<(), IndexError> {
        let blobs: Vec<Option<Vec<u8>>> = round
            .iter()
            .zip(blobs)
            .map(|(&(_, _, mode), b)| (mode != SYMLINK).then_some(b))
            .collect();
        self.read += blobs.iter().filter(|b| b.is_some()).count() as u64;
        let cfg = self.cfg;
        let extracted: Vec<Extracted> = round
            .par_iter()
            .zip(blobs.par_iter())
            .map(|(&(path, id, _), bytes)| match bytes {
                Some(b) => extract(path, &id.to_string(), b, cfg),
                None => {
                    let e = crate::engine::migrate::ManifestError::Symlink;
                    Extracted::Invalid {
                        kind: e.kind().to_string(),
                        error: e.to_string(),
                    }
                }
            })
            .collect();
        drop(blobs);
        let mut invalid_rows = Vec::new();
        let mut by_key: BTreeMap<Key, Vec<RunRow>> = BTreeMap::new();
        for (&(path, id, _), x) in round.iter().zip(extracted) {
            match x {
                Extracted::Run(row) => by_key.entry(row.key.clone()).or_default().push(*row),
                Extracted::Invalid { kind, error } => invalid_rows.push(vec![
                    Val::from(path),
                    Val::from(id.to_string()),
                    Val::from(kind),
                    Val::from(error),
                    Val::Null,
                    Val::Null,
                ]),
            }
        }
        let keys: Vec<Key> = by_key.keys().cloned().collect();
        self.lookup(&keys)?;
        let mut run_rows = Vec::with_capacity(round.len());
        for (key, mut rows) in by_key {
            rows.sort_by(|a, b| rank(self.cfg, &key, &a.path).cmp(&rank(self.cfg, &key, &b.path)));
            let mut rows = rows.into_iter();
            let Some(best) = rows.next() else { continue };
            let others: Vec<Holder> = rows
                .map(|r| Holder {
                    path: r.path,
                    blob: r.blob_id,
                })
                .collect();
            // Only runs with several claimants get an entry here (and in `claimed`): an entry
            // per run was a third copy of every key at a million manifests.
            if !others.is_empty() {
                self.losers.entry(key.clone()).or_default().extend(others);
            }
            let holder = Holder {
                path: best.path.clone(),
                blob: best.blob_id.clone(),
            };
            match self.winners.get(&key).cloned() {
                Some(w) if rank(self.cfg, &key, &w.path) < rank(self.cfg, &key, &best.path) => {
                    self.losers.entry(key.clone()).or_default().push(holder);
                }
                Some(w) => {
                    self.db
                        .execute(schema::DELETE_RUN_AT, &[Val::from(&w.path)])?;
                    self.losers.entry(key.clone()).or_default().push(w);
                    self.winners.insert(key.clone(), holder);
                    run_rows.push(self.row_values(&best));
                }
                None => {
                    self.winners.insert(key.clone(), holder);
                    run_rows.push(self.row_values(&best));
                }
            }
            // A run matters to `resolve_groups` only once it has another claimant; a later
            // round that adds one claims the run again.
            if self.losers.get(&key).is_some_and(|l| !l.is_empty()) {
                self.claimed.insert(key);
            }
        }
        self.db
            .insert_rows("run_index", schema::RUN_COLUMNS, &run_rows)?;
        self.db
            .insert_rows("invalid_manifests", schema::INVALID_COLUMNS, &invalid_rows)?;
        Ok(())
    }

    fn row_values(&self, r: &RunRow) -> Vec<Val> {
        vec![
            Val::from(&r.key.job_id),
            Val::from(&r.key.run_id),
            Val::from(r.job_ref.clone()),
            Val::from(r.job_type.clone()),
            Val::from(r.status.clone()),
            Val::from(r.inputs_hash.clone()),
            Val::from(&r.artifact_dir),
            Val::from(&r.manifest_json),
            Val::from(&self.indexed_at),
            Val::from(&r.schema_version),
            Val::from(&r.path),
            Val::from(&r.blob_id),
            Val::from(self.bases.batch_of(&r.last_entry)),
        ]
    }

    /// Settles every run with several claimants that this update touched: the strongest
    /// holds it, the others are (re)written as legacy duplicates or invalid, naming it.
    fn resolve_groups(&mut self) -> Result<(), IndexError> {
        let keys: BTreeSet<Key> = self
            .losers
            .iter()
            .filter(|(k, l)| {
                !l.is_empty() && (self.orphaned.contains(*k) || self.claimed.contains(*k))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let keys: Vec<Key> = keys.into_iter().collect();
        self.lookup(&keys)?;
        let mut legacy_rows = Vec::new();
        let mut invalid_rows = Vec::new();
        let mut run_rows = Vec::new();
        let mut stale: Vec<Val> = Vec::new();
        for key in keys {
            let mut group = self.losers.remove(&key).unwrap_or_default();
            let winner = self.winners.get(&key).cloned();
            let Some(best) = group
                .iter()
                .chain(winner.iter())
                .min_by(|a, b| rank(self.cfg, &key, &a.path).cmp(&rank(self.cfg, &key, &b.path)))
                .cloned()
            else {
                continue;
            };
            if winner.as_ref() != Some(&best) {
                if let Some(w) = winner {
                    self.db
                        .execute(schema::DELETE_RUN_AT, &[Val::from(&w.path)])?;
                    group.push(w);
                }
                run_rows.push(self.promote(&key, &best)?);
                stale.push(Val::from(&best.path));
                self.winners.insert(key.clone(), best.clone());
            }
            group.retain(|h| *h != best);
            group.sort_by(|a, b| a.path.cmp(&b.path));
            group.dedup();
            let best_rank = rank(self.cfg, &key, &best.path).0;
            for h in group {
                stale.push(Val::from(&h.path));
                if best_rank == 0 && rank(self.cfg, &key, &h.path).0 == 1 {
                    legacy_rows.push(vec![
                        Val::from(&h.path),
                        Val::from(&h.blob),
                        Val::from(&key.job_id),
                        Val::from(&key.run_id),
                        Val::from(&best.path),
                    ]);
                } else {
                    invalid_rows.push(vec![
                        Val::from(&h.path),
                        Val::from(&h.blob),
                        Val::from("duplicate"),
                        Val::from(format!(
                            "claims run {} of job {}, which is indexed from {}: give one of them its own run_id, or remove one",
                            key.run_id, key.job_id, best.path
                        )),
                        Val::from(&key.job_id),
                        Val::from(&key.run_id),
                    ]);
                }
            }
        }
        for chunk in stale.chunks(schema::MAX_PARAMS) {
            for table in ["invalid_manifests", "legacy_duplicates"] {
                self.db
                    .execute(&schema::delete_paths(table, chunk.len()), chunk)?;
            }
        }
        self.db
            .insert_rows("run_index", schema::RUN_COLUMNS, &run_rows)?;
        self.db
            .insert_rows("legacy_duplicates", schema::LEGACY_COLUMNS, &legacy_rows)?;
        self.db
            .insert_rows("invalid_manifests", schema::INVALID_COLUMNS, &invalid_rows)?;
        Ok(())
    }

    /// The row of a claimant that now holds its run (read again from its blob).
    fn promote(&mut self, key: &Key, h: &Holder) -> Result<Vec<Val>, IndexError> {
        let inconsistent = |message: String| IndexError::Inconsistent {
            path: h.path.clone(),
            blob: h.blob.clone(),
            message,
        };
        let id = Oid::from_str(&h.blob).map_err(|e| inconsistent(e.to_string()))?;
        let bytes = self.repo.blob(id, &h.path)?;
        self.read += 1;
        match extract(&h.path, &h.blob, &bytes, self.cfg) {
            Extracted::Run(row) if row.key == *key => Ok(self.row_values(&row)),
            _ => Err(inconsistent(format!(
                "that blob no longer reads as run {} of job {}",
                key.run_id, key.job_id
            ))),
        }
    }
}
