#!/usr/bin/env bash
# Prepares $H/vkq/ (git-ignored) for bench/vkqgroup-gpu.sh, the device call of the quantized matmul_groups and
# small-rows variants (branch wt-vkqgroup, issue 11 item 4):
#   $H/bin/kiln                       the runtime-only build of this tree (runs the base artifacts too)
#   $H/vkq/replay/kiln_spirv_replay + cases/*.rpl   QuantSpirvTest.QuantExportGpuCases (GEMV, tiles, groups,
#                                     small-rows variants on awkward sizes; 32-wide subgroups, cooperative matrices)
#   $H/vkq/{new,base}-{q8_0,q4_0}.kiln  TinyLlama-1.1B (f32 synth, --synthetic-weights 1, --weights FMT) for the
#                                     nvidia-h200 profile by this tree and by BASE_KILN (main's compiler; optional)
#   .gl/*.deb, .gl/rt/*.deb           the Vulkan loader / GL dispatch and the runtime's libraries (devices.md)
# usage: bash tools/build.sh && [BASE_KILN=/path/to/main/kiln] [H=.h200] bash bench/vkqgroup-prepare.sh
#        then the device call: carry [".gl", "$H"], command `[H=$H] bash bench/vkqgroup-gpu.sh` (a few minutes).
. "$(dirname "$0")/prepare-env.sh"
K=build/bin/kiln
H=${H:-.h200}
WORK=${WORK:-/tmp/vkqprep}
A=$H/vkq
rm -rf $A && mkdir -p $H/bin $A/replay/cases $WORK .gl/rt
ninja -C build kiln kiln_spirv_tests kiln_spirv_replay >/dev/null
runtime_kiln $WORK/rt-build.log
KILN_SPIRV_EXPORT=$A/replay/cases build/bin/kiln_spirv_tests --gtest_filter='QuantSpirvTest.QuantExportGpuCases' | grep export
cp build/bin/kiln_spirv_replay $A/replay/
tinyllama $WORK/tl --dtype f32 >/dev/null
for fmt in q8_0 q4_0; do
  for side in new base; do
    kc=$K; [ $side = base ] && kc=${BASE_KILN:-}
    [ -n "$kc" ] || continue
    $kc compile $WORK/tl -o $A/$side-$fmt.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
      --synthetic-weights 1 --weights $fmt 2>&1 | tail -1
  done
done
gl_debs
du -sh $H .gl
