//! `repair --accept`: records that a migration's definition changed on purpose after it was
//! applied, as a commit that changes no file and carries `Migration-Accept: STEP CHECKSUM`.
//! `verify` then accepts that checksum for that step.

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::engine::land::land;
use crate::engine::progress::Progress;
use crate::engine::registry::{load_registry, uncommitted_definitions, Source};
use crate::engine::tool_name;
use crate::git::identity::Identity;
use crate::git::message::keys;
use crate::git::objects::{pack_dir, write_commit, CommitRequest};
use crate::git::pack::PackWriter;
use crate::git::sign::{SignMode, Signer};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// What `repair --accept` recorded.
#[derive(Debug, Clone)]
pub struct AcceptReport {
    pub commit: CommitId,
    pub step: String,
    pub checksum: String,
    pub file: Option<String>,
}

/// Commits the acceptance of the current definition of `step` (e.g. `1.2.0->1.3.0`), as
/// committed at the branch tip, on HEAD's branch (or `branch`).
pub fn accept(
    repo: &Repo,
    cfg: &Config,
    step: &str,
    branch: Option<&str>,
    sign: SignMode,
    progress: &dyn Progress,
) -> Result<AcceptReport, EngineError> {
    // A signal from here on stops at a safe point (crate::interrupt), not in a write.
    let _guard = crate::interrupt::guard();
    let target = repo.target(branch)?;
    if target.checked_out {
        let dirty = uncommitted_definitions(repo)?;
        if !dirty.is_empty() {
            return Err(EngineError::UncommittedDefinitions(dirty));
        }
    }
    let loaded = load_registry(repo, cfg, Source::Commit(target.base))?;
    let Some(m) = loaded
        .registry
        .migrations()
        .into_iter()
        .find(|m| m.id().to_string() == step)
    else {
        return Err(EngineError::UnknownMigration {
            step: step.to_string(),
            known: loaded
                .registry
                .migrations()
                .iter()
                .map(|m| m.id())
                .collect(),
        });
    };
    let (checksum, file) = (m.checksum(), m.source().map(str::to_string));
    let identity = Identity::from_env(repo)?;
    let signer = Signer::from_config(repo, sign).map_err(GitError::from)?;
    let where_ = file
        .as_deref()
        .map(|f| format!(" in {f}"))
        .unwrap_or_default();
    let message = format!(
        "repair: accept the changed definition of migration {step}\n\nThe definition{where_} changed after it was applied; this commit records that the\nchange is intended, so `artifact-migrate verify` accepts it.\n\n{}: {step} {checksum}\n{}: {}\n",
        keys::ACCEPT,
        keys::TOOL,
        tool_name()
    );
    let req = CommitRequest {
        base: target.base,
        updates: &[],
        message: &message,
        author: &identity.author,
        committer: &identity.committer,
        signer: signer.as_ref(),
    };
    let commit = write_commit(repo, PackWriter::create(&pack_dir(repo))?, &req)?;
    let subject = message.lines().next().unwrap_or_default();
    land(repo, &target, commit, "repair", subject, &[], progress)?;
    Ok(AcceptReport {
        commit,
        step: step.to_string(),
        checksum,
        file,
    })
}
