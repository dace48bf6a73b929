#!/usr/bin/env python3
"""The KV cache in place (MemoryPlan.h placeKvCacheInPlace) against the Hugging Face references.

usage: kv_cache_cases.py KILN LIBKILN DATA_DIR [--threshold 1e-4] [--cases a,b]

For every causal-LM case in DATA_DIR:
  - the fused compile reports every KV entry in place and `kiln inspect` shows the layout; with
    --no-kv-in-place none is, and that artifact still matches the reference (case.json schedule);
  - batch 2 through the in-place cache: row 0 is the reference prompt (checked against the HF logits), row 1
    the reversed prompt (checked against `kiln eval`, the reference interpreter), with the case's schedule;
  - kiln_session_reset through libkiln (ctypes): one chunk, reset, then token by token, then reset and a
    prefix of the prompt: each run matches the reference (the stale rows past p are never read).
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import argparse
import array
import ctypes
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from artifact_cases import RESULTS, report, run  # noqa: E402


def rows(values, shape):
    """[B, S, V] flat -> list of B flat rows."""
    n = len(values) // shape[0]
    return [values[i * n:(i + 1) * n] for i in range(shape[0])]


class Lib:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.kiln_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        L.kiln_session_create.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)]
        L.kiln_session_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p,
                                       ctypes.c_int64, ctypes.c_int64]
        L.kiln_session_output.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
                                          ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int)]
        L.kiln_session_reset.argtypes = [ctypes.c_void_p]
        L.kiln_session_past_length.argtypes = [ctypes.c_void_p]
        L.kiln_session_past_length.restype = ctypes.c_int64
        L.kiln_session_free.argtypes = [ctypes.c_void_p]
        L.kiln_model_free.argtypes = [ctypes.c_void_p]
        L.kiln_last_error.restype = ctypes.c_char_p

    def error(self):
        return self.lib.kiln_last_error().decode()

    def run_logits(self, session, tokens, batch, c):
        """Runs the [batch, c] chunk `tokens` (flat) on `session`; its logits as (dims, a float pointer)."""
        if self.lib.kiln_session_run(session, (ctypes.c_int64 * len(tokens))(*tokens), None, batch, c) != 0:
            raise RuntimeError(self.error())
        data = ctypes.POINTER(ctypes.c_float)()
        shape = (ctypes.c_int64 * 8)()
        rank = ctypes.c_int()
        if self.lib.kiln_session_output(session, b"logits", ctypes.byref(data), shape, ctypes.byref(rank)) != 0:
            raise RuntimeError(self.error())
        return [shape[i] for i in range(rank.value)], data


def run_chunks(lib, session, ids, chunks):
    """Runs `ids` (one row) in `chunks` on `session`; the logits of every position, flat."""
    out, at = [], 0
    for c in chunks:
        dims, data = lib.run_logits(session, ids[at:at + c], 1, c)
        out.extend(data[:dims[0] * dims[1] * dims[2]])
        at += c
    return out


def check_case(kiln, lib, case_dir, tmp, threshold):
    name = os.path.basename(case_dir)
    case = json.load(open(os.path.join(case_dir, "case.json")))
    ref = st.read(os.path.join(case_dir, "reference.safetensors"))
    ids = list(ref["input_ids"][2])
    S = len(ids)
    logits = ref["logits"][2]
    V = ref["logits"][1][-1]
    chunks = case.get("chunks") or [S]
    art = os.path.join(tmp, name + ".kiln")
    p = run([kiln, "compile", case_dir, "-o", art, "--max-context", "32", "--max-batch", "2"])
    summary = [l for l in p.stderr.splitlines() if "kv cache:" in l]
    if p.returncode != 0 and "unsupported architecture" in p.stderr:
        print("skip %-52s %s" % (name, p.stderr.strip().splitlines()[-1]))
        return
    if not report(p.returncode == 0, name + ": compile", p.stderr.strip().splitlines()[-1] if p.stderr else ""):
        return
    report(bool(summary) and " 0 x 2" not in summary[0] and "in place, capacity 32" in summary[0] and
           "copied forward" not in summary[0], name + ": every KV entry in place", summary[0] if summary else "no line")
    p = run([kiln, "inspect", art])
    report(p.returncode == 0 and "in place: one buffer, capacity 32 rows" in p.stdout and
           "view of kv cache" in p.stdout, name + ": inspect shows the layout")

    base = os.path.join(tmp, name + "-copy.kiln")
    p = run([kiln, "compile", case_dir, "-o", base, "--max-context", "32", "--no-kv-in-place"])
    ok = p.returncode == 0 and any("kv cache: 0 x 2 buffers in place" in l for l in p.stderr.splitlines())
    if report(ok, name + ": --no-kv-in-place keeps two buffers"):
        out = os.path.join(tmp, "copy.safetensors")
        p = run([kiln, "run", base, "--inputs", os.path.join(case_dir, "reference.safetensors"), "--outputs", out,
                 "--chunks", ",".join(map(str, chunks))])
        if report(p.returncode == 0, name + ": --no-kv-in-place run", p.stderr.strip()):
            err = st.rel_err(st.read(out)["logits"][2], logits)
            report(err <= threshold, name + ": --no-kv-in-place vs reference", "rel err %.3e" % err)

    # Batch 2: the reference prompt and the reversed one, through one session.
    rev = ids[::-1]
    two = os.path.join(tmp, "two.safetensors")
    st.write(two, {"input_ids": ("I64", [2, S], array.array("q", ids + rev))})
    one = os.path.join(tmp, "rev.safetensors")
    st.write(one, {"input_ids": ("I64", [1, S], array.array("q", rev))})
    out2, oracle = os.path.join(tmp, "out2.safetensors"), os.path.join(tmp, "oracle.safetensors")
    p = run([kiln, "run", art, "--inputs", two, "--outputs", out2, "--chunks", ",".join(map(str, chunks))])
    q = run([kiln, "eval", case_dir, "--inputs", one, "--outputs", oracle])
    if report(p.returncode == 0 and q.returncode == 0, name + ": batch 2 run, eval of row 1",
              (p.stderr + q.stderr).strip()[-200:]):
        got = st.read(out2)["logits"]
        r = rows(got[2], got[1])
        e0 = st.rel_err(r[0], logits)
        e1 = st.rel_err(r[1], st.read(oracle)["logits"][2])
        report(got[1] == [2, S, V] and e0 <= threshold and e1 <= threshold, name + ": batch 2 (row 0 vs HF, row 1 vs eval)",
               "rel err %.3e, %.3e" % (e0, e1))

    # kiln_session_reset on the in-place cache.
    model, session = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.lib.kiln_model_load(art.encode(), None, ctypes.byref(model)) != 0:
        return report(False, name + ": libkiln load", lib.error())
    try:
        if lib.lib.kiln_session_create(model, 1, ctypes.byref(session)) != 0:
            return report(False, name + ": libkiln session", lib.error())
        errs = []
        errs.append(st.rel_err(run_chunks(lib, session, ids, [S]), logits))
        lib.lib.kiln_session_reset(session)
        past0 = lib.lib.kiln_session_past_length(session)
        errs.append(st.rel_err(run_chunks(lib, session, ids, [1] * S), logits))
        lib.lib.kiln_session_reset(session)
        k = max(1, S // 2)
        errs.append(st.rel_err(run_chunks(lib, session, ids[:k], [k]), logits[:k * V]))
        report(past0 == 0 and max(errs) <= threshold and lib.lib.kiln_session_past_length(session) == k,
               name + ": reset (one chunk, tokens, a prefix)", "rel err " + ", ".join("%.3e" % e for e in errs))
    except RuntimeError as e:
        report(False, name + ": reset", str(e))
    finally:
        lib.lib.kiln_session_free(session)
        lib.lib.kiln_model_free(model)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("libkiln")
    ap.add_argument("data")
    ap.add_argument("--threshold", type=float, default=1e-4)
    ap.add_argument("--cases", default="")
    a = ap.parse_args()
    lib = Lib(a.libkiln)
    with tempfile.TemporaryDirectory() as tmp:
        for name in st.case_names(a.data, a.cases):
            case_dir = os.path.join(a.data, name)
            case = json.load(open(os.path.join(case_dir, "case.json")))
            if case.get("task") != "causal-lm":
                continue
            check_case(a.kiln, lib, case_dir, tmp, a.threshold)
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
