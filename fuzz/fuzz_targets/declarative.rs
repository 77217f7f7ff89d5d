//! The declarative (TOML) migration loader and the registry lint: no panic on any file;
//! every error names a line of its file; a loaded migration lints, registers and transforms
//! the real-shaped samples without panicking; and a cosmetic rewrite of the file (the same
//! TOML re-serialised by the `toml` crate) loads to the same checksum (SPEC §11).
//!
//! Input: up to three files separated by NUL bytes.
#![no_main]

use artifact_migrate::layout::Layouts;
use artifact_migrate::manifest::Document;
use artifact_migrate::schema::builtin::builtins;
use artifact_migrate::schema::declarative::{lint, load, register};
use artifact_migrate::schema::{Migration, MigrationContext, Registry};
use libfuzzer_sys::fuzz_target;

const PROTECTED: [&str; 4] = ["/job_id", "/run_id", "/job_ref", "/doctrine"];
const SAMPLES: [&[u8]; 3] = [
    include_bytes!("../../fixtures/samples/v1.0.0-manifest.json"),
    include_bytes!("../../fixtures/samples/v1.1.0-manifest.json"),
    include_bytes!("../../fixtures/samples/v1.2.0-manifest.json"),
];

fn files(data: &[u8]) -> Option<Vec<(String, String)>> {
    data.split(|&b| b == 0)
        .take(3)
        .enumerate()
        .map(|(i, f)| {
            let text = std::str::from_utf8(f).ok()?.to_string();
            Some((format!(".artifact-migrate/migrations/m{i}.toml"), text))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some(files) = files(data) else { return };
    let protected: Vec<String> = PROTECTED.iter().map(|s| s.to_string()).collect();
    let loaded = match load(&files, &protected) {
        Ok(m) => m,
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                let (_, text) = files
                    .iter()
                    .find(|(f, _)| *f == e.file)
                    .expect("an error names a file that was loaded");
                assert!(
                    e.line >= 1 && e.line <= text.lines().count() + 1,
                    "{e}: no such line"
                );
                assert!(!e.message.is_empty());
            }
            return;
        }
    };
    let b = builtins();
    let refs: Vec<&dyn Migration> = b.iter().map(|m| m.as_ref()).collect();
    for issue in lint(&refs, &loaded) {
        assert!(!issue.problem.is_empty());
    }
    let mut registry = Registry::with_builtins();
    let _ = register(&mut registry, loaded.clone());
    let _ = registry.lint();
    let layouts = Layouts::default();
    let ctx = MigrationContext {
        path: "artifacts/job-a/run-1/manifest.json",
        artifacts_root: "artifacts",
        layouts: &layouts,
    };
    for m in &loaded {
        let _ = m.canonical_form();
        for sample in SAMPLES {
            let mut doc = Document::parse(sample).expect("the samples parse");
            if let Ok(changes) = m.transform(&doc.value(), &ctx) {
                for c in changes {
                    let _ = doc.apply(&c.edit);
                }
            }
        }
    }
    // A cosmetic rewrite: same TOML, other layout. Same migrations, same checksums.
    let rewritten: Option<Vec<(String, String)>> = files
        .iter()
        .map(|(f, text)| {
            let table: toml::Table = toml::from_str(text).ok()?;
            Some((f.clone(), toml::to_string(&table).ok()?))
        })
        .collect();
    let Some(rewritten) = rewritten else { return };
    let again = load(&rewritten, &protected)
        .unwrap_or_else(|e| panic!("the rewritten files do not load: {e:?}\n{rewritten:?}"));
    let sums = |ms: &[artifact_migrate::schema::DeclarativeMigration]| -> Vec<String> {
        ms.iter().map(|m| m.checksum()).collect()
    };
    assert_eq!(
        sums(&loaded),
        sums(&again),
        "a cosmetic rewrite changed a checksum:\n{rewritten:?}"
    );
});
