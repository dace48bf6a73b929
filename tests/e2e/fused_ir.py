#!/usr/bin/env python3
"""The fused IR of every model in tests/data: what the fusion passes must leave.

usage: fused_ir.py KILN DATA_DIR

For each case, `kiln compile CASE --emit=ir --fuse` must have: no kiln.softmax, no materialized mask (no
-inf constant, no kiln.rsqrt / cos / sin left over), one kiln.rms_norm or kiln.layer_norm per norm of the
model (counting kiln.add_rms_norm / kiln.add_layer_norm, a norm with its residual add folded in, as one; the
number of those is checked too), kiln.rope for q and k of every layer of a RoPE model (interleaved for GPT-J, rotate-half for the others),
and one kiln.attention per layer; the counts
are derived from config.json. Prints one line per case with its op counts; exits 1 on any failure.
"""
import collections
import json
import os
import re
import subprocess
import sys

# model_type -> (norm op, norms per layer, final norms, rope?)
# Norms of a residual sum that the next residual also reads fold the add in (kiln.add_<norm>): in a pre-norm
# decoder every norm of h but layer 0's input norm (over the embeddings) and the final norm (h is read by it
# alone); none in the post-norm encoders (the sum is read by its LayerNorm alone).
ADD_NORMS = {
    "llama": lambda layers: 2 * layers - 1,
    "mistral": lambda layers: 2 * layers - 1,
    "qwen2": lambda layers: 2 * layers - 1,
    "phi3": lambda layers: 2 * layers - 1,
    # pre_feedforward_layernorm of every layer, input_layernorm of layers 1..; q/k/post norms are of projections
    "gemma3_text": lambda layers: 2 * layers - 1,
    # not ln_1 of layer 0: wte(ids) [b, s, H] + wpe(positions) [1, s, H] broadcasts (reported unfused)
    "gpt2": lambda layers: 2 * layers - 1,
    # ln_1 of layers 1..
    "gptj": lambda layers: layers - 1,
    "bert": lambda layers: 0,
    "mpnet": lambda layers: 0,
}
EXPECT = {
    "llama": ("rms_norm", 2, 1, True),
    "mistral": ("rms_norm", 2, 1, True),
    "qwen2": ("rms_norm", 2, 1, True),
    "phi3": ("rms_norm", 2, 1, True),
    # input, q_norm, k_norm, post_attention, pre_feedforward, post_feedforward; final norm
    "gemma3_text": ("rms_norm", 6, 1, True),
    "gpt2": ("layer_norm", 2, 1, False),
    # ln_1 shared by the parallel attention and MLP; final ln_f; interleaved (rotate_every_two) rope
    "gptj": ("layer_norm", 1, 1, True),
    # embeddings LayerNorm + attention / output LayerNorms
    "bert": ("layer_norm", 2, 1, False),
    "mpnet": ("layer_norm", 2, 1, False),
}
INTERLEAVED = {"gptj"}  # model_types whose rope rotates pairs (x[2i], x[2i+1])
OP = re.compile(r"=\s+kiln\.([a-z_0-9]+)")
NEG_INF = ("0xFF800000", "0xFFF0000000000000", "-inf")


def check(kiln, case_dir):
    config = json.load(open(os.path.join(case_dir, "config.json")))
    model_type = config.get("model_type")
    if model_type not in EXPECT:
        return False, "no expectation for model_type %r" % model_type, {}
    layers = config.get("num_hidden_layers", config.get("n_layer"))
    proc = subprocess.run([kiln, "compile", case_dir, "--emit=ir", "--fuse"], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, "exit %d: %s" % (proc.returncode, proc.stderr.strip()), {}
    ir = proc.stdout
    ops = collections.Counter(OP.findall(ir))
    norm, per_layer, final, rope = EXPECT[model_type]
    problems = []
    want = {norm: per_layer * layers + final, "attention": layers, "rope": 2 * layers if rope else 0}
    got = dict(ops)
    got[norm] = ops.get(norm, 0) + ops.get("add_" + norm, 0)
    want_add = ADD_NORMS[model_type](layers)
    if ops.get("add_" + norm, 0) != want_add:
        problems.append("%d kiln.add_%s, expected %d" % (ops.get("add_" + norm, 0), norm, want_add))
    for op, n in want.items():
        if got.get(op, 0) != n:
            problems.append("%d kiln.%s, expected %d" % (got.get(op, 0), op, n))
    interleaved = len(re.findall(r"kiln\.rope [^\n]*\{interleaved = true\}", ir))
    want_interleaved = want["rope"] if model_type in INTERLEAVED else 0
    if interleaved != want_interleaved:
        problems.append("%d interleaved kiln.rope, expected %d" % (interleaved, want_interleaved))
    for op in ("softmax", "rsqrt", "cos", "sin", "pow", "tanh" if model_type != "gemma3_text" else None):
        if op and ops.get(op, 0):
            problems.append("%d kiln.%s left" % (ops[op], op))
    if any(tok in ir for tok in NEG_INF):
        problems.append("a -inf constant (a materialized mask) is left")
    other = "layer_norm" if norm == "rms_norm" else "rms_norm"
    if ops.get(other, 0) or ops.get("add_" + other, 0):
        problems.append("%d kiln.%s in a %s model" % (ops.get(other, 0) + ops.get("add_" + other, 0), other, norm))
    return not problems, "; ".join(problems) or "ok", ops


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kiln, data = sys.argv[1], sys.argv[2]
    passed = failed = 0
    for name in sorted(os.listdir(data)):
        case_dir = os.path.join(data, name)
        if not os.path.exists(os.path.join(case_dir, "case.json")):
            continue
        ok, msg, ops = check(kiln, case_dir)
        counts = " ".join("%s=%d" % (op, ops.get(op, 0))
                          for op in ("rms_norm", "add_rms_norm", "layer_norm", "add_layer_norm", "rope", "attention",
                                     "softmax") if ops)
        print("%-4s %-14s %s  [%s]" % ("ok" if ok else "FAIL", name, msg, counts))
        passed, failed = passed + ok, failed + (not ok)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
