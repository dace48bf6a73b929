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
K=$K bash bench/h200-cases.sh
if [ -f .h200/f16/llama16-vk.kiln ]; then
  in=.h200/cases/llama-tiny.ref.safetensors
  $K run .h200/f16/llama16-cpu.kiln --inputs $in --outputs /tmp/c.st --chunks 2,5,1,1,1,1,1 2>&1 | tail -1
  for s in "2,5,1,1,1,1,1" "12"; do
    $K run .h200/f16/llama16-vk.kiln --inputs $in --outputs /tmp/v.st --chunks $s 2>&1 | tail -1
    echo "llama-tiny f16 weights, vulkan [$s] vs cpu artifact: $(python3 bench/compare.py /tmp/v.st /tmp/c.st logits 1e-3)"
  done
fi
for m in ${MODELS:-tl-f32 tl-f16}; do
  echo "== $m (TinyLlama-1.1B shapes, synthetic weights, vulkan, nvidia-h200)"
  timeout 200 $K bench .h200/$m.kiln -p 512 -n 128 -r 5 2>&1 | tail -8
done
