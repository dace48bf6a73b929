#!/usr/bin/env bash
# CPU threads and the attention kernel, one run, f32, random weights at the real shapes:
#   all-MiniLM-L6-v2 (batch 1 x 128 and x 512 tokens), TinyLlama-1.1B (pp512; tg16 at depth 1024)
# Configurations (the same artifact unless said):
#   1t            1 thread
#   2t-unsplit    2 threads, the generated kernels unsplit (KILN_THREADS_GRAIN=2^60), OpenBLAS at 2: kiln
#                 before its kernels took a range
#   2t            2 threads
#   2t-before     2 threads, artifact and runtime of $KILN_BEFORE (a build of this tree with
#                 codegen/cpu/lib/CpuCodegen.cpp of commit 906711f: the kernel ranges, the attention kernel
#                 before its key blocks; skipped when unset)
# One table: median, range (min .. max), mean +- stddev of tokens/s per model, config and test (kiln bench --json).
# usage: bench/threads.sh [WORK_DIR]   (~5 GB of disk for the TinyLlama weights; ~25 min on 2 quiet cores)
# Environment: KILN (default build/bin/kiln), KILN_BEFORE, REPS (default 5; TinyLlama uses 2, and 1 at depth).
# On a many-core host: bench/cpu-threads-prepare.sh and bench/cpu-threads-device.sh (1 to 16 threads).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/bin/kiln}
BEFORE=${KILN_BEFORE:-}
WORK=${1:-build/bench}
REPS=${REPS:-5}
mkdir -p "$WORK"
echo "# kiln bench threads, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
grep -m1 "model name" /proc/cpuinfo || true
uptime

model() { # NAME -> model dir (f32)
  local dir="$WORK/$1-f32"
  [ -f "$dir/model.safetensors" ] || "$KILN" synth "bench/configs/$1.json" -o "$dir" --seed 1 --dtype f32 >&2
  echo "$dir"
}
compile() { # BINARY NAME OUT ARGS...
  local bin=$1 name=$2 out=$3; shift 3
  [ -f "$out" ] || "$bin" compile "$(model "$name")" -o "$out" "$@" >&2
}
compile "$KILN" all-minilm-l6-v2 "$WORK/minilm.kiln" --max-batch 1 --max-context 512
compile "$KILN" tinyllama-1.1b "$WORK/tinyllama.kiln" --max-context 1040
if [ -n "$BEFORE" ]; then
  compile "$BEFORE" all-minilm-l6-v2 "$WORK/minilm-before.kiln" --max-batch 1 --max-context 512
  compile "$BEFORE" tinyllama-1.1b "$WORK/tinyllama-before.kiln" --max-context 1040
fi

bench() { # CONFIG MODEL(minilm|tinyllama) ARGS...
  local config=$1 name=$2; shift 2
  local bin=$KILN art="$WORK/$name.kiln" threads=2 grain=""
  case $config in
    1t) threads=1 ;;
    2t-unsplit) grain=1152921504606846976 ;;
    2t-before) [ -n "$BEFORE" ] || return 0; bin=$BEFORE; art="$WORK/$name-before.kiln" ;;
  esac
  env -u KILN_THREADS_GRAIN ${grain:+KILN_THREADS_GRAIN=$grain} "$bin" bench "$art" --threads "$threads" "$@" --json |
    python3 -c '
import json, sys
doc = json.load(sys.stdin)
for t in doc["tests"]:
    s = t.get("tokens_per_second", t)  # encoders: tokens/s
    print("| %-9s | %-10s | %-14s | %8.1f | %8.1f .. %-8.1f | %8.1f +- %-6.1f | %d |" % (sys.argv[2], sys.argv[1], t["test"], s["median"],
          s["min"], s["max"], s["mean"], s["stddev"], doc["repetitions"]))' "$config" "$name"
}
echo "| model | config | test | tokens/s median | range | mean +- stddev | reps |"
echo "|---|---|---|---:|---|---|---:|"
for p in 128 512; do
  for c in 1t 2t-unsplit 2t 2t-before; do bench $c minilm -p $p -r "$REPS"; done
done
for c in 1t 2t-unsplit 2t 2t-before; do bench $c tinyllama -p 512 -n 0 -r 2; done
for c in 2t 2t-before; do bench $c tinyllama -p 0 -n 16 -d 1024 -r 1; done
uptime
