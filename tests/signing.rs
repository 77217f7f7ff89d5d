//! Signed commits (issue 12): `apply`, `rollback`, `repair --accept` and `relocate` sign
//! when git would (`commit.gpgsign`, `--sign` / `--no-sign`), with OpenPGP or SSH keys made
//! here, so that plain `git verify-commit` accepts them; a signing failure changes nothing;
//! `verify` reports each commit's signature and `--require-signed` makes the ones that are
//! not good findings.
//!
//! The keys live in each test's own `HOME` (`~/.gnupg`, `~/.ssh`); a test whose program is
//! missing prints one SKIPPED line and returns. The gpg-agent a test starts is killed when
//! the test ends ([`Gpg`]'s drop).

mod common;
mod common_audit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use common_audit::*;
use serde_json::Value;

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// An OpenPGP keyring in the repository's `HOME`, with one key for the committer. Dropping
/// it stops the gpg-agent gpg started for it.
struct Gpg {
    gnupghome: PathBuf,
}

impl Gpg {
    /// A key for `uid`, without passphrase; `None` (after a SKIPPED line) without gpg.
    fn new(repo: &TestRepo, test: &str, uid: &str) -> Option<Gpg> {
        if !have("gpg", "--version") {
            eprintln!("SKIPPED: {test} not run: gpg not found (Debian package gnupg)");
            return None;
        }
        let gnupghome = repo.home().join(".gnupg");
        std::fs::create_dir_all(&gnupghome).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&gnupghome, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let gpg = Gpg { gnupghome };
        gpg.run(&[
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]);
        Some(gpg)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &self.gnupghome)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.gnupghome)
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An SSH key pair at `dir/name` (no passphrase); returns the public key line.
fn ssh_key(dir: &Path, name: &str) -> String {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// `five_runs` with SSH signing configured as git documents it: `gpg.format=ssh`, the key
/// file in `user.signingkey`, the committer's key in `gpg.ssh.allowedSignersFile`.
fn ssh_repo(test: &str) -> Option<TestRepo> {
    if !have("ssh-keygen", "-?") {
        eprintln!("SKIPPED: {test} not run: ssh-keygen not found (Debian package openssh-client)");
        return None;
    }
    let repo = five_runs();
    let ssh = repo.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let public = ssh_key(&ssh, "id_ed25519");
    let allowed = ssh.join("allowed_signers");
    std::fs::write(&allowed, format!("{COMMITTER_EMAIL} {public}\n")).unwrap();
    repo.git(["config", "gpg.format", "ssh"]);
    repo.git([
        "config",
        "user.signingkey",
        ssh.join("id_ed25519").to_str().unwrap(),
    ]);
    repo.git([
        "config",
        "gpg.ssh.allowedSignersFile",
        allowed.to_str().unwrap(),
    ]);
    Some(repo)
}

/// What plain git says of a commit's signature: `%G?` and whether `git verify-commit`
/// accepts it.
fn git_says(repo: &TestRepo, rev: &str) -> (String, bool) {
    let g = repo
        .git(["log", "-1", "--format=%G?", rev])
        .trim()
        .to_string();
    let ok = repo
        .git_command()
        .args(["verify-commit", rev])
        .output()
        .unwrap()
        .status
        .success();
    (g, ok)
}

fn verify_json(repo: &TestRepo, args: &[&str], code: i32) -> Value {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let run = repo.cli(&all);
    run.expect_code(code);
    run.json()
}

fn states(report: &Value) -> Vec<(String, String)> {
    report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const UID: &str = "Migration Committer <committer@migrations.example>";

#[test]
fn with_commit_gpgsign_apply_rollback_and_repair_sign_with_openpgp_as_git_does() {
    let repo = five_runs();
    let Some(_gpg) = Gpg::new(&repo, "openpgp signing", UID) else {
        return;
    };
    repo.git(["config", "commit.gpgsign", "true"]);
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));
    // The signature sits in a gpgsig header, as git writes it.
    let raw = repo.git(["cat-file", "commit", "HEAD"]);
    assert!(
        raw.contains("\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n"),
        "{raw}"
    );
    repo.cli(["rollback"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));
    repo.cli(["repair", "--accept", "1.1.0->1.2.0"])
        .expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));

    // verify checks each of them as git verify-commit does.
    let v = verify_json(&repo, &["--require-signed"], 0);
    assert_eq!(
        states(&v),
        vec![
            ("repair".to_string(), "good".to_string()),
            ("rollback".to_string(), "good".to_string()),
            ("batch".to_string(), "good".to_string()),
        ]
    );
    let sig = &v["signatures"][2];
    assert_eq!(sig["commit"], batch);
    assert_eq!(sig["format"], "openpgp");
    assert_eq!(sig["signer"], UID);
    let human = repo.cli(["verify"]);
    human.expect_code(0);
    assert!(
        human
            .stdout
            .contains("signatures: 3 good, 0 bad, 0 unknown, 0 unsigned"),
        "{human}"
    );
}

#[test]
fn no_sign_overrides_the_config_and_sign_signs_without_it() {
    let repo = five_runs();
    let Some(_gpg) = Gpg::new(&repo, "--sign / --no-sign", UID) else {
        return;
    };
    repo.git(["config", "commit.gpgsign", "true"]);
    repo.cli(["apply", "--no-sign"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("N".to_string(), false));
    repo.git(["config", "commit.gpgsign", "false"]);
    repo.cli(["rollback", "--sign"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));
    // Without any signing config, nothing is signed (and nothing runs gpg).
    repo.git(["config", "--unset", "commit.gpgsign"]);
    repo.cli(["apply"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("N".to_string(), false));
    let usage = repo.cli(["apply", "--sign", "--no-sign"]);
    usage.expect_code(2);

    // verify reports each state; --require-signed makes the unsigned ones findings.
    let v = verify_json(&repo, &[], 0);
    assert_eq!(
        states(&v),
        vec![
            ("batch".to_string(), "unsigned".to_string()),
            ("rollback".to_string(), "good".to_string()),
            ("batch".to_string(), "unsigned".to_string()),
        ]
    );
    let strict = verify_json(&repo, &["--require-signed"], 1);
    assert_eq!(strict["ok"], false);
    let found = findings(&strict);
    assert_eq!(found.len(), 2, "{strict:#}");
    let unsigned: Vec<String> = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "unsigned")
        .map(|s| s["commit"].as_str().unwrap().to_string())
        .collect();
    for (f, id) in found.iter().zip(&unsigned) {
        assert_eq!(&f.0, id);
        assert!(f.2.contains("the batch commit is not signed"), "{f:?}");
    }
    let human = repo.cli(["verify", "--require-signed"]);
    human.expect_code(1);
    assert!(
        human
            .stdout
            .contains("signatures: 1 good, 0 bad, 0 unknown, 2 unsigned"),
        "{human}"
    );
}

/// The files of a snapshot that differ from (or are missing in) the other.
fn changes(
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    after: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut out: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
    // The scan's cache of blob versions (docs/design.md, "Why a version cache") is not
    // repository content: the scan fills it before the commit is signed.
    out.retain(|k| k != "artifact-migrate/versions");
    out
}

/// A signing failure stops the command before the branch moves: no ref, no object, no file
/// changed, and the error says what failed and what to do.
#[test]
fn a_signing_failure_commits_nothing() {
    let repo = five_runs();
    repo.git(["config", "commit.gpgsign", "true"]);
    let missing = repo.home().join("no-such-gpg");
    repo.git(["config", "gpg.program", missing.to_str().unwrap()]);
    let git_before = repo.git_dir_snapshot();
    let files_before = repo.worktree_snapshot();
    let head = repo.head();
    let run = repo.cli(["apply", "--json"]);
    run.expect_code(2);
    assert_eq!(run.json()["error"]["kind"], "environment", "{run}");
    let msg = error_message(&run);
    assert!(
        msg.contains("cannot run") && msg.contains("gpg.program"),
        "{msg}"
    );
    assert!(msg.contains("--no-sign"), "{msg}");
    assert_eq!(repo.head(), head);
    assert_eq!(
        changes(&git_before, &repo.git_dir_snapshot()),
        Vec::<String>::new()
    );
    assert!(repo.worktree_snapshot() == files_before);
    assert_eq!(stray_tmp_files(&repo), Vec::<String>::new());

    // A real gpg without the key: gpg's own complaint, nothing committed.
    let Some(_gpg) = Gpg::new(
        &repo,
        "signing failure with real gpg",
        "Someone Else <else@x.example>",
    ) else {
        return;
    };
    repo.git(["config", "--unset", "gpg.program"]);
    repo.git(["config", "user.signingkey", "nobody@nowhere.example"]);
    let git_before = repo.git_dir_snapshot();
    let run = repo.cli(["apply"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("gpg failed to sign the commit")
            && run.stderr.contains("nothing was committed"),
        "{run}"
    );
    assert_eq!(repo.head(), head);
    assert_eq!(
        changes(&git_before, &repo.git_dir_snapshot()),
        Vec::<String>::new()
    );
    assert!(repo.worktree_snapshot() == files_before);
}

#[test]
fn ssh_signatures_are_checked_against_the_allowed_signers_file() {
    let Some(repo) = ssh_repo("ssh signing") else {
        return;
    };
    repo.cli(["apply", "--sign"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));
    let raw = repo.git(["cat-file", "commit", "HEAD"]);
    assert!(
        raw.contains("\ngpgsig -----BEGIN SSH SIGNATURE-----\n "),
        "{raw}"
    );
    repo.git(["config", "commit.gpgsign", "true"]);
    repo.cli(["rollback"]).expect_code(0);
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));

    let v = verify_json(&repo, &["--require-signed"], 0);
    assert_eq!(
        states(&v),
        vec![
            ("rollback".to_string(), "good".to_string()),
            ("batch".to_string(), "good".to_string()),
        ]
    );
    assert_eq!(v["signatures"][0]["format"], "ssh");
    assert_eq!(v["signatures"][0]["signer"], COMMITTER_EMAIL);

    // A signer who is not in the allowed signers file: git does not accept it, and verify
    // cannot call it good.
    let ssh = repo.home().join(".ssh");
    let other = ssh_key(&ssh, "other");
    std::fs::write(
        ssh.join("allowed_signers"),
        format!("someone@else.example {other}\n"),
    )
    .unwrap();
    assert!(!git_says(&repo, "HEAD").1);
    let v = verify_json(&repo, &[], 0);
    assert_eq!(v["signatures"][0]["state"], "unknown", "{v:#}");
    let strict = verify_json(&repo, &["--require-signed"], 1);
    assert_eq!(findings(&strict).len(), 2, "{strict:#}");
}

/// A signed commit altered afterwards (its author rewritten, the signature kept): git
/// rejects it, verify says bad.
#[test]
fn an_altered_signed_commit_is_bad() {
    let Some(repo) = ssh_repo("bad ssh signature") else {
        return;
    };
    repo.cli(["apply", "--sign"]).expect_code(0);
    let raw = repo.git(["cat-file", "commit", "HEAD"]);
    let forged = raw.replacen(AUTHOR_NAME, "Someone Else", 1);
    assert_ne!(forged, raw);
    let id = repo.git_stdin(
        ["hash-object", "-t", "commit", "-w", "--stdin"],
        forged.as_bytes(),
    );
    repo.git(["update-ref", "refs/heads/main", id.trim()]);
    assert_eq!(git_says(&repo, "HEAD"), ("B".to_string(), false));
    let v = verify_json(&repo, &[], 0);
    assert_eq!(v["signatures"][0]["state"], "bad", "{v:#}");
    let strict = verify_json(&repo, &["--require-signed"], 1);
    let found = findings(&strict);
    assert!(
        found
            .iter()
            .any(|f| f.2.contains("the batch commit's signature is bad")),
        "{strict:#}"
    );
}

/// `relocate` writes a batch-like commit: it signs it too.
#[test]
fn relocate_signs_its_commit() {
    let Some(repo) = ssh_repo("relocate signing") else {
        return;
    };
    // A legacy run to move: the 1.1.0 sample under artifacts/runs/<run>/.
    repo.file(
        &format!("artifacts/runs/{RUN_120}/manifest.json"),
        sample_v120_own_run(),
    )
    .commit("a run in the legacy layout");
    let run = repo.cli(["relocate", "--sign", "--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["commit"], repo.head(), "{run}");
    assert_eq!(git_says(&repo, "HEAD"), ("G".to_string(), true));
    let v = verify_json(&repo, &["--require-signed"], 0);
    assert_eq!(v["signatures"][0]["kind"], "relocation");
    assert_eq!(v["signatures"][0]["state"], "good");
}
