//! The history entry the engine appends to each migrated manifest's `migration_history` (§5).

use crate::ids::CommitId;
use crate::manifest::Json;
use crate::schema::{StepId, Version};

/// What every manifest of one batch shares: the batch's one timestamp, the commit it was
/// built on and the tool that made it.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    /// `YYYY-MM-DDTHH:MM:SSZ`, equal to the commit's committer date.
    pub applied_at: String,
    pub base_commit: CommitId,
    /// `artifact-migrate <version>`.
    pub tool: String,
}

/// The name and version this build writes into history and trailers.
pub fn tool_name() -> String {
    format!("artifact-migrate {}", env!("CARGO_PKG_VERSION"))
}

/// One history entry, in the order of §5.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub from_version: Version,
    pub to_version: Version,
    pub steps: Vec<StepId>,
    /// The checksum of each step's definition, as applied (see `schema::checksum`).
    pub migration_checksums: Vec<(StepId, String)>,
    pub changes: Vec<String>,
    pub applied_at: String,
    pub base_commit: String,
    pub checksum_before: String,
    pub checksum_after: String,
    pub tool: String,
}

impl HistoryEntry {
    /// The entry as a JSON object with the keys in the specified order.
    pub fn to_json(&self) -> Json {
        let strs = |v: Vec<String>| Json::Array(v.into_iter().map(Json::String).collect());
        Json::object(vec![
            (
                "from_version".into(),
                Json::str(self.from_version.to_string()),
            ),
            ("to_version".into(), Json::str(self.to_version.to_string())),
            (
                "steps".into(),
                strs(self.steps.iter().map(|s| s.to_string()).collect()),
            ),
            (
                "migration_checksums".into(),
                Json::object(
                    self.migration_checksums
                        .iter()
                        .map(|(id, c)| (id.to_string(), Json::str(c.clone())))
                        .collect(),
                ),
            ),
            ("changes".into(), strs(self.changes.clone())),
            ("applied_at".into(), Json::str(self.applied_at.clone())),
            ("base_commit".into(), Json::str(self.base_commit.clone())),
            (
                "checksum_before".into(),
                Json::str(self.checksum_before.clone()),
            ),
            (
                "checksum_after".into(),
                Json::str(self.checksum_after.clone()),
            ),
            ("tool".into(), Json::str(self.tool.clone())),
        ])
    }
}

/// `checksum_after` (§5): the SHA-256 of the canonical form of a document without its
/// `migration_history`.
pub fn checksum_after(doc: &Json) -> String {
    let canonical = crate::manifest::canonical::canonical_json_without(
        doc,
        crate::engine::invariants::HISTORY_KEY,
    );
    crate::manifest::sha256_prefixed(canonical.as_bytes())
}
