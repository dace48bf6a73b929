#!/usr/bin/env python3
"""Helpers for checking that llama.cpp (the benchmark peer) computes the same function as the reference.

  check_logits.py ids REF.safetensors               print input_ids of REF as 1,2,3
  check_logits.py chunks CASE.json                  print the chunks of a tests/data case as 2,5,1
  check_logits.py inputs 1,2,3 OUT.safetensors      write input_ids I64 [1, S] (for kiln run)
  check_logits.py compare LOGITS.f32 REF.safetensors [THRESHOLD]
      raw f32 [S, V] from bench/peers/bin/llama-logits against tensor `logits` [1, S, V] of REF (a Hugging
      Face reference or kiln run's output): prints max|out-ref|/max|ref| and the argmax agreement; exits 1
      above THRESHOLD (default 1e-4) or on a size mismatch.
Standard library only.
"""
import array
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        fmt = {"F32": "f", "I64": "q"}.get(info["dtype"])
        if fmt is None:
            continue
        begin, end = info["data_offsets"]
        values = array.array(fmt)
        values.frombytes(data[8 + n + begin:8 + n + end])
        out[name] = (info["shape"], values)
    return out


def main():
    a = sys.argv[1:]
    if a[:1] == ["ids"] and len(a) == 2:
        print(",".join(str(v) for v in load(a[1])["input_ids"][1]))
    elif a[:1] == ["chunks"] and len(a) == 2:
        print(",".join(str(v) for v in json.load(open(a[1]))["chunks"]))
    elif a[:1] == ["inputs"] and len(a) == 3:
        ids = array.array("q", [int(v) for v in a[1].split(",")])
        text = json.dumps({"input_ids": {"dtype": "I64", "shape": [1, len(ids)], "data_offsets": [0, 8 * len(ids)]}})
        text = text.encode() + b" " * ((8 - len(text) % 8) % 8)
        with open(a[2], "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + ids.tobytes())
    elif a[:1] == ["compare"] and len(a) in (3, 4):
        threshold = float(a[3]) if len(a) == 4 else 1e-4
        out = array.array("f")
        with open(a[1], "rb") as f:
            out.frombytes(f.read())
        shape, ref = load(a[2])["logits"]
        if len(out) != len(ref):
            print(f"{a[1]}: {len(out)} logits, reference {a[2]} has {len(ref)} (shape {shape})")
            sys.exit(1)
        vocab = shape[-1]
        diff = max(abs(x - y) if x == x else float("inf") for x, y in zip(out, ref))
        scale = max(abs(y) for y in ref)
        rows = len(ref) // vocab
        same = 0
        for r in range(rows):
            o, g = out[r * vocab:(r + 1) * vocab], ref[r * vocab:(r + 1) * vocab]
            same += max(range(vocab), key=o.__getitem__) == max(range(vocab), key=g.__getitem__)
        rel = diff / scale if scale > 0 else diff
        print(f"logits {shape}: max|llama.cpp-ref|/max|ref| = {rel:.3e} (max abs diff {diff:.3e}, max|ref| "
              f"{scale:.3e}); argmax agrees at {same}/{rows} positions")
        sys.exit(0 if rel <= threshold else 1)
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
