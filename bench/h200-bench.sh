#!/usr/bin/env bash
# Run on the GPU machine (device tool) with the runtime-only build in .h200/bin and the synthetic-weight
# artifacts made here (see bench/RESULTS.md); .gl holds the Vulkan loader and runtime .debs (devices.md).
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
mkdir -p /tmp/rt; for f in .gl/rt/*.deb; do dpkg -x $f /tmp/rt; done
export LD_LIBRARY_PATH=/tmp/rt/usr/lib/x86_64-linux-gnu:/tmp/rt/usr/lib/x86_64-linux-gnu/openblas-pthread
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
K=.h200/bin/kiln
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader
for m in tl-f32 tl-f16; do
  echo "== $m (TinyLlama-1.1B shapes, synthetic weights, vulkan, nvidia-h200)"
  timeout 250 $K bench .h200/$m.kiln -p 512 -n 128 -r 5 2>&1 | tail -6
done
echo "== tl-f32 on the host CPU (16 cores) for reference"
timeout 150 $K bench .h200/tl-f32-cpu.kiln -p 512 -n 32 -r 2 --threads 16 2>&1 | tail -5
