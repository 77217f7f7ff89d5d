//! `serve`: the real binary on a free loopback port (it binds port 0 and prints the address)
//! over real temporary repositories; answers compared with the CLI's JSON and with plain git.
//! The HTTP client is a few lines over `TcpStream` (one request per connection).

mod common;
mod common_audit;
mod common_serve;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;
use common_serve::{repo_with_runs, Server};

#[test]
fn the_endpoints_answer_what_the_cli_and_git_say() {
    let repo = repo_with_runs();
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/paged-job"])
        .expect_code(0);
    let server = Server::start(&repo);
    let head = repo.head();

    let health = server.json("/healthz");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["commit"], head.as_str());

    // /schemas/versions: the numbers of `status --json`.
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    let v = server.json("/schemas/versions");
    assert_eq!(v["commit"], head.as_str());
    for key in ["latest", "total", "pending", "versions"] {
        assert_eq!(v[key], status[key], "{key}: {v} vs {status}");
    }

    // /jobs/{job_id}: the runs of `runs --json --job`.
    let cli_runs = repo
        .cli(["runs", "--json", "--job", JOB])
        .expect_code(0)
        .json();
    let job = server.json(&format!("/jobs/{JOB}"));
    assert_eq!(job["job_id"], JOB);
    assert_eq!(job["next"], Value::Null);
    let pick = |runs: &Value| -> Vec<Value> {
        runs.as_array()
            .expect("runs")
            .iter()
            .map(|r| json!([r["run_id"], r["schema_version"], r["status"], r["path"]]))
            .collect()
    };
    assert_eq!(pick(&job["runs"]), pick(&cli_runs));
    assert_eq!(job["runs"].as_array().map(Vec::len), Some(3));

    // /jobs/{run_id}: that run.
    let run = server.json(&format!("/jobs/{RUN_110}"));
    assert_eq!(run["job_id"], JOB);
    assert_eq!(run["run_id"], RUN_110);
    assert!(run.get("runs").is_none());

    // The manifest: bytes from git, ETag the blob id, conditional GET.
    let path = manifest_path(&format!("{JOB}/{RUN_100}"));
    let target = format!("/jobs/{JOB}/runs/{RUN_100}");
    let r = server.get(&target);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, repo.show("HEAD", &path));
    let blob = repo
        .git(["rev-parse", &format!("HEAD:{path}")])
        .trim()
        .to_string();
    assert_eq!(r.header("etag"), format!("\"{blob}\""));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-commit"), head);
    assert_eq!(r.header("x-schema-version-stored"), "1.0.0");
    assert_eq!(r.header("x-schema-version-served"), "1.0.0");
    let etag = r.header("etag").to_string();
    let again = server.request("GET", &target, &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    let other = server.request("GET", &target, &[("If-None-Match", "\"0000\"")]);
    assert_eq!(other.status, 200);
    let head_req = server.request("HEAD", &target, &[]);
    assert_eq!(head_req.status, 200);
    assert!(head_req.body.is_empty());

    // ?as=latest: migrated in memory, as `show --json` migrates it; nothing written.
    let refs_before = repo.refs();
    let objects_before = repo.count_objects();
    let lazy = server.get(&format!("{target}?as=latest"));
    assert_eq!(lazy.status, 200, "{}", lazy.text());
    assert_eq!(lazy.header("x-schema-version-stored"), "1.0.0");
    assert_eq!(lazy.header("x-schema-version-served"), "1.2.0");
    assert_eq!(lazy.header("x-migrated-on-read"), "true");
    assert_eq!(lazy.header("etag"), "");
    let shown = repo.cli(["show", "--json", &path]).expect_code(0).json();
    assert_eq!(lazy.text(), shown["content"].as_str().expect("content"));
    let at = server.get(&format!("{target}?as=1.0.0"));
    assert_eq!(at.status, 200);
    assert_eq!(at.body, repo.show("HEAD", &path));
    assert_eq!(at.header("etag"), etag);
    assert_eq!(repo.refs(), refs_before);
    assert_eq!(repo.count_objects(), objects_before);
    assert_eq!(repo.porcelain(), "");

    // /migrations: the `log --json` entries; /migrations/{commit}: one, with its paths.
    let log = repo.cli(["log", "--json"]).expect_code(0).json();
    let m = server.json("/migrations");
    assert_eq!(m["commit"], head.as_str());
    let ids = |v: &Value| -> Vec<Value> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|b| {
                json!([
                    b["commit"],
                    b["kind"],
                    b["target"],
                    b["manifests"],
                    b["steps"]
                ])
            })
            .collect()
    };
    assert_eq!(ids(&m["batches"]), ids(&log));
    let one = server.json(&format!("/migrations/{}", &head[..10]));
    assert_eq!(one["commit"], head.as_str());
    assert_eq!(one["kind"], "migration");
    let mut changed = repo.changed_paths("HEAD~1", "HEAD");
    changed.sort();
    assert_eq!(one["paths"], json!(changed));
    assert_eq!(one["paths_total"], json!(changed.len()));

    let stopped = server.stop();
    assert!(
        stopped.stderr.contains("stopped by SIGTERM"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn lists_are_paged_by_limit_and_cursor() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let mut seen = Vec::new();
    let mut target = "/jobs/paged-job?limit=1".to_string();
    loop {
        let page = server.json(&target);
        let runs = page["runs"].as_array().expect("runs").clone();
        assert!(runs.len() <= 1);
        seen.extend(
            runs.iter()
                .map(|r| r["run_id"].as_str().unwrap_or("").to_string()),
        );
        match page["next"].as_str() {
            Some(c) => target = format!("/jobs/paged-job?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["run-1", "run-2", "run-3"]);

    // Two batches, one page each.
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/paged-job"])
        .expect_code(0);
    repo.cli(["apply", "-q"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let head = repo.head();
    while server.json("/healthz")["commit"] != head.as_str() {
        assert!(Instant::now() < deadline, "the server never reached {head}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = server.json("/migrations?limit=1");
    assert_eq!(first["batches"][0]["commit"], head.as_str());
    let next = first["next"].as_str().expect("a second page");
    let second = server.json(&format!("/migrations?limit=1&cursor={next}"));
    assert_eq!(second["batches"][0]["commit"], repo.rev("HEAD~1").as_str());
    assert_eq!(second["next"], Value::Null);
}

#[test]
fn errors_are_json_with_the_kind_tables_status() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let cases: &[(&str, u16, &str)] = &[
        ("/nowhere", 404, "not_found"),
        ("/jobs/no-such-id", 404, "not_found"),
        (&format!("/jobs/{JOB}/runs/nope"), 404, "not_found"),
        ("/migrations/abcdef12", 404, "not_found"),
        ("/jobs/..", 400, "usage"),
        ("/jobs/%2e%2e", 400, "usage"),
        ("/jobs/a%2Fb", 400, "usage"),
        ("/jobs/a%00b", 400, "usage"),
        ("/jobs/%ff", 400, "usage"),
        ("/migrations/not-hex", 400, "usage"),
        ("/jobs/paged-job?limit=0", 400, "usage"),
        ("/jobs/paged-job?limit=x", 400, "usage"),
        ("/jobs/paged-job?cursor=zz", 400, "usage"),
        ("/migrations?cursor=1234", 400, "usage"),
        (&format!("/jobs/{JOB}/runs/{RUN_100}?as=2"), 400, "usage"),
    ];
    for (target, status, kind) in cases {
        let r = server.get(target);
        assert_eq!(r.error(), (*status, kind.to_string()), "GET {target}");
        assert_eq!(r.header("content-type"), "application/json", "{target}");
    }
    let long = format!("/jobs/{}", "x".repeat(300));
    assert_eq!(server.get(&long).error(), (400, "usage".into()));
    let huge = format!("/jobs/x?cursor={}", "a".repeat(5000));
    assert_eq!(server.get(&huge).error(), (400, "usage".into()));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for target in ["/healthz", "/jobs/x", "/nowhere"] {
            let r = server.request(method, target, &[("Content-Length", "0")]);
            assert_eq!(r.error(), (405, "usage".into()), "{method} {target}");
            assert_eq!(r.header("allow"), "GET, HEAD");
        }
    }
    // A manifest that cannot be migrated: the preview's kind (failed, 422).
    let repo2 = TestRepo::new();
    repo2
        .manifest(
            "job/run-x",
            json!({"schema_version": "9.0.0", "run_id": "run-x"}),
        )
        .commit("a run from the future");
    let s2 = Server::start(&repo2);
    let r = s2.get("/jobs/job/runs/run-x?as=latest");
    assert!(r.status >= 400, "{}", r.text());
    let (status, kind) = r.error();
    let kinds: BTreeMap<&str, u16> = [
        ("failed", 422),
        ("usage", 400),
        ("not_found", 404),
        ("environment", 500),
        ("refused", 409),
        ("internal", 500),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds.get(kind.as_str()), Some(&status), "{kind} {status}");
}

#[test]
fn it_follows_the_branch_and_answers_for_one_commit() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let before = repo.head();
    assert_eq!(server.json("/schemas/versions")["total"], 6);
    // A plain git commit (no artifact-migrate involved): the watcher picks it up.
    repo.manifest(
        "paged-job/run-4",
        json!({"schema_version": "1.0.0", "run_id": "run-4"}),
    )
    .commit("one more run");
    let after = repo.head();
    assert_ne!(before, after);
    let start = Instant::now();
    loop {
        let v = server.json("/schemas/versions");
        let commit = v["commit"].as_str().unwrap_or("").to_string();
        // Each answer is of one commit: the old one with 6 runs or the new one with 7.
        match (commit == before, commit == after) {
            (true, _) => assert_eq!(v["total"], 6, "{v}"),
            (_, true) => {
                assert_eq!(v["total"], 7, "{v}");
                break;
            }
            _ => panic!("an answer of neither commit: {v}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server never followed the branch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let job = server.json("/jobs/paged-job");
    assert_eq!(job["commit"], after.as_str());
    assert_eq!(job["runs"].as_array().map(Vec::len), Some(4));
    let r = server.get("/jobs/paged-job/runs/run-4");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-commit"), after);
    // serve wrote nothing to the repository: only the index, under .git/artifact-migrate/.
    assert_eq!(repo.porcelain(), "");
    server.stop();
}

#[test]
fn sigint_stops_it_gracefully() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    assert_eq!(server.get("/healthz").status, 200);
    let mut p = server.proc.expect("running");
    p.send("INT");
    assert!(p.wait_for_prefix("note: stopped by SIGINT"), "{:?}", p.seen);
    let (_, status) = p.finish_status();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(2), "{status}");
}

#[test]
fn the_openapi_document_is_the_one_in_docs_and_names_every_route() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let r = server.get("/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    let in_docs = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    assert_eq!(
        r.body, in_docs,
        "the served document and docs/openapi.json differ"
    );
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 8, "{:?}", paths.keys());
    for p in paths.keys() {
        let target = p
            .replace("{id}", JOB)
            .replace("{job_id}", JOB)
            .replace("{run_id}", RUN_100)
            .replace("{commit}", "abcd");
        let r = server.get(&target);
        let fallback = r.status == 404
            && r.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no such endpoint"));
        assert!(!fallback, "{p} is documented but not routed");
    }
}

/// `status --json`'s distribution as the timeline gives one: `(versions, pending, total)`.
fn distribution(status: &Value) -> (Value, Value, Value) {
    (
        status["versions"].clone(),
        status["pending"].clone(),
        status["total"].clone(),
    )
}

#[test]
fn the_timeline_is_the_status_after_each_batch() {
    let repo = repo_with_runs();
    repo.manifest(
        "odd-job/run-bad",
        json!({"schema_version": 1, "run_id": "run-bad"}),
    )
    .commit("a manifest with no readable version");
    let mut after = Vec::new();
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/paged-job"])
        .expect_code(0);
    after.push(repo.cli(["status", "--json"]).expect_code(0).json());
    let job = format!("artifacts/{JOB}");
    repo.cli(["apply", "-q", &job, "artifacts/paged-job"])
        .expect_code(0);
    after.push(repo.cli(["status", "--json"]).expect_code(0).json());
    repo.cli(["rollback", "-q"]).expect_code(0);
    after.push(repo.cli(["status", "--json"]).expect_code(0).json());
    after.reverse();
    let server = Server::start(&repo);
    let log = repo.cli(["log", "--json"]).expect_code(0).json();
    let t = server.json("/schemas/timeline");
    assert_eq!(t["commit"], repo.head().as_str());
    assert_eq!(t["latest"], after[0]["latest"]);
    assert_eq!(t["next"], Value::Null);
    let bars = t["batches"].as_array().expect("batches");
    let entries = log.as_array().expect("log entries");
    assert_eq!(bars.len(), 3, "{t}");
    assert_eq!(bars.len(), entries.len());
    for ((bar, entry), status) in bars.iter().zip(entries).zip(&after) {
        for key in ["commit", "kind", "date", "subject", "target"] {
            assert_eq!(bar[key], entry[key], "{key}: {bar} vs {entry}");
        }
        assert_eq!(
            (
                bar["versions"].clone(),
                bar["pending"].clone(),
                bar["total"].clone()
            ),
            distribution(status),
            "{bar} vs {status}"
        );
        let invalid = status["invalid"].as_array().map(Vec::len);
        assert_eq!(
            bar["unreadable"].as_u64(),
            invalid.map(|n| n as u64),
            "{bar}"
        );
    }
    assert_eq!(bars[0]["kind"], "rollback");
    // Each bar has exactly the fields docs/openapi.json requires (it allows no others).
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("openapi.json is JSON");
    let required = |name: &str| -> Vec<String> {
        let mut v = strings(&doc["components"]["schemas"][name]["required"]);
        v.sort();
        v
    };
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&t), required("Timeline"));
    for bar in bars {
        assert_eq!(keys(bar), required("TimelineBar"), "{bar}");
    }
    // Paged like /migrations, and the same bars.
    let first = server.json("/schemas/timeline?limit=2");
    assert_eq!(first["batches"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().expect("a second page");
    let second = server.json(&format!("/schemas/timeline?limit=2&cursor={next}"));
    assert_eq!(second["batches"][0], bars[2]);
    assert_eq!(second["next"], Value::Null);
    assert_eq!(
        server.get("/schemas/timeline?cursor=abcd").error(),
        (400, "usage".into())
    );
    assert_eq!(
        server.get("/schemas/timeline?limit=0").error(),
        (400, "usage".into())
    );
}

#[test]
fn an_empty_history_has_an_empty_timeline() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let t = server.json("/schemas/timeline");
    assert_eq!(t["batches"], json!([]));
    assert_eq!(t["next"], Value::Null);
}

#[test]
fn the_dashboard_and_its_assets_are_served_from_the_binary() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/serve/dashboard/");
    let cases = [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/assets/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "style.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "favicon.svg", "image/svg+xml"),
    ];
    for (target, file, content_type) in cases {
        let r = server.get(target);
        assert_eq!(r.status, 200, "GET {target}");
        assert_eq!(r.header("content-type"), content_type, "{target}");
        let on_disk = std::fs::read(format!("{dir}{file}")).expect("the asset");
        assert_eq!(r.body, on_disk, "{target} is not {file}");
        let csp = r.header("content-security-policy");
        assert!(csp.starts_with("default-src 'none';"), "{target}: {csp}");
        for directive in [
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{target}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{target}: {csp}");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        let head = server.request("HEAD", target, &[]);
        assert_eq!(head.status, 200, "HEAD {target}");
        assert_eq!(head.header("content-type"), content_type);
        assert_eq!(head.header("content-length"), on_disk.len().to_string());
        assert!(head.body.is_empty(), "HEAD {target} has a body");
    }
    // The page names only assets that are served, and loads nothing from elsewhere.
    let page = server.get("/").text();
    for asset in ["/assets/app.js", "/assets/style.css", "/assets/favicon.svg"] {
        assert!(page.contains(asset), "{asset}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
    for target in [
        "/assets/nope.js",
        "/assets/",
        "/assets/..%2Fapi.rs",
        "/index.html",
    ] {
        let r = server.get(target);
        assert_eq!(r.error(), (404, "not_found".into()), "{target}");
    }
    let r = server.request("POST", "/", &[("Content-Length", "0")]);
    assert_eq!(r.error(), (405, "usage".into()));
}

/// Found with schemathesis (docs/serve.md, "Conformance"): requests the OpenAPI document
/// allows must not be refused as malformed (400). A well-formed cursor naming no batch is a
/// batch not found; a path parameter's length is counted in characters, as `maxLength`
/// counts; the longest request the document allows fits the request-target limit.
#[test]
fn requests_the_openapi_document_allows_are_not_refused_as_malformed() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    let unknown = "0".repeat(40);
    let r = server.get(&format!("/migrations?cursor={unknown}"));
    assert_eq!(r.error(), (404, "not_found".into()), "{}", r.text());
    // 256 two-byte characters: 512 bytes, within the 256 the document allows.
    let id = "%C3%A9".repeat(256);
    let r = server.get(&format!("/jobs/{id}"));
    assert_eq!(r.error(), (404, "not_found".into()), "{}", r.text());
    let r = server.get(&format!("/jobs/{}", "%C3%A9".repeat(257)));
    assert_eq!(r.error(), (400, "usage".into()));
    // The longest: 256 four-byte characters percent-encoded (3072 bytes) and a cursor of
    // 4096 hex digits.
    let id = "%F0%9F%98%80".repeat(256);
    let cursor = "61".repeat(2048);
    let r = server.get(&format!("/jobs/{id}?limit=1000&cursor={cursor}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["runs"], json!([]));
}

/// Found while making the document's patterns exact for schemathesis: the server took
/// cursors and page sizes no server ever gives out or the document allows.
#[test]
fn cursors_and_limits_are_taken_only_as_documented() {
    let repo = repo_with_runs();
    let server = Server::start(&repo);
    // The job's cursor is the last run_id given, in lower-case hex: any run_id is a place in
    // the list, whether or not it is there.
    let first = server.json("/jobs/paged-job?limit=1");
    assert_eq!(first["next"], "72756e2d31", "{first}"); // hex of "run-1"
    let after = server.json("/jobs/paged-job?cursor=72756e2d31352e35"); // "run-15.5"
    let runs: Vec<&str> = after["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(runs, ["run-2", "run-3"]);
    for target in [
        "/jobs/paged-job?cursor=",           // empty
        "/jobs/paged-job?cursor=72756E2D31", // upper-case digits
        "/jobs/paged-job?cursor=%2B7",       // a sign
        "/jobs/paged-job?cursor=00",         // a control character
        "/jobs/paged-job?cursor=c3",         // not UTF-8
        "/jobs/paged-job?limit=%2B5",        // a sign
        "/migrations/abcd?cursor=",
    ] {
        let r = server.get(target);
        assert_eq!(
            r.error(),
            (400, "usage".into()),
            "GET {target}: {}",
            r.text()
        );
    }
}
