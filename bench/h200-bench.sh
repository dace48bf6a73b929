#!/usr/bin/env bash
# Run on the GPU machine (device tool, carry .gl and .h200) with the runtime-only build in .h200/bin and
# artifacts compiled here (bench/RESULTS.md): .h200/cases/NAME.kiln (each tests/data case compiled with
# --target vulkan --device-profile nvidia-h200) + NAME.ref.safetensors + NAME.chunks ("-" for encoders),
# .h200/f16/llama16-{vk,cpu}.kiln (kiln synth tests/data/llama-tiny/config.json --dtype f16, vulkan and cpu),
# .h200/tl-f32.kiln / tl-f16.kiln (TinyLlama shapes, --synthetic-weights 1). .gl holds the Vulkan loader and
# runtime .debs (devices.md). Prints: every case vs its HF reference, the f16-weight model vulkan vs cpu,
# then kiln bench pp512 / tg128 (5 repetitions) with the GPU time.
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
mkdir -p /tmp/rt; for f in .gl/rt/*.deb; do dpkg -x $f /tmp/rt; done
export LD_LIBRARY_PATH=/tmp/rt/usr/lib/x86_64-linux-gnu:/tmp/rt/usr/lib/x86_64-linux-gnu/openblas-pthread
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
K=.h200/bin/kiln
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader
for a in .h200/cases/*.kiln; do
  n=$(basename $a .kiln); ref=.h200/cases/$n.ref.safetensors; ch=$(cat .h200/cases/$n.chunks)
  if [ "$ch" = "-" ]; then scheds="one"; name=last_hidden_state; else scheds="$ch one"; name=logits; fi
  for s in $scheds; do
    args=""; [ "$s" != one ] && args="--chunks $s"
    if $K run $a --inputs $ref --outputs /tmp/o.st $args 2>/tmp/err; then
      echo "$n [$s]: $(python3 .h200/compare.py /tmp/o.st $ref $name 1e-3)"
    else echo "$n [$s]: FAIL $(cat /tmp/err)"; fi
  done
done
if [ -f .h200/f16/llama16-vk.kiln ]; then
  in=.h200/cases/llama-tiny.ref.safetensors
  $K run .h200/f16/llama16-cpu.kiln --inputs $in --outputs /tmp/c.st --chunks 2,5,1,1,1,1,1 2>&1 | tail -1
  for s in "2,5,1,1,1,1,1" "12"; do
    $K run .h200/f16/llama16-vk.kiln --inputs $in --outputs /tmp/v.st --chunks $s 2>&1 | tail -1
    echo "llama-tiny f16 weights, vulkan [$s] vs cpu artifact: $(python3 .h200/compare.py /tmp/v.st /tmp/c.st logits 1e-3)"
  done
fi
for m in ${MODELS:-tl-f32 tl-f16}; do
  echo "== $m (TinyLlama-1.1B shapes, synthetic weights, vulkan, nvidia-h200)"
  timeout 200 $K bench .h200/$m.kiln -p 512 -n 128 -r 5 2>&1 | tail -8
done
