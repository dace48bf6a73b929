#!/usr/bin/env bash
# Installs every Debian package kiln's build and tests need. Idempotent: fast when already installed.
set -euo pipefail
PKGS=(cmake ninja-build ccache g++ pkg-config
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22 libclang-rt-22-dev
  libopenblas-dev libvulkan-dev mesa-vulkan-drivers vulkan-tools glslang-dev glslang-tools spirv-tools
  libprotobuf-dev protobuf-compiler libfmt-dev nlohmann-json3-dev libgtest-dev python3 universal-ctags
  libonig-dev libicu-dev python3-jinja2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm: the tokenizer tests fetch Hugging Face tokenizers' Node add-on (tools/fetch-test-data.sh).
# Any installation will do (nodesource's nodejs bundles npm and conflicts with Debian's npm package).
{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then echo "setup: all ${#PKGS[@]} packages present"; exit 0; fi
echo "setup: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
