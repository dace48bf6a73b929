#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, make the bundled example model (random weights, Llama
# shapes) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
KILN=build/bin/kiln
WORK=${KILN_DEMO_DIR:-build/demo}
mkdir -p "$WORK"

echo "== kiln synth: a random-weight Llama model from examples/configs/llama-mini.json"
$KILN synth examples/configs/llama-mini.json -o "$WORK/llama-mini" --seed 1

echo "== kiln compile --emit=ir: the imported module (first lines)"
$KILN compile "$WORK/llama-mini" --emit=ir > "$WORK/llama-mini.mlir"
grep -m 3 "kiln\.\(weight\|gather\)" "$WORK/llama-mini.mlir" | cut -c1-150
echo "   ... $(grep -c ' = kiln\.' "$WORK/llama-mini.mlir") kiln ops in $WORK/llama-mini.mlir"

echo "== kiln eval: a 7-token prompt after a 2-token warm-up in one KV cache (chunks 2,5), vs. one chunk"
python3 - "$WORK/prompt.safetensors" <<'PY'
import array, sys
sys.path.insert(0, "tests/e2e")
import st
st.write(sys.argv[1], {"input_ids": ("I64", [1, 7], array.array("q", [1, 17, 204, 9, 1500, 33, 7]))})
PY
$KILN eval "$WORK/llama-mini" --inputs "$WORK/prompt.safetensors" --outputs "$WORK/chunked.safetensors" --chunks 2,5
$KILN eval "$WORK/llama-mini" --inputs "$WORK/prompt.safetensors" --outputs "$WORK/whole.safetensors"
python3 - "$WORK/chunked.safetensors" "$WORK/whole.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/e2e")
import st
a, b = st.read(sys.argv[1])["logits"], st.read(sys.argv[2])["logits"]
V = a[1][2]
top = [max(range(V), key=lambda v: a[2][t * V + v]) for t in range(a[1][1])]
print("   logits", a[1], "greedy next tokens:", top)
print("   chunked vs one chunk: max rel diff %.2e" % st.rel_err(a[2], b[2]))
PY
