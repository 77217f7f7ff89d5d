//! `repair --accept STEP`: record an intended change of an applied migration's definition.

use serde::Serialize;

use artifact_migrate::engine::repair::accept;

use crate::cli::progress::Bars;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration whose current definition is accepted, e.g. 1.2.0->1.3.0.
    #[arg(long, value_name = "MIGRATION", required = true)]
    pub accept: String,
    /// Commit to this branch instead of HEAD's.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
}

#[derive(Debug, Serialize)]
struct RepairJson {
    commit: String,
    accepted: String,
    checksum: String,
    file: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let r = accept(&repo, &cfg, &args.accept, args.branch.as_deref(), &bars)?;
    let refname = repo.target(args.branch.as_deref()).map(|t| t.refname);
    let report = RepairJson {
        commit: r.commit.to_string(),
        accepted: r.step,
        checksum: r.checksum,
        file: r.file,
    };
    ctx.out.report(&report, |_| {
        format!(
            "committed {}: accepted the current definition of migration {} ({}{})\n",
            &report.commit[..12],
            report.accepted,
            report.checksum,
            report
                .file
                .as_deref()
                .map(|f| format!(", {f}"))
                .unwrap_or_default()
        )
    })?;
    if let Ok(refname) = refname {
        crate::cli::index::after_commit(ctx, &repo, &cfg, &refname, Some(r.commit));
    }
    Ok(0)
}
