#!/usr/bin/env bash
# The 00:00 release: N users (default 10,000) arrive during a countdown, each opens its keep-alive
# connection with one GET /warm, then holds on `wait: sale-start`; at the sale start every one of
# them sends GET /buy. Measured two ways, from a release binary against a server on loopback:
#   - the generator's own figure, report.json `generator.burst_ms` (send instant - release
#     instant of the first request after the wait): p50, p99, max;
#   - at the target, against the release instant (report.json `run.started_at`, the wall clock
#     of the plan's time 0 to the microsecond, + the scenario's `sale_start`, 10 s: the instant
#     the engine releases at, start + 10 s), the share of the /buy requests that arrived within
#     50 ms of it:
#       --target nginx (default): nginx's access log, `$msec` (1 ms resolution, taken when nginx
#         logs the request, i.e. after its one worker got to it);
#       --target recorder: bench/recorder.c (built with gcc), which stamps each request with the
#         kernel's receive time of its first bytes (SO_TIMESTAMPNS, CLOCK_REALTIME, ns): when the
#         request reached the target's socket, whenever the server got to it. A fresh recorder
#         per repeat; its records are written when it is stopped after the run.
#
#   bench/burst.sh [--users N] [--threads T] [--gen-cpus LIST] [--repeats K] [--no-build] [--bin PATH]
#                  [--target nginx|recorder] [--keep-tmp]
#
# The server runs pinned to core 0 (nginx: one worker), flashcrowd to the other cores (core 1 on a
# 2-core machine; --gen-cpus 0-1 lets its shards use every core, beside the server). Traffic goes
# only to 127.0.0.1. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=10000
THREADS=1
GEN_CPUS=""
REPEATS=1
BUILD=1
BIN=""
KEEP_TMP=0
TARGET=nginx
while [[ $# -gt 0 ]]; do
    case "$1" in
        --users) USERS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --gen-cpus) GEN_CPUS="$2"; shift 2 ;;
        --repeats) REPEATS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin) BIN="$2"; BUILD=0; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        --target) TARGET="$2"; shift 2 ;;
        -h|--help) sed -n 2,24p "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
BENCH_TAG=burst
# shellcheck source=bench/lib.sh
source bench/lib.sh    # log, die, need_tools, launch_nginx, the cleanup of what we start
[[ "$TARGET" == nginx || "$TARGET" == recorder ]] || die "--target is nginx or recorder, not $TARGET"

tools=(/usr/bin/time:time taskset:util-linux)
if [[ "$TARGET" == nginx ]]; then tools+=(nginx:nginx curl:curl); else tools+=(gcc:gcc); fi
need_tools "${tools[@]}"

if [[ -z "$BIN" ]]; then
    [[ $BUILD -eq 1 ]] && { log "cargo build --release"; cargo build --release --quiet; }
    BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/flashcrowd"
fi
[[ -x "$BIN" ]] || die "$BIN not found (build it, or drop --no-build)"

TMP="$(mktemp -d /tmp/flashcrowd-burst.XXXXXX)"
bench_traps
cp "$BIN" "$TMP/flashcrowd"
FC="$TMP/flashcrowd"

NCPU="$(nproc)"
if [[ $NCPU -ge 2 ]]; then
    PIN_SERVER=(taskset -c 0); PIN_GEN=(taskset -c "${GEN_CPUS:-1-$(( NCPU - 1 ))}")
else
    PIN_SERVER=(); PIN_GEN=()
fi
# each user holds one socket, and nginx one per user: both need USERS + some file descriptors
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
[[ "$(ulimit -Sn)" == unlimited || "$(ulimit -Sn)" -ge $(( USERS + 512 )) ]] \
    || die "open-files limit $(ulimit -Sn) is below $USERS users + 512"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
if [[ "$TARGET" == nginx ]]; then
    mkdir -p "$TMP/nginx/tmp"
    chmod 755 "$TMP"
    {
        nginx_conf_head "$TMP/nginx" $(( USERS + 1024 )) $(( USERS * 2 + 1024 ))
        cat <<EOF
http {
    log_format stamp '\$msec \$request_uri';
    access_log $TMP/nginx/access.log stamp buffer=1m flush=1s;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
EOF
        nginx_temp_paths "$TMP/nginx"
        cat <<EOF
    server {
        listen 127.0.0.1:$PORT backlog=65535;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
    } >"$TMP/nginx/nginx.conf"
    launch_nginx "$TMP/nginx" "${PIN_SERVER[@]}"
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PORT/up" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$PORT/up" >/dev/null || die "nginx did not come up"
else
    gcc -O2 -Wall -o "$TMP/recorder" bench/recorder.c || die "gcc bench/recorder.c failed"
fi

# The users arrive over the 10 s before the sale (USERS/10 a second); after it nobody new comes.
# The countdown's 1 ms rise from that rate to 0/s holds half an arrival, which the plan rounds to
# one (`flashcrowd plan` shows USERS + 1 sessions): that one user arrives at the release, so its
# /warm and /buy come after it, on a new connection. It waited at nothing, so it is not in
# `burst_ms`; the counts below say "of USERS" and it is the one /buy past them.
SALE=10
cat >"$TMP/burst.yaml" <<EOF
name: bench-burst
description: $USERS users wait for the sale on their own keep-alive connections, then buy at once.
defaults: { timeout: 5s, headers: { X-Load-Test: flashcrowd-bench } }
clients:
  app: { share: 100%, http: h1, connection: per-user }
journeys:
  buy:
    share: 100%
    steps:
      - get: /warm
      - wait: sale-start
      - get: /buy?u={{ user() }}
load:
  countdown:
    sale_start: ${SALE}s
    before: $(( USERS / SALE ))/s
    peak: 0/s
    rise: 1ms
    hold: 1s
    decay: 1ms
    after: 0/s
    end: $(( SALE + 3 ))s
  arrivals: uniform
  max_users: $(( USERS * 2 ))
EOF
"$FC" validate "$TMP/burst.yaml" >/dev/null || die "the scenario does not validate"

CLK_TCK="$(getconf CLK_TCK)"
if [[ "$TARGET" == nginx ]]; then
    log "nginx pid $NGINX_PID on 127.0.0.1:$PORT (core 0); flashcrowd --threads $THREADS on ${PIN_GEN[*]:-all cores}; load $(loadavg)"
else
    log "bench/recorder.c on 127.0.0.1:$PORT (core 0), fresh each repeat; flashcrowd --threads $THREADS on ${PIN_GEN[*]:-all cores}; load $(loadavg)"
fi
for ((r = 1; r <= REPEATS; r++)); do
    if [[ "$TARGET" == nginx ]]; then
        STAMPS="$TMP/nginx/access.log"
        : >"$STAMPS"
        kill -USR1 "$NGINX_PID"   # reopen the (emptied) log
        sleep 0.5
    else
        STAMPS="$TMP/arrivals-$r.txt"
        "${PIN_SERVER[@]}" "$TMP/recorder" "$PORT" "$STAMPS" 2>"$TMP/recorder-$r.err" &
        RECORDER_PID=$!
        SERVER_PIDS=("$RECORDER_PID")
        # Wait for the port without sending a request (a connection that sends nothing is not logged).
        for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    fi
    load0="$(loadavg)"
    s0="$(steal_ticks)"
    /usr/bin/time -f "%U %S" -o "$TMP/cpu" "${PIN_GEN[@]}" "$FC" run "$TMP/burst.yaml" \
        --target "http://127.0.0.1:$PORT" --out "$TMP/run-$r" --quiet --threads "$THREADS" \
        >"$TMP/run-$r.stdout" 2>"$TMP/run-$r.stderr" || log "flashcrowd exited with $? (see $TMP/run-$r.stderr)"
    s1="$(steal_ticks)"
    load1="$(loadavg)"
    if [[ "$TARGET" == nginx ]]; then
        sleep 1.5   # nginx flushes its log buffer every second
    else
        kill -TERM "$RECORDER_PID"; wait "$RECORDER_PID" || true; SERVER_PIDS=()
    fi
    python3 - "$TMP/run-$r/report.json" "$STAMPS" "$USERS" "$SALE" "$TMP/cpu" \
        "$(( s1 - s0 ))" "$CLK_TCK" "$r" "$TARGET" "$load0" "$load1" <<'PY'
import calendar, datetime, json, sys
report, stamps, users, sale, cpu, steal, clk, rep, target, load0, load1 = sys.argv[1:]
users, sale = int(users), float(sale)
j = json.load(open(report))
b = j["generator"]["burst_ms"]
# The release in wall-clock ns: run.started_at (the plan's time 0, read in one pair with the
# monotonic instant the engine counts from, to the µs) + sale_start, as the engine's start + 10 s.
at = datetime.datetime.fromisoformat(j["run"]["started_at"].replace("Z", "+00:00"))
t0_ns = calendar.timegm(at.utctimetuple()) * 10**9 + at.microsecond * 1000
release_ns = t0_ns + round(sale * 1e9)
buys, warm = [], 0
for line in open(stamps):
    if target == "nginx":
        t, uri = line.split()[:2]
        ns = round(float(t) * 1e9)
    else:
        t, _method, uri = line.rstrip("\n").split(" ", 2)
        ns = int(t)
    if uri.startswith("/buy?"):
        buys.append(ns)
    elif uri.startswith("/warm"):
        warm += 1
buys.sort()
rel = [(t - release_ns) / 1e6 for t in buys]
def q(xs, p):
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")
within = sum(1 for x in rel if 0 <= x <= 50.0) if target == "recorder" else sum(1 for x in rel if x <= 50.0)
early = sum(1 for x in rel if x < 0)
cpu_s = sum(map(float, open(cpu).read().split()[-2:]))
errs = j["totals"].get("errors")
print(f"repeat {rep}: generator.burst_ms count {b['count']}, p50 {b['p50']} ms, p99 {b['p99']} ms, max {b['max']} ms")
if target == "nginx":
    print(f"  at nginx ($msec at the end of each request, 1 ms resolution): {len(buys)} of {users} /buy, "
          f"{warm} /warm; after the release p50 {q(rel, 0.5):.0f} ms, p99 {q(rel, 0.99):.0f} ms, "
          f"last {rel[-1] if rel else float('nan'):.0f} ms; within 50 ms: {within} = {100 * within / users:.2f} %")
else:
    print(f"  at the recorder (kernel receive time, SO_TIMESTAMPNS): {len(buys)} of {users} /buy, "
          f"{warm} /warm; after the release first {q(rel, 0):.3f} ms, p50 {q(rel, 0.5):.3f} ms, "
          f"p99 {q(rel, 0.99):.3f} ms, last {rel[-1] if rel else float('nan'):.3f} ms; "
          f"before it: {early}; within 50 ms: {within} = {100 * within / users:.2f} %")
print(f"  errors {errs}, generator CPU {cpu_s:.2f} s, CPU steal {int(steal) / int(clk):.2f} s, "
      f"lag p99 {j['generator']['lag_ms']['p99']} ms, load {load0} -> {load1}")
PY
done
