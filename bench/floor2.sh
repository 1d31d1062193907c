#!/usr/bin/env bash
# The machine's floor of the 00:00 release at a recording server: bench/floor2.c (N pre-connected
# keep-alive sockets, every GET /buy rendered ahead, T pinned threads each writing their share in
# one loop of nonblocking sends from a common instant) against bench/recorder.c on core 0 (the
# kernel's receive time of each request, SO_TIMESTAMPNS), as bench/burst.sh --target recorder
# runs it. Per repeat: floor2's own line (sent p50/p99, answers, CPU per send per thread) and, at
# the recorder, each /buy against floor2's start instant: p50, p99, last, and how many of N
# arrived within 50 ms; CPU steal and the load average before and after.
#
#   bench/floor2.sh [--users N] [--threads T] [--cpus LIST] [--pause-ms P] [--repeats K] [--keep-tmp]
#
# --cpus is floor2's comma list, thread k on its k-th core (default "1" for one thread, "1,0"
# for two); --pause-ms is floor2's pause after every 1,000 connections (default 100; 1000 opens
# them over 10 s, as burst.sh's countdown does). Traffic goes only to 127.0.0.1; the recorder is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=10000
THREADS=1
CPUS=""
REPEATS=1
KEEP_TMP=0
PAUSE_MS=100
while [[ $# -gt 0 ]]; do
    case "$1" in
        --users) USERS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --cpus) CPUS="$2"; shift 2 ;;
        --repeats) REPEATS="$2"; shift 2 ;;
        --pause-ms) PAUSE_MS="$2"; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n "$CPUS" ]] || { [[ $THREADS -eq 1 ]] && CPUS=1 || CPUS=1,0; }
BENCH_TAG=floor2
# shellcheck source=bench/lib.sh
source bench/lib.sh    # log, the machine's readings, the cleanup of what we start
TMP="$(mktemp -d /tmp/flashcrowd-floor2.XXXXXX)"
bench_traps
gcc -O2 -Wall -o "$TMP/recorder" bench/recorder.c
gcc -O2 -Wall -pthread -o "$TMP/floor2" bench/floor2.c
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
CLK_TCK="$(getconf CLK_TCK)"
log "recorder on 127.0.0.1:$PORT (core 0), fresh each repeat; floor2 $USERS users, $THREADS thread(s) on cores $CPUS; load $(loadavg)"
for ((r = 1; r <= REPEATS; r++)); do
    STAMPS="$TMP/arrivals-$r.txt"
    taskset -c 0 "$TMP/recorder" "$PORT" "$STAMPS" 2>"$TMP/recorder-$r.err" &
    RECORDER_PID=$!
    SERVER_PIDS=("$RECORDER_PID")
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    load0="$(loadavg)"; s0="$(steal_ticks)"
    "$TMP/floor2" "$PORT" "$USERS" "$THREADS" "$CPUS" "$PAUSE_MS" >"$TMP/floor2-$r.out"
    s1="$(steal_ticks)"; load1="$(loadavg)"
    kill -TERM "$RECORDER_PID"; wait "$RECORDER_PID" || true; SERVER_PIDS=()
    python3 - "$TMP/floor2-$r.out" "$STAMPS" "$USERS" "$(( s1 - s0 ))" "$CLK_TCK" "$r" "$load0" "$load1" <<'PY'
import re, sys
out, stamps, users, steal, clk, rep, load0, load1 = sys.argv[1:]
users = int(users)
line = open(out).read().strip()
start = int(re.search(r"start (\d+) ns", line).group(1))
rel = sorted((int(l.split(" ", 1)[0]) - start) / 1e6 for l in open(stamps) if " /buy?" in l)
q = lambda p: rel[min(len(rel) - 1, int(p * len(rel)))] if rel else float("nan")
within = sum(1 for x in rel if 0 <= x <= 50.0)
early = sum(1 for x in rel if x < 0)
print(f"repeat {rep}: {line}")
print(f"  at the recorder: {len(rel)} of {users} /buy; after the start p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, "
      f"last {rel[-1] if rel else float('nan'):.3f} ms; before it: {early}; within 50 ms: {within} = {100 * within / users:.2f} %")
print(f"  CPU steal {int(steal) / int(clk):.2f} s, load {load0} -> {load1}")
PY
done
