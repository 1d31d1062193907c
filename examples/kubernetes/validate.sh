#!/usr/bin/env bash
# Validates the Kubernetes example offline, for a person or CI:
#  1. every manifest against the Kubernetes JSON schema, strictly (unknown fields are errors), for
#     the oldest and the newest Kubernetes version we claim, with kubernetes-validate from PyPI
#     (it bundles the schemas: no cluster, no network once installed; installed here if missing);
#     the Job manifests are validated as rendered by render.sh, as they would be applied;
#  2. the helper scripts parse (sh -n);
#  3. the CSV files in the ConfigMap equal scenarios/data/;
#  4. the scenario in the ConfigMap passes `flashcrowd validate`, laid out as a pod sees it, when a
#     flashcrowd binary is at hand ($FLASHCROWD, PATH, or target/{debug,release}); skipped if not.
# Exits non-zero on any error.
#
#   bash examples/kubernetes/validate.sh
#   KUBE_VERSIONS="1.33.0" bash examples/kubernetes/validate.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
validator_version=1.37.0                       # the kubernetes-validate release pinned here
kube_versions=${KUBE_VERSIONS:-"1.31.0 1.37.0"} # 1.31: podFailurePolicy is GA; 1.37: the newest it ships
manifests=(scenario-configmap.yaml reports-pvc.yaml generators-service.yaml segments-job.yaml watch-job.yaml merge-job.yaml reports-reader.yaml)

errors=0
fail() { echo "FAIL: $*" >&2; errors=$((errors + 1)); }

# The validator: importable from python3, or installed with pip (into a private virtualenv when
# the system Python refuses a global install).
py=python3
if ! "$py" -c 'import kubernetes_validate' 2>/dev/null; then
    echo "installing kubernetes-validate==$validator_version (pip)"
    if ! PIP_ROOT_USER_ACTION=ignore "$py" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version" 2>/dev/null; then
        venv=${XDG_CACHE_HOME:-$HOME/.cache}/flashcrowd-kubernetes-validate
        "$py" -m venv "$venv"
        PIP_ROOT_USER_ACTION=ignore "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version"
        py=$venv/bin/python
    fi
fi
echo "validator: kubernetes-validate $("$py" -m kubernetes_validate --version 2>&1 | awk '{print $NF}')"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The Job manifests as they would be applied (sample values; render.sh checks their form).
mkdir -p "$work/rendered"
for m in "${manifests[@]}"; do
    RUN_ID=ci-check SEGMENTS=4 START_AT=2026-11-11T00:00:00+08:00 IMAGE=registry.example.com/flashcrowd:0.1.0 \
        sh "$here/render.sh" "$here/$m" >"$work/rendered/$m" || fail "render.sh $m"
    if grep -n '^[^#]*\${[A-Z_]*}' "$work/rendered/$m"; then fail "$m: a placeholder is left after rendering"; fi
done

for v in $kube_versions; do
    echo "== Kubernetes $v, strict"
    if ! (cd "$work/rendered" && "$py" -m kubernetes_validate --strict --kubernetes-version "$v" "${manifests[@]}"); then
        fail "schema validation for Kubernetes $v"
    fi
done

echo "== helper scripts"
for s in segment.sh merge.sh render.sh; do
    if sh -n "$here/$s"; then echo "ok: $s parses"; else fail "$s does not parse"; fi
done

echo "== ConfigMap"
# Lays the ConfigMap out as the pod's /scenario volume and compares the CSVs with scenarios/data.
if "$py" - "$here/scenario-configmap.yaml" "$root/scenarios/data" "$work/scenario" <<'PY'
import pathlib, sys, yaml
cm = yaml.safe_load(open(sys.argv[1]))
data_dir, out = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
(out / "data").mkdir(parents=True)
(out / "double11-countdown.yaml").write_text(cm["data"]["double11-countdown.yaml"])
size = sum(len(v.encode()) for v in cm["data"].values())
ok = True
for name in ("users.csv", "skus.csv"):
    (out / "data" / name).write_text(cm["data"][name])
    if cm["data"][name] != (data_dir / name).read_text():
        print(f"FAIL: {name} in the ConfigMap differs from scenarios/data/{name}", file=sys.stderr)
        ok = False
    else:
        print(f"ok: {name} equals scenarios/data/{name}")
if size > 1024 * 1024:
    print(f"FAIL: the ConfigMap holds {size} bytes, over the 1 MiB limit", file=sys.stderr)
    ok = False
else:
    print(f"ok: {size} bytes of data (a ConfigMap holds at most 1 MiB)")
sys.exit(0 if ok else 1)
PY
then :; else fail "ConfigMap content"; fi

bin=${FLASHCROWD:-}
if [ -z "$bin" ]; then
    bin=$(command -v flashcrowd || true)
fi
for b in "$root/target/debug/flashcrowd" "$root/target/release/flashcrowd"; do
    if [ -z "$bin" ] && [ -x "$b" ]; then bin=$b; fi
done
if [ -n "$bin" ] && [ -f "$work/scenario/double11-countdown.yaml" ]; then
    if "$bin" validate "$work/scenario/double11-countdown.yaml"; then
        echo "ok: the scenario passes flashcrowd validate ($bin)"
    else
        fail "flashcrowd validate on the ConfigMap's scenario"
    fi
else
    echo "skipped: flashcrowd validate (no binary: set FLASHCROWD=path or build first)"
fi

if [ "$errors" -gt 0 ]; then
    echo "examples/kubernetes: $errors check(s) failed" >&2
    exit 1
fi
echo "examples/kubernetes: all checks passed"
