#!/usr/bin/env bash
# Replay at scale, from a release build, against loopback only:
#   1. parse rate and peak RSS: a generated log of SIZE_MIB (default 1024 MiB, never committed)
#      read by `flashcrowd plan` (one full pass over the file) under /usr/bin/time;
#   2. a 100,000-line JSON-lines log replayed at speed 100% against `flashcrowd shop`: the report's
#      send lag (send instant − the record's offset), p50/p99/max.
# Usage: bench/replay.sh [--bin PATH] [SIZE_MIB]   (needs python3 and /usr/bin/time; ~1 GiB of /tmp)
#   --bin PATH: a flashcrowd binary to use instead of building target/release/flashcrowd
set -euo pipefail
FC=""
if [[ "${1:-}" == --bin ]]; then FC="$2"; shift 2; fi
SIZE_MIB=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
SHOP_PID=""
cleanup() { [ -n "$SHOP_PID" ] && kill "$SHOP_PID" 2>/dev/null || true; rm -rf "$TMP"; }
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
cat > "$TMP/100k.yaml" <<YAML
name: replay-100k
load:
  replay: { from: 100k.jsonl, speed: 100% }
YAML
"$FC" shop --listen 127.0.0.1:18088 >/dev/null 2>&1 &
SHOP_PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18088/health >/dev/null 2>&1 && break; sleep 0.1; done
/usr/bin/time -f "%e %M" -o "$TMP/time2" "$FC" run "$TMP/100k.yaml" --target http://127.0.0.1:18088 --out "$TMP/run" --quiet >/dev/null || true
read -r SECS2 RSS2_KB < "$TMP/time2"
python3 - "$TMP/run/report.json" "$SECS2" "$RSS2_KB" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lag = r["generator"]["lag_ms"]
print(f"100,000-line replay at 100%: {r['totals']['requests']} requests in {float(sys.argv[2]):.1f}s; "
      f"send lag p50 {lag['p50']} ms, p99 {lag['p99']} ms, max {lag['max']} ms; peak RSS {int(sys.argv[3]) // 1024} MiB")
PY
