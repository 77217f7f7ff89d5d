//! `repair --accept STEP`: record an intended change of an applied migration's definition.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::repair::accept;
use artifact_migrate::ids::CommitId;

use crate::cli::output::{Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration whose current definition is accepted, e.g. 1.2.0->1.3.0.
    #[arg(long, value_name = "MIGRATION", required = true)]
    pub accept: String,
    /// Commit to this branch instead of HEAD's.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    #[command(flatten)]
    pub sign: crate::cli::SignArgs,
}

#[derive(Debug, Serialize)]
struct RepairJson {
    commit: CommitId,
    accepted: String,
    checksum: String,
    file: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let r = accept(
        &repo,
        &cfg,
        &args.accept,
        args.branch.as_deref(),
        args.sign.mode(),
        &bars,
    )?;
    let refname = repo.target(args.branch.as_deref()).map(|t| t.refname);
    let report = RepairJson {
        commit: r.commit,
        accepted: r.step,
        checksum: r.checksum,
        file: r.file,
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    if let Ok(refname) = refname {
        crate::cli::index::after_commit(ctx, &repo, &cfg, &refname, Some(r.commit));
    }
    Ok(())
}

fn print_human(out: &mut String, p: Painter, r: &RepairJson) -> fmt::Result {
    let file = match &r.file {
        Some(f) => format!(", {}", p.paint(Style::Path, f)),
        None => String::new(),
    };
    let (commit, step) = (p.paint(Style::Commit, r.commit.short()), &r.accepted);
    writeln!(
        out,
        "committed {commit}: accepted the current definition of migration {step} ({}{file})",
        r.checksum
    )
}
