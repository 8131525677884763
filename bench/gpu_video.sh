#!/usr/bin/env bash
# Video encode throughput on a GPU machine: bare AutoencoderKLWan forward vs the whole clip pipeline (PyAV decode,
# resize/crop, batching by size and frame count, cache writes), with Wan 2.1's real VAE architecture (random
# weights), bf16, at 480x832 (33 frames, batch 1) and 320x512 (33 frames, batch 4). Markdown on stdout:
#
#     bash bench/gpu_video.sh > bench/out/gpu_video.md
#
# Needs this repo with its venv (.venv) or an environment where `pip install -e .` was run; no network.
# Environment overrides: PYTHON, WORKERS (decode threads, default 4), REPEAT (default 2), CLIPS (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
export HF_HUB_OFFLINE=1

echo "# GPU video encode benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(hostname))"
echo '```'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
echo "cores: $(nproc); command: bash bench/gpu_video.sh $*"
echo '```'
common=(--device cuda --vae wan --dtype bf16 --frames 33 --clips "${CLIPS:-16}" --workers "${WORKERS:-4}"
        --repeat "${REPEAT:-2}")
failed=0
for spec in "832 480 1" "512 320 4"; do
  read -r w h b <<<"$spec"
  echo; echo "## ${w}x${h}x33, batch $b"; echo
  "$PY" -m bench.bench_video "${common[@]}" --width "$w" --height "$h" --batch "$b" "$@" || { echo "**failed**"; failed=1; }
done
exit $failed
