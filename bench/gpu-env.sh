# Sourced first by the scripts run on the GPU machine (bench/gpu.sh, bench/*-gpu.sh): set -u, into the
# repository root; unpacks the carried .debs (.gl: the Vulkan loader and GL dispatch into /, .gl/rt: the
# runtime's libraries into /tmp/rt; ../shared/devices.md), points the loader at NVIDIA's ICD, sets H (the
# carried folder: .h200, or H=DIR where a prepare script wrote another) and K (its runtime-only kiln), unpacks
# bench/gpu-pack.sh's archive when it was carried, and defines card and replay.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/rt; for f in .gl/rt/*.deb; do dpkg -x "$f" /tmp/rt; done
export LD_LIBRARY_PATH=/tmp/rt/usr/lib/x86_64-linux-gnu:/tmp/rt/usr/lib/x86_64-linux-gnu/openblas-pthread
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
H=${H:-.h200}
K=$H/bin/kiln
# bench/gpu-pack.sh's archive: unpacked into $H once per archive (a warm machine keeps what an earlier call unpacked).
if [ -f $H/pack/h200.tar.xz ]; then
  sum=$(md5sum < $H/pack/h200.tar.xz | cut -c1-32)
  if [ "$(cat $H/.unpacked 2>/dev/null)" != "$sum" ]; then
    rm -rf $H/models $H/cases $H/sweep $H/qsub
    tar xJf $H/pack/h200.tar.xz -C $H && echo "$sum" > $H/.unpacked
  fi
fi

# card [,FIELD...]: the card's name and driver (and FIELDs, e.g. ,memory.total), the first line of a report.
card() { nvidia-smi --query-gpu=name,driver_version${1:-} --format=csv,noheader; }

# replay DIR: DIR/replay/kiln_spirv_replay over the kernel cases in DIR/replay/cases (each against the
# interpreter), its output in /tmp/replay.txt; returns its exit code.
replay() { $1/replay/kiln_spirv_replay $1/replay/cases > /tmp/replay.txt 2>&1; }
