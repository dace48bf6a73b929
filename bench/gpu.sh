#!/usr/bin/env bash
# kiln beside llama.cpp's Vulkan backend on one GPU, in one device call (issue 10, item 7). Prepared here by
# bench/gpu-prepare.sh; on the device: carry [".gl", ".h200"], `bash bench/gpu.sh`. In order:
#   1. the card, and its copy bandwidth (torch; the decode limit is weight bytes / this);
#   2. every reference case vs Hugging Face on the GPU, in its chunk schedule and in one chunk (1e-3); with
#      --weights q8_0 / q4_0 against kiln eval --weights (1e-3), and the quantized kernels' replay cases;
#   3. llama.cpp's check: tests/data/llama-tiny as GGUF vs the same HF reference (bench/peers/check_logits.py);
#   4. ROUNDS rounds, alternating per weight format: kiln bench -p 512 -n 128 -r 5, llama-bench with KV f32 and
#      flash attention off (as kiln) and llama-bench with its defaults, each as JSON into $OUT/raw (or /tmp/gpu/raw;
#      archived as raw.tgz at the end, table.md beside it);
#   5. bench/gpu_table.py: per format and test, the medians and ranges over the rounds and kiln / llama.cpp.
#   6. PROFILE=0 skips it: KILN_PROFILE=1 decode (short, and after a 896-token prompt) and prefill per-kernel
#      shares of each format.
# env: ROUNDS (2), FORMATS (the .h200/models/tl-*.kiln present: f32 f16 f32mm16 [q8_0 q4_0]; f32mm16: f32 weights
# with --matmul-precision f16, beside llama.cpp's f32 GGUF), CHECKS=0 skips 2 and 3.
# llama.cpp's TinyLlama weights are random (bench/peers/random_llama.py with torch, here), kiln's synthetic:
# the same shapes and formats, not the same values (the speed does not depend on them); q8_0 / q4_0 GGUFs come
# from the f32 one by llama.cpp's own quantizer when the carry has llama-quantize.
. "$(dirname "$0")/gpu-env.sh"
R=${OUT:-/tmp/gpu}/raw; mkdir -p $R
P=/tmp/peer; rm -rf $P; mkdir -p $P; tar xJf .h200/peer/carry.tar.xz -C $P; L=$P/carry
FORMATS=${FORMATS:-$(ls .h200/models/tl-*.kiln | sed 's|.*/tl-||; s|\.kiln$||' | tr '\n' ' ')}
card ,memory.total | tee $R/gpu.txt
python3 - <<'PY' | tee $R/bandwidth.txt
import torch
x = torch.empty(256 * 1024 * 1024, dtype=torch.float32, device='cuda').normal_()
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
torch.cuda.synchronize()
times = []
for _ in range(21):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); y.copy_(x); e.record(); torch.cuda.synchronize()
    times.append(s.elapsed_time(e) / 1e3)
times.sort()
print(f'copy_bandwidth_tb_s {8 * x.numel() / times[10] / 1e12:.3f}')
PY
if [ "${CHECKS:-1}" != 0 ]; then
  echo "== reference cases vs HF on the GPU (kiln, nvidia-h200 profile), each case's chunks and one chunk"
  K=$K bash bench/gpu-cases.sh | tee $R/cases.txt
  if [ -x .h200/quant/kiln_spirv_replay ]; then
    echo "== q8_0 / q4_0 matmul kernels vs the interpreter (kiln_spirv_replay; GEMV 1e-5, cooperative-matrix tiles 5e-3)"
    .h200/quant/kiln_spirv_replay .h200/quant/cases 2>&1 | grep -vE "^PASS" | tee $R/quant-replay.txt
  fi
  echo "== llama.cpp's own check: llama-tiny as GGUF vs the HF reference (KV f32, flash attention off)"
  T=tests/data/llama-tiny; ref=$T/reference.safetensors
  python3 bench/peers/to_gguf.py $T $P/llama-tiny.gguf >/dev/null &&
    $L/llama-logits $P/llama-tiny.gguf --ids "$(python3 bench/peers/check_logits.py ids $ref)" --chunks 12 \
      --ngl 99 --kv f32 --fa off -o $P/lt.f32 2>/dev/null &&
    python3 bench/peers/check_logits.py compare $P/lt.f32 $ref 5e-3
fi
python3 bench/peers/random_llama.py bench/configs/tinyllama-1.1b.json $P/tl >/dev/null || exit 1
for d in f32 f16; do
  python3 bench/peers/to_gguf.py $P/tl-$d $P/tl-$d.gguf >/dev/null || exit 1; rm -rf $P/tl-$d
done
for q in q8_0 q4_0; do
  case " $FORMATS " in *" $q "*) ;; *) continue ;; esac
  [ -x $L/llama-quantize ] && $L/llama-quantize $P/tl-f32.gguf $P/tl-$q.gguf ${q^^} >/dev/null 2>&1
done
peer() { # FORMAT ROUND NAME [llama-bench flags]
  local d=$1 r=$2 name=$3; shift 3
  [ $d = f32mm16 ] && return 0 # its peer is llama.cpp's f32 GGUF (bench/gpu_table.py)
  [ -f $P/tl-$d.gguf ] || return 0
  timeout 300 $L/llama-bench -m $P/tl-$d.gguf -ngl 99 -p 512 -n 128 -r 5 -o json "$@" \
    > $R/$name-$d-r$r.json 2>$R/$name-$d-r$r.err || echo "llama-bench $d $name failed: $(tail -2 $R/$name-$d-r$r.err)"
}
for r in $(seq ${ROUNDS:-2}); do
  for d in $FORMATS; do
    echo "-- round $r, $d"
    timeout 300 $K bench .h200/models/tl-$d.kiln -p 512 -n 128 -r 5 --json > $R/kiln-$d-r$r.json \
      2>$R/kiln-$d-r$r.err || echo "kiln bench $d failed: $(tail -2 $R/kiln-$d-r$r.err)"
    peer $d $r llama-kvf32 -ctk f32 -ctv f32 -fa 0
    peer $d $r llama-default
  done
done
python3 bench/gpu_table.py $R .h200/models | tee $R/table.md
if [ "${PROFILE:-1}" != 0 ]; then # where the GPU time goes: per-kernel shares of a decode step and of a prefill
  for d in $FORMATS; do
    echo "== $d: KILN_PROFILE=1 kiln bench -p 0 -n 64 -r 1 (decode)"
    KILN_PROFILE=1 timeout 200 $K bench .h200/models/tl-$d.kiln -p 0 -n 64 -r 1 2>&1 | grep -E "GPU|%|steps|^tg|dispatch|stat"
    echo "== $d: KILN_PROFILE=1 kiln bench -p 0 -d 896 -n 64 -r 1 (decode over 897..960 keys: attention split over the KV length)"
    KILN_PROFILE=1 timeout 200 $K bench .h200/models/tl-$d.kiln -p 0 -d 896 -n 64 -r 1 2>&1 | grep -E "GPU|%|steps|^tg|dispatch|stat"
    echo "== $d: KILN_PROFILE=1 kiln bench -p 512 -n 0 -r 1 (prefill)"
    KILN_PROFILE=1 timeout 200 $K bench .h200/models/tl-$d.kiln -p 512 -n 0 -r 1 2>&1 | grep -E "GPU|%|steps|^pp|stat"
  done 2>&1 | tee $R/profile.txt
fi
# the device call brings back few files: the summaries beside one archive of every raw file
cp $R/table.md $R/gpu.txt $R/bandwidth.txt $R/../ 2>/dev/null; tar czf $R/../raw.tgz -C $R . && rm -rf $R
