#!/usr/bin/env bash
# WebSocket rooms at full size: 1,000 users in 10 rooms of the embedded shop, each sending a like
# every second for 10 s, from a release binary. Checks that the messages sent equal the plan
# exactly, that the messages received equal what the shop wrote to the members' sockets (its own
# counters: welcomes + broadcasts delivered), and that there was no error; prints the figures.
# (tests/engine_ws.rs pins the same counts with 200 users in a debug build.)
#
#   bench/ws-rooms.sh [--users N] [--no-build] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=1000
BUILD=1
BIN=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --users) USERS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin) BIN="$2"; BUILD=0; shift 2 ;;
        -h|--help) sed -n 2,8p "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$BIN" ]]; then
    [[ $BUILD -eq 1 ]] && cargo build --release --quiet
    BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/flashcrowd"
fi
TMP="$(mktemp -d)"
SHOP_PID=""
cleanup() { [[ -n "$SHOP_PID" ]] && kill "$SHOP_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" shop --listen "127.0.0.1:$PORT" >"$TMP/shop.log" 2>&1 &
SHOP_PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.1
done
cat >"$TMP/rooms.yaml" <<YAML
name: ws-rooms
defaults: { timeout: 10s, headers: { X-Load-Test: flashcrowd } }
journeys:
  watch:
    share: 100%
    steps:
      - ws: /live/{{ random(1, 10) }}
        name: room
        send: '{"type":"like"}'
        every: 1s
        hold: 10s
        expect: { first: { \$.type: welcome } }
load:
  stages: [ { rate: ${USERS}/s, for: 1s }, { rate: 0/s, for: 12s } ]
  arrivals: uniform
YAML
/usr/bin/time -f "%U %S" -o "$TMP/cpu" "$BIN" run "$TMP/rooms.yaml" --target "http://127.0.0.1:$PORT" \
    --out "$TMP/run" --quiet --threads 1 || true
curl -sf "http://127.0.0.1:$PORT/stats" >"$TMP/stats.json"
python3 - "$TMP/run/report.json" "$TMP/stats.json" "$USERS" "$TMP/cpu" <<'PY'
import json, sys
report, stats, users, cpu = sys.argv[1:]
r = json.load(open(report)); s = json.load(open(stats))["streams"]["live"]
row = next(q for q in r["requests"] if q["name"] == "room")
st = row["stream"]; users = int(users)
cpu_s = sum(map(float, open(cpu).read().split()))
print(f"users {row['count']}, errors {row['errors'] or 'none'}, handshake p50 {row['latency_ms']['p50']} ms")
print(f"sent {st['sent']} (plan {users * 10}), shop received {s['messages_in']}")
print(f"received {st['received']} ({st['received_per_s']:.0f}/s), shop wrote {s['welcomes']} welcomes + {s['delivered']} broadcasts = {s['welcomes'] + s['delivered']}")
print(f"generator CPU {cpu_s:.2f} s: {(st['received'] + st['sent']) / max(cpu_s, 1e-9):.0f} messages per CPU-second")
ok = (row["count"] == users and not row["errors"] and st["sent"] == users * 10
      and s["messages_in"] == users * 10 and st["received"] == s["welcomes"] + s["delivered"])
print("counts exact, no errors" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
PY
