#!/usr/bin/env bash
# The GPU check of the encoder, for a short slot on a bare GPU machine without network (about 4-5 minutes on one
# H200): 1024^2 mixed buckets (3 sizes, 576 images) and 512^2 square (2048 images), bf16, the real SD/SDXL VAE
# architecture with random weights; bare forward eager NCHW / channels-last / compiled, the pipeline eager and
# compiled with Pillow and nvJPEG decode, the naive loop; compile time cold, then warm from the on-disk cache in a
# third process. Prints one table.
#
#   bash bench/gpu_check.sh --download   # HERE, with network: the wheels the GPU machine lacks, into .whl/
#   bash bench/gpu_check.sh              # THERE, from the repository root (carry .whl/ along)
#   GPU_CHECK_DRY=1 bash bench/gpu_check.sh   # here, on CPU, tiny sizes: the script end to end in a few minutes
#
# The machine is expected to have python3 with torch, torchvision, transformers, pyarrow and Pillow; diffusers and
# importlib_metadata come from .whl/ (pip install --no-index --no-deps --target /tmp/site). Every part runs under
# `timeout`, prints its own table as soon as it ends and writes its figures to JSON; a part that fails or runs out
# of time is a line of the final table, not the end of the check. Logs and JSON go to $OUT (else bench/out/gpu_check).
# Environment: PYTHON (default python3; the dry run uses .venv/bin/python when present), WHEELS (default .whl),
# GPU_CHECK_DRY=1 (cpu, tiny sizes), GPU_CHECK_DRY_COMPILE=1 (the dry run also compiles: slow on CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
# diffusers as pinned in pyproject.toml; importlib_metadata 8.7 needs only zipp (newer ones need lazy-importer)
PACKAGES=(diffusers==0.42.1 importlib_metadata==8.7.0)

if [ "${1:-}" = "--download" ]; then
  PY=${PYTHON:-python3}
  [ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
  mkdir -p "$WHEELS"
  exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "${PACKAGES[@]}"
fi

OUT_DIR=${OUT:-bench/out/gpu_check}
mkdir -p "$OUT_DIR"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [ -n "${GPU_CHECK_DRY:-}" ]; then
  PY=${PYTHON:-python3}
  [ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
  DEVICE=(--device cpu --vae tiny --dtype fp32 --latent-dtype fp32 --decode pillow,nvjpeg --workers 2)
  MODE=eager
  [ -n "${GPU_CHECK_DRY_COMPILE:-}" ] && MODE=compiled
  [ "$MODE" = compiled ] && DEVICE+=(--compile default) || DEVICE+=(--compile off)
  BIG=(--resolution 128 --images 12 --naive-images 3) SMALL=(--resolution 64 --images 8 --naive-images 3)
  WARM=(--resolution 128 --images 4 --bare-iters 1)
  T_BIG=600 T_WARM=300 T_SMALL=300
else
  PY=${PYTHON:-python3}
  DEVICE=(--device cuda --dtype bf16 --latent-dtype bf16 --decode pillow,nvjpeg --compile default)
  MODE=compiled
  # enough images that the pipeline's fixed costs (plan, first batch, last flush, commit: about 0.3 s) stay small
  BIG=(--resolution 1024 --images 576 --naive-images 24 --warmup 1 --bare-iters 2 --skip null)
  SMALL=(--resolution 512 --images 2048 --naive-images 32 --warmup 2 --bare-iters 3)
  WARM=(--resolution 1024 --images 24 --warmup 1 --bare-iters 1)
  T_BIG=170 T_WARM=30 T_SMALL=80
fi
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/hf_assets_compile_check.XXXX")  # empty: the first compile is cold
MIXED=(--aspect mixed --aspects 1,0.75,1.3333 --jitter 0)
started=$(date +%s)

echo "# hf_assets GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
  echo "cores: $(nproc); python: $("$PY" --version 2>&1)"
} | sed 's/^/    /'

if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$WHEELS"/*.whl >"$OUT_DIR/pip.log" 2>&1; then
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    echo "    installed from $WHEELS: $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')"
  else
    echo "    pip install from $WHEELS failed: $(tail -1 "$OUT_DIR/pip.log")"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
else
  echo "    no wheels in $WHEELS (run 'bash bench/gpu_check.sh --download' where pip reaches PyPI, carry $WHEELS)"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" - <<'EOF' 2>&1 | sed 's/^/    /'
import importlib
for name in ("torch", "torchvision", "diffusers", "transformers", "pyarrow", "PIL"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}", end="; ")
    except Exception as error:  # a missing package is a line here; the stage that needs it reports it too
        print(f"{name} UNAVAILABLE ({type(error).__name__}: {str(error)[:80]})", end="; ")
import torch
print(f"cuda available: {torch.cuda.is_available()}")
EOF

part() {  # part NAME TIMEOUT ARGS...: one bench_encode run under timeout; its table to stdout, its log to $OUT
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo
  echo "## $name"
  timeout --kill-after=10 "$limit" "$PY" -m bench.bench_encode "$@" --json "$OUT_DIR/$name.json" \
    2>"$OUT_DIR/$name.log"
  local code=$?
  echo "$code $(( $(date +%s) - t0 ))" >"$OUT_DIR/$name.exit"
  [ "$code" = 0 ] || echo "**$name: exit $code after $(( $(date +%s) - t0 )) s** (timeout 124/137); log tail: $(tail -2 "$OUT_DIR/$name.log" | tr '\n' ' ' | cut -c1-300)"
}

part 1024_mixed "$T_BIG" "${DEVICE[@]}" "${BIG[@]}" "${MIXED[@]}" --compile-cache "$CACHE" --time-budget $((T_BIG - 25))
part 512_square "$T_SMALL" "${DEVICE[@]}" "${SMALL[@]}" --aspect square --compile-cache "$CACHE" \
  --stages "bare_nchw,bare_compiled,pipeline_${MODE}_pillow,naive,pipeline_${MODE}_nvjpeg,bare_channels_last" \
  --time-budget $((T_SMALL - 20))
# a second process compiles 1024x1024 again: from the on-disk cache the first part filled
part 1024_warm_compile "$T_WARM" "${DEVICE[@]}" "${WARM[@]}" --aspect square --compile-cache "$CACHE" \
  --stages bare_compiled --time-budget $((T_WARM - 15))

echo
echo "## Summary ($(( $(date +%s) - started )) s)"
"$PY" -m bench.gpu_summary "$OUT_DIR" 1024_mixed 512_square 1024_warm_compile
rm -rf "$CACHE"
