//! Checksums of migrations: what a migration *means*, hashed, so that history can say which
//! definition was applied and `verify` can notice a definition that changed afterwards (§11).
//!
//! Every checksum is `sha256:` + the hex SHA-256 of the canonical JSON
//! ([`canonical_json`]: keys sorted, no whitespace, numbers as written) of a small object whose
//! `algorithm` member names the form. The algorithm is part of the hashed text, so a future
//! form (`am-migration-v2`) can never collide with an old checksum, and a reader knows which
//! form to recompute.
//!
//! - [`DECLARATIVE_CHECKSUM_ALGORITHM`] (`am-migration-v1`): a declarative migration's
//!   definition as parsed, not its bytes, so whitespace, comments, key order and TOML spelling
//!   (`[[ops]]` or inline tables, `1_000` or `1000`) do not count; every value, pointer, op and
//!   description does. The form is built by
//!   [`DeclarativeMigration`](crate::schema::declarative::DeclarativeMigration).
//! - [`BUILTIN_CHECKSUM_ALGORITHM`] (`am-builtin-v1`): a migration written in Rust cannot be
//!   hashed by its code; its declared `from`, `to` and `describe()` lines stand for it, so a
//!   release that changes what a built-in says it does changes its checksum.
//! - [`REGISTRY_CHECKSUM_ALGORITHM`] (`am-registry-v1`): the whole registry, for the
//!   `Migration-Registry:` trailer: every edge with its checksum, sorted by edge.
//!
//! This module never reads files; it hashes values it is given.

use crate::manifest::{canonical_json, sha256_prefixed, Json};
use crate::schema::migration::Migration;
use crate::schema::Version;

/// The canonical form of a declarative migration (see the module docs).
pub const DECLARATIVE_CHECKSUM_ALGORITHM: &str = "am-migration-v1";
/// The canonical form of a migration written in Rust (see the module docs).
pub const BUILTIN_CHECKSUM_ALGORITHM: &str = "am-builtin-v1";
/// The canonical form of a whole registry (see the module docs).
pub const REGISTRY_CHECKSUM_ALGORITHM: &str = "am-registry-v1";

/// `sha256:` + hex SHA-256 of the canonical JSON of `form`.
pub fn checksum_of(form: &Json) -> String {
    sha256_prefixed(canonical_json(form).as_bytes())
}

/// The canonical form of a migration written in Rust:
/// `{"algorithm":"am-builtin-v1","describe":[...],"from":"1.0.0","to":"1.1.0"}`.
pub fn builtin_form(from: Version, to: Version, describe: &[String]) -> Json {
    Json::object(vec![
        ("algorithm".into(), Json::str(BUILTIN_CHECKSUM_ALGORITHM)),
        ("from".into(), Json::str(from.to_string())),
        ("to".into(), Json::str(to.to_string())),
        (
            "describe".into(),
            Json::Array(describe.iter().cloned().map(Json::String).collect()),
        ),
    ])
}

/// The checksum of a migration written in Rust (the default of [`Migration::checksum`]).
pub fn builtin_checksum(from: Version, to: Version, describe: &[String]) -> String {
    checksum_of(&builtin_form(from, to, describe))
}

/// The checksum of a set of migrations (a registry), independent of their order:
/// `{"algorithm":"am-registry-v1","migrations":[{"checksum":"sha256:...","step":"1.0.0->1.1.0"},...]}`
/// with the migrations sorted by edge.
pub fn registry_checksum(migrations: &[&dyn Migration]) -> String {
    let mut entries: Vec<_> = migrations.iter().map(|m| (m.id(), m.checksum())).collect();
    entries.sort();
    let list = entries
        .into_iter()
        .map(|(id, sum)| {
            Json::object(vec![
                ("step".into(), Json::str(id.to_string())),
                ("checksum".into(), Json::str(sum)),
            ])
        })
        .collect();
    checksum_of(&Json::object(vec![
        ("algorithm".into(), Json::str(REGISTRY_CHECKSUM_ALGORITHM)),
        ("migrations".into(), Json::Array(list)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin::{AddChainMetadata, AddInputs, Direct1_0To1_2};
    use crate::schema::Registry;

    #[test]
    fn builtin_form_is_the_documented_canonical_json() {
        let form = builtin_form(
            Version::new(1, 1, 0),
            Version::new(1, 2, 0),
            &["Add x".to_string()],
        );
        assert_eq!(
            canonical_json(&form),
            r#"{"algorithm":"am-builtin-v1","describe":["Add x"],"from":"1.1.0","to":"1.2.0"}"#
        );
        assert_eq!(
            AddChainMetadata.checksum(),
            builtin_checksum(
                AddChainMetadata.from(),
                AddChainMetadata.to(),
                &AddChainMetadata.describe()
            )
        );
    }

    #[test]
    fn builtins_have_distinct_stable_checksums() {
        let sums = [
            AddInputs.checksum(),
            AddChainMetadata.checksum(),
            Direct1_0To1_2.checksum(),
        ];
        for s in &sums {
            assert!(s.starts_with("sha256:") && s.len() == 71, "{s}");
        }
        assert_ne!(sums[0], sums[1]);
        assert_ne!(sums[1], sums[2]);
        assert_eq!(AddInputs.checksum(), AddInputs.checksum());
        assert_eq!(AddInputs.source(), None);
        assert!(!AddInputs.lossy());
    }

    #[test]
    fn registry_checksum_ignores_order_and_sees_every_edge() {
        let r = Registry::with_builtins();
        let all = r.migrations();
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(registry_checksum(&all), registry_checksum(&reversed));
        assert_ne!(registry_checksum(&all), registry_checksum(&all[..2]));
    }
}
