//! A schema version: `MAJOR.MINOR.PATCH`, compared numerically.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A schema version such as `1.2.0`.
///
/// Only the three numeric parts of semver are accepted; manifests carry plain release
/// versions, and a pre-release tag in `schema_version` is far more likely a typo than intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Builds a version from its three parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

/// A string that is not `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema version {text:?}: expected MAJOR.MINOR.PATCH, e.g. \"1.2.0\"")]
pub struct VersionError {
    pub text: String,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError {
            text: s.to_string(),
        };
        let mut parts = s.split('.');
        let mut next = || -> Result<u64, VersionError> {
            let p = parts.next().ok_or_else(err)?;
            // No signs, no leading zeros (semver), no empty parts.
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let a: Version = "1.2.0".parse().unwrap();
        let b: Version = "1.10.0".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "1.10.0");
    }

    #[test]
    fn rejects_what_is_not_three_numbers() {
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "v1.2.0",
            "1.02.0",
            "1.-2.0",
            "1.2.x",
            " 1.2.0",
            "1.2.0-rc1",
        ] {
            assert!(
                bad.parse::<Version>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
