//! Commit messages of batches and rollbacks, and reading their trailers back (§6).
//!
//! Trailers follow `git interpret-trailers` rules: one `Key: value` per line in the last
//! paragraph, no prose in that paragraph, values on one line (libgit2 does not unfold).

use crate::schema::Version;

/// The trailer keys this tool writes.
pub mod keys {
    pub const TARGET: &str = "Migration-Target";
    pub const MANIFESTS: &str = "Migration-Manifests";
    pub const STEP: &str = "Migration-Step";
    pub const APPLIED_AT: &str = "Migration-Applied-At";
    pub const TOOL: &str = "Migration-Tool";
    pub const ROLLBACK_OF: &str = "Migration-Rollback-Of";
    pub const REGISTRY: &str = "Migration-Registry";
    pub const ACCEPT: &str = "Migration-Accept";
    pub const RELOCATE: &str = "Migration-Relocate";
    pub const LAYOUT: &str = "Migration-Layout";
}

/// One group of a batch: the manifests that went `from -> to` by the same steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepGroup {
    pub from: Version,
    pub to: Version,
    /// The edges taken, e.g. `["1.0.0->1.2.0"]`.
    pub steps: Vec<String>,
    pub count: usize,
    /// What was done, with how many manifests of the group it was done to.
    pub changes: Vec<(String, usize)>,
}

/// Everything a batch commit message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    pub target: Version,
    pub groups: Vec<StepGroup>,
    pub already_current: usize,
    /// Manifests that failed and were left as they were (`--keep-going`).
    pub failed: usize,
    pub applied_at: String,
    pub tool: String,
    /// The checksum of the whole registry the batch ran with (`schema::checksum`).
    pub registry: Option<String>,
    /// `-m TEXT`: replaces the subject line.
    pub subject: Option<String>,
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Makes a value safe for a one-line trailer, subject or change line: whitespace runs and
/// control characters (a NUL would end the message for libgit2's trailer reader) become
/// one space, so no user text can start a line of its own (a `---` line, or a paragraph
/// that looks like trailers).
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl BatchMessage {
    /// The number of manifests migrated.
    pub fn migrated(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// The default subject: `migrate: N manifests to schema V`.
    pub fn default_subject(&self) -> String {
        format!(
            "migrate: {} to schema {}",
            plural(self.migrated(), "manifest"),
            self.target
        )
    }

    /// The whole message, ending with a newline.
    pub fn render(&self) -> String {
        let subject = self
            .subject
            .as_deref()
            .map(one_line)
            .filter(|s| !s.is_empty())
            // A first line starting `---` is where git and libgit2 think a patch begins:
            // they would look for trailers above it, in nothing. Keep the text, not there.
            .map(|s| {
                if s.starts_with("---") {
                    format!("migrate: {s}")
                } else {
                    s
                }
            })
            .unwrap_or_else(|| self.default_subject());
        let mut m = format!("{subject}\n\n");
        for g in &self.groups {
            let via = if g.steps.len() > 1 {
                format!(" via {}", g.steps.join(", "))
            } else {
                String::new()
            };
            m.push_str(&format!(
                "{} -> {} ({}){via}\n",
                g.from,
                g.to,
                plural(g.count, "manifest")
            ));
            for (change, n) in &g.changes {
                // What a migration says it did is user text: one line of it per change.
                let change = one_line(change);
                if *n == g.count {
                    m.push_str(&format!("  - {change}\n"));
                } else {
                    m.push_str(&format!("  - {change} ({n} of {})\n", g.count));
                }
            }
        }
        m.push_str(&format!("\nAlready current: {}.\n", self.already_current));
        if self.failed > 0 {
            m.push_str(&format!(
                "Failed and left unchanged (--keep-going): {}.\n",
                self.failed
            ));
        }
        m.push('\n');
        m.push_str(&format!("{}: {}\n", keys::TARGET, self.target));
        m.push_str(&format!("{}: {}\n", keys::MANIFESTS, self.migrated()));
        for g in &self.groups {
            m.push_str(&format!(
                "{}: {}->{} {}\n",
                keys::STEP,
                g.from,
                g.to,
                g.count
            ));
        }
        if let Some(r) = &self.registry {
            m.push_str(&format!("{}: {}\n", keys::REGISTRY, r));
        }
        m.push_str(&format!("{}: {}\n", keys::APPLIED_AT, self.applied_at));
        m.push_str(&format!("{}: {}\n", keys::TOOL, self.tool));
        m
    }
}

/// Everything a relocation commit message says: which run directories moved where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocationMessage {
    /// The canonical layout the runs moved into, e.g. `{job_id}/{run_id}`.
    pub layout: String,
    /// `(from, to)` run directories, repository-relative, in path order.
    pub moves: Vec<(String, String)>,
    pub tool: String,
}

/// The line that opens the list of moves in a relocation's body.
const MOVES_HEADER: &str =
    "Moved byte for byte (each old place is now a symbolic link to the new one):";

impl RelocationMessage {
    /// The whole message, ending with a newline: the subject, one `FROM -> TO` line per run,
    /// then the trailers.
    pub fn render(&self) -> String {
        let mut m = format!(
            "relocate: {} to the canonical layout {}\n\n{MOVES_HEADER}\n",
            plural(self.moves.len(), "run"),
            self.layout
        );
        for (from, to) in &self.moves {
            m.push_str(&format!("{from} -> {to}\n"));
        }
        m.push('\n');
        m.push_str(&format!("{}: {}\n", keys::RELOCATE, self.moves.len()));
        m.push_str(&format!("{}: {}\n", keys::LAYOUT, self.layout));
        m.push_str(&format!("{}: {}\n", keys::TOOL, self.tool));
        m
    }

    /// The `(from, to)` moves a relocation's message lists (the paragraph after its header).
    pub fn parse_moves(message: &str) -> Vec<(String, String)> {
        message
            .lines()
            .skip_while(|l| *l != MOVES_HEADER)
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(" -> "))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// The trailers of a commit message, in order.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    match git2::message_trailers_strs(message) {
        Ok(t) => t
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The first value of a trailer.
pub fn trailer<'a>(trailers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchMessage {
        let v = |s: &str| s.parse::<Version>().unwrap();
        BatchMessage {
            target: v("1.2.0"),
            groups: vec![
                StepGroup {
                    from: v("1.0.0"),
                    to: v("1.2.0"),
                    steps: vec!["1.0.0->1.2.0".into()],
                    count: 3,
                    changes: vec![
                        ("Add input_snapshots (empty object)".into(), 3),
                        ("Add job_id (from the path)".into(), 1),
                    ],
                },
                StepGroup {
                    from: v("1.1.0"),
                    to: v("1.2.0"),
                    steps: vec!["1.1.0->1.2.0".into()],
                    count: 1,
                    changes: vec![("Add chain_metadata".into(), 1)],
                },
            ],
            already_current: 2,
            failed: 0,
            applied_at: "2026-11-24T19:00:00Z".into(),
            tool: "artifact-migrate 0.1.0".into(),
            registry: None,
            subject: None,
        }
    }

    #[test]
    fn message_has_the_specified_shape() {
        assert_eq!(
            sample().render(),
            "migrate: 4 manifests to schema 1.2.0\n\n\
             1.0.0 -> 1.2.0 (3 manifests)\n  - Add input_snapshots (empty object)\n  - Add job_id (from the path) (1 of 3)\n\
             1.1.0 -> 1.2.0 (1 manifest)\n  - Add chain_metadata\n\n\
             Already current: 2.\n\n\
             Migration-Target: 1.2.0\nMigration-Manifests: 4\nMigration-Step: 1.0.0->1.2.0 3\nMigration-Step: 1.1.0->1.2.0 1\n\
             Migration-Applied-At: 2026-11-24T19:00:00Z\nMigration-Tool: artifact-migrate 0.1.0\n"
        );
    }

    #[test]
    fn trailers_read_back() {
        let t = trailers(&sample().render());
        assert_eq!(trailer(&t, keys::TARGET), Some("1.2.0"));
        assert_eq!(trailer(&t, keys::MANIFESTS), Some("4"));
        assert_eq!(t.iter().filter(|(k, _)| k == keys::STEP).count(), 2);
    }

    /// Found by fuzz/fuzz_targets/trailers.rs: a change described with a NUL byte (a
    /// declarative migration's `description` can hold any text) made the message unreadable
    /// to libgit2's trailer reader, so `log` and `verify` lost the batch; line breaks could
    /// start a `---` line or a paragraph of fake trailers.
    #[test]
    fn change_texts_cannot_hide_or_forge_trailers() {
        for text in [
            "Add a\0b",
            "x\n\n--- y",
            "ok\n\nMigration-Target: 9.9.9\nMigration-Manifests: 1\n",
            "\u{1b}[31mred\r\n",
        ] {
            let mut m = sample();
            m.groups[0].changes[0].0 = text.to_string();
            let rendered = m.render();
            let t = trailers(&rendered);
            assert_eq!(trailer(&t, keys::TARGET), Some("1.2.0"), "{rendered}");
            assert_eq!(t.len(), 6, "{rendered}");
            assert!(
                !rendered.contains('\0') && !rendered.contains('\r'),
                "{rendered:?}"
            );
        }
    }

    /// Found by fuzz/fuzz_targets/trailers.rs: `apply -m "---"` wrote a message whose
    /// trailers neither libgit2 nor `git interpret-trailers` read (a `---` line starts a
    /// patch for both).
    #[test]
    fn a_subject_that_looks_like_a_patch_separator_keeps_the_trailers() {
        for subject in ["---", "--- schema bump", "----"] {
            let mut m = sample();
            m.subject = Some(subject.to_string());
            let rendered = m.render();
            assert!(
                rendered.starts_with(&format!("migrate: {subject}\n\n")),
                "{rendered}"
            );
            let t = trailers(&rendered);
            assert_eq!(trailer(&t, keys::TARGET), Some("1.2.0"), "{rendered}");
            assert_eq!(t.len(), 6, "{rendered}");
        }
    }

    #[test]
    fn a_custom_subject_stays_on_one_line() {
        let mut m = sample();
        m.subject = Some("schema bump\nfor Q4".into());
        assert!(m.render().starts_with("schema bump for Q4\n\n"));
    }

    #[test]
    fn a_relocation_lists_its_moves_above_its_trailers() {
        let m = RelocationMessage {
            layout: "{job_id}/{run_id}".into(),
            moves: vec![
                ("artifacts/runs/a".into(), "artifacts/j/a".into()),
                ("artifacts/runs/b".into(), "artifacts/k/b".into()),
            ],
            tool: "artifact-migrate 0.1.0".into(),
        };
        let text = m.render();
        assert_eq!(
            text,
            "relocate: 2 runs to the canonical layout {job_id}/{run_id}\n\n\
             Moved byte for byte (each old place is now a symbolic link to the new one):\n\
             artifacts/runs/a -> artifacts/j/a\nartifacts/runs/b -> artifacts/k/b\n\n\
             Migration-Relocate: 2\nMigration-Layout: {job_id}/{run_id}\nMigration-Tool: artifact-migrate 0.1.0\n"
        );
        assert_eq!(RelocationMessage::parse_moves(&text), m.moves);
        let t = trailers(&text);
        assert_eq!(trailer(&t, keys::RELOCATE), Some("2"));
        assert_eq!(t.len(), 3);
    }
}
