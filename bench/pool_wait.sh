#!/usr/bin/env bash
# Runs waiting for the `gpu` pool: four demo partitions launched at once through the CLI on one instance, first run
# (caches removed) then a rerun with nothing to encode, with hf_assets' sleeping wait and with Dagster's own spinning
# one (the baseline: dagster_internals.sleep_while_steps_wait_for_pools made a no-op), side by side on this machine.
#   bash bench/pool_wait.sh        # from the repository root, after `make venv`
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PY=$ROOT/.venv/bin/python
CONFIG=$(cd "$ROOT" && HF_HUB_OFFLINE=1 $PY -c "from examples.make_demo_data import build_demo_data as b; print(b('$WORK/demo'))" | tail -1)
mkdir -p "$WORK/home" "$WORK/spinning"
cp "$ROOT/dagster.yaml" "$WORK/home/"
printf 'import hf_assets.dagster_internals as m\nm.sleep_while_steps_wait_for_pools = lambda: None\n' > "$WORK/spinning/sitecustomize.py"
export DAGSTER_HOME=$WORK/home HF_ASSETS_DATALOADER_CONFIG=$CONFIG HF_HUB_OFFLINE=1

four_at_once() {  # label, PYTHONPATH
  local start; start=$(date +%s.%N); : > "$WORK/cpu.txt"
  for p in photos grids local-folder sks-photos; do
    (PYTHONPATH=$2 /usr/bin/time -a -o "$WORK/cpu.txt" -f "%U %S %x" "$ROOT/.venv/bin/dagster" asset materialize \
      -m hf_assets.definitions --select '*' --partition "$p" > "$WORK/$p.log" 2>&1) &
    sleep 1
  done
  wait
  $PY - "$1" "$start" "$WORK/cpu.txt" <<'PYEOF'
import sys, time
label, start, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rows = [line.split() for line in open(path)]
cpu = sum(float(u) + float(s) for u, s, _ in rows)
print(f"| {label} | {time.time() - start:.1f} | {cpu:.1f} | {' '.join(r[2] for r in rows)} |")
PYEOF
}

echo "| runs | wall s | CPU s (4 processes) | exit codes |"
echo "|---|---|---|---|"
for mode in sleeping spinning; do
  path=$ROOT; [ "$mode" = spinning ] && path=$WORK/spinning:$ROOT
  rm -rf "$(dirname "$CONFIG")/cache"
  four_at_once "$mode, first run" "$path"
  four_at_once "$mode, rerun" "$path"
done
