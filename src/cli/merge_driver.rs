//! `merge-driver install [--shared]` / `merge-driver run`: the member-level merge of manifests
//! for `git merge`, `git rebase` and `git cherry-pick`. A thin renderer over
//! [`artifact_migrate::git::merge_driver`]; the merge rules are [`artifact_migrate::merge`].

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::merge_driver::{self, DriverInput, InstallReport, Method};
use artifact_migrate::git::Repo;

use crate::cli::output::{Painter, Style};
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Configure the driver in .git/config and mark manifest files with `merge=artifact-migrate`
    /// in .git/info/attributes (idempotent).
    Install {
        /// Write the attribute line to .gitattributes (to commit and share) instead.
        #[arg(long)]
        shared: bool,
    },
    /// What git runs: merge BASE, OURS and THEIRS member by member and write the result over
    /// OURS; exit 0 when clean, 1 on a conflict (markers written, members named on stderr).
    Run {
        /// Conflict marker length (git's %L).
        #[arg(long, value_name = "N", default_value_t = 7)]
        marker_size: u16,
        /// The common ancestor's version (git's %O).
        base: PathBuf,
        /// Our version, overwritten with the result (git's %A).
        ours: PathBuf,
        /// Their version (git's %B).
        theirs: PathBuf,
        /// The file's path in the work tree (git's %P), for messages.
        path: Option<String>,
    },
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    match args.action {
        Action::Install { shared } => install(ctx, shared),
        Action::Run {
            marker_size,
            base,
            ours,
            theirs,
            path,
        } => {
            let path = path.unwrap_or_else(|| ours.display().to_string());
            let (base, ours, theirs) =
                (ctx.cwd.join(base), ctx.cwd.join(ours), ctx.cwd.join(theirs));
            let input = DriverInput {
                base: &base,
                ours: &ours,
                theirs: &theirs,
                path: &path,
                marker_size,
            };
            drive(ctx, &input)
        }
    }
}

fn install(ctx: &Ctx, shared: bool) -> Result<(), CommandError> {
    // No `ctx.open()`: installing finishes no interrupted run and takes no lock.
    let repo = Repo::discover(&ctx.cwd)?;
    let cfg = ctx.config(&repo)?;
    let exe = std::env::current_exe().map_err(|e| {
        CommandError::new(
            ErrorKind::Environment,
            format!("find the path of this program for the driver command: {e}"),
        )
    })?;
    let report = merge_driver::install(&repo, &cfg, &exe, shared)?;
    ctx.ui
        .report(&report, |out, p| print_install(out, p, &report, shared))
}

fn print_install(out: &mut String, p: Painter, r: &InstallReport, shared: bool) -> fmt::Result {
    let did = |changed: bool| if changed { "set" } else { "already set" };
    writeln!(
        out,
        "{} merge.{}.driver in the repository's git config",
        did(r.config_changed),
        merge_driver::DRIVER_NAME
    )?;
    writeln!(
        out,
        "{} {} in {}",
        if r.attribute_added {
            "added"
        } else {
            "already there:"
        },
        p.paint(Style::Path, &r.attribute_line),
        r.attributes_file.display()
    )?;
    if shared && r.attribute_added {
        writeln!(
            out,
            "commit .gitattributes to share it; each clone runs `artifact-migrate merge-driver install` once to configure the driver"
        )?;
    }
    Ok(())
}

fn drive(ctx: &Ctx, input: &DriverInput<'_>) -> Result<(), CommandError> {
    let outcome = merge_driver::run(input)?;
    if let Some(why) = &outcome.fallback_reason {
        ctx.ui
            .warning(format_args!("{}: merged line by line: {why}", outcome.path));
    }
    if outcome.clean {
        return Ok(());
    }
    let mut text = match outcome.method {
        Method::Members => format!(
            "{}: {} member(s) changed differently on both sides, left with conflict markers:",
            outcome.path,
            outcome.conflicts.len()
        ),
        Method::Lines => format!(
            "{}: conflicting lines, left with conflict markers",
            outcome.path
        ),
    };
    for c in &outcome.conflicts {
        let _ = write!(text, "\n  {c}");
    }
    Err(CommandError::new(ErrorKind::Failed, text)
        .with_path(outcome.path.clone())
        .hinted("resolve the markers, `git add` the file and continue the merge (or keep one side with `git checkout --ours/--theirs`)"))
}
