//! `index`: bring the SQLite (default) or PostgreSQL index up to a revision; and the
//! refresh `apply`, `rollback` and `repair` run after their commit lands.

use artifact_migrate::config::Config;
use artifact_migrate::git::Repo;
use artifact_migrate::ids::CommitId;
use artifact_migrate::index::{
    follow, refresh_after_commit, DbLocation, Index, IndexError, Refresh, UpdateOptions,
    UpdateReport,
};

use crate::cli::output::{CliError, ErrorKind};
use crate::cli::progress::Bars;
use crate::cli::Ctx;

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

/// An index error as the CLI reports it: the kind decides the exit code.
pub fn cli_error(e: IndexError) -> anyhow::Error {
    let kind = match &e {
        IndexError::Git(_) | IndexError::History(_) => return e.into(),
        IndexError::BadUrl(_) => ErrorKind::Usage,
        IndexError::Busy { .. } | IndexError::NewerSchema { .. } | IndexError::Foreign { .. } => {
            ErrorKind::Refused
        }
        _ => ErrorKind::Environment,
    };
    let path = match &e {
        IndexError::Inconsistent { path, .. } => Some(path.clone()),
        _ => None,
    };
    CliError {
        kind,
        message: e.to_string(),
        path,
    }
    .into()
}

/// The database this command uses (`--db`, `DATABASE_URL`, `index.db`, the default).
pub fn location(
    ctx: &Ctx,
    repo: &Repo,
    cfg: &Config,
    flag: Option<&str>,
) -> anyhow::Result<DbLocation> {
    let env = std::env::var("DATABASE_URL").ok();
    DbLocation::locate(repo, cfg, flag, &ctx.cwd, env.as_deref()).map_err(cli_error)
}

/// Brings the index at `db` to `rev` (HEAD by default).
pub fn update(
    ctx: &Ctx,
    repo: &Repo,
    cfg: &Config,
    db: &DbLocation,
    rev: Option<&str>,
    rebuild: bool,
) -> anyhow::Result<UpdateReport> {
    let (commit, refname) = follow(repo, rev)?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let note = |t: &str| ctx.out.note(t);
    let mut index = Index::open(db).map_err(cli_error)?;
    let opts = UpdateOptions {
        commit,
        refname,
        rebuild,
        progress: &bars,
        note: &note,
    };
    index.update(repo, cfg, &opts).map_err(cli_error)
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let db = location(ctx, &repo, &cfg, args.db.as_deref())?;
    let r = update(ctx, &repo, &cfg, &db, args.rev.as_deref(), args.rebuild)?;
    ctx.out.report(&r, |_| human(&r))?;
    Ok(0)
}

fn human(r: &UpdateReport) -> String {
    let how = match (&r.rebuilt, &r.previous) {
        (Some(why), _) => format!("built from nothing ({why})"),
        (None, Some(p)) if r.mode == "unchanged" => format!("already at {}", &p[..12.min(p.len())]),
        (None, Some(p)) => format!("{} update from {}", r.mode, &p[..12.min(p.len())]),
        (None, None) => r.mode.to_string(),
    };
    format!(
        "indexed {} ({}) in {}: {how}\n  {} run(s), {} invalid, {} legacy duplicate(s), {} batch(es)\n  read {}, unchanged {}, removed {}\n",
        &r.commit[..12],
        r.refname,
        r.db,
        r.manifests,
        r.invalid,
        r.legacy_duplicates,
        r.batches,
        r.read,
        r.unchanged,
        r.removed
    )
}

/// After `apply`, `rollback` or `repair` moved `refname` to `commit`: brings an existing
/// index that follows that ref up to date. Never fails the command: a failure is one
/// warning naming the command to run.
pub fn after_commit(ctx: &Ctx, repo: &Repo, cfg: &Config, refname: &str, commit: Option<CommitId>) {
    let Some(commit) = commit else { return };
    let result = location(ctx, repo, cfg, None).and_then(|db| {
        let bars = Bars::new(ctx.out.progress_enabled());
        let note = |t: &str| ctx.out.note(t);
        refresh_after_commit(&db, repo, cfg, refname, commit, &bars, &note)
            .map_err(|e| anyhow::anyhow!("{e}"))
    });
    match result {
        Ok(Refresh::Updated(r)) => ctx.out.note(&format!(
            "index {} brought to {} (read {}, removed {})",
            r.db,
            &r.commit[..12],
            r.read,
            r.removed
        )),
        Ok(_) => {}
        Err(e) => eprintln!(
            "{} the commit landed, but the index was not brought up to date: {e:#}; run `artifact-migrate index`",
            ctx.out.paint("warning:", "33")
        ),
    }
}
