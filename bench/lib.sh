# bench/lib.sh: what the bench scripts share, sourced by run.sh, soak.sh, burst.sh and floor2.sh.
#
# It owns: the log prefix, installing Debian packages a script needs but the machine lacks, the
# machine's readings (CPU steal, load average), the common head of an nginx config and nginx's
# start, and a cleanup that stops everything the script started (its background jobs with their
# children, its nginx master and worker, any other server it names) and removes its temp dir. It
# does not own what a script measures or what its target answers.
#
# A script sets BENCH_TAG (the log prefix) before sourcing this file, and then, before it starts
# anything: TMP (its temp dir), KEEP_TMP (1 keeps TMP), and `trap bench_cleanup EXIT` (done by
# bench_traps). It adds the pids it must stop to BG_PIDS (process trees), NGINX_PID (an nginx
# master) or SERVER_PIDS (a plain server, such as bench/recorder.c).

BENCH_TAG="${BENCH_TAG:-bench}"
NGINX_PID=""
BG_PIDS=()
SERVER_PIDS=()

log() { printf '[%s] %s\n' "$BENCH_TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$BENCH_TAG" "$*" >&2; exit 1; }

# The machine, read before and after a measurement: CPU steal in ticks (all CPUs; getconf
# CLK_TCK a second), and the load average (1, 5, 15 minutes).
steal_ticks() { awk '/^cpu /{print $9}' /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

kill_tree() {  # TERM a process and its descendants (by pid; children first)
    local c
    for c in $(pgrep -P "$1"); do kill_tree "$c"; done
    kill -TERM "$1" 2>/dev/null
}

# TERM a process, give it 5 s, then KILL it (and the extra pids given after it).
stop_pid() {
    local pid="$1"; shift
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" "$@" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

bench_cleanup() {
    local rc=$? p
    set +e
    for p in "${BG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        kill_tree "$p"
        wait "$p" 2>/dev/null
    done
    # nginx: a fast shutdown through the master, which stops its worker; both KILLed if it hangs
    [[ -n "$NGINX_PID" ]] && stop_pid "$NGINX_PID" $(pgrep -P "$NGINX_PID")
    for p in "${SERVER_PIDS[@]}"; do stop_pid "$p"; done
    if [[ -n "${TMP:-}" ]]; then
        if [[ "${KEEP_TMP:-0}" -eq 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
    exit $rc
}

bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# need_tools TOOL:PACKAGE... : apt-get install (as root, or through sudo) the Debian package of
# each tool the machine lacks. A tool is a command on PATH or in /usr/sbin, or an absolute path.
need_tools() {
    local pair tool missing=()
    for pair in "$@"; do
        tool="${pair%%:*}"
        if [[ "$tool" == /* ]]; then [[ -x "$tool" ]] && continue
        else command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] && continue; fi
        missing+=("${pair#*:}")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    log "installing: ${missing[*]}"
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# launch_nginx PREFIX [PIN...]: test PREFIX/nginx.conf, then start nginx on it as a background
# job (the config says `daemon off;`), behind the command given (e.g. taskset -c 0); sets
# NGINX_BIN and NGINX_PID. The caller waits for it to answer.
launch_nginx() {
    local prefix="$1"; shift
    NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"
    "$NGINX_BIN" -t -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
        >"$prefix/test.log" 2>&1 || { cat "$prefix/test.log" >&2; die "nginx config test failed"; }
    "$@" "$NGINX_BIN" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
    NGINX_PID=$!
}

# nginx_conf_head PREFIX WORKER_CONNECTIONS NOFILE: the top of an nginx.conf for the bench's
# servers (BENCH-NOTES.md: one worker pinned by the caller, worker_connections above Debian's
# 768, pid and error log under PREFIX); as root the workers run as root so they may read the
# temp dir. The caller's `http { ... }` follows; nginx_temp_paths goes inside it.
nginx_conf_head() {
    local prefix="$1" wc="$2" nofile="$3"
    [[ $(id -u) -eq 0 ]] && echo "user root root;"
    cat <<EOC
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events {
    worker_connections $wc;
    multi_accept on;
}
EOC
}

# nginx_temp_paths PREFIX: nginx's temp directories under PREFIX/tmp (not the system's).
nginx_temp_paths() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do
        printf '    %s_temp_path %s/tmp/%s;\n' "$t" "$1" "${t#client_}"
    done
}
