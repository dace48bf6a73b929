#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, make the bundled example model (random weights at Llama
# shapes, examples/configs/llama-mini.json), compile it to one artifact and run it with the thin runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
KILN=build/bin/kiln
WORK=${KILN_DEMO_DIR:-build/demo}
mkdir -p "$WORK"

echo "== kiln synth: a random-weight Llama model"
$KILN synth examples/configs/llama-mini.json -o "$WORK/llama-mini" --seed 1

echo "== kiln compile: fusion, memory plan, CPU kernels through LLVM, one artifact"
$KILN compile "$WORK/llama-mini" -o "$WORK/llama-mini.kiln" --dump-dir "$WORK/llama-mini.ir"
$KILN inspect "$WORK/llama-mini.kiln" | sed -n '1,12p'

echo "== kiln run: a 7-token prompt after a 2-token warm-up in one KV cache (chunks 2,5) vs. the interpreter"
python3 - "$WORK/prompt.safetensors" <<'PY'
import array, sys
sys.path.insert(0, "tests/e2e")
import st
st.write(sys.argv[1], {"input_ids": ("I64", [1, 7], array.array("q", [1, 17, 204, 9, 1500, 33, 7]))})
PY
$KILN run "$WORK/llama-mini.kiln" --inputs "$WORK/prompt.safetensors" --outputs "$WORK/run.safetensors" --chunks 2,5
$KILN eval "$WORK/llama-mini" --inputs "$WORK/prompt.safetensors" --outputs "$WORK/eval.safetensors"
python3 tests/e2e/compare.py "$WORK/run.safetensors" "$WORK/eval.safetensors" logits

echo "== kiln generate: greedy decoding through the runtime"
$KILN generate "$WORK/llama-mini.kiln" --ids 1,17,204 -n 16

echo "== the C example app (runtime/include/kiln/kiln.h only)"
build/bin/kiln_example "$WORK/llama-mini.kiln" 8 1 17 204
