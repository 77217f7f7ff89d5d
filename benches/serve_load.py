#!/usr/bin/env python3
"""`serve` under load: wrk on loopback against the release binary over a corpus's index.

usage: python3 benches/serve_load.py --corpus DIR [--duration 60] [--threads 2] [--connections 16]
                                     [--sample 10000] [--work DIR] [--no-apply] [--apply-duration S]
                                     [--write docs/performance.md]

DIR is a repository made by ../shared/bench/gen_corpus.py (or any repository of manifests). It
is never modified: the script works in a local `git clone` of it under WORK (objects hardlinked,
removed at the end), builds the index there (`artifact-migrate index`), starts
`target/release/artifact-migrate serve --listen 127.0.0.1:0` in it, and runs wrk (--latency) for
DURATION seconds, one after the other, against:

  stored manifest   GET /jobs/{job}/runs/{run}            a random run of the index per request
  ?as=latest        GET /jobs/{job}/runs/{run}?as=latest  (lazy migration on read)
  versions          GET /schemas/versions
  during an apply   the stored-manifest run again while `artifact-migrate apply` commits a batch
                    of the whole clone (started 2 s into the run)

Random runs: SAMPLE runs drawn from `runs --json` (seeded), written to a file a wrk Lua script
reads; each request takes one at random. Recorded per run: requests/s, p50 and p99 latency,
errors (wrk's non-2xx/3xx answers plus its socket errors: connect, read, write, timeout).
The server's resident memory (VmRSS of /proc/PID/status) is sampled every second from start to
end: at start (index loaded, before the first request), its peak (VmHWM) and at the end.

During the apply, a Lua response hook keeps every distinct (X-Commit, ETag) pair a manifest
answer carried and counts any answer that was not 200; afterwards each pair is checked against
git: the ETag (the blob id served) must be a manifest's blob in that commit's tree (`git
ls-tree -r`). An answer mixing two commits (the commit header of one, a blob only the other
has) fails that check; every manifest holds its own run_id, so a blob is in both trees only
where that manifest did not change. The script also checks that answers of both commits were seen (the apply
landed during the run and the server followed it) and that the server ended on the new HEAD.

With --write the table goes into the given file between `<!-- BEGIN serve-load N -->` markers
(N the corpus's run count), with the machine, the date and the command line. The script exits 1
when any run had an error or a mixed answer.
"""
import argparse, datetime, json, os, platform, random, re, shutil, subprocess, sys, threading, time
import urllib.request

sys.dont_write_bytecode = True  # importing the harness leaves no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import write_block  # noqa: E402  (the same markers as the harness's tables)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "artifact-migrate")
ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
           GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid", NO_COLOR="1")

# Requests from a file of targets, one at random per request. With CHECK set (the apply
# phase), a response hook keeps each distinct (x-commit, etag) and counts non-200s; done()
# writes the pairs and the count to OUT. (Not the path: a thread's connections interleave, so
# the last request made is not the one a response answers.)
LUA = r"""
local targets = {}
for line in io.lines(os.getenv("SERVE_LOAD_TARGETS")) do targets[#targets + 1] = line end
local check = os.getenv("SERVE_LOAD_CHECK") == "1"
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  seen = {}
  bad = 0
  math.randomseed(id * 7919 + os.time())
end

function request()
  return wrk.format("GET", targets[math.random(#targets)])
end

if check then
  response = function(status, headers, body)
    if status ~= 200 then
      bad = bad + 1
      return
    end
    local key = (headers["x-commit"] or "-") .. "\t" .. (headers["etag"] or "-")
    seen[key] = true
  end
end

function done(summary, latency, requests)
  if not check then return end
  local out = io.open(os.getenv("SERVE_LOAD_OUT"), "w")
  local bad_total = 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + t:get("bad")
    for k, _ in pairs(t:get("seen")) do out:write(k, "\n") end
  end
  out:write("bad\t", bad_total, "\n")
  out:close()
end
"""


def sh(cmd, cwd=None, **kw):
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


class Memory(threading.Thread):
    """VmRSS of a process every second; VmHWM (its peak, kept by the kernel) at each sample."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.hwm, self.stop = pid, [], 0, threading.Event()

    def read(self):
        try:
            text = open(f"/proc/{self.pid}/status").read()
        except OSError:
            return None
        kib = lambda k: int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1))
        self.hwm = max(self.hwm, kib("VmHWM"))
        return kib("VmRSS")

    def run(self):
        while not self.stop.wait(1.0):
            rss = self.read()
            if rss is None:
                return
            self.samples.append((time.monotonic(), rss))


def start_server(repo):
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0"], cwd=repo, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.match(r"serving http://(127\.0\.0\.1:\d+)/", line)
    if not m:
        p.kill()
        sys.exit(f"serve did not start: {line}{p.stderr.read()}")
    # Keep draining stderr (warnings) so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, m.group(1)


def get_json(addr, target):
    with urllib.request.urlopen(f"http://{addr}{target}", timeout=30) as r:
        return json.load(r)


def ms(text):
    v, unit = float(re.match(r"([0-9.]+)", text).group(1)), re.sub(r"[0-9.]", "", text)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(addr, targets_file, a, work, check=False, secs=None):
    env = dict(ENV, SERVE_LOAD_TARGETS=targets_file, SERVE_LOAD_CHECK="1" if check else "0",
               SERVE_LOAD_OUT=os.path.join(work, "seen.tsv"))
    lua = os.path.join(work, "random.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    cmd = ["wrk", "--latency", "-t", str(a.threads), "-c", str(a.connections), "-d", f"{secs or a.duration}s",
           "--timeout", "10s", "-s", lua, f"http://{addr}"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    out = p.stdout
    lat = {m.group(1): ms(m.group(2)) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": lat.get("50"), "p99": lat.get("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket": sum(int(x) for x in sock.groups()) if sock else 0,
        "raw": out,
    }


def check_pairs(repo, work):
    """Each (commit, etag) against git: the ETag must be the blob of a manifest in that commit's
    tree. Returns (pairs, mixed, commits seen, non-200 answers)."""
    pairs, bad = [], 0
    for line in open(os.path.join(work, "seen.tsv")):
        parts = line.rstrip("\n").split("\t")
        if parts[0] == "bad":
            bad = int(parts[1])
            continue
        pairs.append((parts[0], parts[1].strip('"')))
    blobs = {}
    for commit in {c for c, _ in pairs}:
        p = subprocess.run(["git", "ls-tree", "-r", commit, "artifacts"], cwd=repo, env=ENV,
                           capture_output=True, text=True)
        blobs[commit] = {l.split()[2] for l in p.stdout.splitlines() if l.endswith("/manifest.json")}
    mixed = [(c, e) for c, e in pairs if e not in blobs[c]]
    return len(pairs), mixed, set(blobs), bad


def row(name, r):
    errors = r["non2xx"] + r["socket"]
    return (f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['requests']:,} | "
            f"{errors} ({r['non2xx']} non-2xx/3xx, {r['socket']} socket) |")


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, help="a repository of manifests (gen_corpus.py); never modified")
    ap.add_argument("--duration", type=int, default=60, help="seconds per wrk run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--sample", type=int, default=10000, help="how many random runs requests choose from")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench", "serve-load"))
    ap.add_argument("--no-apply", action="store_true", help="skip the run during an apply")
    ap.add_argument("--apply-duration", type=int, default=None,
                    help="seconds of the run during an apply (default: --duration); the apply and "
                         "its index update must land inside it")
    ap.add_argument("--keep", action="store_true", help="keep the clone under WORK")
    ap.add_argument("--bin", default=BIN, help="the artifact-migrate binary (default: the release build)")
    ap.add_argument("--write", default=None)
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")

    work = os.path.abspath(a.work)
    repo = os.path.join(work, "repo")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print(f"cloning {a.corpus} into {repo}", file=sys.stderr)
    sh(["git", "clone", "-q", "--local", os.path.abspath(a.corpus), repo])
    # The clone's branch is the corpus's; apply commits there, never in the corpus.
    t = time.monotonic()
    sh([BIN, "index", "-q"], cwd=repo)
    index_secs = time.monotonic() - t
    runs = json.loads(sh([BIN, "runs", "--json"], cwd=repo))
    n = len(runs)
    rnd = random.Random(11)
    pick = rnd.sample(runs, min(a.sample, n))
    stored = os.path.join(work, "stored.txt")
    latest = os.path.join(work, "latest.txt")
    versions = os.path.join(work, "versions.txt")
    with open(stored, "w") as f:
        f.writelines(f"/jobs/{r['job_id']}/runs/{r['run_id']}\n" for r in pick)
    with open(latest, "w") as f:
        f.writelines(f"/jobs/{r['job_id']}/runs/{r['run_id']}?as=latest\n" for r in pick)
    with open(versions, "w") as f:
        f.write("/schemas/versions\n")
    del runs

    server, addr = start_server(repo)
    mem = Memory(server.pid)
    results, failures = {}, []
    try:
        before = get_json(addr, "/healthz")["commit"]
        rss_start = mem.read()
        mem.start()
        for name, targets in [("stored manifest `/jobs/{job}/runs/{run}`", stored),
                              ("`?as=latest`", latest), ("`/schemas/versions`", versions)]:
            print(f"wrk {a.duration}s: {name}", file=sys.stderr)
            results[name] = wrk(addr, targets, a, work)
        apply_note = None
        if not a.no_apply:
            name = "stored manifest during an `apply`"
            apply_secs = a.apply_duration or a.duration
            print(f"wrk {apply_secs}s: {name}", file=sys.stderr)
            box = {}

            def land():
                time.sleep(2)
                t = time.monotonic()
                sh([BIN, "apply", "-q"], cwd=repo)
                box["secs"] = time.monotonic() - t
                box["head"] = sh(["git", "rev-parse", "HEAD"], cwd=repo).strip()

            applier = threading.Thread(target=land)
            applier.start()
            results[name] = wrk(addr, stored, a, work, check=True, secs=apply_secs)
            applier.join()
            after = box["head"]
            deadline = time.monotonic() + 120
            while get_json(addr, "/healthz")["commit"] != after:
                if time.monotonic() > deadline:
                    failures.append(f"the server never reached {after[:12]}")
                    break
                time.sleep(0.2)
            checked, mixed, commits, bad = check_pairs(repo, work)
            results[name]["non2xx"] = max(results[name]["non2xx"], bad)
            apply_note = (f"The apply ({box['secs']:.1f} s, committed {after[:12]} on {before[:12]}) "
                          f"started 2 s into the run. {checked:,} distinct (X-Commit, ETag) pairs of the answers "
                          f"checked against git (the ETag is the blob of a manifest in that commit's tree): "
                          f"{len(mixed)} mixed two commits; answers of "
                          f"{len(commits)} commit(s) seen"
                          + ("" if {before, after} <= commits else
                             " — NOT both: the apply did not land while wrk ran, so this run proves nothing; use a longer --duration")
                          + ".")
            if mixed:
                failures.append(f"{len(mixed)} answers mixed two commits, e.g. {mixed[0]}")
            if not {before, after} <= commits:
                failures.append("answers of both commits were not seen")
        rss_end = mem.read()
    finally:
        mem.stop.set()
        server.terminate()
        server.wait(timeout=30)
        if not a.keep:
            shutil.rmtree(repo, ignore_errors=True)
    for name, r in results.items():
        if r["non2xx"] or r["socket"]:
            failures.append(f"{name}: {r['non2xx']} non-2xx/3xx, {r['socket']} socket errors")

    peak = mem.hwm
    step = max(1, len(mem.samples) // 12)
    lines = [
        f"{n:,} runs; index built in {index_secs:.1f} s; wrk -t {a.threads} -c {a.connections} "
        f"-d {a.duration}s --latency, requests over {len(pick):,} random runs.",
        "",
        "| endpoint | requests/s | p50 | p99 | requests | errors |",
        "|---|---:|---:|---:|---:|---|",
    ] + [row(k, v) for k, v in results.items()] + [
        "",
        f"Server memory (VmRSS): {rss_start / 1024:.0f} MiB at start, {rss_end / 1024:.0f} MiB at the end, "
        f"peak {peak / 1024:.0f} MiB (VmHWM); sampled every second over {len(mem.samples)} s, "
        f"one sample in {step}: "
        + ", ".join(f"{s / 1024:.0f}" for _, s in mem.samples[::step]) + " MiB.",
    ]
    if apply_note:
        lines += ["", apply_note]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine())
    lines += ["", f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
              f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, wrk on the same machine, "
              f"load average {os.getloadavg()[0]:.1f} at the end; "
              f"`python3 benches/serve_load.py {' '.join(sys.argv[1:])}`."]
    block = "\n".join(lines)
    print(block)
    if a.write:
        write_block(a.write, str(n), block, kind="serve-load")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
