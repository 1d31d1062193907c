#!/usr/bin/env bash
# flashcrowd benchmark harness: wrk, oha (optional) and flashcrowd against one nginx on loopback.
#
#   bench/run.sh [--repeats N] [--duration S] [--with-oha] [--no-build] [--out FILE]   # throughput
#   bench/run.sh --memory [--minutes M] [--rate R]                                      # RSS over time
#   bench/run.sh --connections N [--conn-seconds S]                                     # many connections
#   bench/run.sh --ceiling [--ceiling-range LO-HI] [--with-oha]                         # open-model ceiling per core
#
# See bench/README.md for what the figures mean. Everything started here is stopped on exit.
set -euo pipefail

# ---------------------------------------------------------------- options
MODE=throughput
REPEATS=3
DURATION=10
USERS=64
OPEN_RATE=20000
MAX_USERS=5000
GRACE=30            # seconds a generator may run past its planned duration before it is stopped
OPEN_CONN=shared
WITH_OHA=0
BUILD=1
OUT_FILE=""
MINUTES=10
MEM_RATE=5000
CONNS=0
CONN_SECONDS=30
STEAL_LIMIT=1.0
STEAL_RETRIES=1
KEEP_TMP=0
CEILING_RATES=""     # a list: the grid search; empty: bisection over CEILING_LO..CEILING_HI
CEILING_LO=5000
CEILING_HI=80000
CEILING_STEP=1000
CEILING_P99=2
NGINX_PORT=""
SOURCE_IPS=""
TOOLS="wrk,oha,flashcrowd-closed,flashcrowd-open,flashcrowd-journey"
FC_BIN=""
FC_BIN_B=""
CACHE_DIR="${FLASHCROWD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flashcrowd-bench}"

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --repeats N        repeats per tool, interleaved (default 3)
  --duration S       seconds per run (default 10)
  --users N          connections / closed-model users (default 64)
  --open-rate R      open-model arrivals per second for flashcrowd-open (default 20000)
  --tools LIST       comma-separated subset of wrk,oha,flashcrowd-closed,flashcrowd-open,
                     flashcrowd-journey (default: all; oha only runs with --with-oha)
  --bin PATH         flashcrowd binary to use instead of target/release/flashcrowd (implies --no-build)
  --bin-b PATH       a second flashcrowd binary (another build profile, another commit): adds the tool
                     flashcrowd-closed-b (and flashcrowd-journey-b), the closed model (journey) run by
                     it, interleaved with the others, and its per-repeat ratio to A's
  --open-connection M  connection mode of the open-model scenarios: shared (default: sessions reuse
                     the shard's keep-alive connections, like oha -q) or per-user (a new TCP
                     connection per arrival: a connection storm, not a request-rate benchmark)
  --with-oha         also run oha (installed with cargo install into the cache dir if missing, ~7 min)
  --no-build         do not run cargo build --release (use the existing binary)
  --out FILE         markdown results (default bench/results.md; not meant to be committed)
  --steal-limit S    flag runs with more CPU steal than S seconds (default 1.0)
  --steal-retries K  re-run a flagged run up to K times (default 1)
  --memory           memory mode: flashcrowd open model at --rate for --minutes, RSS every 10 s
  --minutes M        memory mode duration (default 10)
  --rate R           memory mode arrival rate per second (default 5000)
  --connections N    connection mode: closed model with N users, count ESTABLISHED sockets
  --conn-seconds S   connection mode duration (default 30: 10 s ramp, then hold)
  --ceiling          ceiling mode: the highest arrival rate the open model holds on one pinned core,
                     found by bisection over --ceiling-range; flashcrowd holds a rate when lag p99 < 1 ms,
                     0 dropped, 0 errors and >= 99 % of it was achieved; beside oha -q RATE
                     --latency-correction (with --with-oha), which holds when it achieved >= 99 % with
                     0 errors and a latency p99 (from the intended start) < --ceiling-p99 ms, the test
                     flashcrowd is also held to; prints the ceilings and their ratios (--duration and
                     --repeats apply; a rate holds when it held in most repeats)
  --ceiling-range LO-HI  bisection bounds in arrivals/s (default 5000-80000)
  --ceiling-step R   bisection resolution in arrivals/s (default 1000)
  --ceiling-p99 MS   the latency-p99 bound of the same-yardstick test (default 2)
  --ceiling-rates L  comma-separated arrival rates: try each (a grid) instead of bisecting
  --port P           nginx's loopback port (default: a free one)
  --source-ips SPEC  passed to flashcrowd as --source-ips SPEC (connection mode), if it has it
  --cache-dir DIR    where oha is installed (default ~/.cache/flashcrowd-bench)
  --keep-tmp         keep the temp dir (nginx config, scenarios, raw outputs) for inspection
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeats) REPEATS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --users) USERS="$2"; shift 2 ;;
        --open-rate) OPEN_RATE="$2"; shift 2 ;;
        --open-connection) OPEN_CONN="$2"; shift 2 ;;
        --with-oha) WITH_OHA=1; shift ;;
        --tools) TOOLS="$2"; shift 2 ;;
        --bin) FC_BIN="$2"; BUILD=0; shift 2 ;;
        --bin-b) FC_BIN_B="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT_FILE="$2"; shift 2 ;;
        --steal-limit) STEAL_LIMIT="$2"; shift 2 ;;
        --steal-retries) STEAL_RETRIES="$2"; shift 2 ;;
        --memory) MODE=memory; shift ;;
        --ceiling) MODE=ceiling; shift ;;
        --ceiling-rates) CEILING_RATES="$2"; shift 2 ;;
        --ceiling-range) CEILING_LO="${2%-*}"; CEILING_HI="${2#*-}"; shift 2 ;;
        --ceiling-step) CEILING_STEP="$2"; shift 2 ;;
        --ceiling-p99) CEILING_P99="$2"; shift 2 ;;
        --port) NGINX_PORT="$2"; shift 2 ;;
        --minutes) MINUTES="$2"; shift 2 ;;
        --rate) MEM_RATE="$2"; shift 2 ;;
        --connections) MODE=connections; CONNS="$2"; shift 2 ;;
        --conn-seconds) CONN_SECONDS="$2"; shift 2 ;;
        --source-ips) SOURCE_IPS="$2"; shift 2 ;;
        --cache-dir) CACHE_DIR="$2"; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
OUT_FILE="${OUT_FILE:-$REPO_ROOT/bench/results.md}"

BENCH_TAG=bench
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"    # log, die, need_tools, launch_nginx, the cleanup of what we start

TMP="$(mktemp -d /tmp/flashcrowd-bench.XXXXXX)"
bench_traps

need_tools nginx:nginx wrk:wrk /usr/bin/time:time taskset:util-linux ss:iproute2 python3:python3
# Debian's package may have started the system nginx; we never use it, and never touch it.

want_tool() { [[ ",$TOOLS," == *",$1,"* ]]; }
NEED_FC=1
if [[ $MODE == throughput ]] && ! want_tool flashcrowd-closed && ! want_tool flashcrowd-open \
    && ! want_tool flashcrowd-journey; then NEED_FC=0; fi

OHA=""
if [[ ( $MODE == throughput || $MODE == ceiling ) && $WITH_OHA -eq 1 ]] && want_tool oha; then
    OHA="$(command -v oha || true)"
    if [[ -z "$OHA" ]]; then
        OHA="$CACHE_DIR/oha/bin/oha"
        if [[ ! -x "$OHA" ]]; then
            log "installing oha into $CACHE_DIR/oha (cargo install --locked, takes several minutes)"
            mkdir -p "$CACHE_DIR"
            cargo install oha --locked --root "$CACHE_DIR/oha" --target-dir "$CACHE_DIR/oha-build" >&2
        fi
    fi
    log "oha: $("$OHA" --version 2>/dev/null | head -1)"
fi

# ---------------------------------------------------------------- cores
NCPU="$(nproc)"
if [[ $NCPU -ge 2 ]]; then
    PIN_SERVER=(taskset -c 0)
    PIN_GEN=(taskset -c 1)
else
    log "warning: only $NCPU core(s): nginx and the generator share it; figures are not comparable"
    PIN_SERVER=(); PIN_GEN=()
fi
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------- flashcrowd binary
FC=""
if [[ $NEED_FC -eq 1 ]]; then
    if [[ $BUILD -eq 1 ]]; then
        log "cargo build --release"
        (cd "$REPO_ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    fi
    if [[ -n "$FC_BIN" ]]; then
        FC="$FC_BIN"
    else
        TARGET_DIR="$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" \
            || die "cargo metadata failed"
        FC="$TARGET_DIR/release/flashcrowd"
    fi
    [[ -x "$FC" ]] || die "$FC not found (build it, or drop --no-build)"
    # a private copy: the target dir may be shared, and another build must not swap it mid-run
    cp "$FC" "$TMP/flashcrowd"
    log "flashcrowd: $FC ($("$FC" --version 2>/dev/null | head -1))"
    FC="$TMP/flashcrowd"
fi
FC_B=""
if [[ -n "$FC_BIN_B" ]]; then
    [[ -x "$FC_BIN_B" ]] || die "$FC_BIN_B not found"
    cp "$FC_BIN_B" "$TMP/flashcrowd-b"
    log "flashcrowd-b: $FC_BIN_B"
    FC_B="$TMP/flashcrowd-b"
fi

# ---------------------------------------------------------------- nginx
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nginx() {  # $1 = worker_connections
    local wc="$1" nofile=$(( $1 * 2 + 1024 )) hard
    hard="$(ulimit -Hn)"
    # nginx cannot go past the hard limit without CAP_SYS_RESOURCE; it would only log an alert
    [[ "$hard" != unlimited && "$hard" -lt "$nofile" ]] && nofile="$hard"
    PORT="${NGINX_PORT:-$(free_port)}"
    mkdir -p "$TMP/nginx/html" "$TMP/nginx/tmp"
    printf 'ok' >"$TMP/nginx/html/ok.txt"
    python3 -c 'import sys; sys.stdout.write(("0123456789abcdef" * 64))' >"$TMP/nginx/html/1k.bin"
    chmod 755 "$TMP" "$TMP/nginx" "$TMP/nginx/html"; chmod 644 "$TMP/nginx/html/"*
    {
        nginx_conf_head "$TMP/nginx" "$wc" "$nofile"
        cat <<EOF
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nodelay on;
    server_tokens off;
EOF
        nginx_temp_paths "$TMP/nginx"
        cat <<EOF
    types { text/plain txt; application/octet-stream bin; }
    server {
        listen 127.0.0.1:$PORT backlog=65535;
        root $TMP/nginx/html;
        location = / { default_type text/plain; return 200 "flashcrowd bench target\n"; }   # the probe
        location = /ok { default_type text/plain; return 200 "ok"; }
        location = /1k { try_files /1k.bin =404; }
        # the journey's two steps: a JSON item to capture from, and an order to POST
        location = /item { default_type application/json; return 200 '{"id":"sku-12345","price":99}'; }
        location = /order { default_type application/json; return 200 '{"order":"created"}'; }
    }
}
EOF
    } >"$TMP/nginx/nginx.conf"
    launch_nginx "$TMP/nginx" "${PIN_SERVER[@]}"
    python3 - "$PORT" <<'EOF' || { cat "$TMP/nginx/error.log" >&2; die "nginx did not come up"; }
import sys, time, urllib.request
port = sys.argv[1]
for _ in range(100):
    try:
        ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=1).read()
        one_k = urllib.request.urlopen(f"http://127.0.0.1:{port}/1k", timeout=1).read()
        if ok == b"ok" and len(one_k) == 1024:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
    URL="http://127.0.0.1:$PORT/ok"
    log "nginx pid $NGINX_PID on 127.0.0.1:$PORT (1 worker, core 0): $URL and /1k"
}

# ---------------------------------------------------------------- scenarios
write_scenarios() {
    cat >"$TMP/closed.yaml" <<EOF
name: bench-closed
description: Closed model, $USERS users, one keep-alive GET, no think time.
target: http://127.0.0.1:$PORT
defaults:
  headers: { X-Load-Test: "flashcrowd-bench" }
clients:
  bench:
    share: 100%
    http: h1
    connection: per-user
journeys:
  get-ok:
    share: 100%
    steps:
      - get: /ok
load: { users: [ { users: $USERS, for: ${DURATION}s } ] }
EOF
    cat >"$TMP/open.yaml" <<EOF
name: bench-open
description: Open model at a fixed $OPEN_RATE/s, one GET per session ($OPEN_CONN connections).
target: http://127.0.0.1:$PORT
defaults:
  headers: { X-Load-Test: "flashcrowd-bench" }
clients:
  bench:
    share: 100%
    http: h1
    connection: $OPEN_CONN
journeys:
  get-ok:
    share: 100%
    steps:
      - get: /ok
load:
  stages: [ { rate: $OPEN_RATE/s, for: ${DURATION}s } ]
  arrivals: uniform
  max_users: $MAX_USERS
EOF
    cat >"$TMP/journey.yaml" <<EOF
name: bench-journey
description: Closed model, $USERS users, a capture and a templated JSON POST per session, no think time.
target: http://127.0.0.1:$PORT
defaults:
  headers: { X-Load-Test: "flashcrowd-bench" }
clients:
  bench:
    share: 100%
    http: h1
    connection: per-user
journeys:
  buy:
    share: 100%
    steps:
      - get: /item
        capture: { item: \$.id }
      - post: /order
        json: { item: "{{ item }}", user: "{{ user() }}", qty: 1, trace: "{{ uuid() }}" }
load: { users: [ { users: $USERS, for: ${DURATION}s } ] }
EOF
    cat >"$TMP/memory.yaml" <<EOF
name: bench-memory
description: Open model at a steady $MEM_RATE/s for $MINUTES minutes, to watch RSS.
target: http://127.0.0.1:$PORT
defaults:
  headers: { X-Load-Test: "flashcrowd-bench" }
clients:
  bench:
    share: 100%
    http: h1
    connection: $OPEN_CONN
journeys:
  get-ok:
    share: 100%
    steps:
      - get: /ok
load:
  stages: [ { rate: $MEM_RATE/s, for: ${MINUTES}m } ]
  arrivals: uniform
  max_users: $MAX_USERS
EOF
    local ramp=10 hold=$(( CONN_SECONDS > 10 ? CONN_SECONDS - 10 : 1 ))
    cat >"$TMP/connections.yaml" <<EOF
name: bench-connections
description: Closed model ramping to $CONNS users, each holding a keep-alive connection, about 1 GET/s each.
target: http://127.0.0.1:$PORT
defaults:
  timeout: 10s
  headers: { X-Load-Test: "flashcrowd-bench" }
clients:
  bench:
    share: 100%
    http: h1
    connection: per-user
journeys:
  get-ok:
    share: 100%
    steps:
      - get: /ok
      - think: 1s
load: { users: [ { to: $CONNS, over: ${ramp}s }, { hold: ${hold}s } ] }
EOF
    [[ -z "$FC" ]] && return 0
    local f
    for f in closed open journey memory connections; do
        if ! "$FC" validate "$TMP/$f.yaml" >/dev/null 2>"$TMP/validate.err"; then
            log "warning: flashcrowd validate rejected $f.yaml:"; cat "$TMP/validate.err" >&2
        fi
    done
}

# ---------------------------------------------------------------- measurement helpers

established() {  # client-side sockets to nginx's port
    ss -Htan state established "( dport = :$PORT )" 2>/dev/null | wc -l
}

# watchdog PID PLANNED_S START_SECONDS: called from a sampling loop; stops a run that hangs
WATCHDOG_HIT=0
watchdog() {
    local late=$(( SECONDS - $3 - $2 ))
    if [[ $late -ge $(( GRACE + 10 )) ]]; then
        kill -KILL "$1" 2>/dev/null || true
    elif [[ $late -ge $GRACE && $WATCHDOG_HIT -eq 0 ]]; then
        log "flashcrowd still running ${late}s after its planned end: sending SIGTERM"
        WATCHDOG_HIT=1
        kill -TERM "$1" 2>/dev/null || true
    fi
}

RESULTS="$TMP/runs.jsonl"
: >"$RESULTS"

# run_one TOOL REPEAT ATTEMPT: runs one generator pinned to core 1 under /usr/bin/time,
# then appends one JSON line to $RESULTS. Returns 0, or 10 when the run had too much steal.
run_one() {
    local tool="$1" rep="$2" attempt="$3"
    local dir="$TMP/runs/$tool-$rep-$attempt${BENCH_RATE:+-$BENCH_RATE}"
    mkdir -p "$dir"
    local cmd=()
    case "$tool" in
        wrk) cmd=(wrk -t1 -c"$USERS" -d"${DURATION}s" --latency "$URL") ;;
        oha) cmd=("$OHA" -z "${DURATION}s" -c "$USERS" "${OHA_FLAGS[@]}" "$URL") ;;
        oha-q) cmd=("$OHA" -z "${DURATION}s" -c "$USERS" -q "$OPEN_RATE" --latency-correction "${OHA_FLAGS[@]}" "$URL") ;;
        flashcrowd-closed) cmd=("$FC" run "$TMP/closed.yaml" --target "http://127.0.0.1:$PORT" --out "$dir/fc" --quiet --threads 1) ;;
        flashcrowd-closed-b) cmd=("$FC_B" run "$TMP/closed.yaml" --target "http://127.0.0.1:$PORT" --out "$dir/fc" --quiet --threads 1) ;;
        flashcrowd-journey) cmd=("$FC" run "$TMP/journey.yaml" --target "http://127.0.0.1:$PORT" --out "$dir/fc" --quiet --threads 1) ;;
        flashcrowd-journey-b) cmd=("$FC_B" run "$TMP/journey.yaml" --target "http://127.0.0.1:$PORT" --out "$dir/fc" --quiet --threads 1) ;;
        flashcrowd-open) cmd=("$FC" run "$TMP/open.yaml" --target "http://127.0.0.1:$PORT" --out "$dir/fc" --quiet --threads 1) ;;
    esac
    printf '%s\n' "${cmd[*]}" >"$dir/cmd"
    local s0 s1 rc=0 conns=0
    s0="$(steal_ticks)"
    # a generator that hangs past its run is stopped (TERM, then KILL) and shows up as a failed run
    /usr/bin/time -f "%U %S" -o "$dir/time" timeout -k 10 $(( DURATION + GRACE )) \
        "${PIN_GEN[@]}" "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr" &
    local tpid=$!
    BG_PIDS=("$tpid")   # timeout runs in its own process group: Ctrl-C must reach it through cleanup
    # one connection count in the middle of the run (cheap; shows pools that open extra connections)
    sleep "$(python3 -c "print($DURATION/2)")"
    conns="$(established)"
    wait "$tpid" || rc=$?
    BG_PIDS=()
    s1="$(steal_ticks)"
    local pst=0
    python3 - "$tool" "$rep" "$attempt" "$dir" "$rc" "$(( s1 - s0 ))" "$CLK_TCK" "$conns" "$STEAL_LIMIT" \
        >>"$RESULTS" <<'EOF' || pst=$?
import json, os, re, sys
tool, rep, attempt, d, rc, steal_ticks, clk, conns, limit = sys.argv[1:]
rec = {"tool": tool, "repeat": int(rep), "attempt": int(attempt), "exit": int(rc),
       "steal_s": int(steal_ticks) / int(clk), "conns": int(conns), "dir": d,
       "rate": float(os.environ.get("BENCH_RATE") or 0),
       "load1": float(open("/proc/loadavg").read().split()[0])}
rec["flag"] = rec["steal_s"] > float(limit)
out = open(os.path.join(d, "stdout"), errors="replace").read()
try:
    # /usr/bin/time -o writes "Command exited with non-zero status N" first on failure
    u, s = open(os.path.join(d, "time")).read().strip().splitlines()[-1].split()
    rec["cpu_s"] = float(u) + float(s)
except Exception:
    rec["cpu_s"] = None

def dur_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return None
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]

try:
    if tool == "wrk":
        rec["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
        rec["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        rec["p50_ms"] = dur_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
        rec["p99_ms"] = dur_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
        errs = 0
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m: errs += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m: errs += sum(int(x) for x in m.groups())
        rec["errors"] = errs
    elif tool in ("oha", "oha-q"):
        j = json.loads(out)
        codes = j.get("statusCodeDistribution", {})
        ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
        rec["requests"] = sum(codes.values())
        rec["errors"] = rec["requests"] - ok + sum(j.get("errorDistribution", {}).values())
        rec["rps"] = j["summary"]["requestsPerSec"]
        pct = j.get("latencyPercentiles", {})
        def pick(*keys):
            for k in keys:
                if pct.get(k) is not None:
                    return pct[k] * 1e3          # oha reports seconds
            return None
        rec["p50_ms"] = pick("p50", "p50.0", "50")
        rec["p99_ms"] = pick("p99", "p99.0", "99")
    else:
        j = json.load(open(os.path.join(d, "fc", "report.json")))
        t = j["totals"]
        rec["requests"] = t["requests"]
        rec["errors"] = t.get("errors")
        rec["rps"] = t["rate"]
        rec["p50_ms"] = j["latency_ms"]["p50"]
        rec["p99_ms"] = j["latency_ms"]["p99"]
        rec["service_p99_ms"] = (j.get("service_time_ms") or {}).get("p99")
        g = j.get("generator") or {}
        rec["dropped"] = t.get("sessions_dropped", g.get("dropped"))
        rec["lag_p99_ms"] = (g.get("lag_ms") or {}).get("p99")
        rec["overloaded"] = g.get("overloaded")
        # the first second on its own: a cold start shows here (warm_up: what was opened before t=0)
        s0 = (j.get("series") or [{}])[0]
        rec["dropped_first_s"] = s0.get("dropped")
        rec["warm_up"] = g.get("warm_up")
except Exception as e:
    rec["parse_error"] = f"{type(e).__name__}: {e}"
if rec.get("requests") and rec.get("cpu_s"):
    rec["req_per_cpu_s"] = rec["requests"] / rec["cpu_s"]
print(json.dumps(rec))

def f(v, fmt):
    return (fmt % v) if isinstance(v, (int, float)) else "-"
msg = (f"{tool:<18} repeat {rep}: {f(rec.get('rps'), '%.0f')} req/s, "
       f"p50 {f(rec.get('p50_ms'), '%.3f')} ms, p99 {f(rec.get('p99_ms'), '%.3f')} ms, "
       f"cpu {f(rec.get('cpu_s'), '%.2f')} s, {f(rec.get('req_per_cpu_s'), '%.0f')} req/cpu-s, "
       f"steal {rec['steal_s']:.2f} s, load {rec['load1']:.2f}, {rec['conns']} conns")
if rec["exit"] != 0:
    msg += f", exit {rec['exit']}"
if rec.get("errors"):
    msg += f", {rec['errors']} errors"
if rec.get("dropped"):
    msg += f", {rec['dropped']} arrivals dropped"
if rec.get("rate"):
    msg += f", planned {rec['rate']:.0f}/s"
if rec.get("lag_p99_ms") is not None and tool == "flashcrowd-open":
    msg += f", lag p99 {rec['lag_p99_ms']:.2f} ms"
    if rec.get("dropped_first_s") is not None:
        msg += f", dropped in the first second {rec['dropped_first_s']}"
    if rec.get("warm_up"):
        msg += f", warm-up {rec['warm_up']['connections']} connections in {rec['warm_up']['ms']:.1f} ms"
if rec.get("parse_error"):
    msg += f" [no result: {rec['parse_error']}; see {d}/stderr]"
if rec["flag"]:
    msg += "  [STEAL > limit]"
print("[bench] " + msg, file=sys.stderr)
sys.exit(10 if rec["flag"] else 0)
EOF
    return $pst
}

oha_flags() {  # flags differ between oha versions: JSON output and waiting for in-flight requests
    local help; help="$("$OHA" --help 2>&1)"
    OHA_FLAGS=()
    grep -q -- '--no-tui' <<<"$help" && OHA_FLAGS+=(--no-tui)
    if grep -q -- '--wait-ongoing-requests-after-deadline' <<<"$help"; then OHA_FLAGS+=(-w); else
        log "warning: this oha has no -w: requests in flight at the deadline count as errors"; fi
    if grep -q -- '--output-format' <<<"$help"; then OHA_FLAGS+=(--output-format json)
    else OHA_FLAGS+=(-j); fi
}

# ---------------------------------------------------------------- mode: throughput
mode_throughput() {
    start_nginx 65535
    write_scenarios
    local tools=()
    want_tool wrk && tools+=(wrk)
    if [[ -n "$OHA" ]]; then
        oha_flags
        tools+=(oha)
    fi
    want_tool flashcrowd-closed && tools+=(flashcrowd-closed)
    [[ -n "$FC_B" ]] && tools+=(flashcrowd-closed-b)
    want_tool flashcrowd-open && tools+=(flashcrowd-open)
    if want_tool flashcrowd-journey; then
        tools+=(flashcrowd-journey)
        [[ -n "$FC_B" ]] && tools+=(flashcrowd-journey-b)
    fi
    [[ ${#tools[@]} -gt 0 ]] || die "no tools selected"
    local n=${#tools[@]}
    log "throughput: ${tools[*]}; $REPEATS repeats of ${DURATION}s each, interleaved; $USERS connections"
    for ((r = 1; r <= REPEATS; r++)); do
        # interleave, and rotate the order each repeat so no tool always runs first
        for ((i = 0; i < n; i++)); do
            local tool="${tools[$(( (i + r - 1) % n ))]}"
            local a=1
            while :; do
                local st=0
                run_one "$tool" "$r" "$a" || st=$?
                if [[ $st -eq 10 && $a -le $STEAL_RETRIES ]]; then
                    log "  too much CPU steal: repeating this run"
                    a=$((a + 1)); continue
                fi
                break
            done
            sleep 1   # let TIME_WAIT and the scheduler settle between runs
        done
    done
    summarize
}

summarize() {
    python3 - "$RESULTS" "$OUT_FILE" "$REPEATS" "$DURATION" "$USERS" "$OPEN_RATE" "$NCPU" <<'EOF'
import json, statistics, sys, platform, datetime, subprocess
res_path, out_path, repeats, duration, users, open_rate, ncpu = sys.argv[1:]
runs = [json.loads(l) for l in open(res_path) if l.strip()]
# per (tool, repeat) keep the last attempt that produced a result; prefer unflagged ones
best = {}
for r in runs:
    key = (r["tool"], r["repeat"])
    cur = best.get(key)
    good = r.get("req_per_cpu_s") is not None
    if cur is None or (good and (cur.get("req_per_cpu_s") is None or (cur["flag"] and not r["flag"]))):
        best[key] = r
tools = []
for r in runs:
    if r["tool"] not in tools:
        tools.append(r["tool"])
order = ["wrk", "oha", "flashcrowd-closed", "flashcrowd-closed-b", "flashcrowd-open", "flashcrowd-journey",
         "flashcrowd-journey-b"]
tools.sort(key=lambda t: order.index(t) if t in order else 99)

def med(tool, field):
    # medians over the runs that produced a result
    vals = [r[field] for (t, _), r in best.items()
            if t == tool and r.get("req_per_cpu_s") is not None and isinstance(r.get(field), (int, float))]
    return statistics.median(vals) if vals else None

rows = []
wrk_eff = med("wrk", "req_per_cpu_s")
for t in tools:
    rs = [r for (tt, _), r in best.items() if tt == t]
    ok = [r for r in rs if r.get("req_per_cpu_s") is not None]
    eff = med(t, "req_per_cpu_s")
    rows.append({
        "tool": t, "n": len(ok), "of": len(rs),
        "rps": med(t, "rps"), "p50": med(t, "p50_ms"), "p99": med(t, "p99_ms"),
        "cpu": med(t, "cpu_s"), "eff": eff,
        "ratio": (eff / wrk_eff) if (eff and wrk_eff) else None,
        "steal": med(t, "steal_s"), "flagged": sum(1 for r in rs if r["flag"]),
        "conns": med(t, "conns"), "errors": sum(r.get("errors") or 0 for r in rs),
        "dropped": med(t, "dropped"), "lag": med(t, "lag_p99_ms"),
    })

def f(v, fmt):
    return (fmt % v) if isinstance(v, (int, float)) else "-"

head = ["tool", "runs", "req/s", "p50 ms", "p99 ms", "CPU s", "req/CPU-s", "vs wrk", "steal s", "conns", "errors"]
table = [[r["tool"], f"{r['n']}/{r['of']}", f(r["rps"], "%.0f"), f(r["p50"], "%.3f"), f(r["p99"], "%.3f"),
          f(r["cpu"], "%.2f"), f(r["eff"], "%.0f"), f(r["ratio"], "%.2fx"), f(r["steal"], "%.2f"),
          f(r["conns"], "%.0f"), str(r["errors"])] for r in rows]

widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
print()
loads = [r["load1"] for r in runs if isinstance(r.get("load1"), (int, float))]
load_note = f"; load average (1 min) {min(loads):.2f}-{max(loads):.2f} at the runs' ends" if loads else ""
print(f"Medians over {repeats} repeats of {duration} s, {users} connections, loopback nginx (1 worker){load_note}")
print(line(head))
print(line(["-" * w for w in widths]))
for row in table:
    print(line(row))
print()
verdicts = []
for r in rows:
    if r["tool"] == "wrk":
        continue
    if r["eff"] is None:
        verdicts.append(f"{r['tool']}: no result (see the per-run lines above)")
    elif r["ratio"] is None:
        verdicts.append(f"{r['tool']}: {r['eff']:.0f} req per CPU-second; no wrk run to compare with")
    elif r["ratio"] < 1.0:
        verdicts.append(f"{r['tool']}: {r['ratio']:.2f}x wrk per CPU-second -- BELOW 1.0, slower than wrk per CPU")
    else:
        verdicts.append(f"{r['tool']}: {r['ratio']:.2f}x wrk per CPU-second -- at or above 1.0")
for r in rows:
    if r["tool"] == "flashcrowd-open" and r["rps"] is not None:
        planned = float(open_rate)
        note = (f"flashcrowd-open achieved {r['rps']:.0f}/s of the planned {planned:.0f}/s "
                f"({100 * r['rps'] / planned:.0f} %), median {r['conns']:.0f} connections")
        if r["dropped"]:
            note += f", {r['dropped']:.0f} arrivals dropped at max_users"
        if r["lag"] is not None:
            note += f", scheduler lag p99 {r['lag']:.2f} ms"
        if r["rps"] < 0.95 * planned:
            note += " -- FELL BEHIND its plan"
        verdicts.append(note)
if "flashcrowd-closed-b" in tools:
    # pair by pair (same repeat, run next to each other), so drift in machine speed cancels
    pairs = [best[("flashcrowd-closed-b", k)]["req_per_cpu_s"] / best[("flashcrowd-closed", k)]["req_per_cpu_s"]
             for k in range(1, int(repeats) + 1)
             if best.get(("flashcrowd-closed-b", k), {}).get("req_per_cpu_s")
             and best.get(("flashcrowd-closed", k), {}).get("req_per_cpu_s")]
    if pairs:
        verdicts.append("flashcrowd-closed-b / flashcrowd-closed per CPU-second, repeat by repeat: "
                        + ", ".join(f"{p:.3f}" for p in pairs) + f"; median {statistics.median(pairs):.3f}")
if "flashcrowd-journey-b" in tools:
    pairs = [best[("flashcrowd-journey-b", k)]["req_per_cpu_s"] / best[("flashcrowd-journey", k)]["req_per_cpu_s"]
             for k in range(1, int(repeats) + 1)
             if best.get(("flashcrowd-journey-b", k), {}).get("req_per_cpu_s")
             and best.get(("flashcrowd-journey", k), {}).get("req_per_cpu_s")]
    if pairs:
        verdicts.append("flashcrowd-journey-b / flashcrowd-journey per CPU-second, repeat by repeat: "
                        + ", ".join(f"{p:.3f}" for p in pairs) + f"; median {statistics.median(pairs):.3f}")
if "flashcrowd-journey" in tools:
    verdicts.append("flashcrowd-journey counts requests (2 per session: GET /item with a capture, a templated "
                    "JSON POST /order); its vs-wrk ratio compares a journey with a bare GET")
if "flashcrowd-open" in tools:
    verdicts.append(f"flashcrowd-open runs at a fixed {open_rate}/s, not at saturation: its req/CPU-s is not "
                    "like-for-like with wrk's; flashcrowd-closed is the comparison that counts")
flag_total = sum(r["flagged"] for r in rows)
if flag_total:
    verdicts.append(f"{flag_total} kept run(s) had more than the steal limit of CPU steal: treat those figures with care")
for v in verdicts:
    print(v)

try:
    cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    cpu_model = platform.machine()
md = [f"# flashcrowd benchmark ({datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')})", "",
      f"Loopback nginx (1 worker, pinned to core 0), generators pinned to core 1; {ncpu} cores ({cpu_model}).",
      f"Medians over {repeats} interleaved repeats of {duration} s, {users} keep-alive connections; "
      f"flashcrowd-open at {open_rate}/s{load_note}.", "",
      "| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
md += ["| " + " | ".join(row) + " |" for row in table]
md += ["", *[f"- {v}" for v in verdicts], "", "## Every run", "",
       "| tool | repeat | attempt | req/s | p50 ms | p99 ms | CPU s | req/CPU-s | steal s | load1 | conns | errors | exit |",
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in runs:
    md.append("| " + " | ".join([r["tool"], str(r["repeat"]), str(r["attempt"]), f(r.get("rps"), "%.0f"),
              f(r.get("p50_ms"), "%.3f"), f(r.get("p99_ms"), "%.3f"), f(r.get("cpu_s"), "%.2f"),
              f(r.get("req_per_cpu_s"), "%.0f"), f(r["steal_s"], "%.2f") + (" (!)" if r["flag"] else ""),
              f(r.get("load1"), "%.2f"), str(r["conns"]), str(r.get("errors", "-")), str(r["exit"])]) + " |")
open(out_path, "w").write("\n".join(md) + "\n")
print(f"\nmarkdown written to {out_path}")
EOF
}

# ---------------------------------------------------------------- mode: memory
mode_memory() {
    start_nginx 65535
    write_scenarios
    local total=$(( MINUTES * 60 ))
    log "memory: flashcrowd open model at $MEM_RATE/s for $MINUTES min; VmRSS every 10 s"
    "${PIN_GEN[@]}" "$FC" run "$TMP/memory.yaml" --target "http://127.0.0.1:$PORT" \
        --out "$TMP/memory-run" --quiet --threads 1 >"$TMP/memory.stdout" 2>"$TMP/memory.stderr" &
    local pid=$!
    BG_PIDS+=("$pid")
    : >"$TMP/rss.txt"
    local t=0 start=$SECONDS
    printf '%8s  %10s\n' "t (s)" "RSS (KiB)"
    while kill -0 "$pid" 2>/dev/null; do
        local rss
        watchdog "$pid" "$total" "$start"
        rss="$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        [[ -n "$rss" ]] && { printf '%8d  %10d\n' "$t" "$rss"; echo "$t $rss" >>"$TMP/rss.txt"; }
        t=$(( t + 10 ))
        # sleep to the next 10 s mark, measured from the start (no drift)
        local wake=$(( start + t - SECONDS ))
        [[ $wake -gt 0 ]] && sleep "$wake"
        kill -0 "$pid" 2>/dev/null || break
    done
    local rc=0
    wait "$pid" || rc=$?
    BG_PIDS=()
    [[ $rc -ne 0 ]] && { log "flashcrowd exited with $rc; stderr:"; tail -n 20 "$TMP/memory.stderr" >&2; }
    python3 - "$TMP/rss.txt" "$TMP/memory-run/report.json" "$total" "$OUT_FILE" "$MEM_RATE" "$rc" "$WATCHDOG_HIT" <<'EOF'
import json, sys
rss_path, report, total, out_path, rate, rc, hung = sys.argv[1:]
samples = [tuple(map(int, l.split())) for l in open(rss_path) if l.strip()]
if not samples:
    print("no RSS samples (flashcrowd did not run)"); sys.exit(1)
at = lambda s: min(samples, key=lambda x: abs(x[0] - s))
one = at(60)
end = samples[-1]
ratio = end[1] / one[1] if one[1] else float("nan")
lines = [f"RSS at {one[0]} s: {one[1]} KiB; at {end[0]} s (end): {end[1]} KiB; ratio end/1min = {ratio:.3f}",
         "flat (<= 1.1x)" if ratio <= 1.1 else "NOT flat: grows more than 1.1x after the first minute"]
try:
    j = json.load(open(report))
    t = j["totals"]
    lines.append(f"flashcrowd report: {t['requests']} requests at {t['rate']:.0f}/s, {t.get('errors')} errors, "
                 f"dropped {t.get('sessions_dropped')}, status {j['run']['status']}")
except Exception as e:
    lines.append(f"no report.json ({type(e).__name__}: {e})")
if hung == "1":
    lines.append(f"flashcrowd did not stop by itself (stopped by the harness; exit {rc})")
elif rc != "0":
    lines.append(f"flashcrowd exited with {rc}")
if end[0] < int(total) - 20:
    lines.append(f"warning: the run ended at {end[0]} s, before the planned {total} s")
print("\n".join(lines))
md = [f"# flashcrowd memory run ({rate}/s)", "", "| t (s) | RSS (KiB) |", "|---:|---:|"]
md += [f"| {t} | {r} |" for t, r in samples] + [""] + [f"- {l}" for l in lines]
open(out_path, "w").write("\n".join(md) + "\n")
print(f"markdown written to {out_path}")
EOF
}

# ---------------------------------------------------------------- mode: connections
mode_connections() {
    local want=$(( CONNS + 2048 ))
    local soft hard
    soft="$(ulimit -Sn)"; hard="$(ulimit -Hn)"
    if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then
        ulimit -Hn "$want" 2>/dev/null && hard="$want" \
            || log "warning: cannot raise the hard open-files limit to $want (is $hard; needs CAP_SYS_RESOURCE)"
    fi
    if [[ "$hard" == unlimited || "$hard" -ge "$want" ]]; then ulimit -Sn "$want"; else ulimit -Sn "$hard"; fi
    log "open files: soft $(ulimit -Sn), hard $(ulimit -Hn) (flashcrowd and nginx each need ~$CONNS)"

    local lo hi range tw
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    range=$(( hi - lo + 1 ))
    tw="$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo '?')"
    log "ephemeral ports $lo-$hi ($range per source address to one ip:port), tcp_tw_reuse=$tw"
    local has_src=0
    "$FC" run --help 2>&1 | grep -q -- '--source-ips' && has_src=1
    if [[ $CONNS -gt $range ]]; then
        if [[ $has_src -eq 1 && -n "$SOURCE_IPS" ]]; then
            log "$CONNS > $range ports: using flashcrowd --source-ips $SOURCE_IPS"
        elif [[ $has_src -eq 1 ]]; then
            log "warning: $CONNS > $range ports; pass --source-ips (e.g. a range of 127.0.0.x) to get past it"
        else
            log "warning: $CONNS > $range ports and this flashcrowd has no --source-ips: expect at most ~$range"
        fi
    fi
    local somax; somax="$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo '?')"
    log "net.core.somaxconn=$somax (caps nginx's listen backlog)"

    start_nginx $(( CONNS + 1024 ))
    write_scenarios
    local extra=()
    [[ $has_src -eq 1 && -n "$SOURCE_IPS" ]] && extra=(--source-ips "$SOURCE_IPS")
    log "connections: closed model ramping to $CONNS users over 10 s, then holding, ${CONN_SECONDS}s in all"
    "${PIN_GEN[@]}" "$FC" run "$TMP/connections.yaml" --target "http://127.0.0.1:$PORT" \
        --out "$TMP/conn-run" --quiet --threads 1 "${extra[@]}" >"$TMP/conn.stdout" 2>"$TMP/conn.stderr" &
    local pid=$!
    BG_PIDS+=("$pid")
    : >"$TMP/conns.txt"
    local start=$SECONDS t=0
    printf '%8s  %12s  %10s\n' "t (s)" "ESTABLISHED" "TIME_WAIT"
    while kill -0 "$pid" 2>/dev/null; do
        local est tw_n
        watchdog "$pid" "$CONN_SECONDS" "$start"
        est="$(established)"
        tw_n="$(ss -Htan state time-wait "( dport = :$PORT )" 2>/dev/null | wc -l)"
        (( t % 10 == 0 )) && printf '%8d  %12d  %10d\n' "$t" "$est" "$tw_n"
        echo "$t $est $tw_n" >>"$TMP/conns.txt"
        t=$(( t + 2 ))
        local wake=$(( start + t - SECONDS ))
        [[ $wake -gt 0 ]] && sleep "$wake"
    done
    local rc=0
    wait "$pid" || rc=$?
    BG_PIDS=()
    [[ $rc -ne 0 ]] && { log "flashcrowd exited with $rc; stderr:"; tail -n 20 "$TMP/conn.stderr" >&2; }
    python3 - "$TMP/conns.txt" "$TMP/conn-run/report.json" "$CONNS" "$TMP/nginx/error.log" "$OUT_FILE" "$rc" "$WATCHDOG_HIT" "$(ulimit -Sn)" <<'EOF'
import json, sys, collections, re
path, report, want, errlog, out_path, rc, hung, nofile = sys.argv[1:]
s = [tuple(map(int, l.split())) for l in open(path) if l.strip()]
peak = max((e for _, e, _ in s), default=0)
lines = [f"asked for {want} connections; peak ESTABLISHED to nginx: {peak} ({100 * peak / int(want):.1f} %); "
         f"open-files limit {nofile}"]
if hung == "1":
    lines.append(f"flashcrowd did not stop by itself after the run (stopped by the harness; exit {rc})")
elif rc != "0":
    lines.append(f"flashcrowd exited with {rc}")
try:
    j = json.load(open(report))
    t = j["totals"]
    kinds = collections.Counter()
    for r in j.get("requests", []):
        kinds.update(r.get("errors", {}))
    lines.append(f"flashcrowd: {t['requests']} requests, {t.get('errors')} errors "
                 f"({', '.join(f'{k} {v}' for k, v in kinds.most_common()) or 'none'}), status {j['run']['status']}")
except Exception as e:
    lines.append(f"no report.json ({type(e).__name__}: {e})")
msgs = collections.Counter()
for l in open(errlog, errors="replace"):
    m = re.search(r"\[(?:alert|crit|emerg|error)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:,|$)", l)
    if m:
        msgs[m.group(1)[:100]] += 1
for m, n in msgs.most_common(5):
    lines.append(f"nginx error log: {n} x {m}")
print("\n".join(lines))
md = [f"# flashcrowd connection run ({want} users)", "", "| t (s) | ESTABLISHED | TIME_WAIT |", "|---:|---:|---:|"]
md += [f"| {a} | {b} | {c} |" for a, b, c in s] + [""] + [f"- {l}" for l in lines]
open(out_path, "w").write("\n".join(md) + "\n")
print(f"markdown written to {out_path}")
EOF
}

# ---------------------------------------------------------------- mode: ceiling
# The judge of ceiling runs: `ceiling.py verdict TOOL TEST RATE` prints held / failed / none (no run
# yet) from every run of TOOL at RATE (the majority decides); `ceiling.py summary` prints the table.
# Tests: "lag" (the issue's, flashcrowd only): scheduler lag p99 < 1 ms, 0 dropped; "p99" (both
# tools): latency p99 from the intended start < --ceiling-p99 ms. Both: >= 99 % of the rate
# achieved, 0 errors, exit 0.
write_ceiling_judge() {
    cat >"$TMP/ceiling.py" <<'EOF'
import json, statistics, sys
res_path, p99_limit = sys.argv[1], float(sys.argv[2])
runs = [json.loads(l) for l in open(res_path) if l.strip()]

def held(r, test):
    ok = (r.get("rps") is not None and r["rps"] >= 0.99 * r["rate"] and not r.get("errors")
          and r["exit"] == 0)
    if r["tool"] == "flashcrowd-open":
        ok = ok and not r.get("dropped")
    if test == "lag":
        return ok and r.get("lag_p99_ms") is not None and r["lag_p99_ms"] < 1.0
    return ok and r.get("p99_ms") is not None and r["p99_ms"] < p99_limit

def verdict(tool, test, rate):
    rs = [r for r in runs if r["tool"] == tool and r["rate"] == rate]
    if not rs:
        return None
    return 2 * sum(1 for r in rs if held(r, test)) > len(rs)

def ceiling(tool, test):
    # the highest rate tried below which every rate tried held; and the first that failed
    c, nxt = 0, None
    for rate in sorted({r["rate"] for r in runs if r["tool"] == tool}):
        if verdict(tool, test, rate):
            c = rate
        else:
            nxt = rate
            break
    return c, nxt

if sys.argv[3] == "verdict":
    v = verdict(sys.argv[4], sys.argv[5], float(sys.argv[6]))
    print("none" if v is None else ("held" if v else "failed"))
    sys.exit(0)

out_path, duration, mode = sys.argv[4:7]
tests = [("flashcrowd-open", "lag"), ("flashcrowd-open", "p99"), ("oha-q", "p99")]
tests = [t for t in tests if any(r["tool"] == t[0] for r in runs)]
names = {("flashcrowd-open", "lag"): "flashcrowd, lag p99 < 1 ms and 0 dropped (the issue's test)",
         ("flashcrowd-open", "p99"): f"flashcrowd, latency p99 < {p99_limit:g} ms and 0 dropped",
         ("oha-q", "p99"): f"oha -q --latency-correction, latency p99 < {p99_limit:g} ms"}
loads = [r["load1"] for r in runs if isinstance(r.get("load1"), (int, float))]
steal = [r["steal_s"] for r in runs]
lines = [f"Open-model ceiling on one core ({mode}; {duration} s per run; nginx on the other core); "
         f"load average (1 min) {min(loads):.2f}-{max(loads):.2f}, steal per run "
         f"{min(steal):.2f}-{max(steal):.2f} s" if loads else "", "",
         "| rate/s | tool | runs: achieved/s, lag p99, latency p99, service p99, dropped, load1 | verdicts |",
         "|---:|---|---|---|"]
for rate in sorted({r["rate"] for r in runs}):
    for tool in ("flashcrowd-open", "oha-q"):
        rs = [r for r in runs if r["tool"] == tool and r["rate"] == rate]
        if not rs:
            continue
        def g(r, k, fmt):
            v = r.get(k)
            return (fmt % v) if isinstance(v, (int, float)) else "-"
        desc = []
        for r in rs:
            d = f"{g(r, 'rps', '%.0f')}/s"
            if tool == "flashcrowd-open":
                d += f", lag {g(r, 'lag_p99_ms', '%.2f')} ms"
            d += f", p99 {g(r, 'p99_ms', '%.2f')} ms"
            if tool == "flashcrowd-open":
                d += f", svc {g(r, 'service_p99_ms', '%.2f')} ms, dropped {r.get('dropped') or 0}"
            if r.get("errors"):
                d += f", {r['errors']} errors"
            if r["exit"]:
                d += f", exit {r['exit']}"
            d += f", load {g(r, 'load1', '%.1f')}"
            desc.append(d)
        vs = [f"{test}: {'held' if verdict(tool, test, rate) else 'FAILED'}" for (t, test) in tests if t == tool]
        lines.append(f"| {rate:.0f} | {tool} | " + "; ".join(desc) + " | " + ", ".join(vs) + " |")
lines.append("")
ceil = {}
for t in tests:
    c, nxt = ceiling(*t)
    ceil[t] = c
    top = max(r["rate"] for r in runs if r["tool"] == t[0])
    if c == 0:
        note = f"below {nxt:.0f}/s (the lowest rate tried failed)"
    elif nxt is None:
        note = f"at least {c:.0f}/s (the highest rate tried, {top:.0f}/s, held)"
    else:
        note = f"{c:.0f}/s (failed at {nxt:.0f}/s)"
    lines.append(f"- {names[t]}: ceiling {note}")
fl, fp, op = (ceil.get(("flashcrowd-open", "lag")), ceil.get(("flashcrowd-open", "p99")),
              ceil.get(("oha-q", "p99")))
if fl and op:
    lines.append(f"- ceiling(flashcrowd, lag test) / ceiling(oha): **{fl / op:.2f}x**")
if fp and op:
    lines.append(f"- same test for both (latency p99 < {p99_limit:g} ms): flashcrowd / oha **{fp / op:.2f}x**")
lines.append("- every test also needs >= 99 % of the rate achieved, 0 errors, exit 0; oha reports no scheduler "
             "lag, so it is held to its latency p99 with --latency-correction (from the intended start, which "
             "carries its lag); flashcrowd's latency p99 is from the intended start too")
print("\n".join(lines))
open(out_path, "w").write("\n".join(lines) + "\n")
print(f"\nmarkdown written to {out_path}")
EOF
}

ceiling_verdict() {  # TOOL TEST RATE
    python3 "$TMP/ceiling.py" "$RESULTS" "$CEILING_P99" verdict "$1" "$2" "$3"
}

ceiling_run() {  # TOOL RATE REPEAT: one run at RATE
    OPEN_RATE="$2"
    [[ $1 == flashcrowd-open ]] && write_scenarios
    BENCH_RATE="$2" run_one "$1" "$3" 1 || true
    sleep 1
}

ceiling_next() {  # GOOD BAD: the next rate a search tries; nothing when it is done
    local g="$1" b="$2"
    if [[ -z $g && -z $b ]]; then echo "$CEILING_LO"           # first the lowest rate
    elif [[ -z $g ]]; then return 0                              # the lowest rate failed: done
    elif [[ -z $b ]]; then [[ $g -lt $CEILING_HI ]] && echo "$CEILING_HI"   # then the highest
    elif [[ $(( b - g )) -gt $CEILING_STEP ]]; then               # then halve the gap
        local m=$(( (g + b) / 2 / CEILING_STEP * CEILING_STEP ))
        [[ $m -le $g ]] && m=$(( g + CEILING_STEP ))
        echo "$m"
    fi
    return 0
}

mode_ceiling() {
    start_nginx 65535
    write_ceiling_judge
    local tools=(flashcrowd-open)
    local searches=("flashcrowd-open:lag" "flashcrowd-open:p99")
    if [[ -n "$OHA" ]]; then
        oha_flags
        "$OHA" --help 2>&1 | grep -q -- '--latency-correction' || die "this oha has no --latency-correction"
        tools+=(oha-q)
        searches+=("oha-q:p99")
    fi
    local r tool rate mode
    if [[ -n "$CEILING_RATES" ]]; then
        local rates; IFS=, read -r -a rates <<<"$CEILING_RATES"
        mode="rates ${CEILING_RATES}"
        log "ceiling: ${tools[*]} at ${rates[*]}/s, ${DURATION}s each, $REPEATS repeat(s), one core each"
        for rate in "${rates[@]}"; do
            for ((r = 1; r <= REPEATS; r++)); do
                for tool in "${tools[@]}"; do ceiling_run "$tool" "$rate" "$r"; done
            done
        done
    else
        [[ $CEILING_LO -gt 0 && $CEILING_HI -gt $CEILING_LO && $CEILING_STEP -gt 0 ]] \
            || die "--ceiling-range LO-HI needs 0 < LO < HI, and --ceiling-step > 0"
        mode="bisection over ${CEILING_LO}-${CEILING_HI}/s to ${CEILING_STEP}/s"
        log "ceiling: ${searches[*]}; $mode; ${DURATION}s per run, $REPEATS repeat(s) per rate, interleaved"
        # per search: the highest rate known to hold and the lowest known to fail
        declare -A good=() bad=()
        local s round=0
        while :; do
            round=$(( round + 1 ))
            [[ $round -le 40 ]] || { log "warning: the bisection did not settle in 40 rounds"; break; }
            local want=()   # "tool:rate" pairs this round, each once (the two flashcrowd tests share runs)
            for s in "${searches[@]}"; do
                tool="${s%%:*}"
                local next; next="$(ceiling_next "${good[$s]:-}" "${bad[$s]:-}")"
                [[ -n $next ]] || continue
                # the other test of the same tool may already have run it
                if [[ $(ceiling_verdict "$tool" "${s#*:}" "$next") != none ]]; then
                    want+=("$tool:$next:done")
                else
                    [[ " ${want[*]} " == *" $tool:$next "* ]] || want+=("$tool:$next")
                fi
            done
            [[ ${#want[@]} -gt 0 ]] || break
            local todo=() w
            for w in "${want[@]}"; do [[ $w == *:done ]] || todo+=("$w"); done
            if [[ ${#todo[@]} -gt 0 ]]; then
                log "round $round: ${todo[*]}"
                for ((r = 1; r <= REPEATS; r++)); do
                    local n=${#todo[@]} i
                    for ((i = 0; i < n; i++)); do   # rotate the order each repeat
                        w="${todo[$(( (i + r - 1) % n ))]}"
                        ceiling_run "${w%%:*}" "${w#*:}" "$r"
                    done
                done
            fi
            for s in "${searches[@]}"; do
                tool="${s%%:*}"
                local next; next="$(ceiling_next "${good[$s]:-}" "${bad[$s]:-}")"
                [[ -n $next ]] || continue
                case "$(ceiling_verdict "$tool" "${s#*:}" "$next")" in
                    held) good[$s]=$next ;;
                    failed) bad[$s]=$next ;;
                esac
            done
        done
    fi
    python3 "$TMP/ceiling.py" "$RESULTS" "$CEILING_P99" summary "$OUT_FILE" "$DURATION" "$mode"
}

case "$MODE" in
    throughput) mode_throughput ;;
    ceiling) mode_ceiling ;;
    memory) mode_memory ;;
    connections) mode_connections ;;
esac
