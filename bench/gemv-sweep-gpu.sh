#!/usr/bin/env bash
# The device call of bench/gemv-sweep-prepare.sh: ROUNDS (2) rounds over every .h200/sweep/*.kiln, alternating,
# of `kiln bench -p 512 -n 128 -r 3` (prefill and decode), the median tokens/s per artifact and test over the
# rounds; SPIN_OFF (tl-f16-4_8192_4) also runs with KILN_VULKAN_SPIN_US=0 as "NAME-spin0" (the fence's blocking
# wait, A/B). Then KILN_PROFILE=1 per-kernel shares of a decode step of each artifact named in PROFILE (an f16
# variant's name, or a whole one: tl-f32-4_8192_4; default: base and 4_8192_4, the default tuning). Prints the card first; compare figures only within one call.
. "$(dirname "$0")/gpu-env.sh"
card
# One file of "ARTIFACT TEST TOKENS_PER_S" lines under $OUT (a call cut short still brings back the rounds it
# ran; one file, since a call brings back only so many).
R=${OUT:-/tmp}/sweep-rounds.txt; : > $R
bench1() { # NAME ARTIFACT [ENV...]: one bench's pp512 and tg128 lines into $R
  local name=$1 m=$2
  shift 2
  env "$@" timeout 60 $K bench $m -p 512 -n 128 -r 3 2>&1 | grep -oE '(pp512|tg128) \| [0-9.]+' |
    awk -v n=$name '{print n, $1, $3}' >> $R
}
spin=.h200/sweep/${SPIN_OFF:-tl-f16-4_8192_4}.kiln
for r in $(seq ${ROUNDS:-2}); do
  for m in .h200/sweep/*.kiln; do bench1 $(basename $m .kiln) $m; done
  [ -f $spin ] && bench1 $(basename $spin .kiln)-spin0 $spin KILN_VULKAN_SPIN_US=0
done
python3 - $R <<'PY'
import collections, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, test, x = line.split()
    v[(name, test)].append(float(x))
for (name, test), x in sorted(v.items()):
    print(f'{name:24s} {test} median {statistics.median(x):9.1f}  range {min(x):.1f} .. {max(x):.1f}  (n={len(x)})')
PY
for p in ${PROFILE:-base 4_8192_4}; do
  n=$([[ $p == tl-* ]] && echo $p || echo tl-f16-$p) # a whole artifact name, or an f16 variant's
  m=.h200/sweep/$n.kiln
  [ -f $m ] || continue
  echo "== KILN_PROFILE=1 decode, $n"
  KILN_PROFILE=1 timeout 60 $K bench $m -p 0 -n 64 -r 1 2>&1 | grep -E "GPU|%|stat" | head -40
done
