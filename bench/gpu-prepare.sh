#!/usr/bin/env bash
# Prepares .h200/ and .gl/ (git-ignored) for bench/gpu.sh, the one device call that checks every reference case
# on the GPU and runs kiln beside llama.cpp's Vulkan backend (issue 10, item 7):
#   .h200/bin/kiln                       the runtime-only build of this tree (no LLVM / MLIR on the GPU machine)
#   .h200/models/tl-{f32,f16}.kiln       TinyLlama-1.1B shapes (bench/configs/tinyllama-1.1b.json), --target
#                                        vulkan --device-profile nvidia-h200 --max-context 1024
#                                        --synthetic-weights 1 (weights made at load: the artifacts stay small)
#   .h200/models/tl-FMT.kiln             the same for each FMT in WEIGHTS (default "q8_0 q4_0"; "" for none)
#   .h200/models/tl-f32mm16.kiln         tl-f32 with --matmul-precision f16 (f32 weights, prefill on tensor
#                                        cores: llama.cpp's f32 GGUF is its peer)
#   .h200/models/*.inspect.json          kiln inspect --json of each (bench/gpu_table.py sums its weight bytes)
#   .h200/cases/NAME.{kiln,ref.safetensors,chunks}   every tests/data case for nvidia-h200 and its HF reference;
#                                        NAME.mm16.kiln the same with --matmul-precision f16
#   .h200/cases/NAME.FMT.kiln            each case with --weights FMT (q8_0, q4_0), NAME.FMT.eval-SCHED.safetensors
#                                        its `kiln eval --weights FMT` outputs (SCHED: the case's chunks, "one"):
#                                        bench/gpu-cases.sh compares the GPU's run with them (1e-3)
#   .h200/quant/kiln_spirv_replay, quant/cases/*.rpl   the q8_0 / q4_0 matmul kernels for 32-wide subgroups and
#                                        cooperative matrices vs the interpreter (QuantSpirvTest.QuantExportGpuCases;
#                                        about 17 MiB: QUANT_REPLAY=0 leaves them out)
#   .h200/peer/carry.tar.xz              llama.cpp v0.5.0 Vulkan: llama-bench, llama-logits and libraries
#                                        (VARIANT=vulkan bench/peers/setup.sh)
#   .gl/*.deb, .gl/rt/*.deb              the Vulkan loader / GL dispatch and the runtime's libraries (devices.md)
# usage: bash tools/build.sh && bash bench/gpu-prepare.sh; then the device call: carry [".gl", ".h200"],
#        command `bash bench/gpu.sh`.
. "$(dirname "$0")/prepare-env.sh"
K=${KILN:-build/bin/kiln}
H=.h200
WORK=${WORK:-/tmp/gpuprep}
rm -rf $H/models $H/cases $H/quant $H/base $H/text $H/*.sh && mkdir -p $H/bin $H/models $H/cases $H/peer .gl/rt $WORK
runtime_kiln $WORK/rt-build.log
compile() { # SRC OUT [flags...]
  local src=$1 out=$2; shift 2
  $K compile "$src" -o "$out" --target vulkan --device-profile nvidia-h200 "$@" 2>&1 | tail -1
}
for d in f32 f16; do
  tinyllama $WORK/tl-$d --dtype $d
  compile $WORK/tl-$d $H/models/tl-$d.kiln --max-context 1024 --synthetic-weights 1
done
compile $WORK/tl-f32 $H/models/tl-f32mm16.kiln --max-context 1024 --synthetic-weights 1 --matmul-precision f16
for w in ${WEIGHTS-q8_0 q4_0}; do
  compile $WORK/tl-f32 $H/models/tl-$w.kiln --max-context 1024 --synthetic-weights 1 --weights $w
done
for m in $H/models/*.kiln; do $K inspect $m --json > ${m%.kiln}.inspect.json; done
for dir in tests/data/*/; do
  n=$(basename $dir)
  compile $dir $H/cases/$n.kiln
  compile $dir $H/cases/$n.mm16.kiln --matmul-precision f16
  cp $dir/reference.safetensors $H/cases/$n.ref.safetensors
  python3 -c "import json; c = json.load(open('$dir/case.json')).get('chunks'); print(','.join(map(str, c)) if c else '-')" \
    > $H/cases/$n.chunks
  for q in q8_0 q4_0; do # the quantized artifact and its oracle, kiln eval --weights (the GPU has no LLVM)
    compile $dir $H/cases/$n.$q.kiln --weights $q
    for s in $(cat $H/cases/$n.chunks) one; do
      [ "$s" = - ] && continue
      $K eval $dir --weights $q --target vulkan --inputs $dir/reference.safetensors --outputs $H/cases/$n.$q.eval-$s.safetensors \
        $([ "$s" != one ] && echo --chunks $s) 2>/dev/null
    done
  done
done
if [ "${QUANT_REPLAY:-1}" != 0 ]; then # about 17 MiB of the carry; QUANT_REPLAY=0 leaves them out
  mkdir -p $H/quant/cases
  KILN_SPIRV_EXPORT=$H/quant/cases build/bin/kiln_spirv_tests --gtest_filter='QuantSpirvTest.QuantExportGpuCases' | grep export
  cp build/bin/kiln_spirv_replay $H/quant/
fi
[ -f bench/peers/h200-carry.tar.xz ] || VARIANT=vulkan bash bench/peers/setup.sh
cp bench/peers/h200-carry.tar.xz $H/peer/carry.tar.xz
gl_debs libonig5 libicu72
du -sh $H .gl
