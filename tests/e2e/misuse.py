#!/usr/bin/env python3
"""Guard rails: an output that is an input, or that cannot be written, is refused before any work.

usage: misuse.py KILN DATA_DIR

Each case runs kiln on a copy of tests/data/llama-tiny and checks: the exit code, exactly one line on
stderr with the expected words, no input file changed, and no output written. Also: a --max-batch whose
session is larger than any machine's memory compiles with one warning naming the size and the limits, and
kiln run refuses it at session creation (exit 1, one line naming the limits), allocating nothing; --threads
has one limit in every command and a number beyond its field is "too large"; synth --seed 0 and
--synthetic-weights 0 agree; a flag that does nothing in its combination is a warning; run and eval share
one input contract (I32 ids and extra tensors accepted, padding of a causal LM, mask values other than 0/1
and ids outside the vocabulary refused); unused checkpoint tensors are a warning; a flipped header byte is a
checksum mismatch; bad JSON gives line and column; a missing shard, pytorch_model.bin and GGUF are named;
--weights names a format kiln has (exit 2), --keep-f16 needs q8_0 / q4_0 (exit 2) and names matrices the
model reads (exit 1).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from checks import check, summary  # noqa: E402
from compare import load  # noqa: E402


def digests(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def refused(kiln, tmp, args, code, words, must_not_exist=None):
    before = digests(tmp)
    p = subprocess.run([kiln, *args], capture_output=True, text=True, timeout=300, cwd=tmp)
    what = "kiln " + " ".join(args)
    lines = p.stderr.splitlines()
    check(p.returncode == code, f"{what}: exit {p.returncode}, expected {code} ({p.stderr.strip()!r})")
    check(len(lines) == 1, f"{what}: {len(lines)} lines on stderr, expected one: {p.stderr!r}")
    for w in words:
        check(w in p.stderr, f"{what}: {w!r} not in {p.stderr.strip()!r}")
    check(digests(tmp) == before, f"{what}: a file changed or appeared")
    if must_not_exist:
        check(not os.path.exists(os.path.join(tmp, must_not_exist)), f"{what}: wrote {must_not_exist}")


def main():
    kiln, data = os.path.abspath(sys.argv[1]), sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(data, "llama-tiny"), os.path.join(tmp, "m"))
        ref = "m/reference.safetensors"
        p = subprocess.run([kiln, "compile", "m", "-o", "x.kiln"], capture_output=True, text=True, cwd=tmp)
        check(p.returncode == 0, f"kiln compile m -o x.kiln: {p.stderr}")
        os.symlink("m/model.safetensors", os.path.join(tmp, "link.safetensors"))
        os.mkdir(os.path.join(tmp, "out"))

        # compile: -o is a file of the model directory (any spelling), a missing directory, a directory.
        refused(kiln, tmp, ["compile", "m", "-o", "m/model.safetensors"], 1,
                ["-o m/model.safetensors", "model directory", "refusing to overwrite an input"])
        refused(kiln, tmp, ["compile", "m", "-o", "./out/../m/config.json"], 1, ["the same file as", "config.json"])
        refused(kiln, tmp, ["compile", "m", "-o", "link.safetensors"], 1, ["the same file as m/model.safetensors"])
        refused(kiln, tmp, ["compile", "m", "-o", "nodir/x.kiln"], 1, ["directory nodir does not exist"],
                must_not_exist="nodir")
        refused(kiln, tmp, ["compile", "m", "-o", "out"], 1, ["-o out is a directory"])
        # run / eval: --outputs is the artifact, the inputs or a file of the model directory.
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "x.kiln"], 1, ["the artifact x.kiln"])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", ref], 1, ["--inputs " + ref])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "out/../" + ref], 1, ["--inputs " + ref])
        refused(kiln, tmp, ["run", "x.kiln", "--inputs", ref, "--outputs", "nodir/o.safetensors"], 1,
                ["directory nodir does not exist"], must_not_exist="nodir")
        refused(kiln, tmp, ["eval", "m", "--inputs", ref, "--outputs", "m/config.json"], 1,
                ["m/config.json in the model directory m"])
        refused(kiln, tmp, ["eval", "m", "--inputs", ref, "--outputs", ref], 1, ["refusing to overwrite an input"])

        # A session far larger than any machine (batch 10^7 of llama-tiny: terabytes): compiled, with a warning.
        p = subprocess.run([kiln, "compile", "m", "-o", "big.kiln", "--max-batch", "10000000"], capture_output=True,
                           text=True, timeout=300, cwd=tmp)
        warnings = [l for l in p.stderr.splitlines() if "warning" in l]
        check(p.returncode == 0, f"compile --max-batch 10000000: exit {p.returncode}: {p.stderr[-300:]!r}")
        check(len(warnings) == 1 and "a session needs" in warnings[0] and "GiB" in warnings[0] and "batch 10000000" in warnings[0] and
              "lower --max-context or --max-batch" in warnings[0], f"compile --max-batch 10000000: {warnings}")
        # ... and refused at session creation, before allocating, naming the limits to lower.
        refused(kiln, tmp, ["run", "big.kiln", "--inputs", ref, "--outputs", "o.safetensors"], 1,
                ["a session needs", "more than this machine's memory", "--max-context or --max-batch"],
                must_not_exist="o.safetensors")
        p = subprocess.run([kiln, "compile", "m", "-o", "small.kiln"], capture_output=True, text=True, cwd=tmp)
        check("warning" not in p.stderr, f"compile with the default limits warns: {p.stderr!r}")
        numbers(kiln, tmp, ref)
        weights_flags(kiln, tmp, ref)
        ignored_flags(kiln, tmp)
        input_contract(kiln, tmp, ref)
        model_files(kiln, tmp)
    return summary("guard rails")


def weights_flags(kiln, tmp, ref):
    """--weights names a format kiln has; --keep-f16 comes with q8_0 / q4_0 and names matrices the model reads."""
    evaluate = ["eval", "m", "--inputs", ref, "--outputs", "o.safetensors"]
    for args in (["compile", "m", "-o", "t.kiln"], evaluate):
        refused(kiln, tmp, args + ["--weights", "q5_1"], 2, ["--weights takes f32, f16, bf16, q8_0 or q4_0", "'q5_1'"],
                must_not_exist="t.kiln")
        refused(kiln, tmp, args + ["--keep-f16", "embed"], 2, ["--keep-f16 needs --weights q8_0 or q4_0"],
                must_not_exist="t.kiln")
        refused(kiln, tmp, args + ["--weights", "f16", "--keep-f16", "lm_head"], 2, ["--keep-f16 needs --weights q8_0"],
                must_not_exist="t.kiln")
        refused(kiln, tmp, args + ["--weights", "q8_0", "--keep-f16", "embed,,lm_head"], 2,
                ["--keep-f16 takes comma-separated tensor names"], must_not_exist="t.kiln")
        refused(kiln, tmp, args + ["--weights", "q4_0", "--keep-f16", "model.nosuch.weight"], 1,
                ["--keep-f16 'model.nosuch.weight' names no matrix the model reads"], must_not_exist="t.kiln")
    refused(kiln, tmp, evaluate + ["--weights", "q8_0", "--target", "cuda"], 2, ["unknown --target 'cuda' (cpu, vulkan)"])
    check(not os.path.exists(os.path.join(tmp, "o.safetensors")), "eval with a bad --weights wrote its outputs")
    # eval --target follows a target's kernels only in how they quantize activations: q8_0 / q4_0 weights.
    warned(kiln, tmp, ["eval", "m", "--inputs", ref, "--outputs", "target.safetensors", "--target", "vulkan"],
           ["--target", "--weights q8_0|q4_0", "nothing"])
    os.remove(os.path.join(tmp, "target.safetensors"))


def warned(kiln, tmp, args, words, must_not_exist=None):
    """kiln ARGS succeeds with exactly one warning line containing `words`."""
    p = subprocess.run([kiln, *args], capture_output=True, text=True, timeout=300, cwd=tmp)
    what = "kiln " + " ".join(args)
    warnings = [line for line in p.stderr.splitlines() if "warning" in line]
    check(p.returncode == 0, f"{what}: exit {p.returncode}: {p.stderr[-300:]!r}")
    check(len(warnings) == 1 and all(w in warnings[0] for w in words), f"{what}: warnings {warnings}, want {words}")
    if must_not_exist:
        check(not os.path.exists(os.path.join(tmp, must_not_exist)), f"{what}: wrote {must_not_exist}")
    return p


def logits(path):
    _, values = load(path, "logits")
    return values


def numbers(kiln, tmp, ref):
    """--threads has one limit everywhere; a number beyond its field is "too large"; seed 0 is one seed."""
    run = ["run", "x.kiln", "--inputs", ref, "--outputs", "o.safetensors"]
    for args in (run, ["generate", "x.kiln", "--ids", "1,2", "-n", "1"], ["bench", "x.kiln", "-p", "2", "-n", "1"],
                 ["compile", "m", "-o", "t.kiln"]):
        refused(kiln, tmp, args + ["--threads", "1025"], 2, ["--threads 1025 is too large (at most 1024)"],
                must_not_exist="t.kiln")
        refused(kiln, tmp, args + ["--threads", "0"], 2, ["--threads must be an integer >= 1"], must_not_exist="t.kiln")
    for args, flag in ((run + ["--chunks", "99999999999999999999"], "--chunks"),
                       (["eval", "m", "--inputs", ref, "--outputs", "o.safetensors", "--chunks", "1,99999999999999"],
                        "--chunks"),
                       (["bench", "x.kiln", "-p", "99999999999999999999"], "-p"),
                       (["generate", "x.kiln", "--ids", "1,2", "-n", "99999999999999999999"], "-n"),
                       (["generate", "x.kiln", "--ids", "1,99999999999999999999"], "--ids"),
                       (["compile", "m", "-o", "t.kiln", "--max-context", "4294967296"], "--max-context"),
                       (["compile", "m", "-o", "t.kiln", "--synthetic-weights", "18446744073709551616"],
                        "--synthetic-weights"),
                       (["synth", "m/config.json", "-o", "s", "--seed", "18446744073709551616"], "--seed")):
        refused(kiln, tmp, args, 2, [flag, "is too large (at most"], must_not_exist="o.safetensors")
    # synth --seed 0 and compile --synthetic-weights 0 are the same weights, hence the same logits.
    p = subprocess.run([kiln, "synth", "m/config.json", "-o", "s0", "--seed", "0"], capture_output=True, text=True,
                       cwd=tmp)
    check(p.returncode == 0, f"synth --seed 0: {p.stderr.strip()}")
    for args in (["compile", "s0", "-o", "s0.kiln"], ["compile", "m", "-o", "syn0.kiln", "--synthetic-weights", "0"]):
        p = subprocess.run([kiln, *args], capture_output=True, text=True, cwd=tmp)
        check(p.returncode == 0, f"{args}: {p.stderr[-300:]}")
    for a in ("s0", "syn0"):
        p = subprocess.run([kiln, "run", a + ".kiln", "--inputs", ref, "--outputs", a + ".safetensors"],
                           capture_output=True, text=True, cwd=tmp)
        check(p.returncode == 0, f"run {a}.kiln: {p.stderr.strip()}")
    if all(os.path.exists(os.path.join(tmp, a + ".safetensors")) for a in ("s0", "syn0")):
        check(logits(os.path.join(tmp, "s0.safetensors")) == logits(os.path.join(tmp, "syn0.safetensors")),
              "synth --seed 0 and --synthetic-weights 0 give different logits")


def ignored_flags(kiln, tmp):
    """A flag that does nothing in its combination is one warning line naming it."""
    warned(kiln, tmp, ["compile", "m", "--emit=ir", "-o", "e.kiln"], ["-o", "--emit=ir", "nothing"],
           must_not_exist="e.kiln")
    warned(kiln, tmp, ["compile", "m", "-o", "w.kiln", "--strict"], ["--strict", "--target vulkan"])
    warned(kiln, tmp, ["compile", "m", "-o", "w.kiln", "--fuse"], ["--fuse", "--emit=ir"])
    warned(kiln, tmp, ["compile", "m", "-o", "w.kiln", "--matmul-precision", "f16"],
           ["--matmul-precision", "--target vulkan"])
    refused(kiln, tmp, ["compile", "m", "-o", "p.kiln", "--target", "vulkan", "--matmul-precision", "tf32"], 2,
            ["unknown --matmul-precision 'tf32' (f32, f16)"], must_not_exist="p.kiln")


def input_contract(kiln, tmp, ref):
    """run and eval accept and refuse the same input files (tools/kiln/Inputs.h)."""
    import array
    ids = array.array("q", [1, 2, 3, 4])
    files = {
        "i32.safetensors": {"input_ids": ("I32", [1, 4], array.array("i", ids)),
                            "extra": ("F32", [2], array.array("f", [1, 2]))},
        "i64.safetensors": {"input_ids": ("I64", [1, 4], ids)},
        "pad.safetensors": {"input_ids": ("I64", [1, 4], ids), "attention_mask": ("I64", [1, 4], array.array("q", [1, 1, 0, 1]))},
        "mask2.safetensors": {"input_ids": ("I64", [1, 4], ids), "attention_mask": ("I64", [1, 4], array.array("q", [1, 2, 1, 1]))},
        "vocab.safetensors": {"input_ids": ("I64", [1, 4], array.array("q", [1, 2, 3, 100000]))},
    }
    for name, tensors in files.items():
        st.write(os.path.join(tmp, name), tensors)
    for cmd in (["run", "x.kiln"], ["eval", "m"]):
        outs = []
        for name in ("i32.safetensors", "i64.safetensors"):  # I32 ids and extra tensors: accepted, same result
            out = name.replace(".safetensors", "-" + cmd[0] + ".out")
            p = subprocess.run([kiln, *cmd, "--inputs", name, "--outputs", out], capture_output=True, text=True, cwd=tmp)
            check(p.returncode == 0, f"{cmd[0]} --inputs {name}: {p.stderr.strip()}")
            outs.append(os.path.join(tmp, out))
        if all(os.path.exists(o) for o in outs):
            check(logits(outs[0]) == logits(outs[1]), f"{cmd[0]}: I32 ids and I64 ids give different logits")
        refused(kiln, tmp, cmd + ["--inputs", "pad.safetensors", "--outputs", "o.safetensors"], 1,
                ["attention_mask[0, 2] = 0", "causal LM", "no padding"], must_not_exist="o.safetensors")
        refused(kiln, tmp, cmd + ["--inputs", "mask2.safetensors", "--outputs", "o.safetensors"], 1,
                ["attention_mask[0, 1] = 2 is not 0 or 1"], must_not_exist="o.safetensors")
        refused(kiln, tmp, cmd + ["--inputs", "vocab.safetensors", "--outputs", "o.safetensors"], 1,
                ["input_ids[0, 3] = 100000 is outside the vocabulary"], must_not_exist="o.safetensors")


def model_files(kiln, tmp):
    """Unused weights, a missing tensor (its file's path), a flipped header byte, bad JSON, a missing shard,
    weights in formats kiln does not read."""
    shutil.copytree(os.path.join(tmp, "m"), os.path.join(tmp, "fewer"))
    config = json.load(open(os.path.join(tmp, "fewer", "config.json")))
    config["num_hidden_layers"] = 1
    json.dump(config, open(os.path.join(tmp, "fewer", "config.json"), "w"))
    warned(kiln, tmp, ["compile", "fewer", "-o", "fewer.kiln"],
           ["tensors of the checkpoint are not used", "model.layers.1.", "more"])
    shutil.copytree(os.path.join(tmp, "m"), os.path.join(tmp, "more"))
    config["num_hidden_layers"] = 3
    json.dump(config, open(os.path.join(tmp, "more", "config.json"), "w"))
    for cmd in (["compile", "more", "-o", "t.kiln"], ["eval", "more", "--inputs", "i64.safetensors", "--outputs", "o.safetensors"]):
        refused(kiln, tmp, cmd, 1, ["more/model.safetensors: missing tensor 'model.layers.2."], must_not_exist="o.safetensors")
    data = bytearray(open(os.path.join(tmp, "x.kiln"), "rb").read())
    data[10] ^= 0x57  # the format version's third byte: version 5701635 unless the checksum catches it
    open(os.path.join(tmp, "flipped.kiln"), "wb").write(data)
    for args in (["inspect", "flipped.kiln"], ["run", "flipped.kiln", "--inputs", "i64.safetensors", "--outputs", "o.safetensors"]):
        refused(kiln, tmp, args, 1, ["corrupted: header checksum mismatch"], must_not_exist="o.safetensors")
    os.mkdir(os.path.join(tmp, "badjson"))
    shutil.copy(os.path.join(tmp, "m", "model.safetensors"), os.path.join(tmp, "badjson"))
    open(os.path.join(tmp, "badjson", "config.json"), "w").write('{"model_type": "llama",\n  "vocab_size": 512,\n}')
    refused(kiln, tmp, ["compile", "badjson", "-o", "t.kiln"], 1, ["badjson/config.json: not valid JSON: line 3, column 1"])
    open(os.path.join(tmp, "badprofile.json"), "w").write('{"name": "x",\n  subgroup_size: 32}')
    refused(kiln, tmp, ["compile", "m", "-o", "t.kiln", "--target", "vulkan", "--device-profile", "badprofile.json"], 1,
            ["badprofile.json: not valid JSON: line 2, column 3"], must_not_exist="t.kiln")
    os.mkdir(os.path.join(tmp, "sharded"))
    shutil.copy(os.path.join(tmp, "m", "config.json"), os.path.join(tmp, "sharded"))
    json.dump({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}},
              open(os.path.join(tmp, "sharded", "model.safetensors.index.json"), "w"))
    refused(kiln, tmp, ["compile", "sharded", "-o", "t.kiln"], 1,
            ["sharded/model.safetensors.index.json", "sharded/model-00001-of-00002.safetensors"])
    for name in ("pytorch_model.bin", "model.gguf"):
        d = os.path.join(tmp, "other-" + name)
        os.mkdir(d)
        shutil.copy(os.path.join(tmp, "m", "config.json"), d)
        open(os.path.join(d, name), "wb").write(b"\0" * 64)
        refused(kiln, tmp, ["compile", "other-" + name, "-o", "t.kiln"], 1, [name + " is not read", "safetensors"])
        refused(kiln, tmp, ["compile", os.path.join("other-" + name, name), "-o", "t.kiln"], 1, ["are not read"])


if __name__ == "__main__":
    sys.exit(main())
