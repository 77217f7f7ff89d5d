//! The canonical form (`manifest::canonical_json`) against one written from its definition
//! (Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, numbers
//! as written), and it reads back as the same document.
#![no_main]

use artifact_migrate::manifest::{canonical_json, Document};
use artifact_migrate_fuzz::{canonical, spans};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = Document::parse(data) else {
        return;
    };
    let ours = canonical_json(&doc.value());
    let tree = spans::scan(doc.as_str()).expect("the library accepted what is not JSON");
    let theirs = canonical::canonical(doc.as_str(), &tree);
    assert_eq!(ours, theirs, "canonical forms differ");
    // Canonical text is itself a document with the same value, and its own canonical form.
    let again = Document::parse(ours.as_bytes()).expect("the canonical form must parse");
    assert!(
        again.value().deep_eq(&doc.value()),
        "the canonical form changed the value"
    );
    assert_eq!(
        canonical_json(&again.value()),
        ours,
        "canonical form is not idempotent"
    );
});
