#!/usr/bin/env python3
"""compare.py OUT REF NAME [THRESHOLD]: max|out - ref| / max|ref| of tensor NAME in two safetensors files.

Prints the relative error; exits 1 above THRESHOLD (default 1e-4), on a missing tensor or a shape mismatch.
Standard library only (no numpy).
"""
import array
import json
import struct
import sys

DTYPES = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}


def load(path, name):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    if name not in header:
        sys.exit(f"{path}: no tensor '{name}'")
    info = header[name]
    if info["dtype"] not in DTYPES:
        sys.exit(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
    begin, end = info["data_offsets"]
    values = array.array(DTYPES[info["dtype"]])
    values.frombytes(data[8 + n + begin:8 + n + end])
    if sys.byteorder != "little":
        values.byteswap()
    return info["shape"], values


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    out_path, ref_path, name = sys.argv[1:4]
    threshold = float(sys.argv[4]) if len(sys.argv) == 5 else 1e-4
    out_shape, out = load(out_path, name)
    ref_shape, ref = load(ref_path, name)
    if out_shape != ref_shape:
        print(f"{name}: shape {out_shape} != reference {ref_shape}")
        sys.exit(1)
    diff = max((abs(a - b) for a, b in zip(out, ref)), default=0.0)
    if any(a != a for a in out):
        diff = float("inf")
    scale = max((abs(b) for b in ref), default=0.0)
    rel = diff / scale if scale > 0 else diff
    print(f"{name}: max|out-ref|/max|ref| = {rel:.3e} (max abs diff {diff:.3e}, max|ref| {scale:.3e})")
    sys.exit(0 if rel <= threshold else 1)


if __name__ == "__main__":
    main()
