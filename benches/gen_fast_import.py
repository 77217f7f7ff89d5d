#!/usr/bin/env python3
"""A large corpus as a `git fast-import` stream: no working tree, no loose objects.

usage: python3 benches/gen_fast_import.py N | git -C BARE.git fast-import --quiet

Same shapes, layout and version mix as ../shared/bench/gen_corpus.py (78.7% 1.0.0, 11.8% 1.1.0,
9.4% 1.2.0; artifacts/<job>/<run>/{manifest.json, inputs/brief.yaml}), one commit on
refs/heads/main. Used for the 1M-manifest memory measurement, where a checked-out corpus would
need ~30 GB of disk.
"""
import hashlib, json, random, sys


def canon(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()


def main():
    n = int(sys.argv[1])
    rnd = random.Random(7)
    out = sys.stdout.buffer
    jobs = max(1, n // 25)
    marks = []
    for i in range(n):
        job = f"job-{i % jobs:05d}"
        brief = f"job: {job}\nprompt: generate copy #{i}\ntone: {rnd.choice(['warm','dry','bold'])}\n"
        bh = hashlib.sha256(brief.encode()).hexdigest()
        snaps = {"brief": {"path": "inputs/brief.yaml", "sha256": bh, "bytes": len(brief)}}
        inputs_hash = hashlib.sha256(canon(snaps)).hexdigest()
        run = inputs_hash[:16] + f"{i:06x}"
        r = rnd.random()
        ver = "1.0.0" if r < 0.787 else ("1.1.0" if r < 0.905 else "1.2.0")
        m = {
            "schema_version": ver, "job_id": job, "run_id": run, "job_ref": f"jobs/{job}/brief.yaml",
            "status": "succeeded",
            "started_at": f"2026-0{1 + i % 9}-1{i % 9}T10:{i % 60:02d}:00Z",
            "finished_at": f"2026-0{1 + i % 9}-1{i % 9}T10:{i % 60:02d}:42Z",
            "generator": {"name": "sigil", "version": "0.9.3", "model": "text-gen-large"},
            "doctrine": {"doctrine_id": "brand-voice", "version": "3", "sha256": hashlib.sha256(b"doctrine-v3").hexdigest()},
            "params": {"temperature": 0.7, "max_tokens": 1024, "seed": i, "ratio": 0.1 + (i % 7) / 10},
            "outputs": [{"path": f"outputs/copy_{k}.md", "sha256": hashlib.sha256(f"{i}-{k}".encode()).hexdigest(), "bytes": 300 + k} for k in range(3)],
            "notes": "Überarbeitet — ✓ emoji 🚀 and \"quotes\"",
        }
        if ver != "1.0.0":
            m["input_snapshots"] = snaps
            m["inputs_hash"] = inputs_hash
        if ver == "1.2.0":
            m["chain_metadata"] = {"is_chainable_stage": False, "prior_stages": []}
        manifest = (json.dumps(m, indent=2, ensure_ascii=False) + "\n").encode()
        for data in (manifest, brief.encode()):
            out.write(b"blob\nmark :%d\ndata %d\n" % (len(marks) + 1, len(data)))
            out.write(data)
            out.write(b"\n")
            marks.append(None)
        marks[-2] = f"artifacts/{job}/{run}/manifest.json"
        marks[-1] = f"artifacts/{job}/{run}/inputs/brief.yaml"
    msg = b"seed corpus\n"
    out.write(b"commit refs/heads/main\nmark :%d\n" % (len(marks) + 1))
    out.write(b"author gen <gen@example.com> 1767225600 +0000\ncommitter gen <gen@example.com> 1767225600 +0000\n")
    out.write(b"data %d\n%s" % (len(msg), msg))
    for k, path in enumerate(marks):
        out.write(b"M 100644 :%d %s\n" % (k + 1, path.encode()))
    out.write(b"\n")


if __name__ == "__main__":
    main()
