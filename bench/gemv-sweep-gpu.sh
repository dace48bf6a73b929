#!/usr/bin/env bash
# The device call of bench/gemv-sweep-prepare.sh: ROUNDS (2) rounds over every .h200/sweep/*.kiln, alternating,
# of `kiln bench -p 0 -n 128 -r 3` (decode), the median tokens/s per artifact over the rounds; then
# KILN_PROFILE=1 per-kernel shares of a decode step of each f16 artifact named in PROFILE (default: base and
# 4_2048_2, the default tuning). Prints the card first; compare figures only within one call.
. "$(dirname "$0")/gpu-env.sh"
card
# One file of "ARTIFACT TOKENS_PER_S" lines under $OUT (a call cut short still brings back the rounds it ran; one
# file, since a call brings back only so many).
R=${OUT:-/tmp}/sweep-rounds.txt; : > $R
for r in $(seq ${ROUNDS:-2}); do
  for m in .h200/sweep/*.kiln; do
    echo "$(basename $m .kiln) $(timeout 60 $K bench $m -p 0 -n 128 -r 3 2>&1 | grep -oE 'tg128 \| [0-9.]+' | awk '{print $3}')" >> $R
  done
done
sort $R | awk '{v[$1] = v[$1] " " $2} END {for (n in v) print n v[n]}' | sort | python3 -c "
import statistics, sys
for line in sys.stdin:
    name, *v = line.split()
    v = [float(x) for x in v]
    print(f'{name:24s} tg128 median {statistics.median(v):8.1f}  range {min(v):.1f} .. {max(v):.1f}  (n={len(v)})' if v else f'{name} failed')
"
for p in ${PROFILE:-base 4_2048_2}; do
  m=.h200/sweep/tl-f16-$p.kiln
  [ -f $m ] || continue
  echo "== KILN_PROFILE=1 decode, tl-f16-$p"
  KILN_PROFILE=1 timeout 60 $K bench $m -p 0 -n 64 -r 1 2>&1 | grep -E "GPU|%|stat" | head -40
done
