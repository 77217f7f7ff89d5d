//! `verify`: audit history and a revision; exit 1 on any finding.

use std::fmt::{self, Write as _};

use artifact_migrate::engine::drift::strict;
use artifact_migrate::engine::verify::{verify, VerifyReport};
use artifact_migrate::engine::verify_inputs::add_inputs;
use artifact_migrate::engine::verify_signatures::require_signed;
use artifact_migrate::git::sign::SignatureState;

use crate::cli::output::{Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to audit, with everything reachable from it (default: HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
    /// Every batch, rollback, relocation and repair commit must carry a good signature:
    /// unsigned, bad or uncheckable ones are findings.
    #[arg(long)]
    pub require_signed: bool,
    /// Also re-derive each run's identity from its input snapshots (`inputs_hash`,
    /// `run_id`, the resolved doctrine), as the pipeline does.
    #[arg(long)]
    pub inputs: bool,
    /// Drift warnings (a manifest changed since its last batch, no protected field or
    /// history entry touched) are findings too, so they fail the audit.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let rev = match &args.rev {
        Some(r) => repo.resolve_commit(r)?,
        None => repo.head_commit()?,
    };
    let bars = Bars::new(ctx.ui.progress_enabled());
    let mut report = verify(&repo, &cfg, rev, &bars)?;
    if args.inputs {
        add_inputs(&repo, &cfg, &mut report)?;
    }
    if args.require_signed {
        require_signed(&mut report);
    }
    if args.strict {
        strict(&mut report);
    }
    let show_signatures = args.require_signed
        || report
            .signatures
            .iter()
            .any(|s| s.state != SignatureState::Unsigned);
    ctx.ui.report(&report, |out, p| {
        if let Some(sh) = &report.shallow {
            writeln!(out, "shallow: {}", sh.message)?;
            if !sh.not_audited.is_empty() {
                let ids: Vec<String> = sh.not_audited.iter().map(|c| c.short()).collect();
                writeln!(
                    out,
                    "shallow: not audited (parent not fetched): {}",
                    ids.join(", ")
                )?;
            }
        }
        print_human(out, p, &report)?;
        if let Some(i) = &report.inputs {
            writeln!(
                out,
                "inputs: {} run(s) re-derived from {} snapshot(s), {} legacy run(s) without inputs_hash skipped",
                i.checked, i.snapshots, i.skipped_legacy
            )?;
        }
        if show_signatures {
            print_signatures(out, p, &report)?;
        }
        Ok(())
    })?;
    CommandError::failed_if(!report.ok)
}

fn print_human(out: &mut String, p: Painter, r: &VerifyReport) -> fmt::Result {
    let line = |out: &mut String, label: &str, style, commit: String, path: &str, problem: &str| {
        writeln!(
            out,
            "{} {} {}: {problem}",
            p.paint(style, label),
            p.paint(Style::Commit, commit),
            p.paint(Style::Path, path),
        )
    };
    for f in &r.findings {
        let path = f.path.as_deref().unwrap_or("-");
        line(
            out,
            "finding:",
            Style::Error,
            f.commit.short(),
            path,
            &f.problem,
        )?;
    }
    for w in &r.warnings {
        line(
            out,
            "warning:",
            Style::Warning,
            w.commit.short(),
            &w.path,
            &w.problem,
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
    let warnings = match r.warnings.len() {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    };
    let outcome = if r.ok {
        format!("ok{warnings}")
    } else {
        format!("{} finding(s){warnings}", r.findings.len())
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

/// One line per signed commit whose signature is not good, then the counts.
fn print_signatures(out: &mut String, p: Painter, r: &VerifyReport) -> fmt::Result {
    let mut counts = [0usize; 4];
    for s in &r.signatures {
        let i = match s.state {
            SignatureState::Good => 0,
            SignatureState::Bad => 1,
            SignatureState::Unknown => 2,
            SignatureState::Unsigned => 3,
        };
        counts[i] += 1;
        if matches!(s.state, SignatureState::Bad | SignatureState::Unknown) {
            writeln!(
                out,
                "signature: {} {} {} ({}): {}",
                p.paint(Style::Commit, s.commit.short()),
                s.kind,
                s.state,
                s.format.map(|f| f.to_string()).unwrap_or_default(),
                s.detail.as_deref().unwrap_or("-")
            )?;
        }
    }
    writeln!(
        out,
        "signatures: {} good, {} bad, {} unknown, {} unsigned",
        counts[0], counts[1], counts[2], counts[3]
    )
}
