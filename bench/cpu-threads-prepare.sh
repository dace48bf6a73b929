#!/usr/bin/env bash
# Prepares .cput/ (git-ignored) for bench/cpu-threads-device.sh: bench/threads.sh's comparison on a quiet
# many-core host (the GPU machines' CPUs: 16 cores), at 1, 2, 4, 8 and 16 threads, in one device call:
#   .cput/bin/kiln                    the runtime-only build of this tree (no LLVM / MLIR on that machine)
#   .cput/models/NAME.kiln            all-MiniLM-L6-v2 (--max-batch 1 --max-context 512) and TinyLlama-1.1B
#                                     (--max-context 1040) shapes, f32, --cpu x86-64-v3 (an unknown x86-64 host),
#                                     --synthetic-weights 1 (weights made at load: the artifacts stay small)
#   .cput/models/NAME-before.kiln     the same compiled by $KILN_BEFORE (a build of the tree before the blocked
#                                     attention kernel; same kernel ABI, so the same runtime runs both)
#   .cput/rt/*.deb                    the runtime's libraries (OpenBLAS, protobuf, ...)
# usage: bash tools/build.sh && KILN_BEFORE=... bash bench/cpu-threads-prepare.sh; then the device call:
#        carry [".cput"], command `bash bench/cpu-threads-device.sh` (~10 min).
set -euo pipefail
cd "$(dirname "$0")/.."
K=${KILN:-build/bin/kiln}
BEFORE=${KILN_BEFORE:-}
C=.cput
WORK=${WORK:-/tmp/cputprep}
rm -rf $C/models && mkdir -p $C/bin $C/models $C/rt $WORK
KILN_BUILD_DIR=$C/build bash tools/build.sh -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF >$WORK/rt-build.log 2>&1 \
  || { tail -20 $WORK/rt-build.log; exit 1; }
cp $C/build/bin/kiln $C/bin/kiln && rm -rf $C/build
for name in all-minilm-l6-v2 tinyllama-1.1b; do
  [ -d $WORK/$name ] || $K synth bench/configs/$name.json -o $WORK/$name --seed 1 --dtype f32
done
compile() { # BINARY SUFFIX
  "$1" compile $WORK/all-minilm-l6-v2 -o $C/models/minilm$2.kiln --cpu x86-64-v3 --synthetic-weights 1 \
    --max-batch 1 --max-context 512 2>&1 | tail -1
  "$1" compile $WORK/tinyllama-1.1b -o $C/models/tinyllama$2.kiln --cpu x86-64-v3 --synthetic-weights 1 \
    --max-context 1040 2>&1 | tail -1
}
compile $K ""
[ -z "$BEFORE" ] || compile "$BEFORE" -before
(cd $C/rt && apt-get download libopenblas0-pthread libgfortran5 libquadmath0 libprotobuf32 libonig5 libicu72 libvulkan1 \
  >/dev/null 2>&1)
du -sh $C
