//! `verify`: audit history and a revision; exit 1 on any finding.

use artifact_migrate::engine::verify::verify;

use crate::cli::progress::Bars;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to audit, with everything reachable from it (default: HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let rev = match &args.rev {
        Some(r) => repo.resolve_commit(r)?,
        None => repo.head_commit()?,
    };
    let bars = Bars::new(ctx.out.progress_enabled());
    let report = verify(&repo, &cfg, rev, &bars)?;
    ctx.out.report(&report, |o| {
        let mut t = String::new();
        for f in &report.findings {
            t.push_str(&format!(
                "{} {} {}: {}\n",
                o.paint("finding:", "31"),
                &f.commit[..12],
                f.path.as_deref().unwrap_or("-"),
                f.problem
            ));
        }
        for p in &report.pairs {
            t.push_str(&format!(
                "in two layouts: run {}: {} is the canonical copy, {} the {} one ({})\n",
                p.run_id,
                p.canonical,
                p.other,
                p.other_layout,
                if p.same_content {
                    "same content"
                } else {
                    "different content"
                }
            ));
        }
        let relocations = match report.relocations {
            0 => String::new(),
            n => format!("{n} relocation(s), "),
        };
        t.push_str(&format!(
            "verified {} batch(es), {relocations}{} rollback(s) and {} manifest(s) at {}: {}\n",
            report.batches,
            report.rollbacks,
            report.manifests,
            &report.revision[..12],
            if report.ok {
                "ok".to_string()
            } else {
                format!("{} finding(s)", report.findings.len())
            }
        ));
        t
    })?;
    Ok(if report.ok { 0 } else { 1 })
}
