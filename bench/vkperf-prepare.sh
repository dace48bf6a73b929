#!/usr/bin/env bash
# Prepares .h200/ (git-ignored) for bench/vkperf-gpu.sh, the one device call that measures main's Vulkan
# kernels against this tree's on the same card and checks the new ones (bench/RESULTS.md, 2026-12-07):
#   .h200/bin/kiln               the runtime-only build of this tree (runs main's artifacts too)
#   .h200/base/tl-{f32,f16}.kiln  TinyLlama-1.1B shapes, --synthetic-weights 1, compiled by BASE_KILN (main)
#   .h200/new/tl-{f32,f16}.kiln   the same compiled by this tree; tl-f16-nocm.kiln without cooperative matrices
#   .h200/cases/NAME.kiln + .ref.safetensors + .chunks  every tests/data case for nvidia-h200 (HF references)
#   .h200/f16/{llama16,awkward16}-{vk,cpu}.kiln + ids      f16-weight models (cooperative-matrix prefill) and
#                                                         their CPU artifacts, bench/configs/awkward-llama.json
#                                                         (hidden 200, intermediate 452, vocab 1001)
#   .h200/replay/kiln_spirv_replay + cases/*.rpl          kernel cases vs the interpreter (tests/unit/spirv)
#   .gl/*.deb, .gl/rt/*.deb       the Vulkan loader / GL dispatch and the runtime's libraries (devices.md)
# usage: BASE_KILN=/path/to/main/kiln bash bench/vkperf-prepare.sh   (after bash tools/build.sh)
. "$(dirname "$0")/prepare-env.sh"
K=build/bin/kiln
BASE_KILN=${BASE_KILN:?the kiln compiler of the baseline (main)}
H=.h200
mkdir -p $H/base $H/new $H/cases $H/f16 $H/replay/cases $H/bin .gl/rt /tmp/vkprep
runtime_kiln /tmp/vkprep/rt-build.log
tinyllama /tmp/vkprep/tl
tinyllama /tmp/vkprep/tl16 --dtype f16
for d in f32 f16; do
  src=/tmp/vkprep/tl; [ $d = f16 ] && src=/tmp/vkprep/tl16
  for side in base new; do
    kc=$K; [ $side = base ] && kc=$BASE_KILN
    $kc compile $src -o $H/$side/tl-$d.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
      --synthetic-weights 1 2>&1 | tail -1
  done
done
# The same f16 model without cooperative matrices (the profile as written before the shapes were recorded):
# this tree's GEMV with the scalar prefill tiles.
$K compile /tmp/vkprep/tl16 -o $H/new/tl-f16-nocm.kiln --target vulkan --max-context 1024 --synthetic-weights 1 \
  --device-profile tests/fuzz/corpus/profile/nvidia-h200.json 2>&1 | tail -1
K=$K bash bench/cases-prepare.sh
$K synth tests/data/llama-tiny/config.json -o /tmp/vkprep/llama16 --seed 3 --dtype f16
$K synth bench/configs/awkward-llama.json -o /tmp/vkprep/awkward16 --seed 5 --dtype f16
for m in llama16 awkward16; do
  $K compile /tmp/vkprep/$m -o $H/f16/$m-vk.kiln --target vulkan --device-profile nvidia-h200 2>&1 | tail -1
  $K compile /tmp/vkprep/$m -o $H/f16/$m-cpu.kiln 2>&1 | tail -1
done
cp tests/data/llama-tiny/reference.safetensors $H/f16/llama16.ids.safetensors
python3 bench/compare.py $H/f16/awkward16.ids.safetensors --write-ids \
  "$(python3 -c "print(','.join(str((i * 37 + 11) % 1001) for i in range(75)))")"
rm -rf $H/replay/cases/*
KILN_SPIRV_EXPORT=$H/replay/cases build/bin/kiln_spirv_tests --gtest_filter='*ExportGpuCases' | grep export
cp build/bin/kiln_spirv_replay $H/replay/
gl_debs
du -sh $H .gl
