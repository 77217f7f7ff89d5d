//! `hook install [--force]` / `hook uninstall`: the git pre-commit hook that runs
//! `validate --staged`, so a commit adding or changing a manifest that does not validate
//! against its own version's schema is rejected (validation on write). `git commit
//! --no-verify` skips it, as it skips every pre-commit hook.
//!
//! The hook goes where git looks for it: `core.hooksPath` when set (a relative value is
//! relative to the working tree's root, where git runs hooks), else the `hooks` directory of
//! the common git directory (shared by linked worktrees). It is ours when it has the marker
//! line; a hook that is not ours is never overwritten without `--force`, nor removed.

use std::fmt::{self, Write as _};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::{GitError, Repo};

use crate::cli::output::{Painter, Style};
use crate::cli::{CommandError, Ctx};

/// The line that marks a pre-commit hook as ours.
pub const MARKER: &str = "# artifact-migrate pre-commit hook";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write the pre-commit hook that runs `validate --staged`.
    Install {
        /// Replace a pre-commit hook that is not artifact-migrate's.
        #[arg(long)]
        force: bool,
    },
    /// Remove artifact-migrate's pre-commit hook (never another one).
    Uninstall,
}

#[derive(Debug, Serialize)]
struct HookReport {
    /// The hook file.
    path: String,
    /// Whether our hook is installed there now.
    installed: bool,
    #[serde(skip)]
    outcome: Outcome,
}

/// What `hook` did (text only).
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Installed,
    Removed,
    NothingThere,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, _, _) = ctx.open()?;
    if repo.workdir().is_none() {
        return Err(CommandError::usage(
            "hook: a bare repository has no working tree to commit from, so a pre-commit hook never runs there; install it in a clone",
        ));
    }
    let path = hooks_dir(&repo)?.join("pre-commit");
    match args.action {
        Action::Install { force } => install(ctx, &path, force),
        Action::Uninstall => uninstall(ctx, &path),
    }
}

/// Where git looks for hooks: `core.hooksPath`, else `<common git dir>/hooks`.
fn hooks_dir(repo: &Repo) -> Result<PathBuf, GitError> {
    let git = repo.raw();
    let config = git.config().map_err(GitError::git("read the git config"))?;
    let configured = match config.get_path("core.hooksPath") {
        Ok(p) if !p.as_os_str().is_empty() => Some(p),
        Ok(_) => None,
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(GitError::git("read core.hooksPath from the git config")(e)),
    };
    Ok(match configured {
        Some(p) if p.is_absolute() => p,
        // Git runs hooks in the working tree's root, and resolves a relative hooksPath there.
        Some(p) => repo.workdir().unwrap_or_else(|| git.path()).join(p),
        None => git.commondir().join("hooks"),
    })
}

/// Whether a hook file's bytes are ours.
fn is_ours(bytes: &[u8]) -> bool {
    bytes
        .split(|b| *b == b'\n')
        .any(|l| l.strip_suffix(b"\r").unwrap_or(l).trim_ascii() == MARKER.as_bytes())
}

/// A word quoted for POSIX sh: `'...'`, with `'` written as `'\''`.
fn sh_quote(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &b in raw {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// What comes before the program's path in the hook script.
const SCRIPT_HEAD: &str = "#!/bin/sh
# artifact-migrate pre-commit hook
#
# Rejects a commit that adds or changes a manifest that does not validate against the JSON
# Schema of its own schema_version (.artifact-migrate/schemas/<version>.json).
# Skip the check for one commit with `git commit --no-verify`.
# Written by `artifact-migrate hook install`; remove it with `artifact-migrate hook uninstall`.
am=";

/// What comes after it.
const SCRIPT_TAIL: &str = r#"
if [ ! -x "$am" ]; then
    if command -v artifact-migrate >/dev/null 2>&1; then
        am=artifact-migrate
    else
        echo "artifact-migrate pre-commit hook: $am is gone and artifact-migrate is not on PATH;" >&2
        echo "install it and run artifact-migrate hook install again, or skip the check with git commit --no-verify" >&2
        exit 1
    fi
fi
exec "$am" validate --staged
"#;

/// The hook script, running the program at `exe` (or `artifact-migrate` from PATH when that
/// file is gone).
pub fn script(exe: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut s = SCRIPT_HEAD.as_bytes().to_vec();
    s.extend_from_slice(&sh_quote(exe.as_os_str().as_bytes()));
    s.extend_from_slice(SCRIPT_TAIL.as_bytes());
    s
}

fn refused(message: String, path: &Path) -> CommandError {
    CommandError::refused(message, path.display().to_string())
}

fn install(ctx: &Ctx, path: &Path, force: bool) -> Result<(), CommandError> {
    let existing = match fs::symlink_metadata(path) {
        Ok(_) => Some(fs::read(path).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(CommandError::io("read", path, e)),
    };
    let replaced_foreign = match &existing {
        Some(bytes) if !is_ours(bytes) => {
            if !force {
                return Err(refused(
                    format!(
                        "{}: a pre-commit hook that is not artifact-migrate's is already there; nothing was changed: call `artifact-migrate validate --staged` from it, or replace it with `artifact-migrate hook install --force`",
                        path.display()
                    ),
                    path,
                ));
            }
            true
        }
        _ => false,
    };
    let exe = std::env::current_exe().map_err(|e| {
        CommandError::new(
            ErrorKind::Environment,
            format!("find the path of this program: {e}"),
        )
    })?;
    let dir = path.parent().ok_or_else(|| {
        CommandError::new(
            ErrorKind::Environment,
            format!("{}: no parent directory", path.display()),
        )
    })?;
    fs::create_dir_all(dir).map_err(|e| CommandError::io("create", dir, e))?;
    // Written beside it and renamed over it: a hook is never half-written (and a symbolic
    // link there is replaced, not written through).
    let mut tmp = tempfile::Builder::new()
        .prefix(".pre-commit.")
        .tempfile_in(dir)
        .map_err(|e| CommandError::io("create a temporary file in", dir, e))?;
    tmp.write_all(&script(&exe))
        .map_err(|e| CommandError::io("write", tmp.path(), e))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).map_err(|e| {
            CommandError::new(
                ErrorKind::Environment,
                format!("make {} executable: {e}", tmp.path().display()),
            )
        })?;
    }
    tmp.persist(path)
        .map_err(|e| CommandError::io("write", path, e.error))?;
    if replaced_foreign {
        ctx.ui.note(format_args!(
            "replaced the pre-commit hook that was at {}",
            path.display()
        ));
    }
    let report = HookReport {
        path: path.display().to_string(),
        installed: true,
        outcome: Outcome::Installed,
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))
}

fn uninstall(ctx: &Ctx, path: &Path) -> Result<(), CommandError> {
    let outcome = match fs::symlink_metadata(path) {
        Ok(_) => {
            let bytes = fs::read(path).unwrap_or_default();
            if !is_ours(&bytes) {
                return Err(refused(
                    format!(
                        "{}: this pre-commit hook is not artifact-migrate's; it was left alone (remove it yourself if it should go)",
                        path.display()
                    ),
                    path,
                ));
            }
            fs::remove_file(path).map_err(|e| CommandError::io("remove", path, e))?;
            Outcome::Removed
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::NothingThere,
        Err(e) => return Err(CommandError::io("read", path, e)),
    };
    let report = HookReport {
        path: path.display().to_string(),
        installed: false,
        outcome,
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))
}

fn print_human(out: &mut String, p: Painter, r: &HookReport) -> fmt::Result {
    let path = p.paint(Style::Path, &r.path);
    match r.outcome {
        Outcome::Installed => writeln!(
            out,
            "installed the pre-commit hook at {path}: git commit now rejects staged manifests that do not validate against their version's schema (skip it once with git commit --no-verify)"
        ),
        Outcome::Removed => writeln!(out, "removed the pre-commit hook at {path}"),
        Outcome::NothingThere => writeln!(out, "no pre-commit hook at {path}: nothing to remove"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_program_and_is_marked() {
        let s = script(Path::new("/opt/it's here/artifact-migrate"));
        let text = String::from_utf8(s.clone()).expect("UTF-8");
        assert!(text.starts_with("#!/bin/sh\n# artifact-migrate pre-commit hook\n"));
        assert!(
            text.contains("am='/opt/it'\\''s here/artifact-migrate'\n"),
            "{text}"
        );
        assert!(text.contains("\n        am=artifact-migrate\n"), "{text}");
        assert!(
            text.ends_with("\nexec \"$am\" validate --staged\n"),
            "{text}"
        );
        assert!(text.contains(MARKER));
        assert!(is_ours(&s));
        assert!(!is_ours(
            b"#!/bin/sh\n# artifact-migrate pre-commit hook, copied\nexit 0\n"
        ));
        assert!(is_ours(
            b"#!/bin/sh\r\n# artifact-migrate pre-commit hook\r\n"
        ));
    }
}
