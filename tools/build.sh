#!/usr/bin/env bash
# Configures and builds kiln into ${KILN_BUILD_DIR:-build} with clang-22, Ninja and ccache.
# Extra arguments go to cmake (e.g. -DKILN_BUILD_COMPILER=OFF for the runtime alone).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KILN_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 "$@" >/dev/null
ninja -C "$BUILD_DIR"
