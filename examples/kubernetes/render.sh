#!/bin/sh
# Fill the placeholders of the Job manifests and print them, for `kubectl apply -f -`:
#
#   export RUN_ID=d11-rehearsal-1 SEGMENTS=4 IMAGE=registry.example.com/flashcrowd:0.1.0
#   export START_AT=$(date -u -d '+3 minutes' +%Y-%m-%dT%H:%M:%SZ)   # macOS: date -u -v+3M +…
#   ./render.sh segments-job.yaml | kubectl -n loadtest apply -f -
#
# Replaces ${RUN_ID}, ${SEGMENTS}, ${START_AT} and ${IMAGE}, and nothing else: the $(VAR)
# references that Kubernetes expands itself stay as they are. A placeholder left in a file
# without its variable set is an error, so is a value of the wrong form.
set -eu

[ $# -ge 1 ] || { echo "usage: render.sh MANIFEST..." >&2; exit 2; }

fail() { echo "render.sh: $*" >&2; exit 2; }

needed=""
for f in "$@"; do
    [ -f "$f" ] || fail "no such file: $f"
    for v in RUN_ID SEGMENTS START_AT IMAGE; do
        if grep -q "\${$v}" "$f"; then needed="$needed $v"; fi
    done
done

for v in $needed; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || fail "$v is not set, and $(echo "$@") uses \${$v}"
    case "$v" in
        RUN_ID)
            # It names the Job (flashcrowd-RUN_ID-merge must stay within 63 characters) and a label.
            echo "$val" | grep -Eq '^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$' \
                || fail "RUN_ID=\`$val\`: use 1-40 lowercase letters, digits and '-', starting with a letter" ;;
        SEGMENTS)
            echo "$val" | grep -Eq '^[1-9][0-9]*$' || fail "SEGMENTS=\`$val\` is not a positive whole number" ;;
        START_AT)
            echo "$val" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$' \
                || fail "START_AT=\`$val\` is not an RFC 3339 instant like 2026-11-11T00:00:00+08:00" ;;
        IMAGE)
            echo "$val" | grep -Eq '^[A-Za-z0-9._/:@-]+$' || fail "IMAGE=\`$val\` is not an image reference" ;;
    esac
done

# The values are checked above to hold nothing that sed would read as syntax ('|', '&', '\').
first=1
for f in "$@"; do
    [ "$first" = 1 ] || echo "---"
    first=0
    sed -e "s|\${RUN_ID}|${RUN_ID:-}|g" \
        -e "s|\${SEGMENTS}|${SEGMENTS:-}|g" \
        -e "s|\${START_AT}|${START_AT:-}|g" \
        -e "s|\${IMAGE}|${IMAGE:-}|g" \
        "$f"
done
