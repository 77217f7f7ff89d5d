//! The registry: the graph of migrations, the path finder and the lint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::schema::builtin::builtins;
use crate::schema::migration::{Migration, StepId};
use crate::schema::validation::SchemaSet;
use crate::schema::Version;

/// Why a migration could not be registered, or a path not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("two migrations for {0}: remove one of them")]
    DuplicateEdge(StepId),
    #[error("migration {0} goes from a version to itself")]
    SelfLoop(StepId),
    #[error("schema_version {version} is unknown; the registry knows {known}")]
    UnknownVersion { version: Version, known: String },
    #[error("no migration path from {from} to {to}; the registry knows {known}")]
    NoPath {
        from: Version,
        to: Version,
        known: String,
    },
    #[error("schema_version {from} is newer than the target {to}: downgrades are rollbacks: use `artifact-migrate rollback`")]
    Downgrade { from: Version, to: Version },
}

/// The migrations known to this run: the built-ins plus any a library user registers.
pub struct Registry {
    migrations: Vec<Box<dyn Migration>>,
    /// Each migration's checksum, computed once at registration (history records it for
    /// every manifest a step touches).
    checksums: Vec<(StepId, String)>,
    /// JSON Schemas per version: a manifest a step leaves behind must validate against the
    /// schema of that step's target version, where there is one.
    schemas: SchemaSet,
}

/// One problem `migrations --check` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// `error` (the registry is wrong) or `warning` (it works, but a person should look).
    pub severity: &'static str,
    pub problem: String,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl Registry {
    /// A registry with no migrations.
    pub fn empty() -> Self {
        Registry {
            migrations: Vec::new(),
            checksums: Vec::new(),
            schemas: SchemaSet::empty(),
        }
    }

    /// Sets the JSON Schemas manifests are validated against after each step.
    pub fn set_schemas(&mut self, schemas: SchemaSet) {
        self.schemas = schemas;
    }

    /// The JSON Schemas per version.
    pub fn schemas(&self) -> &SchemaSet {
        &self.schemas
    }

    /// A registry with the three built-in migrations.
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        for m in builtins() {
            // The built-ins are distinct edges by construction.
            if let Err(e) = r.register(m) {
                unreachable!("built-in migrations conflict: {e}");
            }
        }
        r
    }

    /// Adds a migration. Refuses a second migration for the same pair and a self-loop:
    /// the registry never guesses between two definitions of one edge.
    pub fn register(&mut self, m: Box<dyn Migration>) -> Result<(), RegistryError> {
        let id = m.id();
        if id.from == id.to {
            return Err(RegistryError::SelfLoop(id));
        }
        if self.migrations.iter().any(|x| x.id() == id) {
            return Err(RegistryError::DuplicateEdge(id));
        }
        self.checksums.push((id, m.checksum()));
        self.migrations.push(m);
        Ok(())
    }

    /// Every migration, sorted by edge.
    pub fn migrations(&self) -> Vec<&dyn Migration> {
        let mut v: Vec<&dyn Migration> = self.migrations.iter().map(|m| m.as_ref()).collect();
        v.sort_by_key(|m| m.id());
        v
    }

    /// The checksum of a registered migration's definition.
    pub fn checksum(&self, id: StepId) -> Option<&str> {
        self.checksums
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, c)| c.as_str())
    }

    /// Every version that appears in an edge, ascending.
    pub fn versions(&self) -> Vec<Version> {
        let set: BTreeSet<Version> = self
            .migrations
            .iter()
            .flat_map(|m| [m.from(), m.to()])
            .collect();
        set.into_iter().collect()
    }

    /// The highest known version: the default target.
    pub fn latest(&self) -> Option<Version> {
        self.versions().last().copied()
    }

    /// Whether the registry knows this version.
    pub fn knows(&self, v: Version) -> bool {
        self.migrations.iter().any(|m| m.from() == v || m.to() == v)
    }

    fn known_list(&self) -> String {
        let v: Vec<String> = self.versions().iter().map(|v| v.to_string()).collect();
        v.join(", ")
    }

    fn edges_from(&self, v: Version) -> Vec<&dyn Migration> {
        let mut out: Vec<&dyn Migration> = self
            .migrations
            .iter()
            .filter(|m| m.from() == v)
            .map(|m| m.as_ref())
            .collect();
        out.sort_by_key(|m| m.to());
        out
    }

    /// The migrations that take a manifest from `from` to `to`: fewest hops by breadth-first
    /// search; among equally short paths the one through the lowest versions wins, so a
    /// direct edge always wins and the choice never depends on registration order.
    /// An empty path means `from == to`.
    pub fn path(&self, from: Version, to: Version) -> Result<Vec<&dyn Migration>, RegistryError> {
        if from == to {
            return Ok(Vec::new());
        }
        if !self.knows(from) {
            return Err(RegistryError::UnknownVersion {
                version: from,
                known: self.known_list(),
            });
        }
        if from > to {
            return Err(RegistryError::Downgrade { from, to });
        }
        let mut came_by: BTreeMap<Version, &dyn Migration> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(v) = queue.pop_front() {
            for m in self.edges_from(v) {
                if seen.insert(m.to()) {
                    came_by.insert(m.to(), m);
                    if m.to() == to {
                        let mut path = Vec::new();
                        let mut at = to;
                        while at != from {
                            let m = came_by[&at];
                            path.push(m);
                            at = m.from();
                        }
                        path.reverse();
                        return Ok(path);
                    }
                    queue.push_back(m.to());
                }
            }
        }
        Err(RegistryError::NoPath {
            from,
            to,
            known: self.known_list(),
        })
    }

    /// Counts the shortest paths from `from` to `to` (0 when there is none).
    fn shortest_path_count(&self, from: Version, to: Version) -> usize {
        let mut dist: BTreeMap<Version, usize> = BTreeMap::from([(from, 0)]);
        let mut count: BTreeMap<Version, usize> = BTreeMap::from([(from, 1)]);
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            let (dv, cv) = (dist[&v], count[&v]);
            for m in self.edges_from(v) {
                let w = m.to();
                match dist.get(&w) {
                    None => {
                        dist.insert(w, dv + 1);
                        count.insert(w, cv);
                        queue.push_back(w);
                    }
                    Some(&dw) if dw == dv + 1 => *count.entry(w).or_insert(0) += cv,
                    _ => {}
                }
            }
        }
        count.get(&to).copied().unwrap_or(0)
    }

    /// Lints the graph: cycles (errors), versions that cannot reach the latest and
    /// ambiguous equal-length paths (warnings; the tie-break still decides).
    pub fn lint(&self) -> Vec<LintFinding> {
        let mut out = Vec::new();
        let versions = self.versions();
        // Cycles: any edge that goes back to a version that can reach its source.
        for m in self.migrations() {
            if m.to() < m.from() {
                out.push(LintFinding {
                    severity: "error",
                    problem: format!(
                        "migration {} goes down: downgrades are rollbacks, not migrations",
                        m.id()
                    ),
                });
            }
        }
        if let Some(cycle) = self.find_cycle() {
            let names: Vec<String> = cycle.iter().map(|v| v.to_string()).collect();
            out.push(LintFinding {
                severity: "error",
                problem: format!("cycle: {}", names.join(" -> ")),
            });
        }
        let Some(latest) = self.latest() else {
            return out;
        };
        for &v in &versions {
            if v == latest {
                continue;
            }
            match self.shortest_path_count(v, latest) {
                0 => out.push(LintFinding {
                    severity: "warning",
                    problem: format!("version {v} cannot reach the latest version {latest}"),
                }),
                1 => {}
                n => {
                    let chosen = self
                        .path(v, latest)
                        .map(|p| describe_path(&p))
                        .unwrap_or_default();
                    out.push(LintFinding {
                        severity: "warning",
                        problem: format!("{n} equally short paths from {v} to {latest}; chosen: {chosen}; add a direct migration to make the choice explicit"),
                    })
                }
            }
        }
        out
    }

    fn find_cycle(&self) -> Option<Vec<Version>> {
        // Iterative DFS with colours; returns the first cycle found, in order.
        let versions = self.versions();
        let mut colour: BTreeMap<Version, u8> = versions.iter().map(|v| (*v, 0u8)).collect();
        for &start in &versions {
            if colour[&start] != 0 {
                continue;
            }
            let mut stack: Vec<(Version, usize)> = vec![(start, 0)];
            colour.insert(start, 1);
            while let Some(&mut (v, ref mut i)) = stack.last_mut() {
                let edges = self.edges_from(v);
                if *i < edges.len() {
                    let w = edges[*i].to();
                    *i += 1;
                    match colour[&w] {
                        0 => {
                            colour.insert(w, 1);
                            stack.push((w, 0));
                        }
                        1 => {
                            let pos = stack.iter().position(|(x, _)| *x == w).unwrap_or(0);
                            let mut cycle: Vec<Version> =
                                stack[pos..].iter().map(|(x, _)| *x).collect();
                            cycle.push(w);
                            return Some(cycle);
                        }
                        _ => {}
                    }
                } else {
                    colour.insert(v, 2);
                    stack.pop();
                }
            }
        }
        None
    }
}

/// `1.0.0->1.2.0` or `1.0.0->1.1.0, 1.1.0->1.2.0`.
pub fn describe_path(path: &[&dyn Migration]) -> String {
    let names: Vec<String> = path.iter().map(|m| m.id().to_string()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Json;
    use crate::schema::migration::{Change, MigrationContext, MigrationError};

    struct Edge(Version, Version);
    impl Migration for Edge {
        fn from(&self) -> Version {
            self.0
        }
        fn to(&self) -> Version {
            self.1
        }
        fn describe(&self) -> Vec<String> {
            vec![]
        }
        fn transform(
            &self,
            _: &Json,
            _: &MigrationContext<'_>,
        ) -> Result<Vec<Change>, MigrationError> {
            Ok(vec![])
        }
    }
    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }
    fn reg(edges: &[(&str, &str)]) -> Registry {
        let mut r = Registry::empty();
        for (a, b) in edges {
            r.register(Box::new(Edge(v(a), v(b)))).unwrap();
        }
        r
    }
    fn ids(p: &[&dyn Migration]) -> Vec<String> {
        p.iter().map(|m| m.id().to_string()).collect()
    }

    #[test]
    fn builtins_take_the_direct_edge() {
        let r = Registry::with_builtins();
        assert_eq!(r.latest(), Some(v("1.2.0")));
        assert_eq!(
            ids(&r.path(v("1.0.0"), v("1.2.0")).unwrap()),
            ["1.0.0->1.2.0"]
        );
        assert_eq!(
            ids(&r.path(v("1.1.0"), v("1.2.0")).unwrap()),
            ["1.1.0->1.2.0"]
        );
        assert_eq!(
            ids(&r.path(v("1.0.0"), v("1.1.0")).unwrap()),
            ["1.0.0->1.1.0"]
        );
        assert!(r.path(v("1.2.0"), v("1.2.0")).unwrap().is_empty());
        assert!(r.lint().is_empty(), "{:?}", r.lint());
    }

    #[test]
    fn path_finding_goes_through_hops_when_needed() {
        let r = reg(&[("1.0.0", "1.1.0"), ("1.1.0", "1.2.0"), ("1.2.0", "2.0.0")]);
        assert_eq!(
            ids(&r.path(v("1.0.0"), v("2.0.0")).unwrap()),
            ["1.0.0->1.1.0", "1.1.0->1.2.0", "1.2.0->2.0.0"]
        );
    }

    #[test]
    fn equal_length_ties_are_deterministic_whatever_the_registration_order() {
        let a = reg(&[
            ("1.0.0", "1.5.0"),
            ("1.5.0", "2.0.0"),
            ("1.0.0", "1.1.0"),
            ("1.1.0", "2.0.0"),
        ]);
        let b = reg(&[
            ("1.1.0", "2.0.0"),
            ("1.0.0", "1.1.0"),
            ("1.5.0", "2.0.0"),
            ("1.0.0", "1.5.0"),
        ]);
        let want = ["1.0.0->1.1.0", "1.1.0->2.0.0"];
        assert_eq!(ids(&a.path(v("1.0.0"), v("2.0.0")).unwrap()), want);
        assert_eq!(ids(&b.path(v("1.0.0"), v("2.0.0")).unwrap()), want);
        let lint = a.lint();
        assert_eq!(lint.len(), 1, "{lint:?}");
        assert!(
            lint[0].problem.contains("2 equally short paths from 1.0.0"),
            "{lint:?}"
        );
    }

    #[test]
    fn errors_name_the_versions() {
        let r = Registry::with_builtins();
        let e = r
            .path(v("0.9.0"), v("1.2.0"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "schema_version 0.9.0 is unknown; the registry knows 1.0.0, 1.1.0, 1.2.0"
        );
        let e = r
            .path(v("1.2.0"), v("1.1.0"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("downgrades are rollbacks: use `artifact-migrate rollback`"),
            "{e}"
        );
        let r = reg(&[("1.0.0", "1.1.0"), ("2.0.0", "2.1.0")]);
        assert!(matches!(
            r.path(v("1.0.0"), v("2.1.0")),
            Err(RegistryError::NoPath { .. })
        ));
    }

    #[test]
    fn duplicates_and_self_loops_are_refused() {
        let mut r = reg(&[("1.0.0", "1.1.0")]);
        assert_eq!(
            r.register(Box::new(Edge(v("1.0.0"), v("1.1.0")))),
            Err(RegistryError::DuplicateEdge(StepId {
                from: v("1.0.0"),
                to: v("1.1.0")
            }))
        );
        assert!(matches!(
            r.register(Box::new(Edge(v("1.1.0"), v("1.1.0")))),
            Err(RegistryError::SelfLoop(_))
        ));
    }

    #[test]
    fn lint_finds_cycles_and_unreachable_versions() {
        let r = reg(&[
            ("1.0.0", "1.1.0"),
            ("1.1.0", "1.0.5"),
            ("1.0.5", "1.0.0"),
            ("0.9.0", "0.9.5"),
            ("1.1.0", "2.0.0"),
        ]);
        let problems: Vec<String> = r.lint().into_iter().map(|f| f.problem).collect();
        assert!(
            problems.iter().any(|p| p.starts_with("cycle: ")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("1.1.0->1.0.5 goes down")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "version 0.9.0 cannot reach the latest version 2.0.0"),
            "{problems:?}"
        );
    }
}
