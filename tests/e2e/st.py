"""Minimal safetensors reading and writing for the end-to-end tests (standard library only), and what the
scripts over the reference cases (tests/data/*/case.json + reference.safetensors) share."""
import argparse
import array
import json
import os
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


# ---- the reference cases ----

def case_arguments(threshold=1e-4, cases=True, no_run=False):
    """The parser of a script over the reference cases: KILN DATA_DIR [--threshold T] [--cases a,b] [--no-run]
    (a script adds its own flags before parse_args())."""
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("data")
    ap.add_argument("--threshold", type=float, default=threshold)
    if cases:
        ap.add_argument("--cases", default="")
    if no_run:
        ap.add_argument("--no-run", action="store_true")
    return ap


def case_names(data, cases=""):
    """The reference cases in `data` (the folders holding a case.json), sorted; with `cases` (a comma-separated
    list) only those."""
    wanted = set(filter(None, cases.split(",")))
    return [c for c in sorted(os.listdir(data))
            if os.path.exists(os.path.join(data, c, "case.json")) and (not wanted or c in wanted)]


def output_name(case):
    """The output a case (its case.json) is compared on."""
    return "logits" if case["task"] == "causal-lm" else "last_hidden_state"


def schedules(case):
    """The chunk schedules a case runs: a causal LM its own, one chunk (None) and token by token; an encoder
    one chunk."""
    return [case["chunks"], None, [1] * case["seq"]] if case["task"] == "causal-lm" else [None]


def schedule_label(chunks):
    if not chunks:
        return "one chunk"
    return "token by token" if len(chunks) > 1 and set(chunks) == {1} else ",".join(map(str, chunks))


def chunks_flag(chunks):
    """kiln run / eval's --chunks for a schedule (a list of chunk sizes or "a,b,c"); none for one chunk."""
    if not chunks:
        return []
    return ["--chunks", chunks if isinstance(chunks, str) else ",".join(map(str, chunks))]


def reference_io(case_dir, out, chunks=None):
    """kiln run / eval's arguments that run a case's reference inputs in `chunks` and write `out`."""
    return ["--inputs", os.path.join(case_dir, "reference.safetensors"), "--outputs", out] + chunks_flag(chunks)


def compare_output(out, case_dir, threshold):
    """(ok, message): the case's output in the safetensors file `out` against its reference."""
    name = output_name(json.load(open(os.path.join(case_dir, "case.json"))))
    ref = read(os.path.join(case_dir, "reference.safetensors"))[name]
    got = read(out)[name]
    if got[1] != ref[1]:
        return False, "shape %s, expected %s" % (got[1], ref[1])
    err = rel_err(got[2], ref[2])
    return err <= threshold, "rel err %.3e" % err
