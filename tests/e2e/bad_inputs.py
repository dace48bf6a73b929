#!/usr/bin/env python3
"""Bad input never crashes kiln: each case exits 1 with one line naming the file, tensor or op.

usage: bad_inputs.py KILN DATA_DIR

Each case derives a broken model directory or input file from tests/data/llama-tiny (or bert-tiny), runs
kiln, and checks: exit code 1, exactly one line on stderr, and the expected words in it.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def header_of(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def with_header(path, header, body):
    text = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + body)


def main():
    kiln, data = sys.argv[1], sys.argv[2]
    src = os.path.join(data, "llama-tiny")
    ref = os.path.join(src, "reference.safetensors")
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        def model(name, mutate_weights=None, mutate_config=None, base=src):
            d = os.path.join(tmp, name)
            shutil.copytree(base, d)
            if mutate_weights:
                mutate_weights(os.path.join(d, "model.safetensors"))
            if mutate_config:
                cfg = json.load(open(os.path.join(d, "config.json")))
                mutate_config(cfg)
                json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
            return d

        def truncate(n):
            return lambda p: open(p, "r+b").truncate(n)

        def edit_header(fn):
            def go(p):
                h, body = header_of(p)
                fn(h)
                with_header(p, h, body)
            return go

        def first(h):
            return sorted(k for k in h if k != "__metadata__")[0]

        def overlap(h):
            names = sorted(k for k in h if k != "__metadata__")
            h[names[1]]["data_offsets"] = list(h[names[0]]["data_offsets"])

        def shape_lie(h):
            h["model.norm.weight"]["shape"] = [65]

        def dtype_lie(h):
            h["model.norm.weight"]["dtype"] = "F16"

        def unknown_dtype(h):
            h["model.norm.weight"]["dtype"] = "F8_E4M3"

        def drop(h):
            del h["model.layers.1.mlp.up_proj.weight"]

        def length_past_eof(p):
            raw = bytearray(open(p, "rb").read())
            raw[:8] = struct.pack("<Q", len(raw) * 4)
            open(p, "wb").write(raw)

        def bad_inputs_file(name, tensors):
            path = os.path.join(tmp, name + ".safetensors")
            st.write(path, tensors)
            return path

        ids = st.read(ref)["input_ids"]
        import array
        cases = [
            ("truncated file", model("trunc", truncate(5)), ref, ["model.safetensors"]),
            ("truncated data", model("trunc2", lambda p: open(p, "r+b").truncate(os.path.getsize(p) - 100)),
             ref, ["model.safetensors"]),
            ("header length past EOF", model("eof", length_past_eof), ref, ["model.safetensors", "header"]),
            ("overlapping ranges", model("overlap", edit_header(overlap)), ref, ["model.safetensors", "overlap"]),
            ("shape x dtype != byte range", model("shape", edit_header(shape_lie)), ref,
             ["model.safetensors", "model.norm.weight"]),
            ("dtype lie", model("dtype", edit_header(dtype_lie)), ref, ["model.safetensors", "model.norm.weight"]),
            ("unknown dtype", model("udtype", edit_header(unknown_dtype)), ref, ["model.safetensors", "F8_E4M3"]),
            ("missing tensor", model("missing", edit_header(drop)), ref, ["model.safetensors", "model.layers.1.mlp.up_proj.weight"]),
            ("config vs weights", model("cfg", mutate_config=lambda c: c.update(intermediate_size=128)), ref,
             ["model.safetensors", "config.json", "[176, 64]", "[128, 64]"]),
            ("unknown architecture", model("arch", mutate_config=lambda c: c.update(architectures=["FooForCausalLM"])),
             ref, ["FooForCausalLM", "LlamaForCausalLM"]),
            ("config not JSON", model("json", mutate_config=None), ref, ["config.json"]),
            ("no model dir", os.path.join(tmp, "nope"), ref, ["nope"]),
            ("input_ids wrong dtype", src, bad_inputs_file("f32ids", {"input_ids": ("F32", [1, 2], array.array("f", [1, 2]))}),
             ["input_ids", "I64"]),
            ("input_ids wrong rank", src, bad_inputs_file("rank", {"input_ids": ("I64", [3], array.array("q", [1, 2, 3]))}),
             ["input_ids"]),
            ("token id out of range", src, bad_inputs_file("range", {"input_ids": ("I64", [1, 2], array.array("q", [1, 9999]))}),
             ["9999"]),
            ("no input_ids", src, bad_inputs_file("none", {"x": ("I64", [1, 2], array.array("q", [1, 2]))}), ["input_ids"]),
        ]
        open(os.path.join(tmp, "json", "config.json"), "w").write("{\"architectures\": [")
        for label, model_dir, inputs, words in cases:
            out = os.path.join(tmp, "out.safetensors")
            proc = subprocess.run([kiln, "eval", model_dir, "--inputs", inputs, "--outputs", out],
                                  capture_output=True, text=True, timeout=60)
            lines = [l for l in proc.stderr.splitlines() if l.strip()]
            problems = []
            if proc.returncode != 1:
                problems.append("exit %d" % proc.returncode)
            if len(lines) != 1:
                problems.append("%d lines on stderr" % len(lines))
            missing = [w for w in words if w not in proc.stderr]
            if missing:
                problems.append("message lacks %s" % missing)
            ok = not problems
            passed, failed = passed + ok, failed + (not ok)
            print("%-4s %-28s %s%s" % ("ok" if ok else "FAIL", label, proc.stderr.strip()[:150],
                                       "" if ok else "  <- " + "; ".join(problems)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
