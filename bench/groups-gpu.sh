#!/usr/bin/env bash
# The GPU A/B of kiln-group-dispatches: carry [".gl", ".h200"] as prepared by bench/groups-prepare.sh, then
# `bash bench/groups-gpu.sh`. Prints the card, every reference case vs HF with the groups (the default), the
# KILN_PROFILE decode profile of both artifacts (the group kernel's time beside the three it replaces), then
# kiln bench -p 512 -n 128 -r 5 with (grouped) and without (-nogroup) the groups, alternating, ROUNDS rounds
# (default 2), for f16 and f32 weights on TinyLlama-1.1B shapes. env: SKIP_CHECKS=1 benchmarks only.
. "$(dirname "$0")/gpu-env.sh"
card ,memory.total
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== reference cases vs HF (dispatch groups on, profile nvidia-h200), each case's chunks and one chunk"
  K=$K bash bench/gpu-cases.sh
fi
for m in tl-f16 tl-f16-nogroup; do
  echo "-- $m: KILN_PROFILE=1 kiln bench -p 0 -n 64 -r 1 (decode)"
  KILN_PROFILE=1 timeout 200 $K bench .h200/groups/$m.kiln -p 0 -n 64 -r 1 2>&1 | grep -E "GPU|%|top|steps|^tg|group|rope|transpose" | head -30
done
for round in $(seq ${ROUNDS:-2}); do
  for d in f16 f32; do
    for variant in "" -nogroup; do
      echo "-- round $round, tl-$d${variant:-" (grouped)"}: kiln bench -p 512 -n 128 -r 5"
      timeout 200 $K bench .h200/groups/tl-$d$variant.kiln -p 512 -n 128 -r 5 2>&1 | grep -E "^\| Llama|wall"
    done
  done
done
