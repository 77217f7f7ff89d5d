//! `completions SHELL`: a completion script for the shell, generated from the same argument
//! definitions the parser uses (clap_complete), so it cannot fall behind the CLI.

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "artifact-migrate", &mut script);
    ctx.ui.raw_stdout(&script);
    Ok(())
}
