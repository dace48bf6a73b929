#!/usr/bin/env bash
# f32 vs f16 vs bf16 weights on the CPU in one run (issue 11, item 1: 16-bit weights read in place).
# Synthesizes TinyLlama-1.1B-shaped random-weight models in each dtype (kiln synth), compiles them with
# --synthetic-weights 1 (the artifact stores no weight bytes; the runtime generates the same values at load)
# and runs `kiln bench` on each in turn, ROUNDS times, so the machine's load hits all three alike.
# usage: bench/half-weights.sh [WORK_DIR]   (~9 GB of disk for the synthesized models, ~5 GB of memory)
# Environment: KILN (default build/bin/kiln), THREADS (2), PP (512), TG (128), REPS (3), ROUNDS (2),
# CPU (--cpu for the kernels, default native; x86-64-v3 for artifacts benchmarked on another machine).
# Artifacts already in WORK_DIR are reused as they are (a runtime-only build can bench artifacts compiled
# elsewhere: they hold no weights, ~1 MB each).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/bin/kiln}
WORK=${1:-build/bench-half}
THREADS=${THREADS:-2}; PP=${PP:-512}; TG=${TG:-128}; REPS=${REPS:-3}; ROUNDS=${ROUNDS:-2}; CPU=${CPU:-native}
mkdir -p "$WORK"
echo "# kiln bench f32 / f16 / bf16, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD)," \
     "load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for dt in f32 f16 bf16; do
  dir="$WORK/tinyllama-1.1b-$dt"
  [ -f "$dir.kiln" ] && continue
  [ -f "$dir/model.safetensors" ] || "$KILN" synth bench/configs/tinyllama-1.1b.json -o "$dir" --seed 1 --dtype "$dt" >&2
  "$KILN" compile "$dir" -o "$dir.kiln" --max-context 1024 --synthetic-weights 1 --cpu "$CPU" 2>&1 |
    grep -E "cpu weights|error" >&2 || true
done
for round in $(seq "$ROUNDS"); do
  for dt in f32 f16 bf16; do
    echo "## round $round, tinyllama-1.1b $dt, load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$KILN" bench "$WORK/tinyllama-1.1b-$dt.kiln" -p "$PP" -n "$TG" -r "$REPS" --threads "$THREADS" | grep -E "^\| Llama"
  done
done
