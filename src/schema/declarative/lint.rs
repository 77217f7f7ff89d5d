//! The registry lint for built-in and declarative migrations together, naming the file and line
//! of every migration a finding involves (`migrations --check`, and at load).
//!
//! Rules, over the graph of every edge (the lowest version is the *root*, where a manifest
//! without `schema_version` starts; the highest is the *latest*, the default target):
//!
//! - **error** — two migrations for one pair (both named: files and lines, or "built-in").
//! - **error** — a migration that goes down (only a Rust one can: files are refused at load).
//! - **error** — a cycle, each edge of it named.
//! - **warning** — an unreachable version: one from which the latest version cannot be reached.
//! - **warning** — a target nobody reaches: a version that no chain of migrations leads to
//!   from the root, so manifests at the root can never be migrated to it. Named at each
//!   migration that leads into (or, failing that, out of) the version.
//! - **warning** — ambiguous equal-length paths: more than one shortest path from a version to
//!   the latest; the registry's tie-break still decides, and the finding names the choice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::Serialize;

use super::DeclarativeMigration;
use crate::schema::migration::{Migration, StepId};
use crate::schema::{LintFinding, Version};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The registry is wrong: refuse to run.
    Error,
    /// It works, but a person should look.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One lint finding, located at a file and line where a declarative migration is involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintIssue {
    pub severity: Severity,
    /// The migration file the finding is about (`None` for built-ins or the graph as a whole).
    pub file: Option<String>,
    /// The line in `file`.
    pub line: Option<usize>,
    /// What is wrong and what to do, naming any other migrations involved.
    pub problem: String,
}

impl fmt::Display for LintIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.severity.as_str(), self.problem)
    }
}

impl From<LintIssue> for LintFinding {
    /// For the registry's report shape: the location goes in front of the problem.
    fn from(issue: LintIssue) -> LintFinding {
        let problem = match (&issue.file, issue.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: {}", issue.problem),
            (Some(file), None) => format!("{file}: {}", issue.problem),
            _ => issue.problem,
        };
        LintFinding {
            severity: issue.severity.as_str(),
            problem,
        }
    }
}

/// Where an edge is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    BuiltIn,
    File(String, usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::File(file, line) => write!(f, "{file}:{line}"),
        }
    }
}

#[derive(Debug, Clone)]
struct EdgeRef {
    id: StepId,
    origin: Origin,
}

impl EdgeRef {
    fn named(&self) -> String {
        format!("{} ({})", self.id, self.origin)
    }
}

struct Graph {
    /// One edge per pair (the first definition), by source version, sorted by target.
    out: BTreeMap<Version, Vec<EdgeRef>>,
    versions: BTreeSet<Version>,
}

impl Graph {
    fn edges_from(&self, v: Version) -> &[EdgeRef] {
        self.out.get(&v).map_or(&[], Vec::as_slice)
    }

    fn reachable_from(&self, start: Version) -> BTreeSet<Version> {
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for e in self.edges_from(v) {
                if seen.insert(e.id.to) {
                    queue.push_back(e.id.to);
                }
            }
        }
        seen
    }

    /// Every shortest path from `from` to `to`, at most `cap` of them, and how many there are.
    fn shortest_paths(&self, from: Version, to: Version, cap: usize) -> (usize, Vec<Vec<EdgeRef>>) {
        let mut dist: BTreeMap<Version, usize> = BTreeMap::from([(from, 0)]);
        let mut count: BTreeMap<Version, usize> = BTreeMap::from([(from, 1)]);
        let mut preds: BTreeMap<Version, Vec<EdgeRef>> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            let (dv, cv) = (dist[&v], count[&v]);
            for e in self.edges_from(v) {
                let w = e.id.to;
                match dist.get(&w) {
                    None => {
                        dist.insert(w, dv + 1);
                        count.insert(w, cv);
                        preds.entry(w).or_default().push(e.clone());
                        queue.push_back(w);
                    }
                    Some(&dw) if dw == dv + 1 => {
                        *count.entry(w).or_insert(0) += cv;
                        preds.entry(w).or_default().push(e.clone());
                    }
                    _ => {}
                }
            }
        }
        let total = count.get(&to).copied().unwrap_or(0);
        let mut paths = Vec::new();
        let mut stack: Vec<(Version, Vec<EdgeRef>)> = vec![(to, Vec::new())];
        while let Some((v, suffix)) = stack.pop() {
            if paths.len() >= cap {
                break;
            }
            if v == from {
                paths.push(suffix);
                continue;
            }
            for e in preds.get(&v).map_or(&[][..], Vec::as_slice).iter().rev() {
                let mut p = vec![e.clone()];
                p.extend(suffix.iter().cloned());
                stack.push((e.id.from, p));
            }
        }
        (total, paths)
    }

    fn find_cycle(&self) -> Option<Vec<EdgeRef>> {
        let mut colour: BTreeMap<Version, u8> = self.versions.iter().map(|v| (*v, 0)).collect();
        for &start in &self.versions {
            if colour.get(&start) != Some(&0) {
                continue;
            }
            // (version, next edge index, edge that led here)
            let mut stack: Vec<(Version, usize, Option<EdgeRef>)> = vec![(start, 0, None)];
            colour.insert(start, 1);
            while let Some((v, i, _)) = stack.last().cloned() {
                let edges = self.edges_from(v);
                if let Some(e) = edges.get(i) {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    let w = e.id.to;
                    match colour.get(&w).copied().unwrap_or(0) {
                        0 => {
                            colour.insert(w, 1);
                            stack.push((w, 0, Some(e.clone())));
                        }
                        1 => {
                            let pos = stack.iter().position(|(x, _, _)| *x == w).unwrap_or(0);
                            let mut cycle: Vec<EdgeRef> = stack[pos + 1..]
                                .iter()
                                .filter_map(|s| s.2.clone())
                                .collect();
                            cycle.push(e.clone());
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

fn issue(severity: Severity, at: &Origin, problem: String) -> LintIssue {
    let (file, line) = match at {
        Origin::BuiltIn => (None, None),
        Origin::File(f, l) => (Some(f.clone()), Some(*l)),
    };
    LintIssue {
        severity,
        file,
        line,
        problem,
    }
}

fn describe(path: &[EdgeRef]) -> String {
    let names: Vec<String> = path.iter().map(EdgeRef::named).collect();
    names.join(", ")
}

/// Lints the built-in (or other Rust) migrations and the declarative ones together. Findings
/// come errors first, then warnings, each group in a stable order.
pub fn lint(builtins: &[&dyn Migration], declared: &[DeclarativeMigration]) -> Vec<LintIssue> {
    let mut edges: Vec<EdgeRef> = builtins
        .iter()
        .map(|m| EdgeRef {
            id: m.id(),
            origin: match m.source() {
                Some(file) => Origin::File(file.to_string(), 1),
                None => Origin::BuiltIn,
            },
        })
        .collect();
    edges.extend(declared.iter().map(|m| EdgeRef {
        id: m.id(),
        origin: Origin::File(m.file().to_string(), m.line()),
    }));
    let mut out = Vec::new();

    // Two definitions of one pair: named at every definition after the first.
    let mut by_pair: BTreeMap<StepId, Vec<&EdgeRef>> = BTreeMap::new();
    for e in &edges {
        by_pair.entry(e.id).or_default().push(e);
    }
    for (id, defs) in &by_pair {
        for later in defs.iter().skip(1) {
            let others: Vec<String> = defs
                .iter()
                .filter(|d| !std::ptr::eq(**d, *later))
                .map(|d| d.origin.to_string())
                .collect();
            out.push(issue(
                Severity::Error,
                &later.origin,
                format!(
                    "two migrations for {id}: this one and {}; remove one of them",
                    others.join(", ")
                ),
            ));
        }
    }

    let mut graph = Graph {
        out: BTreeMap::new(),
        versions: BTreeSet::new(),
    };
    for defs in by_pair.values() {
        let e = defs[0];
        graph.versions.insert(e.id.from);
        graph.versions.insert(e.id.to);
        if e.id.from != e.id.to {
            graph.out.entry(e.id.from).or_default().push(e.clone());
        }
    }
    for list in graph.out.values_mut() {
        list.sort_by_key(|e| e.id.to);
    }

    for defs in by_pair.values() {
        let e = defs[0];
        if e.id.to <= e.id.from {
            out.push(issue(
                Severity::Error,
                &e.origin,
                format!(
                    "migration {} goes down (or nowhere): a migration goes up; downgrades are rollbacks, not migrations",
                    e.id
                ),
            ));
        }
    }
    if let Some(cycle) = graph.find_cycle() {
        let at = cycle
            .iter()
            .find(|e| e.origin != Origin::BuiltIn)
            .or(cycle.first())
            .map_or(Origin::BuiltIn, |e| e.origin.clone());
        out.push(issue(
            Severity::Error,
            &at,
            format!(
                "cycle: {}; remove the migration that goes down",
                describe(&cycle)
            ),
        ));
    }

    let (Some(&root), Some(&latest)) = (graph.versions.first(), graph.versions.last()) else {
        return out;
    };
    let first_edge_touching = |v: Version| -> Origin {
        let into = by_pair
            .values()
            .map(|d| d[0])
            .filter(|e| e.id.to == v)
            .find(|e| e.origin != Origin::BuiltIn);
        let out_of = by_pair
            .values()
            .map(|d| d[0])
            .filter(|e| e.id.from == v)
            .find(|e| e.origin != Origin::BuiltIn);
        into.or(out_of)
            .map_or(Origin::BuiltIn, |e| e.origin.clone())
    };

    // Unreachable versions: the latest cannot be reached from them.
    for &v in &graph.versions {
        if v == latest || graph.reachable_from(v).contains(&latest) {
            continue;
        }
        out.push(issue(
            Severity::Warning,
            &first_edge_touching(v),
            format!(
                "version {v} cannot reach the latest version {latest}: manifests at {v} can never be migrated to it; add a migration from {v} (or from a version it reaches) towards {latest}"
            ),
        ));
    }

    // A target nobody reaches: no chain from the root leads to it.
    let from_root = graph.reachable_from(root);
    for &v in &graph.versions {
        if from_root.contains(&v) {
            continue;
        }
        let into: Vec<String> = by_pair
            .values()
            .map(|d| d[0])
            .filter(|e| e.id.to == v)
            .map(EdgeRef::named)
            .collect();
        let problem = if into.is_empty() {
            format!(
                "version {v} is reached by no migration: manifests at {root} can never be migrated to {v} or beyond it; add a migration into {v} from a version {root} reaches"
            )
        } else {
            format!(
                "version {v} cannot be reached from {root}: the migrations into it ({}) start at versions {root} never reaches; add a migration that links them",
                into.join(", ")
            )
        };
        out.push(issue(Severity::Warning, &first_edge_touching(v), problem));
    }

    // Ambiguous equal-length paths to the latest.
    for &v in &graph.versions {
        if v == latest {
            continue;
        }
        let (n, paths) = graph.shortest_paths(v, latest, 4);
        if n < 2 {
            continue;
        }
        let listed: Vec<String> = paths.iter().map(|p| format!("[{}]", describe(p))).collect();
        let at = paths
            .iter()
            .flatten()
            .find(|e| e.origin != Origin::BuiltIn)
            .map_or(Origin::BuiltIn, |e| e.origin.clone());
        let more = if n > paths.len() {
            format!(" and {} more", n - paths.len())
        } else {
            String::new()
        };
        out.push(issue(
            Severity::Warning,
            &at,
            format!(
                "{n} equally short paths from {v} to {latest}: {}{more}; the one through the lowest versions is taken; add a direct migration {v}->{latest} to make the choice explicit",
                listed.join(" or ")
            ),
        ));
    }

    out.sort_by_key(|i| i.severity);
    out
}
