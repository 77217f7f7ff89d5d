//! `verify --inputs` (issue 12, SPEC §9): identity re-derived from the input snapshots as
//! the seed's pipeline does, on the seed's own history (fixtures/seed-history). Python's
//! `json.dumps` is the referee for the canonical hash; legacy runs are skipped.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const RUN: &str = "e99e867f0a3a1b77e9a3b895e33ff22d";

/// The seed's runs, committed and migrated.
fn seed() -> TestRepo {
    let repo = TestRepo::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed-history/artifacts");
    copy_dir(&src, &repo.path().join("artifacts"));
    repo.commit("the seed's runs");
    repo.cli(["apply"]).expect_code(0);
    repo
}

fn run_file(rel: &str) -> String {
    format!("artifacts/runs/{RUN}/{rel}")
}

fn verify(repo: &TestRepo, code: i32) -> Value {
    let run = repo.cli(["verify", "--inputs", "--json"]);
    run.expect_code(code);
    run.json()
}

fn problems(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("-").to_string(),
                f["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_seed_runs_re_derive_and_legacy_runs_are_skipped() {
    let repo = seed();
    let v = verify(&repo, 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(
        v["inputs"],
        serde_json::json!({"checked": 1, "skipped_legacy": 7, "snapshots": 4})
    );
    // The pipeline's own derivation, in Python, gives the recorded hash and run id.
    let doc: Value = serde_json::from_slice(&repo.file_bytes(&run_file("manifest.json"))).unwrap();
    let derived = python(
        "import json,sys,hashlib\nd=json.load(sys.stdin)\nm={k:v['sha256'] for k,v in d['input_snapshots'].items()}\nprint('sha256:'+hashlib.sha256(json.dumps(m,sort_keys=True,separators=(',',':'),ensure_ascii=False).encode()).hexdigest())",
        &repo.file_bytes(&run_file("manifest.json")),
    );
    assert_eq!(doc["inputs_hash"], derived);
    assert!(derived.starts_with(&format!("sha256:{RUN}")));
    let human = repo.cli(["verify", "--inputs"]);
    human.expect_code(0);
    assert!(
        human.stdout.contains(
            "inputs: 1 run(s) re-derived from 4 snapshot(s), 7 legacy run(s) without inputs_hash skipped"
        ),
        "{human}"
    );
    // Without --inputs there is no inputs key.
    let plain = repo.cli(["verify", "--json"]);
    plain.expect_code(0);
    assert_eq!(plain.json()["inputs"], Value::Null);
}

#[test]
fn a_changed_snapshot_names_the_file_and_both_checksums() {
    let repo = seed();
    let brief = run_file("inputs/brief.resolved.json");
    let old = repo.file_bytes(&brief);
    let new = b"{\"brief\": \"something else\"}\n".to_vec();
    repo.file(&brief, new.clone())
        .commit("change an input snapshot");
    let v = verify(&repo, 1);
    let found = problems(&v);
    assert_eq!(found.len(), 2, "{v:#}");
    assert_eq!(found[0].0, brief);
    assert_eq!(
        found[0].1,
        format!(
            "input snapshot brief: the manifest records sha256 \"{}\", the file has \"{}\"",
            sha256_hex(&old),
            sha256_hex(&new)
        )
    );
    assert_eq!(
        found[1].1,
        format!(
            "input snapshot brief: the manifest records bytes {}, the file has {}",
            old.len(),
            new.len()
        )
    );
    // Plain verify does not read inputs.
    repo.cli(["verify"]).expect_code(0);
}

#[test]
fn a_missing_snapshot_a_wrong_hash_and_a_doctrine_mismatch_are_findings() {
    let repo = seed();
    repo.git(["rm", "-q", &run_file("inputs/model_config.json")]);
    let doctrine = run_file("inputs/doctrine.resolved.json");
    repo.file(
        &doctrine,
        "{\n  \"doctrine_id\": \"prompts/instagram_copy\",\n  \"version\": \"v2.0.0\"\n}\n",
    )
    .commit("lose a snapshot, bump the doctrine file");
    let v = verify(&repo, 1);
    let found = problems(&v);
    let has = |path: &str, text: &str| found.iter().any(|f| f.0 == path && f.1.contains(text));
    assert!(
        has(
            &run_file("inputs/model_config.json"),
            &format!(
                "input snapshot model_config is missing (recorded in {})",
                run_file("manifest.json")
            )
        ),
        "{found:#?}"
    );
    assert!(
        has(
            &doctrine,
            &format!(
                "doctrine version is \"v2.0.0\" here, \"v1.0.0\" in {}",
                run_file("manifest.json")
            )
        ),
        "{found:#?}"
    );

    // A manifest whose inputs_hash no longer matches its snapshots, nor its run_id.
    let repo = seed();
    let p = run_file("manifest.json");
    let text = String::from_utf8(repo.file_bytes(&p)).unwrap();
    let forged = text.replace(
        "sha256:e99e867f0a3a1b77e9a3b895e33ff22de01f4861534a58e73a682fb85743e5b5",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert_ne!(forged, text);
    repo.file(&p, forged.as_str()).commit("forge inputs_hash");
    let v = verify(&repo, 1);
    let found = problems(&v);
    assert!(
        found.iter().any(|f| f.0 == p
            && f.1
                == "inputs_hash is sha256:0000000000000000000000000000000000000000000000000000000000000000, the input snapshots give sha256:e99e867f0a3a1b77e9a3b895e33ff22de01f4861534a58e73a682fb85743e5b5"),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|f| f.0 == p
            && f.1
                == format!("run_id is \"{RUN}\", inputs_hash gives \"00000000000000000000000000000000\" (or 00000000000000000000000000000000-N with N >= 2)")),
        "{found:#?}"
    );
}
