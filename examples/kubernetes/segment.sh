#!/bin/sh
# flashcrowd-segment: runs one segment of an Indexed Job (installed in the image by the Dockerfile).
#
#   flashcrowd-segment SCENARIO [flashcrowd run flags...]
#
# Reads the same environment as `flashcrowd run`: JOB_COMPLETION_INDEX + FLASHCROWD_SEGMENTS (the
# segment), FLASHCROWD_START_AT (the common instant), FLASHCROWD_OUT (this segment's directory).
# Three things a bare `flashcrowd run` as the container command would get wrong:
#  1. A pod that comes up after the common instant (a replacement, or one left Pending too long)
#     would run its share out of step with the others. It refuses instead: exit 2, which the
#     Job's podFailurePolicy turns into a failed Job.
#  2. Exit 1 (a threshold failed) judges only this segment's share; the merge judges the whole
#     run. The segment has done its work, so the pod completes (exit 0) and is not re-run.
#  3. As PID 1, a shell would not pass SIGTERM on: it is forwarded, so an evicted or stopped pod
#     still writes its report (status `interrupted`, exit 3).
set -u

: "${FLASHCROWD_START_AT:?set FLASHCROWD_START_AT to the common start instant (RFC 3339)}"
# Logged 1-based, as the report names it (`i/n`): Kubernetes' JOB_COMPLETION_INDEX counts from 0.
case "${JOB_COMPLETION_INDEX:-}" in
    '' | *[!0-9]*) segment="?/${FLASHCROWD_SEGMENTS:-?}" ;;
    *) segment="$((JOB_COMPLETION_INDEX + 1))/${FLASHCROWD_SEGMENTS:-?}" ;;
esac
margin=5   # seconds the run needs before the instant: load the scenario, resolve, probe the target

if ! at=$(date -u -d "$FLASHCROWD_START_AT" +%s 2>/dev/null); then
    echo "flashcrowd-segment $segment: FLASHCROWD_START_AT=\`$FLASHCROWD_START_AT\` is not an instant like 2026-11-11T00:00:00+08:00" >&2
    exit 2
fi
now=$(date -u +%s)
if [ "$now" -gt $((at - margin)) ]; then
    echo "flashcrowd-segment $segment: the common start $FLASHCROWD_START_AT is $((now - at))s past (or under ${margin}s away);" \
         "refusing to run this share out of step with the other segments" >&2
    exit 2
fi
echo "flashcrowd-segment $segment: starting in $((at - now))s at $FLASHCROWD_START_AT, reports in ${FLASHCROWD_OUT:-the default directory}" >&2

flashcrowd run "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
rc=0
wait "$pid" || rc=$?
# A signal interrupts `wait`; keep waiting until flashcrowd has written its report and exited.
while kill -0 "$pid" 2>/dev/null; do
    rc=0
    wait "$pid" || rc=$?
done

if [ "$rc" -eq 1 ]; then
    echo "flashcrowd-segment $segment: a threshold failed on this segment's share; the merged run decides (flashcrowd merge)" >&2
    exit 0
fi
exit "$rc"
