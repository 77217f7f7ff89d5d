//! Who made a commit and when: git config or the `GIT_*` variables, like git itself;
//! `SOURCE_DATE_EPOCH` for reproducible batches.

use chrono::{DateTime, FixedOffset, Local, TimeZone, Utc};
use git2::{Signature, Time};

use crate::git::{GitError, Repo};

/// Author and committer of a batch, with the batch's one timestamp.
pub struct Identity {
    pub author: Signature<'static>,
    pub committer: Signature<'static>,
    /// The committer date in UTC as `YYYY-MM-DDTHH:MM:SSZ`: the history entries' `applied_at`.
    pub applied_at: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Parses the date forms git's `GIT_*_DATE` accept most often: `@EPOCH [+ZZZZ]`,
/// `EPOCH +ZZZZ`, RFC 3339 / ISO 8601 (`2026-01-01T00:00:00Z`, `2026-01-01 00:00:00 +0100`).
pub fn parse_git_date(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    let (epoch_part, zone) = match s.split_once(' ') {
        Some((a, b)) => (a, Some(b.trim())),
        None => (s, None),
    };
    let epoch_text = epoch_part.strip_prefix('@').unwrap_or(epoch_part);
    if let Ok(secs) = epoch_text.parse::<i64>() {
        if epoch_part.starts_with('@') || zone.is_some() {
            let offset = match zone {
                Some(z) => parse_zone(z)?,
                None => FixedOffset::east_opt(0)?,
            };
            return offset.timestamp_opt(secs, 0).single();
        }
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z").ok())
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z").ok())
}

fn parse_zone(z: &str) -> Option<FixedOffset> {
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn date_from_env(var: &'static str) -> Result<Option<DateTime<FixedOffset>>, GitError> {
    if let Some(epoch) = env("SOURCE_DATE_EPOCH") {
        let bad = |problem| GitError::BadDate {
            var: "SOURCE_DATE_EPOCH",
            value: epoch.clone(),
            problem,
        };
        let secs: i64 = epoch
            .trim()
            .parse()
            .map_err(|_| bad("is not a number of seconds"))?;
        return Utc
            .timestamp_opt(secs, 0)
            .single()
            .map(|d| Some(d.fixed_offset()))
            .ok_or_else(|| bad("is out of range"));
    }
    match env(var) {
        Some(v) => match parse_git_date(&v) {
            Some(d) => Ok(Some(d)),
            None => Err(GitError::BadDate {
                var,
                value: v,
                problem:
                    "is not a date git or artifact-migrate understands; use @EPOCH or RFC 3339",
            }),
        },
        None => Ok(None),
    }
}

fn signature(
    name: &str,
    email: &str,
    when: DateTime<FixedOffset>,
) -> Result<Signature<'static>, GitError> {
    let time = Time::new(when.timestamp(), when.offset().local_minus_utc() / 60);
    Signature::new(name, email, &time).map_err(GitError::git("make a signature"))
}

impl Identity {
    /// Reads the identity and dates the way git does for `git commit`.
    pub fn from_env(repo: &Repo) -> Result<Identity, GitError> {
        let cfg = repo
            .git
            .config()
            .map_err(GitError::git("read git config"))?;
        let cfg_name = cfg.get_string("user.name").ok();
        let cfg_email = cfg.get_string("user.email").ok();
        let who = |name_var: &str, email_var: &str| -> Result<(String, String), GitError> {
            let name = env(name_var)
                .or_else(|| cfg_name.clone())
                .ok_or(GitError::NoIdentity)?;
            let email = env(email_var)
                .or_else(|| cfg_email.clone())
                .ok_or(GitError::NoIdentity)?;
            Ok((name, email))
        };
        let (an, ae) = who("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL")?;
        let (cn, ce) = who("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")?;
        let now = Local::now().fixed_offset();
        let author_date = date_from_env("GIT_AUTHOR_DATE")?.unwrap_or(now);
        let committer_date = date_from_env("GIT_COMMITTER_DATE")?.unwrap_or(now);
        Ok(Identity {
            author: signature(&an, &ae, author_date)?,
            committer: signature(&cn, &ce, committer_date)?,
            applied_at: committer_date
                .with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_date_forms() {
        assert_eq!(
            parse_git_date("@1767225600").unwrap().timestamp(),
            1_767_225_600
        );
        let d = parse_git_date("1767225600 +0130").unwrap();
        assert_eq!(
            (d.timestamp(), d.offset().local_minus_utc()),
            (1_767_225_600, 5400)
        );
        assert_eq!(
            parse_git_date("2026-01-01T00:00:00Z").unwrap().timestamp(),
            1_767_225_600
        );
        assert_eq!(
            parse_git_date("2026-01-01 01:00:00 +0100")
                .unwrap()
                .timestamp(),
            1_767_225_600
        );
        assert!(parse_git_date("yesterday").is_none());
    }
}
