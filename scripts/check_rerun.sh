#!/usr/bin/env bash
# Shows that changing one method's params invalidates only that method's stages.
# Run after a finished `dvc repro`: temporarily edits methods.<M>.<KEY> in params.yaml (restored
# on exit), asks `dvc status --json` which stages changed, and fails unless they are exactly
# train@X, eval@X (all of X's cells, one process) and (for the theta method) panini_theta@X for
# the methods X whose resolved entry changed (M itself, plus entries that inherit M's block through
# a YAML anchor, e.g. panini -> panini_sr -> panini_catconv), plus the always-run preflight.
# `report` then reruns as their downstream (see `dvc repro --dry`).
#   usage: scripts/check_rerun.sh [METHOD] [KEY] [VALUE]  (default: panini_catconv fusion dafi)
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-panini_catconv}; KEY=${2:-fusion}; VAL=${3:-dafi}
cp params.yaml .params.yaml.bak
trap 'mv .params.yaml.bak params.yaml' EXIT
python - "$M" "$KEY" "$VAL" <<'PY'
import sys, re
m, key, val = sys.argv[1:]
text = open("params.yaml").read()
# edit the key inside the methods.<m> block (indented two spaces under `methods:`)
pat = re.compile(rf"(^  {re.escape(m)}:.*?\n(?:    .*\n)*?    {re.escape(key)}: )([^\n#]*)", re.M)
new, n = pat.subn(lambda g: g.group(1) + val + " ", text, count=1)
if n != 1:
    sys.exit(f"methods.{m}.{key} not found as a block key in params.yaml")
open("params.yaml", "w").write(new)
PY
dvc status --json > .dvc_status.json || true
python - <<'PY'
import json, sys, yaml
st = json.load(open(".dvc_status.json"))
old, new = yaml.safe_load(open(".params.yaml.bak")), yaml.safe_load(open("params.yaml"))
pl = old["pipeline"]
methods = sorted(k for k in new["methods"] if new["methods"][k] != old["methods"].get(k))
changed = set(st) - {"preflight"}
want = set()
for m in methods:
    if m in pl["train"]:
        want |= {f"train@{m}", f"eval@{m}"}
    elif m in (pl.get("imported") or {}):
        want |= {f"import@{m}", f"eval_imported@{m}"}
    else:
        continue  # defined but not part of this profile's pipeline: nothing reruns
    if m in (pl.get("theta") or {}):
        want.add(f"panini_theta@{m}")
print("method entries changed:", ", ".join(methods))
print("stages invalidated:", ", ".join(sorted(changed)) or "none")
if not methods or changed != want:
    sys.exit(f"FAIL: expected exactly {sorted(want)}; extra {sorted(changed - want)}, "
             f"missing {sorted(want - changed)}")
print(f"OK: only the stages of {', '.join(methods)} rerun ({len(want)} stages)")
PY
rm -f .dvc_status.json
