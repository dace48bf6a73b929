#!/usr/bin/env bash
# Prepares $H/attncm/ (git-ignored, about 50 MiB with .gl/) for bench/attncm-gpu.sh, the device call that checks
# the prefill attention tiles on cooperative matrices (attention_tile_cm.glsl) against the interpreter and times
# them in a TinyLlama-1.1B f16 512-token prefill beside main's f32 tiles (issue 10, item 6):
#   $H/bin/kiln                           the runtime-only build of this tree (no LLVM / MLIR on the GPU machine)
#   $H/attncm/replay/kiln_spirv_replay + cases/*.rpl
#                                         the cooperative-matrix attention cases of tests/unit/spirv
#                                         AttentionExportGpuCases (head dims 64, 80, 128, 256, 48 / 40; GQA 8, 3,
#                                         2, 1; 8 .. 513 rows over up to 1000 keys; windows, padding, bias +
#                                         softcap; TinyLlama's 512-token prefill), bound 5e-3
#   $H/attncm/tl-new.kiln, tl-base.kiln   TinyLlama-1.1B (22 layers, f16, --synthetic-weights 1) compiled for the
#                                         nvidia-h200 profile by this tree and by BASE_KILN (main's compiler, for
#                                         its f32 tiles; optional)
#   .gl/*.deb, .gl/rt/*.deb               the Vulkan loader / GL dispatch and the runtime's libraries (devices.md)
# usage: bash tools/build.sh && [BASE_KILN=/path/to/main/build/bin/kiln] [H=.h200] [TL=DIR] bash bench/attncm-prepare.sh
#        then the device call: carry [".gl", "$H"], command `[H=$H] bash bench/attncm-gpu.sh` (about a minute).
. "$(dirname "$0")/prepare-env.sh"
K=build/bin/kiln
H=${H:-.h200}
WORK=${WORK:-/tmp/attncmprep}
A=$WORK/attncm # copied to $H/attncm when complete
rm -rf $A && mkdir -p $H/bin $A/replay/cases $WORK/all .gl/rt
ninja -C build kiln kiln_spirv_tests kiln_spirv_replay >/dev/null
runtime_kiln $WORK/rt-build.log
rm -rf $WORK/all/*
KILN_SPIRV_EXPORT=$WORK/all build/bin/kiln_spirv_tests --gtest_filter='SpirvCodegenTest.AttentionExportGpuCases' | grep export
cp $(grep -l "_tilecm" $WORK/all/*.rpl) $A/replay/cases/ # only the cooperative-matrix ones
cp build/bin/kiln_spirv_replay $A/replay/
TL=${TL:-$WORK/tl-f16} # TinyLlama-1.1B f16 from kiln synth (TL=DIR: one made before, e.g. by coopmat-prepare.sh)
tinyllama $TL --dtype f16
$K compile $TL -o $A/tl-new.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
  --synthetic-weights 1 --report 2>&1 | grep -E "^kiln compile: attention: [0-9]+ on vulkan;|wrote"
if [ -n "${BASE_KILN:-}" ]; then
  $BASE_KILN compile $TL -o $A/tl-base.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
    --synthetic-weights 1 2>&1 | tail -1
fi
gl_debs
rm -rf $H/attncm && cp -r $A $H/attncm
du -sh $H .gl
