#!/usr/bin/env python3
"""The benchmark harness: artifact-migrate against the peers, on fresh copies of one corpus, in one run.

usage: python3 benches/harness.py [--n 100000] [--work DIR] [--runs 1] [--write docs/performance.md]

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

and the peak resident memory of each (GNU time). Ratios are what to compare: the machine is
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


def run(cmd, cwd=None, check=True):
    """Runs a command under GNU time; returns (seconds, peak KiB, stdout)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    kib = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else 0
    return secs, kib, p.stdout


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
        r[f"index full ({name})"] = run([BIN, "-C", d, "-q", "index"] + db)
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
    d = fresh(corpus, work, "apply")
    r["apply"] = run([BIN, "-C", d, "-q", "apply"])
    r["status"] = run([BIN, "-C", fresh(corpus, work, "status"), "-q", "status"])
    r["verify"] = run([BIN, "-C", d, "-q", "verify"])
    tree = subprocess.run(["git", "-C", d, "rev-parse", "HEAD^{tree}"], capture_output=True, text=True).stdout.strip()
    r["rollback"] = run([BIN, "-C", d, "-q", "rollback"])
    g = fresh(corpus, work, "revert")
    run([BIN, "-C", g, "-q", "apply"])
    r["git revert"] = run(["git", "-C", g, "revert", "--no-edit", "HEAD"])
    r["apply --branch"] = run([BIN, "-C", fresh(corpus, work, "branch"), "-q", "apply", "--branch", "bench"])
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


def table(results, n, runs):
    med = {k: sorted(x[k][0] for x in results)[len(results) // 2] for k in results[0]}
    mem = {k: max(x[k][1] for x in results) for k in results[0]}
    rows = [
        ("apply", "floor", "≤ 1.5× floor"),
        ("apply", "seed + git", "≥ 5× faster than seed + git"),
        ("apply --branch", None, "≤ 3 s"),
        ("status", None, "≤ 1 s"),
        ("rollback", "floor", "≤ 1.5× floor"),
        ("rollback", "git revert", "faster than git revert"),
        ("verify", None, ""),
        ("floor", None, ""),
        ("seed + git", None, ""),
        ("git revert", None, ""),
        ("index full (SQLite)", "status", "≤ 2× status"),
        ("index full (PostgreSQL)", "status", ""),
        ("index after apply (SQLite)", None, ""),
        ("index after apply (PostgreSQL)", None, ""),
        ("index after 10 (SQLite)", None, "≤ 0.3 s"),
        ("index after 10 (PostgreSQL)", None, ""),
    ]
    rows = [row for row in rows if row[0] in med]
    out = [f"| measured ({n:,} manifests, median of {runs}) | seconds | peak memory | ratio | target |", "|---|---:|---:|---|---|"]
    for k, ref, target in rows:
        ratio = ""
        if ref:
            q = med[k] / med[ref] if med[ref] else float("nan")
            ratio = f"{q:.2f}× {ref}" if q >= 1 or "floor" in ref else f"{1 / q:.1f}× faster than {ref}"
        out.append(f"| {k} | {med[k]:.2f} | {mem[k] / 1024:.0f} MiB | {ratio} | {target} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--write", default=None)
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    ap.add_argument("--only-index", action="store_true", help="only the index rows (and status, their reference)")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(SHARED, "gen_corpus.py")):
        sys.exit(f"the peers are expected in {SHARED} (the shared/ folder beside the project)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    os.makedirs(a.work, exist_ok=True)
    # Measure a copy of the binary, so a rebuild during the run cannot change what is measured.
    global BIN
    shutil.copy2(BIN, os.path.join(a.work, "artifact-migrate"))
    BIN = os.path.join(a.work, "artifact-migrate")
    corpus = os.path.join(a.work, f"corpus-{a.n}")
    if not os.path.exists(os.path.join(corpus, ".git")):
        shutil.rmtree(corpus, ignore_errors=True)
        subprocess.run([sys.executable, os.path.join(SHARED, "gen_corpus.py"), corpus, str(a.n)], check=True)
    results, trees = [], set()
    pg_port, pg_stop = pg_start(a.work) if not a.no_pg else (None, None)
    try:
        for i in range(a.runs):
            if a.only_index:
                r, tree = {"status": run([BIN, "-C", fresh(corpus, a.work, "status"), "-q", "status"])}, "-"
                shutil.rmtree(os.path.join(a.work, "status"), ignore_errors=True)
            else:
                r, tree = measure(corpus, a.work)
            r.update(measure_index(corpus, a.work, pg_port))
            results.append(r)
            trees.add(tree)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[0]:.2f}s" for k, v in r.items()), file=sys.stderr)
    finally:
        if pg_stop:
            pg_stop()
    t = table(results, a.n, a.runs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    head = (f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores ({cpu}), "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.system()} {platform.release()}; "
            f"`python3 benches/harness.py --n {a.n} --runs {a.runs}{' --only-index' if a.only_index else ''}{' --no-pg' if a.no_pg else ''}`. apply's tree: {', '.join(sorted(trees))}.")
    print(head + "\n\n" + t)
    if a.write:
        text = open(a.write).read()
        tag = f"{a.n}{' index' if a.only_index else ''}"
        block = f"<!-- BEGIN harness {tag} -->\n{head}\n\n{t}\n<!-- END harness {tag} -->"
        pat = re.compile(rf"<!-- BEGIN harness {tag} -->.*?<!-- END harness {tag} -->", re.S)
        text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
        open(a.write, "w").write(text)


if __name__ == "__main__":
    main()
