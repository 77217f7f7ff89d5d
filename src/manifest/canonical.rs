//! The artifact pipeline's canonical JSON form and its SHA-256 checksum (SPEC §5).

use sha2::{Digest, Sha256};

use crate::manifest::render::write_string;
use crate::manifest::value::Json;

/// The canonical JSON text of `value`: object keys sorted by code point, separators `,` and `:`
/// without whitespace, non-ASCII as raw UTF-8, strings escaped like Python's `json.dumps` with
/// `ensure_ascii=False`, numbers exactly as written.
///
/// Equals Python's `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
/// for ordinary numbers; Python would re-spell numbers such as `1e-400`, `1E+5` or `-0.0`, which
/// are kept here as the source wrote them.
pub fn canonical_json(value: &Json) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value, None);
    out
}

/// [`canonical_json`] of an object without its member `skip` (the form a checksum of a
/// manifest without its history takes), without copying the object first.
pub fn canonical_json_without(value: &Json, skip: &str) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value, Some(skip));
    out
}

/// Writes `value`; `skip` names a member of this (root) object to leave out.
fn write_canonical(out: &mut String, value: &Json, skip: Option<&str>) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(text) => out.push_str(text),
        Json::String(s) => write_string(out, s, false, false),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item, None);
            }
            out.push(']');
        }
        Json::Object(members) => {
            // Byte order of UTF-8 is code point order, which is how Python sorts str keys.
            let mut sorted: Vec<&(String, Json)> = members
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (key, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key, false, false);
                out.push(':');
                write_canonical(out, v, None);
            }
            out.push('}');
        }
    }
}

/// `"sha256:"` followed by the 64 lowercase hex digits of the SHA-256 of `bytes`.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Document;

    fn parse_value(src: &str) -> Json {
        match Document::parse(src.as_bytes()) {
            Ok(d) => d.value(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn canonical_form_sorts_compacts_and_keeps_numbers() {
        let v = parse_value(
            "{\n  \"b\": [1.0, 1e-400, -0.0, 1E+5, 123456789012345678901234567890],\n  \"a\": \"M\\u00fcller \\u2028 \\u007f\\u0001\\/\",\n  \"\u{e9}\": {\"z\": null, \"y\": true}\n}",
        );
        assert_eq!(
            canonical_json(&v),
            "{\"a\":\"Müller \u{2028} \u{7f}\\u0001/\",\"b\":[1.0,1e-400,-0.0,1E+5,123456789012345678901234567890],\"é\":{\"y\":true,\"z\":null}}"
        );
    }

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(
            sha256_prefixed(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_prefixed(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn inputs_hash_of_the_sample_matches_its_run_id() {
        // samples/README.md: run_id is the first 32 hex digits of inputs_hash, the sha256 of the
        // canonical JSON of {name: snapshot sha256}.
        let v = parse_value(include_str!("../../fixtures/format/v1.1.0-manifest.json"));
        let Some(Json::Object(snapshots)) = v.get("input_snapshots") else {
            panic!("no snapshots")
        };
        let names: Vec<(String, Json)> = snapshots
            .iter()
            .filter_map(|(k, s)| s.get("sha256").map(|h| (k.clone(), h.clone())))
            .collect();
        let hash = sha256_prefixed(canonical_json(&Json::object(names)).as_bytes());
        let run_id = v.get("run_id").and_then(Json::as_str).unwrap_or_default();
        assert!(
            hash.starts_with(&format!("sha256:{run_id}")),
            "{hash} vs {run_id}"
        );
        assert_eq!(
            v.get("inputs_hash").and_then(Json::as_str),
            Some(hash.as_str())
        );
    }

    /// Compares against Python's own `json.dumps(sort_keys=True, separators=(",", ":"),
    /// ensure_ascii=False)`; skipped with a note when python3 is not installed.
    #[test]
    fn canonical_form_matches_python() {
        let docs = [
            include_str!("../../fixtures/format/v1.0.0-manifest.json"),
            include_str!("../../fixtures/format/v1.1.0-manifest.json"),
            include_str!("../../fixtures/format/v1.2.0-manifest.json"),
            "{\"z\": \"tab\\there \\\"q\\\" \\\\ \\b\\f\\r\\n \\u0000\\u001f\\u007f\", \"a\": [1, -2, 3.5, 0.25, true, false, null, {}, []]}",
            "{\"\\u00fc\": \"M\\u00fcller\", \"u\": \"\u{fc}ber 😀 \u{2028}\", \"\\ud83d\\ude00\": 1, \"Z\": 0, \"\u{e9}\": {\"b\": 1, \"a\": [\"x\"]}}",
            "[\"root\", \"array\", 12345678901234567890]",
        ];
        for doc in docs {
            let ours = canonical_json(&parse_value(doc));
            let script = "import json,sys\n\
                          d=json.loads(sys.stdin.buffer.read().decode('utf-8'))\n\
                          sys.stdout.buffer.write(json.dumps(d,sort_keys=True,separators=(',',':'),ensure_ascii=False).encode('utf-8'))";
            let child = std::process::Command::new("python3")
                .args(["-c", script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn();
            let Ok(mut child) = child else {
                eprintln!("note: python3 not found, skipping the comparison with json.dumps");
                return;
            };
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                stdin.write_all(doc.as_bytes()).expect("write to python3");
            }
            let out = child.wait_with_output().expect("python3 runs");
            assert!(out.status.success(), "python3 failed on {doc}");
            assert_eq!(ours, String::from_utf8_lossy(&out.stdout), "for {doc}");
        }
    }
}
