#!/usr/bin/env bash
# Prepares .h200/coopmat/ (git-ignored, under 64 MiB with .gl/) for bench/coopmat-gpu.sh, the device call that
# checks the cooperative-matrix GEMM's blocks against the interpreter and times them on the TinyLlama prefill
# GEMM shapes (issue 10, item 6):
#   .h200/bin/kiln                        the runtime-only build of this tree (no LLVM / MLIR on the GPU machine)
#   .h200/coopmat/replay/kiln_spirv_replay + cases/*.rpl
#                                         kernel cases vs the interpreter: every block of kGpuCoopmatTiles on
#                                         awkward sizes (M = 5, K = 80, K = 203, f16 / bf16 / f32 weights, f16
#                                         activations) and the compiler's choice (tests/unit/spirv ExportGpuCases)
#   .h200/coopmat/tl1-TILE.kiln           bench/configs/tinyllama-1layer.json (TinyLlama-1.1B's shapes, one layer:
#                                         M = 512 gives 512 x N x K = 2048x2048 (q, o), 256x2048 (k, v),
#                                         5632x2048 (gate, up), 2048x5632 (down), 32000x2048 (lm_head)), f16
#                                         weights, --synthetic-weights 1, compiled for the nvidia-h200 profile
#                                         with "cooperative_matrix_tile": TILE; TILE "auto": the compiler's choice
#                                         per shape, "scalar": no cooperative matrices (the scalar tiles),
#                                         "auto-bf16": bf16 weights
#   .h200/coopmat/tl1-base.kiln           the same compiled by BASE_KILN (optional: main's compiler and kernels)
#   .h200/coopmat/full/{new,base}.kiln    the whole TinyLlama-1.1B (22 layers, f16, --synthetic-weights 1) compiled
#                                         by this tree (the compiler's blocks) and by BASE_KILN, for pp512
#   .gl/*.deb, .gl/rt/*.deb               the Vulkan loader / GL dispatch and the runtime's libraries (devices.md)
# usage: bash tools/build.sh && [BASE_KILN=/path/to/main/kiln] [H=.h200] [TILES="..."] bash bench/coopmat-prepare.sh
#        then the device call: carry [".gl", "$H"], command `[H=$H] bash bench/coopmat-gpu.sh`.
. "$(dirname "$0")/prepare-env.sh"
K=build/bin/kiln
H=${H:-.h200}
WORK=${WORK:-/tmp/coopmatprep}
C=$WORK/coopmat # copied to $H/coopmat when complete (a carry taken meanwhile keeps the previous one whole)
TILES=${TILES:-"128x128x64 128x256x32 128x256x16x2 64x128x32x2 64x128x64 128x64x64 64x64x64 64x64x64x2 32x64x64
  32x64x64x2 32x32x64 32x32x64x2"}
rm -rf $C && mkdir -p $H/bin $C/replay/cases .gl/rt $WORK
ninja -C build kiln kiln_spirv_tests kiln_spirv_replay >/dev/null
runtime_kiln $WORK/rt-build.log
# The nvidia-h200 profile (its cooperative-matrix shapes included), with a block for every matmul or without
# cooperative matrices.
profile() { # TILE OUT
  python3 - "$1" "$2" <<'PY'
import json, sys
p = json.load(open('tests/fuzz/corpus/profile/nvidia-h200.json'))
tile, out = sys.argv[1], sys.argv[2]
if tile != 'scalar':
    p['cooperative_matrix_shapes'] = ['16x16x16 f16 f16 f32 f32', '16x8x16 f16 f16 f32 f32', '16x8x8 f16 f16 f32 f32']
if tile not in ('auto', 'scalar'):
    p['cooperative_matrix_tile'] = tile
json.dump(p, open(out, 'w'), indent=2)
PY
}
for d in f16 bf16; do
  [ -d $WORK/tl1-$d ] || $K synth bench/configs/tinyllama-1layer.json -o $WORK/tl1-$d --seed 1 --dtype $d
done
for t in auto scalar $TILES; do
  profile $t $WORK/profile-$t.json
  $K compile $WORK/tl1-f16 -o $C/tl1-$t.kiln --target vulkan --device-profile $WORK/profile-$t.json \
    --max-context 1024 --synthetic-weights 1 2>&1 | tail -1
done
$K compile $WORK/tl1-bf16 -o $C/tl1-auto-bf16.kiln --target vulkan --device-profile $WORK/profile-auto.json \
  --max-context 1024 --synthetic-weights 1 2>&1 | tail -1
# The whole TinyLlama-1.1B (22 layers) for pp512 end to end: the compiler's choice, and main's kernels.
tinyllama $WORK/tl-f16 --dtype f16
mkdir -p $C/full
$K compile $WORK/tl-f16 -o $C/full/new.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
  --synthetic-weights 1 2>&1 | tail -1
if [ -n "${BASE_KILN:-}" ]; then
  for m in tl1-f16:tl1-base tl-f16:full/base; do
    $BASE_KILN compile $WORK/${m%%:*} -o $C/${m#*:}.kiln --target vulkan --device-profile nvidia-h200 \
      --max-context 1024 --synthetic-weights 1 2>&1 | tail -1
  done
fi
KILN_SPIRV_EXPORT=$C/replay/cases build/bin/kiln_spirv_tests --gtest_filter='SpirvCodegenTest.ExportGpuCases' | grep export
cp build/bin/kiln_spirv_replay $C/replay/
gl_debs
rm -rf $H/coopmat && cp -r $C $H/coopmat
du -sh $H .gl
