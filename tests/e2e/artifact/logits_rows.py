#!/usr/bin/env python3
"""kiln_session_set_logits: the logits of each chunk's last row only (KILN_LOGITS_LAST) against every row's.

usage: logits_rows.py KILN LIBKILN DATA_DIR [--cases a,b] [--no-vulkan]

For every causal-LM case in DATA_DIR, through libkiln (ctypes), batch 2 (the reference prompt and the reversed
one) and batch 1 (the prompt), each in the case's chunk schedule, one chunk (more rows than the GEMVs take) and
token by token:
  - CPU (f32 weights, and q8_0 for llama-tiny): a KILN_LOGITS_LAST session's "logits" are [B, 1, V] per chunk, the last row
    of each batch entry of a KILN_LOGITS_ALL session's [B, c, V]: byte-identical token by token, within 1e-6
    of the largest logit for longer chunks (the same kernel path, but OpenBLAS's sgemm rounds a row by its
    place in the M blocking); back to KILN_LOGITS_ALL (after a reset) the session gives every row again,
    identical to the first;
  - Vulkan on lavapipe (when present): the same, the last rows within round-off (1e-5 of the largest logit:
    one row takes the GEMV path where the chunk takes the tiles) and within 1e-3 of the CPU's.
The C API rejects a mode other than KILN_LOGITS_ALL / KILN_LOGITS_LAST naming it, a NULL session, and
KILN_LOGITS_LAST on an encoder (bert-tiny), each with KILN_INVALID_ARGUMENT (1) and one line.
Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import st  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kv_cache_cases  # noqa: E402

RESULTS = [0, 0]
LVP_ICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
KILN_LOGITS_ALL, KILN_LOGITS_LAST = 0, 1


def report(ok, what, msg=""):
    print("%-4s %-60s %s" % ("ok" if ok else "FAIL", what, msg))
    sys.stdout.flush()
    RESULTS[0 if ok else 1] += 1
    return ok


class Lib(kv_cache_cases.Lib):
    """libkiln through ctypes (kv_cache_cases.Lib's signatures), with kiln_session_set_logits."""

    def __init__(self, path):
        super().__init__(path)
        self.lib.kiln_session_set_logits.argtypes = [ctypes.c_void_p, ctypes.c_int]

    def load(self, path, batch):
        model, session = ctypes.c_void_p(), ctypes.c_void_p()
        if self.lib.kiln_model_load(path.encode(), None, ctypes.byref(model)) != 0:
            raise RuntimeError(self.error())
        if self.lib.kiln_session_create(model, batch, ctypes.byref(session)) != 0:
            raise RuntimeError(self.error())
        return model, session

    def free(self, model, session):
        self.lib.kiln_session_free(session)
        self.lib.kiln_model_free(model)

    def run_chunks(self, session, rows, chunks):
        """Runs the batch `rows` in `chunks`; per chunk (shape, the logits as raw bytes, as floats)."""
        out, at, batch = [], 0, len(rows)
        for c in chunks:
            dims, data = self.run_logits(session, [t for r in rows for t in r[at:at + c]], batch, c)
            n = dims[0] * dims[1] * dims[2]
            out.append((dims, ctypes.string_at(data, 4 * n), data[:n]))
            at += c
        return out


def last_rows(chunk):
    """[B, c, V] -> the bytes and floats of each batch entry's last row, concatenated ([B, 1, V])."""
    dims, raw, values = chunk
    B, c, V = dims
    rows = [b * c + c - 1 for b in range(B)]
    return (b"".join(raw[4 * r * V:4 * (r + 1) * V] for r in rows),
            [x for r in rows for x in values[r * V:(r + 1) * V]])


def rel_err(a, b):
    scale = max(max(abs(x) for x in b), 1e-30)
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def check_artifact(lib, art, label, batches, schedules, exact, tolerance):
    """Last-row sessions against all-row ones on `art`, per batch and schedule; returns the last rows of the
    first."""
    first = None
    for rows, chunks in [(r, c) for r in batches for c in schedules]:
        what = "%s batch %d chunks %s" % (label, len(rows), ",".join(map(str, chunks)))
        try:
            model, session = lib.load(art, len(rows))
            full = lib.run_chunks(session, rows, chunks)
            lib.lib.kiln_session_reset(session)
            if lib.lib.kiln_session_set_logits(session, KILN_LOGITS_LAST) != 0:
                raise RuntimeError(lib.error())
            last = lib.run_chunks(session, rows, chunks)
            lib.lib.kiln_session_reset(session)
            lib.lib.kiln_session_set_logits(session, KILN_LOGITS_ALL)
            again = lib.run_chunks(session, rows, chunks[:1])
            lib.free(model, session)
        except RuntimeError as e:
            report(False, what, str(e))
            continue
        shapes_ok = all(l[0] == [len(rows), 1, f[0][2]] for l, f in zip(last, full))
        same = all(l[1] == last_rows(f)[0] for l, f in zip(last, full))
        err = max(rel_err(l[2], last_rows(f)[1]) for l, f in zip(last, full))
        if exact and max(chunks) == 1:
            # One row per chunk: the all-rows run's matmuls have the same rows, so the same bytes.
            report(shapes_ok and same, what + ": last == last row of all (bytes)", "shapes %s" % last[0][0])
        else:
            # The LM head's GEMM over fewer rows: the CPU keeps the all-rows kernel (GEMV, tiles, quantized
            # GEMV: CpuCodegen matmulPathRows), but OpenBLAS's sgemm rounds a row differently with its position
            # in the M blocking; a device GEMV for the last row where the chunk takes the tiles.
            report(shapes_ok and err <= tolerance, what + ": last ~ last row of all",
                   "rel err %.2e%s" % (err, ", bytes equal" if same else ""))
        report(again[0][0] == full[0][0] and again[0][1] == full[0][1], what + ": back to all rows",
               "shape %s" % again[0][0])
        if first is None:
            first = [last_rows(f)[1] for f in full]
    return first


def check_case(kiln, lib, case_dir, tmp, vulkan):
    name = os.path.basename(case_dir)
    case = json.load(open(os.path.join(case_dir, "case.json")))
    ref = st.read(os.path.join(case_dir, "reference.safetensors"))
    ids = [int(t) for t in ref["input_ids"][2]]
    S = len(ids)
    batches = [[ids, ids[::-1]], [ids]]
    schedules = [case.get("chunks") or [S], [S], [1] * S]
    art = os.path.join(tmp, name + ".kiln")
    p = subprocess.run([kiln, "compile", case_dir, "-o", art, "--max-context", "32", "--max-batch", "2"],
                       capture_output=True, text=True, timeout=600)
    if not report(p.returncode == 0, name + ": compile (cpu)", p.stderr.strip()[-200:]):
        return
    cpu = check_artifact(lib, art, name + " cpu", batches, schedules, exact=True, tolerance=1e-6)
    if name != "llama-tiny": # the quantized path once (every case's weights take the same kernels)
        qart = None
    else:
        qart = os.path.join(tmp, name + "-q8.kiln")
    if qart:
        p = subprocess.run([kiln, "compile", case_dir, "-o", qart, "--max-context", "32", "--max-batch", "2",
                            "--weights", "q8_0"], capture_output=True, text=True, timeout=600)
    if qart and report(p.returncode == 0, name + ": compile (cpu, q8_0)", p.stderr.strip()[-200:]):
        # The quantized GEMV (int8 activations) for few rows, f32 tiles for many: the last row alone keeps
        # the chunk's path, so it agrees to f32 round-off, not to the activations' quantization error.
        check_artifact(lib, qart, name + " cpu q8_0", batches, schedules, exact=True, tolerance=1e-6)
    if not vulkan:
        return
    vart = os.path.join(tmp, name + "-vk.kiln")
    p = subprocess.run([kiln, "compile", case_dir, "-o", vart, "--target", "vulkan", "--device-profile", "lavapipe",
                        "--max-context", "32", "--max-batch", "2"], capture_output=True, text=True, timeout=600)
    if not report(p.returncode == 0, name + ": compile (vulkan)", p.stderr.strip()[-200:]):
        return
    gpu = check_artifact(lib, vart, name + " vulkan", batches, schedules, exact=False, tolerance=1e-5)
    if cpu and gpu:
        err = max(rel_err(g, c) for g, c in zip(gpu, cpu))
        report(err <= 1e-3, name + ": vulkan last rows vs cpu", "rel err %.2e" % err)


def check_errors(kiln, lib, data, tmp):
    art = os.path.join(tmp, "bert.kiln")
    p = subprocess.run([kiln, "compile", os.path.join(data, "bert-tiny"), "-o", art, "--max-context", "32"],
                       capture_output=True, text=True, timeout=600)
    if not report(p.returncode == 0, "bert-tiny: compile", p.stderr.strip()[-200:]):
        return
    model, session = lib.load(art, 1)
    status = lib.lib.kiln_session_set_logits(session, KILN_LOGITS_LAST)
    msg = lib.error()
    report(status == 1 and "no logits rows" in msg and "\n" not in msg, "encoder: KILN_LOGITS_LAST refused", msg)
    report(lib.lib.kiln_session_set_logits(session, KILN_LOGITS_ALL) == 0, "encoder: KILN_LOGITS_ALL accepted")
    for bad in (2, -1, 7):
        status = lib.lib.kiln_session_set_logits(session, bad)
        msg = lib.error()
        report(status == 1 and ("logits mode %d" % bad) in msg, "mode %d refused, named" % bad, msg)
    status = lib.lib.kiln_session_set_logits(None, KILN_LOGITS_LAST)
    report(status == 1 and "NULL" in lib.error(), "NULL session refused", lib.error())
    lib.free(model, session)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiln")
    ap.add_argument("libkiln")
    ap.add_argument("data")
    ap.add_argument("--cases", default="")
    ap.add_argument("--no-vulkan", action="store_true")
    a = ap.parse_args()
    vulkan = not a.no_vulkan and os.path.exists(LVP_ICD)
    if vulkan:
        os.environ.setdefault("VK_DRIVER_FILES", LVP_ICD) # read when libkiln opens the device
    lib = Lib(a.libkiln)
    with tempfile.TemporaryDirectory() as tmp:
        for name in st.case_names(a.data, a.cases):
            case_dir = os.path.join(a.data, name)
            if json.load(open(os.path.join(case_dir, "case.json"))).get("task", "causal-lm") != "causal-lm":
                continue
            check_case(a.kiln, lib, case_dir, tmp, vulkan)
        check_errors(a.kiln, lib, a.data, tmp)
    print("%d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
