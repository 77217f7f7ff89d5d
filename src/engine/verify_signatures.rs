//! The signature of every commit the tool wrote (batches, rollbacks, relocations, repair
//! acceptances), as `verify` reports it, and `verify --require-signed`'s policy.
//!
//! Each signed commit is checked the way `git verify-commit` checks it, with the
//! repository's git config ([`crate::git::sign::check_commit`]): OpenPGP with the
//! configured gpg program and its keyring, SSH against `gpg.ssh.allowedSignersFile`.
//! Reporting decides nothing; [`require_signed`] turns every state but `good` into a finding.

use serde::Serialize;

use crate::engine::verify::{Finding, VerifyReport};
use crate::git::history::{Record, RecordKind};
use crate::git::sign::{check_commit, Format, SignatureState};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// One tool commit's signature. Serialized as an element of `verify --json`'s
/// `signatures[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitSignature {
    pub commit: CommitId,
    /// `batch`, `rollback`, `relocation` or `repair`.
    pub kind: &'static str,
    pub state: SignatureState,
    /// `openpgp` or `ssh`; `null` when unsigned.
    pub format: Option<Format>,
    /// Who signed, as the checking program names them.
    pub signer: Option<String>,
    /// What the program said, when there is something to say.
    pub detail: Option<String>,
}

fn kind_name(kind: &RecordKind) -> &'static str {
    match kind {
        RecordKind::Batch => "batch",
        RecordKind::Rollback { .. } => "rollback",
        RecordKind::Relocation => "relocation",
        RecordKind::Accept { .. } => "repair",
    }
}

/// The signature of each record, in the records' order.
pub fn check_records(repo: &Repo, recs: &[Record]) -> Result<Vec<CommitSignature>, GitError> {
    recs.iter()
        .map(|r| {
            let check = check_commit(repo, r.commit)?;
            Ok(CommitSignature {
                commit: r.commit,
                kind: kind_name(&r.kind),
                state: check.state,
                format: check.format,
                signer: check.signer,
                detail: check.detail,
            })
        })
        .collect()
}

/// `verify --require-signed`: every tool commit whose signature is not `good` (unsigned,
/// bad, or one that cannot be checked here) becomes a finding.
pub fn require_signed(report: &mut VerifyReport) {
    for s in &report.signatures {
        let problem = match s.state {
            SignatureState::Good => continue,
            SignatureState::Unsigned => format!(
                "the {} commit is not signed (--require-signed); sign future commits with commit.gpgsign=true or --sign",
                s.kind
            ),
            SignatureState::Bad => format!(
                "the {} commit's signature is bad: {}",
                s.kind,
                s.detail.as_deref().unwrap_or("it does not verify")
            ),
            SignatureState::Unknown => format!(
                "the {} commit's signature cannot be checked here: {}",
                s.kind,
                s.detail.as_deref().unwrap_or("no key to check it with")
            ),
        };
        report.findings.push(Finding {
            commits: Vec::new(),
            commit: s.commit,
            path: None,
            problem,
        });
    }
    report.ok = report.findings.is_empty();
}
