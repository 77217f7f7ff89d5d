//! `apply`: migrate and commit the batch as one commit.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::{apply, ApplyOptions, Failure, PlanOptions};
use artifact_migrate::ids::CommitId;
use artifact_migrate::schema::Version;

use crate::cli::output::{print_skipped, Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{parse_version, CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Target schema version (default: the latest).
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub to: Option<Version>,
    /// Commit the manifests that succeeded even if some failed (still exits 1).
    #[arg(long)]
    pub keep_going: bool,
    /// Commit to this branch (created from HEAD if missing); the working tree is touched only if it is checked out.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// The commit's subject line (the body and trailers stay).
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,
    #[command(flatten)]
    pub sign: crate::cli::SignArgs,
    /// Limit to these files or directories.
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ApplyReportJson {
    commit: Option<CommitId>,
    branch: String,
    target: Version,
    migrated: usize,
    already_current: usize,
    failed: Vec<Failure>,
    /// Working-tree files left alone because they changed during the run.
    skipped: Vec<String>,
    /// Manifests that would have migrated had none failed (text only).
    #[serde(skip)]
    would_migrate: usize,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let opts = ApplyOptions {
        plan: PlanOptions {
            target: args.to,
            pathspecs: specs,
            branch: args.branch,
        },
        keep_going: args.keep_going,
        message: args.message,
        sign: args.sign.mode(),
    };
    let loaded = ctx.registry(&repo, &cfg)?;
    let r = apply(&repo, &cfg, &loaded.registry, &opts, &bars)?;
    let report = ApplyReportJson {
        commit: r.commit,
        branch: r.target_ref.refname.clone(),
        target: r.target,
        migrated: if r.commit.is_some() { r.migrated } else { 0 },
        already_current: r.already_current,
        failed: r.failed,
        skipped: r.worktree.map(|w| w.skipped).unwrap_or_default(),
        would_migrate: r.migrated,
    };
    ctx.ui.failures(&report.failed);
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    crate::cli::index::after_commit(ctx, &repo, &cfg, &report.branch, r.commit);
    CommandError::failed_if(!report.failed.is_empty())
}

fn print_human(out: &mut String, p: Painter, r: &ApplyReportJson) -> fmt::Result {
    match &r.commit {
        Some(c) => {
            write!(
                out,
                "committed {} on {}: {} manifest(s) migrated to {}, {} already current",
                p.paint(Style::Commit, c.short()),
                r.branch,
                r.migrated,
                p.paint(Style::Version, r.target),
                r.already_current
            )?;
            if !r.failed.is_empty() {
                write!(out, ", {} failed and left unchanged", r.failed.len())?;
            }
            writeln!(out)?;
        }
        None if !r.failed.is_empty() => writeln!(
            out,
            "nothing committed: {} manifest(s) failed ({} would have migrated); fix them, narrow the pathspec, or use --keep-going",
            r.failed.len(),
            r.would_migrate
        )?,
        None => writeln!(
            out,
            "nothing to migrate: {} manifest(s) already at {}",
            r.already_current,
            p.paint(Style::Version, r.target)
        )?,
    }
    print_skipped(out, p, &r.skipped, "migrated")
}
