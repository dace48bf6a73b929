#!/usr/bin/env bash
# Packs what bench/gpu-prepare.sh (and bench/gemv-sweep-prepare.sh) wrote into one xz archive, so that the whole
# GPU bench is one device call: about 53 MiB of artifacts, cases and replay cases packed into 12 MiB (session 9), which
# fits the 64 MiB carry beside .gl, the runtime and the tracked tree (a device start is the scarce resource: two
# calls meant two starts). The GPU side (bench/gpu-env.sh) unpacks it into .h200 before any script reads it.
# Packed: .h200/models, .h200/cases (with the --matmul-precision f16 ones), .h200/sweep (if prepared), and
# .h200/qsub: the GEMV paths' quantized replay cases (small-rows variants, float and integer dot product, groups:
# about 7 of .h200/quant's 38 MiB) with kiln_spirv_replay.
# usage: bash tools/build.sh && [bash bench/gemv-sweep-prepare.sh &&] bash bench/gpu-prepare.sh && bash bench/gpu-pack.sh
#        then one device call: carry [".gl", ".h200/bin", ".h200/pack", ".h200/peer"], `bash bench/gpu-all.sh`.
. "$(dirname "$0")/prepare-env.sh"
H=${H:-.h200}
rm -rf $H/qsub $H/pack && mkdir -p $H/qsub/cases $H/pack
for f in $H/quant/cases/*.rpl; do
  [ -f "$f" ] || continue
  case "$(strings -n 12 "$f" | grep -m1 '^matmul')" in *_only*) cp "$f" $H/qsub/cases/ ;; esac
done
[ -x $H/quant/kiln_spirv_replay ] && cp $H/quant/kiln_spirv_replay $H/qsub/
parts=""
for d in models cases sweep qsub; do [ -d $H/$d ] && parts="$parts $d"; done
tar cJf $H/pack/h200.tar.xz -C $H $parts
echo "packed$parts: $(du -sh $H/pack/h200.tar.xz | cut -f1); $(ls $H/qsub/cases | wc -l) GEMV replay cases"
du -shc .gl $H/bin $H/pack $H/peer | tail -1
