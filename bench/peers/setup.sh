#!/usr/bin/env bash
# Installs llama.cpp as kiln's benchmark peer into bench/peers (git-ignored: node_modules/, llama.cpp/, bin/).
#   - @node-llama-cpp/linux-x64 3.22.1 (npm, package-lock.json pins it with its sha512): the prebuilt CPU
#     libraries of llama.cpp release v0.5.0 as llama.cpp's own release builds them (GGML_CPU_ALL_VARIANTS:
#     libggml-cpu-{x64,sse42,haswell,zen4,...}.so, the best one for the CPU is picked at load), no tools.
#   - node-llama-cpp 3.22.1 (npm pack, sha512 checked): only its llama/gitRelease.bundle, the llama.cpp
#     source of that same release, cloned to bench/peers/llama.cpp for the headers and the llama-bench source.
#   - builds bench/peers/bin/llama-quantize (llama.cpp's own Q8_0 / Q4_0 quantizer, unchanged) and
#     bench/peers/bin/llama-bench (llama.cpp's tools/llama-bench, with one change: -ctk / -ctv accept
#     f32, so that the KV cache can be f32 as kiln's; upstream's list stops at f16) and
#     bench/peers/bin/llama-logits (llama_logits.cpp) against those prebuilt libraries, which are linked
#     into bin/ (ggml looks for its CPU backends next to the executable).
#   - VARIANT=vulkan: the same two programs against the prebuilt libraries of
#     @node-llama-cpp/linux-x64-vulkan 3.22.1 (same release, built with GGML_VULKAN; pinned the same way),
#     into bench/peers/bin-vulkan/, and packs bench/peers/h200-carry.tar.xz (git-ignored, ~8 MiB): a folder
#     carry/ with llama-bench, llama-logits, libggml-vulkan.so, libggml-base.so, libggml.vulkan.v0.5.0.so,
#     libllama.vulkan.v0.5.0.so, libllama-common.so and the x64 + haswell CPU backends, all that
#     bench/gpu.sh needs on the GPU machine (no Node). Here it runs on lavapipe with
#     GGML_VK_VISIBLE_DEVICES=0 (llama.cpp skips CPU-type Vulkan devices otherwise) and
#     VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json.
# usage: bench/peers/setup.sh      (needs npm, git, g++; ~1 min of compiling)
#        VARIANT=vulkan bench/peers/setup.sh
set -euo pipefail
cd "$(dirname "$0")"
NLC_VERSION=3.22.1
NLC_INTEGRITY=sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==
VARIANT=${VARIANT:-cpu}
case "$VARIANT" in
  cpu) LIBS=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64; BIN=bin; TAG="" ;;
  vulkan) LIBS=node_modules/@node-llama-cpp/linux-x64-vulkan/bins/linux-x64-vulkan; BIN=bin-vulkan; TAG=vulkan. ;;
  *) echo "setup.sh: VARIANT=$VARIANT: expected cpu or vulkan" >&2; exit 1 ;;
esac

[ -d "$LIBS" ] && npm ls --silent >/dev/null 2>&1 || npm ci --ignore-scripts --no-audit --no-fund

if [ ! -d llama.cpp ]; then
  tgz=$(npm pack "node-llama-cpp@$NLC_VERSION" --silent)
  got=sha512-$(python3 -c "import hashlib,base64,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],'rb').read()).digest()).decode())" "$tgz")
  if [ "$got" != "$NLC_INTEGRITY" ]; then
    echo "setup.sh: $tgz: integrity $got, expected $NLC_INTEGRITY" >&2; exit 1
  fi
  rm -rf .nlc && mkdir .nlc && tar xzf "$tgz" -C .nlc package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git -c advice.detachedHead=false clone -q .nlc/package/llama/gitRelease.bundle llama.cpp
  cp .nlc/package/llama/llama.cpp.info.json llama.cpp/node-llama-cpp.info.json
  rm -rf .nlc "$tgz"
fi

B=llama.cpp/tools/llama-bench/llama-bench.cpp
grep -q 'kiln: f32 KV' "$B" || sed -i 's|^static ggml_type ggml_type_from_name(const std::string & s) {$|&\n    if (s == "f32") { return GGML_TYPE_F32; } // kiln: f32 KV cache|' "$B"
grep -q 'kiln: f32 KV' "$B" || { echo "setup.sh: could not patch $B" >&2; exit 1; }

mkdir -p $BIN
for so in "$LIBS"/*.so; do ln -sf "../$so" "$BIN/$(basename "$so")"; done
INC="-Illama.cpp/include -Illama.cpp/ggml/include -Illama.cpp/common -Illama.cpp/vendor"
LINK="$BIN/libllama-common.so $BIN/libllama.${TAG}v0.5.0.so $BIN/libggml.${TAG}v0.5.0.so $BIN/libggml-base.so -Wl,-rpath,\$ORIGIN"
g++ -std=c++17 -O2 -DNDEBUG $INC llama.cpp/tools/llama-bench/llama-bench.cpp llama.cpp/tools/llama-bench/main.cpp \
  -o $BIN/llama-bench $LINK -pthread
g++ -std=c++17 -O2 -DNDEBUG $INC llama_logits.cpp -o $BIN/llama-logits $LINK
g++ -std=c++17 -O2 -DNDEBUG $INC llama.cpp/tools/quantize/quantize.cpp llama.cpp/tools/quantize/main.cpp \
  -o $BIN/llama-quantize $LINK -pthread
echo "setup.sh: llama.cpp $(cat llama.cpp/node-llama-cpp.info.json | tr -d ' \n'), @node-llama-cpp/linux-x64${TAG:+-vulkan} $NLC_VERSION"
$BIN/llama-bench --version 2>&1 | tail -2

if [ "$VARIANT" = vulkan ]; then
  rm -rf .carry && mkdir -p .carry/carry
  for f in llama-bench llama-logits llama-quantize libggml-vulkan.so libggml-base.so libggml.vulkan.v0.5.0.so \
           libllama.vulkan.v0.5.0.so libllama-common.so libggml-cpu-x64.so libggml-cpu-haswell.so; do
    cp -L "$BIN/$f" .carry/carry/
  done
  tar cJf h200-carry.tar.xz -C .carry carry && rm -rf .carry
  echo "setup.sh: wrote bench/peers/h200-carry.tar.xz ($(du -h h200-carry.tar.xz | cut -f1)); bench/gpu-prepare.sh copies it to .h200/peer/carry.tar.xz for bench/gpu.sh"
fi
