//! `index`: bring the SQLite (default) or PostgreSQL index up to a revision; and the
//! refresh `apply`, `rollback`, `repair` and `relocate` run after their commit lands.

use artifact_migrate::config::Config;
use artifact_migrate::git::Repo;
use artifact_migrate::ids::CommitId;
use artifact_migrate::index::{
    follow, refresh_after_commit, DbLocation, Index, IndexError, Refresh, UpdateOptions,
    UpdateReport,
};

use std::fmt::{self, Write as _};

use crate::cli::output::{Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: sqlite:PATH or postgres://USER@HOST:PORT/DB (default: DATABASE_URL, then
    /// index.db of .artifact-migrate.toml, then .git/artifact-migrate/index.sqlite).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Index this revision (default: HEAD).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Start from nothing instead of updating what is indexed.
    #[arg(long)]
    pub rebuild: bool,
}

/// The database this command uses (`--db`, `DATABASE_URL`, `index.db`, the default).
pub fn location(
    ctx: &Ctx,
    repo: &Repo,
    cfg: &Config,
    flag: Option<&str>,
) -> Result<DbLocation, IndexError> {
    let env = std::env::var("DATABASE_URL").ok();
    DbLocation::locate(repo, cfg, flag, &ctx.cwd, env.as_deref())
}

/// Brings the index at `db` to `rev` (HEAD by default).
pub fn update(
    ctx: &Ctx,
    repo: &Repo,
    cfg: &Config,
    db: &DbLocation,
    rev: Option<&str>,
    rebuild: bool,
) -> Result<UpdateReport, CommandError> {
    let (commit, refname) = follow(repo, rev)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let note = |t: &str| ctx.ui.note(t);
    let mut index = Index::open(db)?;
    let opts = UpdateOptions {
        commit,
        refname,
        rebuild,
        progress: &bars,
        note: &note,
    };
    Ok(index.update(repo, cfg, &opts)?)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let db = location(ctx, &repo, &cfg, args.db.as_deref())?;
    let r = update(ctx, &repo, &cfg, &db, args.rev.as_deref(), args.rebuild)?;
    ctx.ui.report(&r, |out, p| print_human(out, p, &r))
}

/// A commit id as the index stores it (full hex), shortened for text.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn print_human(out: &mut String, p: Painter, r: &UpdateReport) -> fmt::Result {
    let how = match (&r.rebuilt, &r.previous) {
        (Some(why), _) => format!("built from nothing ({why})"),
        (None, Some(prev)) if r.mode == "unchanged" => {
            format!("already at {}", p.paint(Style::Commit, short(prev)))
        }
        (None, Some(prev)) => format!(
            "{} update from {}",
            r.mode,
            p.paint(Style::Commit, short(prev))
        ),
        (None, None) => r.mode.to_string(),
    };
    writeln!(
        out,
        "indexed {} ({}) in {}: {how}",
        p.paint(Style::Commit, short(&r.commit)),
        r.refname,
        r.db
    )?;
    writeln!(
        out,
        "  {} run(s), {} invalid, {} legacy duplicate(s), {} batch(es)",
        r.manifests, r.invalid, r.legacy_duplicates, r.batches
    )?;
    writeln!(
        out,
        "  read {}, unchanged {}, removed {}",
        r.read, r.unchanged, r.removed
    )
}

/// After `apply`, `rollback` or `repair` moved `refname` to `commit`: brings an existing
/// index that follows that ref up to date. Never fails the command: a failure is one
/// warning naming the command to run.
pub fn after_commit(ctx: &Ctx, repo: &Repo, cfg: &Config, refname: &str, commit: Option<CommitId>) {
    let Some(commit) = commit else { return };
    let result = location(ctx, repo, cfg, None).and_then(|db| {
        let bars = Bars::new(ctx.ui.progress_enabled());
        let note = |t: &str| ctx.ui.note(t);
        refresh_after_commit(&db, repo, cfg, refname, commit, &bars, &note)
    });
    match result {
        Ok(Refresh::Updated(r)) => ctx.ui.note(format_args!(
            "index {} brought to {} (read {}, removed {})",
            r.db,
            short(&r.commit),
            r.read,
            r.removed
        )),
        Ok(_) => {}
        Err(e) => ctx.ui.late_warning(format_args!(
            "the commit landed, but the index was not brought up to date: {e}; run `artifact-migrate index`"
        )),
    }
}
