//! JSON Schema per schema version: `.artifact-migrate/schemas/<version>.json`, draft 2020-12,
//! checked with the `jsonschema` crate (§11: validation per version and on write).
//!
//! This module owns compiling the schemas a caller hands it (bytes with their repository paths;
//! it never reads the disk or git) and checking a manifest's value against the schema of a
//! version. A version without a schema file is not checked.
//!
//! Choices, and why:
//! - **Draft 2020-12 only.** A schema whose `$schema` names another draft is refused at load
//!   rather than silently checked under different rules.
//! - **Offline.** A `$ref` to anything outside the schema's own document is refused when the
//!   schema is compiled (the crate is built without its HTTP and file resolvers): validation must
//!   never depend on the network, and a reference that cannot be resolved is a load error naming
//!   the file. Keep each version's schema self-contained (`$defs` and `#/...` references work).
//! - **`format` is an annotation**, as 2020-12 says by default: `"format": "date-time"` is not
//!   enforced. Use `pattern` for what must hold.
//! - **Strict reading.** Schema files are parsed with the manifest parser, so duplicate keys
//!   and other ambiguities are refused with the file named.
//! - **Numbers.** A manifest is checked through [`Json::to_serde`], which is lossy for exotic
//!   numbers: `1e-400` is checked as `0.0`, integers beyond 64 bits as floats, and a number
//!   `serde_json` cannot hold at all (such as `1e400`) as `null`. Ordinary manifests have none;
//!   a schema that constrains such a number sees the approximation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::manifest::{Document, Json};
use crate::schema::Version;

/// Where schema files live, relative to the repository root.
pub const SCHEMAS_DIR: &str = ".artifact-migrate/schemas";

/// The only `$schema` accepted (when a schema names one at all).
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A schema file that cannot be used: `FILE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SchemaLoadError {
    /// The file's repository path.
    pub file: String,
    /// Lower-case, ends with what to do.
    pub message: String,
}

/// One way a manifest fails its version's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer of the failing value in the manifest (`""` for the whole document).
    pub instance_path: String,
    /// The schema keyword that failed (`required`, `type`, `enum`, `pattern`, ...).
    pub keyword: String,
    /// What is wrong, in the crate's words.
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.instance_path.is_empty() {
            "(the document)"
        } else {
            self.instance_path.as_str()
        };
        write!(f, "{at}: {} ({})", self.message, self.keyword)
    }
}

/// One line per violation, for a migration error or a report.
pub fn describe_violations(violations: &[SchemaViolation]) -> String {
    let lines: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    lines.join("; ")
}

struct Compiled {
    file: String,
    validator: jsonschema::Validator,
}

/// The compiled schemas of every version that has one.
#[derive(Default)]
pub struct SchemaSet {
    schemas: BTreeMap<Version, Compiled>,
}

impl fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<(&Version, &str)> = self
            .schemas
            .iter()
            .map(|(v, c)| (v, c.file.as_str()))
            .collect();
        f.debug_struct("SchemaSet")
            .field("schemas", &files)
            .finish()
    }
}

/// The version a schema file is for: its name is `<MAJOR.MINOR.PATCH>.json`.
fn version_of(file: &str) -> Result<Version, String> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let Some(stem) = name.strip_suffix(".json") else {
        return Err("a schema file is named <version>.json, e.g. 1.2.0.json: rename it or move it out of the schemas directory".to_string());
    };
    stem.parse::<Version>().map_err(|_| {
        format!("{stem:?} is not a schema version: name the file <MAJOR.MINOR.PATCH>.json, e.g. 1.2.0.json")
    })
}

fn compile(file: &str, bytes: &[u8]) -> Result<(Version, jsonschema::Validator), String> {
    let version = version_of(file)?;
    let doc =
        Document::parse(bytes).map_err(|e| format!("not valid JSON: {e}; fix the schema file"))?;
    let value = doc.value().to_serde();
    match &value {
        serde_json::Value::Object(map) => {
            if let Some(s) = map.get("$schema") {
                if s.as_str().map(|s| s.trim_end_matches('#')) != Some(DRAFT_2020_12) {
                    return Err(format!(
                        "$schema is {s}; artifact-migrate checks draft 2020-12 only: set \"$schema\": \"{DRAFT_2020_12}\" or leave it out"
                    ));
                }
            }
        }
        serde_json::Value::Bool(_) => {}
        _ => {
            return Err(
                "a JSON Schema is an object (or true/false): fix the schema file".to_string(),
            )
        }
    }
    let validator = jsonschema::draft202012::options()
        .offline()
        .build(&value)
        .map_err(|e| {
            format!(
                "not a valid draft 2020-12 schema: {e} (at {}); fix the schema (references must stay inside the file)",
                or_root(e.instance_path().as_str())
            )
        })?;
    Ok((version, validator))
}

fn or_root(p: &str) -> &str {
    if p.is_empty() {
        "the root"
    } else {
        p
    }
}

impl SchemaSet {
    /// No schemas: every version passes.
    pub fn empty() -> SchemaSet {
        SchemaSet::default()
    }

    /// Compiles schema files, `(repository path, bytes)`; the version comes from the file name.
    /// Returns every error of every file, each naming its file. Two files for one version
    /// (from different directories) are refused.
    pub fn load(files: &[(String, Vec<u8>)]) -> Result<SchemaSet, Vec<SchemaLoadError>> {
        let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut set = SchemaSet::default();
        let mut errors = Vec::new();
        for (file, bytes) in sorted {
            match compile(file, bytes) {
                Ok((version, validator)) => {
                    if let Some(other) = set.schemas.get(&version) {
                        errors.push(SchemaLoadError {
                            file: file.clone(),
                            message: format!(
                                "a second schema for {version} (the first is {}): keep one",
                                other.file
                            ),
                        });
                        continue;
                    }
                    set.schemas.insert(
                        version,
                        Compiled {
                            file: file.clone(),
                            validator,
                        },
                    );
                }
                Err(message) => errors.push(SchemaLoadError {
                    file: file.clone(),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// The versions that have a schema, ascending.
    pub fn versions(&self) -> Vec<Version> {
        self.schemas.keys().copied().collect()
    }

    /// The file of a version's schema, if it has one.
    pub fn file(&self, version: Version) -> Option<&str> {
        self.schemas.get(&version).map(|c| c.file.as_str())
    }

    /// Whether there are no schemas.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }

    /// Checks `doc` against the schema of `version` (`Ok` when the version has none). Every
    /// violation is returned, in the order the validator finds them.
    pub fn validate(&self, version: Version, doc: &Json) -> Result<(), Vec<SchemaViolation>> {
        let Some(compiled) = self.schemas.get(&version) else {
            return Ok(());
        };
        let instance = doc.to_serde();
        let violations: Vec<SchemaViolation> = compiled
            .validator
            .iter_errors(&instance)
            .map(|e| SchemaViolation {
                instance_path: e.instance_path().as_str().to_string(),
                keyword: e.kind().keyword().to_string(),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA_1_3: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["schema_version", "run_id", "review_status"],
  "properties": {
    "schema_version": {"const": "1.3.0"},
    "review_status": {"enum": ["unreviewed", "approved", "rejected"]},
    "generation_metadata": {
      "type": "object",
      "properties": {"model_name": {"type": "string"}},
      "not": {"required": ["model"]}
    },
    "artifacts": {
      "type": "object",
      "additionalProperties": {"$ref": "#/$defs/artifact"}
    }
  },
  "$defs": {
    "artifact": {
      "type": "object",
      "required": ["sha256", "bytes"],
      "properties": {
        "sha256": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "bytes": {"type": "integer", "minimum": 0}
      }
    }
  }
}"##;

    fn set(files: &[(&str, &str)]) -> Result<SchemaSet, Vec<SchemaLoadError>> {
        let owned: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.as_bytes().to_vec()))
            .collect();
        SchemaSet::load(&owned)
    }

    fn json(text: &str) -> Json {
        match Document::parse(text.as_bytes()) {
            Ok(d) => d.value(),
            Err(e) => panic!("{e}"),
        }
    }

    fn v(s: &str) -> Version {
        s.parse().expect("version")
    }

    /// The 1.2.0 sample as the 1.2.0 -> 1.3.0 migration of the tests leaves it.
    fn migrated_sample() -> String {
        include_str!("../../fixtures/samples/v1.2.0-manifest.json")
            .replace("\"model\": ", "\"model_name\": ")
            .replacen(
                "\n  \"run_id\"",
                "\n  \"review_status\": \"unreviewed\",\n  \"run_id\"",
                1,
            )
            .replace(
                "\"schema_version\": \"1.2.0\"",
                "\"schema_version\": \"1.3.0\"",
            )
    }

    #[test]
    fn a_valid_manifest_passes_and_versions_without_a_schema_are_not_checked() {
        let s = set(&[(".artifact-migrate/schemas/1.3.0.json", SCHEMA_1_3)]).expect("loads");
        assert_eq!(s.versions(), [v("1.3.0")]);
        assert_eq!(
            s.file(v("1.3.0")),
            Some(".artifact-migrate/schemas/1.3.0.json")
        );
        assert_eq!(s.validate(v("1.3.0"), &json(&migrated_sample())), Ok(()));
        // The unmigrated sample has no schema for 1.2.0: nothing to check.
        let raw = json(include_str!("../../fixtures/samples/v1.2.0-manifest.json"));
        assert_eq!(s.validate(v("1.2.0"), &raw), Ok(()));
        assert_eq!(SchemaSet::empty().validate(v("1.3.0"), &raw), Ok(()));
    }

    #[test]
    fn violations_name_the_instance_path_and_the_keyword() {
        let s = set(&[(".artifact-migrate/schemas/1.3.0.json", SCHEMA_1_3)]).expect("loads");
        // The 1.2.0 sample labelled 1.3.0 without the migration: `model` still there, no
        // review_status.
        let unmigrated = include_str!("../../fixtures/samples/v1.2.0-manifest.json")
            .replace(
                "\"schema_version\": \"1.2.0\"",
                "\"schema_version\": \"1.3.0\"",
            )
            .replace("\"bytes\": 611", "\"bytes\": -1");
        let errs = s
            .validate(v("1.3.0"), &json(&unmigrated))
            .expect_err("invalid");
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.instance_path.as_str(), e.keyword.as_str()))
            .collect();
        assert!(got.contains(&("", "required")), "{got:?}");
        assert!(got.contains(&("/generation_metadata", "not")), "{got:?}");
        assert!(
            got.contains(&("/artifacts/outputs~1instagram_captions.md/bytes", "minimum")),
            "{got:?}"
        );
        let required = errs
            .iter()
            .find(|e| e.keyword == "required")
            .expect("required");
        assert!(required.message.contains("review_status"), "{required:?}");
        assert!(
            required.to_string().starts_with("(the document): "),
            "{required}"
        );
        let text = describe_violations(&errs);
        assert!(text.contains("/generation_metadata: "), "{text}");
    }

    #[test]
    fn enum_and_type_violations() {
        let s = set(&[(".artifact-migrate/schemas/1.3.0.json", SCHEMA_1_3)]).expect("loads");
        let doc = json(
            r#"{"schema_version": "1.3.0", "run_id": "r", "review_status": "maybe", "generation_metadata": {"model_name": 7}}"#,
        );
        let errs = s.validate(v("1.3.0"), &doc).expect_err("invalid");
        let mut got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.instance_path.as_str(), e.keyword.as_str()))
            .collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                ("/generation_metadata/model_name", "type"),
                ("/review_status", "enum")
            ]
        );
    }

    #[test]
    fn bad_schema_files_are_load_errors_naming_the_file() {
        let errs = set(&[
            (
                ".artifact-migrate/schemas/1.3.0.json",
                r#"{"type": "objekt"}"#,
            ),
            (
                ".artifact-migrate/schemas/1.4.0.json",
                r#"{"type": "object",}"#,
            ),
            (
                ".artifact-migrate/schemas/1.5.0.json",
                r#"{"$schema": "http://json-schema.org/draft-07/schema#"}"#,
            ),
            (".artifact-migrate/schemas/latest.json", "{}"),
            (".artifact-migrate/schemas/1.6.0.yaml", "{}"),
            (
                ".artifact-migrate/schemas/1.7.0.json",
                r#"{"$ref": "https://example.com/other.json"}"#,
            ),
            (".artifact-migrate/schemas/1.8.0.json", "[]"),
            (
                ".artifact-migrate/schemas/1.9.0.json",
                r#"{"a": 1, "a": 2}"#,
            ),
        ])
        .expect_err("all bad");
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 8, "{text:#?}");
        let find = |file: &str| {
            text.iter()
                .find(|t| t.starts_with(&format!(".artifact-migrate/schemas/{file}: ")))
                .unwrap_or_else(|| panic!("no error for {file}: {text:#?}"))
                .clone()
        };
        assert!(find("1.3.0.json").contains("not a valid draft 2020-12 schema"));
        assert!(find("1.4.0.json").contains("not valid JSON"));
        assert!(find("1.5.0.json").contains("draft 2020-12 only"));
        assert!(find("latest.json").contains("is not a schema version"));
        assert!(find("1.6.0.yaml").contains("named <version>.json"));
        assert!(find("1.7.0.json").contains("not a valid draft 2020-12 schema"));
        assert!(find("1.8.0.json").contains("is an object"));
        assert!(find("1.9.0.json").contains("not valid JSON"));
    }

    #[test]
    fn boolean_schemas_and_duplicates() {
        let s = set(&[(".artifact-migrate/schemas/2.0.0.json", "false")]).expect("loads");
        let errs = s
            .validate(v("2.0.0"), &json("{}"))
            .expect_err("false rejects");
        assert_eq!(errs[0].instance_path, "");
        let errs =
            set(&[("a/1.0.0.json", "true"), ("b/1.0.0.json", "true")]).expect_err("duplicate");
        assert_eq!(
            errs[0].to_string(),
            "b/1.0.0.json: a second schema for 1.0.0 (the first is a/1.0.0.json): keep one"
        );
    }

    #[test]
    fn exotic_numbers_are_checked_as_serde_json_reads_them() {
        let s = set(&[(
            ".artifact-migrate/schemas/1.0.0.json",
            r#"{"properties": {"x": {"type": "number"}, "y": {"type": "number", "exclusiveMinimum": 0}}}"#,
        )])
        .expect("loads");
        // 1e400 cannot be held by serde_json: it is checked as null (documented).
        let errs = s
            .validate(v("1.0.0"), &json(r#"{"x": 1e400}"#))
            .expect_err("lossy");
        assert_eq!(errs[0].keyword, "type");
        // 1e-400 is checked as 0.0.
        let errs = s
            .validate(v("1.0.0"), &json(r#"{"y": 1e-400}"#))
            .expect_err("lossy");
        assert_eq!(errs[0].keyword, "exclusiveMinimum");
        assert_eq!(
            s.validate(
                v("1.0.0"),
                &json(r#"{"x": 123456789012345678901234567890}"#)
            ),
            Ok(())
        );
    }
}
