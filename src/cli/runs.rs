//! `runs`: the runs answered from the index, brought up to date with HEAD first.

use artifact_migrate::index::{Index, RunFilter, RunRecord};

use std::fmt::{self, Write as _};

use crate::cli::index::{location, update};
use crate::cli::output::{Painter, Style};
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the runs of this job.
    #[arg(long, value_name = "J")]
    pub job: Option<String>,
    /// Only the runs at this schema version.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Only the runs with this status (e.g. succeeded).
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only the runs whose newest history entry batch C wrote (a commit or revision).
    #[arg(long, value_name = "C")]
    pub batch: Option<String>,
    /// The database (as for `index`).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let db = location(ctx, &repo, &cfg, args.db.as_deref())?;
    let last_batch = match &args.batch {
        Some(c) => Some(repo.resolve_commit(c)?.to_string()),
        None => None,
    };
    let r = update(ctx, &repo, &cfg, &db, None, false)?;
    if r.read > 0 || r.removed > 0 {
        ctx.ui.note(format_args!(
            "index brought to {} (read {}, removed {})",
            r.commit.get(..12).unwrap_or(&r.commit),
            r.read,
            r.removed
        ));
    }
    let filter = RunFilter {
        job_id: args.job,
        schema_version: args.version,
        status: args.status,
        last_batch,
    };
    let mut index = Index::open(&db)?;
    let (commit, runs) = index.read(|rd| Ok((rd.state().commit.clone(), rd.all_runs(&filter)?)))?;
    ctx.ui
        .report(&runs, |out, p| print_human(out, p, &commit, &runs))
}

/// A table, one run a row, then the count and the commit it answers for.
fn print_human(out: &mut String, p: Painter, commit: &str, runs: &[RunRecord]) -> fmt::Result {
    let short = |s: &Option<String>| {
        s.as_deref()
            .map(|c| c[..12.min(c.len())].to_string())
            .unwrap_or_else(|| "-".into())
    };
    let header = ["JOB", "RUN", "VERSION", "STATUS", "LAST BATCH", "PATH"];
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            [
                r.job_id.clone(),
                r.run_id.clone(),
                r.schema_version.clone(),
                r.status.clone().unwrap_or_else(|| "-".into()),
                short(&r.last_batch),
                r.path.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String]| -> fmt::Result {
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                write!(out, "{c:<w$}  ")?;
            }
        }
        writeln!(out)
    };
    if !rows.is_empty() {
        line(out, &header.map(String::from))?;
        for r in &rows {
            line(out, r)?;
        }
    }
    writeln!(
        out,
        "{} run(s) at {}",
        runs.len(),
        p.paint(Style::Commit, commit.get(..12).unwrap_or(commit))
    )
}
