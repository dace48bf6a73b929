"""Minimal safetensors reading and writing for the end-to-end tests (standard library only)."""
import array
import json
import struct

FORMATS = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}


def read(path):
    """{name: (dtype, shape, array)} for the dtypes in FORMATS; raw bytes for others."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        if info["dtype"] in FORMATS:
            values = array.array(FORMATS[info["dtype"]])
            values.frombytes(raw)
        else:
            values = raw
        out[name] = (info["dtype"], info["shape"], values)
    return out


def write(path, tensors):
    """tensors: {name: (dtype, shape, array or bytes)}."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, values = tensors[name]
        raw = values.tobytes() if hasattr(values, "tobytes") else bytes(values)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def rel_err(out, ref):
    """max |out - ref| / max |ref|."""
    peak = max(abs(v) for v in ref)
    return max(abs(a - b) for a, b in zip(out, ref)) / peak
