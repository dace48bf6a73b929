#!/usr/bin/env bash
# The device call of the cooperative-matrix GEMM (issue 10, item 6). Prepare here with
#   bash tools/build.sh && [BASE_KILN=/path/to/main/kiln] bash bench/coopmat-prepare.sh
# then run on the GPU machine: carry [".gl", ".h200"], command `bash bench/coopmat-gpu.sh` (about 2-3 minutes;
# H=DIR when prepared into another folder).
# Prints, in order: the card; (a) the kernel cases vs the interpreter (kiln_spirv_replay: every block of
# kGpuCoopmatTiles and the compiler's choice on awkward sizes, f16 / bf16 / f32 weights; the FAIL lines, the
# worst error per block and the count); (b) the TinyLlama-1.1B prefill GEMM shapes at M = 512 (one layer,
# --synthetic-weights 1) for each block, the compiler's choice ("auto"), the scalar tiles and, when prepared,
# main's kernels ("base"): TFLOP/s and ms per dispatch from KILN_PROFILE=1 kiln bench -p 512 -n 0 -r R
# (the GPU timestamps of each dispatch), the best block per shape, and the prefill's GPU ms; last, pp512 of the
# whole TinyLlama-1.1B (f16, 22 layers) with the compiler's blocks (new) and main's kernels (base).
# env: R (repetitions, default 10), TILES (the labels to time, default every tl1-*.kiln prepared).
. "$(dirname "$0")/gpu-env.sh" # H: the carried folder bench/coopmat-prepare.sh wrote
C=$H/coopmat
card
echo "== (a) cooperative-matrix kernel cases vs the interpreter (kiln_spirv_replay)"
ls $C/replay/cases/*.rpl >/dev/null 2>&1 || echo "no cases in $C/replay/cases: rerun bench/coopmat-prepare.sh"
replay $C
echo "replay exit code $?"
grep -E "^device|^cooperative" /tmp/replay.txt
grep -vE "^PASS|^device|^cooperative" /tmp/replay.txt | head -15
python3 bench/replay_worst.py --blocks /tmp/replay.txt
echo "== (b) TinyLlama-1.1B prefill GEMMs, M = 512: TFLOP/s and ms per dispatch (KILN_PROFILE GPU timestamps)"
labels=()
for f in $C/*.kiln; do
  t=$(basename $f .kiln); t=${t#tl1-}
  if [ -n "${TILES:-}" ] && [[ " $TILES " != *" $t "* ]]; then continue; fi
  KILN_PROFILE=1 timeout 60 $K bench $f -p 512 -n 0 -r ${R:-10} > /tmp/prof-$t.txt 2>&1 \
    || { echo "$t: exit $?"; tail -3 /tmp/prof-$t.txt; }
  labels+=("$t=/tmp/prof-$t.txt")
done
python3 bench/coopmat_table.py 512 "${labels[@]}"
echo "== TinyLlama-1.1B (22 layers, f16): kiln bench -p 512 -n 0 -r 5, this tree (new) and main (base), alternating"
for round in 1 2; do
  for side in new base; do
    [ -f $C/full/$side.kiln ] || continue
    echo "-- $side"
    timeout 120 $K bench $C/full/$side.kiln -p 512 -n 0 -r 5 2>&1 | grep -E "^\| Llama|wall"
  done
done
