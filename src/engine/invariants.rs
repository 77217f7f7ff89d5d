//! The invariants of §4, checked by the engine on every manifest before anything is written.

use crate::manifest::Json;

/// The protected fields by default: identity and inputs. Each is a JSON pointer.
pub const DEFAULT_PROTECTED: [&str; 6] = [
    "/job_id",
    "/run_id",
    "/job_ref",
    "/doctrine",
    "/inputs_hash",
    "/input_snapshots",
];

/// The pointer of the history array; its existing entries are protected too.
pub const HISTORY_KEY: &str = "migration_history";

/// A broken invariant: which field, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub how: &'static str,
}

/// Checks that every protected field present in `before` is deep-equal in `after`.
/// A field absent before may appear (1.1.0 adds `job_id`); it may never change or vanish.
pub fn check_protected(before: &Json, after: &Json, protected: &[String]) -> Result<(), Violation> {
    for p in protected {
        if let Some(b) = before.pointer(p) {
            match after.pointer(p) {
                None => {
                    return Err(Violation {
                        field: p.clone(),
                        how: "removed",
                    })
                }
                Some(a) if !a.deep_eq(b) => {
                    return Err(Violation {
                        field: p.clone(),
                        how: "changed",
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Checks that the history entries present before are still there, unchanged, first.
pub fn check_history_kept(before: &Json, after: &Json) -> Result<(), Violation> {
    let field = format!("/{HISTORY_KEY}");
    let Some(b) = before.get(HISTORY_KEY) else {
        return Ok(());
    };
    let (Json::Array(old), Some(Json::Array(new))) = (b, after.get(HISTORY_KEY)) else {
        return Err(Violation {
            field,
            how: "changed",
        });
    };
    if new.len() < old.len() || !old.iter().zip(new).all(|(o, n)| o.deep_eq(n)) {
        return Err(Violation {
            field,
            how: "changed",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(v: serde_json::Value) -> Json {
        Json::from_serde(&v)
    }
    fn protected() -> Vec<String> {
        DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn adding_a_protected_field_is_allowed_changing_it_is_not() {
        let before = j(serde_json::json!({"run_id": "r1"}));
        let added = j(serde_json::json!({"run_id": "r1", "job_id": "j"}));
        assert_eq!(check_protected(&before, &added, &protected()), Ok(()));
        let changed = j(serde_json::json!({"run_id": "r2"}));
        assert_eq!(
            check_protected(&before, &changed, &protected()),
            Err(Violation {
                field: "/run_id".into(),
                how: "changed"
            })
        );
        let removed = j(serde_json::json!({}));
        assert_eq!(
            check_protected(&before, &removed, &protected()),
            Err(Violation {
                field: "/run_id".into(),
                how: "removed"
            })
        );
    }

    #[test]
    fn deep_equality_ignores_key_order_not_values() {
        let before = j(serde_json::json!({"doctrine": {"a": 1, "b": [1, 2]}}));
        let reordered = j(serde_json::json!({"doctrine": {"b": [1, 2], "a": 1}}));
        assert_eq!(check_protected(&before, &reordered, &protected()), Ok(()));
        let nested = j(serde_json::json!({"doctrine": {"a": 1, "b": [2, 1]}}));
        assert!(check_protected(&before, &nested, &protected()).is_err());
    }

    #[test]
    fn history_may_grow_but_not_change() {
        let before = j(serde_json::json!({"migration_history": [{"a": 1}]}));
        let grown = j(serde_json::json!({"migration_history": [{"a": 1}, {"b": 2}]}));
        assert_eq!(check_history_kept(&before, &grown), Ok(()));
        let edited = j(serde_json::json!({"migration_history": [{"a": 2}, {"b": 2}]}));
        assert!(check_history_kept(&before, &edited).is_err());
        let dropped = j(serde_json::json!({}));
        assert!(check_history_kept(&before, &dropped).is_err());
    }
}
