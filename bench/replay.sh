#!/usr/bin/env bash
# Replay at scale, from a release build, against loopback only:
#   1. parse rate and peak RSS: a generated log of SIZE_MIB (default 1024 MiB, never committed)
#      read by `flashcrowd plan` (one full pass over the file) under /usr/bin/time;
#   2. a 100,000-line JSON-lines log replayed at speed 100% against nginx, the recording server
#      (pinned to core 0, the generator to core 1): the report's send lag (send instant − the
#      record's offset), and at nginx |arrival ($msec) − planned instant (run start + offset)|.
# Usage: bench/replay.sh [--bin PATH] [--connection per-user|shared] [SIZE_MIB]
#   (needs python3, nginx and /usr/bin/time; ~1 GiB of /tmp; KEEP_TMP=1 keeps the temp dir)
#   --bin PATH: a flashcrowd binary to use instead of building target/release/flashcrowd
#   --connection: the replayed client's connection mode (default per-user)
set -euo pipefail
FC=""
CONNECTION=per-user
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --bin) FC="$2"; shift 2 ;;
        --connection) CONNECTION="$2"; shift 2 ;;
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
echo "parse: $LINES lines in ${SECS}s = $(python3 -c "print(f'{$LINES/$SECS:,.0f}')") lines/s; peak RSS $((RSS_KB / 1024)) MiB"

python3 - "$TMP/100k.jsonl" <<'PY'
import random, sys
rng = random.Random(7)
ts = sorted(rng.uniform(0, 50) for _ in range(100000))
with open(sys.argv[1], "w") as f:
    for k, t in enumerate(ts):
        f.write(f'{{"time": {1794326400 + t:.3f}, "method": "GET", "path": "/api/items/{k % 1000 + 1}?k={k}"}}\n')
PY
# connection: per-user (the default: each record is one arrival with its own connection, about
# 2,000 connects a second) or shared (--connection shared: the shard's keep-alive pool).
cat > "$TMP/100k.yaml" <<YAML
name: replay-100k
clients:
  replayed: { share: 100%, http: h1, connection: $CONNECTION }
load:
  replay: { from: 100k.jsonl, speed: 100% }
YAML
# The recording server: nginx (one worker, pinned to core 0 when there are two) logs $msec and the
# URI of every request; the generator runs on the other core.
PIN_SERVER=(); PIN_GEN=()
if [[ $(nproc) -ge 2 ]]; then PIN_SERVER=(taskset -c 0); PIN_GEN=(taskset -c 1); fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/nginx/tmp"; chmod 755 "$TMP"
user_line=""; [[ $(id -u) -eq 0 ]] && user_line="user root root;"
cat > "$TMP/nginx/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
    log_format stamp '\$msec \$request_uri';
    access_log $TMP/nginx/access.log stamp buffer=1m flush=1s;
    keepalive_requests 1000000;
    tcp_nodelay on;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=65535;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
"${PIN_SERVER[@]}" "$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
SERVER_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/up" >/dev/null 2>&1 && break; sleep 0.1; done
: > "$TMP/nginx/access.log"; kill -USR1 "$SERVER_PID"; sleep 0.5
/usr/bin/time -f "%e %M" -o "$TMP/time2" "${PIN_GEN[@]}" "$FC" run "$TMP/100k.yaml" \
    --target "http://127.0.0.1:$PORT" --out "$TMP/run" --quiet >/dev/null || true
sleep 1.5   # nginx flushes its log every second
read -r SECS2 RSS2_KB < "$TMP/time2"
python3 - "$TMP/run/report.json" "$SECS2" "$RSS2_KB" "$TMP/100k.jsonl" "$TMP/nginx/access.log" <<'PY'
import datetime, json, math, re, sys
report, secs, rss_kb, log, access = sys.argv[1:]
r = json.load(open(report))
lag = r["generator"]["lag_ms"]
print(f"100,000-line replay at 100%: {r['totals']['requests']} requests in {float(secs):.1f}s; "
      f"send lag p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms; peak RSS {int(rss_kb) // 1024} MiB")
# At the server: record k is due at the run's start + (its time - the start of the first record's second).
times = [json.loads(l)["time"] for l in open(log)]
base = math.floor(times[0])
t0 = datetime.datetime.fromisoformat(r["run"]["started_at"]).timestamp()
errs = []
for line in open(access):
    m = re.match(r"(\S+) /api/items/\d+\?k=(\d+)$", line.strip())
    if m:
        errs.append(abs(float(m.group(1)) - (t0 + times[int(m.group(2))] - base)) * 1000)
errs.sort()
q = lambda p: errs[min(len(errs) - 1, int(p * len(errs)))] if errs else float("nan")
print(f"  at nginx ($msec, 1 ms resolution): {len(errs)} of {len(times)} records; |arrival - planned instant|: "
      f"p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {errs[-1] if errs else float('nan'):.1f} ms (target p99 < 2 ms)")
PY
