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
. "$(dirname "$0")/prepare-env.sh"
K=build/bin/kiln
H=.h200
mkdir -p $H/groups $H/cases $H/bin .gl/rt /tmp/groupsprep
runtime_kiln /tmp/groupsprep/rt-build.log
tinyllama /tmp/groupsprep/tl
tinyllama /tmp/groupsprep/tl16 --dtype f16
for d in f32 f16; do
  src=/tmp/groupsprep/tl; [ $d = f16 ] && src=/tmp/groupsprep/tl16
  for variant in "" -nogroup; do
    flag=""; [ -n "$variant" ] && flag=--no-group-dispatches
    $K compile $src -o $H/groups/tl-$d$variant.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
      --synthetic-weights 1 $flag 2>&1 | grep -E "dispatch groups|wrote"
  done
done
K=$K bash bench/cases-prepare.sh
gl_debs
du -sh $H .gl
