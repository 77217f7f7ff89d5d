//! `rollback`: revert a migration batch as one commit.

use serde::Serialize;

use artifact_migrate::engine::rollback::{rollback, RollbackOptions};

use crate::cli::progress::Bars;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The batch to roll back (default: the newest on the branch that is not rolled back yet).
    #[arg(value_name = "COMMIT")]
    pub commit: Option<String>,
    /// Work on this branch instead of HEAD's; the working tree is touched only if it is checked out.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
}

#[derive(Debug, Serialize)]
struct RollbackJson {
    commit: String,
    branch: String,
    reverted: String,
    restored: usize,
    paths: Vec<String>,
    skipped: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let r = rollback(
        &repo,
        &cfg,
        &RollbackOptions {
            commit: args.commit,
            branch: args.branch,
        },
        &bars,
    )?;
    let report = RollbackJson {
        commit: r.commit.to_string(),
        branch: r.target_ref.refname.clone(),
        reverted: r.reverted.to_string(),
        restored: r.restored.len(),
        paths: r.restored.iter().map(|p| p.to_string()).collect(),
        skipped: r.worktree.map(|w| w.skipped).unwrap_or_default(),
    };
    ctx.out.report(&report, |o| {
        let mut t = format!(
            "committed {} on {}: rolled back batch {}, {} manifest(s) restored byte for byte\n",
            &report.commit[..12],
            report.branch,
            &report.reverted[..12],
            report.restored
        );
        for p in &report.skipped {
            t.push_str(&format!("{} {p} changed during the run and was left as it is; HEAD has the restored version\n", o.paint("warning:", "33")));
        }
        t
    })?;
    crate::cli::index::after_commit(ctx, &repo, &cfg, &report.branch, Some(r.commit));
    Ok(0)
}
