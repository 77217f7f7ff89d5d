//! The `artifact-migrate` binary: parse arguments, decide colour once, run, and turn the
//! outcome into an exit code here and nowhere else (0 success; otherwise the error kind's
//! code: 1 failed, 2 usage, not found or environment, 3 refused, 70 internal).

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use artifact_migrate::error::ErrorKind;

use crate::cli::output::{error_json, Colors};
use crate::cli::{Cli, ColorWhen, CommandError, Ui};

/// mimalloc instead of glibc's malloc: a batch allocates and frees small buffers on every
/// thread for every manifest (parse, edit, render, compress), and glibc's arenas spent over a
/// quarter of an `apply --branch` in `malloc`/`free`/`malloc_consolidate` (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bounds libgit2's own memory: how much of the pack files it keeps mapped and how many
/// objects it caches. Its defaults (8 GiB of mappings on 64-bit, 256 MiB of cache) let a
/// million-manifest batch grow past a gigabyte of resident memory.
fn limit_libgit2_memory() {
    // SAFETY: these set global libgit2 options; they run first in main, before any thread or
    // repository exists, which is the usage libgit2 documents.
    unsafe {
        let _ = git2::opts::set_mwindow_mapped_limit(256 << 20);
        let _ = git2::opts::set_mwindow_size(32 << 20);
        let _ = git2::opts::set_cache_max_size(96 << 20);
        // Trees are not cached: a batch reads each tree once (to rebuild it, then to compare
        // it), and once a million manifests' trees overflow the cache, libgit2's eviction
        // restarts its scan at the start of a map whose front it has emptied, which made the
        // 1M `write objects` phase superlinear (278 s against 1.7 s at 100k; a third of its
        // samples were in `git_oid_equal`, the cache map's key comparison, beside
        // `cache_store`). Blobs are never cached (libgit2's default); commits still are.
        let _ = git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 0);
    }
}

fn main() -> ExitCode {
    limit_libgit2_memory();
    // SIGINT/SIGTERM stop a writing command at its next safe point (docs/reliability.md).
    let signals = artifact_migrate::interrupt::install();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match parse(&argv) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let colors = Colors::for_process(cli.color);
    let ui = Ui::new(cli.json, cli.quiet, colors);
    if let Err(e) = signals {
        ui.warning(format_args!(
            "cannot handle SIGINT and SIGTERM ({e}); they will stop the process at once"
        ));
    }
    exit_code(&ui, cli::run(cli, ui))
}

/// The one place an outcome becomes an exit code (the error printed first).
fn exit_code(ui: &Ui, outcome: Result<(), CommandError>) -> ExitCode {
    let code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ui.error(&e);
            ExitCode::from(e.kind().exit_code())
        }
    };
    // Stopped (or finished) after a SIGINT/SIGTERM: end by that signal, as the parent expects.
    artifact_migrate::interrupt::exit_if_requested();
    code
}

/// Parses the arguments; on `--help`, `--version` or a usage error prints what clap says
/// (coloured by the same rule as everything else) and gives the exit code.
fn parse(argv: &[OsString]) -> Result<Cli, ExitCode> {
    let json = argv.iter().any(|a| a == "--json");
    let colors = Colors::for_process(color_flag(argv));
    // Help goes to stdout and errors to stderr: `always` and `never` are the same for both,
    // `auto` leaves clap to look at the stream it writes, as `Colors` does.
    let choice = match (colors.stdout, colors.stderr) {
        (true, true) => clap::ColorChoice::Always,
        (false, false) => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    };
    let matches = Cli::command().color(choice).try_get_matches_from(argv);
    let err = match matches.and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if matches!(
        err.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return Err(ExitCode::SUCCESS);
    }
    let usage = ErrorKind::Usage;
    if json {
        let msg = err.to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let ui = Ui::new(true, false, colors);
        ui.raw_stdout(format!("{}\n", error_json(usage, first, None)).as_bytes());
    } else {
        let _ = err.print();
    }
    Err(ExitCode::from(usage.exit_code()))
}

/// The `--color` value of a command line clap could not parse (the last one given wins, as
/// clap has it); `auto` when there is none or it is not one of ours.
fn color_flag(argv: &[OsString]) -> ColorWhen {
    let mut when = ColorWhen::Auto;
    let mut args = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = args.next() {
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color") {
            Some("") => args.next().map(|v| v.into_owned()),
            Some(v) => v.strip_prefix('=').map(str::to_string),
            None => None,
        };
        match value.as_deref() {
            Some("always") => when = ColorWhen::Always,
            Some("never") => when = ColorWhen::Never,
            Some("auto") => when = ColorWhen::Auto,
            _ => {}
        }
    }
    when
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("artifact-migrate")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn the_color_flag_is_found_in_a_command_line_clap_refused() {
        assert_eq!(color_flag(&argv(&["plan", "--nope"])), ColorWhen::Auto);
        assert_eq!(
            color_flag(&argv(&["--color=always", "plan", "--nope"])),
            ColorWhen::Always
        );
        assert_eq!(
            color_flag(&argv(&["plan", "--color", "never", "--nope"])),
            ColorWhen::Never
        );
        assert_eq!(
            color_flag(&argv(&["--color=never", "plan", "--color=always"])),
            ColorWhen::Always
        );
        assert_eq!(
            color_flag(&argv(&["plan", "--", "--color=always"])),
            ColorWhen::Auto
        );
    }
}
