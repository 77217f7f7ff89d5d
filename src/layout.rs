//! Where a run lives under the artifacts root (§2): the layouts.
//!
//! A layout is a pattern of directories, relative to the artifacts root, that ends in a run
//! directory holding the manifest: the canonical `{job_id}/{run_id}` and the legacy
//! `runs/{run_id}` the seed's first runs were written in. The first configured layout is the
//! canonical one (`relocate` moves runs into it); it must name both ids.
//!
//! A path that fits several layouts is placed by the most specific one: literal directories
//! beat placeholders (`runs/abc` is the legacy run `abc`, never the job `runs`), then the
//! configured order. This module is pure: it reads path strings, never the tree.

use std::collections::BTreeMap;
use std::fmt;

/// The layouts used when `.artifact-migrate.toml` names none: canonical first, then legacy.
pub const DEFAULT_LAYOUTS: [&str; 2] = ["{job_id}/{run_id}", "runs/{run_id}"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    JobId,
    RunId,
}

/// One layout, e.g. `runs/{run_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pattern: String,
    segments: Vec<Segment>,
}

/// A layout pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layout {pattern:?}: {problem}")]
pub struct LayoutError {
    pub pattern: String,
    pub problem: String,
}

impl Layout {
    /// Parses a pattern: `/`-separated directories, each a literal name, `{job_id}` or
    /// `{run_id}`; `{run_id}` exactly once, `{job_id}` at most once.
    pub fn parse(pattern: &str) -> Result<Layout, LayoutError> {
        let err = |problem: &str| LayoutError {
            pattern: pattern.to_string(),
            problem: problem.to_string(),
        };
        let mut segments = Vec::new();
        for part in pattern.split('/') {
            segments.push(match part {
                "{job_id}" => Segment::JobId,
                "{run_id}" => Segment::RunId,
                "" => return Err(err("has an empty directory name")),
                p if p.contains(['{', '}']) => return Err(err(
                    "only {job_id} and {run_id} may be placeholders, each a whole directory name",
                )),
                p if p.starts_with('.') || p == "inputs" => return Err(err(
                    "names a directory that is never scanned (inputs, or one starting with '.')",
                )),
                p => Segment::Literal(p.to_string()),
            });
        }
        let count = |s: &Segment| segments.iter().filter(|x| *x == s).count();
        if count(&Segment::RunId) != 1 {
            return Err(err("must contain {run_id} exactly once"));
        }
        if count(&Segment::JobId) > 1 {
            return Err(err("may contain {job_id} at most once"));
        }
        Ok(Layout {
            pattern: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as written, e.g. `runs/{run_id}`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the layout names the job (a legacy layout does not).
    pub fn names_job(&self) -> bool {
        self.segments.contains(&Segment::JobId)
    }

    /// The run directory of `run_id` (of `job_id`) in this layout, relative to the
    /// artifacts root; `None` when the layout names the job and no job is given.
    pub fn run_dir(&self, job_id: Option<&str>, run_id: &str) -> Option<String> {
        let mut parts = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            parts.push(match s {
                Segment::Literal(l) => l.as_str(),
                Segment::JobId => job_id?,
                Segment::RunId => run_id,
            });
        }
        Some(parts.join("/"))
    }

    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// The ids a run directory's parts give in this layout, when they fit it.
    fn fit<'p>(&self, dirs: &[&'p str]) -> Option<(Option<&'p str>, &'p str)> {
        if dirs.len() != self.segments.len() {
            return None;
        }
        let (mut job, mut run) = (None, None);
        for (s, d) in self.segments.iter().zip(dirs) {
            match s {
                Segment::Literal(l) if l == d => {}
                Segment::Literal(_) => return None,
                Segment::JobId => job = Some(*d),
                Segment::RunId => run = Some(*d),
            }
        }
        Some((job, run?))
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// The configured layouts; the first is the canonical one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layouts {
    list: Vec<Layout>,
}

/// Where a manifest's path places its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'p> {
    /// Index of the layout in the configured list (0 = canonical).
    pub layout: usize,
    /// The job the path names (`None` in a layout without `{job_id}`).
    pub job_id: Option<&'p str>,
    /// The run the path names.
    pub run_id: &'p str,
}

impl Placement<'_> {
    /// Whether the run sits in the canonical layout.
    pub fn is_canonical(&self) -> bool {
        self.layout == 0
    }
}

impl Default for Layouts {
    fn default() -> Self {
        Layouts::new(DEFAULT_LAYOUTS).expect("the default layouts are valid")
    }
}

impl Layouts {
    /// Parses the configured patterns. The list must not be empty, patterns must differ,
    /// and the first (canonical) one must name both the job and the run.
    pub fn new<S: AsRef<str>>(
        patterns: impl IntoIterator<Item = S>,
    ) -> Result<Layouts, LayoutError> {
        let mut list: Vec<Layout> = Vec::new();
        for p in patterns {
            let layout = Layout::parse(p.as_ref())?;
            if list.iter().any(|l| l.segments == layout.segments) {
                return Err(LayoutError {
                    pattern: layout.pattern,
                    problem: "is listed twice".into(),
                });
            }
            list.push(layout);
        }
        match list.first() {
            None => Err(LayoutError {
                pattern: String::new(),
                problem: "layouts must list at least the canonical one, e.g. \"{job_id}/{run_id}\""
                    .into(),
            }),
            Some(c) if !c.names_job() => Err(LayoutError {
                pattern: c.pattern.clone(),
                problem: "the first layout is the canonical one and must contain {job_id}".into(),
            }),
            Some(_) => Ok(Layouts { list }),
        }
    }

    /// The canonical layout (the first configured).
    pub fn canonical(&self) -> &Layout {
        &self.list[0]
    }

    /// Every layout, canonical first.
    pub fn all(&self) -> &[Layout] {
        &self.list
    }

    /// The layout at `index` of the configured list.
    pub fn get(&self, index: usize) -> Option<&Layout> {
        self.list.get(index)
    }

    /// Places the run of a manifest at `path` (repository-relative, `/`-separated, ending in
    /// the manifest's file name) under `artifacts_root`: the most specific layout its run
    /// directory fits. `None` when the path lies outside the root or fits no layout.
    pub fn place<'p>(&self, artifacts_root: &str, path: &'p str) -> Option<Placement<'p>> {
        let rest = if artifacts_root.is_empty() {
            path
        } else {
            path.strip_prefix(artifacts_root)?.strip_prefix('/')?
        };
        let (dir, _file) = rest.rsplit_once('/')?;
        let dirs: Vec<&str> = dir.split('/').collect();
        if dirs.iter().any(|d| d.is_empty()) {
            return None;
        }
        let mut best: Option<(usize, Placement<'p>)> = None;
        for (i, l) in self.list.iter().enumerate() {
            if let Some((job_id, run_id)) = l.fit(&dirs) {
                if best.is_none_or(|(lits, _)| l.literals() > lits) {
                    let placement = Placement {
                        layout: i,
                        job_id,
                        run_id,
                    };
                    best = Some((l.literals(), placement));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// The layouts as a human list, e.g. `{job_id}/{run_id} or runs/{run_id}`.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.list.iter().map(Layout::pattern).collect();
        names.join(" or ")
    }

    /// Where a run's manifest is expected, in every layout: `artifacts/<job>/<run>/manifest.json
    /// or artifacts/runs/<run>/manifest.json`, with `{job_id}` / `{run_id}` left where an id is
    /// unknown.
    pub fn expected(
        &self,
        artifacts_root: &str,
        file: &str,
        job_id: Option<&str>,
        run_id: Option<&str>,
    ) -> String {
        let places: Vec<String> = self
            .list
            .iter()
            .filter_map(|l| {
                l.run_dir(
                    Some(job_id.unwrap_or("{job_id}")),
                    run_id.unwrap_or("{run_id}"),
                )
            })
            .map(|dir| join(&[artifacts_root, &dir, file]))
            .collect();
        places.join(" or ")
    }

    /// `verify`'s path check: `None` when a manifest at `path` with these ids sits where its
    /// layout puts it (any configured layout, the most specific one that fits); otherwise
    /// what is wrong, ending with the places expected.
    pub fn path_problem(
        &self,
        artifacts_root: &str,
        path: &str,
        job_id: Option<&str>,
        run_id: Option<&str>,
    ) -> Option<String> {
        let file = path.rsplit('/').next().unwrap_or(path);
        let mut problems = Vec::new();
        match self.place(artifacts_root, path) {
            None => problems.push(format!(
                "the path fits no configured layout ({})",
                self.describe()
            )),
            Some(p) => {
                if let (Some(pj), Some(j)) = (p.job_id, job_id) {
                    if pj != j {
                        problems.push(format!("the path says job {pj:?} but job_id is {j:?}"));
                    }
                }
                if let Some(r) = run_id.filter(|r| *r != p.run_id) {
                    let run = p.run_id;
                    problems.push(format!("the path says run {run:?} but run_id is {r:?}"));
                }
            }
        }
        if problems.is_empty() {
            return None;
        }
        Some(format!(
            "{}; expected {}",
            problems.join("; "),
            self.expected(artifacts_root, file, job_id, run_id)
        ))
    }

    /// The canonical run directory (repository-relative) of `run_id` of `job_id`, if both
    /// ids can be directory names there: the directory must place back into the canonical
    /// layout with the same ids (so a job named `runs` or `.tmp` is refused), and hold no
    /// character that would break a one-line record of the move.
    pub fn canonical_dir(
        &self,
        artifacts_root: &str,
        file: &str,
        job_id: &str,
        run_id: &str,
    ) -> Result<String, String> {
        for (what, id) in [("job_id", job_id), ("run_id", run_id)] {
            if id.is_empty()
                || id == "."
                || id == ".."
                || id.starts_with('.')
                || id == "inputs"
                || id.contains(['/', '\\'])
                || id.chars().any(char::is_control)
                || id.contains(" -> ")
            {
                return Err(format!(
                    "{what} {id:?} cannot be a directory name of the canonical layout"
                ));
            }
        }
        let dir = self
            .canonical()
            .run_dir(Some(job_id), run_id)
            .map(|d| join(&[artifacts_root, &d]))
            .unwrap_or_default();
        let manifest = join(&[&dir, file]);
        match self.place(artifacts_root, &manifest) {
            Some(p) if p.is_canonical() && p.job_id == Some(job_id) && p.run_id == run_id => Ok(dir),
            _ => Err(format!(
                "{dir} would not be read back as job {job_id:?}, run {run_id:?} of the canonical layout {}",
                self.canonical()
            )),
        }
    }

    /// Runs found both in the canonical layout and in another one (§2: a legacy
    /// `runs/<run_id>/` directory beside `<job_id>/<run_id>/`; the alias symlink is no
    /// directory and never counts). `paths` are manifest paths; each pair is
    /// `(canonical index, other index)` into them, in path order. Pairs are read from paths
    /// alone: a run id, and the job where the other layout names one.
    pub fn pairs(&self, artifacts_root: &str, paths: &[&str]) -> Vec<(usize, usize)> {
        let mut by_run: BTreeMap<&str, Vec<(usize, Placement<'_>)>> = BTreeMap::new();
        for (i, p) in paths.iter().enumerate() {
            if let Some(place) = self.place(artifacts_root, p) {
                by_run.entry(place.run_id).or_default().push((i, place));
            }
        }
        let mut out = Vec::new();
        for runs in by_run.values() {
            for (c, cp) in runs.iter().filter(|(_, p)| p.is_canonical()) {
                for (o, op) in runs.iter().filter(|(_, p)| !p.is_canonical()) {
                    if op.job_id.is_none_or(|j| Some(j) == cp.job_id) {
                        out.push((*c, *o));
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// Joins non-empty path parts with `/`.
fn join(parts: &[&str]) -> String {
    let kept: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    kept.join("/")
}

/// The target of the alias symlink left at `from` (a run directory) pointing to `to`, both
/// repository-relative: relative to `from`'s parent, as the pipeline makes it
/// (`artifacts/runs/<run>` -> `../<job>/<run>`).
pub fn alias_target(from: &str, to: &str) -> String {
    let from_parent: Vec<&str> = match from.rsplit_once('/') {
        Some((parent, _)) => parent.split('/').collect(),
        None => Vec::new(),
    };
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from_parent
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<&str> = vec![".."; from_parent.len() - common];
    parts.extend(&to_parts[common..]);
    parts.join("/")
}

/// Where a derived `job_id` came from (it goes into the history entry's change text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobIdSource {
    /// The run directory's job directory.
    Path,
    /// The manifest's `job_ref` (`jobs/<job_id>/...`).
    JobRef,
}

impl fmt::Display for JobIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobIdSource::Path => "the path",
            JobIdSource::JobRef => "job_ref",
        })
    }
}

/// The job a `job_ref` of the form `jobs/<job_id>/...` names.
pub fn job_from_ref(job_ref: &str) -> Option<&str> {
    job_ref
        .strip_prefix("jobs/")
        .and_then(|r| r.split_once('/'))
        .map(|(job, _)| job)
        .filter(|job| !job.is_empty())
}

/// Derives the `job_id` of a manifest that has none (§3, 1.1.0): from the path where its
/// layout names the job and the run directory is the manifest's `run_id` (or it has none),
/// else from `job_ref`. Where both give a value and they disagree the identity is
/// ambiguous: an error saying so, for the caller to attach to the manifest.
pub fn derive_job_id(
    placement: Option<Placement<'_>>,
    run_id: Option<&str>,
    job_ref: Option<&str>,
) -> Result<(String, JobIdSource), String> {
    let from_path = placement
        .filter(|p| run_id.is_none_or(|r| r == p.run_id))
        .and_then(|p| p.job_id);
    let from_ref = job_ref.and_then(job_from_ref);
    match (from_path, from_ref) {
        (Some(p), Some(r)) if p != r => Err(format!(
            "cannot derive job_id: the path says {p:?} but job_ref says {r:?}; add job_id by hand and commit it"
        )),
        (Some(p), _) => Ok((p.to_string(), JobIdSource::Path)),
        (None, Some(r)) => Ok((r.to_string(), JobIdSource::JobRef)),
        (None, None) => Err(match placement {
            Some(p) if p.job_id.is_none() => {
                "cannot derive job_id: the run's layout names no job and job_ref is not jobs/<job_id>/...; add job_id by hand and commit it".to_string()
            }
            _ => "cannot derive job_id: the path is not <job_id>/<run_id>/manifest.json and job_ref is not jobs/<job_id>/...; add job_id by hand and commit it".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'p>(l: &Layouts, path: &'p str) -> Option<(usize, Option<&'p str>, &'p str)> {
        l.place("artifacts", path)
            .map(|p| (p.layout, p.job_id, p.run_id))
    }

    #[test]
    fn the_default_layouts_place_canonical_and_legacy_runs() {
        let l = Layouts::default();
        assert_eq!(
            at(&l, "artifacts/job-a/run-1/manifest.json"),
            Some((0, Some("job-a"), "run-1"))
        );
        // `runs` is never a job: the literal beats the placeholder.
        assert_eq!(
            at(&l, "artifacts/runs/run-1/manifest.json"),
            Some((1, None, "run-1"))
        );
        assert_eq!(at(&l, "artifacts/job-a/manifest.json"), None);
        assert_eq!(at(&l, "artifacts/a/b/c/manifest.json"), None);
        assert_eq!(at(&l, "other/job-a/run-1/manifest.json"), None);
        assert_eq!(at(&l, "artifactsx/job-a/run-1/manifest.json"), None);
        let root = l
            .place("", "j/r/manifest.json")
            .map(|p| (p.job_id, p.run_id));
        assert_eq!(root, Some((Some("j"), "r")));
    }

    #[test]
    fn configured_layouts_keep_their_order_among_equals() {
        let l = Layouts::new(["{job_id}/{run_id}", "old/{job_id}/{run_id}", "{run_id}"]).unwrap();
        assert_eq!(
            at(&l, "artifacts/old/j/r/manifest.json"),
            Some((1, Some("j"), "r"))
        );
        assert_eq!(at(&l, "artifacts/r/manifest.json"), Some((2, None, "r")));
        assert_eq!(
            l.get(1).unwrap().run_dir(Some("j"), "r").as_deref(),
            Some("old/j/r")
        );
        assert_eq!(l.canonical().run_dir(None, "r"), None);
        assert_eq!(
            l.describe(),
            "{job_id}/{run_id} or old/{job_id}/{run_id} or {run_id}"
        );
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (pats, needle) in [
            (vec!["runs/{run_id}"], "must contain {job_id}"),
            (vec!["{job_id}"], "{run_id} exactly once"),
            (vec!["{job_id}/{run_id}/{run_id}"], "{run_id} exactly once"),
            (vec!["{job_id}//{run_id}"], "empty directory"),
            (vec!["{job_id}/x{run_id}"], "placeholders"),
            (vec!["{job_id}/.tmp/{run_id}"], "never scanned"),
            (vec!["{job_id}/{run_id}", "{job_id}/{run_id}"], "twice"),
            (vec![], "at least"),
        ] {
            let e = Layouts::new(pats.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{pats:?}: {e}");
        }
    }

    #[test]
    fn job_id_comes_from_a_layout_that_names_it_else_from_job_ref() {
        let l = Layouts::default();
        let canon = l.place("artifacts", "artifacts/job-a/run-1/manifest.json");
        let legacy = l.place("artifacts", "artifacts/runs/run-1/manifest.json");
        assert_eq!(
            derive_job_id(canon, Some("run-1"), None),
            Ok(("job-a".into(), JobIdSource::Path))
        );
        assert_eq!(
            derive_job_id(legacy, Some("run-1"), Some("jobs/ig-test-001/brief.json")),
            Ok(("ig-test-001".into(), JobIdSource::JobRef))
        );
        // A run directory that is not the manifest's run does not name its job.
        assert_eq!(
            derive_job_id(canon, Some("other"), Some("jobs/j/x")),
            Ok(("j".into(), JobIdSource::JobRef))
        );
        let e = derive_job_id(canon, Some("run-1"), Some("jobs/other/x")).unwrap_err();
        assert!(
            e.contains("the path says \"job-a\" but job_ref says \"other\""),
            "{e}"
        );
        let e = derive_job_id(legacy, None, Some("nope")).unwrap_err();
        assert!(e.contains("names no job"), "{e}");
        assert!(derive_job_id(None, None, None).is_err());
        assert_eq!(job_from_ref("jobs//x"), None);
        assert_eq!(job_from_ref("jobs/j"), None);
    }

    #[test]
    fn path_problems_name_the_places_expected() {
        let l = Layouts::default();
        let root = "artifacts";
        let ok = |p: &str, j: Option<&str>, r: Option<&str>| l.path_problem(root, p, j, r);
        assert_eq!(
            ok("artifacts/j/r/manifest.json", Some("j"), Some("r")),
            None
        );
        assert_eq!(
            ok("artifacts/runs/r/manifest.json", Some("j"), Some("r")),
            None
        );
        assert_eq!(ok("artifacts/runs/r/manifest.json", None, None), None);
        assert_eq!(
            ok("artifacts/j/r/manifest.json", Some("k"), Some("r")).as_deref(),
            Some("the path says job \"j\" but job_id is \"k\"; expected artifacts/k/r/manifest.json or artifacts/runs/r/manifest.json")
        );
        assert_eq!(
            ok("artifacts/runs/x/manifest.json", Some("j"), Some("r")).as_deref(),
            Some("the path says run \"x\" but run_id is \"r\"; expected artifacts/j/r/manifest.json or artifacts/runs/r/manifest.json")
        );
        assert_eq!(
            ok("artifacts/a/b/c/manifest.json", None, Some("r")).as_deref(),
            Some("the path fits no configured layout ({job_id}/{run_id} or runs/{run_id}); expected artifacts/{job_id}/r/manifest.json or artifacts/runs/r/manifest.json")
        );
    }

    #[test]
    fn canonical_dirs_must_read_back_as_the_same_run() {
        let l = Layouts::default();
        assert_eq!(
            l.canonical_dir("artifacts", "manifest.json", "ig-test-001", "r1"),
            Ok("artifacts/ig-test-001/r1".to_string())
        );
        assert_eq!(
            l.canonical_dir("", "manifest.json", "j", "r"),
            Ok("j/r".to_string())
        );
        for (job, run) in [
            ("runs", "r"),
            (".tmp", "r"),
            ("inputs", "r"),
            ("a/b", "r"),
            ("", "r"),
            ("j", "a -> b"),
            ("j\n", "r"),
            ("j", ".."),
        ] {
            assert!(
                l.canonical_dir("artifacts", "manifest.json", job, run)
                    .is_err(),
                "{job:?} {run:?}"
            );
        }
    }

    #[test]
    fn pairs_are_a_canonical_run_and_the_same_run_elsewhere() {
        let l = Layouts::default();
        let paths = [
            "artifacts/j/r1/manifest.json",
            "artifacts/j/r2/manifest.json",
            "artifacts/runs/r1/manifest.json",
            "artifacts/runs/r3/manifest.json",
            "artifacts/x/y/z/manifest.json",
        ];
        assert_eq!(l.pairs("artifacts", &paths), vec![(0, 2)]);
        // A legacy layout that names the job pairs only with that job's run.
        let l = Layouts::new(["{job_id}/{run_id}", "old/{job_id}/{run_id}"]).unwrap();
        let paths = [
            "artifacts/j/r/manifest.json",
            "artifacts/k/r/manifest.json",
            "artifacts/old/k/r/manifest.json",
        ];
        assert_eq!(l.pairs("artifacts", &paths), vec![(1, 2)]);
    }

    #[test]
    fn alias_targets_are_relative_to_the_links_directory() {
        assert_eq!(alias_target("artifacts/runs/r", "artifacts/j/r"), "../j/r");
        assert_eq!(alias_target("runs/r", "j/r"), "../j/r");
        assert_eq!(alias_target("a/old/j/r", "a/j/r"), "../../j/r");
        assert_eq!(alias_target("r", "j/r"), "j/r");
    }
}
