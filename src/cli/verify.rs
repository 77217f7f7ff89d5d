//! `verify`: audit history and a revision; exit 1 on any finding.

use std::fmt::{self, Write as _};

use artifact_migrate::engine::verify::{verify, VerifyReport};

use crate::cli::output::{Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to audit, with everything reachable from it (default: HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let rev = match &args.rev {
        Some(r) => repo.resolve_commit(r)?,
        None => repo.head_commit()?,
    };
    let bars = Bars::new(ctx.ui.progress_enabled());
    let report = verify(&repo, &cfg, rev, &bars)?;
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    CommandError::failed_if(!report.ok)
}

fn print_human(out: &mut String, p: Painter, r: &VerifyReport) -> fmt::Result {
    for f in &r.findings {
        writeln!(
            out,
            "{} {} {}: {}",
            p.paint(Style::Error, "finding:"),
            p.paint(Style::Commit, f.commit.short()),
            p.paint(Style::Path, f.path.as_deref().unwrap_or("-")),
            f.problem
        )?;
    }
    for pair in &r.pairs {
        writeln!(
            out,
            "in two layouts: run {}: {} is the canonical copy, {} the {} one ({})",
            pair.run_id,
            p.paint(Style::Path, &pair.canonical),
            p.paint(Style::Path, &pair.other),
            pair.other_layout,
            if pair.same_content {
                "same content"
            } else {
                "different content"
            }
        )?;
    }
    let relocations = match r.relocations {
        0 => String::new(),
        n => format!("{n} relocation(s), "),
    };
    let outcome = if r.ok {
        "ok".to_string()
    } else {
        format!("{} finding(s)", r.findings.len())
    };
    writeln!(
        out,
        "verified {} batch(es), {relocations}{} rollback(s) and {} manifest(s) at {}: {outcome}",
        r.batches,
        r.rollbacks,
        r.manifests,
        p.paint(Style::Commit, r.revision.short()),
    )
}
