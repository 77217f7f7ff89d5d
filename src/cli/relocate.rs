//! `relocate`: move runs from a legacy layout into the canonical one, as one commit.

use serde::Serialize;

use artifact_migrate::engine::relocate::{relocate, RelocateError, RelocateOptions, RunMove};
use artifact_migrate::engine::Failure;
use artifact_migrate::git::scan::RunPair;

use crate::cli::progress::Bars;
use crate::cli::{CliError, Ctx, ErrorKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would move, with every check relocate runs; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Commit to this branch (created from HEAD if missing); the working tree is touched only if it is checked out.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Limit to these run directories (or directories above them).
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RelocateJson<'a> {
    commit: Option<String>,
    branch: String,
    dry_run: bool,
    layout: &'a str,
    relocated: usize,
    moves: &'a [RunMove],
    failed: &'a [Failure],
    message: String,
    /// Working-tree files left alone because they changed during the run.
    skipped: Vec<String>,
}

/// A refusal exits 3 (§9); the library's other errors keep their own kinds.
fn classified(e: RelocateError) -> anyhow::Error {
    match e {
        RelocateError::Git(e) => e.into(),
        RelocateError::Engine(e) => e.into(),
        RelocateError::Taken(ref t) => CliError {
            kind: ErrorKind::Refused,
            path: t.first().map(|t| t.canonical.clone()),
            message: e.to_string(),
        }
        .into(),
        RelocateError::DirtyRuns { ref paths } => CliError {
            kind: ErrorKind::Refused,
            path: paths.first().cloned(),
            message: e.to_string(),
        }
        .into(),
        RelocateError::NotARename { ref path, .. } => {
            CliError::environment(e.to_string(), Some(path.clone())).into()
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let opts = RelocateOptions {
        pathspecs: specs,
        branch: args.branch,
        dry_run: args.dry_run,
    };
    let r = relocate(&repo, &cfg, &opts, &bars).map_err(classified)?;
    let report = RelocateJson {
        commit: r.commit.map(|c| c.to_string()),
        branch: r.target_ref.refname.clone(),
        dry_run: args.dry_run,
        layout: &r.layout,
        relocated: if r.commit.is_some() { r.moves.len() } else { 0 },
        moves: &r.moves,
        failed: &r.failed,
        message: r.message.render(),
        skipped: r.worktree.clone().map(|w| w.skipped).unwrap_or_default(),
    };
    ctx.out.failures(report.failed);
    ctx.out.report(&report, |o| {
        let mut t = String::new();
        if report.moves.is_empty() && report.failed.is_empty() {
            t.push_str(&format!("nothing to relocate: every run is in the canonical layout {}\n", report.layout));
            return t;
        }
        let verb = if report.commit.is_some() { "moved" } else { "would move" };
        for m in report.moves {
            let job = match m.job_from.as_str() {
                "job_id" => String::new(),
                from => format!("; job_id from {from}"),
            };
            let there = if m.already_there { "; already there, identical: only the legacy copy goes" } else { "" };
            t.push_str(&format!("{verb} {} -> {} ({} file(s){job}{there})\n", m.from, m.to, m.files));
        }
        match &report.commit {
            Some(c) => t.push_str(&format!(
                "committed {} on {}: {} run(s) relocated to {}; each old place is now a symbolic link to the new one\n",
                &c[..12], report.branch, report.relocated, report.layout
            )),
            None if !report.failed.is_empty() => t.push_str(&format!(
                "nothing committed: {} run(s) cannot move as they are ({} could); fix them or narrow the pathspec\n",
                report.failed.len(), report.moves.len()
            )),
            None => {
                t.push_str(&format!("\nrelocate would commit on {} (base {}):\n\n", report.branch, &r.target_ref.base.short()));
                for line in report.message.lines() {
                    t.push_str(&format!("    {line}\n").replace("    \n", "\n"));
                }
            }
        }
        for p in &report.skipped {
            t.push_str(&format!("{} {p} changed during the run and was left as it is; HEAD has the relocated version\n", o.paint("warning:", "33")));
        }
        t
    })?;
    Ok(if report.failed.is_empty() { 0 } else { 1 })
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
