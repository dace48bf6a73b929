#!/usr/bin/env bash
# Prepares .h200/ (git-ignored) for bench/groups-gpu.sh, the GPU A/B of kiln-group-dispatches (the rope of q,
# the rope of k into the key cache and the value cache write of each layer as one kiln.group dispatch):
#   .h200/bin/kiln                          the runtime-only build of this tree
#   .h200/groups/tl-{f16,f32}{,-nogroup}.kiln  TinyLlama-1.1B shapes, --synthetic-weights 1, nvidia-h200, with
#                                            and without --no-group-dispatches
#   .h200/cases/NAME.kiln + .ref.safetensors + .chunks   every tests/data case for nvidia-h200 (HF references)
#   .gl/*.deb, .gl/rt/*.deb                 the Vulkan loader / GL dispatch and the runtime's libraries
# usage: bash bench/groups-prepare.sh   (after bash tools/build.sh); then carry [".gl", ".h200"] and run
# `bash bench/groups-gpu.sh` on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
K=build/bin/kiln
H=.h200
mkdir -p $H/groups $H/cases $H/bin .gl/rt /tmp/groupsprep
KILN_BUILD_DIR=$H/build bash tools/build.sh -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF
cp $H/build/bin/kiln $H/bin/kiln
[ -d /tmp/groupsprep/tl ] || $K synth bench/configs/tinyllama-1.1b.json -o /tmp/groupsprep/tl --seed 1
[ -d /tmp/groupsprep/tl16 ] || $K synth bench/configs/tinyllama-1.1b.json -o /tmp/groupsprep/tl16 --seed 1 --dtype f16
for d in f32 f16; do
  src=/tmp/groupsprep/tl; [ $d = f16 ] && src=/tmp/groupsprep/tl16
  for variant in "" -nogroup; do
    flag=""; [ -n "$variant" ] && flag=--no-group-dispatches
    $K compile $src -o $H/groups/tl-$d$variant.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
      --synthetic-weights 1 $flag 2>&1 | grep -E "dispatch groups|wrote"
  done
done
K=$K bash bench/cases-prepare.sh
(cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
(cd .gl/rt && apt-get download libopenblas0-pthread libgfortran5 libquadmath0 libprotobuf32 >/dev/null 2>&1)
rm -rf $H/build
du -sh $H .gl
