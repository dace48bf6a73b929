#!/usr/bin/env bash
# bench/gpu-prepare.sh's whole .h200 (about 93 MiB) is more than one device call carries (64 MiB with the tracked
# tree and .gl). Run after it: moves the --matmul-precision f16 cases aside (.h200/cases-mm16) and copies the
# quantized replay cases of the GEMV paths (the small-rows variants, float and integer dot product, and the
# groups: about 7 MiB) into .h200/qsub, so that the correctness checks fit one call beside the speed call:
#   call 1: carry [".gl", ".h200/bin", ".h200/models", ".h200/peer"], `CHECKS=0 bash bench/gpu.sh`
#   call 2: carry [".gl", ".h200/bin", ".h200/cases", ".h200/qsub"], `bash bench/gpu-checks.sh`
. "$(dirname "$0")/prepare-env.sh"
H=${H:-.h200}
mkdir -p $H/cases-mm16 $H/qsub/cases
mv $H/cases/*.mm16.kiln $H/cases-mm16/ 2>/dev/null || true
rm -f $H/qsub/cases/*.rpl
for f in $H/quant/cases/*.rpl; do
  case "$(strings -n 12 "$f" | grep -m1 '^matmul')" in *_only*) cp "$f" $H/qsub/cases/ ;; esac
done
cp $H/quant/kiln_spirv_replay $H/qsub/
echo "$(ls $H/qsub/cases | wc -l) replay cases in $H/qsub"; du -sh $H/cases $H/qsub
