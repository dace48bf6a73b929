#!/usr/bin/env bash
# CPU threads, one run: all-MiniLM-L6-v2 shapes (batch 1, 128 and 512 tokens) and TinyLlama-1.1B shapes
# (pp512, tg) at 1 and 2 threads, f32, random weights, plus "2 threads, kernels on one": the generated
# kernels unsplit (KILN_THREADS_GRAIN=2^60) with OpenBLAS at 2 threads, which is what kiln did before
# kernels took a range. Runs alternate by model so that load from other processes spreads over the configs.
# usage: bench/threads.sh [WORK_DIR]   (~5 GB of disk for the TinyLlama weights; ~15 min on 2 cores)
# Environment: KILN (default build/bin/kiln), REPS (default 5), TG (tg tokens, default 32).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/bin/kiln}
WORK=${1:-build/bench}
REPS=${REPS:-5}
TG=${TG:-32}
mkdir -p "$WORK"
echo "# kiln bench threads, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
grep -m1 "model name" /proc/cpuinfo || true

model() { # NAME -> model dir (f32)
  local dir="$WORK/$1-f32"
  [ -f "$dir/model.safetensors" ] || "$KILN" synth "bench/configs/$1.json" -o "$dir" --seed 1 --dtype f32 >&2
  echo "$dir"
}
minilm="$WORK/minilm-threads.kiln"
[ -f "$minilm" ] || "$KILN" compile "$(model all-minilm-l6-v2)" -o "$minilm" --max-batch 1 --max-context 512 >&2
llama="$WORK/tinyllama-threads.kiln"
[ -f "$llama" ] || "$KILN" compile "$(model tinyllama-1.1b)" -o "$llama" --max-context 1024 >&2

configs=("1 thread|1|" "2 threads, kernels on one (before)|2|1152921504606846976" "2 threads|2|")
run() { # ARTIFACT ARGS...
  for c in "${configs[@]}"; do
    IFS='|' read -r label threads grain <<<"$c"
    echo "### $label"
    if [ -n "$grain" ]; then
      KILN_THREADS_GRAIN=$grain "$KILN" bench "$@" --threads "$threads" -r "$REPS"
    else
      env -u KILN_THREADS_GRAIN "$KILN" bench "$@" --threads "$threads" -r "$REPS"
    fi
  done
}
echo "## all-minilm-l6-v2 f32, batch 1 x 128 tokens"
run "$minilm" -p 128
echo "## all-minilm-l6-v2 f32, batch 1 x 512 tokens"
run "$minilm" -p 512
echo "## tinyllama-1.1b f32, pp512 and tg$TG"
run "$llama" -p 512 -n "$TG"
