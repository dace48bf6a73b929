# Sourced by the scripts run on the GPU machine (bench/gpu.sh, bench/vkperf-gpu.sh) from the repository root:
# unpacks the carried .debs (.gl: the Vulkan loader and GL dispatch into /, .gl/rt: the runtime's libraries
# into /tmp/rt; ../shared/devices.md), points the loader at NVIDIA's ICD and sets K, the runtime-only kiln.
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/rt; for f in .gl/rt/*.deb; do dpkg -x "$f" /tmp/rt; done
export LD_LIBRARY_PATH=/tmp/rt/usr/lib/x86_64-linux-gnu:/tmp/rt/usr/lib/x86_64-linux-gnu/openblas-pthread
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
K=.h200/bin/kiln
