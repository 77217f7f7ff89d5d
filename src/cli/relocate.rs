//! `relocate`: move runs from a legacy layout into the canonical one, as one commit.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::relocate::{relocate, RelocateOptions, RunMove};
use artifact_migrate::engine::Failure;
use artifact_migrate::git::scan::RunPair;
use artifact_migrate::ids::CommitId;

use crate::cli::output::{print_skipped, print_would_commit, Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would move, with every check relocate runs; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Commit to this branch (created from HEAD if missing); the working tree is touched only if it is checked out.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    #[command(flatten)]
    pub sign: crate::cli::SignArgs,
    /// Limit to these run directories (or directories above them).
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RelocateJson<'a> {
    commit: Option<CommitId>,
    branch: String,
    dry_run: bool,
    layout: &'a str,
    relocated: usize,
    moves: &'a [RunMove],
    failed: &'a [Failure],
    message: String,
    /// Working-tree files left alone because they changed during the run.
    skipped: Vec<String>,
    /// The commit the relocation is built on (text only).
    #[serde(skip)]
    base: CommitId,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let opts = RelocateOptions {
        pathspecs: specs,
        branch: args.branch,
        dry_run: args.dry_run,
        sign: args.sign.mode(),
    };
    let r = relocate(&repo, &cfg, &opts, &bars)?;
    let report = RelocateJson {
        commit: r.commit,
        branch: r.target_ref.refname.clone(),
        dry_run: args.dry_run,
        layout: &r.layout,
        relocated: if r.commit.is_some() { r.moves.len() } else { 0 },
        moves: &r.moves,
        failed: &r.failed,
        message: r.message.render(),
        skipped: r.worktree.clone().map(|w| w.skipped).unwrap_or_default(),
        base: r.target_ref.base,
    };
    ctx.ui.failures(report.failed);
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    crate::cli::index::after_commit(ctx, &repo, &cfg, &report.branch, r.commit);
    CommandError::failed_if(!report.failed.is_empty())
}

fn print_human(out: &mut String, p: Painter, r: &RelocateJson<'_>) -> fmt::Result {
    if r.moves.is_empty() && r.failed.is_empty() {
        return writeln!(
            out,
            "nothing to relocate: every run is in the canonical layout {}",
            r.layout
        );
    }
    let verb = if r.commit.is_some() {
        "moved"
    } else {
        "would move"
    };
    for m in r.moves {
        let job = match m.job_from.as_str() {
            "job_id" => String::new(),
            from => format!("; job_id from {from}"),
        };
        let there = if m.already_there {
            "; already there, identical: only the legacy copy goes"
        } else {
            ""
        };
        writeln!(
            out,
            "{verb} {} -> {} ({} file(s){job}{there})",
            p.paint(Style::Path, &m.from),
            p.paint(Style::Path, &m.to),
            m.files
        )?;
    }
    match &r.commit {
        Some(c) => writeln!(
            out,
            "committed {} on {}: {} run(s) relocated to {}; each old place is now a symbolic link to the new one",
            p.paint(Style::Commit, c.short()),
            r.branch,
            r.relocated,
            r.layout
        )?,
        None if !r.failed.is_empty() => writeln!(
            out,
            "nothing committed: {} run(s) cannot move as they are ({} could); fix them or narrow the pathspec",
            r.failed.len(),
            r.moves.len()
        )?,
        None => print_would_commit(out, p, "relocate", &r.branch, &r.base, &r.message)?,
    }
    print_skipped(out, p, &r.skipped, "relocated")
}

/// The layout lines of `status` and `plan`: nothing while every manifest is in the canonical
/// layout; else the count per layout, what fits none, and each run in two layouts.
pub fn layouts_text(layouts: &[(String, usize)], unplaced: usize, pairs: &[RunPair]) -> String {
    let mut t = String::new();
    let others: usize = layouts.iter().skip(1).map(|(_, n)| n).sum();
    if others > 0 || unplaced > 0 {
        let counts: Vec<String> = layouts.iter().map(|(l, n)| format!("{n} in {l}")).collect();
        let canonical = layouts.first().map(|(l, _)| l.as_str()).unwrap_or_default();
        t.push_str(&format!("layouts: {}", counts.join(", ")));
        if unplaced > 0 {
            t.push_str(&format!(
                ", {unplaced} in none (verify names the places expected)"
            ));
        }
        if others > 0 {
            t.push_str(&format!(
                "; `artifact-migrate relocate` moves runs to {canonical}"
            ));
        }
        t.push('\n');
    }
    t.push_str(&pairs_text(pairs));
    t
}

/// One line per run found in two layouts.
pub fn pairs_text(pairs: &[RunPair]) -> String {
    pairs
        .iter()
        .map(|p| {
            format!(
                "in both layouts: run {}: {} (canonical) and {} ({}{})\n",
                p.run_id,
                p.canonical,
                p.other,
                p.other_layout,
                if p.same_content {
                    ", same content"
                } else {
                    ", different content"
                }
            )
        })
        .collect()
}
