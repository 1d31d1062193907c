#!/bin/sh
# flashcrowd-merge-run: merges the segment directories of one run (installed in the image by the
# Dockerfile).
#
#   flashcrowd-merge-run RUN_DIR SEGMENTS [flashcrowd merge flags...]
#
# Merges RUN_DIR/segment-0 … RUN_DIR/segment-(SEGMENTS-1) into RUN_DIR/merged. Every segment is
# named, not globbed, so a segment whose pod never wrote its report is named as missing. A
# segment whose pod was killed mid-run (evicted past its grace period, OOM-killed, its node lost)
# has no report.json but its journal: it is rebuilt from it first (`flashcrowd report`, status
# `incomplete`) and merged, and the merged report says which segment is incomplete and how many
# of its seconds are missing. The segments present are merged anyway and flashcrowd merge judges
# the gap: status `incomplete`, exit 3 (1 if a threshold failed on what is there), unless
# `--allow-partial` is among the flags, which judges a run with missing segments on its
# thresholds alone. The exit code is flashcrowd merge's: 0 passed, 1 a threshold failed, 2 bad
# input (no segment at all, or mismatched segments), 3 incomplete, aborted or interrupted.
set -u

if [ $# -lt 2 ]; then
    echo "usage: flashcrowd-merge-run RUN_DIR SEGMENTS [flashcrowd merge flags...]" >&2
    exit 2
fi
run_dir=$1
segments=$2
shift 2
case "$segments" in
    '' | *[!0-9]* | 0) echo "flashcrowd-merge-run: SEGMENTS=\`$segments\` is not a positive whole number" >&2; exit 2 ;;
esac

missing=0
i=$((segments - 1))
dirs=""
while [ "$i" -ge 0 ]; do
    d="$run_dir/segment-$i"
    if [ ! -f "$d/report.json" ] && [ -f "$d/journal.jsonl" ]; then
        echo "flashcrowd-merge-run: $d has no report.json: segment $((i + 1))/$segments was killed mid-run;" \
             "rebuilding it from its journal (status incomplete)" >&2
        flashcrowd report "$d" --quiet >/dev/null
        rc=$?
        if [ "$rc" -ne 3 ]; then
            echo "flashcrowd-merge-run: rebuilding $d failed (exit $rc)" >&2
            exit 2
        fi
    fi
    if [ -f "$d/report.json" ]; then
        dirs="$d${dirs:+ $dirs}"
    else
        echo "flashcrowd-merge-run: $d/report.json is missing (segment $((i + 1))/$segments)" >&2
        missing=$((missing + 1))
    fi
    i=$((i - 1))
done
if [ -z "$dirs" ]; then
    echo "flashcrowd-merge-run: none of the $segments segments has a report; nothing to merge" >&2
    exit 2
fi
if [ "$missing" -gt 0 ]; then
    echo "flashcrowd-merge-run: merging $((segments - missing)) of $segments segments; the merge says incomplete unless --allow-partial" >&2
fi

# $dirs is split on spaces on purpose: RUN_DIR comes from a Job manifest and holds none.
# shellcheck disable=SC2086
exec flashcrowd merge $dirs --out "$run_dir/merged" "$@"
