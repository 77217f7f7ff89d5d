//! `verify` (SPEC §9) against histories tampered with plain git: each tampered history exits
//! 1 with a finding that names the commit and the path (the commit only, for a finding about
//! a commit message), and the same repository before the tampering verifies with exit 0.

mod common;
mod common_audit;

use common::*;
use common_audit::*;
use serde_json::Value;

/// `five_runs` with one batch applied; returns the repository and the batch.
fn migrated() -> (TestRepo, String) {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let clean = verify_json(&repo, &[]);
    assert_eq!(clean["ok"], true, "{clean:#}");
    (repo, batch)
}

/// `verify --json [ARGS]`: checks the exit code agrees with `ok` and returns the report.
fn verify_json(repo: &TestRepo, args: &[&str]) -> Value {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let run = repo.cli(&all);
    let v = run.json();
    let ok = v["ok"].as_bool().unwrap_or_else(|| panic!("no ok:\n{run}"));
    run.expect_code(if ok { 0 } else { 1 });
    assert_eq!(
        v["findings"].as_array().unwrap().is_empty(),
        ok,
        "ok disagrees with the findings:\n{run}"
    );
    v
}

/// Replaces `from` (which must occur exactly once) by `to` in a working-tree file.
fn edit(repo: &TestRepo, path: &str, from: &str, to: &str) {
    let text = String::from_utf8(repo.file_bytes(path)).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {path}:\n{text}");
    repo.file(path, text.replace(from, to));
}

/// Plain `git commit --amend` of HEAD, committed at the batch's own date (so only the
/// tampering itself is different), with extra arguments (`--no-edit`, `-F -`, ...).
fn amend(repo: &TestRepo, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut cmd = repo.git_command();
    cmd.env("GIT_COMMITTER_DATE", format!("@{EPOCH} +0000"))
        .args(["commit", "-q", "--no-verify", "--allow-empty", "--amend"])
        .args(args)
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "git commit --amend failed");
}

#[test]
fn an_untampered_history_verifies_clean() {
    let (repo, batch) = migrated();
    let v = verify_json(&repo, &[]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["revision"], batch.as_str());
    assert_eq!(v["batches"], 1);
    assert_eq!(v["rollbacks"], 0);
    assert_eq!(v["manifests"], 5);
    assert_eq!(v["findings"], serde_json::json!([]));
    let text = repo.cli(["verify"]);
    text.expect_code(0);
    assert_eq!(
        text.stdout.trim(),
        format!(
            "verified 1 batch(es), 0 rollback(s) and 5 manifest(s) at {}: ok",
            short(&batch)
        )
    );
    // A history of two batches, a rollback and a re-apply is clean too.
    repo.cli(["rollback"]).expect_code(0);
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    repo.cli(["apply"]).expect_code(0);
    let v = verify_json(&repo, &[]);
    assert_eq!(
        (
            v["ok"].clone(),
            v["batches"].clone(),
            v["rollbacks"].clone()
        ),
        (Value::Bool(true), 3.into(), 1.into()),
        "{v:#}"
    );
}

#[test]
fn a_hand_edited_run_id_is_found() {
    let (repo, batch) = migrated();
    edit(
        &repo,
        P_FOUR,
        "\"run_id\": \"run-4sp\"",
        "\"run_id\": \"run-4sp-b\"",
    );
    repo.commit("fix the run id by hand");
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    assert_eq!(v["ok"], false);
    let f = findings(&v);
    assert!(!f.is_empty());
    for (commit, path, _) in &f {
        assert_eq!(commit, &tampered, "{v:#}");
        assert_eq!(path.as_deref(), Some(P_FOUR), "{v:#}");
    }
    let problems: Vec<&str> = f.iter().map(|x| x.2.as_str()).collect();
    assert!(
        problems.contains(&"the path says run \"run-4sp\" but run_id is \"run-4sp-b\"; expected artifacts/job-x/run-4sp-b/manifest.json or artifacts/runs/run-4sp-b/manifest.json"),
        "{problems:?}"
    );
    // A protected field changed since the batch: tampering, with the commit that made it.
    let tampering = format!(
        "tampering: protected field \"/run_id\" changed since batch {}; changed by 1 commit(s): {} (",
        short(&batch),
        short(&tampered)
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&tampering) && p.ends_with(", \"fix the run id by hand\")")),
        "{problems:?}"
    );
    // The text form names the commit and the path on each finding line, and exits 1.
    let text = repo.cli(["verify"]);
    text.expect_code(1);
    assert!(
        text.stdout.contains(&format!(
            "finding: {} {P_FOUR}: the path says run",
            short(&tampered)
        )),
        "{text}"
    );
    // The revision before the tampering still verifies.
    assert_eq!(verify_json(&repo, &[&batch])["ok"], true);
}

#[test]
fn an_edited_history_entry_in_a_later_commit_is_found() {
    let (repo, batch) = migrated();
    edit(
        &repo,
        P_FOUR,
        "\"Add chain_metadata\"",
        "\"Add chain_metadata (reviewed)\"",
    );
    repo.commit("tidy the history text");
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    assert_eq!(
        findings(&v),
        vec![(
            tampered,
            Some(P_FOUR.to_string()),
            format!(
                "history entry 1 differs from the one batch {} wrote",
                short(&batch)
            )
        )],
        "{v:#}"
    );
}

#[test]
fn an_edited_checksum_before_in_a_later_commit_is_found() {
    let (repo, batch) = migrated();
    let doc = repo.show_json("HEAD", P_CRLF);
    let old = last_history(&doc)["checksum_before"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = format!("sha256:{}", "0".repeat(64));
    edit(&repo, P_CRLF, &old, &forged);
    repo.commit("forge a checksum");
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    assert_eq!(
        findings(&v),
        vec![(
            tampered,
            Some(P_CRLF.to_string()),
            format!(
                "history entry 1 differs from the one batch {} wrote",
                short(&batch)
            )
        )],
        "{v:#}"
    );
}

/// The batch commit itself amended so that a history entry lies about the bytes before.
#[test]
fn a_forged_checksum_before_inside_the_batch_is_found() {
    let (repo, _) = migrated();
    let doc = repo.show_json("HEAD", P_ONELINE);
    let old = last_history(&doc)["checksum_before"]
        .as_str()
        .unwrap()
        .to_string();
    edit(
        &repo,
        P_ONELINE,
        &old,
        &format!("sha256:{}", "1".repeat(64)),
    );
    repo.git(["add", P_ONELINE]);
    amend(&repo, &["--no-edit"], None);
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0].0, tampered);
    assert_eq!(f[0].1.as_deref(), Some(P_ONELINE));
    assert!(
        f[0].2
            .starts_with("checksum_before does not match the file at base_commit"),
        "{v:#}"
    );
}

#[test]
fn a_batch_that_also_changed_an_input_file_is_found() {
    let (repo, _) = migrated();
    let message = repo.message("HEAD");
    repo.file(P_INPUT, "{\"brief\": \"spring launch, edited\"}\n");
    repo.git(["add", P_INPUT]);
    amend(&repo, &["--no-edit"], None);
    let tampered = repo.head();
    assert_eq!(repo.message("HEAD"), message, "the message was kept");
    assert!(repo
        .changed_paths("HEAD^", "HEAD")
        .contains(&P_INPUT.to_string()));
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0].0, tampered);
    assert_eq!(f[0].1.as_deref(), Some(P_INPUT));
    assert!(f[0].2.contains("not a manifest"), "{v:#}");
}

#[test]
fn a_batch_that_also_added_a_file_is_found() {
    let (repo, _) = migrated();
    repo.file("artifacts/job-x/run-4sp/outputs/extra.md", "smuggled\n");
    repo.git(["add", "-A"]);
    amend(&repo, &["--no-edit"], None);
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0].0, tampered);
    assert_eq!(
        f[0].1.as_deref(),
        Some("artifacts/job-x/run-4sp/outputs/extra.md")
    );
    assert!(f[0].2.contains("added"), "{v:#}");
}

#[test]
fn a_forged_manifest_count_is_found() {
    let (repo, _) = migrated();
    let message = repo.message("HEAD");
    assert!(message.contains("\nMigration-Manifests: 5\n"));
    let forged = message.replace("\nMigration-Manifests: 5\n", "\nMigration-Manifests: 6\n");
    amend(
        &repo,
        &["-F", "-", "--cleanup=verbatim"],
        Some(forged.trim_end()),
    );
    let tampered = repo.head();
    assert!(repo.message("HEAD").contains("Migration-Manifests: 6"));
    let v = verify_json(&repo, &[]);
    assert_eq!(
        findings(&v),
        vec![(
            tampered.clone(),
            None,
            "Migration-Manifests says 6 but the batch changed 5 manifest(s)".to_string()
        )],
        "{v:#}"
    );
    let text = repo.cli(["verify"]);
    text.expect_code(1);
    assert!(
        text.stdout.contains(&format!(
            "finding: {} -: Migration-Manifests says 6",
            short(&tampered)
        )),
        "{text}"
    );
}

#[test]
fn a_forged_step_count_is_found() {
    let (repo, _) = migrated();
    let message = repo.message("HEAD");
    let line = "\nMigration-Step: 1.0.0->1.2.0 4\n";
    assert!(message.contains(line), "{message}");
    let forged = message.replace(line, "\nMigration-Step: 1.0.0->1.2.0 3\n");
    amend(
        &repo,
        &["-F", "-", "--cleanup=verbatim"],
        Some(forged.trim_end()),
    );
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_deref()),
        (tampered.as_str(), None)
    );
    assert!(f[0].2.starts_with("Migration-Step trailers say"), "{v:#}");
}

#[test]
fn a_manifest_edited_after_its_migration_drifts() {
    let (repo, batch) = migrated();
    edit(
        &repo,
        P_FOUR,
        "\"status\": \"succeeded\"",
        "\"status\": \"failed\"",
    );
    repo.commit("mark the run failed by hand");
    let tampered = repo.head();
    // No protected field or history entry changed: a drift warning, not a finding.
    let v = verify_json(&repo, &[]);
    assert_eq!(v["ok"], true, "{v:#}");
    let w = &v["warnings"][0];
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(w["commit"], tampered.as_str());
    assert_eq!(w["path"], P_FOUR);
    assert!(
        w["problem"].as_str().unwrap().starts_with(&format!(
            "drift: status changed since batch {}; changed by 1 commit(s): {}",
            short(&batch),
            short(&tampered)
        )),
        "{v:#}"
    );
    assert_eq!(v["revision"], tampered.as_str());
    // --strict makes it a finding.
    let strict = verify_json(&repo, &["--strict"]);
    assert_eq!(
        findings(&strict)
            .into_iter()
            .map(|f| (f.0, f.1))
            .collect::<Vec<_>>(),
        vec![(tampered.clone(), Some(P_FOUR.to_string()))],
        "{strict:#}"
    );
    assert_eq!(verify_json(&repo, &["HEAD~1"])["ok"], true);
}

/// A commit made by hand that claims to roll back the batch but restores only four of its
/// five manifests.
#[test]
fn a_forged_rollback_that_restores_too_little_is_found() {
    let (repo, batch) = migrated();
    let paths = five_paths();
    let (kept, restored) = paths.split_last().unwrap();
    let mut args = vec!["checkout", "HEAD~1", "--"];
    args.extend(restored.iter().map(String::as_str));
    repo.git(&args);
    let subject = repo.git(["log", "-1", "--format=%s"]).trim().to_string();
    let message = format!(
        "Revert \"{subject}\"\n\nThis reverts commit {batch}.\n\nMigration-Rollback-Of: {batch}\nMigration-Manifests: 5\nMigration-Tool: {TOOL}\n"
    );
    repo.git(["commit", "-q", "--no-verify", "-m", &message]);
    let forged = repo.head();
    let v = verify_json(&repo, &[]);
    assert_eq!(v["rollbacks"], 1);
    assert_eq!(
        findings(&v),
        vec![(
            forged,
            Some(kept.clone()),
            format!(
                "the rollback did not restore this manifest of batch {}",
                short(&batch)
            )
        )],
        "{v:#}"
    );
}

/// A manifest committed by hand with a history entry no batch wrote.
#[test]
fn a_history_entry_no_batch_wrote_is_found() {
    let (repo, _) = migrated();
    let mut doc = repo.show_json("HEAD", P_FOUR);
    let fake = "0123456789abcdef0123456789abcdef01234567";
    doc["run_id"] = "run-new".into();
    doc["migration_history"][0]["base_commit"] = fake.into();
    let path = "artifacts/job-x/run-new/manifest.json";
    repo.file(path, doc);
    repo.commit("copy a run by hand");
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert!(!f.is_empty());
    assert!(
        f.contains(&(
            tampered,
            Some(path.to_string()),
            format!(
                "history entry 1 (base_commit {}) was not written by any batch reachable from here",
                &fake[..12]
            )
        )),
        "{v:#}"
    );
    assert!(f.iter().all(|x| x.1.as_deref() == Some(path)), "{v:#}");
}

/// A rollback commit amended to also change an input snapshot.
#[test]
fn a_rollback_that_also_changed_an_input_file_is_found() {
    let (repo, batch) = migrated();
    repo.cli(["rollback"]).expect_code(0);
    assert_eq!(verify_json(&repo, &[])["ok"], true);
    repo.file(P_INPUT, "{\"brief\": \"edited during the rollback\"}\n");
    repo.git(["add", P_INPUT]);
    amend(&repo, &["--no-edit"], None);
    let tampered = repo.head();
    let v = verify_json(&repo, &[]);
    assert_eq!(
        findings(&v),
        vec![(
            tampered,
            Some(P_INPUT.to_string()),
            format!(
                "the rollback changed a path batch {} did not",
                short(&batch)
            )
        )],
        "{v:#}"
    );
}

/// A rollback's `Migration-Manifests` trailer is read back by `log` as the number of
/// manifests it restored; a forged count must not pass the audit (SPEC §9: trailers agree
/// with the manifests).
#[test]
fn a_forged_manifest_count_on_a_rollback_is_found() {
    let (repo, _) = migrated();
    repo.cli(["rollback"]).expect_code(0);
    let message = repo.message("HEAD");
    assert!(message.contains("\nMigration-Manifests: 5\n"), "{message}");
    let forged = message.replace("\nMigration-Manifests: 5\n", "\nMigration-Manifests: 9\n");
    amend(
        &repo,
        &["-F", "-", "--cleanup=verbatim"],
        Some(forged.trim_end()),
    );
    let tampered = repo.head();
    let log = repo.cli(["log", "--json"]);
    assert_eq!(log.json()[0]["manifests"], 9, "log believes the trailer");
    let v = verify_json(&repo, &[]);
    let f = findings(&v);
    assert!(
        f.iter()
            .any(|(c, _, problem)| c == &tampered && problem.contains("Migration-Manifests")),
        "a rollback claiming 9 manifests for a batch of 5 verified clean: {v:#}"
    );
}
