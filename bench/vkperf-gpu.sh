#!/usr/bin/env bash
# The one device call of the GEMV / cooperative-matrix work (bench/RESULTS.md, 2026-12-07): carry
# [".gl", ".h200"] as prepared by bench/vkperf-prepare.sh, then `bash bench/vkperf-gpu.sh`. Prints, in order:
# the card and its copy / read bandwidth (torch), the kernel cases vs the interpreter (kiln_spirv_replay:
# cooperative-matrix tiles and GEMV on awkward sizes) with the device's cooperative-matrix shapes, the f16-weight
# models vs their CPU artifacts, then main's kernels (base) and this tree's (new) on TinyLlama-1.1B shapes: the
# KILN_PROFILE decode and prefill profiles and kiln bench -p 512 -n 128 -r 5; last, every reference case vs HF
# (most important first: a call cut short by its time limit keeps what it printed). env: SKIP_CHECKS=1 benchmarks only; MODELS (default "tl-f16 tl-f16-nocm tl-f32"); ROUNDS (default 2:
# base and new alternate, each round 5 repetitions after a warm-up).
. "$(dirname "$0")/gpu-env.sh"
card ,memory.total
echo "== device bandwidth (torch, 1 GiB of f32: copy counts read + write; sum reads)"
python3 - <<'PY'
import torch
x = torch.empty(256 * 1024 * 1024, dtype=torch.float32, device='cuda').normal_()
y = torch.empty_like(x)
for name, fn, nbytes in [('copy', lambda: y.copy_(x), 8 * x.numel()), ('read (sum)', lambda: x.sum(), 4 * x.numel())]:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(21):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    print(f'{name}: median {nbytes / times[10] / 1e12:.2f} TB/s, range {nbytes / times[-1] / 1e12:.2f} .. '
          f'{nbytes / times[0] / 1e12:.2f}')
PY
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== kernel cases vs the interpreter (kiln_spirv_replay)"
  .h200/replay/kiln_spirv_replay .h200/replay/cases
  echo "== f16-weight models: vulkan (cooperative-matrix prefill for chunks > 4, GEMV for <= 4) vs the CPU artifact"
  for m in llama16:2,5,1,1,1,1,1:12 awkward16:70,1,1,1,2:75; do
    IFS=: read -r name chunks one <<< "$m"
    in=.h200/f16/$name.ids.safetensors
    $K run .h200/f16/$name-cpu.kiln --inputs $in --outputs /tmp/c.st 2>&1 | tail -1
    for s in $chunks $one; do
      $K run .h200/f16/$name-vk.kiln --inputs $in --outputs /tmp/v.st --chunks $s 2>&1 | tail -1
      echo "$name [$s]: $(python3 bench/compare.py /tmp/v.st /tmp/c.st logits 5e-3)"
    done
  done
fi
echo "== TinyLlama-1.1B shapes, --synthetic-weights 1: main's kernels (base) vs this tree's (new), same card"
for m in ${MODELS:-tl-f16 tl-f32}; do
  for side in base new; do
    echo "-- $side $m: KILN_PROFILE=1 kiln bench -p 0 -n 64 -r 1 (decode)"
    KILN_PROFILE=1 timeout 200 $K bench .h200/$side/$m.kiln -p 0 -n 64 -r 1 2>&1 | grep -E "GPU|%|top|steps|^tg" | head -28
  done
done
for m in base/tl-f16 new/tl-f16-nocm new/tl-f16; do
  echo "-- $m: KILN_PROFILE=1 kiln bench -p 512 -n 0 -r 1 (prefill)"
  KILN_PROFILE=1 timeout 200 $K bench .h200/$m.kiln -p 512 -n 0 -r 1 2>&1 | grep -E "GPU|%" | head -12
done
for round in $(seq ${ROUNDS:-2}); do
  for m in ${MODELS:-tl-f16 tl-f16-nocm tl-f32}; do
    for side in base new; do
      [ -f .h200/$side/$m.kiln ] || continue
      echo "-- round $round, $side $m: kiln bench -p 512 -n 128 -r 5"
      timeout 200 $K bench .h200/$side/$m.kiln -p 512 -n 128 -r 5 2>&1 | grep -E "^\| Llama|wall"
    done
  done
done
if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  echo "== reference cases vs HF (this tree's kernels, profile nvidia-h200), each case's chunks and one chunk"
  K=$K bash bench/gpu-cases.sh
fi
