//! `status`: the version distribution of HEAD's manifests, what is pending, what is dirty.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::{status, Failure, Status};
use artifact_migrate::git::scan::matches_pathspec;
use artifact_migrate::git::scan::RunPair;
use artifact_migrate::ids::CommitId;

use crate::cli::output::{print_failures, print_path_line, Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

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
    head: CommitId,
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
    /// The artifacts root, as the text names it.
    #[serde(skip)]
    root: String,
    /// Manifests per configured layout, and those that fit none.
    layouts: BTreeMap<String, usize>,
    unplaced: usize,
    /// Runs in the canonical layout and in another one.
    pairs: Vec<RunPair>,
    /// The layout counts in configured order (canonical first), for the text.
    #[serde(skip)]
    layout_order: Vec<(String, usize)>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, recovery) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let head = repo.head_commit()?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let loaded = ctx.registry(&repo, &cfg)?;
    let Status {
        survey: s,
        worktree: state,
    } = status(&repo, &cfg, &loaded.registry, head, &specs, &bars)?;
    let keep = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|p| matches_pathspec(p, &specs))
            .collect()
    };
    let report = StatusReport {
        head,
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
        root: if cfg.artifacts_root.is_empty() {
            ".".to_string()
        } else {
            cfg.artifacts_root.clone()
        },
        layouts: s.layouts.iter().cloned().collect(),
        unplaced: s.unplaced,
        pairs: s.pairs.clone(),
        layout_order: s.layouts.clone(),
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    CommandError::failed_if(args.check && (report.pending > 0 || !report.invalid.is_empty()))
}

fn print_human(out: &mut String, p: Painter, r: &StatusReport) -> fmt::Result {
    writeln!(
        out,
        "HEAD {} ({})",
        p.paint(Style::Commit, r.head.short()),
        r.branch.as_deref().unwrap_or("detached")
    )?;
    writeln!(
        out,
        "{} manifest(s) under {}/, latest schema {}",
        r.total,
        p.paint(Style::Path, &r.root),
        p.paint(Style::Version, &r.latest)
    )?;
    for (v, n) in &r.versions {
        let mark = if *v == r.latest { " (latest)" } else { "" };
        writeln!(out, "  {:>10}  {n}{mark}", p.paint(Style::Version, v))?;
    }
    writeln!(out, "pending: {}", r.pending)?;
    out.push_str(&crate::cli::relocate::layouts_text(
        &r.layout_order,
        r.unplaced,
        &r.pairs,
    ));
    print_failures(out, p, p.paint(Style::Error, "invalid:"), &r.invalid)?;
    let lines = [
        (p.paint(Style::Warning, "dirty:"), &r.dirty, ""),
        (p.paint(Style::Note, "untracked:").plain(), &r.untracked, ""),
        (
            p.paint(Style::Warning, "lagging:"),
            &r.lagging,
            " (changed by hand after an interrupted run; HEAD has the migrated version)",
        ),
    ];
    for (label, paths, rest) in lines {
        for path in paths {
            print_path_line(out, p, &label, path, rest)?;
        }
    }
    Ok(())
}
