//! The canonical form of a declarative migration (`am-migration-v1`), the text its checksum is
//! taken of. Built from the parsed definition, so nothing about how the TOML was written counts.

use super::{DeclarativeMigration, OpKind};
use crate::manifest::Json;
use crate::schema::checksum::{checksum_of, DECLARATIVE_CHECKSUM_ALGORITHM};

/// `{"algorithm","description","from","ops","to"}`; each op has `op`, `description` and exactly
/// the keys it takes. `canonical_json` sorts the keys, so the order here is for reading only.
pub(super) fn form(m: &DeclarativeMigration) -> Json {
    let ops = m
        .ops
        .iter()
        .map(|op| {
            let mut members = vec![("op".to_string(), Json::str(op.kind.name()))];
            let s = |k: &str, v: &str| (k.to_string(), Json::str(v));
            match &op.kind {
                OpKind::Add { path, value } | OpKind::Set { path, value } => {
                    members.push(s("path", path));
                    members.push(("value".into(), value.clone()));
                }
                OpKind::Remove { path } => members.push(s("path", path)),
                OpKind::Rename { path, to } => {
                    members.push(s("path", path));
                    members.push(s("to", to));
                }
                OpKind::Move { from, path } | OpKind::Copy { from, path } => {
                    members.push(s("from", from));
                    members.push(s("path", path));
                }
            }
            members.push(s("description", &op.description));
            Json::Object(members)
        })
        .collect();
    Json::object(vec![
        (
            "algorithm".into(),
            Json::str(DECLARATIVE_CHECKSUM_ALGORITHM),
        ),
        ("from".into(), Json::str(m.from.to_string())),
        ("to".into(), Json::str(m.to.to_string())),
        (
            "description".into(),
            m.description.clone().map_or(Json::Null, Json::String),
        ),
        ("ops".into(), Json::Array(ops)),
    ])
}

/// `sha256:` of the canonical JSON of [`form`].
pub(super) fn checksum(m: &DeclarativeMigration) -> String {
    checksum_of(&form(m))
}
