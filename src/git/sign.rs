//! Signing commit objects the way git does, and checking the signatures of commits.
//!
//! Whether to sign follows `git commit`: `commit.gpgsign`, overridden by `--sign` /
//! `--no-sign` ([`SignMode`]). How follows git's configuration: `gpg.format` (`openpgp`, the
//! default, or `ssh`), `user.signingkey`, `gpg.program` / `gpg.openpgp.program` and
//! `gpg.ssh.program`. The configured program is run exactly as git runs it
//! (`gpg --status-fd=2 -bsau KEY` with the payload on stdin; `ssh-keygen -Y sign -n git -f
//! KEY FILE`), and the signature goes into the commit object's `gpgsig` header
//! ([`add_signature_header`]), so `git verify-commit` accepts the commit.
//!
//! Checking ([`check_commit`]) also runs the configured program as git does: `gpg
//! --status-fd=1 --verify SIG -` for OpenPGP; for SSH, `ssh-keygen -Y find-principals` and
//! `-Y verify` against `gpg.ssh.allowedSignersFile`. Nothing here decides whether a state is
//! acceptable: `verify` does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::Signature;
use serde::Serialize;

use crate::error::ErrorKind;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// Whether a commit is signed: as git config says (`commit.gpgsign`), or forced either way
/// (`--sign` / `--no-sign`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignMode {
    #[default]
    Config,
    Always,
    Never,
}

impl SignMode {
    /// From the two flags of a command (`--sign` wins over nothing, `--no-sign` over
    /// nothing; clap makes them exclusive).
    pub fn from_flags(sign: bool, no_sign: bool) -> SignMode {
        match (sign, no_sign) {
            (true, _) => SignMode::Always,
            (_, true) => SignMode::Never,
            _ => SignMode::Config,
        }
    }
}

/// The signature formats git writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Openpgp,
    Ssh,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Openpgp => "openpgp",
            Format::Ssh => "ssh",
        }
    }
}

/// Why a commit could not be signed (or git's signing configuration cannot be used).
/// Nothing was committed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("gpg.format is {value:?}; artifact-migrate signs with \"openpgp\" or \"ssh\" (git's x509 is not supported): set gpg.format, or commit with --no-sign")]
    UnsupportedFormat { value: String },
    #[error("user.signingkey needs to be set for ssh signing (a key file, or key::<public key> for a key in ssh-agent): git config user.signingkey ~/.ssh/id_ed25519.pub")]
    NoSshKey,
    #[error("cannot run {program} to sign the commit: {source}; install it or set {setting}, or commit with --no-sign (nothing was committed)")]
    Spawn {
        program: String,
        setting: &'static str,
        source: std::io::Error,
    },
    #[error("{program} failed to sign the commit ({status}): {stderr}; nothing was committed")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("cannot write {path} for {program}: {source}")]
    Io {
        program: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read git config: {}", .0.message())]
    Config(git2::Error),
}

impl SignError {
    /// Every signing failure is the surroundings' (a program, a key, a setting).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SignError::UnsupportedFormat { .. }
            | SignError::NoSshKey
            | SignError::Spawn { .. }
            | SignError::Failed { .. }
            | SignError::Io { .. }
            | SignError::Config(_) => ErrorKind::Environment,
        }
    }
}

/// How to sign, read from git config; made once per command, before any work.
#[derive(Debug, Clone)]
pub struct Signer {
    format: Format,
    program: String,
    /// `user.signingkey`; `None` for OpenPGP means the committer's `Name <email>`, as git.
    key: Option<String>,
}

fn config_string(cfg: &git2::Config, name: &str) -> Option<String> {
    cfg.get_string(name).ok().filter(|v| !v.is_empty())
}

fn signing_format(cfg: &git2::Config) -> Result<Format, SignError> {
    match config_string(cfg, "gpg.format").as_deref() {
        None | Some("openpgp") => Ok(Format::Openpgp),
        Some("ssh") => Ok(Format::Ssh),
        Some(other) => Err(SignError::UnsupportedFormat {
            value: other.to_string(),
        }),
    }
}

/// The program git runs for a format: `gpg.<format>.program`, then `gpg.program` for
/// OpenPGP, else `gpg` / `ssh-keygen`.
fn program_for(cfg: &git2::Config, format: Format) -> String {
    match format {
        Format::Openpgp => config_string(cfg, "gpg.openpgp.program")
            .or_else(|| config_string(cfg, "gpg.program"))
            .unwrap_or_else(|| "gpg".to_string()),
        Format::Ssh => {
            config_string(cfg, "gpg.ssh.program").unwrap_or_else(|| "ssh-keygen".to_string())
        }
    }
}

fn program_setting(format: Format) -> &'static str {
    match format {
        Format::Openpgp => "gpg.program",
        Format::Ssh => "gpg.ssh.program",
    }
}

/// `~/...` as git's `interpolate_path` reads it.
fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(rest),
            None => PathBuf::from(p),
        },
        None => PathBuf::from(p),
    }
}

impl Signer {
    /// The signer git would use for a commit here, or `None` when git would not sign
    /// (`commit.gpgsign` unset or false, or `--no-sign`).
    pub fn from_config(repo: &Repo, mode: SignMode) -> Result<Option<Signer>, SignError> {
        let cfg = repo.git.config().map_err(SignError::Config)?;
        let wanted = match mode {
            SignMode::Always => true,
            SignMode::Never => false,
            SignMode::Config => cfg.get_bool("commit.gpgsign").unwrap_or(false),
        };
        if !wanted {
            return Ok(None);
        }
        let format = signing_format(&cfg)?;
        let key = config_string(&cfg, "user.signingkey");
        if format == Format::Ssh && key.is_none() {
            return Err(SignError::NoSshKey);
        }
        Ok(Some(Signer {
            format,
            program: program_for(&cfg, format),
            key,
        }))
    }

    /// The signature format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Signs `payload` (a whole commit object without signature) and returns the armored
    /// signature, as the configured program printed it.
    pub fn sign(&self, payload: &[u8], committer: &Signature<'_>) -> Result<String, SignError> {
        match self.format {
            Format::Openpgp => self.sign_openpgp(payload, committer),
            Format::Ssh => self.sign_ssh(payload),
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> SignError {
        SignError::Spawn {
            program: self.program.clone(),
            setting: program_setting(self.format),
            source,
        }
    }

    fn sign_openpgp(&self, payload: &[u8], committer: &Signature<'_>) -> Result<String, SignError> {
        // git's default key is the committer's identity without the date.
        let key = self.key.clone().unwrap_or_else(|| {
            format!(
                "{} <{}>",
                String::from_utf8_lossy(committer.name_bytes()),
                String::from_utf8_lossy(committer.email_bytes())
            )
        });
        let mut cmd = Command::new(&self.program);
        cmd.args(["--status-fd=2", "-bsau", &key]);
        let out = run(&mut cmd, payload).map_err(|e| self.spawn_error(e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let created = stderr
            .lines()
            .any(|l| l.starts_with("[GNUPG:] SIG_CREATED "));
        if !out.status.success() || !created {
            return Err(SignError::Failed {
                program: self.program.clone(),
                status: out.status.to_string(),
                stderr: last_lines(&stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn sign_ssh(&self, payload: &[u8]) -> Result<String, SignError> {
        let key = self.key.as_deref().ok_or(SignError::NoSshKey)?;
        let dir = tempfile::Builder::new()
            .prefix("artifact-migrate-sign-")
            .tempdir()
            .map_err(|source| SignError::Io {
                program: self.program.clone(),
                path: std::env::temp_dir(),
                source,
            })?;
        let io = |path: &Path| {
            let program = self.program.clone();
            let path = path.to_path_buf();
            move |source| SignError::Io {
                program,
                path,
                source,
            }
        };
        // A literal key (`key::ssh-ed25519 AAAA...`, or the older bare `ssh-...`) is a key
        // held by ssh-agent: written to a file and used with -U, as git does.
        let literal = key
            .strip_prefix("key::")
            .or_else(|| key.starts_with("ssh-").then_some(key));
        let mut cmd = Command::new(&self.program);
        cmd.args(["-Y", "sign", "-n", "git", "-f"]);
        match literal {
            Some(public) => {
                let file = dir.path().join("key.pub");
                std::fs::write(&file, format!("{public}\n")).map_err(io(&file))?;
                cmd.arg(&file).arg("-U");
            }
            None => {
                cmd.arg(expand_home(key));
            }
        }
        let buffer = dir.path().join("commit");
        std::fs::write(&buffer, payload).map_err(io(&buffer))?;
        cmd.arg(&buffer);
        let out = run(&mut cmd, b"").map_err(|e| self.spawn_error(e))?;
        let sig_file = dir.path().join("commit.sig");
        let sig = std::fs::read_to_string(&sig_file).unwrap_or_default();
        if !out.status.success() || !sig.contains("-----BEGIN SSH SIGNATURE-----") {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(SignError::Failed {
                program: self.program.clone(),
                status: out.status.to_string(),
                stderr: last_lines(&stderr),
            });
        }
        Ok(sig)
    }
}

/// The last few non-empty lines of a program's stderr, on one line (status lines of gpg
/// left out: they are for machines).
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[GNUPG:]"))
        .collect();
    let start = lines.len().saturating_sub(3);
    let text = lines[start..].join("; ");
    if text.is_empty() {
        "it printed nothing".to_string()
    } else {
        text
    }
}

/// Runs a prepared command with `stdin` fed from another thread (so neither side can block
/// the other on a full pipe), collecting stdout and stderr.
fn run(cmd: &mut Command, stdin: &[u8]) -> std::io::Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut w) = input.take() {
            // A program that stops reading early (an error) closes the pipe: its exit
            // status says what happened.
            let _ = w.write_all(&data);
        }
    });
    let out = child.wait_with_output();
    let _ = writer.join();
    out
}

/// `commit` (an object as [`crate::git::objects`] writes it, without signature) with the
/// signature in a `gpgsig` header after the committer line: each line of the signature
/// continued by one space, as git writes it.
pub fn add_signature_header(commit: &[u8], signature: &str) -> Vec<u8> {
    // The headers end at the first empty line.
    let end = commit
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 1)
        .unwrap_or(commit.len());
    let mut out = Vec::with_capacity(commit.len() + signature.len() + 64);
    out.extend_from_slice(&commit[..end]);
    out.extend_from_slice(b"gpgsig");
    let sig = signature.strip_suffix('\n').unwrap_or(signature);
    // `gpgsig FIRST LINE`, then every further line (empty ones too) after one space.
    for line in sig.split('\n') {
        out.push(b' ');
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(&commit[end..]);
    out
}

/// A commit's signature as checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureState {
    /// A valid signature by a key the verifier accepts (git's `G`, or `U`: good, of a
    /// key whose owner trust is not set).
    Good,
    /// A signature that does not verify, or by an expired or revoked key (git's `B`, `X`,
    /// `Y`, `R`).
    Bad,
    /// A signature that cannot be checked here: no public key, no allowed signers file,
    /// a signer not in it, or no program to check with (git's `E`).
    Unknown,
    /// No signature (git's `N`).
    Unsigned,
}

/// One commit's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureCheck {
    pub state: SignatureState,
    /// `openpgp` or `ssh`; `None` when unsigned.
    pub format: Option<Format>,
    /// Who signed, as the program says (a user id, an allowed signer's principal).
    pub signer: Option<String>,
    /// What the program said when the state is not `good` (or the trust of a good one).
    pub detail: Option<String>,
}

impl SignatureCheck {
    fn unsigned() -> Self {
        SignatureCheck {
            state: SignatureState::Unsigned,
            format: None,
            signer: None,
            detail: None,
        }
    }
}

/// Checks the signature of `commit` the way `git verify-commit` does, with this
/// repository's git config.
pub fn check_commit(repo: &Repo, commit: CommitId) -> Result<SignatureCheck, GitError> {
    let (sig, payload) = match repo.git.extract_signature(&commit.0, None) {
        Ok((s, p)) => (s.to_vec(), p.to_vec()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(SignatureCheck::unsigned()),
        Err(e) => {
            return Err(GitError::Git {
                op: format!("read the signature of {commit}"),
                source: e,
            })
        }
    };
    let cfg = repo
        .git
        .config()
        .map_err(GitError::git("read git config"))?;
    let text = String::from_utf8_lossy(&sig);
    let format = if text.contains("-----BEGIN SSH SIGNATURE-----") {
        Format::Ssh
    } else {
        Format::Openpgp
    };
    let program = program_for(&cfg, format);
    let dir = tempfile::Builder::new()
        .prefix("artifact-migrate-verify-")
        .tempdir()
        .map_err(GitError::io(std::env::temp_dir()))?;
    let sig_file = dir.path().join("commit.sig");
    std::fs::write(&sig_file, &sig).map_err(GitError::write(&sig_file))?;
    let check = match format {
        Format::Openpgp => check_openpgp(&program, &sig_file, &payload),
        Format::Ssh => {
            let allowed =
                config_string(&cfg, "gpg.ssh.allowedSignersFile").map(|p| expand_home(&p));
            check_ssh(&program, allowed.as_deref(), &sig_file, &payload)
        }
    };
    Ok(check)
}

fn unknown(format: Format, detail: impl Into<String>) -> SignatureCheck {
    SignatureCheck {
        state: SignatureState::Unknown,
        format: Some(format),
        signer: None,
        detail: Some(detail.into()),
    }
}

/// `gpg --keyid-format=long --status-fd=1 --verify SIG -`, read by its status lines as git
/// reads them.
fn check_openpgp(program: &str, sig_file: &Path, payload: &[u8]) -> SignatureCheck {
    let mut cmd = Command::new(program);
    cmd.args(["--keyid-format=long", "--status-fd=1", "--verify"])
        .arg(sig_file)
        .arg("-");
    let out = match run(&mut cmd, payload) {
        Ok(o) => o,
        Err(e) => return unknown(Format::Openpgp, format!("cannot run {program}: {e}")),
    };
    let status = String::from_utf8_lossy(&out.stdout);
    let mut state = None;
    let mut signer = None;
    let mut detail = None;
    for line in status.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let (word, args) = rest.split_once(' ').unwrap_or((rest, ""));
        // GOODSIG/BADSIG/EXPSIG/EXPKEYSIG/REVKEYSIG <long keyid> <user id>
        let uid = || args.split_once(' ').map(|(_, u)| u.to_string());
        match word {
            "GOODSIG" => {
                state = Some(SignatureState::Good);
                signer = uid();
            }
            "BADSIG" => {
                state = Some(SignatureState::Bad);
                signer = uid();
                detail = Some("the signature does not match the commit".to_string());
            }
            "EXPSIG" => {
                state = Some(SignatureState::Bad);
                signer = uid();
                detail = Some("the signature has expired".to_string());
            }
            "EXPKEYSIG" => {
                state = Some(SignatureState::Bad);
                signer = uid();
                detail = Some("the key has expired".to_string());
            }
            "REVKEYSIG" => {
                state = Some(SignatureState::Bad);
                signer = uid();
                detail = Some("the key was revoked".to_string());
            }
            "ERRSIG" if state.is_none() => {
                state = Some(SignatureState::Unknown);
            }
            "NO_PUBKEY" => {
                state = Some(SignatureState::Unknown);
                detail = Some(format!("no public key {args} in the keyring"));
            }
            "TRUST_UNDEFINED" | "TRUST_NEVER" if state == Some(SignatureState::Good) => {
                detail = Some(format!(
                    "good signature, key trust {}",
                    word.trim_start_matches("TRUST_").to_lowercase()
                ));
            }
            _ => {}
        }
    }
    match state {
        Some(state) => SignatureCheck {
            state,
            format: Some(Format::Openpgp),
            signer,
            detail,
        },
        None => unknown(
            Format::Openpgp,
            format!(
                "{program} could not check it: {}",
                last_lines(&String::from_utf8_lossy(&out.stderr))
            ),
        ),
    }
}

/// git's SSH check: the principals `find-principals` names for the signature in the allowed
/// signers file, then `-Y verify` as one of them.
fn check_ssh(
    program: &str,
    allowed: Option<&Path>,
    sig_file: &Path,
    payload: &[u8],
) -> SignatureCheck {
    let Some(allowed) = allowed.filter(|p| p.is_file()) else {
        return unknown(
            Format::Ssh,
            "gpg.ssh.allowedSignersFile needs to be configured and exist for ssh signature verification",
        );
    };
    let mut find = Command::new(program);
    find.args(["-Y", "find-principals", "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(sig_file);
    let found = match run(&mut find, b"") {
        Ok(o) => o,
        Err(e) => return unknown(Format::Ssh, format!("cannot run {program}: {e}")),
    };
    let principals: Vec<String> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if !found.status.success() || principals.is_empty() {
        // Not an allowed signer: is it a valid signature at all?
        let mut novalidate = Command::new(program);
        novalidate
            .args(["-Y", "check-novalidate", "-n", "git", "-s"])
            .arg(sig_file);
        return match run(&mut novalidate, payload) {
            Ok(o) if o.status.success() => unknown(
                Format::Ssh,
                format!(
                    "a valid signature by a key that is not in {}",
                    allowed.display()
                ),
            ),
            Ok(o) => SignatureCheck {
                state: SignatureState::Bad,
                format: Some(Format::Ssh),
                signer: None,
                detail: Some(last_lines(&String::from_utf8_lossy(&o.stderr))),
            },
            Err(e) => unknown(Format::Ssh, format!("cannot run {program}: {e}")),
        };
    }
    let mut last_error = String::new();
    for principal in &principals {
        let mut verify = Command::new(program);
        verify
            .args(["-Y", "verify", "-n", "git", "-f"])
            .arg(allowed)
            .args(["-I", principal, "-s"])
            .arg(sig_file);
        match run(&mut verify, payload) {
            Ok(o) if o.status.success() => {
                return SignatureCheck {
                    state: SignatureState::Good,
                    format: Some(Format::Ssh),
                    signer: Some(principal.clone()),
                    detail: None,
                }
            }
            Ok(o) => last_error = last_lines(&String::from_utf8_lossy(&o.stderr)),
            Err(e) => return unknown(Format::Ssh, format!("cannot run {program}: {e}")),
        }
    }
    SignatureCheck {
        state: SignatureState::Bad,
        format: Some(Format::Ssh),
        signer: principals.first().cloned(),
        detail: Some(last_error),
    }
}

impl std::fmt::Display for SignatureState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureState::Good => "good",
            SignatureState::Bad => "bad",
            SignatureState::Unknown => "unknown",
            SignatureState::Unsigned => "unsigned",
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_goes_after_the_committer_line_each_line_continued_by_a_space() {
        let commit = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 0 +0000\ncommitter C <c@x> 0 +0000\n\nsubject\n\nbody\n";
        let sig = "-----BEGIN PGP SIGNATURE-----\n\niQEz\n=abcd\n-----END PGP SIGNATURE-----\n";
        let signed = add_signature_header(commit, sig);
        assert_eq!(
            String::from_utf8(signed).unwrap(),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 0 +0000\ncommitter C <c@x> 0 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n =abcd\n -----END PGP SIGNATURE-----\n\nsubject\n\nbody\n"
        );
    }

    #[test]
    fn flags_override_the_config() {
        assert_eq!(SignMode::from_flags(false, false), SignMode::Config);
        assert_eq!(SignMode::from_flags(true, false), SignMode::Always);
        assert_eq!(SignMode::from_flags(false, true), SignMode::Never);
    }
}
