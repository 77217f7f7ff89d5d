//! `rollback`: revert a migration batch as one commit.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::rollback::{rollback, RollbackOptions};
use artifact_migrate::ids::CommitId;

use crate::cli::output::{print_skipped, Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The batch to roll back (default: the newest on the branch that is not rolled back yet).
    #[arg(value_name = "COMMIT")]
    pub commit: Option<String>,
    /// Work on this branch instead of HEAD's; the working tree is touched only if it is checked out.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    #[command(flatten)]
    pub sign: crate::cli::SignArgs,
}

#[derive(Debug, Serialize)]
struct RollbackJson {
    commit: CommitId,
    branch: String,
    reverted: CommitId,
    restored: usize,
    paths: Vec<String>,
    skipped: Vec<String>,
    /// For a relocation: the runs moved back to their old place.
    #[serde(skip_serializing_if = "Option::is_none")]
    relocated: Option<usize>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let r = rollback(
        &repo,
        &cfg,
        &RollbackOptions {
            commit: args.commit,
            branch: args.branch,
            sign: args.sign.mode(),
        },
        &bars,
    )?;
    let report = RollbackJson {
        commit: r.commit,
        branch: r.target_ref.refname.clone(),
        reverted: r.reverted,
        restored: r.restored.len(),
        paths: r.restored.iter().map(|p| p.to_string()).collect(),
        skipped: r.worktree.map(|w| w.skipped).unwrap_or_default(),
        relocated: r.relocated,
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    crate::cli::index::after_commit(ctx, &repo, &cfg, &report.branch, Some(r.commit));
    Ok(())
}

fn print_human(out: &mut String, p: Painter, r: &RollbackJson) -> fmt::Result {
    let (what, moved) = match r.relocated {
        Some(n) => (
            "relocation",
            format!("{n} run(s) back in their old place, "),
        ),
        None => ("batch", String::new()),
    };
    let restored = if r.relocated.is_some() {
        "path(s)"
    } else {
        "manifest(s)"
    };
    writeln!(
        out,
        "committed {} on {}: rolled back {what} {}, {moved}{} {restored} restored byte for byte",
        p.paint(Style::Commit, r.commit.short()),
        r.branch,
        p.paint(Style::Commit, r.reverted.short()),
        r.restored
    )?;
    print_skipped(out, p, &r.skipped, "restored")
}
