#!/usr/bin/env python3
"""Small measuring helpers for bench/run.sh (results go to a JSON-lines file).

  measure.py time OUT LABEL WARMUP N -- CMD...   time CMD N times after WARMUP warm-ups
  measure.py interleave OUT WARMUP N SPEC        time several commands, one run of each per
                                                   round (order rotating), N rounds after
                                                   WARMUP; SPEC is a JSON list of [label, argv]
  measure.py mem OUT LABEL PID...                  RSS and PSS (sum) of these processes
  measure.py report OUT                            print the results table (markdown)
"""
import json
import os
import statistics
import subprocess
import sys
import time


def append(out, rec):
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")


def cmd_time(out, label, warmup, n, cmd):
    samples = []
    for i in range(warmup + n):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t) * 1000
        if r.returncode != 0:
            sys.exit(f"{label}: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        if i >= warmup:
            samples.append(dt)
    samples.sort()
    rec = {
        "kind": "time",
        "label": label,
        "n": n,
        "median_ms": statistics.median(samples),
        "p90_ms": samples[min(len(samples) - 1, int(len(samples) * 0.9))],
        "min_ms": samples[0],
    }
    append(out, rec)
    print(f"  {label}: median {rec['median_ms']:.1f} ms, p90 {rec['p90_ms']:.1f} ms (n={n})")


def run_once(label, cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit(f"{label}: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return dt


def cmd_interleave(out, warmup, n, spec):
    """Interleaved rounds: background load hits every command alike."""
    cmds = json.loads(spec)
    samples = {label: [] for label, _ in cmds}
    # A pause before each command (BENCH_GAP_MS, default 500): no command inherits kernel
    # state warmed by the one before it, e.g. the cgroup migration lock, which every
    # runc/dockerd run write-locks (its first taker after a pause waits for an RCU grace
    # period) and which berthd keeps warm for 300 ms after a create on cgroup v2 hosts
    # (crates/runtime/src/cgroup_warm.rs).
    gap = float(os.environ.get("BENCH_GAP_MS", "500")) / 1000
    for i in range(warmup + n):
        k = i % len(cmds)
        for label, cmd in cmds[k:] + cmds[:k]:
            time.sleep(gap)
            dt = run_once(label, cmd)
            if i >= warmup:
                samples[label].append(dt)
    for label, _ in cmds:
        s = sorted(samples[label])
        rec = {
            "kind": "time",
            "label": label,
            "n": n,
            "median_ms": statistics.median(s),
            "p90_ms": s[min(len(s) - 1, int(len(s) * 0.9))],
            "min_ms": s[0],
        }
        append(out, rec)
        print(f"  {label}: median {rec['median_ms']:.1f} ms, p90 {rec['p90_ms']:.1f} ms, min {rec['min_ms']:.1f} ms (n={n})")


def kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_mem(out, label, pids):
    pids = [p for p in pids if p]
    rss = sum(kib(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss = sum(kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    rec = {"kind": "mem", "label": label, "procs": len(pids), "rss_kib": rss, "pss_kib": pss}
    append(out, rec)
    print(f"  {label}: {len(pids)} processes, RSS {rss / 1024:.1f} MiB, PSS {pss / 1024:.1f} MiB")


def cmd_report(out):
    recs = {}
    with open(out) as f:
        for line in f:
            r = json.loads(line)
            recs[r["label"]] = r

    def t(label):
        r = recs.get(label)
        return r["median_ms"] if r else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "n/a"

    def ms(v):
        return f"{v:.1f} ms" if v is not None else "n/a"

    lines = ["| measurement | berth | dockerd | runc | ratios |", "|---|---|---|---|---|"]
    b, bd, d, r = t("berth run --rm true"), t("docker->berthd run --rm true"), t("docker->dockerd run --rm true"), t("runc run true")
    lines.append(
        f"| `run --rm --network none busybox true`, median | {ms(b)} (berth CLI), {ms(bd)} (docker CLI) | {ms(d)} | {ms(r)} "
        f"| berth/runc {ratio(b, r)}; dockerd/berth {ratio(d, b)} (same docker CLI: {ratio(d, bd)}) |"
    )
    bb = t("berth run --rm true (default bridge)")
    if bb:
        lines.append(
            f"| `run --rm busybox true` on berthd's default bridge, median | {ms(bb)} (berth CLI; {bb - b:+.1f} ms over `--network none`) "
            f"| {ms(d)} (`--network none`) | {ms(r)} | berth/runc {ratio(bb, r)}; dockerd/berth {ratio(d, bb)} |"
        )
    rs = t("runc run true (runc spec default)")
    lines.append(f"| bare `runc run` of `runc spec`'s default bundle (no seccomp), median | | | {ms(rs)} | berth/runc-minimal {ratio(b, rs)} |")
    pb, pbb, pd = t("docker->berthd ps (200 running)"), t("berth ps (200 running)"), t("docker->dockerd ps (200 running)")
    lines.append(f"| `ps` with 200 running, median | {ms(pbb)} (berth CLI), {ms(pb)} (docker CLI) | {ms(pd)} | | dockerd/berth {ratio(pd, pb)} (docker CLI) |")
    m = lambda label, key: recs.get(label, {}).get(key)
    bi, di = m("berthd idle", "rss_kib"), m("dockerd+containerd idle", "rss_kib")
    mib = lambda v: f"{v / 1024:.1f} MiB" if v else "n/a"
    lines.append(f"| daemon idle RSS | {mib(bi)} (berthd) | {mib(di)} (dockerd + containerd) | | dockerd/berth {ratio(di, bi)} |")
    bs, ds = recs.get("berth-shim x100"), recs.get("containerd-shim x100")
    per = lambda r: r["pss_kib"] / max(r["procs"], 1) if r else None
    kb = lambda v: f"{v / 1024:.2f} MiB" if v else "n/a"
    lines.append(
        f"| shim PSS per container (100 running `sleep`) | {kb(per(bs))} (berth-shim, {bs['procs'] if bs else 0} procs) "
        f"| {kb(per(ds))} (containerd-shim-runc-v2, {ds['procs'] if ds else 0} procs) | | containerd-shim/berth-shim {ratio(per(ds), per(bs))} |"
    )
    print("\n".join(lines))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sub, out = sys.argv[1], sys.argv[2]
    if sub == "time":
        label, warmup, n = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        assert sys.argv[6] == "--"
        cmd_time(out, label, warmup, n, sys.argv[7:])
    elif sub == "interleave":
        cmd_interleave(out, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif sub == "mem":
        cmd_mem(out, sys.argv[3], sys.argv[4:])
    elif sub == "report":
        cmd_report(out)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
