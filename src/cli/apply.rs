//! `apply`: migrate and commit the batch as one commit.

use serde::Serialize;

use artifact_migrate::engine::registry::uncommitted_definitions;
use artifact_migrate::engine::{apply, ApplyOptions, EngineError, Failure, PlanOptions};
use artifact_migrate::schema::Version;

use crate::cli::progress::Bars;
use crate::cli::{parse_version, Ctx};

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
    /// Limit to these files or directories.
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ApplyReportJson {
    commit: Option<String>,
    branch: String,
    target: String,
    migrated: usize,
    already_current: usize,
    failed: Vec<Failure>,
    /// Working-tree files left alone because they changed during the run.
    skipped: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let opts = ApplyOptions {
        plan: PlanOptions {
            target: args.to,
            pathspecs: specs,
            branch: args.branch,
        },
        keep_going: args.keep_going,
        message: args.message,
    };
    let loaded = ctx.registry(&repo, &cfg)?;
    let dirty_defs = uncommitted_definitions(&repo)?;
    if !dirty_defs.is_empty() {
        return Err(EngineError::UncommittedDefinitions(dirty_defs).into());
    }
    let r = apply(&repo, &cfg, &loaded.registry, &opts, &bars)?;
    let report = ApplyReportJson {
        commit: r.commit.map(|c| c.to_string()),
        branch: r.target_ref.refname.clone(),
        target: r.target.to_string(),
        migrated: if r.commit.is_some() { r.migrated } else { 0 },
        already_current: r.already_current,
        failed: r.failed.clone(),
        skipped: r.worktree.map(|w| w.skipped).unwrap_or_default(),
    };
    let would = r.migrated;
    ctx.out.failures(&report.failed);
    ctx.out.report(&report, |o| {
        let mut t = String::new();
        match &report.commit {
            Some(c) => {
                t.push_str(&format!(
                    "committed {} on {}: {} manifest(s) migrated to {}, {} already current",
                    &c[..12],
                    report.branch,
                    report.migrated,
                    report.target,
                    report.already_current
                ));
                if !report.failed.is_empty() {
                    t.push_str(&format!(", {} failed and left unchanged", report.failed.len()));
                }
                t.push('\n');
            }
            None if !report.failed.is_empty() => t.push_str(&format!(
                "nothing committed: {} manifest(s) failed ({} would have migrated); fix them, narrow the pathspec, or use --keep-going\n",
                report.failed.len(),
                would
            )),
            None => t.push_str(&format!("nothing to migrate: {} manifest(s) already at {}\n", report.already_current, report.target)),
        }
        for p in &report.skipped {
            t.push_str(&format!("{} {p} changed during the run and was left as it is; HEAD has the migrated version\n", o.paint("warning:", "33")));
        }
        t
    })?;
    crate::cli::index::after_commit(ctx, &repo, &cfg, &report.branch, r.commit);
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}
