#!/usr/bin/env bash
# The correctness half of bench/gpu.sh (bench/gpu-all.sh runs it first; bench/gpu-pack.sh packs its files): every reference
# case vs Hugging Face on the GPU (q8_0 / q4_0 cases vs kiln eval --weights), then the quantized GEMV kernels
# (small-rows variants, float and integer dot product, groups) vs the interpreter.
. "$(dirname "$0")/gpu-env.sh"
card
$K devices 2>&1 | grep -i "integer dot product" | head -2
echo "== reference cases vs HF on the GPU (q8_0 / q4_0 vs kiln eval --weights)"
K=$K bash bench/gpu-cases.sh
echo "== quantized GEMV kernels vs the interpreter (kiln_spirv_replay)"
$H/qsub/kiln_spirv_replay $H/qsub/cases 2>&1 | grep -vE "^PASS"
