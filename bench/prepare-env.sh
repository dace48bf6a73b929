# Sourced by the bench/*-prepare.sh scripts that prepare a device call, first: set -euo pipefail, into the
# repository root, and the functions for what every carry for the GPU machine needs (they read H, the carried
# folder, and K, the kiln compiler, which each script sets).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# runtime_kiln LOG: this tree's runtime-only kiln (no LLVM / MLIR: the GPU machine has neither) as $H/bin/kiln,
# the build's output in LOG (its tail shown when it fails). SKIP_RUNTIME=1 keeps a $H/bin/kiln already there.
runtime_kiln() {
  [ "${SKIP_RUNTIME:-0}" = 1 ] && [ -x $H/bin/kiln ] && return 0
  KILN_BUILD_DIR=$H/build bash tools/build.sh -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF >"$1" 2>&1 \
    || { tail -20 "$1"; exit 1; }
  cp $H/build/bin/kiln $H/bin/kiln && rm -rf $H/build
}

# tinyllama DIR [kiln synth flags...]: TinyLlama-1.1B's shapes with random weights (kiln synth --seed 1, by $K)
# in DIR, unless DIR is there.
tinyllama() {
  local dir=$1
  shift
  [ -d $dir ] || $K synth bench/configs/tinyllama-1.1b.json -o $dir --seed 1 "$@"
}

# gl_debs [PACKAGE...]: the .debs bench/gpu-env.sh unpacks on the GPU machine: the Vulkan loader and GL
# dispatch into .gl, the runtime's libraries (and PACKAGEs) into .gl/rt.
gl_debs() {
  (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
  (cd .gl/rt && apt-get download libopenblas0-pthread libgfortran5 libquadmath0 libprotobuf32 "$@" >/dev/null 2>&1)
}
