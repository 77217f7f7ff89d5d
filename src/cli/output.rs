//! The output layer: every command builds a report struct; text and `--json` are two
//! renderings of it, and nothing else in the CLI writes to stdout or stderr. Colour is
//! decided once ([`Colors::decide`]) for both streams, and applied by style name
//! ([`Style`]), never by escape code.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write};

use serde::Serialize;

use artifact_migrate::engine::Failure;

use crate::cli::error::CommandError;
use crate::cli::ColorWhen;

/// Whether each stream gets colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colors {
    /// The one colour rule, for both streams:
    /// - `--color=never`: no colour.
    /// - `--color=always`: colour on both streams, whatever they are and even with
    ///   `NO_COLOR` set: no-color.org asks that a flag given for one run override it.
    /// - `--color=auto` (the default): no colour when `NO_COLOR` is set to anything but
    ///   the empty string; else colour on each stream that is a terminal, so a stream
    ///   redirected to a file never gets escape codes.
    pub fn decide(
        when: ColorWhen,
        no_color: Option<&OsStr>,
        stdout_tty: bool,
        stderr_tty: bool,
    ) -> Colors {
        match when {
            ColorWhen::Never => Colors {
                stdout: false,
                stderr: false,
            },
            ColorWhen::Always => Colors {
                stdout: true,
                stderr: true,
            },
            ColorWhen::Auto => {
                let allowed = no_color.is_none_or(OsStr::is_empty);
                Colors {
                    stdout: allowed && stdout_tty,
                    stderr: allowed && stderr_tty,
                }
            }
        }
    }

    /// [`Colors::decide`] for this process: `NO_COLOR` and whether its streams are terminals.
    pub fn for_process(when: ColorWhen) -> Colors {
        Colors::decide(
            when,
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        )
    }
}

/// The named styles of human output. Their colours are in one table, [`Style::sgr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `error:`, `finding:`, `invalid:` labels.
    Error,
    /// `warning:`, `dirty:`, `lagging:` labels.
    Warning,
    /// `note:` labels.
    Note,
    /// A file or directory in the repository.
    Path,
    /// A commit id.
    Commit,
    /// A schema version.
    Version,
}

impl Style {
    /// The style table: the SGR parameters of each style (docs/cli.md lists them).
    pub fn sgr(self) -> &'static str {
        match self {
            Style::Error => "31",
            Style::Warning => "33",
            Style::Note => "36",
            Style::Path => "1",
            Style::Commit => "33",
            Style::Version => "32",
        }
    }
}

/// Paints values for one stream: in a style when that stream has colour, else as they are.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    color: bool,
}

impl Painter {
    pub fn new(color: bool) -> Self {
        Painter { color }
    }

    pub fn paint<T: fmt::Display>(self, style: Style, value: T) -> Painted<T> {
        Painted {
            style,
            value,
            color: self.color,
        }
    }
}

/// A value in a style; `Display` keeps width and alignment (`{:>10}`).
pub struct Painted<T> {
    style: Style,
    value: T,
    color: bool,
}

impl<T> Painted<T> {
    /// The same value, never styled (a label that stays plain beside styled ones).
    pub fn plain(mut self) -> Self {
        self.color = false;
        self
    }
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.color {
            return self.value.fmt(f);
        }
        write!(f, "\x1b[{}m", self.style.sgr())?;
        self.value.fmt(f)?;
        f.write_str("\x1b[0m")
    }
}

/// How to print, decided once per run.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    json: bool,
    quiet: bool,
    colors: Colors,
}

impl Ui {
    pub fn new(json: bool, quiet: bool, colors: Colors) -> Self {
        Ui {
            json,
            quiet,
            colors,
        }
    }

    /// Whether progress bars may be drawn: a terminal on stderr, no `-q`, no `--json`.
    pub fn progress_enabled(&self) -> bool {
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }

    /// Prints the report on stdout: as JSON with `--json`, else as the text `human` renders.
    pub fn report<T: Serialize>(
        &self,
        report: &T,
        human: impl FnOnce(&mut String, Painter) -> fmt::Result,
    ) -> Result<(), CommandError> {
        let mut text = String::new();
        if self.json {
            text = serde_json::to_string_pretty(report).map_err(|e| {
                CommandError::new(
                    artifact_migrate::error::ErrorKind::Internal,
                    format!("render the report as JSON: {e}"),
                )
            })?;
        } else {
            // Writing into a String cannot fail.
            let _ = human(&mut text, Painter::new(self.colors.stdout));
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        write_out(&text);
        Ok(())
    }

    /// A note for a person on stderr (none with `-q` or `--json`).
    pub fn note(&self, text: impl fmt::Display) {
        if !self.quiet && !self.json {
            let p = Painter::new(self.colors.stderr);
            write_err(&format!("{} {text}\n", p.paint(Style::Note, "note:")));
        }
    }

    /// A warning on stderr (text mode only: with `--json` warnings are in the report).
    /// Shown even with `-q`: it is about the result.
    pub fn warning(&self, text: impl fmt::Display) {
        if !self.json {
            let p = Painter::new(self.colors.stderr);
            write_err(&format!("{} {text}\n", p.paint(Style::Warning, "warning:")));
        }
    }

    /// A warning about something that happened after the report was printed (with `--json`
    /// too, on stderr: the report cannot carry it any more). Shown even with `-q`.
    pub fn late_warning(&self, text: impl fmt::Display) {
        let p = Painter::new(self.colors.stderr);
        write_err(&format!("{} {text}\n", p.paint(Style::Warning, "warning:")));
    }

    /// One `error: PATH: REASON` line per failed manifest, on stderr (text mode only: with
    /// `--json` the failures are in the report). Shown even with `-q`: they are the result.
    pub fn failures(&self, failed: &[Failure]) {
        if self.json || failed.is_empty() {
            return;
        }
        let mut text = String::new();
        let p = Painter::new(self.colors.stderr);
        let _ = print_failures(&mut text, p, p.paint(Style::Error, "error:"), failed);
        write_err(&text);
    }

    /// Prints an error the way the output mode asks: `{"error": {...}}` on stdout with
    /// `--json`, `error: ...` (and its hints) on stderr otherwise. An error its report
    /// already showed prints nothing.
    pub fn error(&self, e: &CommandError) {
        let Some(message) = e.message() else {
            return;
        };
        if self.json {
            write_out(&format!("{}\n", error_json(e.kind(), &message, e.path())));
        } else {
            let mut text = String::new();
            let _ = print_error(
                &mut text,
                Painter::new(self.colors.stderr),
                &message,
                e.hints(),
            );
            write_err(&text);
        }
    }

    /// Text as it is on stdout (the demo's walk-through, generated files).
    pub fn raw_stdout(&self, text: &[u8]) {
        write_bytes(&mut std::io::stdout().lock(), text);
    }

    /// Text as it is on stderr (what the demo's own runs printed there).
    pub fn raw_stderr(&self, text: &[u8]) {
        write_bytes(&mut std::io::stderr().lock(), text);
    }
}

/// `error: MESSAGE`, then each hint on its own line.
fn print_error(out: &mut String, p: Painter, message: &str, hints: &[String]) -> fmt::Result {
    writeln!(out, "{} {message}", p.paint(Style::Error, "error:"))?;
    for h in hints {
        writeln!(out, "{h}")?;
    }
    Ok(())
}

/// `LABEL PATH: REASON` per failed manifest (`error:` on stderr, `invalid:` in `status`).
pub fn print_failures(
    out: &mut String,
    p: Painter,
    label: impl fmt::Display,
    failed: &[Failure],
) -> fmt::Result {
    for f in failed {
        print_path_line(out, p, &label, &f.path, format_args!(": {}", f.error))?;
    }
    Ok(())
}

/// `LABEL PATH` and what follows it, on one line.
pub fn print_path_line(
    out: &mut String,
    p: Painter,
    label: impl fmt::Display,
    path: impl fmt::Display,
    rest: impl fmt::Display,
) -> fmt::Result {
    writeln!(out, "{label} {}{rest}", p.paint(Style::Path, path))
}

/// What a dry run would commit: `COMMAND would commit on BRANCH (base ID):` and the
/// commit message, indented.
pub fn print_would_commit(
    out: &mut String,
    p: Painter,
    command: &str,
    branch: &str,
    base: &artifact_migrate::ids::CommitId,
    message: &str,
) -> fmt::Result {
    writeln!(
        out,
        "\n{command} would commit on {branch} (base {}):\n",
        p.paint(Style::Commit, base.short())
    )?;
    for line in message.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

/// The working-tree files a run left alone because they changed meanwhile (HEAD has the
/// `what` version: migrated, restored).
pub fn print_skipped(out: &mut String, p: Painter, skipped: &[String], what: &str) -> fmt::Result {
    for path in skipped {
        print_path_line(
            out,
            p,
            p.paint(Style::Warning, "warning:"),
            path,
            format_args!(
                " changed during the run and was left as it is; HEAD has the {what} version"
            ),
        )?;
    }
    Ok(())
}

/// The `--json` form of an error: `{"error": {"kind", "message", "path"?}}`.
pub fn error_json(
    kind: artifact_migrate::error::ErrorKind,
    message: &str,
    path: Option<&str>,
) -> serde_json::Value {
    let mut e = serde_json::json!({ "kind": kind.name(), "message": message });
    if let Some(p) = path {
        e["path"] = serde_json::Value::String(p.to_string());
    }
    serde_json::json!({ "error": e })
}

fn write_out(text: &str) {
    write_bytes(&mut std::io::stdout().lock(), text.as_bytes());
}

fn write_err(text: &str) {
    write_bytes(&mut std::io::stderr().lock(), text.as_bytes());
}

/// Writes and flushes; a reader that stopped early (`| head`) is not an error of ours, and
/// nothing else is left to report an output error to.
fn write_bytes(w: &mut dyn Write, bytes: &[u8]) {
    let _ = w.write_all(bytes).and_then(|()| w.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTY: bool = true;

    #[test]
    fn auto_colours_only_terminals_and_honours_no_color() {
        let auto = |no_color: Option<&str>, out, err| {
            Colors::decide(ColorWhen::Auto, no_color.map(OsStr::new), out, err)
        };
        // Stdout on a terminal, stderr redirected to a file: only stdout is coloured.
        assert_eq!(
            auto(None, TTY, !TTY),
            Colors {
                stdout: true,
                stderr: false
            }
        );
        assert_eq!(
            auto(None, !TTY, TTY),
            Colors {
                stdout: false,
                stderr: true
            }
        );
        // NO_COLOR set to anything non-empty disables colour; set but empty does not.
        for v in ["1", "0", "false"] {
            assert_eq!(
                auto(Some(v), TTY, TTY),
                Colors {
                    stdout: false,
                    stderr: false
                }
            );
        }
        assert_eq!(
            auto(Some(""), TTY, TTY),
            Colors {
                stdout: true,
                stderr: true
            }
        );
    }

    #[test]
    fn always_beats_no_color_on_both_streams_and_never_beats_terminals() {
        let both = Colors {
            stdout: true,
            stderr: true,
        };
        let none = Colors {
            stdout: false,
            stderr: false,
        };
        assert_eq!(
            Colors::decide(ColorWhen::Always, Some(OsStr::new("1")), !TTY, !TTY),
            both
        );
        assert_eq!(Colors::decide(ColorWhen::Never, None, TTY, TTY), none);
    }

    #[test]
    fn painted_values_keep_their_width() {
        let plain = Painter::new(false);
        let colour = Painter::new(true);
        assert_eq!(
            format!("{:>6}|", plain.paint(Style::Version, "1.2.0")),
            " 1.2.0|"
        );
        assert_eq!(
            format!("{:>6}|", colour.paint(Style::Version, "1.2.0")),
            "\x1b[32m 1.2.0\x1b[0m|"
        );
    }
}
