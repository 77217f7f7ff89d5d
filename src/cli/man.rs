//! `man`: the manual page, in roff, generated from the same argument definitions the
//! parser uses (clap_mangen): the command's page, then each subcommand with its own options,
//! then the exit status table from [`ErrorKind`]. `docs/artifact-migrate.1` is a copy of it
//! (a test keeps the two equal).

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use artifact_migrate::error::ErrorKind;

use crate::cli::{Cli, CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _: Args) -> Result<(), CommandError> {
    let page = page().map_err(|e| {
        CommandError::new(ErrorKind::Internal, format!("render the manual page: {e}"))
    })?;
    ctx.ui.raw_stdout(&page);
    Ok(())
}

/// What roff writes at the start of every piece; the page needs it once.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The whole page.
pub fn page() -> std::io::Result<Vec<u8>> {
    let text = String::from_utf8_lossy(&pieces()?).into_owned();
    let mut page = String::from(PREAMBLE);
    page.push_str(&text.replace(PREAMBLE, ""));
    Ok(page.into_bytes())
}

/// The page's pieces, each as clap_mangen or roff renders it.
fn pieces() -> std::io::Result<Vec<u8>> {
    // Subcommands are taken before the parent is built, so their options are their own
    // (the global ones are listed once, at the top).
    let unbuilt = Cli::command();
    let subcommands: Vec<clap::Command> = unbuilt.get_subcommands().cloned().collect();
    let man = Man::new(unbuilt.disable_help_subcommand(true));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut roff = Roff::default();
    roff.control("SH", ["COMMANDS"]);
    roff.to_writer(&mut out)?;
    for sub in &subcommands {
        command_section(&mut out, &["artifact-migrate"], sub)?;
    }
    exit_status(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// One subcommand: its usage line, what it does, its options; then its own subcommands.
fn command_section(
    out: &mut Vec<u8>,
    parents: &[&str],
    cmd: &clap::Command,
) -> std::io::Result<()> {
    let mut words: Vec<&str> = parents.to_vec();
    words.push(cmd.get_name());
    let mut built = cmd
        .clone()
        .bin_name(words.join(" "))
        .disable_help_subcommand(true);
    built.build();
    let usage = built.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    let mut roff = Roff::default();
    roff.control("SS", [words.join(" ").as_str()]);
    roff.text([bold(usage)]);
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        roff.control("PP", []);
        roff.text([roman(about.to_string())]);
    }
    roff.to_writer(out)?;
    let has_options = built.get_arguments().any(|a| !a.is_hide_set());
    if has_options {
        // clap_mangen's options list, under this command's heading instead of its own.
        let mut options = Vec::new();
        Man::new(built.clone()).render_options_section(&mut options)?;
        let text = String::from_utf8_lossy(&options);
        for line in text.lines() {
            if line.starts_with(".SH ") {
                continue;
            }
            writeln!(out, "{line}")?;
        }
    }
    for sub in cmd.get_subcommands() {
        command_section(out, &words, sub)?;
    }
    Ok(())
}

/// The EXIT STATUS section: every error kind, its code and what it means.
fn exit_status(out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    roff.control("TP", []);
    roff.text([bold("0")]);
    roff.text([roman("success (including \"nothing to migrate\")")]);
    for kind in ErrorKind::ALL {
        roff.control("TP", []);
        roff.text([bold(kind.exit_code().to_string())]);
        roff.text([roman(format!("{}: {}", kind.name(), kind.meaning()))]);
    }
    roff.to_writer(out)
}
