//! `status`: the version distribution of HEAD's manifests, what is pending, what is dirty.

use std::collections::BTreeMap;

use serde::Serialize;

use artifact_migrate::engine::{survey, Failure, Progress};
use artifact_migrate::git::scan::RunPair;
use artifact_migrate::git::worktree::manifest_state;

use crate::cli::progress::Bars;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit 1 when any manifest is behind the latest version or invalid (for CI gates).
    #[arg(long)]
    pub check: bool,
    /// Limit to these files or directories.
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    head: String,
    branch: Option<String>,
    latest: String,
    total: usize,
    versions: BTreeMap<String, usize>,
    pending: usize,
    invalid: Vec<Failure>,
    dirty: Vec<String>,
    untracked: Vec<String>,
    /// Working-tree files that lag HEAD after an interrupted run because they were changed by hand.
    lagging: Vec<String>,
    /// Manifests per configured layout, and those that fit none.
    layouts: BTreeMap<String, usize>,
    unplaced: usize,
    /// Runs in the canonical layout and in another one.
    pairs: Vec<RunPair>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, recovery) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let head = repo.head_commit()?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let loaded = ctx.registry(&repo, &cfg)?;
    let s = survey(&repo, &cfg, &loaded.registry, head, &specs, &bars)?;
    bars.start("working tree", 0);
    let state = manifest_state(&repo, &cfg, &s.manifests, |p| {
        artifact_migrate::git::scan::matches_pathspec(p, &specs)
    })?;
    bars.finish();
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|p| artifact_migrate::git::scan::matches_pathspec(p, &specs))
            .collect()
    };
    let report = StatusReport {
        head: head.to_string(),
        branch: repo
            .head_branch()
            .map(|b| b.trim_start_matches("refs/heads/").to_string()),
        latest: s.latest.to_string(),
        total: s.total,
        versions: s
            .versions
            .iter()
            .map(|(v, n)| (v.to_string(), *n))
            .collect(),
        pending: s.pending,
        invalid: s.invalid,
        dirty: keep(state.dirty),
        untracked: keep(state.untracked),
        lagging: recovery.into_iter().flat_map(|r| r.skipped).collect(),
        layouts: s.layouts.iter().cloned().collect(),
        unplaced: s.unplaced,
        pairs: s.pairs.clone(),
    };
    ctx.out.report(&report, |o| {
        let mut t = format!(
            "HEAD {} ({})\n{} manifest(s) under {}/, latest schema {}\n",
            &report.head[..12],
            report.branch.as_deref().unwrap_or("detached"),
            report.total,
            if cfg.artifacts_root.is_empty() { "." } else { &cfg.artifacts_root },
            report.latest
        );
        for (v, n) in &report.versions {
            let mark = if *v == report.latest { " (latest)" } else { "" };
            t.push_str(&format!("  {v:>10}  {n}{mark}\n"));
        }
        t.push_str(&format!("pending: {}\n", report.pending));
        t.push_str(&crate::cli::relocate::layouts_text(&s.layouts, report.unplaced, &report.pairs));
        for f in &report.invalid {
            t.push_str(&format!("{} {}: {}\n", o.paint("invalid:", "31"), f.path, f.error));
        }
        for p in &report.dirty {
            t.push_str(&format!("{} {p}\n", o.paint("dirty:", "33")));
        }
        for p in &report.untracked {
            t.push_str(&format!("untracked: {p}\n"));
        }
        for p in &report.lagging {
            t.push_str(&format!("{} {p} (changed by hand after an interrupted run; HEAD has the migrated version)\n", o.paint("lagging:", "33")));
        }
        t
    })?;
    Ok(
        if args.check && (report.pending > 0 || !report.invalid.is_empty()) {
            1
        } else {
            0
        },
    )
}
