#!/usr/bin/env bash
# CPU seconds per repetition, for comparisons on a loaded machine (where wall time is not a measurement: other
# processes take the cores, and llama.cpp's spinning threads wait on a descheduled peer). Each command runs with
# -r 1 and with -r 1+EXTRA; (user + sys of the second - of the first) / EXTRA is the CPU time of EXTRA
# repetitions without the model load and the warm-up. The commands alternate ALTERNATIONS times; the table
# gives the median and the range of the per-repetition figures, and tokens per CPU second. On one thread
# CPU time is the work; on two it also counts spinning (kiln's pool and llama.cpp's threads spin between kernels).
# usage: bench/cpu-time.sh TOKENS NAME1 'COMMAND1 ...' [NAME2 'COMMAND2 ...' ...]
#   each COMMAND ends where `-r N` is appended (kiln bench ... and llama-bench ... both take -r).
# Environment: EXTRA (10), ALTERNATIONS (3).
# Example: bench/cpu-time.sh 512 kiln 'build/bin/kiln bench M.kiln -p 512 -n 0 --threads 1' \
#            llama.cpp 'bench/peers/bin/llama-bench -m M.gguf -embd 1 -p 512 -n 0 -t 1'
set -euo pipefail
[ $# -ge 3 ] && [ $(( ($# - 1) % 2 )) = 0 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
TOKENS=$1; shift
EXTRA=${EXTRA:-10}
ALTERNATIONS=${ALTERNATIONS:-3}
cpu() { # COMMAND REPS -> user + sys seconds
  local out; out=$(mktemp)
  /usr/bin/time -f "%U %S" -o "$out" bash -c "$1 -r $2 >/dev/null 2>&1" || { echo "cpu-time.sh: '$1 -r $2' failed" >&2; exit 1; }
  awk '{ print $1 + $2 }' "$out"; rm -f "$out"
}
samples=$(mktemp)
for a in $(seq "$ALTERNATIONS"); do
  i=0; args=("$@")
  while [ $i -lt ${#args[@]} ]; do
    name=${args[$i]} cmd=${args[$((i + 1))]}
    one=$(cpu "$cmd" 1) many=$(cpu "$cmd" $((1 + EXTRA)))
    echo -e "$name\t$(python3 -c "print(($many - $one) / $EXTRA)")" | tee -a "$samples" >&2
    i=$((i + 2))
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg); $ALTERNATIONS alternations, $EXTRA repetitions each, $TOKENS tokens a repetition"
python3 - "$samples" "$TOKENS" <<'PY'
import collections, statistics, sys
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, s = line.split("\t")
    by[name].append(float(s))
tokens = int(sys.argv[2])
print("| system | CPU s per repetition: median (min .. max) | tokens per CPU second |")
print("|---|---|---:|")
for name, v in by.items():
    m = statistics.median(v)
    print(f"| {name} | {m:.4f} ({min(v):.4f} .. {max(v):.4f}) | {tokens / m:.0f} |")
PY
rm -f "$samples"
