#!/usr/bin/env bash
# kiln's CPU benchmarks, llama-bench style. Synthesizes random-weight models at the real shapes of
# bench/configs (no hub needed), compiles them, and runs `kiln bench`:
#   tinyllama-1.1b (f32): pp512 and tg128, tokens/s, mean +- stddev over 5 repetitions after a warm-up
#   all-minilm-l6-v2 (f32): encoder throughput at batch 32 x 128 tokens
# Each model is compiled fused (the default) and with --no-fuse, so one run gives both.
# usage: bench/run.sh [WORK_DIR]   (needs ~10 GB of disk in WORK_DIR and ~12 GB of memory; ~30 min on 2 cores)
# Environment: KILN (default build/bin/kiln), THREADS (default 2), REPS (default 5), FUSE_MODES ("fused unfused").
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/bin/kiln}
WORK=${1:-build/bench}
THREADS=${THREADS:-2}
REPS=${REPS:-5}
FUSE_MODES=${FUSE_MODES:-fused unfused}
mkdir -p "$WORK"
echo "# kiln bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

model() { # NAME DTYPE -> model dir
  local dir="$WORK/$1-$2"
  [ -f "$dir/model.safetensors" ] || "$KILN" synth "bench/configs/$1.json" -o "$dir" --seed 1 --dtype "$2" >&2
  echo "$dir"
}

for mode in $FUSE_MODES; do
  flag=""; [ "$mode" = unfused ] && flag="--no-fuse"
  dir=$(model tinyllama-1.1b f32)
  art="$WORK/tinyllama-1.1b-f32-$mode.kiln"
  [ -f "$art" ] || /usr/bin/time -f "compile: %e s, peak %M KB" "$KILN" compile "$dir" -o "$art" --max-context 1024 $flag
  echo "## tinyllama-1.1b f32, $mode"
  "$KILN" bench "$art" -p 512 -n 128 -r "$REPS" --threads "$THREADS"

  dir=$(model all-minilm-l6-v2 f32)
  art="$WORK/all-minilm-l6-v2-f32-$mode.kiln"
  [ -f "$art" ] || /usr/bin/time -f "compile: %e s, peak %M KB" "$KILN" compile "$dir" -o "$art" --max-batch 32 --max-context 128 $flag
  echo "## all-minilm-l6-v2 f32, $mode, batch 32 x 128 tokens"
  "$KILN" bench "$art" -p 128 --batch 32 -r "$REPS" --threads "$THREADS"
done
