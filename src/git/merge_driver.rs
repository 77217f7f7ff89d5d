//! The git side of the manifest merge driver: installing it (`merge.artifact-migrate.*` in the
//! repository's config, an attribute line for manifest files) and running it on the three
//! files git hands over (`%O %A %B`).
//!
//! Running never opens the repository and takes no lock: git holds `index.lock` for the whole
//! merge and calls the driver with the work tree root as its directory. The merge itself is
//! [`crate::merge::merge_manifest`]; this module reads the files, falls back to a line-based
//! three-way merge (libgit2's, the algorithm `git merge-file` uses) when a file is not JSON,
//! and writes the result over `%A` atomically: a temporary file beside it, renamed over it, with
//! `%A`'s permissions, so `%A` is always whole (its old bytes or all of the new ones).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::git::{GitError, Repo};
use crate::merge::{merge_manifest, Conflict, MergeError};

/// The driver's name in `merge.<name>.driver` and in `merge=<name>` attributes.
pub const DRIVER_NAME: &str = "artifact-migrate";

/// What `merge.artifact-migrate.name` says.
pub const DRIVER_DESCRIPTION: &str = "artifact-migrate member-level merge of JSON manifests";

/// How one run of the driver ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DriverOutcome {
    /// The file in the work tree (git's `%P`).
    pub path: String,
    /// Whether the result is clean (`false`: conflict markers were written).
    pub clean: bool,
    /// How the file was merged.
    pub method: Method,
    /// The members both sides changed differently (empty for a line-based merge).
    pub conflicts: Vec<Conflict>,
    /// Why the member-level merge was not possible (set for [`Method::Lines`]).
    pub fallback_reason: Option<String>,
}

/// Which merge produced the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Member by member.
    Members,
    /// Line by line (a file that is not JSON).
    Lines,
}

/// The three files and how to label conflict markers.
#[derive(Debug, Clone)]
pub struct DriverInput<'a> {
    /// The common ancestor's file (`%O`).
    pub base: &'a Path,
    /// Our file (`%A`): the result is written here.
    pub ours: &'a Path,
    /// Their file (`%B`).
    pub theirs: &'a Path,
    /// The path in the work tree (`%P`), for messages and marker labels.
    pub path: &'a str,
    /// The conflict marker length (`%L`; git's default is 7).
    pub marker_size: u16,
}

/// Merges the three files and writes the result over `input.ours`.
pub fn run(input: &DriverInput<'_>) -> Result<DriverOutcome, GitError> {
    let read = |p: &Path| fs::read(p).map_err(GitError::io(p));
    let (base, ours, theirs) = (read(input.base)?, read(input.ours)?, read(input.theirs)?);
    let mut outcome = DriverOutcome {
        path: input.path.to_string(),
        clean: true,
        method: Method::Members,
        conflicts: Vec::new(),
        fallback_reason: None,
    };
    let bytes = match merge_manifest(&base, &ours, &theirs) {
        Ok(merged) => merged.bytes,
        Err(MergeError::Conflicts(c)) => {
            outcome.clean = false;
            outcome.conflicts = c.members;
            // Mark up only the conflicting members: a line merge of the three renderings of the
            // merge that differ just there. Where a rendering could not be written, mark up the
            // three files as they are.
            let lines = match (&c.base, &c.theirs) {
                (Some(b), Some(t)) => line_merge(input, b, &c.ours, t)?,
                _ => line_merge(input, &base, &ours, &theirs)?,
            };
            lines.1
        }
        Err(e) => {
            outcome.method = Method::Lines;
            outcome.fallback_reason = Some(e.to_string());
            let (clean, bytes) = line_merge(input, &base, &ours, &theirs)?;
            outcome.clean = clean;
            bytes
        }
    };
    replace(input.ours, &bytes)?;
    Ok(outcome)
}

/// libgit2's line-based three-way merge; `(clean, bytes)`.
fn line_merge(
    input: &DriverInput<'_>,
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
) -> Result<(bool, Vec<u8>), GitError> {
    let side = |content| {
        let mut i = git2::MergeFileInput::new();
        i.content(content);
        i
    };
    let mut opts = git2::MergeFileOptions::new();
    let label = |who: &str| format!("{who}:{}", input.path).replace('\0', "");
    opts.ancestor_label(label("base"))
        .our_label(label("ours"))
        .their_label(label("theirs"))
        .marker_size(input.marker_size);
    let result = git2::merge_file(&side(base), &side(ours), &side(theirs), Some(&mut opts))
        .map_err(GitError::git(format!("merge {} line by line", input.path)))?;
    Ok((result.is_automergeable(), result.content().to_vec()))
}

/// Writes `bytes` over `path` atomically, keeping its permissions: a temporary file in the same
/// directory, flushed to disk, then renamed over it. On error `path` is untouched, the temporary
/// file is gone, and the error names `path` with the system's cause (`No space left on device`,
/// `Read-only file system`, `Operation not permitted`).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), GitError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let perms = fs::metadata(path)
        .map_err(GitError::io(path))?
        .permissions();
    // A SIGINT or SIGTERM from here to the rename waits for the safe point below, so the
    // temporary file never outlives the process (docs/reliability.md, "Signals").
    let _guard = crate::interrupt::guard();
    let mut tmp = tempfile::Builder::new()
        .prefix(".artifact-migrate-merge-")
        .tempfile_in(dir)
        .map_err(GitError::write(path))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| tmp.as_file().set_permissions(perms))
        .map_err(GitError::write(path))?;
    // Dropping the temporary file on an error above (or a failed rename) removes it.
    crate::fault::point("merge-before-rename");
    crate::interrupt::check().map_err(|by| GitError::Interrupted {
        by,
        state: format!("{} was left as it was", path.display()),
    })?;
    tmp.persist(path)
        .map_err(|e| GitError::write(path)(e.error))?;
    Ok(())
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InstallReport {
    /// The `merge.artifact-migrate.driver` command now configured.
    pub driver: String,
    /// Whether the git config changed (false: it already held this driver).
    pub config_changed: bool,
    /// The attributes file written (`.git/info/attributes` or `.gitattributes`).
    pub attributes_file: PathBuf,
    /// The attribute line for manifest files.
    pub attribute_line: String,
    /// Whether the line was added (false: it was there already).
    pub attribute_added: bool,
}

/// The gitattributes pattern matching every manifest: `<root>/**/<manifest_name>`.
pub fn manifest_pattern(config: &Config) -> String {
    let root = config.artifacts_root.trim_matches('/');
    let pattern = if root.is_empty() || root == "." {
        format!("**/{}", config.manifest_name)
    } else {
        format!("{root}/**/{}", config.manifest_name)
    };
    if pattern.contains([' ', '\t', '"', '\\']) {
        // gitattributes reads a pattern in double quotes with C-style escapes.
        let escaped = pattern.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        pattern
    }
}

/// The driver command for git: the program at `exe` when it is still there, else
/// `artifact-migrate` from `PATH` (git runs the command with `sh`).
pub fn driver_command(exe: &Path) -> String {
    let exe = exe.to_string_lossy().replace('\'', "'\\''");
    format!(
        "am='{exe}'; [ -x \"$am\" ] || am={DRIVER_NAME}; exec \"$am\" merge-driver run --marker-size %L %O %A %B %P"
    )
}

/// Configures the driver in the repository's own config (`.git/config`) and adds the attribute
/// line for manifests to `.git/info/attributes`, or to `.gitattributes` in the work tree with
/// `shared`. Running it again changes nothing.
pub fn install(
    repo: &Repo,
    config: &Config,
    exe: &Path,
    shared: bool,
) -> Result<InstallReport, GitError> {
    let git = repo.raw();
    let mut cfg = git
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
        .map_err(GitError::git("open the repository's git config"))?;
    let driver = driver_command(exe);
    let mut config_changed = false;
    for (key, value) in [
        (format!("merge.{DRIVER_NAME}.name"), DRIVER_DESCRIPTION),
        (format!("merge.{DRIVER_NAME}.driver"), driver.as_str()),
    ] {
        if cfg.get_string(&key).ok().as_deref() != Some(value) {
            cfg.set_str(&key, value)
                .map_err(GitError::git(format!("set {key} in the git config")))?;
            config_changed = true;
        }
    }
    let attributes_file = if shared {
        repo.workdir()
            .ok_or(GitError::Io {
                path: git.path().to_path_buf(),
                source: std::io::Error::other(
                    "a bare repository has no work tree for .gitattributes; install without --shared",
                ),
            })?
            .join(".gitattributes")
    } else {
        git.commondir().join("info").join("attributes")
    };
    let attribute_line = format!("{} merge={DRIVER_NAME}", manifest_pattern(config));
    let attribute_added = add_line(&attributes_file, &attribute_line)?;
    Ok(InstallReport {
        driver,
        config_changed,
        attributes_file,
        attribute_line,
        attribute_added,
    })
}

/// Appends `line` to `file` unless a line equal to it (whitespace trimmed) is there; creates
/// the file and its directory as needed. Returns whether it was added.
fn add_line(file: &Path, line: &str) -> Result<bool, GitError> {
    let old = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(GitError::io(file)(e)),
    };
    let present = old
        .split(|b| *b == b'\n')
        .any(|l| l.trim_ascii() == line.as_bytes());
    if present {
        return Ok(false);
    }
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).map_err(GitError::write(dir))?;
    }
    let mut new = old;
    if !new.is_empty() && !new.ends_with(b"\n") {
        new.push(b'\n');
    }
    new.extend_from_slice(line.as_bytes());
    new.push(b'\n');
    if file.exists() {
        replace(file, &new)?;
    } else {
        fs::write(file, &new).map_err(GitError::write(file))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_follows_the_config() {
        let mut cfg = Config::default();
        assert_eq!(manifest_pattern(&cfg), "artifacts/**/manifest.json");
        cfg.artifacts_root = String::new();
        assert_eq!(manifest_pattern(&cfg), "**/manifest.json");
        cfg.artifacts_root = "my runs".into();
        assert_eq!(manifest_pattern(&cfg), "\"my runs/**/manifest.json\"");
    }

    #[test]
    fn driver_command_quotes_the_path() {
        let cmd = driver_command(Path::new("/opt/it's/artifact-migrate"));
        assert!(
            cmd.starts_with("am='/opt/it'\\''s/artifact-migrate';"),
            "{cmd}"
        );
        assert!(cmd.ends_with("merge-driver run --marker-size %L %O %A %B %P"));
    }

    #[test]
    fn add_line_is_idempotent_and_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let file = dir.path().join("info").join("attributes");
        assert!(add_line(&file, "a merge=x").unwrap_or(false));
        assert!(!add_line(&file, "a merge=x").unwrap_or(true));
        fs::write(&file, "*.bin binary").unwrap_or_else(|e| panic!("{e}"));
        assert!(add_line(&file, "a merge=x").unwrap_or(false));
        assert_eq!(
            fs::read_to_string(&file).unwrap_or_default(),
            "*.bin binary\na merge=x\n"
        );
    }
}
