#!/usr/bin/env bash
# VAE encode throughput on a GPU machine: bare VAE forward vs update_latents vs a naive per-image loop, at 512^2
# (batch 16) and 1024^2 (batch 4) in bf16, with the real SD/SDXL AutoencoderKL architecture (random weights),
# square targets, plus 1024^2 with mixed aspect buckets. Markdown on stdout, progress on stderr:
#
#     bash bench/gpu_encode.sh > bench/out/gpu.md
#
# Needs this repo with its venv (.venv) or an environment where `pip install -e .` was run; no network
# (HF_HUB_OFFLINE=1). Environment overrides: PYTHON (interpreter), VAE (a diffusers pipeline or AutoencoderKL
# folder, e.g. a local SDXL checkout), WORKERS (decode threads, default 4 as the EncoderResource),
# REPEAT (interleaved repeats, best reported; default 2). Extra arguments go to every run,
# e.g. `bash bench/gpu_encode.sh --channels-last`. About 5-10 minutes on one H100 (mostly the naive loops and
# generating the 512 + 160 test JPEGs, which are cached under bench/out/encode/data for later runs).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
export HF_HUB_OFFLINE=1
mkdir -p bench/out/encode

common=(--device cuda --dtype bf16 --workers "${WORKERS:-4}" --repeat "${REPEAT:-2}" --bare-nchw)
if [ -n "${VAE:-}" ]; then common+=(--vae "$VAE"); fi

echo "# GPU encode benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(hostname))"
echo
echo '```'
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>/dev/null || true
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
echo "command: bash bench/gpu_encode.sh $*"
echo '```'
echo

failed=0
run() {
  local tag=$1; shift
  echo ">>> $tag" >&2
  if ! "$PY" -m bench.bench_encode "${common[@]}" "$@" --json "bench/out/encode/gpu_${tag}.json"; then
    echo "**$tag failed** (see stderr)"
    failed=1
  fi
  echo
}

run 512_square  --resolution 512  --batch 16 --images 512 --aspect square "$@"
run 1024_square --resolution 1024 --batch 4  --images 160 --aspect square "$@"
run 1024_mixed  --resolution 1024 --batch 4  --images 160 --aspect mixed  "$@"
exit $failed
