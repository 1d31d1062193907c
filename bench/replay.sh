#!/usr/bin/env bash
# Replay at scale, from a release build, against loopback only:
#   1. parse rate and peak RSS: a generated log of SIZE_MIB (default 1024 MiB, never committed)
#      read by `flashcrowd plan` (one full pass over the file) under /usr/bin/time (SIZE_MIB 0
#      skips it);
#   2. a generated 100,000-line JSON-lines log (GET, POST, PUT, DELETE; every path carries a
#      unique `k=` id) replayed at speed 100% and then 200% against bench/recorder.c, a recording
#      server that stamps each request with the kernel's receive time (SO_TIMESTAMPNS, ns),
#      pinned to core 0, the generator to core 1. Per leg: the multiset of (method, path) the
#      server saw against the log's (exact, besides the run's one probe `GET /`), each record's
#      |arrival − (run.started_at + offset / speed)| at p50, p99, max, the report's send lag, and
#      the load average; the 200% leg's span against the 100% leg's (want 0.5). One PASS/FAIL
#      line per leg: 100% wants the multiset exact and p99 < 2 ms; 200% the multiset exact and
#      a span ratio within 0.001 of 0.5.
# Usage: bench/replay.sh [--bin PATH] [--connection per-user|shared] [--port P] [SIZE_MIB]
#   (needs python3, gcc and /usr/bin/time; ~1 GiB of /tmp; KEEP_TMP=1 keeps the temp dir)
#   --bin PATH: a flashcrowd binary to use instead of building target/release/flashcrowd
#   --connection: the replayed client's connection mode (default per-user)
#   --port P: the recorder's port for the 100% leg (P+1 for the 200% leg; default 19500)
#   --rt: run the recorder and the generator under SCHED_FIFO (chrt -f 20, root): on a shared
#     machine this tells the generator's own timing from the time it waits for a CPU
set -euo pipefail
FC=""
CONNECTION=per-user
PORT=19500
RT=()
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --bin) FC="$2"; shift 2 ;;
        --connection) CONNECTION="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --rt) RT=(chrt -f 20); shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SIZE_MIB=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }; [ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"; }
trap cleanup EXIT
if [[ -z "$FC" ]]; then
    cargo build --release --manifest-path "$ROOT/Cargo.toml" >/dev/null
    FC="$ROOT/target/release/flashcrowd"
fi
gcc -O2 -Wall -o "$TMP/recorder" "$ROOT/bench/recorder.c"

if [[ "$SIZE_MIB" -gt 0 ]]; then
python3 - "$TMP/big.log" "$SIZE_MIB" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
uas = ["ShopApp-iOS/10.4 (iPhone)", "okhttp/4.12 Android", "Mozilla/5.0 (Windows NT 10.0)"]
target = mib * 1024 * 1024
with open(path, "w", buffering=1 << 20) as f:
    n = 0
    written = 0
    while written < target:
        s = n // 5000
        line = (f'10.0.{n % 250}.{n % 199} - - [11/Nov/2026:{s // 3600 % 24:02}:{s // 60 % 60:02}:{s % 60:02} +0800] '
                f'"GET /api/items/{n % 100000}?page={n % 50} HTTP/1.1" 200 {n % 4000} "-" "{uas[n % 3]}"\n')
        f.write(line)
        written += len(line)
        n += 1
print(f"generated {n} lines, {written / 2**20:.0f} MiB", file=sys.stderr)
PY
LINES=$(wc -l < "$TMP/big.log")
cat > "$TMP/big.yaml" <<YAML
name: replay-big
target: http://127.0.0.1:9
load:
  replay: { from: big.log }
YAML
/usr/bin/time -f "%e %M" -o "$TMP/time" "$FC" plan "$TMP/big.yaml" >/dev/null
read -r SECS RSS_KB < "$TMP/time"
rm -f "$TMP/big.log"
echo "parse: $LINES lines in ${SECS}s = $(python3 -c "print(f'{$LINES/$SECS:,.0f}')") lines/s; peak RSS $((RSS_KB / 1024)) MiB"
fi
python3 - "$TMP/100k.jsonl" <<'PY'
import json, random, sys
rng = random.Random(7)
ts = sorted(rng.uniform(0, 50) for _ in range(100000))
with open(sys.argv[1], "w") as f:
    for k, t in enumerate(ts):
        r = rng.random()
        item = rng.randrange(1, 1001)
        if r < 0.60:
            rec = {"method": "GET", "path": f"/api/items/{item}?k={k}"}
        elif r < 0.75:
            rec = {"method": "GET", "path": f"/api/items?page={rng.randrange(50)}&k={k}"}
        elif r < 0.90:
            rec = {"method": "POST", "path": f"/api/cart?k={k}", "body": json.dumps({"item": item, "qty": 1})}
        elif r < 0.95:
            rec = {"method": "PUT", "path": f"/api/cart/{item}?k={k}", "body": json.dumps({"qty": 2})}
        else:
            rec = {"method": "DELETE", "path": f"/api/cart/{item}?k={k}"}
        f.write(json.dumps({"time": float(f"{1794326400 + t:.3f}"), **rec}) + "\n")
PY
# The recording server on core 0, the generator on core 1 (when there are two).
PIN_SERVER=(); PIN_GEN=()
if [[ $(nproc) -ge 2 ]]; then PIN_SERVER=(taskset -c 0); PIN_GEN=(taskset -c 1); fi
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Ticks (USER_HZ) the hypervisor stole from the generator's core (the last one): time the
# generator was off its CPU that no process on this machine took.
GEN_CPU=$(( $(nproc) - 1 ))
steal() { awk -v c="cpu$GEN_CPU" '$1 == c {print $9}' /proc/stat; }

# One leg: the log at SPEED % against a fresh recorder on PORT; its summary into $TMP/leg-SPEED.json.
leg() {
    local speed=$1 port=$2
    # connection: per-user (the default: each record is one arrival with its own connection,
    # 2,000-4,000 connects a second, each opened 5-100 ms before the record's instant) or shared
    # (--connection shared: the shard's keep-alive pool, opened before time 0).
    cat > "$TMP/100k-$speed.yaml" <<YAML
name: replay-100k
clients:
  replayed: { share: 100%, http: h1, connection: $CONNECTION }
load:
  replay: { from: 100k.jsonl, speed: $speed% }
YAML
    "${PIN_SERVER[@]}" "${RT[@]}" "$TMP/recorder" "$port" "$TMP/arrivals-$speed.txt" 2>"$TMP/recorder-$speed.err" &
    SERVER_PID=$!
    # Wait for the port without sending a request (a connection that sends nothing is not logged).
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local load_before; load_before=$(loadavg)
    local steal_before; steal_before=$(steal)
    /usr/bin/time -f "%e %M %c" -o "$TMP/time-$speed" "${PIN_GEN[@]}" "${RT[@]}" "$FC" run "$TMP/100k-$speed.yaml" \
        --target "http://127.0.0.1:$port" --out "$TMP/run-$speed" --quiet >/dev/null 2>"$TMP/run-$speed.err" || true
    local load_after; load_after=$(loadavg)
    local stolen=$(( $(steal) - steal_before ))
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
    python3 - "$TMP/run-$speed/report.json" "$TMP/time-$speed" "$TMP/100k.jsonl" "$TMP/arrivals-$speed.txt" \
        "$speed" "$CONNECTION${RT[*]:+, chrt -f 20}" "$load_before" "$load_after" "$TMP/leg-$speed.json" \
        "$stolen" "$(getconf CLK_TCK)" <<'PY'
import calendar, collections, datetime, json, math, re, sys
report, timef, log, arrivals, speed, conn, load0, load1, out, stolen, hz = sys.argv[1:]
speed = int(speed) / 100
r = json.load(open(report))
secs, rss_kb, preempted = open(timef).read().split()[-3:]
recs = [json.loads(l) for l in open(log)]
base = math.floor(min(x["time"] for x in recs))
at = datetime.datetime.fromisoformat(r["run"]["started_at"].replace("Z", "+00:00"))
t0_ns = calendar.timegm(at.utctimetuple()) * 10**9 + at.microsecond * 1000
frac = r["run"]["started_at"].split(".")[1].rstrip("Z")
want = collections.Counter((x["method"], x["path"]) for x in recs)
seen = collections.Counter()
extra = collections.Counter()
arrived = {}
for line in open(arrivals):
    ns, method, uri = line.rstrip("\n").split(" ", 2)
    m = re.search(r"[?&]k=(\d+)$", uri)
    if not m:
        extra[(method, uri)] += 1
        continue
    seen[(method, uri)] += 1
    arrived.setdefault(int(m.group(1)), int(ns))
exact = seen == want
probe_only = extra == collections.Counter({("GET", "/"): 1})
# Signed error per record, ms: arrival - (started_at + offset / speed).
err = sorted((arrived[k] - t0_ns - round((x["time"] - base) / speed * 1e9)) / 1e6
             for k, x in enumerate(recs) if k in arrived)
abs_err = sorted(abs(e) for e in err)
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
p50, p99, mx = q(abs_err, 0.5), q(abs_err, 0.99), (abs_err[-1] if abs_err else float("nan"))
ns_sorted = sorted(arrived.values())
span = (ns_sorted[-1] - ns_sorted[0]) / 1e9 if ns_sorted else float("nan")
lag = r["generator"]["lag_ms"]
print(f"replay at {int(speed * 100)}% ({conn}): {r['totals']['requests']} requests, {r['totals']['errors']} errors, "
      f"in {float(secs):.1f}s (run.duration_s {r['run']['duration_s']}); peak RSS {int(rss_kb) // 1024} MiB; "
      f"{preempted} involuntary context switches; load average {load0} before, {load1} after; "
      f"steal on the generator's core {int(stolen) / int(hz):.2f} s ({int(stolen) / int(hz) / float(secs):.1%})")
print(f"  started_at {r['run']['started_at']} ({len(frac)} fractional digits)")
missing = want - seen
surplus = seen - want
print(f"  multiset of (method, path) at the recorder: {sum(seen.values())} of {len(recs)} records, "
      f"{'exact' if exact else f'NOT exact: {sum(missing.values())} missing, {sum(surplus.values())} surplus'}; "
      f"besides them: {dict(extra) if extra else 'nothing'} (the run's probe is one GET /)")
for (m, p), n in list(missing.items())[:3]:
    print(f"    missing: {m} {p} x{n}")
for (m, p), n in list(surplus.items())[:3]:
    print(f"    surplus: {m} {p} x{n}")
print(f"  |arrival - (started_at + offset/speed)| (kernel receive stamps): p50 {p50:.3f} ms, "
      f"p99 {p99:.3f} ms, max {mx:.3f} ms; signed p1 {q(err, 0.01):+.3f} ms, p50 {q(err, 0.5):+.3f} ms, "
      f"p99 {q(err, 0.99):+.3f} ms")
print(f"  generator send lag (report): p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms")
print(f"  span first to last arrival {span:.4f} s (log {(recs[-1]['time'] - recs[0]['time']) / speed:.4f} s at this speed)")
# Where the records >= 2 ms off are, second by second: spread thin (timer) or in a few bursts
# (the generator kept off its CPU).
by_sec = collections.defaultdict(list)
for k, x in enumerate(recs):
    if k in arrived:
        planned = (x["time"] - base) / speed
        by_sec[int(planned)].append((arrived[k] - t0_ns - planned * 1e9) / 1e6)
bad = [(s, len([e for e in v if abs(e) >= 2.0]), min(v), max(v)) for s, v in sorted(by_sec.items())]
bad = [b for b in bad if b[1]]
if bad:
    print(f"  records >= 2 ms off: {sum(b[1] for b in bad)}, in {len(bad)} of {len(by_sec)} seconds; the worst seconds:")
    for s, n, lo, hi in sorted(bad, key=lambda b: -b[1])[:4]:
        print(f"    second {s}: {n} records, error {lo:+.1f} to {hi:+.1f} ms")
json.dump({"speed": speed, "exact": exact, "probe_only": probe_only, "p99": p99, "span": span,
           "duration_s": r["run"]["duration_s"]}, open(out, "w"))
if speed == 1.0:
    ok = exact and probe_only and p99 < 2.0
    print(f"  {'PASS' if ok else 'FAIL'} 100%: multiset {'exact' if exact and probe_only else 'NOT exact'}, "
          f"p99 {p99:.3f} ms {'<' if p99 < 2.0 else '>='} 2 ms")
PY
}
leg 100 "$PORT"
leg 200 "$((PORT + 1))"
python3 - "$TMP/leg-100.json" "$TMP/leg-200.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
ratio = b["span"] / a["span"]
ok = b["exact"] and b["probe_only"] and abs(ratio - 0.5) <= 0.001
print(f"  {'PASS' if ok else 'FAIL'} 200%: multiset {'exact' if b['exact'] and b['probe_only'] else 'NOT exact'}, "
      f"span {b['span']:.4f} s / {a['span']:.4f} s = {ratio:.4f} (want 0.5 +- 0.001); "
      f"run.duration_s {b['duration_s']} / {a['duration_s']} = {b['duration_s'] / a['duration_s']:.4f}")
PY
