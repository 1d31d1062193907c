#!/usr/bin/env bash
# Validates the Kubernetes example offline, for a person or CI:
#  1. the kustomizations render with `kubectl kustomize` (built into kubectl): base/ and the
#     overlay rehearsal/, as `kubectl apply -k` would apply them. kubectl comes from PATH, or
#     $KUBECTL; when there is none it is installed from Debian (kubernetes-client: kubectl 1.20,
#     whose kustomize v2 is the oldest the files are written for). $KUBECTL_ALSO names more
#     kubectl binaries to render with: each must give the same objects;
#  2. every manifest against the Kubernetes JSON schema, strictly (unknown fields are errors), for
#     the oldest and the newest Kubernetes version we claim, with kubernetes-validate from PyPI
#     (it bundles the schemas: no cluster, no network once installed; installed here if missing):
#     the rendered base and overlay, the ConfigMap and the PVC;
#  3. the overlay's settings: SEGMENTS equal to the generator Job's completions and parallelism,
#     RUN_ID and START_AT of the right form, the image set in every container, every reference
#     to the run's settings naming the generated ConfigMap;
#  4. the helper scripts parse (sh -n);
#  5. the CSV files in the ConfigMap equal scenarios/data/;
#  6. the scenario in the ConfigMap passes `flashcrowd validate`, laid out as a pod sees it, when a
#     flashcrowd binary is at hand ($FLASHCROWD, PATH, or target/{debug,release}); skipped if not.
# Exits non-zero on any error.
#
#   bash examples/kubernetes/validate.sh
#   KUBE_VERSIONS="1.33.0" bash examples/kubernetes/validate.sh
#   KUBECTL_ALSO=/path/to/kubectl-1.20 bash examples/kubernetes/validate.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
validator_version=1.37.0                       # the kubernetes-validate release pinned here
kube_versions=${KUBE_VERSIONS:-"1.31.0 1.37.0"} # 1.31: podFailurePolicy is GA; 1.37: the newest it ships
manifests=(scenario-configmap.yaml reports-pvc.yaml)   # applied once with -f (README.md, step 2)
kustomizations=(base rehearsal)                        # rendered; rehearsal/ is the overlay

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

# kubectl, for `kubectl kustomize`: from PATH (or $KUBECTL), else Debian's (as root).
kubectl=${KUBECTL:-kubectl}
if ! command -v "$kubectl" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing kubectl (Debian's kubernetes-client)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
    fi
fi
if ! command -v "$kubectl" >/dev/null; then
    echo "FAIL: no kubectl (set KUBECTL=path, or install one: apt-get install kubernetes-client)" >&2
    exit 1
fi
kubectl_version() { "$1" version --client 2>/dev/null | grep -Eo 'v[0-9]+\.[0-9]+\.[0-9]+' | head -1; }
echo "kubectl: $(command -v "$kubectl") $(kubectl_version "$kubectl")"

# The kustomizations, rendered as `kubectl apply -k` would apply them.
mkdir -p "$work/rendered"
echo "== kubectl kustomize"
for k in "${kustomizations[@]}"; do
    if "$kubectl" kustomize "$here/$k" >"$work/rendered/$k.yaml" 2>"$work/$k.err"; then
        echo "ok: $k/ renders ($(grep -c '^kind:' "$work/rendered/$k.yaml") objects)"
    else
        cat "$work/$k.err" >&2
        fail "kubectl kustomize $k/"
    fi
done

# Objects as data, for comparing two renderings: documents sorted by kind and name, empty maps
# dropped, the generated ConfigMap's hash suffix (each kustomize version hashes its own way)
# replaced by HASH.
normalize() {
    "$py" - "$1" <<'PY'
import json, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
text = re.sub(r"(flashcrowd-run)-[a-z0-9]{10}\b", r"\1-HASH", json.dumps(docs))
def clean(o):
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items() if v not in ({}, None)}
    if isinstance(o, list):
        return [clean(v) for v in o]
    return o
docs = sorted((clean(d) for d in json.loads(text)), key=lambda d: (d["kind"], d["metadata"]["name"]))
print(json.dumps(docs, indent=1, sort_keys=True))
PY
}
for other in ${KUBECTL_ALSO:-}; do
    for k in "${kustomizations[@]}"; do
        if ! "$other" kustomize "$here/$k" >"$work/other.yaml" 2>"$work/other.err"; then
            cat "$work/other.err" >&2
            fail "$other kustomize $k/"
            continue
        fi
        if diff <(normalize "$work/rendered/$k.yaml") <(normalize "$work/other.yaml") >"$work/other.diff"; then
            echo "ok: $k/ renders the same objects with $other $(kubectl_version "$other")"
        else
            cat "$work/other.diff" >&2
            fail "$k/ renders differently with $other"
        fi
    done
done

cp "${manifests[@]/#/$here/}" "$work/rendered/"
for v in $kube_versions; do
    echo "== Kubernetes $v, strict"
    if ! (cd "$work/rendered" && "$py" -m kubernetes_validate --strict --kubernetes-version "$v" \
        "${manifests[@]}" "${kustomizations[@]/%/.yaml}"); then
        fail "schema validation for Kubernetes $v"
    fi
done

echo "== the run's settings"
for k in "${kustomizations[@]}"; do
    if ! "$py" - "$work/rendered/$k.yaml" "$k" <<'PY'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
where = sys.argv[2] + "/"
errors = []
settings = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("flashcrowd-run-")]
if len(settings) != 1:
    sys.exit(f"FAIL: {where}: want one generated ConfigMap flashcrowd-run-HASH, found {len(settings)}")
cm = settings[0]
data = cm.get("data", {})
if not re.fullmatch(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", data.get("RUN_ID", "")):
    errors.append(f"RUN_ID=`{data.get('RUN_ID')}`: use 1-40 lowercase letters, digits and '-', starting with a letter")
if not re.fullmatch(r"[1-9][0-9]*", data.get("SEGMENTS", "")):
    errors.append(f"SEGMENTS=`{data.get('SEGMENTS')}` is not a positive whole number")
if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})", data.get("START_AT", "")):
    errors.append(f"START_AT=`{data.get('START_AT')}` is not an RFC 3339 instant like 2026-11-11T00:00:00+08:00")
job = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "flashcrowd")
for f in ("completions", "parallelism"):
    if str(job["spec"][f]) != data.get("SEGMENTS"):
        errors.append(f"the generator Job's {f} is {job['spec'][f]}, SEGMENTS is {data.get('SEGMENTS')}: they must be equal")
images = set()
for d in docs:
    pod = d.get("spec", {}).get("template", {}).get("spec", {})
    for c in pod.get("containers", []):
        images.add(c["image"])
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["name"] != cm["metadata"]["name"]:
                errors.append(f"{d['metadata']['name']}: env {e['name']} reads ConfigMap {ref['name']}, not {cm['metadata']['name']}")
            if ref and ref["key"] not in data:
                errors.append(f"{d['metadata']['name']}: env {e['name']} reads key {ref['key']}, which the settings lack")
if where == "rehearsal/":
    if images & {"flashcrowd", "flashcrowd:latest"} or len(images) != 1:
        errors.append(f"the images are {sorted(images)}: the overlay's `images:` must name one for every container")
    if any(d["metadata"].get("namespace") != "loadtest" for d in docs):
        errors.append("every object must be in the namespace loadtest")
for e in errors:
    print(f"FAIL: {where}: {e}", file=sys.stderr)
if not errors:
    print(f"ok: {where} RUN_ID={data['RUN_ID']} SEGMENTS={data['SEGMENTS']} START_AT={data['START_AT']} image {', '.join(sorted(images))}")
sys.exit(1 if errors else 0)
PY
    then fail "$k/: the run's settings"; fi
done

echo "== helper scripts"
for s in segment.sh merge.sh; do
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
