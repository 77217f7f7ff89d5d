//! The manifest parser against serde_json: whatever one accepts the other accepts (but for
//! the documented differences), with the same value; the source is kept byte for byte.
#![no_main]

use artifact_migrate::manifest::{Document, MAX_DEPTH};
use artifact_migrate_fuzz::spans::{self, Kind, Node};
use libfuzzer_sys::fuzz_target;

/// Whether the scanned document has an object with a repeated key, or nests deeper than the
/// library's limit: the two things the library refuses and serde_json lets through.
fn refused_on_purpose(n: &Node, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    match &n.kind {
        Kind::Array(items) => items.iter().any(|i| refused_on_purpose(i, depth + 1)),
        Kind::Object(members) => {
            let mut keys: Vec<&str> = members.iter().map(|m| m.key.as_str()).collect();
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
                || members
                    .iter()
                    .any(|m| refused_on_purpose(&m.value, depth + 1))
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = Document::parse(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match (&ours, &theirs) {
        (Ok(doc), _) => {
            assert_eq!(
                doc.as_bytes(),
                data,
                "the source must be kept byte for byte"
            );
            let tree = spans::scan(doc.as_str()).expect("the library accepted what is not JSON");
            match &theirs {
                Ok(v) => assert_eq!(&doc.value().to_serde(), v, "the values differ"),
                // serde_json refuses numbers beyond f64 (1e400) and its own depth limit.
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("number out of range") || msg.contains("recursion limit"),
                        "serde_json refused what the library accepted: {msg}"
                    );
                    let _ = tree;
                }
            }
        }
        (Err(e), Ok(_)) => {
            let text = std::str::from_utf8(data).expect("serde_json read it as UTF-8");
            let tree = spans::scan(text).expect("serde_json accepted what the scanner cannot read");
            assert!(
                refused_on_purpose(&tree, 1),
                "the library refused JSON that serde_json reads: {e}"
            );
        }
        (Err(_), Err(_)) => {}
    }
});
