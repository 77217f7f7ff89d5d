#!/usr/bin/env python3
"""The benchmark harness: artifact-migrate against the peers, on fresh copies of one corpus, in one run.

usage: python3 benches/harness.py [--n 100000] [--corpus DIR] [--packed] [--work DIR] [--runs 1]
                                 [--write docs/performance.md]
       python3 benches/harness.py --bare 100000,1000000 [--bare-repo 1000000=/work/bench/fi1m.git]

Builds the release binary, makes (or reuses) a corpus with ../shared/bench/gen_corpus.py, then
measures, each on a fresh `cp -a` copy of the corpus (the copy is not timed):

Each copy's index is refreshed (`git update-index --refresh`, untimed), as in a repository
where git has run since the files were written.

  apply                    artifact-migrate apply (working tree updated)
  floor                    ../shared/bench/fs_floor.py: rewrite the same files in place (self-timed)
  seed + git               ../shared/bench/peer_seed.py, then git add -A artifacts, git commit
  apply --branch           artifact-migrate apply --branch bench (no working tree)
  status                   artifact-migrate status
  rollback                 artifact-migrate rollback of the apply batch
  git revert               git revert --no-edit HEAD of the same batch
  verify                   artifact-migrate verify after apply
  index full (SQLite)      artifact-migrate index: the first build, default SQLite file
  index full (PostgreSQL)  the same into a fresh database of a throwaway PostgreSQL server
  index after apply (..)   index after an apply of the whole corpus (the refresh is off for it)
  index after 10 (..)      index after a commit that changes 10 manifests

  read floor               git ls-tree -r HEAD artifacts + git cat-file --batch of the manifests' blobs
                           (the reading any tool that migrates must do, measured in the same run)

and the peak resident memory of each (GNU time). Every artifact-migrate row runs with
ARTIFACT_MIGRATE_TIMINGS=1; its phases are kept (JSON beside the corpus copies) and printed.

--packed measures a `git gc`'d copy of the corpus too (made once, beside it), as real repositories
are packed; the loose rows stay for comparison. --corpus reuses a corpus made earlier.

--bare SIZES measures bare repositories made by benches/gen_fast_import.py (no working tree: the
1M-manifest mode): apply --branch, verify --rev of the new branch, index, each with its peak
memory and phases, and for each pair of consecutive sizes the ratio of every phase (the linearity
target: from 100k to 1M no phase more than 11x). --bare-repo N=PATH reuses a repository.
 Ratios are what to compare: the machine is
shared and noisy, absolute times drift. With --write the table goes into the given file
(between the BEGIN/END markers), with the machine and the date.
"""
import argparse, datetime, glob, os, platform, re, shutil, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")
BIN = os.path.join(ROOT, "target", "release", "artifact-migrate")
ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
           GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid",
           SOURCE_DATE_EPOCH="1767225600", NO_COLOR="1")


PHASES = {}  # row -> {phase: seconds}, from ARTIFACT_MIGRATE_TIMINGS


def run(cmd, cwd=None, check=True, row=None):
    """Runs a command under GNU time; returns (seconds, peak KiB, stdout). With `row`, its phases are kept."""
    t = time.perf_counter()
    env = dict(ENV, ARTIFACT_MIGRATE_TIMINGS="1") if row else ENV
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, cwd=cwd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    kib = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else 0
    if row:
        PHASES[row] = {m.group(1): float(m.group(2)) for m in re.finditer(r"^timing: (.+): ([0-9.]+)s$", p.stderr, re.M)}
    return secs, kib, p.stdout


def read_floor(d, rev="HEAD"):
    """git ls-tree -r + git cat-file --batch of the manifests' blobs, timed as one pipeline."""
    t = time.perf_counter()
    ls = subprocess.run(["git", "-C", d, "ls-tree", "-r", rev, "artifacts"], capture_output=True, check=True, env=ENV)
    ids = b"".join(l.split()[2] + b"\n" for l in ls.stdout.splitlines() if l.endswith(b"/manifest.json"))
    subprocess.run(["git", "-C", d, "cat-file", "--batch"], input=ids, stdout=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - t, 0, ""


def fresh(corpus, work, name):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["cp", "-a", os.path.realpath(corpus), d], check=True)
    # The index a user's repository has: stat data refreshed (what any `git status` does).
    subprocess.run(["git", "-C", d, "update-index", "-q", "--refresh"], env=ENV)
    subprocess.run(["sync"], check=True)
    return d


def pg_start(work):
    """A throwaway PostgreSQL server from Debian's binaries (as the postgres user when root); returns (port, stop)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins:
        sys.exit("no PostgreSQL binaries under /usr/lib/postgresql: apt-get install postgresql, or pass --no-pg")
    bindir = os.path.dirname(bins[-1])
    d = os.path.join(work, "pg")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    pre = []
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", d], check=True)
        pre = ["runuser", "-u", "postgres", "--"]
    subprocess.run(pre + [os.path.join(bindir, "initdb"), "-D", os.path.join(d, "data"), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    ctl = pre + [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(d, "data")]
    subprocess.run(ctl + ["-o", f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "-l", os.path.join(d, "log"), "-w", "start"],
                   check=True, capture_output=True)

    def stop():
        subprocess.run(ctl + ["-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    return port, stop


def pg_database(port, name):
    subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
                    "-c", f"CREATE DATABASE {name}"], check=True)
    return f"postgres://postgres@127.0.0.1:{port}/{name}"


def change_ten(d):
    """Commits a change to 10 manifests (a status edit), untimed."""
    out = subprocess.run(["git", "-C", d, "ls-files", "artifacts/*/manifest.json"], capture_output=True, text=True, check=True)
    paths = [p for p in out.stdout.splitlines() if "/inputs/" not in p][:10]
    for p in paths:
        f = os.path.join(d, p)
        text = open(f, encoding="utf-8").read()
        open(f, "w", encoding="utf-8").write(text.replace('"succeeded"', '"reviewed"', 1))
    subprocess.run(["git", "-C", d, "commit", "-q", "-a", "-m", "review 10 runs"], check=True, env=ENV)


def measure_index(corpus, work, pg_port):
    """The index rows: full, after a whole-corpus apply, after a 10-manifest commit."""
    r = {}
    backends = [("SQLite", None)]
    if pg_port:
        backends.append(("PostgreSQL", pg_port))
    for name, port in backends:
        d = fresh(corpus, work, "index")
        db = ["--db", pg_database(port, f"bench_{int(time.time() * 1000)}")] if port else []
        r[f"index full ({name})"] = run([BIN, "-C", d, "-q", "index"] + db, row=f"index full ({name})")
        # The refresh after apply would do the incremental update inside apply: measure it alone.
        with open(os.path.join(d, ".artifact-migrate.toml"), "w") as f:
            f.write("[index]\nupdate_after_commit = false\n")
        run([BIN, "-C", d, "-q", "apply"])
        r[f"index after apply ({name})"] = run([BIN, "-C", d, "-q", "index"] + db)
        change_ten(d)
        r[f"index after 10 ({name})"] = run([BIN, "-C", d, "-q", "index"] + db)
        shutil.rmtree(d, ignore_errors=True)
    return r


def measure(corpus, work):
    r = {}
    d = fresh(corpus, work, "status")
    r["read floor"] = read_floor(d)
    r["status"] = run([BIN, "-C", d, "-q", "status"], row="status")
    r["status (warm)"] = run([BIN, "-C", d, "-q", "status"], row="status (warm)")
    r["git status"] = run(["git", "-C", d, "status", "--porcelain"])
    d = fresh(corpus, work, "apply")
    r["apply"] = run([BIN, "-C", d, "-q", "apply"], row="apply")
    r["verify"] = run([BIN, "-C", d, "-q", "verify"], row="verify")
    tree = subprocess.run(["git", "-C", d, "rev-parse", "HEAD^{tree}"], capture_output=True, text=True).stdout.strip()
    r["rollback"] = run([BIN, "-C", d, "-q", "rollback"], row="rollback")
    g = fresh(corpus, work, "revert")
    run([BIN, "-C", g, "-q", "apply"])
    r["git revert"] = run(["git", "-C", g, "revert", "--no-edit", "HEAD"])
    r["apply --branch"] = run([BIN, "-C", fresh(corpus, work, "branch"), "-q", "apply", "--branch", "bench"], row="apply --branch")
    f = fresh(corpus, work, "floor")
    secs, kib, out = run([sys.executable, os.path.join(SHARED, "fs_floor.py"), f])
    m = re.search(r"in ([0-9.]+)s", out)
    r["floor"] = (float(m.group(1)) if m else secs, kib, out)
    s = fresh(corpus, work, "seed")
    a = run([sys.executable, os.path.join(SHARED, "peer_seed.py"), s])
    b = run(["git", "-C", s, "add", "-A", "artifacts"])
    c = run(["git", "-C", s, "commit", "-q", "-m", "seed migration"])
    r["seed + git"] = (a[0] + b[0] + c[0], max(a[1], b[1], c[1]), "")
    for name in ("apply", "status", "floor", "seed", "branch", "revert"):
        shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    return r, tree


def median(results):
    keys = [k for k in results[0] if not k.startswith("_")]
    med = {k: sorted(x[k][0] for x in results)[len(results) // 2] for k in keys}
    mem = {k: max(x[k][1] for x in results) for k in keys}
    return med, mem


ROWS = [  # (row, reference, target) -- the targets of issue 13 (and issue 10 for the index)
    ("apply", "floor", "≤ 1.1× floor"),
    ("apply", "seed + git", "(reported)"),
    ("apply --branch", "read floor", "≤ 2× read floor"),
    ("verify", "read floor", "≤ 3× read floor"),
    ("status", "git status", "≤ 1× git status"),
    ("status (warm)", "git status", "≤ 0.5× git status"),
    ("rollback", "git revert", "faster than git revert"),
    ("index full (SQLite)", "status", "≤ 2× status"),
    ("index full (PostgreSQL)", "status", ""),
    ("index after apply (SQLite)", None, ""),
    ("index after apply (PostgreSQL)", None, ""),
    ("index after 10 (SQLite)", None, "≤ 0.3 s"),
    ("index after 10 (PostgreSQL)", None, ""),
    ("read floor", None, ""),
    ("floor", None, ""),
    ("seed + git", None, ""),
    ("git status", None, ""),
    ("git revert", None, ""),
]


def table(results, label, runs):
    med, mem = median(results)
    rows = [row for row in ROWS if row[0] in med and (row[1] is None or row[1] in med)]
    rows += [(k, None, "") for k in med if k not in {row[0] for row in rows}]
    out = [f"| measured ({label}, median of {runs}) | seconds | peak memory | ratio | target |", "|---|---:|---:|---|---|"]
    for k, ref, target in rows:
        ratio = ""
        if ref:
            q = med[k] / med[ref] if med[ref] else float("nan")
            faster = ref in ("seed + git", "git revert") and q < 1
            ratio = f"{1 / q:.1f}× faster than {ref}" if faster else f"{q:.2f}× {ref}"
        peak = f"{mem[k] / 1024:.0f} MiB" if mem[k] else "-"
        out.append(f"| {k} | {med[k]:.2f} | {peak} | {ratio} | {target} |")
    phases = results[-1].get("_phases", {})
    if phases:
        out.append("")
        out.append("Phases (`ARTIFACT_MIGRATE_TIMINGS=1`, last run):")
        out.append("")
        for k, ph in phases.items():
            out.append(f"- {k}: " + ", ".join(f"{p} {v:.2f} s" for p, v in ph.items()))
    return "\n".join(out)


def bare_repo(n, work, given):
    """A bare repository of n manifests from gen_fast_import.py (or the one given), copied for measuring."""
    src = given or os.path.join(work, f"fi-{n}.git")
    if not given and not os.path.exists(src):
        subprocess.run(["git", "init", "-q", "--bare", src], check=True)
        gen = subprocess.Popen([sys.executable, os.path.join(ROOT, "benches", "gen_fast_import.py"), str(n)], stdout=subprocess.PIPE)
        subprocess.run(["git", "-C", src, "fast-import", "--quiet"], stdin=gen.stdout, check=True)
        gen.wait()
    d = os.path.join(work, "bare.git")
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["cp", "-a", os.path.realpath(src), d], check=True)
    subprocess.run(["git", "-C", d, "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    subprocess.run(["sync"], check=True)
    return d


def measure_bare(n, work, given):
    r = {}
    d = bare_repo(n, work, given)
    r["read floor"] = read_floor(d, "main")
    r["apply --branch"] = run([BIN, "-C", d, "-q", "apply", "--branch", "bench"], row="apply --branch")
    r["verify"] = run([BIN, "-C", d, "-q", "verify", "bench"], row="verify")
    r["index full (SQLite)"] = run([BIN, "-C", d, "-q", "index"], row="index full (SQLite)")
    commit = subprocess.run(["git", "-C", d, "rev-parse", "bench"], capture_output=True, text=True).stdout.strip()
    r["_phases"] = dict(PHASES)
    PHASES.clear()
    shutil.rmtree(d, ignore_errors=True)
    return r, commit


def phase_ratios(small, big, n_small, n_big):
    """For each row and phase measured at both sizes: big / small, against the linear n_big / n_small."""
    lin = n_big / n_small
    out = [f"| {n_small:,} → {n_big:,} ({lin:.0f}× the manifests) | phase | seconds | seconds | ratio | target |",
           "|---|---|---:|---:|---:|---|"]
    for row, ph in big["_phases"].items():
        for p, v in ph.items():
            s = small["_phases"].get(row, {}).get(p)
            if s:
                q = v / s
                out.append(f"| {row} | {p} | {s:.2f} | {v:.2f} | {q:.1f}× | ≤ {lin * 1.1:.1f}×{'' if q <= lin * 1.1 else ' MISSED'} |")
    # The whole commands, and git's own read of the same blobs: how much of a phase's growth
    # the machine gives any reader of a pack ten times the size (page cache, memory).
    for row, v in big.items():
        if not row.startswith("_") and row in small and small[row][0] > 0:
            what = "(git's own growth)" if row == "read floor" else "(reference)"
            out.append(f"| {row} | whole command | {small[row][0]:.2f} | {v[0]:.2f} | {v[0] / small[row][0]:.1f}× | {what} |")
    return "\n".join(out)


def machine(cmdline, ids):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    load = os.getloadavg()[0]
    return (f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores ({cpu}), "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.system()} {platform.release()}, "
            f"load average {load:.1f} at the end; `python3 benches/harness.py {cmdline}`. {ids}.")


def write_block(path, tag, block, kind="harness"):
    """Puts `block` between the `<!-- BEGIN kind tag -->` markers of `path` (appended when absent)."""
    text = open(path).read()
    block = f"<!-- BEGIN {kind} {tag} -->\n{block}\n<!-- END {kind} {tag} -->"
    pat = re.compile(rf"<!-- BEGIN {kind} {re.escape(tag)} -->.*?<!-- END {kind} {re.escape(tag)} -->", re.S)
    text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
    open(path, "w").write(text)


def main_bare(a):
    sizes = [int(x) for x in a.bare.split(",")]
    given = dict(x.split("=", 1) for x in a.bare_repo)
    results, commits = {}, []
    for n in sizes:
        results[n], commit = measure_bare(n, a.work, given.get(str(n)))
        commits.append(f"{n:,}: {commit[:12]}")
        print(f"{n}: " + ", ".join(f"{k} {v[0]:.2f}s" for k, v in results[n].items() if not k.startswith("_")), file=sys.stderr)
    parts = [machine(" ".join(sys.argv[1:]), "apply --branch commits: " + ", ".join(commits))]
    for n in sizes:
        parts.append(table([results[n]], f"{n:,} manifests, bare, one pack", 1))
    for small, big in zip(sizes, sizes[1:]):
        parts.append(phase_ratios(results[small], results[big], small, big))
    out = "\n\n".join(parts)
    print(out)
    if a.write:
        write_block(a.write, "bare " + ",".join(str(n) for n in sizes), out)


def packed_copy(corpus):
    """The corpus after `git gc` (made once, beside it): how real repositories are stored."""
    packed = corpus.rstrip("/") + "-packed"
    if not os.path.exists(os.path.join(packed, ".git")):
        shutil.rmtree(packed, ignore_errors=True)
        subprocess.run(["cp", "-a", os.path.realpath(corpus), packed], check=True)
        subprocess.run(["git", "-C", packed, "gc", "-q"], check=True, env=ENV)
    return packed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--corpus", default=None, help="a corpus made by gen_corpus.py earlier (default: WORK/corpus-N)")
    ap.add_argument("--packed", action="store_true", help="also measure a `git gc`'d copy of the corpus")
    ap.add_argument("--only-packed", action="store_true", help="measure only the `git gc`'d copy")
    ap.add_argument("--bare", default=None, help="comma-separated sizes: bare gen_fast_import.py repositories")
    ap.add_argument("--bare-repo", action="append", default=[], help="N=PATH: reuse this bare repository for size N")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--write", default=None)
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    ap.add_argument("--only-index", action="store_true", help="only the index rows (and status, their reference)")
    a = ap.parse_args()
    if not a.bare and not os.path.exists(os.path.join(SHARED, "gen_corpus.py")):
        sys.exit(f"the peers are expected in {SHARED} (the shared/ folder beside the project)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    os.makedirs(a.work, exist_ok=True)
    # Measure a copy of the binary, so a rebuild during the run cannot change what is measured.
    global BIN
    shutil.copy2(BIN, os.path.join(a.work, "artifact-migrate"))
    BIN = os.path.join(a.work, "artifact-migrate")
    if a.bare:
        return main_bare(a)
    corpus = a.corpus or os.path.join(a.work, f"corpus-{a.n}")
    if not os.path.exists(os.path.join(corpus, ".git")):
        shutil.rmtree(corpus, ignore_errors=True)
        # gen_corpus's commits would trigger git's automatic gc, which packs the "loose"
        # corpus (and races a `cp -a` of it): switch it off so the loose rows stay loose.
        nogc = dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="gc.auto", GIT_CONFIG_VALUE_0="0")
        subprocess.run([sys.executable, os.path.join(SHARED, "gen_corpus.py"), corpus, str(a.n)], check=True, env=nogc)
    kinds = [] if a.only_packed else [("loose", corpus)]
    if a.packed or a.only_packed:
        kinds.append(("packed", packed_copy(corpus)))
    pg_port, pg_stop = pg_start(a.work) if not a.no_pg else (None, None)
    parts, trees = [], set()
    try:
        for kind, c in kinds:
            results = []
            for i in range(a.runs):
                if a.only_index:
                    r, tree = {"status": run([BIN, "-C", fresh(c, a.work, "status"), "-q", "status"])}, "-"
                    shutil.rmtree(os.path.join(a.work, "status"), ignore_errors=True)
                else:
                    r, tree = measure(c, a.work)
                r.update(measure_index(c, a.work, pg_port))
                r["_phases"] = dict(PHASES)
                PHASES.clear()
                results.append(r)
                trees.add(tree)
                print(f"{kind} run {i + 1}: " + ", ".join(f"{k} {v[0]:.2f}s" for k, v in r.items() if not k.startswith("_")), file=sys.stderr)
            parts.append(table(results, f"{a.n:,} manifests, {kind}", a.runs))
    finally:
        if pg_stop:
            pg_stop()
    out = "\n\n".join([machine(" ".join(sys.argv[1:]), "apply's tree: " + ", ".join(sorted(trees)))] + parts)
    print(out)
    if a.write:
        tag = f"{a.n}{' index' if a.only_index else ''}"
        write_block(a.write, tag, out)


if __name__ == "__main__":
    main()
