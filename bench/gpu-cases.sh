#!/usr/bin/env bash
# Every reference case compiled for the GPU (.h200/cases/NAME.kiln + NAME.ref.safetensors + NAME.chunks, "-"
# for encoders: bench/vkperf-prepare.sh) against its Hugging Face reference, in the case's chunks and in one
# chunk, at 1e-3 (bench/compare.py). Called by bench/gpu.sh and bench/vkperf-gpu.sh on the GPU machine,
# with the environment they set up; K: the kiln binary (default .h200/bin/kiln).
K=${K:-.h200/bin/kiln}
for a in .h200/cases/*.kiln; do # NAME.kiln, and NAME.mm16.kiln (--matmul-precision f16) beside it
  n=$(basename $a .kiln); c=${n%.mm16}; ref=.h200/cases/$c.ref.safetensors; ch=$(cat .h200/cases/$c.chunks)
  if [ "$ch" = "-" ]; then scheds="one"; name=last_hidden_state; else scheds="$ch one"; name=logits; fi
  for s in $scheds; do
    args=""; [ "$s" != one ] && args="--chunks $s"
    if $K run $a --inputs $ref --outputs /tmp/o.st $args 2>/tmp/err; then
      echo "$n [$s]: $(python3 bench/compare.py /tmp/o.st $ref $name 1e-3)"
    else echo "$n [$s]: FAIL $(tail -1 /tmp/err)"; fi
  done
done
