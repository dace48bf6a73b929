#!/usr/bin/env bash
# The whole GPU bench in one device call (prepared by bench/gpu-prepare.sh [+ bench/gemv-sweep-prepare.sh] and
# bench/gpu-pack.sh; carry [".gl", ".h200/bin", ".h200/pack", ".h200/peer"]): the correctness checks
# (bench/gpu-checks.sh: every reference case vs HF on the GPU, the --matmul-precision f16 ones, q8_0 / q4_0 vs
# kiln eval --weights, the quantized GEMV replay cases), then kiln beside llama.cpp (bench/gpu.sh CHECKS=0:
# tokens/s, per-kernel profiles with each pipeline's registers), then the GEMV sweep when prepared
# (bench/gemv-sweep-gpu.sh). Each part's output goes under $OUT as it runs (checks.log, gpu.log with table.md
# and raw.tgz, sweep.log), each under a time limit so that the parts after it still run in the call's 600 s;
# the summaries are printed at the end; with an earlier tree's tl-f16 in the sweep (BASE_DIR), it and this tree's
# alternate last (base-ab.log). env: ROUNDS (gpu.sh's, default 1), GPU_PROFILE (gpu.sh's PROFILE, 1; 0: no per-format
# profiles, the sweep's f16 decode profiles only), SWEEP_ROUNDS (1).
O=${OUT:-/tmp/gpu}; mkdir -p $O
. "$(dirname "$0")/gpu-env.sh"
timeout 90 bash bench/gpu-checks.sh > $O/checks.log 2>&1
ROUNDS=${ROUNDS:-1} CHECKS=0 PROFILE=${GPU_PROFILE:-1} timeout 280 bash bench/gpu.sh > $O/gpu.log 2>&1
[ -d $H/sweep ] && ROUNDS=${SWEEP_ROUNDS:-1} timeout 170 bash bench/gemv-sweep-gpu.sh > $O/sweep.log 2>&1
# An earlier tree's TinyLlama f16 artifact (gemv-sweep-prepare.sh BASE_DIR) beside this tree's, prefill and decode,
# alternating, 2 rounds: what this tree's kernels changed, on this card.
if [ -f $H/sweep/tl-f16-base.kiln ]; then
  for r in 1 2; do
    for m in $H/sweep/tl-f16-base.kiln $H/models/tl-f16.kiln; do
      echo "$m round $r: $(timeout 60 $K bench $m -p 512 -n 128 -r 5 2>&1 | grep -oE '(pp512|tg128) \| [0-9.]+ ± [0-9.]+' | tr '\n' ' ')"
    done
  done > $O/base-ab.log 2>&1
fi
head -1 $O/checks.log
echo "checks: $(grep -cE '\bok\b|^PASS' $O/checks.log) ok / passed, $(grep -cE 'FAIL' $O/checks.log) failed"
grep -E "FAIL" $O/checks.log | head -20
cat $O/table.md 2>/dev/null || tail -5 $O/gpu.log
grep -E "median|failed" $O/sweep.log 2>/dev/null
cat $O/base-ab.log 2>/dev/null
