//! schemathesis (PyPI) against `/openapi.json` of the real `serve` over a real temporary
//! repository: three schema versions, two batches and a rollback. Every check schemathesis
//! has runs, in all four phases (examples, coverage, fuzzing, stateful), bounded by a number
//! of examples per operation; the test fails with schemathesis's report when it finds
//! anything. Where schemathesis is not installed it says so in one line and returns.
//!
//! What schemathesis found, and what was fixed, is in docs/serve.md ("Conformance").

mod common;
mod common_audit;
mod common_serve;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use common_serve::{repo_with_runs, Server};

/// Examples per operation and phase: enough to reach every parameter's edges (the coverage
/// phase enumerates those on its own), few enough to finish well inside a minute.
const MAX_EXAMPLES: &str = "15";
/// A fixed seed, so a failure in CI is the one a person reruns.
const SEED: &str = "20261202";
/// The whole run's deadline; past it the test fails (and stops schemathesis).
const DEADLINE: Duration = Duration::from_secs(240);

/// The only setting the command line cannot give: a schema-valid `?as=V` that the registry
/// has no path to (or a downgrade) is 422 by the kind table, which is no rejection of
/// malformed data; schemathesis's default list for valid data has no 422.
const CONFIG: &str = r#"
[generation]
database = "none"

[[operations]]
include-operation-id = "manifest"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "404", "422"]
"#;

fn schemathesis_version() -> Option<String> {
    let out = Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The samples (1.0.0, 1.1.0, 1.2.0) and a second job of three 1.0.0 runs; a batch to 1.1.0
/// of that job, a batch to 1.2.0 of the rest, and the rollback of the second: the history
/// holds both kinds and HEAD holds all three versions.
fn repo_with_history() -> TestRepo {
    let repo = repo_with_runs();
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/paged-job"])
        .expect_code(0);
    repo.cli(["apply", "-q"]).expect_code(0);
    repo.cli(["rollback", "-q"]).expect_code(0);
    repo.cli(["index", "-q"]).expect_code(0);
    repo
}

#[test]
fn schemathesis_finds_nothing_against_the_openapi_document() {
    let Some(version) = schemathesis_version() else {
        eprintln!(
            "SKIPPED: serve_schemathesis not run: `schemathesis` not found (pip install schemathesis)"
        );
        return;
    };
    let repo = repo_with_history();
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(
        status["versions"].as_object().map(|v| v.len()),
        Some(3),
        "the repository should hold three versions: {status}"
    );
    let server = Server::start(&repo);
    let work = tempfile::tempdir().expect("a temporary directory");
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write schemathesis.toml");
    let url = format!("http://{}/openapi.json", server.addr);

    let mut child = Command::new("schemathesis")
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url, "--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "2", "--request-timeout", "20"])
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start schemathesis");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait for schemathesis") {
            break Some(s);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = format!(
        "{version}, seed {SEED}:\n{}\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    let exit = exit.unwrap_or_else(|| panic!("schemathesis ran past {DEADLINE:?}:\n{report}"));
    assert!(
        exit.success(),
        "schemathesis found failures ({exit}):\n{report}"
    );
    // It tested every operation but the document itself (schemathesis leaves the schema's
    // own URL out).
    assert!(
        report.contains("7 selected / 7 total"),
        "not every operation was tested:\n{report}"
    );
    assert!(report.contains("Tested: 7"), "{report}");
    server.stop();
}
