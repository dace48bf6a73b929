#!/usr/bin/env bash
# The device call of the quantized matmul_groups and small-rows variants (branch wt-vkqgroup). Prepare here with
#   bash tools/build.sh && [BASE_KILN=/path/to/main/kiln] bash bench/vkqgroup-prepare.sh
# then on the GPU machine: carry [".gl", ".h200"], command `bash bench/vkqgroup-gpu.sh` (H=DIR when prepared
# elsewhere). Prints: the card; (a) the quantized kernel cases vs the interpreter (kiln_spirv_replay: failures
# and the count); (b) per format, the decode step's GPU profile (KILN_PROFILE=1 kiln bench -p 0 -n 64 -r 1: the
# top kernels) of this tree (new) and main (base); (c) tg128 (kiln bench -p 0 -n 128 -r 5), new and base
# alternating, two rounds.
. "$(dirname "$0")/gpu-env.sh"
A=$H/vkq
card
echo "== (a) quantized kernel cases vs the interpreter (kiln_spirv_replay)"
replay $A
echo "replay exit code $?, $(grep -c ^PASS /tmp/replay.txt) PASS"
grep -vE "^PASS" /tmp/replay.txt | head -20
for fmt in q8_0 q4_0; do
  echo "== (b) $fmt decode profile: KILN_PROFILE=1 kiln bench -p 0 -n 64 -r 1"
  for side in new base; do
    [ -f $A/$side-$fmt.kiln ] || continue
    echo "-- $side"
    KILN_PROFILE=1 timeout 120 $K bench $A/$side-$fmt.kiln -p 0 -n 64 -r 1 2>&1 | head -40
  done
done
echo "== (c) tg128: kiln bench -p 0 -n 128 -r 5, new and base alternating"
for round in 1 2; do
  for fmt in q8_0 q4_0; do
    for side in new base; do
      [ -f $A/$side-$fmt.kiln ] || continue
      echo "-- $fmt $side"
      timeout 120 $K bench $A/$side-$fmt.kiln -p 0 -n 128 -r 5 2>&1 | grep -E "^\| Llama|wall"
    done
  done
done
