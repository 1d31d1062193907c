#!/usr/bin/env bash
# flashcrowd soak: one long steady run against nginx on loopback; does memory stay flat and does
# the CPU cost of a request stay the same from the first minutes to the last?
#
#   bench/soak.sh [--minutes N] [--rate R] [--warmup M] [--bin PATH | --no-build] [--out FILE]
#
# Once a minute it prints the flashcrowd process' RSS (VmRSS: the median of the minute's samples,
# and the peak VmHWM), its CPU (utime + stime), the requests it completed that minute (its live
# /metrics), CPU ms per 1,000 requests, the load average and the machine's CPU steal; then a
# verdict, and exits 1 when either bound fails. See bench/README.md ("Soak"). Traffic goes only
# to 127.0.0.1; everything started here is stopped on exit, Ctrl-C included.
set -euo pipefail
{   # the whole script is read before it runs: editing it during an hour-long run cannot break it

# ---------------------------------------------------------------- options
MINUTES=60
RATE=1000           # sessions per second (about 2 requests each)
WARMUP=1            # minutes before "minute one", the reference
SAMPLE=10           # seconds between samples
THREADS=1
RSS_LIMIT=1.10      # RSS at the end / RSS at minute one
CPU_TOL=10          # percent: CPU per request, last-5 median vs first-5 median
BUILD=1
FC_BIN=""
OUT_FILE=""
KEEP_TMP=0
GEN_CPUS=""
SERVER_CPU=""
GRACE=60            # seconds flashcrowd may run past its plan (report writing) before it is stopped

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --minutes N      length of the steady load (default 60)
  --rate R         arrivals (sessions) per second of the open model (default 1000, ~2,000 req/s)
  --warmup M       minutes of warm-up before the reference minute (default 1: "minute one" is the
                   minute from M to M+1, its RSS sampled at its end)
  --threads T      flashcrowd shards (default 1, pinned to core 1; nginx has core 0)
  --gen-cpus LIST  pin flashcrowd to these cores instead (taskset -c LIST)
  --server-cpu N   pin nginx to this core instead of core 0
  --rss-limit F    pass when RSS at the end <= F x RSS at minute one (default 1.10)
  --cpu-tolerance P  pass when the median CPU per 1,000 requests of the last 5 minutes is within
                   P % of the median of the first 5 minutes after warm-up (default 10)
  --sample S       seconds between samples (default 10; the table shows one row per minute)
  --bin PATH       flashcrowd binary to use (copied first; implies --no-build)
  --no-build       do not run cargo build --release (use target/release/flashcrowd as it is)
  --out FILE       markdown copy of the table and verdict (default bench/soak-results.md)
  --keep-tmp       keep the temp dir (nginx config, scenario, samples, the run directory)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --gen-cpus) GEN_CPUS="$2"; shift 2 ;;
        --server-cpu) SERVER_CPU="$2"; shift 2 ;;
        --rss-limit) RSS_LIMIT="$2"; shift 2 ;;
        --cpu-tolerance) CPU_TOL="$2"; shift 2 ;;
        --sample) SAMPLE="$2"; shift 2 ;;
        --bin) FC_BIN="$2"; BUILD=0; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT_FILE="$2"; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$MINUTES" =~ ^[0-9]+$ && "$MINUTES" -ge 2 ]] || { echo "--minutes must be a whole number >= 2" >&2; exit 2; }
[[ "$WARMUP" =~ ^[0-9]+$ && "$WARMUP" -lt "$MINUTES" ]] || { echo "--warmup must be a whole number < --minutes" >&2; exit 2; }
[[ "$SAMPLE" =~ ^[0-9]+$ && "$SAMPLE" -ge 1 && $(( 60 % SAMPLE )) -eq 0 ]] || { echo "--sample must divide 60" >&2; exit 2; }
[[ "$RATE" =~ ^[0-9]+$ && "$RATE" -ge 1 ]] || { echo "--rate must be a whole number of sessions per second" >&2; exit 2; }

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
OUT_FILE="${OUT_FILE:-$REPO_ROOT/bench/soak-results.md}"

BENCH_TAG=soak
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"    # log, die, need_tools, launch_nginx, the cleanup of what we start

TMP="$(mktemp -d /tmp/flashcrowd-soak.XXXXXX)"
bench_traps

need_tools nginx:nginx /usr/bin/time:time taskset:util-linux curl:curl python3:python3

# ---------------------------------------------------------------- cores
NCPU="$(nproc)"
if [[ $NCPU -ge 2 ]]; then
    PIN_SERVER=(taskset -c 0)
    if [[ $THREADS -ge 2 && $NCPU -ge 3 ]]; then PIN_GEN=(taskset -c "1-$(( NCPU - 1 ))"); else PIN_GEN=(taskset -c 1); fi
else
    log "warning: only $NCPU core(s): nginx and the generator share it"
    PIN_SERVER=(); PIN_GEN=()
fi
[[ -n "$GEN_CPUS" ]] && PIN_GEN=(taskset -c "$GEN_CPUS")
[[ -n "$SERVER_CPU" ]] && PIN_SERVER=(taskset -c "$SERVER_CPU")
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------- flashcrowd binary
if [[ $BUILD -eq 1 ]]; then
    log "cargo build --release"
    (cd "$REPO_ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
FC="${FC_BIN:-$REPO_ROOT/target/release/flashcrowd}"
[[ -x "$FC" ]] || die "$FC not found (build it, or pass --bin PATH)"
# a private copy: another build into the same target dir must not swap it during the hour
cp "$FC" "$TMP/flashcrowd"
log "flashcrowd: $FC ($("$FC" --version 2>/dev/null | head -1))"
FC="$TMP/flashcrowd"

# ---------------------------------------------------------------- nginx
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nginx() {
    local wc=16384 nofile=20000 hard
    hard="$(ulimit -Hn)"
    [[ "$hard" != unlimited && "$hard" -lt "$nofile" ]] && nofile="$hard"
    PORT="$(free_port)"
    mkdir -p "$TMP/nginx/tmp"
    chmod 755 "$TMP" "$TMP/nginx"
    # BENCH-NOTES.md: keepalive_requests very high (the default 1000 forces reconnects),
    # worker_connections above Debian's 768, one worker pinned to its own core, no access log.
    {
        nginx_conf_head "$TMP/nginx" "$wc" "$nofile"
        cat <<EOF
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
    server_tokens off;
    client_body_buffer_size 16k;
EOF
        nginx_temp_paths "$TMP/nginx"
        cat <<EOF
    default_type application/json;
    server {
        listen 127.0.0.1:$PORT backlog=65535;
        location = / { default_type text/plain; return 200 "flashcrowd soak target\n"; }
        location /api/items { return 200 '{"items":[{"id":1},{"id":2},{"id":3}]}'; }
        location = /api/cart { return 200 '{"cart":{"id":"\$request_id"}}'; }
        location = /api/orders { return 201 '{"status":"created","order":"\$request_id"}'; }
    }
}
EOF
    } >"$TMP/nginx/nginx.conf"
    launch_nginx "$TMP/nginx" "${PIN_SERVER[@]}"
    local i
    for i in $(seq 100); do
        curl -sf --max-time 1 "http://127.0.0.1:$PORT/api/items" >/dev/null 2>&1 && break
        [[ $i -eq 100 ]] && { cat "$TMP/nginx/error.log" >&2; die "nginx did not come up"; }
        sleep 0.1
    done
    log "nginx pid $NGINX_PID on 127.0.0.1:$PORT (1 worker, ${PIN_SERVER[*]:-unpinned})"
}

# ---------------------------------------------------------------- scenario
write_scenario() {
    python3 - "$TMP/skus.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,price\n")
    for i in range(1, 2001):
        f.write(f"{100000 + i},{(i * 37) % 900 + 9}.99\n")
EOF
    cat >"$TMP/soak.yaml" <<EOF
name: soak
description: A steady open model for $MINUTES minutes at $RATE sessions/s; pooled, per-session and per-request connections; templated journeys with a capture.
target: http://127.0.0.1:$PORT
defaults:
  timeout: 2s
  headers: { X-Load-Test: "flashcrowd-soak" }
clients:
  app:                        # most users: the shard's pool of keep-alive connections
    share: 80%
    http: h1
    connection: shared
    headers: { User-Agent: "ShopApp-iOS/10.4" }
    think: { uniform: [20ms, 80ms] }
  web:                        # one new keep-alive connection per session
    share: 15%
    http: h1
    connection: per-user
    headers: { User-Agent: "Mozilla/5.0 (Windows NT 10.0) Chrome/120" }
    think: { constant: 50ms }
  bot:                        # a new connection for every request
    share: 5%
    http: h1
    connection: fresh
data:
  skus: { csv: skus.csv, pick: random }
journeys:
  browse:
    share: 70%
    steps:
      - get: /api/items?page={{ random(1, 50) }}
      - get: /api/items/{{ skus.id }}
        name: item-detail
        expect: { status: 200, contains: items }
  buy:
    share: 30%
    steps:
      - post: /api/cart
        json: { sku: "{{ skus.id }}", user: "{{ user() }}", qty: 1 }
        capture: { cart_id: \$.cart.id }
      - post: /api/orders
        name: create-order
        headers: { X-Request-Id: "{{ uuid() }}" }
        json: { cart: "{{ cart_id }}", seq: "{{ seq() }}", client: "{{ client() }}" }
        expect: { status: [200, 201], json: { \$.status: created } }
load:
  stages: [ { rate: $RATE/s, for: ${MINUTES}m } ]
  arrivals: poisson
  max_users: 5000
  seed: 15
thresholds:
  - errors < 0.1%
EOF
    "$FC" validate "$TMP/soak.yaml" >/dev/null 2>"$TMP/validate.err" \
        || { cat "$TMP/validate.err" >&2; die "flashcrowd validate rejected the soak scenario"; }
}

# ---------------------------------------------------------------- sampling
load1() { cut -d' ' -f1 /proc/loadavg; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }   # utime + stime
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
scrape() {  # total requests completed and completed seconds, from the run's /metrics
    curl -s --max-time 3 "http://$METRICS/metrics" 2>/dev/null | awk '
        /^flashcrowd_requests_total/ {r += $NF}
        /^flashcrowd_elapsed_seconds / {e = $NF}
        END {if (e == "") print "- -"; else print r + 0, e}'
}

start_nginx
write_scenario
TOTAL=$(( MINUTES * 60 ))
RUN_DIR="$TMP/run"
log "soak: open model at $RATE sessions/s for $MINUTES min, --threads $THREADS (${PIN_GEN[*]:-unpinned});" \
    "a sample every ${SAMPLE}s, a row a minute; minute one = minute $(( WARMUP + 1 )) (after $WARMUP min of warm-up)"
log "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
"${PIN_GEN[@]}" /usr/bin/time -f "%M %U %S %e" -o "$TMP/time.txt" \
    "$FC" run "$TMP/soak.yaml" --target "http://127.0.0.1:$PORT" --out "$RUN_DIR" --quiet \
    --threads "$THREADS" --metrics-listen 127.0.0.1:0 --control-token "soak-$$-$RANDOM-$RANDOM-$RANDOM" \
    >"$TMP/run.stdout" 2>"$TMP/run.stderr" &
TPID=$!
BG_PIDS+=("$TPID")
START=$SECONDS
PID=""
METRICS=""
for _ in $(seq 100); do
    [[ -z "$PID" ]] && PID="$(pgrep -P "$TPID" | head -1 || true)"
    METRICS="$(sed -n 's|.*metrics: http://\([^/]*\)/metrics.*|\1|p' "$TMP/run.stderr" | head -1)"
    [[ -n "$PID" && -n "$METRICS" ]] && break
    kill -0 "$TPID" 2>/dev/null || break
    sleep 0.1
done
[[ -n "$PID" && -n "$METRICS" ]] || { cat "$TMP/run.stderr" >&2; die "flashcrowd did not start"; }
log "flashcrowd pid $PID, live metrics on http://$METRICS/metrics"

SAMPLES="$TMP/samples.txt"
# t  rss_kib  hwm_kib  cpu_ticks  requests  elapsed_s  steal_ticks  load1  anon_kib  file_kib
# (RssAnon: heap, stacks; RssFile: the binary's and libraries' pages: VmRSS is their sum + shmem)
sample() {
    local rss hwm cpu
    rss="$(status_kib "$PID" VmRSS)"; hwm="$(status_kib "$PID" VmHWM)"; cpu="$(cpu_ticks "$PID")"
    [[ -n "$rss" && -n "$cpu" ]] || return 1
    echo "$1 $rss $hwm $cpu $(scrape) $(steal_ticks) $(load1) $(status_kib "$PID" RssAnon) $(status_kib "$PID" RssFile)" >>"$SAMPLES"
}
echo "0 - - 0 0 0 $(steal_ticks) $(load1) - -" >"$SAMPLES"

WATCHDOG_HIT=0
printf '%6s  %8s  %8s  %9s  %8s  %10s  %6s  %7s\n' minute "RSS MiB" "peak MiB" requests "CPU ms" "ms/1k req" load1 "steal s"
prev_req=0; prev_cpu=0; prev_steal="$(steal_ticks)"
t=0
while kill -0 "$PID" 2>/dev/null; do
    t=$(( t + SAMPLE ))
    at=$t
    [[ $t -ge $TOTAL ]] && at=$(( TOTAL - 2 ))   # the last sample while the load still runs
    wake=$(( START + at - SECONDS ))
    [[ $wake -gt 0 ]] && sleep "$wake"
    sample "$at" || break
    if (( at % 60 == 0 || at == TOTAL - 2 )); then
        read -r _ rss hwm cpu req _ steal ld _ < <(tail -n 1 "$SAMPLES")
        # RSS of the minute: the median of its samples (one reading moves with the allocator)
        rss="$(awk -v lo=$(( at > 60 ? ((at - 1) / 60) * 60 : 0 )) -v hi="$at" '$1 > lo && $1 <= hi && $2 != "-" {print $2}' "$SAMPLES" \
            | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}')"
        if [[ "$req" != "-" ]]; then
            python3 - "$(( (at + 59) / 60 ))" "$rss" "$hwm" "$(( req - prev_req ))" "$(( cpu - prev_cpu ))" \
                "$CLK_TCK" "$ld" "$(( steal - prev_steal ))" <<'EOF'
import sys
m, rss, hwm, req, cpu, clk, ld, steal = sys.argv[1:]
cpu_ms = int(cpu) * 1000 / int(clk)
per = f"{cpu_ms / int(req) * 1000:.2f}" if int(req) > 0 else "-"
print(f"{m:>6}  {int(rss) / 1024:8.1f}  {int(hwm) / 1024:8.1f}  {int(req):9d}  {cpu_ms:8.0f}  {per:>10}  {ld:>6}  {int(steal) / int(clk):7.2f}")
EOF
            prev_req=$req
        fi
        prev_cpu=$cpu; prev_steal=$steal
    fi
    [[ $t -ge $TOTAL ]] && break
done
# the report is written after the load: give it its time, then stop a hang
while kill -0 "$TPID" 2>/dev/null; do
    late=$(( SECONDS - START - TOTAL ))
    if [[ $late -ge $(( GRACE + 15 )) ]]; then kill -KILL "$PID" 2>/dev/null || true
    elif [[ $late -ge $GRACE && $WATCHDOG_HIT -eq 0 ]]; then
        log "flashcrowd still running ${late}s after its planned end: sending SIGTERM"
        WATCHDOG_HIT=1; kill -TERM "$PID" 2>/dev/null || true
    fi
    sleep 1
done
RC=0
wait "$TPID" || RC=$?
BG_PIDS=()
[[ $RC -ne 0 ]] && { log "flashcrowd exited with $RC; stderr:"; tail -n 20 "$TMP/run.stderr" >&2; }

python3 - "$SAMPLES" "$RUN_DIR/report.json" "$TMP/time.txt" "$OUT_FILE" "$CLK_TCK" "$MINUTES" "$RATE" \
    "$WARMUP" "$RSS_LIMIT" "$CPU_TOL" "$RC" "$WATCHDOG_HIT" "$THREADS" "$NCPU" <<'EOF'
import datetime, json, statistics, sys
(path, report, timef, out_path, clk, minutes, rate, warmup, rss_limit, cpu_tol, rc, hung,
 threads, ncpu) = sys.argv[1:]
clk, minutes, warmup = int(clk), int(minutes), int(warmup)
rss_limit, cpu_tol = float(rss_limit), float(cpu_tol)
total = minutes * 60
raw = [l.split() for l in open(path) if l.strip()]
samples = []
for r in raw:
    num = lambda v: None if v == "-" else float(v)
    samples.append(dict(t=int(r[0]), rss=num(r[1]), hwm=num(r[2]), cpu=num(r[3]), req=num(r[4]),
                        el=num(r[5]), steal=num(r[6]), load=num(r[7]),
                        anon=num(r[8]) if len(r) > 9 else None, file=num(r[9]) if len(r) > 9 else None))
# one row per minute: the sample at its end (the last minute: 2 s before the plan ends)
ends = {s["t"]: s for s in samples}
rows, prev = [], samples[0]
for m in range(1, minutes + 1):
    s = ends.get(m * 60 if m < minutes else total - 2)
    if s is None or s["req"] is None:
        break
    req = s["req"] - prev["req"]
    inside = [x["rss"] for x in samples if prev["t"] < x["t"] <= s["t"] and x["rss"] is not None]
    cpu_ms = (s["cpu"] - prev["cpu"]) * 1000 / clk
    part = lambda k: [x[k] for x in samples if prev["t"] < x["t"] <= s["t"] and x[k] is not None]
    med = lambda v: statistics.median(v) / 1024 if v else None
    rows.append(dict(minute=m, rss=statistics.median(inside) / 1024, rss_max=max(inside) / 1024,
                     anon=med(part("anon")), file=med(part("file")),
                     hwm=s["hwm"] / 1024, req=int(req), cpu_ms=cpu_ms,
                     per_k=(cpu_ms / req * 1000) if req > 0 else None, load=s["load"],
                     steal=(s["steal"] - prev["steal"]) / clk))
    prev = s
lines, ok = [], True
ref = next((r for r in rows if r["minute"] == warmup + 1), None)
end = rows[-1] if rows else None
if ref is None or end is None or end["minute"] < minutes:
    lines.append(f"INCOMPLETE: {len(rows)} of {minutes} minutes sampled (flashcrowd stopped early?)")
    ok = False
if ref is not None and end is not None:
    ratio = end["rss"] / ref["rss"]
    good = ratio <= rss_limit
    ok &= good
    lines.append(f"RSS (median of each minute's samples): minute one (minute {ref['minute']}, after {warmup} min of warm-up) {ref['rss']:.1f} MiB, "
                 f"end (minute {end['minute']}) {end['rss']:.1f} MiB: {ratio:.3f}x "
                 f"({'PASS' if good else 'FAIL'}: bound {rss_limit:.2f}x); peak VmHWM {max(r['hwm'] for r in rows):.1f} MiB")
    if ref["anon"] and end["anon"] and ref["file"] is not None and end["file"] is not None:
        lines.append(f"  of it anonymous (heap, stacks) {ref['anon']:.1f} -> {end['anon']:.1f} MiB ({end['anon'] / ref['anon']:.3f}x), "
                     f"file-backed (the binary's pages) {ref['file']:.1f} -> {end['file']:.1f} MiB (not judged apart)")
    after = [r for r in rows if r["minute"] > warmup and r["per_k"] is not None]
    k = min(5, max(1, len(after) // 2))
    first = statistics.median(r["per_k"] for r in after[:k])
    last = statistics.median(r["per_k"] for r in after[-k:])
    change = 100 * (last / first - 1)
    good = abs(change) <= cpu_tol
    ok &= good
    lines.append(f"CPU per 1,000 requests: median of minutes {after[0]['minute']}-{after[k - 1]['minute']} {first:.2f} ms, "
                 f"of minutes {after[-k]['minute']}-{after[-1]['minute']} {last:.2f} ms: {change:+.1f} % "
                 f"({'PASS' if good else 'FAIL'}: bound +-{cpu_tol:.0f} %)")
    med = statistics.median(r["per_k"] for r in after)
    outside = [r["minute"] for r in after if abs(r["per_k"] / med - 1) * 100 > cpu_tol]
    lines.append(f"  every minute after warm-up against their median {med:.2f} ms: {len(after) - len(outside)} of "
                 f"{len(after)} within +-{cpu_tol:.0f} %" + (f" (outside: minutes {', '.join(map(str, outside))})" if outside else ""))
    # The same comparison at the same steal: on a VM the stolen time shows up in the process's
    # CPU time, so a least-squares line of the cost against the minute's steal, and the first and
    # last minutes' distances from it (shown beside the verdict, not instead of it).
    steals, costs = [r["steal"] for r in after], [r["per_k"] for r in after]
    if len(after) >= 4 and len(set(steals)) > 1:
        fit = statistics.linear_regression(steals, costs)
        dist = [c - (fit.intercept + fit.slope * st) for st, c in zip(steals, costs)]
        moved = statistics.median(dist[-k:]) - statistics.median(dist[:k])
        base = fit.intercept if fit.intercept > 0 else med
        lines.append(f"  at the same steal: {fit.intercept:.2f} ms + {fit.slope:.3f} ms per second of steal in the minute "
                     f"(correlation {statistics.correlation(steals, costs):.3f}); "
                     f"the last {k} minutes against the first {k} there: {100 * moved / base:+.1f} %")
    lds = [r["load"] for r in rows]
    lines.append(f"machine: load average (1 min) {min(lds):.2f}-{max(lds):.2f}, median {statistics.median(lds):.2f}; "
                 f"CPU steal {sum(r['steal'] for r in rows):.1f} s in all, at most {max(r['steal'] for r in rows):.1f} s in a minute "
                 f"({ncpu} cores)")
# The sessions in flight, per minute (the report's series: one value a second). Memory follows
# them: each session in flight holds its journey's state and buffers, and the allocator keeps some
# of what a spike of them took. A minute whose RSS steps up beside a spike of in-flight sessions
# (a stall of the machine, not of the run) is not a leak; the verdict names the spike.
inflight = {}
try:
    for p in json.load(open(report)).get("series", []):
        m = p["t"] // 60 + 1
        inflight[m] = max(inflight.get(m, 0), p.get("in_flight", 0))
except Exception:
    pass
for r in rows:
    r["in_flight"] = inflight.get(r["minute"])
if inflight and ref is not None and end is not None:
    upto = lambda m: max(v for k, v in inflight.items() if k <= m)
    top = max(inflight, key=inflight.get)
    lines.append(f"sessions in flight (most in any second): up to minute one {upto(ref['minute'])}, "
                 f"over the whole run {inflight[top]} (minute {top}), in the last minute {inflight.get(end['minute'], 0)}")
try:
    j = json.load(open(report))
    t = j["totals"]
    g = j.get("generator") or {}
    lines.append(f"flashcrowd: {t['requests']} requests ({t['rate']:.0f}/s), {t.get('errors')} errors, "
                 f"{t.get('sessions_dropped', 0)} sessions dropped, lag p99 {(g.get('lag_ms') or {}).get('p99')} ms, "
                 f"status {j['run']['status']}")
except Exception as e:
    lines.append(f"no report.json ({type(e).__name__}: {e})")
    ok = False
try:
    mrss, u, s_, wall = open(timef).read().strip().splitlines()[-1].split()
    lines.append(f"whole process (/usr/bin/time, report writing included): max RSS {int(mrss) / 1024:.1f} MiB, "
                 f"CPU {float(u) + float(s_):.1f} s, wall {float(wall):.0f} s")
except Exception:
    pass
if hung == "1":
    lines.append(f"flashcrowd did not stop by itself (stopped by the harness; exit {rc})"); ok = False
elif rc != "0":
    lines.append(f"flashcrowd exited with {rc}"); ok = False
lines.append("VERDICT: " + ("PASS" if ok else "FAIL"))
print("\n".join(lines))
f = lambda v, fmt: (fmt % v) if isinstance(v, (int, float)) else "-"
md = [f"# flashcrowd soak ({datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')})", "",
      f"Open model at {rate} sessions/s for {minutes} min, --threads {threads}, against nginx on loopback.", "",
      "| minute | RSS MiB (median) | anon | file | RSS max | peak (VmHWM) | in flight (max) | requests | CPU ms | CPU ms / 1k req | load (1 min) | steal s |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
md += [f"| {r['minute']} | {r['rss']:.1f} | {f(r['anon'], '%.1f')} | {f(r['file'], '%.1f')} | {r['rss_max']:.1f} | {r['hwm']:.1f} | {f(r.get('in_flight'), '%d')} | {r['req']} | {r['cpu_ms']:.0f} | "
       f"{f(r['per_k'], '%.2f')} | {f(r['load'], '%.2f')} | {r['steal']:.2f} |" for r in rows]
md += [""] + [f"- {l.strip()}" for l in lines]
open(out_path, "w").write("\n".join(md) + "\n")
print(f"markdown written to {out_path}")
sys.exit(0 if ok else 1)
EOF
exit
}
