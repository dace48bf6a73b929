#!/usr/bin/env bash
# bench/threads.sh's comparison on the device machine's CPU (prepared by bench/cpu-threads-prepare.sh; carry
# [".cput"]): all-MiniLM-L6-v2 shapes (batch 1 x 128 and x 512 tokens) and TinyLlama-1.1B shapes (pp512, tg16
# at depth 1024), f32, at THREADS (default "1 2 4 8 16"), each as: the kernels split (this tree), the kernels
# unsplit (KILN_THREADS_GRAIN=2^60: OpenBLAS threaded, kiln's kernels on one thread, as before issue 14) and
# the artifact of the tree before the blocked attention kernel (when .cput/models/*-before.kiln exist).
# One table: median, range, mean +- stddev of tokens/s per model, config and test.
set -u
cd "$(dirname "$0")/.."
mkdir -p /tmp/rt; for f in .cput/rt/*.deb; do dpkg -x "$f" /tmp/rt; done
export LD_LIBRARY_PATH=/tmp/rt/usr/lib/x86_64-linux-gnu:/tmp/rt/usr/lib/x86_64-linux-gnu/openblas-pthread
K=.cput/bin/kiln
M=.cput/models
lscpu | grep -E "Model name|^CPU\(s\)|Thread|NUMA node\(s\)" ; uptime
echo "| model | threads | config | test | tokens/s median | range | mean +- stddev | reps |"
echo "|---|---:|---|---|---:|---|---|---:|"
bench() { # THREADS CONFIG MODEL ARGS...
  local threads=$1 config=$2 name=$3; shift 3
  local art=$M/$name.kiln grain=""
  case $config in
    unsplit) grain=1152921504606846976 ;;
    before) art=$M/$name-before.kiln; [ -f "$art" ] || return 0 ;;
  esac
  env -u KILN_THREADS_GRAIN ${grain:+KILN_THREADS_GRAIN=$grain} $K bench "$art" --threads "$threads" "$@" --json |
    python3 -c '
import json, sys
doc = json.load(sys.stdin)
for t in doc["tests"]:
    s = t.get("tokens_per_second", t)  # encoders: tokens/s
    print("| %s | %s | %s | %s | %.1f | %.1f .. %.1f | %.1f +- %.1f | %d |" % (sys.argv[3], sys.argv[1], sys.argv[2],
          t["test"], s["median"], s["min"], s["max"], s["mean"], s["stddev"], doc["repetitions"]))' "$threads" "$config" "$name"
}
for t in ${THREADS:-1 2 4 8 16}; do
  for c in split unsplit before; do
    bench $t $c minilm -p 128 -r 5
    bench $t $c minilm -p 512 -r 5
    bench $t $c tinyllama -p 512 -n 0 -r 3
  done
  for c in split before; do bench $t $c tinyllama -p 0 -n 16 -d 1024 -r 2; done
done
uptime
