//! The built-in migrations: `1.0.0->1.1.0`, `1.1.0->1.2.0` and the direct `1.0.0->1.2.0`.
//!
//! Every addition is "only where absent": pipelines were seen labelling 1.2-shaped manifests
//! `1.1.0`, so a value that is already there is never overwritten (and not listed as added).

use crate::manifest::{Edit, Json};
use crate::schema::migration::{Change, Migration, MigrationContext, MigrationError};
use crate::schema::Version;

pub const V1_0_0: Version = Version::new(1, 0, 0);
pub const V1_1_0: Version = Version::new(1, 1, 0);
pub const V1_2_0: Version = Version::new(1, 2, 0);

/// `1.0.0 -> 1.1.0`: input snapshots, inputs hash and an explicit `job_id`.
pub struct AddInputs;
/// `1.1.0 -> 1.2.0`: chain metadata.
pub struct AddChainMetadata;
/// `1.0.0 -> 1.2.0`: both of the above in one step.
pub struct Direct1_0To1_2;

/// The three built-ins, in registration order.
pub fn builtins() -> Vec<Box<dyn Migration>> {
    vec![
        Box::new(AddInputs),
        Box::new(AddChainMetadata),
        Box::new(Direct1_0To1_2),
    ]
}

fn add(key: &str, value: Json, text: &str) -> Change {
    Change::new(
        Edit::Add {
            pointer: format!("/{key}"),
            value,
        },
        text,
    )
}

fn inputs_changes(doc: &Json, ctx: &MigrationContext<'_>) -> Result<Vec<Change>, MigrationError> {
    let mut out = Vec::new();
    if doc.get("input_snapshots").is_none() {
        out.push(add(
            "input_snapshots",
            Json::Object(Vec::new()),
            "Add input_snapshots (empty object)",
        ));
    }
    if doc.get("inputs_hash").is_none() {
        out.push(add("inputs_hash", Json::Null, "Add inputs_hash (null)"));
    }
    if doc.get("job_id").is_none() {
        let (job_id, source) = derive_job_id(doc, ctx)?;
        out.push(Change {
            edit: Edit::Add {
                pointer: "/job_id".into(),
                value: Json::str(job_id.clone()),
            },
            detail: format!("Add job_id {job_id:?} (from {source})"),
            summary: format!("Add job_id (from {source})"),
        });
    }
    Ok(out)
}

/// `job_id` as §3 derives it for the configured layouts ([`crate::layout::derive_job_id`]):
/// a legacy `runs/<run_id>/` directory never becomes a job.
fn derive_job_id(
    doc: &Json,
    ctx: &MigrationContext<'_>,
) -> Result<(String, crate::layout::JobIdSource), MigrationError> {
    crate::layout::derive_job_id(
        ctx.placement(),
        doc.get("run_id").and_then(Json::as_str),
        doc.get("job_ref").and_then(Json::as_str),
    )
    .map_err(MigrationError::new)
}

fn chain_changes(doc: &Json) -> Vec<Change> {
    if doc.get("chain_metadata").is_some() {
        return Vec::new();
    }
    let value = Json::object(vec![
        ("is_chainable_stage".into(), Json::Bool(false)),
        ("prior_stages".into(), Json::Array(Vec::new())),
    ]);
    vec![add("chain_metadata", value, "Add chain_metadata")]
}

fn check_inputs(doc: &Json) -> Result<(), MigrationError> {
    match doc.get("job_id") {
        Some(Json::String(s)) if !s.is_empty() => {}
        _ => return Err(MigrationError::new("job_id must be a non-empty string")),
    }
    if !matches!(doc.get("input_snapshots"), Some(Json::Object(_))) {
        return Err(MigrationError::new("input_snapshots must be an object"));
    }
    if !matches!(doc.get("inputs_hash"), Some(Json::Null | Json::String(_))) {
        return Err(MigrationError::new("inputs_hash must be a string or null"));
    }
    Ok(())
}

fn check_chain(doc: &Json) -> Result<(), MigrationError> {
    let Some(Json::Object(_)) = doc.get("chain_metadata") else {
        return Err(MigrationError::new("chain_metadata must be an object"));
    };
    if !matches!(
        doc.pointer("/chain_metadata/is_chainable_stage"),
        Some(Json::Bool(_))
    ) {
        return Err(MigrationError::new(
            "chain_metadata.is_chainable_stage must be true or false",
        ));
    }
    if !matches!(
        doc.pointer("/chain_metadata/prior_stages"),
        Some(Json::Array(_))
    ) {
        return Err(MigrationError::new(
            "chain_metadata.prior_stages must be an array",
        ));
    }
    Ok(())
}

const INPUTS_DESCRIPTION: [&str; 3] = [
    "Add input_snapshots (empty object) where absent",
    "Add inputs_hash (null) where absent",
    "Add job_id where absent, from the path <job_id>/<run_id>/manifest.json or from job_ref jobs/<job_id>/...",
];
const CHAIN_DESCRIPTION: &str =
    "Add chain_metadata {\"is_chainable_stage\": false, \"prior_stages\": []} where absent";

impl Migration for AddInputs {
    fn from(&self) -> Version {
        V1_0_0
    }
    fn to(&self) -> Version {
        V1_1_0
    }
    fn describe(&self) -> Vec<String> {
        INPUTS_DESCRIPTION.iter().map(|s| s.to_string()).collect()
    }
    fn transform(
        &self,
        doc: &Json,
        ctx: &MigrationContext<'_>,
    ) -> Result<Vec<Change>, MigrationError> {
        inputs_changes(doc, ctx)
    }
    fn validate_after(
        &self,
        doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<(), MigrationError> {
        check_inputs(doc)
    }
}

impl Migration for AddChainMetadata {
    fn from(&self) -> Version {
        V1_1_0
    }
    fn to(&self) -> Version {
        V1_2_0
    }
    fn describe(&self) -> Vec<String> {
        vec![CHAIN_DESCRIPTION.to_string()]
    }
    fn transform(
        &self,
        doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<Vec<Change>, MigrationError> {
        Ok(chain_changes(doc))
    }
    fn validate_after(
        &self,
        doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<(), MigrationError> {
        check_chain(doc)
    }
}

impl Migration for Direct1_0To1_2 {
    fn from(&self) -> Version {
        V1_0_0
    }
    fn to(&self) -> Version {
        V1_2_0
    }
    fn describe(&self) -> Vec<String> {
        let mut d = AddInputs.describe();
        d.extend(AddChainMetadata.describe());
        d
    }
    fn transform(
        &self,
        doc: &Json,
        ctx: &MigrationContext<'_>,
    ) -> Result<Vec<Change>, MigrationError> {
        let mut changes = inputs_changes(doc, ctx)?;
        changes.extend(chain_changes(doc));
        Ok(changes)
    }
    fn validate_after(
        &self,
        doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<(), MigrationError> {
        check_inputs(doc)?;
        check_chain(doc)
    }
}
