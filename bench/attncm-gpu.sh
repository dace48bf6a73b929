#!/usr/bin/env bash
# The device call of the prefill attention on cooperative matrices (issue 10, item 6). Prepare here with
#   bash tools/build.sh && [BASE_KILN=/path/to/main/build/bin/kiln] bash bench/attncm-prepare.sh
# then run on the GPU machine: carry [".gl", ".h200"], command `bash bench/attncm-gpu.sh` (about a minute;
# H=DIR when prepared into another folder).
# Prints: the card; (a) the cooperative-matrix attention cases vs the interpreter (kiln_spirv_replay: PASS / FAIL
# per case, the worst error per kernel); (b) TinyLlama-1.1B f16, 512-token prefill: the attention dispatches'
# GPU ms per run from KILN_PROFILE=1 kiln bench -p 512 -n 0 -r R (GPU timestamps, barrier included) and the
# prefill's GPU ms, this tree (new: attention_..._tilecm64x32) and main (base: attention_..._tile8x32);
# (c) pp512 of both, alternating. env: R (repetitions, default 5).
. "$(dirname "$0")/gpu-env.sh"
A=$H/attncm
card
echo "== (a) cooperative-matrix attention cases vs the interpreter (kiln_spirv_replay)"
replay $A
echo "replay exit code $?"
grep -E "^device|^cooperative" /tmp/replay.txt
grep -vE "^PASS|^device|^cooperative" /tmp/replay.txt | head -20
python3 bench/replay_worst.py /tmp/replay.txt
echo "== (b) TinyLlama-1.1B f16 prefill, 512 tokens: KILN_PROFILE=1 kiln bench -p 512 -n 0 -r ${R:-5}"
for side in new base; do
  [ -f $A/tl-$side.kiln ] || continue
  echo "-- $side"
  KILN_PROFILE=1 timeout 120 $K bench $A/tl-$side.kiln -p 512 -n 0 -r ${R:-5} 2>&1 | grep -E "GPU [0-9.]+ ms per run|attention|^\| Llama"
done
echo "== (c) kiln bench -p 512 -n 0 -r 5, new and base alternating"
for round in 1 2; do
  for side in new base; do
    [ -f $A/tl-$side.kiln ] || continue
    echo "-- $side"
    timeout 120 $K bench $A/tl-$side.kiln -p 512 -n 0 -r 5 2>&1 | grep -E "^\| Llama|wall"
  done
done
