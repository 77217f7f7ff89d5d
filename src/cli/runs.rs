//! `runs`: the runs answered from the index, brought up to date with HEAD first.

use artifact_migrate::index::{Index, RunFilter, RunRecord};

use crate::cli::index::{cli_error, location, update};
use crate::cli::output::CliError;
use crate::cli::Ctx;

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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let db = location(ctx, &repo, &cfg, args.db.as_deref())?;
    let last_batch = match &args.batch {
        Some(c) => Some(
            repo.resolve_commit(c)
                .map_err(|e| CliError::usage(format!("--batch: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let r = update(ctx, &repo, &cfg, &db, None, false)?;
    if r.read > 0 || r.removed > 0 {
        ctx.out.note(&format!(
            "index brought to {} (read {}, removed {})",
            &r.commit[..12],
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
    let mut index = Index::open(&db).map_err(cli_error)?;
    let (commit, runs) = index
        .read(|rd| Ok((rd.state().commit.clone(), rd.all_runs(&filter)?)))
        .map_err(cli_error)?;
    ctx.out.report(&runs, |_| human(&commit, &runs))?;
    Ok(0)
}

fn human(commit: &str, runs: &[RunRecord]) -> String {
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
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        l.push('\n');
        l
    };
    let mut t = String::new();
    if !rows.is_empty() {
        t.push_str(&line(&header.map(String::from)));
        for r in &rows {
            t.push_str(&line(r));
        }
    }
    t.push_str(&format!(
        "{} run(s) at {}\n",
        runs.len(),
        &commit[..12.min(commit.len())]
    ));
    t
}
