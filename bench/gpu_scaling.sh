#!/bin/bash
# Shard scaling on every GPU of this machine: 1, 2, 4 ... N worker processes, one GPU each, same plan.
# Uses the tiny VAE unless HF_ASSETS_MODEL names a pipeline (e.g. a local SDXL folder) for real-size figures.
set -euo pipefail
cd "$(dirname "$0")/.."
gpus=$(nvidia-smi -L | wc -l)
workers=1; list=""
while [ "$workers" -le "$gpus" ]; do list="$list $workers"; workers=$((workers * 2)); done
[ "$((workers / 2))" -eq "$gpus" ] || list="$list $gpus"
HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scaling --device cuda --workers $list \
  --images "${IMAGES:-2000}" --resolution "${RESOLUTION:-512}" --shards "$((gpus * 4))" --batch 8 \
  ${HF_ASSETS_MODEL:+--model "$HF_ASSETS_MODEL"}
