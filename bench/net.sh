#!/usr/bin/env bash
# Network benchmarks (never part of the tests), in one run on one berthd:
#   - setup overhead: `run --rm busybox true` on the default bridge vs `--network none`
#   - throughput: a 256 MiB download from busybox httpd through a published port on
#     127.0.0.1 (kernel DNAT) vs the same server on the host network
#   - DNS: latency of a container-name lookup from inside a container's namespace
#     (the embedded DNS on the network's gateway), median of many queries
# Traffic goes only to 127.0.0.1 and to the benchmark's own bridge.
# Prints a table and writes bench/net-results.md. Needs root.
#
# Env: N (timed runs, default 30), WARMUP (3), QUERIES (500), BERTH_BIN_DIR (skip the
#      release build and use these binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

N=${N:-30}
WARMUP=${WARMUP:-3}
QUERIES=${QUERIES:-500}

. bench/lib.sh
bench_setup net.sh libseccomp-dev pkg-config busybox-static ca-certificates iproute2 nftables iptables curl util-linux

work=/tmp/bench-berth-net
B=$work/b
results=$work/results.jsonl
measure() { python3 "$top/bench/measure.py" "$@"; }
bridge=bbench0

berth_pid=""
cleanup() {
  set +e
  if [ -n "$berth_pid" ]; then
    ids=$("$bin/berth" -H "unix://$B/s" ps -aq 2>/dev/null)
    [ -z "$ids" ] || "$bin/berth" -H "unix://$B/s" rm -f $ids >/dev/null 2>&1
    "$bin/berth" -H "unix://$B/s" network rm benchnet >/dev/null 2>&1
    kill "$berth_pid" 2>/dev/null; wait "$berth_pid" 2>/dev/null
  fi
  remove_bridge "$bridge"
  umount -R "$work" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
mkdir -p "$B"
: > "$results"

pool=$(pick_pool)
echo "==> berthd (bridge $bridge, pool $pool)"
"$bin/berthd" -H "unix://$B/s" --data-root "$B/d" --exec-root "$B/x" --pidfile "$B/pid" \
  --bridge "$bridge" --default-address-pool "base=$pool,size=24" >"$work/berthd.log" 2>&1 &
berth_pid=$!
wait_sock "$B/s"
BD=("$DOCKER" -H "unix://$B/s")
bash scripts/mkbusybox.sh --tar "$work/busybox.tar" >/dev/null
"${BD[@]}" import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null

echo "==> setup overhead"
# Interleaved rounds (see bench/measure.py), so that load from elsewhere hits all four alike.
spec=$(python3 - "$bin" "$B" "$DOCKER" <<'EOF'
import json, sys
bin, B, docker = sys.argv[1:4]
bd = [docker, "-H", "unix://" + B + "/s"]
bb = [bin + "/berth", "-H", "unix://" + B + "/s"]
print(json.dumps([
    ["run --rm true --network none", bd + ["run", "--rm", "--network", "none", "busybox", "true"]],
    ["run --rm true (default bridge)", bd + ["run", "--rm", "busybox", "true"]],
    ["berth run --rm true --network none", bb + ["run", "--rm", "--network", "none", "busybox", "true"]],
    ["berth run --rm true (default bridge)", bb + ["run", "--rm", "busybox", "true"]],
]))
EOF
)
measure interleave "$results" "$WARMUP" "$N" "$spec"

echo "==> throughput (256 MiB over HTTP)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve='mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=256 2>/dev/null && exec httpd -f -p $0 -h /www'
p1=$(free_port)
"${BD[@]}" run -d --name pub -p "127.0.0.1:$p1:80" busybox sh -c "$serve" 80 >/dev/null
p2=$(free_port)
"${BD[@]}" run -d --name hostnet --network host busybox sh -c "$serve" "$p2" >/dev/null
wait_url() { for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "$1" && return 0; sleep 0.1; done; echo "no server at $1" >&2; return 1; }
wait_url "http://127.0.0.1:$p1/big"
wait_url "http://127.0.0.1:$p2/big"
# Alternating downloads (published port, host network, ...), so that this host's varying
# speed falls on both alike.
python3 - "$results" "http://127.0.0.1:$p1/big" "http://127.0.0.1:$p2/big" <<'EOF'
import json, statistics, subprocess, sys
out, pub, host = sys.argv[1:]
labels = {pub: "published port 127.0.0.1 (DNAT)", host: "host network"}
speeds = {pub: [], host: []}
for i in range(12):
    for url in ((pub, host) if i % 2 == 0 else (host, pub)):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url], capture_output=True, text=True, check=True)
        if i > 0:
            speeds[url].append(float(r.stdout) / (1 << 20))
for url in (pub, host):
    rec = {"kind": "throughput", "label": labels[url], "median_mib_s": statistics.median(speeds[url]), "n": len(speeds[url])}
    open(out, "a").write(json.dumps(rec) + "\n")
    print(f"  {rec['label']}: median {rec['median_mib_s']:.0f} MiB/s (n={rec['n']})")
EOF

echo "==> DNS lookup latency"
"${BD[@]}" network create benchnet >/dev/null
"${BD[@]}" run -d --name target --network benchnet busybox sleep 3600 >/dev/null
"${BD[@]}" run -d --name asker --network benchnet busybox sleep 3600 >/dev/null
gw=$("${BD[@]}" network inspect -f '{{(index .IPAM.Config 0).Gateway}}' benchnet)
pid=$("${BD[@]}" inspect -f '{{.State.Pid}}' asker)
nsenter -t "$pid" -n python3 - "$results" "$gw" "$QUERIES" <<'EOF'
import json, socket, statistics, struct, sys, time
out, gw, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((gw, 53))
lat = []
for i in range(n + 20):
    t = time.perf_counter()
    s.send(query(i & 0xffff, "target"))
    r = s.recv(4096)
    dt = (time.perf_counter() - t) * 1000
    ancount = struct.unpack(">H", r[6:8])[0]
    if ancount < 1:
        sys.exit("no answer for target")
    if i >= 20:
        lat.append(dt)
lat.sort()
rec = {"kind": "time", "label": "DNS lookup (container name, UDP)", "n": n,
       "median_ms": statistics.median(lat), "p90_ms": lat[int(len(lat) * 0.9)], "min_ms": lat[0]}
open(out, "a").write(json.dumps(rec) + "\n")
print(f"  DNS lookup: median {rec['median_ms']:.3f} ms, p90 {rec['p90_ms']:.3f} ms (n={n})")
EOF

python3 - "$results" <<'EOF' | tee "$top/bench/net-results.md"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
by = {r["label"]: r for r in recs}
print("# berth network benchmarks\n")
print("| measurement | result |")
print("|---|---|")
for r in recs:
    if r["kind"] == "time":
        print(f"| {r['label']} | median {r['median_ms']:.3f} ms (p90 {r['p90_ms']:.3f}, n={r['n']}) |")
    else:
        print(f"| {r['label']} | median {r['median_mib_s']:.0f} MiB/s (n={r['n']}) |")
print()
def ratio(a, b):
    return by[a]["median_ms"] - by[b]["median_ms"]
print(f"- bridge setup overhead (docker CLI): {ratio('run --rm true (default bridge)', 'run --rm true --network none'):+.1f} ms median")
print(f"- bridge setup overhead (berth CLI): {ratio('berth run --rm true (default bridge)', 'berth run --rm true --network none'):+.1f} ms median")
t = by["published port 127.0.0.1 (DNAT)"]["median_mib_s"] / by["host network"]["median_mib_s"]
print(f"- published port throughput vs host network: {t * 100:.0f} %")
EOF
