#!/usr/bin/env bash
# llama.cpp v0.5.0 Vulkan beside kiln on the GPU machine: the prebuilt @node-llama-cpp/linux-x64-vulkan
# 3.22.1 libraries with llama-bench / llama-logits built against them (VARIANT=vulkan bench/peers/setup.sh).
#   here:   VARIANT=vulkan bash bench/peers/setup.sh       # writes bench/peers/h200-carry.tar.xz (~8 MiB)
#           mkdir -p .h200/peer && cp bench/peers/h200-carry.tar.xz .h200/peer/carry.tar.xz
#   device: run with carry [".gl", ".h200"] (.gl: the Vulkan loader .debs, ../shared/devices.md):
#           bash bench/h200-peer.sh
# env: PEER_CARRY  the tarball, under a carried path (default .h200/peer/carry.tar.xz; holds carry/ with
#                  the two programs and their libraries)
#      CHECK=0     skip the correctness check (default on): tests/data/llama-tiny converted by
#                  bench/peers/to_gguf.py, run with -ngl 99, KV f32, flash attention off, in one chunk and
#                  in the case's chunks, against the Hugging Face reference (exit 1 above CHECK_TOL,
#                  default 5e-3: llama.cpp's Vulkan matmuls round to f16, ~2e-3; also printed with
#                  GGML_VK_DISABLE_F16=1, for information)
#      DTYPES      default "f32 f16"; BENCH=0 skips the benchmark; PEER_TMP (default /tmp/peer) the scratch dir
#      INSTALL_GL=0 leaves .gl alone; with GGML_VK_VISIBLE_DEVICES=0 and VK_DRIVER_FILES=<lavapipe json> and
#                  PEER_CARRY=bench/peers/h200-carry.tar.xz, CHECK runs here on lavapipe too
# Then llama-bench -ngl 99 -p 512 -n 128 -r 5 on random TinyLlama-1.1B weights
# (bench/peers/random_llama.py: needs torch + transformers on the machine), per dtype twice: KV f32 and
# flash attention off (as kiln), and llama.cpp's defaults (KV f16, flash attention auto). Compare with
# bench/h200-bench.sh (kiln bench) in the same device session; figures in bench/RESULTS.md (Peers).
set -u
cd "$(dirname "$0")/.."
[ "${INSTALL_GL:-1}" != 0 ] && { for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
PEER_CARRY=${PEER_CARRY:-.h200/peer/carry.tar.xz}
[ -f "$PEER_CARRY" ] || { echo "h200-peer.sh: $PEER_CARRY: no such file (VARIANT=vulkan bench/peers/setup.sh, then copy it there)" >&2; exit 1; }
P=${PEER_TMP:-/tmp/peer}; rm -rf $P; mkdir -p $P; tar xJf "$PEER_CARRY" -C $P; L=$P/carry
export LD_LIBRARY_PATH=$L
$L/llama-bench --version 2>&1 | tail -2
if [ "${CHECK:-1}" != 0 ]; then
  T=tests/data/llama-tiny; ref=$T/reference.safetensors
  python3 bench/peers/to_gguf.py $T $P/llama-tiny.gguf || exit 1
  IDS=$(python3 bench/peers/check_logits.py ids $ref); CH=$(python3 bench/peers/check_logits.py chunks $T/case.json)
  for ch in 12 $CH; do
    $L/llama-logits $P/llama-tiny.gguf --ids $IDS --chunks $ch --ngl 99 --kv f32 --fa off -o $P/lt.f32 2>$P/err \
      || { echo "h200-peer.sh: llama-logits failed: $(tail -3 $P/err)" >&2; exit 1; }
    echo "llama-tiny chunks $ch (llama.cpp vulkan vs HF):"
    python3 bench/peers/check_logits.py compare $P/lt.f32 $ref ${CHECK_TOL:-5e-3} || exit 1
    GGML_VK_DISABLE_F16=1 $L/llama-logits $P/llama-tiny.gguf --ids $IDS --chunks $ch --ngl 99 --kv f32 --fa off -o $P/lt.f32 2>/dev/null
    echo "  same with GGML_VK_DISABLE_F16=1:"; python3 bench/peers/check_logits.py compare $P/lt.f32 $ref 1
  done
fi
[ "${BENCH:-1}" = 0 ] && exit 0
DTYPES=${DTYPES:-f32 f16}
python3 bench/peers/random_llama.py bench/configs/tinyllama-1.1b.json $P/tl || exit 1
for d in $DTYPES; do
  python3 bench/peers/to_gguf.py $P/tl-$d $P/tl-$d.gguf || exit 1; rm -f $P/tl-$d/model.safetensors
done
for d in $DTYPES; do
  echo "== llama.cpp vulkan, tinyllama-1.1b $d, KV f32, flash attention off (as kiln)"
  timeout 200 $L/llama-bench -m $P/tl-$d.gguf -ngl 99 -p 512 -n 128 -r 5 -ctk f32 -ctv f32 -fa 0 2>&1 | grep -v "^ggml\|^load" | tail -6
  echo "== llama.cpp vulkan, tinyllama-1.1b $d, its defaults (KV f16, flash attention auto)"
  timeout 200 $L/llama-bench -m $P/tl-$d.gguf -ngl 99 -p 512 -n 128 -r 5 2>&1 | grep -v "^ggml\|^load" | tail -6
done
