#!/usr/bin/env bash
# Prepares .h200/ (git-ignored) for bench/gemv-sweep-gpu.sh: the decode GEMV's tuning (KILN_SPIRV_GEMV =
# "COLUMNS,SUBGROUPS,STEPS" at compile time, codegen/spirv/lib/MatmulKernel.cpp: gemvTuning) swept on one GPU in
# one call, beside a baseline artifact (BASE, e.g. one compiled by main), all TinyLlama-1.1B shapes with
# --synthetic-weights 1 (small files):
#   .h200/bin/kiln                          the runtime-only build of this tree
#   .h200/sweep/tl-DTYPE-C_S_T.kiln         each DTYPE (f16 f32) x setting in SETTINGS
#   .h200/sweep/tl-DTYPE-FLAGNAME.kiln      each DTYPE x FLAGS variant "NAME:--FLAG" (default tuning)
#   .h200/sweep/tl-f16-attN.kiln            each N in ATT_KEYS (default "32 64"): the decode attention's blocks
#                                           of N keys (KILN_SPIRV_ATT_KEYS; the default is 16, AttentionKernel.cpp)
#   .h200/sweep/tl-NAME-base.kiln           each BASE_DIR/tl-NAME.kiln when BASE_DIR is set (an earlier tree's)
#   .h200/sweep/tl-q8_0.kiln, tl-q4_0.kiln  quantized weights (the quantized GEMV: no tuning)
#   .gl/*.deb, .gl/rt/*.deb                 the Vulkan loader and the runtime's libraries (devices.md)
# usage: bash tools/build.sh && [BASE_DIR=DIR] [SETTINGS="4,8192,4 4,16384,4 ..."] [FLAGS="mn:--matmul-norms"] [ATT_KEYS="32 64"]
#        bash bench/gemv-sweep-prepare.sh
#        then bench/gpu-pack.sh packs the sweep beside bench/gpu-prepare.sh's files, and bench/gpu-all.sh runs it
#        after the checks and the bench in one device call (or alone: `bash bench/gemv-sweep-gpu.sh`).
. "$(dirname "$0")/prepare-env.sh"
K=${KILN:-build/bin/kiln}
H=.h200
WORK=${WORK:-/tmp/gpuprep}
SETTINGS=${SETTINGS:-"4,8192,4 4,8192,8 4,16384,4 8,8192,4"}
FLAGS=${FLAGS:-"mn:--matmul-norms"}
ATT_KEYS=${ATT_KEYS-"32 64"}
rm -rf $H/sweep && mkdir -p $H/bin $H/sweep .gl/rt $WORK # only the sweep: bench/gpu-prepare.sh's files stay
runtime_kiln $WORK/rt-build.log
for d in f16 f32; do
  tinyllama $WORK/tl-$d --dtype $d
  for s in $SETTINGS; do
    KILN_SPIRV_GEMV=$s $K compile $WORK/tl-$d -o $H/sweep/tl-$d-${s//,/_}.kiln --target vulkan \
      --device-profile nvidia-h200 --max-context 1024 --synthetic-weights 1 2>&1 | tail -1
  done
  for f in $FLAGS; do
    $K compile $WORK/tl-$d -o $H/sweep/tl-$d-${f%%:*}.kiln --target vulkan --device-profile nvidia-h200 \
      --max-context 1024 --synthetic-weights 1 ${f#*:} 2>&1 | tail -1
  done
done
for n in $ATT_KEYS; do
  KILN_SPIRV_ATT_KEYS=$n $K compile $WORK/tl-f16 -o $H/sweep/tl-f16-att$n.kiln --target vulkan \
    --device-profile nvidia-h200 --max-context 1024 --synthetic-weights 1 2>&1 | tail -1
done
for b in ${BASE_DIR:+$BASE_DIR/tl-*.kiln}; do
  [ -f "$b" ] && n=$(basename $b .kiln) && cp $b $H/sweep/$n-base.kiln
done
for q in q8_0 q4_0; do
  $K compile $WORK/tl-f32 -o $H/sweep/tl-$q.kiln --target vulkan --device-profile nvidia-h200 --max-context 1024 \
    --synthetic-weights 1 --weights $q 2>&1 | tail -1
done
gl_debs libonig5 libicu72
du -sh $H .gl
